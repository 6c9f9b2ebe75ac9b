//! Properties of the filter-pattern language, with proptest:
//!
//! - generated patterns (a tree of conditions, `&&`, `||` and parentheses, written out with
//!   random spacing, quoting and redundant parentheses) parse; printing the parsed pattern and
//!   parsing the text gives the same pattern, and printing again gives the same text; the
//!   parsed pattern decides records as the tree means (a small reference evaluator here);
//! - `parse` never panics, on arbitrary strings or on CIS patterns mutated character by
//!   character — and whatever parses prints back to itself;
//! - `matches` never panics, on arbitrary JSON values (deep nesting, arrays, nulls, numbers of
//!   every kind, unicode strings) for generated and CIS patterns.
//!
//! `PROPTEST_CASES=N cargo test -p orgtrail-detection --test filter_pattern_properties` runs N
//! inputs per property (256 by default).

use orgtrail_detection::{cis_metric_filter_variants, cis_metric_filters, FilterPattern};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

// ---------------------------------------------------------------------------------------------
// Generated patterns

#[derive(Clone, Debug)]
enum Tree {
    All(Vec<Tree>),
    AnyOf(Vec<Tree>),
    Condition(Condition),
}

#[derive(Clone, Debug)]
struct Condition {
    selector: Vec<Step>,
    test: Test,
}

#[derive(Clone, Debug)]
enum Step {
    Property(&'static str),
    Index(usize),
}

#[derive(Clone, Debug)]
enum Test {
    /// `=` or `!=` with a string as written (wildcards included), quoted or not.
    Text {
        not_equal: bool,
        written: String,
        quoted: bool,
    },
    Number {
        operator: &'static str,
        written: String,
    },
    Regex {
        not_equal: bool,
        source: &'static str,
    },
    IsTrue,
    IsFalse,
    IsNull,
    NotExists,
}

const PROPERTY_NAMES: &[&str] = &["a", "b", "eventName", "x-y", "c_d", "Z9"];
const REGEXES: &[&str] = &[
    "^a",
    "b$",
    "[ab]+",
    r"\d{1,3}",
    "a|b",
    "x.?y",
    "key:v_#=@/;,-",
];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => prop::sample::select(PROPERTY_NAMES).prop_map(Step::Property),
        1 => (0usize..3).prop_map(Step::Index),
    ]
}

fn selector() -> impl Strategy<Value = Vec<Step>> {
    (
        prop::sample::select(PROPERTY_NAMES),
        prop::collection::vec(step(), 0..3),
    )
        .prop_map(|(first, rest)| {
            let mut steps = vec![Step::Property(first)];
            steps.extend(rest);
            steps
        })
}

/// A word that reads back unquoted as the same string: bare characters, not a number.
fn bare_word() -> impl Strategy<Value = String> {
    "[*]?[A-Za-z_][A-Za-z0-9_.-]{0,6}[*]?"
}

/// Any string a quoted value can hold, wildcards, quotes, backslashes and unicode included.
fn quoted_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[*]?[a-z\"\\\\ é€*.-]{0,6}[*]?",
        "\\PC{0,8}",
        Just(String::new()),
        Just("*".to_owned()),
    ]
}

fn number_text() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["", "-", "+"][..]),
        0u32..1000,
        prop::option::of(0u32..100),
        prop::option::of((prop::sample::select(&["e", "E"][..]), -5i32..5)),
    )
        .prop_map(|(sign, whole, fraction, exponent)| {
            let mut text = format!("{sign}{whole}");
            if let Some(fraction) = fraction {
                text.push_str(&format!(".{fraction}"));
            }
            if let Some((letter, power)) = exponent {
                text.push_str(&format!("{letter}{power}"));
            }
            text
        })
}

