//! `parse_sigma_rule`: what it keeps of a rule, and each reason it refuses one.

use super::*;

/// A valid CloudTrail rule whose detection is `detection` (indented under `detection:`) and
/// whose other top-level keys are `extra`.
fn rule_text(detection: &str, extra: &str) -> String {
    format!(
        "title: Test rule
id: 0b7e5a36-8a59-4f2b-9a7c-2f1d1c0e9a01
status: experimental
description: A rule for the tests.
author: orgtrail tests
references:
    - https://example.invalid/one
logsource:
    product: aws
    service: cloudtrail
detection:
{detection}
level: high
{extra}"
    )
}

fn refusal(yaml: &str) -> String {
    match parse_sigma_rule(yaml) {
        Ok(rule) => panic!("accepted: {rule:?}"),
        Err(error) => error.to_string(),
    }
}

const SELECTION: &str = "    selection:
        eventSource: iam.amazonaws.com
        eventName: CreateAccessKey
    condition: selection";

#[test]
fn a_rule_keeps_its_metadata_its_fields_and_its_text_byte_for_byte() {
    let yaml = rule_text(
        "    selection:
        eventSource: iam.amazonaws.com
        userIdentity.sessionContext.sessionIssuer.type: Role
    filter:
        userIdentity.arn|fieldref: requestParameters.userName
        eventSource: sts.amazonaws.com
    condition: selection and not filter",
        "tags:\n    - attack.persistence\n    - attack.t1078.004\n",
    );
    let rule = parse_sigma_rule(&yaml).unwrap();
    assert_eq!(rule.rule_id, "0b7e5a36-8a59-4f2b-9a7c-2f1d1c0e9a01");
    assert_eq!(rule.title, "Test rule");
    assert_eq!(rule.level, SigmaLevel::High);
    assert_eq!(rule.author.as_deref(), Some("orgtrail tests"));
    assert_eq!(rule.status.as_deref(), Some("experimental"));
    assert_eq!(rule.description.as_deref(), Some("A rule for the tests."));
    assert_eq!(rule.references, ["https://example.invalid/one"]);
    assert_eq!(rule.tags, ["attack.persistence", "attack.t1078.004"]);
    // Sorted, each once, |fieldref targets included.
    assert_eq!(
        rule.fields,
        [
            "eventSource",
            "requestParameters.userName",
            "userIdentity.arn",
            "userIdentity.sessionContext.sessionIssuer.type",
        ]
    );
    assert_eq!(rule.yaml, yaml);
}

#[test]
fn a_keyword_rule_reads_no_field_and_is_accepted() {
    let rule = parse_sigma_rule(&rule_text(
        "    keywords:\n        - 'trufflehog'\n    condition: keywords",
        "",
    ))
    .unwrap();
    assert!(rule.fields.is_empty());
}

#[test]
fn the_rule_round_trips_through_serde_in_camel_case() {
    let rule = parse_sigma_rule(&rule_text(SELECTION, "")).unwrap();
    let json = serde_json::to_value(&rule).unwrap();
    assert_eq!(json["ruleId"], "0b7e5a36-8a59-4f2b-9a7c-2f1d1c0e9a01");
    assert_eq!(json["level"], "high");
    let back: SigmaRule = serde_json::from_value(json).unwrap();
    assert_eq!(back, rule);
}

#[test]
fn text_that_is_not_yaml_is_refused_as_not_yaml() {
    let message = refusal("title: [unclosed\nid: x");
    assert!(message.starts_with("the rule is not YAML: "), "{message}");
}

#[test]
fn yaml_that_is_not_a_sigma_rule_is_refused_with_rsigma_s_reason() {
    let message = refusal("title: no detection\nid: x\nlogsource: {product: aws}\nlevel: low\n");
    assert!(
        message.starts_with("the rule is not a valid Sigma rule: ")
            && message.contains("detection"),
        "{message}"
    );
    let message = refusal("- just\n- a list\n");
    assert!(
        message.starts_with("the rule is not a valid Sigma rule: "),
        "{message}"
    );
}

#[test]
fn an_unknown_level_is_refused_although_rsigma_only_warns_about_it() {
    let yaml = rule_text(SELECTION, "").replace("level: high", "level: severe");
    let message = refusal(&yaml);
    assert!(
        message.starts_with("the rule is not a valid Sigma rule: ") && message.contains("severe"),
        "{message}"
    );
}

