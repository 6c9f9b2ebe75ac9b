//! Sigma rules and findings against a running aggregator: SigmaHQ's 57 CloudTrail rules raise
//! exactly the findings the independent evaluator lists (`data/sigma/EXPECTED.json`); a finding
//! is raised once per event however often its file is delivered or the window replayed; a rule
//! added later and replayed over history raises what it would have raised live; suppressed
//! matches are kept and counted, not notified; findings reach a webhook and SNS with the rule's
//! author; triage changes are audited; rules orgtrail cannot evaluate are refused with the
//! reason.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta};
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::audit_service_client::AuditServiceClient;
use orgtrail_api::v1::finding_service_client::FindingServiceClient;
use orgtrail_api::v1::notification_service_client::NotificationServiceClient;
use orgtrail_api::v1::rule_service_client::RuleServiceClient;
use orgtrail_client::{LocalLogFile, LogFileReader};
use orgtrail_domain::EventId;
use orgtrail_tests::memory_file::{gzip, log_file_json, MemoryLogFile};
use orgtrail_tests::moto::MotoServer;
use orgtrail_tests::receiver::NotificationReceiver;
use orgtrail_tests::samples::{invictus_records, sample_files, sample_files_of};
use orgtrail_tests::sns::{create_topic_with_queue, wait_for_messages};
use orgtrail_tests::{ingest_sample_files, send_all, test_now, StackOptions, TestStack, WAIT};
use serde_json::Value;
use uuid::Uuid;

fn sigma_expected() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sigma/EXPECTED.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The stored id of a record's eventID.
fn stored_id(event_id: &str) -> Uuid {
    EventId::from_cloudtrail(event_id).unwrap().as_uuid()
}