fn test() -> impl Strategy<Value = Test> {
    prop_oneof![
        4 => (any::<bool>(), bare_word(), any::<bool>()).prop_map(|(not_equal, written, quoted)| {
            Test::Text { not_equal, written, quoted }
        }),
        3 => (any::<bool>(), quoted_text()).prop_map(|(not_equal, written)| Test::Text {
            not_equal,
            written,
            quoted: true,
        }),
        3 => (
            prop::sample::select(&["=", "!=", "<", ">", "<=", ">="][..]),
            number_text(),
        )
            .prop_map(|(operator, written)| Test::Number { operator, written }),
        1 => (any::<bool>(), prop::sample::select(REGEXES))
            .prop_map(|(not_equal, source)| Test::Regex { not_equal, source }),
        1 => Just(Test::IsTrue),
        1 => Just(Test::IsFalse),
        1 => Just(Test::IsNull),
        1 => Just(Test::NotExists),
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = (selector(), test())
        .prop_map(|(selector, test)| Tree::Condition(Condition { selector, test }));
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Tree::All),
            prop::collection::vec(inner, 2..4).prop_map(Tree::AnyOf),
        ]
    })
}

impl Tree {
    /// The strings and numbers the tree compares with, for records that come close to them.
    fn literals(&self, strings: &mut Vec<String>, numbers: &mut Vec<f64>) {
        match self {
            Tree::All(members) | Tree::AnyOf(members) => {
                for member in members {
                    member.literals(strings, numbers);
                }
            }
            Tree::Condition(condition) => match &condition.test {
                Test::Text { written, .. } => strings.push(written.trim_matches('*').to_owned()),
                Test::Number { written, .. } => numbers.push(written.parse().unwrap()),
                _ => {}
            },
        }
    }

    fn regex_count(&self) -> usize {
        match self {
            Tree::All(members) | Tree::AnyOf(members) => {
                members.iter().map(Tree::regex_count).sum()
            }
            Tree::Condition(condition) => usize::from(matches!(condition.test, Test::Regex { .. })),
        }
    }
}

/// How a tree is written out: spacing and optional parentheses drawn from a seed, so the same
/// tree is written many ways.
struct Writer {
    seed: u64,
}

impl Writer {
    fn next(&mut self) -> u64 {
        // xorshift: cheap, deterministic from the proptest-chosen seed.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    fn optional_space(&mut self) -> &'static str {
        ["", "", " ", "  ", "\t", "\n"][(self.next() % 6) as usize]
    }

    fn required_space(&mut self) -> String {
        format!(" {}", self.optional_space())
    }

    fn write_pattern(&mut self, tree: &Tree) -> String {
        let (before, after) = (self.optional_space(), self.optional_space());
        format!(
            "{before}{{{}{}}}{after}",
            self.write_tree(tree, false),
            self.optional_space()
        )
    }

    /// `in_all`: the tree is a member of an `&&`, so an `||` must be parenthesized.
    fn write_tree(&mut self, tree: &Tree, in_all: bool) -> String {
        let body = match tree {
            Tree::Condition(condition) => self.write_condition(condition),
            Tree::All(members) | Tree::AnyOf(members) => {
                let is_all = matches!(tree, Tree::All(_));
                let separator = if is_all { "&&" } else { "||" };
                let written: Vec<String> = members
                    .iter()
                    .map(|member| {
                        let text = self.write_tree(member, is_all);
                        format!("{}{text}{}", self.optional_space(), self.optional_space())
                    })
                    .collect();
                let joined = written.join(separator);
                if matches!(tree, Tree::AnyOf(_)) && in_all {
                    return format!("({joined})");
                }
                joined
            }
        };
        if self.next() & 3 == 0 {
            format!("({}{body}{})", self.optional_space(), self.optional_space())
        } else {
            body
        }
    }

    fn write_condition(&mut self, condition: &Condition) -> String {
        let mut text = String::from("$");
        for step in &condition.selector {
            match step {
                Step::Property(name) => text.push_str(&format!(".{name}")),
                Step::Index(index) => text.push_str(&format!("[{index}]")),
            }
        }
        let space = self.optional_space();
        let comparison = |operator: &str, value: String, writer: &mut Writer| {
            format!("{space}{operator}{}{value}", writer.optional_space())
        };
        let rest = match &condition.test {
            Test::Text {
                not_equal,
                written,
                quoted,
            } => {
                let value = if *quoted {
                    format!("\"{}\"", written.replace('\\', "\\\\").replace('"', "\\\""))
                } else {
                    written.clone()
                };
                comparison(if *not_equal { "!=" } else { "=" }, value, self)
            }
            Test::Number { operator, written } => comparison(operator, written.clone(), self),
            Test::Regex { not_equal, source } => comparison(
                if *not_equal { "!=" } else { "=" },
                format!("%{source}%"),
                self,
            ),
            Test::IsTrue => format!("{}IS{}TRUE", self.required_space(), self.required_space()),
            Test::IsFalse => format!("{}IS{}FALSE", self.required_space(), self.required_space()),
            Test::IsNull => format!("{}IS{}NULL", self.required_space(), self.required_space()),
            Test::NotExists => {
                format!(
                    "{}NOT{}EXISTS",
                    self.required_space(),
                    self.required_space()
                )
            }
        };
        text.push_str(&rest);
        text
    }
}