#[test]
fn a_rule_without_id_or_level_is_refused() {
    let yaml = rule_text(SELECTION, "");
    let without_id = yaml.replace("id: 0b7e5a36-8a59-4f2b-9a7c-2f1d1c0e9a01\n", "");
    assert_eq!(
        refusal(&without_id),
        "the rule has no id: orgtrail keys its findings on the Sigma id (add id: <a UUID>)"
    );
    let without_level = yaml.replace("level: high\n", "");
    assert_eq!(
        refusal(&without_level),
        "the rule has no level: add level: informational, low, medium, high or critical"
    );
}

#[test]
fn an_empty_text_or_several_rules_in_one_text_are_refused() {
    assert_eq!(refusal(""), "the text holds no Sigma rule");
    assert_eq!(
        refusal("action: global\nlogsource: {product: aws}\n"),
        "the text holds no Sigma rule"
    );
    let one = rule_text(SELECTION, "");
    let two = format!("{one}---\n{}", one.replace("0b7e5a36", "1b7e5a36"));
    assert_eq!(
        refusal(&two),
        "the text holds 2 rules: give one rule per text (one file per rule)"
    );
}

#[test]
fn a_logsource_other_than_aws_cloudtrail_is_refused() {
    let yaml = rule_text(SELECTION, "");
    let windows = yaml.replace(
        "    product: aws\n    service: cloudtrail\n",
        "    product: windows\n    category: process_creation\n",
    );
    assert_eq!(
        refusal(&windows),
        "logsource is product: windows category: process_creation, not product: aws service: cloudtrail"
    );
    let guardduty = yaml.replace("service: cloudtrail", "service: guardduty");
    assert_eq!(
        refusal(&guardduty),
        "logsource is product: aws service: guardduty, not product: aws service: cloudtrail"
    );
    let none = yaml.replace("    product: aws\n    service: cloudtrail\n", "    {}\n");
    assert_eq!(
        refusal(&none),
        "logsource is empty, not product: aws service: cloudtrail"
    );
}

#[test]
fn product_aws_without_a_service_is_accepted() {
    let yaml = rule_text(SELECTION, "").replace("    service: cloudtrail\n", "");
    assert!(parse_sigma_rule(&yaml).is_ok());
}

#[test]
fn a_correlation_rule_is_refused_because_replicas_share_no_state() {
    let base = rule_text(SELECTION, "");
    let correlation = "title: Many access keys
id: 5d1d0a4e-1111-4a4e-9a38-3c1b0f7d2a11
correlation:
    type: event_count
    rules:
        - 0b7e5a36-8a59-4f2b-9a7c-2f1d1c0e9a01
    group-by:
        - userIdentity.arn
    timespan: 10m
    condition:
        gte: 5
level: high
";
    for yaml in [format!("{base}---\n{correlation}"), correlation.to_owned()] {
        let message = refusal(&yaml);
        assert!(
            message.starts_with(
                "correlation rules (event_count) are not supported: orgtrail evaluates each event \
                 on whichever aggregator replica stores it, and rsigma keeps correlation state in \
                 one process's memory"
            ),
            "{message}"
        );
    }
}

#[test]
fn a_sigma_filter_rule_is_refused() {
    let filter = "title: Not our admin
id: 7f1d0a4e-2222-4a4e-9a38-3c1b0f7d2a11
logsource:
    product: aws
    service: cloudtrail
filter:
    rules:
        - 0b7e5a36-8a59-4f2b-9a7c-2f1d1c0e9a01
    selection:
        userIdentity.arn: arn:aws:iam::123456789012:user/admin
    condition: not selection
";
    assert!(refusal(filter).starts_with("sigma filter rules are not supported"));
}

#[test]
fn expand_placeholders_are_refused_naming_them() {
    let yaml = rule_text(
        "    selection:
        eventName: ConsoleLogin
        sourceIPAddress|expand: '%Legitimate_IP_Ranges%'
    condition: selection",
        "",
    );
    assert_eq!(
        refusal(&yaml),
        "|expand placeholders (%Legitimate_IP_Ranges%) are not supported: write the values into \
         the rule"
    );
}

#[test]
fn a_field_that_is_not_in_cloudtrail_records_is_refused_naming_it() {
    let yaml = rule_text(
        "    selection:\n        src_ip|cidr: 10.0.0.0/8\n    condition: selection",
        "",
    );
    let message = refusal(&yaml);
    assert!(
        message.starts_with(
            "field src_ip is not a field of CloudTrail records (field names are CloudTrail's JSON \
             keys, case-sensitive: the first part must be one of eventTime, eventVersion, \
             userIdentity, eventSource, eventName,"
        ),
        "{message}"
    );
    assert!(message.ends_with("eventContext, annotation)"), "{message}");
}

