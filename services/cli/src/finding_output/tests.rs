//! The findings queue, one finding with its event and record, and suppressions as printed,
//! from proto values.

use super::*;
use crate::output_tests::{at, cells};

/// A Stratus Red Team detonation as SigmaHQ's rule raised it.
fn sigma_finding() -> pb::Finding {
    pb::Finding {
        finding_id: 42,
        kind: "sigma".into(),
        rule_id: "0a5177f4-6ca9-44c2-aacf-d3f3d8b6e4d2".into(),
        rule_version: 1,
        title: "AWS IAM Backdoor Users Keys".into(),
        level: "medium".into(),
        author: "faloker".into(),
        tags: vec!["attack.persistence".into(), "attack.t1098".into()],
        attack_techniques: vec!["T1098".into()],
        account_id: "751353041310".into(),
        aws_region: "us-east-1".into(),
        event_time: at(1_722_375_070),
        event_ids: vec!["4b3a4b3e-9a55-4b4c-a7b2-5c3f0a1e2d3c".into()],
        state: "acknowledged".into(),
        state_changed_at: at(1_796_040_000),
        state_changed_by: "cert:admin [stated: alice@laptop]".into(),
        state_reason: "looking into it".into(),
        created_at: at(1_796_039_000),
        suppression_id: 0,
        summary: "Detects AWS API key creation for a user by another user.".into(),
    }
}

fn alarm_finding() -> pb::Finding {
    pb::Finding {
        finding_id: 41,
        kind: "alarm".into(),
        rule_id: "cis-4.3-root-account-usage".into(),
        title: "Ensure usage of the root account is monitored, and a title long enough to be cut in the list".into(),
        level: "high".into(),
        event_time: at(1_411_800_600),
        state: "suppressed".into(),
        created_at: at(1_796_038_000),
        suppression_id: 7,
        ..Default::default()
    }
}

#[test]
fn the_findings_list_shows_each_findings_author_beside_its_title() {
    let findings = [sigma_finding(), alarm_finding()];
    let rows = cells(&findings_table(&findings));
    assert_eq!(
        rows[0],
        [
            "ID",
            "CREATED",
            "LEVEL",
            "TITLE",
            "AUTHOR",
            "ACCOUNT",
            "REGION",
            "EVENT TIME",
            "STATE"
        ]
    );
    assert_eq!(
        rows[1],
        [
            "42",
            "2026-11-30T11:43:20Z",
            "medium",
            "AWS IAM Backdoor Users Keys",
            "faloker",
            "751353041310",
            "us-east-1",
            "2024-07-30T21:31:10Z",
            "acknowledged",
        ]
    );
    let cut_title = truncate_cell(&findings[1].title, TITLE_COLUMN_CHARS);
    assert!(cut_title.ends_with('…'));
    assert_eq!(
        rows[2],
        [
            "41",
            "2026-11-30T11:26:40Z",
            "high",
            cut_title.as_str(),
            "-",
            "-",
            "-",
            "2014-09-27T06:50:00Z",
            "suppressed",
        ]
    );
}

#[test]
fn a_finding_shows_every_field_its_event_and_its_original_record() {
    let record = r#"{"eventVersion":"1.08","eventID":"4b3a4b3e-9a55-4b4c-a7b2-5c3f0a1e2d3c","eventName":"CreateAccessKey"}"#;
    let detail = pb::FindingDetail {
        finding: Some(sigma_finding()),
        event: Some(pb::FindingEvent {
            event_id: "4b3a4b3e-9a55-4b4c-a7b2-5c3f0a1e2d3c".into(),
            event_time: at(1_722_375_070),
            account_id: "751353041310".into(),
            aws_region: "us-east-1".into(),
            event_source: "iam.amazonaws.com".into(),
            event_name: "CreateAccessKey".into(),
            username: "stratus-red-team".into(),
            source_ip_address: "198.51.100.7".into(),
        }),
        cloud_trail_event: record.into(),
    };
    let text = finding_detail_text(&detail);
    for line in [
        "finding           42\n",
        "rule              0a5177f4-6ca9-44c2-aacf-d3f3d8b6e4d2 (version 1)\n",
        "title             AWS IAM Backdoor Users Keys\n",
        "author            faloker\n",
        "att&ck            T1098\n",
        "summary           Detects AWS API key creation for a user by another user.\n",
        "state changed     2026-11-30T12:00:00Z by cert:admin [stated: alice@laptop]: looking into it\n",
        "suppression       -\n",
        "\nevent\n  event id        4b3a4b3e-9a55-4b4c-a7b2-5c3f0a1e2d3c\n",
        "  name            CreateAccessKey\n",
        "  source ip       198.51.100.7\n",
    ] {
        assert!(text.contains(line), "{line:?} is not in:\n{text}");
    }
    assert!(
        text.ends_with(&format!("\noriginal record\n{record}\n")),
        "the record as stored closes the view:\n{text}"
    );

    let value: Value =
        serde_json::from_str(&finding_detail_json(&detail).expect("valid JSON")).expect("JSON");
    assert_eq!(value["finding"]["author"], "faloker");
    assert_eq!(value["finding"]["suppressionId"], Value::Null);
    assert_eq!(value["event"]["eventName"], "CreateAccessKey");
    assert_eq!(value["cloudTrailEvent"]["eventName"], "CreateAccessKey");
    let text = finding_detail_json(&detail).expect("valid JSON");
    assert!(
        text.contains(record),
        "the record is embedded byte for byte:\n{text}"
    );
}