// ---------------------------------------------------------------------------------------------
// A reference evaluator of the trees, written from docs/filter-patterns.md

fn resolve<'a>(record: &'a Value, selector: &[Step]) -> Option<&'a Value> {
    let mut current = record;
    for step in selector {
        current = match step {
            Step::Property(name) => current.as_object()?.get(*name)?,
            Step::Index(index) => current.as_array()?.get(*index)?,
        };
    }
    Some(current)
}

fn wildcard_matches(written: &str, text: &str) -> bool {
    let (leading, rest) = match written.strip_prefix('*') {
        Some(rest) => (true, rest),
        None => (false, written),
    };
    let (trailing, inner) = match rest.strip_suffix('*') {
        Some(inner) => (true, inner),
        None => (false, rest),
    };
    match (leading, trailing) {
        (true, true) => text.contains(inner),
        (true, false) => text.ends_with(inner),
        (false, true) => text.starts_with(inner),
        (false, false) => text == inner,
    }
}

fn is_any_value(written: &str) -> bool {
    written == "*" || written == "**"
}

fn is_number(written: &str) -> bool {
    FilterPattern::parse(&format!("{{ $.n < {written} }}")).is_ok()
}

fn reference_matches(tree: &Tree, record: &Value) -> bool {
    match tree {
        Tree::All(members) => members
            .iter()
            .all(|member| reference_matches(member, record)),
        Tree::AnyOf(members) => members
            .iter()
            .any(|member| reference_matches(member, record)),
        Tree::Condition(condition) => {
            let selected = resolve(record, &condition.selector);
            match &condition.test {
                Test::NotExists => selected.is_none(),
                Test::IsNull => selected == Some(&Value::Null),
                Test::IsTrue => selected == Some(&Value::Bool(true)),
                Test::IsFalse => selected == Some(&Value::Bool(false)),
                Test::Text {
                    not_equal,
                    written,
                    quoted,
                } => {
                    if !quoted && is_number(written) {
                        unreachable!("bare_word() makes no numbers");
                    }
                    match selected {
                        Some(Value::String(text)) => wildcard_matches(written, text) != *not_equal,
                        Some(Value::Number(_)) => is_any_value(written) && !not_equal,
                        _ => false,
                    }
                }
                Test::Number { operator, written } => match selected {
                    Some(Value::Number(number)) => {
                        let left = number.as_f64().unwrap();
                        let right: f64 = written.parse().unwrap();
                        match *operator {
                            "=" => left == right,
                            "!=" => left != right,
                            "<" => left < right,
                            ">" => left > right,
                            "<=" => left <= right,
                            _ => left >= right,
                        }
                    }
                    _ => false,
                },
                Test::Regex { not_equal, source } => match selected {
                    Some(Value::String(text)) => {
                        let regex = regex_lite_free_match(source, text);
                        regex != *not_equal
                    }
                    _ => false,
                },
            }
        }
    }
}