/// The events each rule raised a finding for, by Sigma id.
async fn findings_by_rule(stack: &TestStack) -> BTreeMap<String, BTreeSet<Uuid>> {
    let rows: Vec<(String, Uuid)> =
        sqlx::query_as("SELECT rule_id, unnest(event_ids) FROM findings WHERE kind = 'sigma'")
            .fetch_all(&stack.pool().await)
            .await
            .unwrap();
    let mut by_rule: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
    for (rule_id, event_id) in rows {
        by_rule.entry(rule_id).or_default().insert(event_id);
    }
    by_rule
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sigmahq_rule_raises_exactly_the_findings_the_independent_evaluator_lists() {
    let stack = TestStack::start().await;
    ingest_sample_files(&stack, &sample_files()).await;
    let expected = sigma_expected();
    let found = findings_by_rule(&stack).await;

    let rules = RuleServiceClient::new(stack.channel().await)
        .list_rules(pb::ListRulesRequest {})
        .await
        .unwrap()
        .into_inner()
        .rules;
    // SigmaHQ's 57 CloudTrail rules, but "AWS SAML Provider Deletion Activity", which reads a
    // `status` field CloudTrail records never have (EXPECTED.json notes it can never match).
    assert_eq!(rules.len(), 56, "SigmaHQ's CloudTrail rules are built in");
    assert!(rules
        .iter()
        .all(|rule| rule.origin == "builtin" && rule.enabled));
    assert!(rules
        .iter()
        .all(|rule| rule.title != "AWS SAML Provider Deletion Activity"));

    let per_rule = expected["rules"].as_object().unwrap();
    assert_eq!(per_rule.len(), 57);
    let mut disagreements = Vec::new();
    for (rule_id, rule) in per_rule {
        let want: BTreeSet<Uuid> = rule["eventIDs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| stored_id(id.as_str().unwrap()))
            .collect();
        let got = found.get(rule_id).cloned().unwrap_or_default();
        if got != want {
            disagreements.push(format!(
                "{rule_id} ({}): missing {:?}, extra {:?}",
                rule["title"],
                want.difference(&got).collect::<Vec<_>>(),
                got.difference(&want).collect::<Vec<_>>()
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    // Every finding names its rule's author (the Detection Rule License).
    let anonymous: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM findings WHERE kind = 'sigma' AND (author IS NULL OR author = '')",
    )
    .fetch_one(&stack.pool().await)
    .await
    .unwrap();
    assert_eq!(anonymous, 0);
}

fn files_of(data_set: &str) -> Vec<Arc<dyn LogFileReader>> {
    sample_files_of(data_set)
        .iter()
        .map(|file| {
            Arc::new(LocalLogFile::new(&file.path, "samples").unwrap()) as Arc<dyn LogFileReader>
        })
        .collect()
}

/// The whole of sample history, as a replay window.
fn all_history() -> (prost_types::Timestamp, prost_types::Timestamp) {
    (
        prost_types::Timestamp {
            seconds: DateTime::parse_from_rfc3339("2010-01-01T00:00:00Z")
                .unwrap()
                .timestamp(),
            nanos: 0,
        },
        prost_types::Timestamp {
            seconds: test_now().timestamp(),
            nanos: 0,
        },
    )
}

async fn replay(stack: &TestStack) -> pb::ReplayDetectionsResponse {
    let (start, end) = all_history();
    RuleServiceClient::new(stack.channel().await)
        .replay_detections(pb::ReplayDetectionsRequest {
            start_time: Some(start),
            end_time: Some(end),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finding_is_raised_once_however_often_its_event_is_delivered_or_replayed() {
    let stack = TestStack::start().await;
    let sender = stack.ingest_sender(Default::default()).await;
    for result in send_all(&sender, files_of("stratus-red-team-detonation-logs")).await {
        result.result.unwrap();
    }
    let first = findings_by_rule(&stack).await;
    let total = |by_rule: &BTreeMap<String, BTreeSet<Uuid>>| {
        by_rule.values().map(BTreeSet::len).sum::<usize>()
    };
    assert!(total(&first) > 0, "the Stratus detonations raise findings");

    // The same records again: under another file name (a second trail's copy), and the same
    // files again.
    let copies: Vec<Arc<dyn LogFileReader>> = sample_files_of("stratus-red-team-detonation-logs")
        .iter()
        .map(|file| {
            let refs: Vec<&str> = file.records.iter().map(String::as_str).collect();
            MemoryLogFile::shared(
                "organization-trail",
                &format!("copy/{}", file.key),
                gzip(&log_file_json(&refs)),
            )
        })
        .collect();
    for result in send_all(&sender, copies).await {
        result.result.unwrap();
    }
    for result in send_all(&sender, files_of("stratus-red-team-detonation-logs")).await {
        result.result.unwrap();
    }
    assert_eq!(findings_by_rule(&stack).await, first);

    // A replay of everything raises nothing new, twice.
    for _ in 0..2 {
        let report = replay(&stack).await;
        assert!(report.matches as usize >= total(&first));
        assert_eq!(report.findings_raised, 0);
    }
    assert_eq!(findings_by_rule(&stack).await, first);
}

/// A rule of the team's own: console logins that failed.
const FAILED_LOGINS: &str = r#"title: Failed console logins
id: 3c0e8c54-7e31-4f6a-9b87-2d0b5c1b8f10
status: experimental
description: A console sign-in that failed.
author: orgtrail tests
level: medium
tags:
  - attack.credential-access
  - attack.t1110
logsource:
  product: aws
  service: cloudtrail
detection:
  selection:
    eventName: ConsoleLogin
    errorMessage|contains: failed
  condition: selection
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_added_later_and_replayed_raises_what_it_would_have_raised_live() {
    let rule_file = pb::RuleFile {
        name: "failed-logins.yml".into(),
        yaml: FAILED_LOGINS.into(),
    };
    // Live: the rule is there before the events.
    let live = TestStack::start().await;
    RuleServiceClient::new(live.channel().await)
        .add_rules(pb::AddRulesRequest {
            files: vec![rule_file.clone()],
            disabled: false,
        })
        .await
        .unwrap();
    ingest_sample_files(&live, &sample_files()).await;
    let live_found = findings_by_rule(&live).await;
    let rule_id = "3c0e8c54-7e31-4f6a-9b87-2d0b5c1b8f10";
    let want = live_found.get(rule_id).cloned().unwrap_or_default();
    assert!(!want.is_empty(), "the samples hold failed console logins");

    // Later: the events first, then the rule, then a replay of history.
    let later = TestStack::start().await;
    ingest_sample_files(&later, &sample_files()).await;
    assert!(!findings_by_rule(&later).await.contains_key(rule_id));
    RuleServiceClient::new(later.channel().await)
        .add_rules(pb::AddRulesRequest {
            files: vec![rule_file],
            disabled: false,
        })
        .await
        .unwrap();
    let report = replay(&later).await;
    assert_eq!(report.findings_raised as usize, want.len());
    assert_eq!(findings_by_rule(&later).await, live_found);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_orgtrail_cannot_evaluate_are_refused_with_the_reason() {
    let stack = TestStack::start().await;
    let mut client = RuleServiceClient::new(stack.channel().await);
    let refused = |yaml: &str, name: &str| pb::AddRulesRequest {
        files: vec![pb::RuleFile {
            name: name.into(),
            yaml: yaml.into(),
        }],
        disabled: false,
    };
    let cases = [
        ("not: [yaml", "broken.yml", "broken.yml"),
        (
            &FAILED_LOGINS.replace("eventName: ConsoleLogin", "src_ip: 10.0.0.1"),
            "typo.yml",
            "src_ip",
        ),
        (
            &FAILED_LOGINS.replace("service: cloudtrail", "service: guardduty"),
            "other-source.yml",
            "cloudtrail",
        ),
    ];
    for (yaml, name, says) in cases {
        let status = client.add_rules(refused(yaml, name)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{name}");
        assert!(
            status.message().starts_with(name) && status.message().contains(says),
            "{name}: {}",
            status.message()
        );
    }
    // A correlation rule is refused, saying why.
    let correlation = r#"title: Many failed logins
id: 0f9a3d58-1b3c-4e2e-8f5a-6d4c3b2a1e90
correlation:
  type: event_count
  rules:
    - 3c0e8c54-7e31-4f6a-9b87-2d0b5c1b8f10
  group-by:
    - sourceIPAddress
  timespan: 5m
  condition:
    gte: 10
"#;
    let status = client
        .add_rules(refused(correlation, "correlation.yml"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("correlation"),
        "{}",
        status.message()
    );
    // Built-in rules are disabled, not deleted.
    let builtin = client
        .list_rules(pb::ListRulesRequest {})
        .await
        .unwrap()
        .into_inner()
        .rules
        .remove(0);
    let status = client
        .delete_rule(pb::DeleteRuleRequest {
            rule_id: builtin.rule_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    let disabled = client
        .disable_rule(pb::DisableRuleRequest {
            rule_id: builtin.rule_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!disabled.enabled);
    assert_eq!(disabled.version, 2);
}

/// The Stratus detonation of `aws.defense-evasion.cloudtrail-stop` as a fresh event now: the
/// SigmaHQ rule "AWS CloudTrail Important Change" matches it (level medium).
fn fresh_stop_logging(minutes_ago: i64) -> String {
    let template = invictus_records(1).remove(0);
    let mut record: serde_json::Map<String, Value> = serde_json::from_str(&template).unwrap();
    record.insert("eventID".into(), Uuid::new_v4().to_string().into());
    record.insert(
        "eventTime".into(),
        (test_now() - TimeDelta::minutes(minutes_ago))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
            .into(),
    );
    record.insert("eventSource".into(), "cloudtrail.amazonaws.com".into());
    record.insert("eventName".into(), "StopLogging".into());
    serde_json::to_string(&record).unwrap()
}

async fn send_records(stack: &TestStack, name: &str, records: &[String]) {
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let file = MemoryLogFile::shared("b", name, gzip(&log_file_json(&refs)));
    let sender = stack.ingest_sender(Default::default()).await;
    for result in send_all(&sender, vec![file]).await {
        result.result.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_reach_a_webhook_and_sns_with_the_rules_author_and_suppressed_ones_do_not() {
    let receiver = NotificationReceiver::start().await;
    let moto = MotoServer::start();
    let queue = create_topic_with_queue(&moto.endpoint(), "orgtrail-findings").await;
    let stack = TestStack::start_with(StackOptions {
        environment: vec![
            (
                "ORGTRAIL_NOTIFICATIONS__SNS_ENDPOINT".into(),
                moto.endpoint(),
            ),
            (
                "ORGTRAIL_NOTIFICATIONS__POLL_INTERVAL_MILLISECONDS".into(),
                "100".into(),
            ),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("ORGTRAIL_ALARMS__CIS_BUILTIN".into(), "false".into()),
        ],
        ..StackOptions::default()
    })
    .await;
    let mut notifications = NotificationServiceClient::new(stack.channel().await);
    for (name, kind, target) in [
        ("team-webhook", "webhook", receiver.url()),
        ("team-sns", "sns", queue.topic_arn.clone()),
    ] {
        notifications
            .create_destination(pb::CreateDestinationRequest {
                name: name.into(),
                kind: kind.into(),
                target,
                every_alarm: false,
                finding_level: "low".into(),
            })
            .await
            .unwrap();
    }
    // Known-good: the stops from one account are a scheduled job.
    let stop = fresh_stop_logging(20);
    let record: Value = serde_json::from_str(&stop).unwrap();
    let account = record["recipientAccountId"].as_str().unwrap().to_string();
    let rule_id = RuleServiceClient::new(stack.channel().await)
        .list_rules(pb::ListRulesRequest {})
        .await
        .unwrap()
        .into_inner()
        .rules
        .into_iter()
        .find(|rule| rule.title == "AWS CloudTrail Important Change")
        .expect("the SigmaHQ rule")
        .rule_id;

    send_records(&stack, "first.json.gz", std::slice::from_ref(&stop)).await;
    let webhook = receiver.wait_for(1, WAIT).await;
    let body = webhook[0].json();
    assert_eq!(body["kind"], "finding");
    assert_eq!(body["finding"]["ruleId"], rule_id.as_str());
    assert!(
        !body["finding"]["author"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "the rule's author travels with the finding: {body}"
    );
    let sns = wait_for_messages(&queue, 1, WAIT).await;
    assert_eq!(
        sns[0].message["finding"]["author"],
        body["finding"]["author"]
    );

    let mut findings = FindingServiceClient::new(stack.channel().await);
    let suppression = findings
        .create_suppression(pb::CreateSuppressionRequest {
            rule_id: rule_id.clone(),
            accounts: vec![account],
            principals: Vec::new(),
            source_ips: Vec::new(),
            reason: "the nightly trail rotation job".into(),
            expires_at: Some(prost_types::Timestamp {
                seconds: (test_now() + TimeDelta::days(7)).timestamp(),
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    send_records(&stack, "second.json.gz", &[fresh_stop_logging(10)]).await;
    let listed = findings
        .list_findings(pb::ListFindingsRequest {
            rule_ids: vec![rule_id.clone()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .findings;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].state, "suppressed");
    assert_eq!(listed[0].suppression_id, suppression.suppression_id);
    assert_eq!(listed[1].state, "open");
    let counted = findings
        .list_suppressions(pb::ListSuppressionsRequest { all: false })
        .await
        .unwrap()
        .into_inner()
        .suppressions;
    assert_eq!(counted[0].suppressed, 1, "suppressed matches are counted");
    // Nothing more was notified.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(receiver.requests().len(), 1);

    // Triage, audited.
    let acknowledged = findings
        .update_finding_state(pb::UpdateFindingStateRequest {
            finding_id: listed[1].finding_id,
            state: "acknowledged".into(),
            reason: "looking into it".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acknowledged.state, "acknowledged");
    assert!(acknowledged.state_changed_by.starts_with("cert:"));
    let detail = findings
        .get_finding(pb::GetFindingRequest {
            finding_id: listed[1].finding_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detail.event.unwrap().event_name, "StopLogging");
    assert!(detail.cloud_trail_event.contains("StopLogging"));
    let audited = AuditServiceClient::new(stack.channel().await)
        .list_audit_entries(pb::ListAuditEntriesRequest {
            action_prefix: "finding.".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(audited.len(), 1);
}

/// `orgtrail-aggregator check-config` with the test's environment and a rules folder.
fn check_config(stack: &TestStack, directory: &std::path::Path) -> std::process::Output {
    std::process::Command::new(orgtrail_tests::binary("orgtrail-aggregator"))
        .args([
            "--database-url",
            &stack.database_url,
            "--insecure",
            "check-config",
        ])
        .env("ORGTRAIL_DETECTIONS__RULES_DIRECTORY", directory)
        .env("ORGTRAIL_ENCRYPTION__PLAINTEXT", "true")
        .output()
        .expect("cannot run orgtrail-aggregator check-config")
}

async fn rules_by_origin(stack: &TestStack, origin: &str) -> BTreeMap<String, (i32, bool)> {
    RuleServiceClient::new(stack.channel().await)
        .list_rules(pb::ListRulesRequest {})
        .await
        .unwrap()
        .into_inner()
        .rules
        .into_iter()
        .filter(|rule| rule.origin == origin)
        .map(|rule| (rule.rule_id, (rule.version, rule.enabled)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_folder_is_loaded_at_start_checked_by_check_config_and_followed_on_restart() {
    let directory = std::env::temp_dir().join(format!("orgtrail-rules-{}", Uuid::new_v4()));
    std::fs::create_dir_all(directory.join("..data")).unwrap();
    std::fs::write(directory.join("failed-logins.yml"), FAILED_LOGINS).unwrap();
    std::fs::write(directory.join("README.txt"), "not a rule").unwrap();
    // A ConfigMap volume's own entries are passed over.
    std::fs::write(directory.join(".hidden.yml"), "not: [yaml").unwrap();
    let second = FAILED_LOGINS
        .replace(
            "3c0e8c54-7e31-4f6a-9b87-2d0b5c1b8f10",
            "5d1e2f3a-4b5c-4d6e-8f70-1a2b3c4d5e6f",
        )
        .replace("Failed console logins", "Console logins");
    std::fs::write(directory.join("logins.yaml"), &second).unwrap();

    let mut stack = TestStack::start_with(StackOptions {
        environment: vec![(
            "ORGTRAIL_DETECTIONS__RULES_DIRECTORY".into(),
            directory.display().to_string(),
        )],
        ..StackOptions::default()
    })
    .await;
    let loaded = rules_by_origin(&stack, "directory").await;
    assert_eq!(
        loaded.keys().cloned().collect::<Vec<_>>(),
        [
            "3c0e8c54-7e31-4f6a-9b87-2d0b5c1b8f10",
            "5d1e2f3a-4b5c-4d6e-8f70-1a2b3c4d5e6f"
        ]
    );
    let checked = check_config(&stack, &directory);
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(stdout.contains("2 Sigma rules"), "{stdout}");

    // A refused file: check-config fails naming it and why; serve still starts, keeps the
    // good rules, and deletes nothing while a file is unusable.
    std::fs::write(
        directory.join("typo.yml"),
        FAILED_LOGINS.replace("eventName: ConsoleLogin", "src_ip: 10.0.0.1"),
    )
    .unwrap();
    std::fs::remove_file(directory.join("logins.yaml")).unwrap();
    let checked = check_config(&stack, &directory);
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(!checked.status.success());
    assert!(
        stderr.contains("typo.yml") && stderr.contains("src_ip"),
        "{stderr}"
    );
    stack.restart_aggregator();
    assert_eq!(rules_by_origin(&stack, "directory").await.len(), 2);
    assert!(stack.aggregator_log().contains("typo.yml"));

    // The folder fixed: the rule whose file is gone is deleted, a changed one is a new
    // version, and one disabled through the API is enabled again (the folder decides).
    std::fs::remove_file(directory.join("typo.yml")).unwrap();
    std::fs::write(
        directory.join("failed-logins.yml"),
        FAILED_LOGINS.replace("level: medium", "level: high"),
    )
    .unwrap();
    RuleServiceClient::new(stack.channel().await)
        .disable_rule(pb::DisableRuleRequest {
            rule_id: "3c0e8c54-7e31-4f6a-9b87-2d0b5c1b8f10".into(),
        })
        .await
        .unwrap();
    stack.restart_aggregator();
    let loaded = rules_by_origin(&stack, "directory").await;
    assert_eq!(
        loaded,
        BTreeMap::from([(
            "3c0e8c54-7e31-4f6a-9b87-2d0b5c1b8f10".to_string(),
            (3, true)
        )])
    );
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, actor FROM audit_log WHERE subject = '5d1e2f3a-4b5c-4d6e-8f70-1a2b3c4d5e6f' ORDER BY audit_id",
    )
    .fetch_all(&stack.pool().await)
    .await
    .unwrap();
    assert_eq!(
        audited.last(),
        Some(&(
            "rule.delete".to_string(),
            "orgtrail (detections.rules_directory)".to_string()
        ))
    );
    let _ = std::fs::remove_dir_all(&directory);
}
