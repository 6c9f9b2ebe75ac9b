//! `SigmaRuleSet`: Sigma's semantics on CloudTrail-shaped records, the object-as-text adapter,
//! the order and uniqueness of matches, and what `compile` refuses.

use serde_json::{json, Value};

use super::*;

/// A rule with this id and detection (indented under `detection:`).
fn rule(rule_id: &str, detection: &str) -> SigmaRule {
    let yaml = format!(
        "title: Rule {rule_id}
id: {rule_id}
author: orgtrail tests
logsource:
    product: aws
    service: cloudtrail
detection:
{detection}
level: medium
"
    );
    parse_sigma_rule(&yaml).unwrap_or_else(|error| panic!("{rule_id}: {error}"))
}

/// Whether a one-rule set built from `detection` matches `record`.
fn matches(detection: &str, record: &Value) -> bool {
    let set = SigmaRuleSet::compile(&[rule("only", detection)]).unwrap();
    !set.matches(record).is_empty()
}

fn builtin(file_name: &str) -> SigmaRule {
    let builtin = builtin_sigma_rules()
        .iter()
        .find(|rule| rule.file_name == file_name)
        .unwrap();
    parse_sigma_rule(builtin.yaml).unwrap()
}

fn put_bucket_versioning(status: &str) -> Value {
    json!({
        "eventVersion": "1.08",
        "eventSource": "s3.amazonaws.com",
        "eventName": "PutBucketVersioning",
        "requestParameters": {
            "bucketName": "logs",
            "VersioningConfiguration": {"Status": status, "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/"},
            "versioning": ""
        },
        "responseElements": null
    })
}

#[test]
fn contains_on_an_object_field_matches_the_object_s_json_text() {
    let versioning =
        SigmaRuleSet::compile(&[builtin("aws_disable_bucket_versioning.yml")]).unwrap();
    assert_eq!(
        versioning
            .matches(&put_bucket_versioning("Suspended"))
            .len(),
        1
    );
    assert!(versioning
        .matches(&put_bucket_versioning("Enabled"))
        .is_empty());
    // The text is serde_json's compact form.
    let record = json!({"requestParameters": {"a": {"b": 1}}});
    assert!(matches(
        "    selection:\n        requestParameters|contains: '{\"a\":{\"b\":1}}'\n    condition: selection",
        &record
    ));
    // Nested objects, reached by a dotted path, and objects inside arrays are text too.
    let record = json!({"requestParameters": {"items": [{"state": "Failure"}], "nested": {"deep": {"x": "Failure"}}}});
    assert!(matches(
        "    selection:\n        requestParameters.items|contains: 'failure'\n    condition: selection",
        &record
    ));
    assert!(matches(
        "    selection:\n        requestParameters.nested|contains: '\"x\":\"Failure\"'\n    condition: selection",
        &record
    ));
}

#[test]
fn without_the_adapter_rsigma_would_never_match_an_object() {
    // Why the adapter exists: rsigma's own JSON event answers "no match" for a string matcher
    // on an object, so the built-in S3 versioning rule could never fire.
    let rule = builtin("aws_disable_bucket_versioning.yml");
    let collection = rsigma_parser::parse_sigma_yaml(&rule.yaml).unwrap();
    let mut engine = rsigma_eval::Engine::new();
    engine.add_collection(&collection).unwrap();
    let record = put_bucket_versioning("Suspended");
    assert!(engine
        .evaluate(&rsigma_eval::JsonEvent::borrow(&record))
        .is_empty());
    assert_eq!(
        engine
            .evaluate(&cloudtrail_event::CloudTrailEvent::new(&record))
            .len(),
        1
    );
}