/// The regular expressions of `REGEXES`, decided by hand so the reference does not share the
/// engine it checks.
fn regex_lite_free_match(source: &str, text: &str) -> bool {
    let bytes = text.as_bytes();
    match source {
        "^a" => text.starts_with('a'),
        "b$" => text.ends_with('b'),
        "[ab]+" => text.contains(['a', 'b']),
        r"\d{1,3}" => bytes.iter().any(u8::is_ascii_digit),
        "a|b" => text.contains(['a', 'b']),
        "x.?y" => {
            text.contains("xy")
                || text
                    .char_indices()
                    .filter(|(_, character)| *character == 'x')
                    .any(|(position, _)| {
                        let mut after = text[position + 1..].chars();
                        after.next().is_some_and(|character| character != '\n')
                            && after.next() == Some('y')
                    })
        }
        "key:v_#=@/;,-" => text.contains("key:v_#=@/;,-"),
        other => unreachable!("no reference for {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Records

fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("finite", Number::from_f64)
            .prop_map(Value::Number),
        (-1000i32..1000, 0u32..100).prop_map(|(whole, hundredths)| {
            Value::from(f64::from(whole) + f64::from(hundredths) / 100.0)
        }),
    ]
}

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        "[ab*xy\"\\\\0-9.\n]{0,6}",
        prop::sample::select(&["a", "b", "ab", "xy", "x\ny", "key:v_#=@/;,-", "true", "400"][..])
            .prop_map(str::to_owned),
    ]
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(PROPERTY_NAMES).prop_map(str::to_owned),
        1 => "\\PC{0,6}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        json_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(json_key(), inner, 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Values built from the tree's own strings and numbers: the strings with and without a
/// character before or after, the numbers and their neighbours — so wildcards meet strings
/// they almost match and comparisons meet their bounds — and the values no comparison
/// matches (null, booleans, an empty object and array).
fn values_near(tree: &Tree) -> BoxedStrategy<Value> {
    let mut strings = vec!["a".to_owned(), "xy".to_owned()];
    let mut numbers = vec![0.0];
    tree.literals(&mut strings, &mut numbers);
    let near_string = (
        prop::sample::select(strings),
        prop::sample::select(&["", "", "a", "z*"][..]),
        prop::sample::select(&["", "", "b", "*z"][..]),
    )
        .prop_map(|(string, before, after)| Value::String(format!("{before}{string}{after}")));
    let near_number = (prop::sample::select(numbers), -1i32..=1)
        .prop_map(|(number, offset)| Value::from(number + f64::from(offset)));
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Object(Map::new())),
        1 => Just(Value::Array(Vec::new())),
        4 => near_number,
        6 => near_string,
    ]
    .boxed()
}

/// Records of `values_near` under the property names the selectors use, so conditions resolve.
fn records_near(tree: &Tree) -> impl Strategy<Value = Vec<Value>> {
    let value = values_near(tree).prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            1 => prop::collection::vec(inner.clone(), 1..4).prop_map(Value::Array),
            3 => prop::collection::btree_map(
                prop::sample::select(PROPERTY_NAMES).prop_map(str::to_owned),
                inner,
                1..6,
            )
            .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    });
    prop::collection::vec(value, 4..12)
}

/// A record in which the selector resolves to `leaf`: objects for property steps, arrays
/// padded with nulls for index steps.
fn record_with_value_at(selector: &[Step], leaf: Value) -> Value {
    selector.iter().rev().fold(leaf, |value, step| match step {
        Step::Property(name) => {
            let mut members = Map::new();
            members.insert((*name).to_owned(), value);
            Value::Object(members)
        }
        Step::Index(index) => {
            let mut elements = vec![Value::Null; *index];
            elements.push(value);
            Value::Array(elements)
        }
    })
}

/// A value nested `depth` levels down a path of the generated property names and indexes, so
/// selectors walk deep.
fn deeply_nested(depth: usize, leaf: Value, seed: u64) -> Value {
    let mut value = leaf;
    for level in 0..depth {
        let choice = (seed.rotate_left(level as u32) % 3) as usize;
        value = if choice == 0 {
            Value::Array(vec![value])
        } else {
            let mut members = Map::new();
            members.insert(
                PROPERTY_NAMES[level % PROPERTY_NAMES.len()].to_owned(),
                value,
            );
            Value::Object(members)
        };
    }
    value
}

fn cis_patterns() -> Vec<FilterPattern> {
    cis_metric_filters()
        .iter()
        .chain(cis_metric_filter_variants())
        .map(|filter| FilterPattern::parse(filter.pattern).unwrap())
        .collect()
}

