//! Rule tables, the rule detail view, backtests and replays as printed, from proto values.

use super::*;
use crate::output_tests::{at, cells};

/// SigmaHQ's rule as the server answers `GetRule`.
fn builtin_rule() -> pb::SigmaRule {
    pb::SigmaRule {
        rule_id: "38e7f511-3f74-41d4-836e-f57dfa18eead".into(),
        title: "Potential Malicious Usage of CloudTrail System Manager".into(),
        level: "high".into(),
        author: "jamesc-grafana".into(),
        status: "experimental".into(),
        description: "Detect when System Manager successfully executes commands".into(),
        tags: vec![
            "attack.privilege-escalation".into(),
            "attack.t1566".into(),
            "attack.t1566.002".into(),
        ],
        attack_techniques: vec!["T1566".into(), "T1566.002".into()],
        origin: "builtin".into(),
        enabled: true,
        version: 1,
        fields: vec!["eventName".into(), "eventSource".into(), "errorCode".into()],
        yaml: "title: Potential Malicious Usage of CloudTrail System Manager\nid: 38e7f511-3f74-41d4-836e-f57dfa18eead\n".into(),
        updated_at: at(1_796_126_400),
        updated_by: "orgtrail (built-in SigmaHQ AWS CloudTrail rules)".into(),
    }
}

fn team_rule() -> pb::SigmaRule {
    pb::SigmaRule {
        rule_id: "3c0e8c54-7e31-4f6a-9b87-2d0b5c1b8f10".into(),
        title: "Failed console logins".into(),
        level: "medium".into(),
        author: "orgtrail tests".into(),
        origin: "operator".into(),
        enabled: false,
        version: 3,
        ..Default::default()
    }
}

#[test]
fn the_rule_list_shows_author_origin_and_attack_techniques_per_rule() {
    let rows = cells(&rules_table(&[builtin_rule(), team_rule()]));
    assert_eq!(
        rows[0],
        ["RULE ID", "TITLE", "LEVEL", "AUTHOR", "ORIGIN", "ENABLED", "VERSION", "ATT&CK"]
    );
    assert_eq!(
        rows[1],
        [
            "38e7f511-3f74-41d4-836e-f57dfa18eead",
            "Potential Malicious Usage of CloudTrail System Manager",
            "high",
            "jamesc-grafana",
            "builtin",
            "yes",
            "1",
            "T1566,T1566.002",
        ]
    );
    assert_eq!(
        rows[2],
        [
            "3c0e8c54-7e31-4f6a-9b87-2d0b5c1b8f10",
            "Failed console logins",
            "medium",
            "orgtrail tests",
            "operator",
            "no",
            "3",
            "-",
        ]
    );
    assert_eq!(rows.len(), 3);
}

#[test]
fn the_rule_detail_view_shows_every_field_then_the_yaml() {
    let rule = builtin_rule();
    let text = rule_details(&rule);
    for line in [
        "rule id      38e7f511-3f74-41d4-836e-f57dfa18eead\n",
        "author       jamesc-grafana\n",
        "status       experimental\n",
        "tags         attack.privilege-escalation, attack.t1566, attack.t1566.002\n",
        "att&ck       T1566, T1566.002\n",
        "fields       eventName, eventSource, errorCode\n",
        "origin       builtin\n",
        "updated      2026-12-01T12:00:00Z by orgtrail (built-in SigmaHQ AWS CloudTrail rules)\n",
    ] {
        assert!(text.contains(line), "{line:?} is not in:\n{text}");
    }
    assert!(
        text.ends_with(&format!("\n\n{}", rule.yaml)),
        "the YAML follows the fields, as written:\n{text}"
    );
    let without_text = rule_details(&team_rule());
    assert!(
        without_text.ends_with("updated      - by -\n"),
        "{without_text}"
    );
    let value = rule_json(&rule);
    assert_eq!(value["attackTechniques"], json!(["T1566", "T1566.002"]));
    assert_eq!(value["author"], "jamesc-grafana");
    assert_eq!(value["updatedAt"], "2026-12-01T12:00:00Z");
    assert_eq!(value["yaml"], rule.yaml);
}