#[test]
fn an_operator_s_field_typo_is_refused_naming_the_field_and_the_right_spelling() {
    let yaml = rule_text(
        "    selection:
        eventSource: iam.amazonaws.com
        eventname: CreateAccessKey
    condition: selection",
        "",
    );
    match parse_sigma_rule(&yaml) {
        Err(SigmaRuleError::UnknownField { field, suggestion }) => {
            assert_eq!(field, "eventname");
            assert_eq!(suggestion.as_deref(), Some("eventName"));
        }
        other => panic!("{other:?}"),
    }
    assert!(refusal(&yaml).starts_with(
        "field eventname is not a field of CloudTrail records: did you mean eventName?"
    ));
}

#[test]
fn nested_paths_are_checked_by_their_first_part_and_fieldref_targets_are_checked_too() {
    let nested = rule_text(
        "    selection:\n        userIdentity.typo.anything: x\n    condition: selection",
        "",
    );
    assert!(parse_sigma_rule(&nested).is_ok());
    let indexed = rule_text(
        "    selection:\n        resources[0].ARN|contains: bucket\n    condition: selection",
        "",
    );
    assert!(parse_sigma_rule(&indexed).is_ok());
    let bad_reference = rule_text(
        "    selection:\n        userIdentity.arn|fieldref: UserName\n    condition: selection",
        "",
    );
    assert!(refusal(&bad_reference).starts_with("field UserName is not a field"));
}

#[test]
fn a_rule_rsigma_cannot_compile_is_refused() {
    let yaml = rule_text(
        "    selection:\n        userAgent|re: '(unclosed'\n    condition: selection",
        "",
    );
    let message = refusal(&yaml);
    assert!(
        message.starts_with("the rule does not compile: "),
        "{message}"
    );
    let unknown_identifier = rule_text(
        "    selection:\n        eventName: x\n    condition: selection and not filter",
        "",
    );
    assert!(refusal(&unknown_identifier).starts_with("the rule does not compile: "));
}

#[test]
fn levels_are_ordered_lowest_first_and_written_lower_case() {
    assert!(SigmaLevel::Informational < SigmaLevel::Low);
    assert!(SigmaLevel::Low < SigmaLevel::Medium);
    assert!(SigmaLevel::Medium < SigmaLevel::High);
    assert!(SigmaLevel::High < SigmaLevel::Critical);
    let mut sorted = SigmaLevel::ALL;
    sorted.sort();
    assert_eq!(sorted, SigmaLevel::ALL);
    for level in SigmaLevel::ALL {
        assert_eq!(level.as_str().parse::<SigmaLevel>().unwrap(), level);
        assert_eq!(level.to_string(), level.as_str());
        assert_eq!(
            serde_json::to_value(level).unwrap(),
            serde_json::Value::from(level.as_str())
        );
    }
    assert_eq!(
        serde_json::from_str::<SigmaLevel>("\"critical\"").unwrap(),
        SigmaLevel::Critical
    );
    assert_eq!(
        "High".parse::<SigmaLevel>().unwrap_err().to_string(),
        "level High is not one of informational, low, medium, high, critical"
    );
}

#[test]
fn attack_techniques_are_the_technique_tags_upper_cased_each_once() {
    let yaml = rule_text(
        SELECTION,
        "tags:
    - attack.persistence
    - attack.t1078.004
    - attack.T1098
    - attack.g0016
    - attack.s0002
    - attack.t1078.004
    - attack.t1530
    - attack.t12
    - attack.t1078.04
    - cve.2021-44228
    - detection.threat-hunting
",
    );
    let rule = parse_sigma_rule(&yaml).unwrap();
    assert_eq!(rule.attack_techniques(), ["T1078.004", "T1098", "T1530"]);
}

#[test]
fn every_built_in_rule_is_embedded_with_its_file_name() {
    let builtins = builtin_sigma_rules();
    assert_eq!(builtins.len(), 57);
    let mut names: Vec<&str> = builtins.iter().map(|rule| rule.file_name).collect();
    let in_order = names.clone();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names, in_order, "sorted by name, each once");
    assert!(builtins
        .iter()
        .all(|rule| rule.file_name.ends_with(".yml") && rule.yaml.contains("title: ")));
    assert!(DETECTION_RULE_LICENSE.starts_with("# Detection Rule License (DRL) 1.1"));
}