#[test]
fn a_filter_on_an_object_field_excludes_through_the_adapter() {
    let export = SigmaRuleSet::compile(&[builtin("aws_ec2_vm_export_failure.yml")]).unwrap();
    let mut record = json!({
        "eventSource": "ec2.amazonaws.com",
        "eventName": "CreateInstanceExportTask",
        "responseElements": {"exportTask": {"state": "active"}}
    });
    assert_eq!(export.matches(&record).len(), 1);
    record["responseElements"]["exportTask"]["statusMessage"] = json!("Failure: no space");
    assert!(export.matches(&record).is_empty());
    record["responseElements"] = Value::Null;
    record["errorCode"] = json!("Client.UnauthorizedOperation");
    assert!(export.matches(&record).is_empty());
}

#[test]
fn string_matching_is_case_insensitive_unless_cased() {
    let record = json!({"eventName": "ConsoleLogin", "additionalEventData": {"MFAUsed": "No"}});
    assert!(matches(
        "    selection:\n        eventName: consolelogin\n        additionalEventData.MFAUsed: 'NO'\n    condition: selection",
        &record
    ));
    assert!(!matches(
        "    selection:\n        eventName|cased: consolelogin\n    condition: selection",
        &record
    ));
    assert!(matches(
        "    selection:\n        eventName|startswith: CONSOLE\n    condition: selection",
        &record
    ));
    assert!(matches(
        "    selection:\n        eventName: 'Console*'\n    condition: selection",
        &record
    ));
}

#[test]
fn re_is_a_case_sensitive_search_and_cidr_matches_addresses() {
    let record = json!({
        "userIdentity": {"arn": "arn:aws:sts::123456789012:assumed-role/aws:ec2-instance/i-0abc"},
        "sourceIPAddress": "203.0.113.77"
    });
    assert!(matches(
        "    selection:\n        userIdentity.arn|re: ':assumed-role/aws:.+'\n    condition: selection",
        &record
    ));
    assert!(!matches(
        "    selection:\n        userIdentity.arn|re: ':ASSUMED-ROLE/'\n    condition: selection",
        &record
    ));
    assert!(matches(
        "    selection:\n        sourceIPAddress|cidr: 203.0.113.0/24\n    condition: selection",
        &record
    ));
    assert!(!matches(
        "    selection:\n        sourceIPAddress|cidr: 198.51.100.0/24\n    condition: selection",
        &record
    ));
}

#[test]
fn one_of_selection_pattern_and_not_work_as_sigma_says() {
    let detection = "    selection_delete:
        eventName: DeleteBucket
    selection_policy:
        eventName: DeleteBucketPolicy
    filter:
        userIdentity.type: AWSService
    condition: 1 of selection_* and not filter";
    assert!(matches(
        detection,
        &json!({"eventName": "DeleteBucketPolicy"})
    ));
    assert!(matches(
        detection,
        &json!({"eventName": "DeleteBucket", "userIdentity": {"type": "IAMUser"}})
    ));
    assert!(!matches(
        detection,
        &json!({"eventName": "DeleteBucket", "userIdentity": {"type": "AWSService"}})
    ));
    assert!(!matches(detection, &json!({"eventName": "CreateBucket"})));
}

#[test]
fn null_matches_a_missing_field_or_json_null_and_not_over_a_missing_field_is_true() {
    let detection = "    selection:\n        eventName: DeleteFlowLogs\n        errorCode: null\n    condition: selection";
    assert!(matches(detection, &json!({"eventName": "DeleteFlowLogs"})));
    assert!(matches(
        detection,
        &json!({"eventName": "DeleteFlowLogs", "errorCode": null})
    ));
    assert!(!matches(
        detection,
        &json!({"eventName": "DeleteFlowLogs", "errorCode": "AccessDenied"})
    ));
    let not_service_event = "    selection:\n        userIdentity.type: Root\n    filter:\n        eventType: AwsServiceEvent\n    condition: selection and not filter";
    assert!(matches(
        not_service_event,
        &json!({"userIdentity": {"type": "Root"}})
    ));
}

