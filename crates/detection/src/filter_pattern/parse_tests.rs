//! Parser and printer tests: every documented construct parses to what it means, canonical
//! text reads back as the same pattern, and each refusal names its column and what was
//! expected there.

use super::{FilterPattern, FilterPatternError, FilterPatternProblem, MAX_PATTERN_CHARACTERS};

fn parse(text: &str) -> FilterPattern {
    FilterPattern::parse(text).unwrap_or_else(|error| panic!("{text:?} does not parse: {error}"))
}

fn error_of(text: &str) -> FilterPatternError {
    match FilterPattern::parse(text) {
        Ok(pattern) => panic!("{text:?} parsed as {pattern}"),
        Err(error) => error,
    }
}

fn assert_round_trip(text: &str) {
    let pattern = parse(text);
    let printed = pattern.to_string();
    let reparsed = parse(&printed);
    assert_eq!(reparsed, pattern, "{text:?} printed as {printed:?}");
    assert_eq!(
        reparsed.to_string(),
        printed,
        "printing is not a fixed point"
    );
}

/// Every pattern of the AWS guide's JSON sections ("Filter pattern syntax for metric filters",
/// "Using filter patterns to match terms in JSON log events").
const AWS_GUIDE_PATTERNS: &[&str] = &[
    r#"{ $.eventType = "UpdateTrail" }"#,
    r#"{ $.sourceIPAddress != 123.123.* }"#,
    r#"{ $.arrayKey[0] = "value" }"#,
    r#"{ $.objectList[1].id = 2 }"#,
    r#"{ $.SomeObject IS NULL }"#,
    r#"{ $.SomeOtherObject NOT EXISTS }"#,
    r#"{ $.bandwidth > 75 }"#,
    r#"{ $.latency < 50 }"#,
    r#"{ $.refreshRate >= 60 }"#,
    r#"{ $.responseTime <= 5 }"#,
    r#"{ $.errorCode = 400}"#,
    r#"{ $.errorCode != 500 }"#,
    r#"{ $.number[0] = 1e-3 }"#,
    r#"{ $.number[0] != 1e+3 }"#,
    r#"{ $.latency = * }"#,
    r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#,
    r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch" && $.actions[2] = "nonmatch" }"#,
    r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch") && $.actions[2] = "nonmatch" }"#,
    r#"{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }"#,
    r#"{($.errorCode = "AccessDenied") && ($.userIdentity.invokedBy != "cloudfront.amazonaws.com")}"#,
];

#[test]
fn every_pattern_of_the_aws_guide_parses_and_prints_back() {
    for text in AWS_GUIDE_PATTERNS {
        assert_round_trip(text);
    }
}

#[test]
fn every_cis_pattern_prints_back_to_itself() {
    for filter in crate::cis_metric_filters()
        .iter()
        .chain(crate::cis_metric_filter_variants())
    {
        assert_round_trip(filter.pattern);
    }
}