#[test]
fn a_finding_without_its_event_says_so_and_a_bad_record_is_not_printed_as_json() {
    let detail = pb::FindingDetail {
        finding: Some(alarm_finding()),
        event: None,
        cloud_trail_event: String::new(),
    };
    let text = finding_detail_text(&detail);
    assert!(text.contains("rule              cis-4.3-root-account-usage\n"));
    assert!(text.contains("suppression       7\n"));
    assert!(text.contains("state changed     -\n"));
    assert!(text.ends_with("\nevent\n  no longer stored (retention), or none behind it\n"));
    let value: Value =
        serde_json::from_str(&finding_detail_json(&detail).expect("valid JSON")).expect("JSON");
    assert_eq!(value["event"], Value::Null);
    assert_eq!(value["cloudTrailEvent"], Value::Null);
    assert_eq!(value["finding"]["suppressionId"], 7);

    let broken = pb::FindingDetail {
        cloud_trail_event: "{not json".into(),
        ..detail
    };
    let error = finding_detail_json(&broken).expect_err("not JSON");
    assert!(
        error
            .to_string()
            .contains("finding 41 carries a record that is not JSON"),
        "{error}"
    );
}

#[test]
fn the_suppression_list_shows_scope_expiry_and_what_it_silenced() {
    let suppressions = [pb::Suppression {
        suppression_id: 7,
        rule_id: "905d389b-b853-46d0-9d3d-dea0d3a3cd49".into(),
        accounts: vec!["111111111111".into(), "222222222222".into()],
        principals: Vec::new(),
        source_ips: vec!["10.0.0.0/8".into()],
        reason:
            "the nightly job that assumes roles, every night, in every account of the organization"
                .into(),
        expires_at: at(1_796_644_800),
        created_at: at(1_796_040_000),
        created_by: "cert:admin".into(),
        suppressed: 12,
    }];
    let rows = cells(&suppressions_table(&suppressions));
    assert_eq!(
        rows[0],
        [
            "ID",
            "RULE",
            "ACCOUNTS",
            "PRINCIPALS",
            "SOURCE IPS",
            "EXPIRES",
            "SUPPRESSED",
            "CREATED",
            "BY",
            "REASON"
        ]
    );
    assert_eq!(
        rows[1],
        [
            "7",
            "905d389b-b853-46d0-9d3d-dea0d3a3cd49",
            "111111111111,222222222222",
            "-",
            "10.0.0.0/8",
            "2026-12-07T12:00:00Z",
            "12",
            "2026-11-30T12:00:00Z",
            "cert:admin",
            truncate_cell(&suppressions[0].reason, REASON_COLUMN_CHARS).as_str(),
        ]
    );
    let value = suppression_json(&suppressions[0]);
    assert_eq!(value["sourceIps"], json!(["10.0.0.0/8"]));
    assert_eq!(value["expiresAt"], "2026-12-07T12:00:00Z");
    assert_eq!(value["suppressed"], 12);
}

#[test]
fn a_summary_of_several_lines_stays_under_its_label() {
    // SigmaHQ writes many descriptions as YAML blocks: several lines and a final newline.
    let finding = pb::Finding {
        summary: "Detects the deletion of VPC Flow Logs.\nAdversaries may delete them.\n".into(),
        ..sigma_finding()
    };
    let text = finding_details(&finding);
    assert!(
        text.contains(
            "summary           Detects the deletion of VPC Flow Logs.\n                  Adversaries may delete them.\naccount           751353041310\n"
        ),
        "{text}"
    );
}