#[test]
fn arrays_match_when_any_element_does_and_booleans_match_their_text() {
    let layers = json!({"requestParameters": {"layers": ["arn:aws:lambda:us-east-1:123456789012:layer:x:1"]}});
    assert!(matches(
        "    selection:\n        requestParameters.layers|contains: 'layer:x'\n    condition: selection",
        &layers
    ));
    let containers = json!({"requestParameters": {"containerDefinitions": [
        {"command": ["sh", "-c", "echo hi"]},
        {"command": ["sh", "-c", "curl 169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]}
    ]}});
    assert!(matches(
        "    selection:\n        requestParameters.containerDefinitions.command|contains: '$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI'\n    condition: selection",
        &containers
    ));
    let restore = json!({"responseElements": {"publiclyAccessible": true}, "readOnly": false});
    assert!(matches(
        "    selection:\n        responseElements.publiclyAccessible: 'true'\n        readOnly: 'false'\n    condition: selection",
        &restore
    ));
}

#[test]
fn a_keyword_rule_matches_any_string_value_of_the_record() {
    let detection = "    keywords:\n        - 'TruffleHog'\n    condition: keywords";
    assert!(matches(
        detection,
        &json!({"userAgent": "trufflehog/3.0 aws-sdk-go"})
    ));
    assert!(!matches(detection, &json!({"userAgent": "aws-cli/2.0"})));
}

#[test]
fn matches_gives_each_matching_rule_once_in_the_order_given_to_compile() {
    let by_name = rule(
        "b-by-name",
        "    selection:\n        eventName: DeleteTrail\n    condition: selection",
    );
    let never = rule(
        "c-never",
        "    selection:\n        eventName: CreateTrail\n    condition: selection",
    );
    let by_source = rule(
        "a-by-source",
        "    first:\n        eventSource: cloudtrail.amazonaws.com\n    second:\n        eventName|contains: Trail\n    condition: first or second",
    );
    let set = SigmaRuleSet::compile(&[by_name.clone(), never.clone(), by_source.clone()]).unwrap();
    assert_eq!(set.len(), 3);
    assert!(!set.is_empty());
    assert_eq!(set.rules(), [by_name, never, by_source]);
    let record = json!({"eventSource": "cloudtrail.amazonaws.com", "eventName": "DeleteTrail"});
    let matched: Vec<&str> = set
        .matches(&record)
        .into_iter()
        .map(|rule| rule.rule_id.as_str())
        .collect();
    assert_eq!(matched, ["b-by-name", "a-by-source"]);
}

#[test]
fn an_empty_set_matches_nothing_and_odd_records_do_not_panic() {
    let empty = SigmaRuleSet::compile(&[]).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.len(), 0);
    assert!(empty.matches(&json!({"eventName": "x"})).is_empty());
    let set = SigmaRuleSet::compile(&[builtin("aws_root_account_usage.yml")]).unwrap();
    for record in [Value::Null, json!([1, 2]), json!("text"), json!({})] {
        assert!(set.matches(&record).is_empty());
    }
}

#[test]
fn compile_refuses_two_rules_with_one_id_and_rules_changed_since_parsing() {
    let first = rule(
        "same-id",
        "    selection:\n        eventName: A\n    condition: selection",
    );
    let second = rule(
        "same-id",
        "    selection:\n        eventName: B\n    condition: selection",
    );
    assert_eq!(
        SigmaRuleSet::compile(&[first.clone(), second])
            .unwrap_err()
            .to_string(),
        "two rules have the id same-id: a rule set keys its findings on the id"
    );
    let mut changed = first.clone();
    changed.level = SigmaLevel::Critical;
    assert_eq!(
        SigmaRuleSet::compile(&[changed]).unwrap_err().to_string(),
        "rule same-id: its fields do not match its yaml: parse the yaml again with \
         parse_sigma_rule"
    );
    let mut refused = first;
    refused.yaml = refused.yaml.replace("eventName", "eventname");
    let error = SigmaRuleSet::compile(&[refused]).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("rule same-id: field eventname is not a field of CloudTrail records"),
        "{error}"
    );
}

#[test]
fn a_rule_set_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SigmaRuleSet>();
    assert_send_sync::<SigmaRule>();
}
