//! Evaluation tests: the AWS guide's worked examples with their example log events, then one
//! test per open point decided in `docs/filter-patterns.md`.

use serde_json::{json, Value};

use super::FilterPattern;

fn matches(pattern: &str, record: &Value) -> bool {
    FilterPattern::parse(pattern)
        .unwrap_or_else(|error| panic!("{pattern:?} does not parse: {error}"))
        .matches(record)
}

/// The example log event of the guide's "Matching terms in JSON log events".
fn guide_trail_event() -> Value {
    json!({
        "eventType": "UpdateTrail",
        "sourceIPAddress": "111.111.111.111",
        "arrayKey": ["value", "another value"],
        "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
        "SomeObject": null
    })
}

/// The example JSON object of the guide's "Using compound expressions".
fn guide_users_object() -> Value {
    json!({
        "user": {"id": 1, "email": "John.Stiles@example.com"},
        "users": [
            {"id": 2, "email": "John.Doe@example.com"},
            {"id": 3, "email": "Jane.Doe@example.com"}
        ],
        "actions": ["GET", "PUT", "DELETE"],
        "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]]
    })
}

#[test]
fn the_guides_single_condition_examples_match_its_example_event() {
    let event = guide_trail_event();
    // "matches the string UpdateTrail in the property eventType"
    assert!(matches(r#"{ $.eventType = "UpdateTrail" }"#, &event));
    // "matches the property sourceIPAddress because it doesn't contain a number with the
    // prefix 123.123"
    assert!(matches("{ $.sourceIPAddress != 123.123.* }", &event));
    // "matches the element value in the array arrayKey"
    assert!(matches(r#"{ $.arrayKey[0] = "value" }"#, &event));
    // "matches the object "id":2 in the array objectList"
    assert!(matches("{ $.objectList[1].id = 2 }", &event));
    // "returns JSON logs where the value of SomeObject is NULL"
    assert!(matches("{ $.SomeObject IS NULL }", &event));
    // "return JSON logs that don't contain the field SomeOtherObject"
    assert!(matches("{ $.SomeOtherObject NOT EXISTS }", &event));
}

#[test]
fn the_guides_compound_examples_match_as_it_says() {
    let object = guide_users_object();
    assert!(matches(
        r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#,
        &object
    ));
    // Matches through precedence: the && binds first.
    assert!(matches(
        r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch" && $.actions[2] = "nonmatch" }"#,
        &object
    ));
    assert!(!matches(
        r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch") && $.actions[2] = "nonmatch" }"#,
        &object
    ));
    assert!(!matches(
        r#"{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }"#,
        &object
    ));
    // Nested indexes select the element itself.
    assert!(matches("{ $.coordinates[0][1] = 1 }", &object));
    assert!(matches("{ $.coordinates[2][0] >= 7 }", &object));
}

#[test]
fn a_selector_pointing_to_an_array_or_object_matches_nothing_not_even_not_equal() {
    let object = guide_users_object();
    // The guide: "both {$.users = 1} and {$.users != 1} will fail to match".
    assert!(!matches("{ $.users = 1 }", &object));
    assert!(!matches("{ $.users != 1 }", &object));
    assert!(!matches("{ $.user != \"x\" }", &object));
    assert!(!matches("{ $.user = * }", &object));
    assert!(!matches("{ $.user NOT EXISTS }", &object));
}

#[test]
fn the_guides_numeric_examples_compare_numbers() {
    let event = json!({
        "bandwidth": 80, "latency": 49.5, "refreshRate": 60, "responseTime": 5,
        "errorCode": 400, "number": [0.001, 999]
    });
    assert!(matches("{ $.bandwidth > 75 }", &event));
    assert!(matches("{ $.latency < 50 }", &event));
    assert!(matches("{ $.refreshRate >= 60 }", &event));
    assert!(matches("{ $.responseTime <= 5 }", &event));
    assert!(matches("{ $.errorCode = 400}", &event));
    assert!(matches("{ $.errorCode != 500 }", &event));
    assert!(matches("{ $.number[0] = 1e-3 }", &event));
    assert!(matches("{ $.number[1] != 1e+3 }", &event));
    assert!(!matches("{ $.number[1] > 1e+3 }", &event));
    assert!(matches("{ $.latency = * }", &event));
    assert!(matches("{ $.errorCode = 4.0e2 }", &event));
    assert!(matches(
        "{ $.errorCode > -1 && $.errorCode < +401 }",
        &event
    ));
}

#[test]
fn integers_beyond_2_to_the_53_compare_exactly() {
    let event = json!({"big": 9_007_199_254_740_993_u64, "negative": -9_007_199_254_740_993_i64});
    assert!(matches("{ $.big = 9007199254740993 }", &event));
    assert!(!matches("{ $.big = 9007199254740992 }", &event));
    assert!(matches("{ $.big > 9007199254740992 }", &event));
    assert!(matches("{ $.negative < -9007199254740992 }", &event));
}

/// Open point: `!=` on a field that is missing, null, boolean, object or array does not match.
/// Source: the guide (arrays, objects) and CloudWatch's console (DataBiosphere/azul#5884, 2024).
#[test]
fn not_equal_matches_only_a_string_or_number_that_differs() {
    let azul_test_event = json!({
        "errorCode": "AccessDenied",
        "userIdentity": {"accountId": "anonymous"}
    });
    assert!(!matches(
        r#"{($.errorCode = "AccessDenied") && ($.userIdentity.invokedBy != "cloudfront.amazonaws.com")}"#,
        &azul_test_event
    ));
    for value in [
        json!(null),
        json!(true),
        json!(false),
        json!({}),
        json!([]),
        json!(["x"]),
    ] {
        let event = json!({ "field": value });
        assert!(!matches(r#"{ $.field != "x" }"#, &event), "{event}");
        assert!(!matches("{ $.field != 5 }", &event), "{event}");
        assert!(!matches(r#"{ $.field = "x" }"#, &event), "{event}");
    }
    assert!(!matches(r#"{ $.missing != "x" }"#, &json!({})));
    assert!(matches(r#"{ $.field != "x" }"#, &json!({"field": "y"})));
    assert!(matches("{ $.field != 5 }", &json!({"field": 6})));
}

/// Open point: a number is compared with JSON numbers only, and a string with JSON strings
/// only: `= 400` does not match `"400"`, `= "400"` does not match `400`.
#[test]
fn numbers_and_strings_are_not_converted_into_each_other() {
    let as_string = json!({"status": "400"});
    let as_number = json!({"status": 400});
    assert!(!matches("{ $.status = 400 }", &as_string));
    assert!(!matches("{ $.status != 400 }", &as_string));
    assert!(!matches("{ $.status > 300 }", &as_string));
    assert!(matches(r#"{ $.status = "400" }"#, &as_string));
    assert!(!matches(r#"{ $.status = "400" }"#, &as_number));
    assert!(!matches(r#"{ $.status != "400" }"#, &as_number));
    assert!(!matches("{ $.status = 4* }", &as_number));
    assert!(matches("{ $.status = 4* }", &as_string));
    assert!(matches("{ $.status = 400 }", &as_number));
    assert!(matches("{ $.status = 400.0 }", &as_number));
}

/// Open point: `= true` is a comparison with the string "true"; booleans are tested with
/// `IS TRUE` / `IS FALSE`, the only boolean tests the guide documents.
#[test]
fn booleans_are_tested_with_is_true_and_is_false_only() {
    let boolean = json!({"flag": true, "off": false});
    let text = json!({"flag": "true"});
    assert!(!matches("{ $.flag = true }", &boolean));
    assert!(!matches("{ $.flag != true }", &boolean));
    assert!(matches("{ $.flag = true }", &text));
    assert!(matches("{ $.flag IS TRUE }", &boolean));
    assert!(!matches("{ $.flag IS FALSE }", &boolean));
    assert!(matches("{ $.off IS FALSE }", &boolean));
    assert!(!matches("{ $.flag IS TRUE }", &text));
    assert!(!matches("{ $.missing IS FALSE }", &boolean));
}

/// Open point: `IS NULL` needs the field to exist with the value null; a missing field is
/// `NOT EXISTS`. Source: the guide ("fields that contain the values NULL") and the AWS CDK's
/// `FilterPattern.isNull` ("matches if the field exists and has the special value 'null'").
#[test]
fn is_null_needs_the_field_and_not_exists_needs_its_absence() {
    let event = json!({"nothing": null, "text": "x", "list": [1]});
    assert!(matches("{ $.nothing IS NULL }", &event));
    assert!(!matches("{ $.missing IS NULL }", &event));
    assert!(!matches("{ $.text IS NULL }", &event));
    assert!(!matches("{ $.nothing NOT EXISTS }", &event));
    assert!(matches("{ $.missing NOT EXISTS }", &event));
    // A selector that cannot be followed does not resolve.
    assert!(matches("{ $.text.inner NOT EXISTS }", &event));
    assert!(matches("{ $.nothing.inner NOT EXISTS }", &event));
    assert!(matches("{ $.list[1] NOT EXISTS }", &event));
    assert!(matches("{ $.list.length NOT EXISTS }", &event));
    assert!(!matches("{ $.list[0] NOT EXISTS }", &event));
}

/// Open point: `*` is a wildcard only as the first or last character of a value; inside a
/// value it is a literal star ("Ev*ent only matches the string Ev*ent").
#[test]
fn stars_are_wildcards_only_at_the_ends_of_a_value() {
    let event = json!({
        "literal": "Ev*ent", "plain": "Event", "code": "Client.UnauthorizedOperation",
        "denied": "AccessDeniedException", "empty": "", "number": 12, "flag": true,
        "nothing": null
    });
    assert!(matches(r#"{ $.literal = "Ev*ent" }"#, &event));
    assert!(!matches(r#"{ $.plain = "Ev*ent" }"#, &event));
    assert!(matches(r#"{ $.code = "*UnauthorizedOperation" }"#, &event));
    assert!(matches(r#"{ $.denied = "AccessDenied*" }"#, &event));
    assert!(matches("{ $.denied = AccessDenied* }", &event));
    assert!(matches(r#"{ $.denied = "*Denied*" }"#, &event));
    assert!(!matches(r#"{ $.denied = "*denied*" }"#, &event));
    assert!(matches(r#"{ $.code != "AccessDenied*" }"#, &event));
    // `*` alone: any string or number — the guide's `{ $.latency = * }`.
    assert!(matches("{ $.empty = * }", &event));
    assert!(matches(r#"{ $.number = "*" }"#, &event));
    assert!(!matches("{ $.flag = * }", &event));
    assert!(!matches("{ $.nothing = * }", &event));
    assert!(!matches("{ $.missing = * }", &event));
    assert!(!matches("{ $.plain != * }", &event));
    // "123.123.*" from the guide, both ways.
    assert!(matches(
        "{ $.ip = 123.123.* }",
        &json!({"ip": "123.123.4.5"})
    ));
    assert!(!matches(
        "{ $.ip = 123.123.* }",
        &json!({"ip": "124.123.4.5"})
    ));
}

#[test]
fn patterns_are_case_sensitive_in_selectors_and_values() {
    let event = json!({"eventName": "ConsoleLogin", "MFAUsed": "No"});
    assert!(matches("{ $.eventName = ConsoleLogin }", &event));
    assert!(!matches("{ $.eventName = consolelogin }", &event));
    assert!(!matches("{ $.EventName = ConsoleLogin }", &event));
    // Sigma's 'NO' would match "No"; CloudWatch's does not.
    assert!(!matches(r#"{ $.MFAUsed = "NO" }"#, &event));
}

/// CIS 4.1 (v2.0 text) reads `A || (B && C && D)`.
#[test]
fn cis_4_1_relies_on_and_binding_tighter_than_or() {
    let cis_4_1 = crate::cis_metric_filters()[0].pattern;
    let head_bucket_denied = json!({"errorCode": "AccessDenied", "eventName": "HeadBucket",
                                    "sourceIPAddress": "192.0.2.1"});
    let head_bucket_unauthorized = json!({"errorCode": "Client.UnauthorizedOperation",
                                          "eventName": "HeadBucket", "sourceIPAddress": "192.0.2.1"});
    let log_delivery_denied = json!({"errorCode": "AccessDenied", "eventName": "PutObject",
                                     "sourceIPAddress": "delivery.logs.amazonaws.com"});
    let denied = json!({"errorCode": "AccessDenied", "eventName": "PutObject",
                        "sourceIPAddress": "192.0.2.1"});
    assert!(!matches(cis_4_1, &head_bucket_denied));
    assert!(matches(cis_4_1, &head_bucket_unauthorized));
    assert!(!matches(cis_4_1, &log_delivery_denied));
    assert!(matches(cis_4_1, &denied));
}

/// CIS 4.3 and the 2014 record format without `eventType`: the documented `!=` keeps it out;
/// the variant in `docs/filter-patterns.md` brings it in.
#[test]
fn cis_4_3_misses_a_root_record_without_event_type_and_the_documented_variant_catches_it() {
    let cis_4_3 = crate::cis_metric_filters()[2].pattern;
    let root_login_2014 = json!({
        "eventVersion": "1.01",
        "userIdentity": {"type": "Root", "accountId": "974349055189"},
        "eventName": "ConsoleLogin",
        "additionalEventData": {"MFAUsed": "No"}
    });
    let root_login_now = json!({
        "userIdentity": {"type": "Root"}, "eventName": "ConsoleLogin",
        "eventType": "AwsConsoleSignIn"
    });
    let root_by_service = json!({
        "userIdentity": {"type": "Root", "invokedBy": "autoscaling.amazonaws.com"},
        "eventType": "AwsApiCall"
    });
    assert!(!matches(cis_4_3, &root_login_2014));
    assert!(matches(cis_4_3, &root_login_now));
    assert!(!matches(cis_4_3, &root_by_service));
    let including_old_records = r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && ($.eventType != "AwsServiceEvent" || $.eventType NOT EXISTS) }"#;
    assert!(matches(including_old_records, &root_login_2014));
    assert!(matches(including_old_records, &root_login_now));
    assert!(!matches(including_old_records, &root_by_service));
}

#[test]
fn regular_expressions_search_strings_with_the_guides_operators() {
    let message = |text: &str| json!({ "message": text });
    // The guide's standalone example: %AUTHORIZED% finds the word inside a longer text.
    assert!(matches(
        "{ $.message = %AUTHORIZED% }",
        &message("[ERROR 401] UNAUTHORIZED REQUEST")
    ));
    assert!(matches(
        "{ $.message = %AUTHORIZED% }",
        &message("[SUCCESS 200] AUTHORIZED REQUEST")
    ));
    assert!(matches("{ $.message = %^[hc]at% }", &message("hat trick")));
    assert!(!matches("{ $.message = %^[hc]at% }", &message("that")));
    assert!(matches("{ $.message = %[hc]at$% }", &message("that")));
    assert!(matches("{ $.message = %colou?r% }", &message("color")));
    assert!(matches("{ $.message = %colou?r% }", &message("colour")));
    assert!(matches("{ $.message = %[abcx-z]% }", &message("y")));
    assert!(matches("{ $.message = %a{3,5}% }", &message("baaab")));
    assert!(!matches("{ $.message = %^a{3,5}$% }", &message("aa")));
    assert!(matches(
        "{ $.message = %[Ee]rror|[Ff]ail% }",
        &message("it will fail")
    ));
    assert!(matches(
        r"{ $.message = %\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}% }",
        &message("from 10.0.0.1")
    ));
    assert!(!matches(
        r"{ $.message != %\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}% }",
        &message("from 10.0.0.1")
    ));
    // Classes are ASCII, as CloudWatch's: an Arabic-Indic digit is no \d.
    assert!(!matches(r"{ $.message = %\d% }", &message("\u{663}")));
    // A regular expression is searched in strings only.
    assert!(!matches("{ $.message = %4% }", &json!({"message": 404})));
    assert!(!matches("{ $.message != %4% }", &json!({"message": 404})));
    assert!(!matches("{ $.message != %4% }", &json!({})));
}

#[test]
fn selectors_take_hyphens_and_underscores_and_stop_at_missing_steps() {
    let record = json!({
        "requestParameters": {"x-amz-acl": ["private"], "bucket_name": "b"},
        "resources": [{"ARN": "arn:aws:s3:::b"}]
    });
    assert!(matches(
        r#"{ $.requestParameters.x-amz-acl[0] = "private" }"#,
        &record
    ));
    assert!(matches("{ $.requestParameters.bucket_name = b }", &record));
    assert!(matches(
        r#"{ $.resources[0].ARN = "arn:aws:s3:::b" }"#,
        &record
    ));
    assert!(!matches(
        r#"{ $.resources[1].ARN = "arn:aws:s3:::b" }"#,
        &record
    ));
    assert!(matches("{ $.resources[1].ARN NOT EXISTS }", &record));
}

#[test]
fn a_record_that_is_not_an_object_matches_only_not_exists() {
    for record in [
        json!(null),
        json!(1),
        json!("text"),
        json!([1, 2]),
        json!(true),
    ] {
        assert!(!matches("{ $.a = * }", &record), "{record}");
        assert!(!matches("{ $.a != 1 }", &record), "{record}");
        assert!(!matches("{ $.a IS NULL }", &record), "{record}");
        assert!(matches("{ $.a NOT EXISTS }", &record), "{record}");
    }
}

/// Patterns are parsed once and shared by the threads that evaluate records.
#[test]
fn a_pattern_can_be_shared_between_threads() {
    fn assert_send_and_sync<T: Send + Sync>() {}
    assert_send_and_sync::<FilterPattern>();
}

/// Conditions on the same field share one walk to it; beyond the remembered ones, each
/// condition walks on its own — either way the answers are the same.
#[test]
fn many_distinct_selectors_and_repeated_ones_decide_alike() {
    let record = json!({
        "f0": 0, "f1": 1, "f2": 2, "f3": 3, "f4": 4, "f5": 5,
        "f6": 6, "f7": 7, "f8": 8, "f9": 9, "f10": {"f0": "nested"}
    });
    let all_ten = (0..10)
        .map(|number| format!("$.f{number} = {number}"))
        .collect::<Vec<_>>()
        .join(" && ");
    assert!(matches(
        &format!("{{ {all_ten} && $.f9 = 9 && $.f0 != 1 }}"),
        &record
    ));
    assert!(!matches(&format!("{{ {all_ten} && $.f9 = 8 }}"), &record));
    assert!(matches(
        r#"{ ($.f0 = 1 || $.f0 = 0) && $.f10.f0 = "nested" && $.f0 = * && $.f10.f0 != "x" }"#,
        &record
    ));
}