#[test]
fn an_addition_lists_what_was_added_and_what_was_unchanged() {
    let response = pb::AddRulesResponse {
        added: vec![team_rule()],
        unchanged: vec!["0f9a3d58-1b3c-4e2e-8f5a-6d4c3b2a1e90".into()],
    };
    let text = added_rules_text(&response);
    let rows = cells(&text);
    assert_eq!(
        rows[0],
        ["ADDED", "TITLE", "LEVEL", "AUTHOR", "VERSION", "ENABLED"]
    );
    assert_eq!(
        rows[1],
        [
            "3c0e8c54-7e31-4f6a-9b87-2d0b5c1b8f10",
            "Failed console logins",
            "medium",
            "orgtrail tests",
            "3",
            "no"
        ]
    );
    assert!(
        text.ends_with("unchanged: 0f9a3d58-1b3c-4e2e-8f5a-6d4c3b2a1e90\n1 added, 1 unchanged\n")
    );
    assert_eq!(
        added_rules_text(&pb::AddRulesResponse {
            added: Vec::new(),
            unchanged: vec!["a".into()],
        }),
        "unchanged: a\n0 added, 1 unchanged\n"
    );
}

#[test]
fn a_rule_test_prints_day_counts_events_and_the_summary() {
    let response = pb::TestRuleResponse {
        rule: Some(team_rule()),
        events_scanned: 9393,
        events_matched: 3,
        events: vec![pb::FindingEvent {
            event_id: "e1".into(),
            event_time: at(1_411_800_311),
            account_id: "111111111111".into(),
            aws_region: "us-east-1".into(),
            event_source: "signin.amazonaws.com".into(),
            event_name: "ConsoleLogin".into(),
            username: "alice".into(),
            source_ip_address: "198.51.100.7".into(),
        }],
        days: vec![
            pb::DayCount {
                day: "2014-09-27".into(),
                matches: 2,
            },
            pb::DayCount {
                day: "2014-09-28".into(),
                matches: 1,
            },
        ],
    };
    let text = rule_test_text(&response);
    assert!(text.starts_with(
        "rule: Failed console logins (3c0e8c54-7e31-4f6a-9b87-2d0b5c1b8f10), level medium, by orgtrail tests\n\n"
    ));
    let rows = cells(&text);
    assert_eq!(rows[2], ["DAY", "MATCHES"]);
    assert_eq!(rows[3], ["2014-09-27", "2"]);
    assert_eq!(rows[4], ["2014-09-28", "1"]);
    assert_eq!(
        rows[7],
        [
            "2014-09-27T06:45:11Z",
            "111111111111",
            "us-east-1",
            "signin.amazonaws.com",
            "ConsoleLogin",
            "alice",
            "198.51.100.7",
            "e1"
        ]
    );
    assert!(
        text.ends_with("\n9393 events scanned, 3 matched\n"),
        "{text}"
    );
    let value = rule_test_json(&response);
    assert_eq!(
        value["days"][0],
        json!({ "day": "2014-09-27", "matches": 2 })
    );
    assert_eq!(value["events"][0]["sourceIpAddress"], "198.51.100.7");
    assert_eq!(value["eventsMatched"], 3);
}

#[test]
fn a_replay_prints_what_it_scanned_and_raised() {
    let report = pb::ReplayDetectionsResponse {
        events_scanned: 293,
        matches: 71,
        findings_raised: 5,
        suppressed: 1,
    };
    assert_eq!(
        replay_text(&report),
        "293 events scanned, 71 matches, 5 findings raised, 1 suppressed\n"
    );
    assert_eq!(
        replay_json(&report),
        json!({ "eventsScanned": 293, "matches": 71, "findingsRaised": 5, "suppressed": 1 })
    );
}