#[test]
fn canonical_text_quotes_strings_and_spaces_operators() {
    assert_eq!(
        parse("{($.eventName=DeleteGroupPolicy)||($.eventName=DeleteRolePolicy)}").to_string(),
        r#"{ $.eventName = "DeleteGroupPolicy" || $.eventName = "DeleteRolePolicy" }"#
    );
    assert_eq!(
        parse("{$.a.b[0][12].c-d_e>=-1.5e+3}").to_string(),
        "{ $.a.b[0][12].c-d_e >= -1.5e+3 }"
    );
    assert_eq!(
        parse("{ $.a IS TRUE && $.b IS FALSE && $.c IS NULL && $.d NOT EXISTS }").to_string(),
        "{ $.a IS TRUE && $.b IS FALSE && $.c IS NULL && $.d NOT EXISTS }"
    );
    assert_eq!(
        parse(r#"{ $.a = "say \"hi\" \\ bye" }"#).to_string(),
        r#"{ $.a = "say \"hi\" \\ bye" }"#
    );
    assert_eq!(
        parse(r#"{ $.a = %^[hc]at$% }"#).to_string(),
        "{ $.a = %^[hc]at$% }"
    );
    assert_eq!(
        parse("{($.a=x)||($.b=y)&&($.c=z)}").to_string(),
        r#"{ $.a = "x" || ($.b = "y" && $.c = "z") }"#
    );
    assert_eq!(parse("{$.a[0]IS TRUE}").to_string(), "{ $.a[0] IS TRUE }");
}

/// The compact form is never longer than a text the pattern was parsed from; these are the
/// tight cases, each padded to the limit with `||$.z=1` so that the spaced form would not fit.
#[test]
fn the_compact_form_fits_wherever_the_parsed_text_did() {
    for condition in [
        "$.a[0]IS TRUE",
        "$.a[1]NOT EXISTS",
        "$.b IS NULL",
        "$.c=-5",
        "$.d<=+1e3",
        "$.e=*",
        "$.f!=%^x$%",
        r#"$.g="a b""#,
        r#"$.h="400""#,
        "$.i=abc*",
        "($.j=1||$.k=2)&&$.l=3",
    ] {
        let mut text = format!("{{{condition}");
        while text.chars().count() + "||$.z=1".len() < MAX_PATTERN_CHARACTERS {
            text.push_str("||$.z=1");
        }
        text.push('}');
        let pattern = parse(&text);
        let printed = pattern.to_string();
        assert!(
            printed.chars().count() <= text.chars().count(),
            "{condition}: {} > {}",
            printed.chars().count(),
            text.chars().count()
        );
        assert_round_trip(&text);
    }
}

#[test]
fn and_binds_tighter_than_or_and_the_canonical_text_shows_it() {
    let cis_4_1 = parse(crate::cis_metric_filters()[0].pattern);
    assert_eq!(
        cis_4_1.to_string(),
        concat!(
            r#"{ $.errorCode = "*UnauthorizedOperation" || "#,
            r#"($.errorCode = "AccessDenied*" && $.sourceIPAddress != "delivery.logs.amazonaws.com" && "#,
            r#"$.eventName != "HeadBucket") }"#
        )
    );
    assert_eq!(
        parse("{ $.a = 1 || $.b = 2 && $.c = 3 }"),
        parse("{ $.a = 1 || ($.b = 2 && $.c = 3) }")
    );
    assert_ne!(
        parse("{ $.a = 1 || $.b = 2 && $.c = 3 }"),
        parse("{ ($.a = 1 || $.b = 2) && $.c = 3 }")
    );
    assert_eq!(
        parse("{ ($.a = 1 || $.b = 2) && $.c = 3 }").to_string(),
        "{ ($.a = 1 || $.b = 2) && $.c = 3 }"
    );
}

#[test]
fn redundant_parentheses_and_nesting_of_the_same_operator_do_not_matter() {
    let flat = parse("{ $.a = 1 && $.b = 2 && $.c = 3 }");
    assert_eq!(parse("{ ($.a = 1 && $.b = 2) && $.c = 3 }"), flat);
    assert_eq!(parse("{ $.a = 1 && ($.b = 2 && ($.c = 3)) }"), flat);
    assert_eq!(parse("{ ((($.a = 1))) && $.b = 2 && $.c = 3 }"), flat);
    assert_eq!(
        parse("{ (($.a = 1 || $.b = 2)) }"),
        parse("{ $.a = 1 || $.b = 2 }")
    );
}

#[test]
fn a_bare_word_is_the_quoted_string_but_a_bare_number_is_a_number() {
    assert_eq!(
        parse("{ $.eventSource = kms.amazonaws.com }"),
        parse(r#"{ $.eventSource = "kms.amazonaws.com" }"#)
    );
    assert_eq!(
        parse("{ $.eventName = DeleteTrail }"),
        parse(r#"{ $.eventName = "DeleteTrail" }"#)
    );
    assert_ne!(parse("{ $.code = 400 }"), parse(r#"{ $.code = "400" }"#));
    assert_eq!(
        parse(r#"{ $.code = "400" }"#).to_string(),
        r#"{ $.code = "400" }"#
    );
    // Words that only look numeric are strings.
    assert_eq!(parse("{ $.a = 1.2.3 }"), parse(r#"{ $.a = "1.2.3" }"#));
    assert_eq!(parse("{ $.a = 5e }"), parse(r#"{ $.a = "5e" }"#));
    // Keywords are values after an operator.
    assert_eq!(parse("{ $.a = NULL }"), parse(r#"{ $.a = "NULL" }"#));
}

#[test]
fn a_lone_star_quoted_or_not_is_the_any_value_wildcard() {
    assert_eq!(parse(r#"{ $.latency = "*" }"#), parse("{ $.latency = * }"));
    assert_eq!(
        parse(r#"{ $.latency = "**" }"#).to_string(),
        "{ $.latency = * }"
    );
    assert_eq!(
        parse(r#"{ $.a = "***" }"#).to_string(),
        r#"{ $.a = "***" }"#,
        "a star between the wildcards is literal"
    );
}

#[test]
fn numbers_are_kept_as_written() {
    for written in ["0", "-0", "+5", "1.0", "1e-3", "1E+3", "-2.5e10", "007"] {
        let text = format!("{{ $.n = {written} }}");
        assert_eq!(parse(&text).to_string(), text);
    }
    assert_ne!(parse("{ $.n = 1 }"), parse("{ $.n = 1.0 }"));
}

#[test]
fn a_pattern_of_exactly_1024_characters_parses_and_one_more_does_not() {
    let condition = r#"$.a = "x""#;
    let mut text = format!("{{ {condition}");
    while text.chars().count() + 2 < MAX_PATTERN_CHARACTERS {
        text.push(' ');
    }
    text.push_str(" }");
    assert_eq!(text.chars().count(), MAX_PATTERN_CHARACTERS);
    parse(&text);
    let longer = format!(" {text}");
    let error = error_of(&longer);
    assert_eq!(error.column, MAX_PATTERN_CHARACTERS + 1);
    assert_eq!(
        error.to_string(),
        "column 1025: pattern is 1025 characters long, over CloudWatch's limit of 1024"
    );
}

#[test]
fn a_long_compact_pattern_prints_compact_and_still_parses() {
    // 4.4-style compact conditions: the spaced form would pass 1024 characters.
    let mut text = String::from("{");
    let mut number = 0;
    while text.chars().count() < 990 {
        if number > 0 {
            text.push_str("||");
        }
        text.push_str(&format!("($.eventName=Event{number})"));
        number += 1;
    }
    text.push('}');
    assert!(text.chars().count() <= MAX_PATTERN_CHARACTERS);
    let pattern = parse(&text);
    let printed = pattern.to_string();
    assert!(
        printed.chars().count() <= MAX_PATTERN_CHARACTERS,
        "{printed}"
    );
    assert!(printed.starts_with("{$.eventName=Event0||$.eventName=Event1||"));
    assert_round_trip(&text);
}

#[test]
fn parentheses_nest_64_deep_but_not_65() {
    let nested = |depth: usize| format!("{{ {}$.a = 1{} }}", "(".repeat(depth), ")".repeat(depth));
    parse(&nested(64));
    let error = error_of(&nested(65));
    // The 65th "(" is at column 3 + 64.
    assert_eq!(error.column, 67);
    assert_eq!(
        error.problem,
        FilterPatternProblem::NestedTooDeep { limit: 64 }
    );
}

/// (pattern, column, message after "column N: ")
const REFUSALS: &[(&str, usize, &str)] = &[
    (
        "{ $.eventName foo }",
        15,
        r#"expected a comparison operator (=, !=, <, >, <=, >=) or IS/NOT EXISTS, found "foo""#,
    ),
    (
        "ERROR",
        1,
        r#"expected "{" opening a JSON filter pattern (orgtrail evaluates JSON patterns only), found "ERROR""#,
    ),
    (
        "",
        1,
        r#"expected "{" opening a JSON filter pattern (orgtrail evaluates JSON patterns only), found end of pattern"#,
    ),
    (
        "{ }",
        3,
        r#"expected a selector ($.field) or "(", found "}""#,
    ),
    (
        "{ $.a = 1 ",
        11,
        r#"expected &&, || or "}", found end of pattern"#,
    ),
    (
        "{ $.a = 1 } x",
        13,
        r#"expected the end of the pattern after "}", found "x""#,
    ),
    (
        "{ ($.a = 1 }",
        12,
        r#"expected &&, || or ")", found "}""#,
    ),
    (
        "{ $.a = }",
        9,
        r#"expected a value (a quoted string, a word, a number, * or a %regular expression%), found "}""#,
    ),
    (
        "{ $.a == 1 }",
        8,
        r#"expected a value (a quoted string, a word, a number, * or a %regular expression%), found "=""#,
    ),
    (
        "{ $.a = $.b }",
        9,
        r#"expected a value (a quoted string, a word, a number, * or a %regular expression%), found selector $.b"#,
    ),
    (
        "{ $.a = 1 & $.b = 2 }",
        11,
        r#"expected &&, found "&""#,
    ),
    (
        "{ $.a = 1 | $.b = 2 }",
        11,
        r#"expected ||, found "|""#,
    ),
    ("{ $.a ! 1 }", 7, r#"expected != (a lone ! is not an operator), found "!""#),
    (
        r#"{ $.a = "abc }"#,
        9,
        r#"string is not closed: expected a closing ""#,
    ),
    (
        r#"{ $.a = "a\nb" }"#,
        11,
        r#"unsupported escape \n in a string: the escapes are \" and \\"#,
    ),
    (
        "{ $.a = x#y }",
        10,
        "unexpected character '#' (a value with characters other than letters, digits and _ . - + * must be quoted)",
    ),
    (
        "{ $.a = é }",
        9,
        "unexpected character 'é' (a value with characters other than letters, digits and _ . - + * must be quoted)",
    ),
    (
        r#"{ $.a = "é" && $.b foo }"#,
        20,
        r#"expected a comparison operator (=, !=, <, >, <=, >=) or IS/NOT EXISTS, found "foo""#,
    ),
    (
        "{ $.a EXISTS }",
        7,
        "EXISTS is not supported by CloudWatch: write `$.field = *` to test that a field exists",
    ),
    (
        "{ $.a IS NOT NULL }",
        10,
        "IS NOT is not supported by CloudWatch: use != for values, or NOT EXISTS for absent fields",
    ),
    ("{ $.a IS MAYBE }", 10, r#"expected TRUE, FALSE or NULL after IS, found "MAYBE""#),
    (
        "{ $.a is null }",
        7,
        r#"expected a comparison operator (=, !=, <, >, <=, >=) or IS/NOT EXISTS, found "is""#,
    ),
    ("{ $.a NOT NULL }", 11, r#"expected EXISTS after NOT, found "NULL""#),
    (
        "{ $.a[*] = 1 }",
        7,
        "the array wildcard [*] is not supported by CloudWatch: select an element by its index, e.g. [0]",
    ),
    ("{ $ = 1 }", 4, r#"expected "." and a property name after $, found " ""#),
    ("{ $[0] = 1 }", 4, r#"expected "." and a property name after $, found "[""#),
    (
        "{ $.a. = 1 }",
        7,
        r#"expected a property name (letters, digits, _ and -) after ".", found " ""#,
    ),
    (
        "{ $.a[x] = 1 }",
        7,
        r#"expected an array index (digits) after "[", found "x""#,
    ),
    (
        "{ $.a[1 = 1 }",
        8,
        r#"expected "]" after the array index, found " ""#,
    ),
    (
        "{ $.a[99999999999999999999999] = 1 }",
        7,
        "array index 99999999999999999999999 is out of range",
    ),
    ("{ $.a > abc }", 9, r#"> compares numbers only, found "abc""#),
    (r#"{ $.a <= "5" }"#, 10, r#"<= compares numbers only, found string "5""#),
    ("{ $.a < * }", 9, r#"< compares numbers only, found "*""#),
    ("{ $.a > %5% }", 9, "> compares numbers only, found regular expression %5%"),
    ("{ $.a = 1e999 }", 9, "number 1e999 is out of range"),
    (
        "{ $.a = %abc }",
        9,
        "regular expression is not closed: expected a closing %",
    ),
    ("{ $.a = %% }", 9, "regular expression is empty"),
    (
        "{ $.a = %(ab)+% }",
        10,
        "( and ) are not supported in a CloudWatch regular expression: it has no subpatterns",
    ),
    (
        "{ $.a = %something!% }",
        19,
        "character '!' is not allowed in a CloudWatch regular expression (allowed: letters, digits, : _ # = @ / ; , - and the operators ^ $ ? [ ] { } | \\ * + .)",
    ),
    (
        "{ $.a = %a b% }",
        11,
        "character ' ' is not allowed in a CloudWatch regular expression (allowed: letters, digits, : _ # = @ / ; , - and the operators ^ $ ? [ ] { } | \\ * + .)",
    ),
    (
        "{ $.a = %caf\u{e9}% }",
        13,
        "multi-byte character 'é' is not supported in a CloudWatch regular expression",
    ),
    (
        "{ $.a = %a% || $.b = %b% || $.c = %c% }",
        35,
        "a pattern may have at most 2 regular expressions",
    ),
];

#[test]
fn refusals_name_the_column_and_what_was_expected() {
    for (text, column, message) in REFUSALS {
        let error = error_of(text);
        assert_eq!(error.column, *column, "{text:?}: {error}");
        assert_eq!(
            error.to_string(),
            format!("column {column}: {message}"),
            "{text:?}"
        );
    }
}

#[test]
fn an_invalid_regular_expression_is_refused_with_the_engines_reason() {
    for text in [
        "{ $.a = %[ab% }",
        "{ $.a = %a{2,1}% }",
        "{ $.a = %*a% }",
        "{ $.a = %\\p{L}% }",
    ] {
        let error = error_of(text);
        assert_eq!(error.column, 9, "{text:?}");
        assert!(
            matches!(error.problem, FilterPatternProblem::InvalidRegex { .. }),
            "{text:?}: {error}"
        );
    }
}

#[test]
fn every_supported_regex_operator_parses() {
    for regex in [
        "AUTHORIZED",
        "^[hc]at",
        "[hc]at$",
        "colou?r",
        "[abcx-z]",
        "a{3,5}",
        "[Ee]rror|[Ff]ail",
        r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}",
        "a+b*c.",
        "key:value_#=@/;,-",
    ] {
        assert_round_trip(&format!("{{ $.message = %{regex}% }}"));
        assert_round_trip(&format!("{{ $.message != %{regex}% }}"));
    }
}

#[test]
fn errors_print_as_one_lowercase_sentence() {
    for (text, _, _) in REFUSALS {
        let message = error_of(text).problem.to_string();
        assert!(!message.ends_with('.'), "{message}");
        assert!(
            !message.starts_with(|character: char| character.is_ascii_uppercase())
                || message.starts_with("EXISTS")
                || message.starts_with("IS NOT"),
            "{message}"
        );
    }
}