fn assert_prints_back(pattern: &FilterPattern) -> Result<(), TestCaseError> {
    let printed = pattern.to_string();
    let reparsed = FilterPattern::parse(&printed)
        .map_err(|error| TestCaseError::fail(format!("{printed:?} does not parse: {error}")))?;
    prop_assert_eq!(&reparsed, pattern, "printed as {:?}", printed);
    prop_assert_eq!(reparsed.to_string(), printed);
    Ok(())
}

proptest! {
    #[test]
    fn generated_patterns_parse_print_back_and_mean_what_they_say(
        (tree, near) in tree().prop_flat_map(|tree| {
            let near = records_near(&tree);
            (Just(tree), near)
        }),
        seed in 1u64..,
        random in prop::collection::vec(json_value(), 1..4),
    ) {
        prop_assume!(tree.regex_count() <= 2);
        let text = Writer { seed }.write_pattern(&tree);
        prop_assume!(text.chars().count() <= 1024);
        let pattern = FilterPattern::parse(&text)
            .map_err(|error| TestCaseError::fail(format!("{text:?}: {error}")))?;
        assert_prints_back(&pattern)?;
        // The same tree written another way is the same pattern.
        let other = Writer { seed: seed.wrapping_mul(31).max(1) }.write_pattern(&tree);
        if other.chars().count() <= 1024 {
            prop_assert_eq!(&FilterPattern::parse(&other).unwrap(), &pattern);
        }
        for record in near.iter().chain(&random) {
            prop_assert_eq!(
                pattern.matches(record),
                reference_matches(&tree, record),
                "{} on {}", text, record
            );
        }
    }

    #[test]
    fn a_generated_condition_decides_the_value_it_selects_as_documented(
        (condition, values) in (selector(), test()).prop_flat_map(|(selector, test)| {
            let tree = Tree::Condition(Condition { selector, test });
            let values = prop::collection::vec(values_near(&tree), 8..16);
            (Just(tree), values)
        }),
    ) {
        let Tree::Condition(ref inner) = condition else { unreachable!() };
        let text = Writer { seed: 7 }.write_pattern(&condition);
        prop_assume!(text.chars().count() <= 1024);
        let pattern = FilterPattern::parse(&text)
            .map_err(|error| TestCaseError::fail(format!("{text:?}: {error}")))?;
        for value in values {
            let record = record_with_value_at(&inner.selector, value);
            prop_assert_eq!(
                pattern.matches(&record),
                reference_matches(&condition, &record),
                "{} on {}", text, record
            );
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,80}") {
        if let Ok(pattern) = FilterPattern::parse(&text) {
            assert_prints_back(&pattern)?;
        }
    }

    #[test]
    fn parse_never_panics_on_text_made_of_the_languages_characters(
        text in "[{}()$.a-z0-9 =!<>&|\"\\\\*%_\\[\\]^+-]{0,60}",
    ) {
        if let Ok(pattern) = FilterPattern::parse(&text) {
            assert_prints_back(&pattern)?;
        }
    }

    #[test]
    fn parse_never_panics_on_mutated_cis_patterns(
        which in 0usize..17,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 1..6),
    ) {
        let filters: Vec<_> = cis_metric_filters().iter().chain(cis_metric_filter_variants()).collect();
        let mut characters: Vec<char> = filters[which].pattern.chars().collect();
        for (index, character, kind) in edits {
            let position = index.index(characters.len() + 1);
            match kind {
                0 => characters.insert(position, character),
                1 if position < characters.len() => { characters.remove(position); }
                _ if position < characters.len() => characters[position] = character,
                _ => characters.push(character),
            }
        }
        let text: String = characters.into_iter().collect();
        if let Ok(pattern) = FilterPattern::parse(&text) {
            assert_prints_back(&pattern)?;
        }
    }

    #[test]
    fn matches_never_panics_on_arbitrary_records(
        tree in tree(),
        seed in 1u64..,
        record in json_value(),
        depth in 0usize..300,
    ) {
        let text = Writer { seed }.write_pattern(&tree);
        let generated = FilterPattern::parse(&text).ok();
        let deep = deeply_nested(depth, record.clone(), seed);
        for pattern in generated.iter().chain(cis_patterns().iter()) {
            let _ = pattern.matches(&record);
            let _ = pattern.matches(&deep);
        }
    }
}
