//! The `orgtrail rules|detections|findings|suppressions` commands against a running
//! aggregator: the Stratus Red Team detonations raise the findings the independent evaluator
//! (`data/sigma/EXPECTED.json`) lists, each shown with its rule's author; a finding is shown
//! with its event and record and triaged (audited); a rule added from a file raises findings on
//! a replay, once; a bad rule file is refused by name; a backtest counts matches per day;
//! suppressions are made, listed and deleted; a destination takes findings at or above its
//! level. Every expectation is computed from the sample files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use orgtrail_tests::cli_process::{orgtrail_at, orgtrail_json_at, orgtrail_ok_at};
use orgtrail_tests::memory_file::{gzip, log_file_json};
use orgtrail_tests::receiver::NotificationReceiver;
use orgtrail_tests::samples::{data_dir, invictus_records, sample_files_of};
use orgtrail_tests::{test_now, StackOptions, TestStack, WAIT};
use serde_json::Value;

const STRATUS: &str = "stratus-red-team-detonation-logs";

/// A rule of the team's own: every EC2 API call (the detonations make many, over several days).
const EC2_CALLS_RULE_ID: &str = "7d6c2f0e-3b1a-4e59-9c8d-1f2a3b4c5d6e";
const EC2_CALLS_RULE: &str = r#"title: EC2 API calls by the detonations
id: 7d6c2f0e-3b1a-4e59-9c8d-1f2a3b4c5d6e
status: experimental
description: Every EC2 API call (orgtrail CLI tests).
author: orgtrail CLI tests
level: low
tags:
  - attack.discovery
  - attack.t1580
logsource:
  product: aws
  service: cloudtrail
detection:
  selection:
    eventSource: ec2.amazonaws.com
  condition: selection
"#;

fn text(output: &[u8]) -> String {
    String::from_utf8_lossy(output).into_owned()
}

fn ingest_stratus(stack: &TestStack) {
    let directory = data_dir().join(STRATUS);
    orgtrail_ok_at(stack, &["ingest", &directory.to_string_lossy()]);
}

/// The Stratus records, one per eventID.
fn stratus_records() -> BTreeMap<String, Value> {
    sample_files_of(STRATUS)
        .iter()
        .flat_map(|file| &file.records)
        .map(|record| {
            let value: Value = serde_json::from_str(record).unwrap();
            (value["eventID"].as_str().unwrap().to_string(), value)
        })
        .collect()
}

/// A built-in rule as EXPECTED.json lists it: its title, its author, and how many Stratus
/// records it matches.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ExpectedRule {
    title: String,
    author: String,
    stratus_matches: usize,
}

/// EXPECTED.json's rules that match any Stratus record.
fn rules_matching_stratus() -> BTreeMap<String, ExpectedRule> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sigma/EXPECTED.json");
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let stratus = stratus_records();
    expected["rules"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(rule_id, rule)| {
            let matches: BTreeSet<&str> = rule["eventIDs"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .filter(|event_id| stratus.contains_key(*event_id))
                .collect();
            (!matches.is_empty()).then(|| {
                (
                    rule_id.clone(),
                    ExpectedRule {
                        title: rule["title"].as_str().unwrap().to_string(),
                        author: rule["author"].as_str().unwrap().to_string(),
                        stratus_matches: matches.len(),
                    },
                )
            })
        })
        .collect()
}

/// The Stratus records the team's EC2 rule matches.
fn ec2_calls() -> Vec<Value> {
    stratus_records()
        .into_values()
        .filter(|record| record["eventSource"] == "ec2.amazonaws.com")
        .collect()
}

/// The UTC days of the Stratus records, first and last: the replay window.
fn stratus_days() -> (String, String) {
    let days: BTreeSet<String> = stratus_records()
        .values()
        .map(|record| record["eventTime"].as_str().unwrap()[..10].to_string())
        .collect();
    (days.first().unwrap().clone(), days.last().unwrap().clone())
}

/// A directory of the test's own, removed when dropped.
struct TemporaryDirectory(PathBuf);

impl TemporaryDirectory {
    fn new() -> TemporaryDirectory {
        let path = std::env::temp_dir().join(format!(
            "orgtrail-findings-cli-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).unwrap();
        TemporaryDirectory(path)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for TemporaryDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stratus_detonations_raise_findings_listed_with_their_authors_shown_and_triaged() {
    let stack = TestStack::start().await;
    ingest_stratus(&stack);
    let expected = rules_matching_stratus();
    assert!(!expected.is_empty(), "the detonations match SigmaHQ rules");

    let findings = orgtrail_json_at(
        &stack,
        &["findings", "list", "--kind", "sigma", "--max", "1000"],
    );
    let findings = findings.as_array().unwrap();
    let mut listed: BTreeMap<String, (BTreeSet<String>, usize)> = BTreeMap::new();
    for finding in findings {
        let entry = listed
            .entry(finding["ruleId"].as_str().unwrap().to_string())
            .or_default();
        entry
            .0
            .insert(finding["author"].as_str().unwrap().to_string());
        entry.1 += 1;
    }
    let want: BTreeMap<String, (BTreeSet<String>, usize)> = expected
        .iter()
        .map(|(rule_id, rule)| {
            (
                rule_id.clone(),
                (BTreeSet::from([rule.author.clone()]), rule.stratus_matches),
            )
        })
        .collect();
    assert_eq!(
        listed, want,
        "one finding per matching record, each with its rule's author"
    );
    let titles: BTreeSet<&str> = findings
        .iter()
        .map(|finding| finding["title"].as_str().unwrap())
        .collect();
    let expected_titles: BTreeSet<&str> =
        expected.values().map(|rule| rule.title.as_str()).collect();
    assert_eq!(titles, expected_titles);

    // The table shows each finding's author beside its title.
    let table = orgtrail_ok_at(
        &stack,
        &["findings", "list", "--kind", "sigma", "--max", "1000"],
    );
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("TITLE") && header.contains("AUTHOR"),
        "{header}"
    );
    assert_eq!(lines.clone().count(), findings.len());
    for line in lines {
        assert!(
            expected
                .values()
                .any(|rule| line.contains(&rule.title) && line.contains(&rule.author)),
            "a finding without its rule's title and author: {line}"
        );
    }

    // One finding, with its author, its event and its original record.
    let finding = &findings[0];
    let finding_id = finding["findingId"].as_i64().unwrap().to_string();
    let shown = orgtrail_ok_at(&stack, &["findings", "show", &finding_id]);
    let author = finding["author"].as_str().unwrap();
    assert!(
        shown.contains(&format!("author            {author}\n")),
        "{shown}"
    );
    assert!(
        shown.contains("\nevent\n") && shown.contains("\noriginal record\n"),
        "{shown}"
    );
    let detail = orgtrail_json_at(&stack, &["findings", "show", &finding_id]);
    let event_id = detail["event"]["eventId"].as_str().unwrap();
    assert_eq!(detail["finding"]["eventIds"][0], event_id);
    let record = &detail["cloudTrailEvent"];
    assert_eq!(
        record,
        &stratus_records()[record["eventID"].as_str().unwrap()],
        "the original record as delivered"
    );
    assert!(
        shown.contains(&format!("  event id        {event_id}\n")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "  name            {}\n",
            record["eventName"].as_str().unwrap()
        )),
        "{shown}"
    );

    // Triage: the state moves, and the audit log has it.
    let changed = orgtrail_ok_at(
        &stack,
        &[
            "findings",
            "ack",
            &finding_id,
            "--reason",
            "looking into it",
        ],
    );
    assert!(
        changed.contains("state             acknowledged\n"),
        "{changed}"
    );
    let acknowledged = orgtrail_json_at(&stack, &["findings", "list", "--state", "acknowledged"]);
    let ids: Vec<i64> = acknowledged
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| finding["findingId"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [finding["findingId"].as_i64().unwrap()]);
    let audited = orgtrail_json_at(&stack, &["audit", "list", "--action", "finding."]);
    let audited = audited.as_array().unwrap();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["subject"], format!("finding {finding_id}"));
    assert_eq!(audited[0]["after"]["state"], "acknowledged");
    assert_eq!(audited[0]["after"]["reason"], "looking into it");
    assert!(
        audited[0]["actor"]
            .as_str()
            .unwrap_or_default()
            .contains("[stated: "),
        "the CLI says who acts: {}",
        audited[0]["actor"]
    );
    let reopened = orgtrail_ok_at(
        &stack,
        &["findings", "reopen", &finding_id, "--reason", "not done"],
    );
    assert!(reopened.contains("state             open\n"), "{reopened}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_added_from_a_file_raises_its_findings_on_a_replay_once() {
    let stack = TestStack::start().await;
    ingest_stratus(&stack);

    let rules = orgtrail_json_at(&stack, &["rules", "list"]);
    let rules = rules.as_array().unwrap();
    assert_eq!(rules.len(), 56, "SigmaHQ's CloudTrail rules are built in");
    assert!(rules.iter().all(|rule| rule["origin"] == "builtin"
        && rule["enabled"] == true
        && !rule["author"].as_str().unwrap_or_default().is_empty()));
    let table = orgtrail_ok_at(&stack, &["rules", "list"]);
    assert_eq!(table.lines().count(), 57, "a header and 56 rules");
    assert!(table.starts_with("RULE ID"), "{table}");

    let directory = TemporaryDirectory::new();
    directory.write("ec2-calls.yml", EC2_CALLS_RULE);
    directory.write("README.txt", "not a rule: not read");
    let added = orgtrail_ok_at(&stack, &["rules", "add", &directory.path()]);
    assert!(added.contains(EC2_CALLS_RULE_ID), "{added}");
    assert!(added.ends_with("1 added, 0 unchanged\n"), "{added}");
    let again = orgtrail_ok_at(&stack, &["rules", "add", &directory.path()]);
    assert!(
        again.ends_with(&format!(
            "unchanged: {EC2_CALLS_RULE_ID}\n0 added, 1 unchanged\n"
        )),
        "{again}"
    );
    let shown = orgtrail_ok_at(&stack, &["rules", "show", EC2_CALLS_RULE_ID]);
    assert!(
        shown.contains("author       orgtrail CLI tests\n"),
        "{shown}"
    );
    assert!(shown.contains("origin       operator\n"), "{shown}");
    assert!(
        shown.ends_with(EC2_CALLS_RULE),
        "the rule as written: {shown}"
    );

    // A replay over the samples' window raises the new rule's findings; the built-in rules'
    // were raised at ingest.
    let (first_day, last_day) = stratus_days();
    let replay = [
        "detections",
        "replay",
        "--start",
        &first_day,
        "--end",
        &last_day,
    ];
    let ec2_calls = ec2_calls().len();
    let builtin_matches: usize = rules_matching_stratus()
        .values()
        .map(|rule| rule.stratus_matches)
        .sum();
    let events = stratus_records().len();
    let report = orgtrail_ok_at(&stack, &replay);
    assert_eq!(
        report,
        format!(
            "{events} events scanned, {} matches, {ec2_calls} findings raised, 0 suppressed\n",
            ec2_calls + builtin_matches
        )
    );
    let report = orgtrail_json_at(&stack, &replay);
    assert_eq!(report["findingsRaised"], 0, "a second replay raises none");
    assert_eq!(report["matches"], ec2_calls + builtin_matches);

    let raised = orgtrail_json_at(
        &stack,
        &[
            "findings",
            "list",
            "--rule",
            EC2_CALLS_RULE_ID,
            "--max",
            "1000",
        ],
    );
    let raised = raised.as_array().unwrap();
    assert_eq!(raised.len(), ec2_calls);
    assert!(raised
        .iter()
        .all(|finding| finding["author"] == "orgtrail CLI tests"
            && finding["level"] == "low"
            && finding["attackTechniques"] == serde_json::json!(["T1580"])));
    // At or above medium: the built-in rules' medium and high findings, not the new low ones.
    let medium = orgtrail_json_at(
        &stack,
        &[
            "findings", "list", "--level", "medium", "--kind", "sigma", "--max", "1000",
        ],
    );
    assert!(medium
        .as_array()
        .unwrap()
        .iter()
        .all(|finding| finding["level"] == "medium" || finding["level"] == "high"));

    let disabled = orgtrail_ok_at(&stack, &["rules", "disable", EC2_CALLS_RULE_ID]);
    assert!(disabled.contains("disabled, version 2"), "{disabled}");
    let deleted = orgtrail_ok_at(&stack, &["rules", "delete", EC2_CALLS_RULE_ID]);
    assert_eq!(deleted, format!("rule {EC2_CALLS_RULE_ID} deleted\n"));
    let builtin = rules[0]["ruleId"].as_str().unwrap();
    let output = orgtrail_at(&stack, &["rules", "delete", builtin]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("disable it"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rule_file_is_refused_by_name_and_a_backtest_counts_matches_per_day() {
    let stack = TestStack::start().await;
    ingest_stratus(&stack);
    let directory = TemporaryDirectory::new();
    let good = directory.write("ec2-calls.yml", EC2_CALLS_RULE);
    let bad = directory.write(
        "typo.yml",
        EC2_CALLS_RULE
            .replace("eventSource: ec2.amazonaws.com", "src_ip: 10.0.0.1")
            .replace(EC2_CALLS_RULE_ID, "0b0c7d2e-5f4a-4b3c-9d8e-7f6a5b4c3d2e"),
    );

    let output = orgtrail_at(
        &stack,
        &[
            "rules",
            "add",
            &good.to_string_lossy(),
            &bad.to_string_lossy(),
        ],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot add the rules: {}: ", bad.display()))
            && stderr.contains("src_ip"),
        "the file and the reason: {stderr}"
    );
    let rules = orgtrail_json_at(&stack, &["rules", "list"]);
    assert_eq!(
        rules.as_array().unwrap().len(),
        56,
        "all or nothing: the good file was not added either"
    );
    let missing = directory.0.join("missing.yml");
    let output = orgtrail_at(&stack, &["rules", "add", &missing.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains(&format!("cannot read {}", missing.display())),
        "{}",
        text(&output.stderr)
    );

    // A backtest: matches per day, the first events, the counts; nothing raised.
    let tested = orgtrail_ok_at(
        &stack,
        &["rules", "test", &good.to_string_lossy(), "--events", "5"],
    );
    let calls = ec2_calls();
    let mut per_day: BTreeMap<String, usize> = BTreeMap::new();
    for record in &calls {
        *per_day
            .entry(record["eventTime"].as_str().unwrap()[..10].to_string())
            .or_default() += 1;
    }
    assert!(per_day.len() > 1, "the EC2 calls span several days");
    let day_rows: Vec<String> = tested
        .lines()
        .skip_while(|line| !line.starts_with("DAY"))
        .skip(1)
        .take_while(|line| !line.is_empty())
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let want: Vec<String> = per_day
        .iter()
        .map(|(day, count)| format!("{day} {count}"))
        .collect();
    assert_eq!(day_rows, want, "{tested}");
    let event_rows = tested
        .lines()
        .skip_while(|line| !line.starts_with("EVENT TIME"))
        .skip(1)
        .take_while(|line| !line.is_empty())
        .count();
    assert_eq!(event_rows, 5);
    assert!(
        tested.ends_with(&format!(
            "\n{} events scanned, {} matched\n",
            stratus_records().len(),
            calls.len()
        )),
        "{tested}"
    );
    let raised = orgtrail_json_at(&stack, &["findings", "list", "--rule", EC2_CALLS_RULE_ID]);
    assert_eq!(raised, serde_json::json!([]), "a backtest raises nothing");

    let output = orgtrail_at(&stack, &["rules", "test", &bad.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).starts_with(&format!("error: cannot test {}: ", bad.display())),
        "{}",
        text(&output.stderr)
    );
}

/// A rule of the team's own, high: CloudTrail logging stopped. SigmaHQ's "AWS CloudTrail
/// Important Change" (medium) matches the same events.
const STOP_LOGGING_RULE_ID: &str = "5f1e2d3c-4b5a-4978-8a6b-0c1d2e3f4a5b";
const STOP_LOGGING_RULE: &str = r#"title: CloudTrail logging stopped
id: 5f1e2d3c-4b5a-4978-8a6b-0c1d2e3f4a5b
status: experimental
description: Someone stopped a trail.
author: orgtrail CLI tests
level: high
logsource:
  product: aws
  service: cloudtrail
detection:
  selection:
    eventSource: cloudtrail.amazonaws.com
    eventName: StopLogging
  condition: selection
"#;

/// A real record made a fresh StopLogging call, `minutes_ago` before the tests' now.
fn fresh_stop_logging(minutes_ago: i64) -> String {
    let template = invictus_records(1).remove(0);
    let mut record: serde_json::Map<String, Value> = serde_json::from_str(&template).unwrap();
    record.insert("eventID".into(), uuid::Uuid::new_v4().to_string().into());
    let time: DateTime<Utc> = test_now() - TimeDelta::minutes(minutes_ago);
    record.insert(
        "eventTime".into(),
        time.format("%Y-%m-%dT%H:%M:%SZ").to_string().into(),
    );
    record.insert("eventSource".into(), "cloudtrail.amazonaws.com".into());
    record.insert("eventName".into(), "StopLogging".into());
    serde_json::to_string(&record).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppressions_are_made_listed_and_deleted_and_a_destination_takes_findings_at_its_level() {
    let receiver = NotificationReceiver::start().await;
    let stack = TestStack::start_with(StackOptions {
        environment: vec![
            (
                "ORGTRAIL_NOTIFICATIONS__POLL_INTERVAL_MILLISECONDS".into(),
                "100".into(),
            ),
            ("ORGTRAIL_ALARMS__CIS_BUILTIN".into(), "false".into()),
        ],
        ..StackOptions::default()
    })
    .await;

    let url = receiver.url();
    let created = orgtrail_at(
        &stack,
        &[
            "destinations",
            "create",
            "team",
            "--webhook",
            &url,
            "--finding-level",
            "high",
        ],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(
        text(&created.stderr).contains("high and above"),
        "{}",
        text(&created.stderr)
    );
    let destinations = orgtrail_json_at(&stack, &["destinations", "list"]);
    assert_eq!(destinations[0]["name"], "team");
    assert_eq!(destinations[0]["findingLevel"], "high");

    // One fresh StopLogging: a medium finding (SigmaHQ's) and a high one (the team's); the
    // destination takes only the high one.
    let directory = TemporaryDirectory::new();
    directory.write("stop-logging.yml", STOP_LOGGING_RULE);
    orgtrail_ok_at(&stack, &["rules", "add", &directory.path()]);
    let stop = fresh_stop_logging(20);
    let record: Value = serde_json::from_str(&stop).unwrap();
    let account = record["recipientAccountId"].as_str().unwrap().to_string();
    let file = directory.write("fresh.json.gz", gzip(&log_file_json(&[stop.as_str()])));
    orgtrail_ok_at(&stack, &["ingest", &file.to_string_lossy()]);

    let delivered = receiver.wait_for(1, WAIT).await;
    let body = delivered[0].json();
    assert_eq!(body["kind"], "finding");
    assert_eq!(body["finding"]["ruleId"], STOP_LOGGING_RULE_ID);
    assert_eq!(body["finding"]["author"], "orgtrail CLI tests");
    let findings = orgtrail_json_at(&stack, &["findings", "list"]);
    let levels: BTreeSet<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| finding["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, BTreeSet::from(["medium", "high"]));
    let high = orgtrail_json_at(&stack, &["findings", "list", "--level", "high"]);
    assert_eq!(high.as_array().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.requests().len(),
        1,
        "the medium finding was not sent"
    );

    // Suppressions: made, listed, deleted.
    let made = orgtrail_ok_at(
        &stack,
        &[
            "suppressions",
            "create",
            "--rule",
            STOP_LOGGING_RULE_ID,
            "--account",
            &account,
            "--source-ip",
            "10.0.0.0/8",
            "--reason",
            "the nightly trail rotation",
            "--expires",
            "+7d",
        ],
    );
    let row = made.lines().nth(1).unwrap_or_default();
    let suppression_id = row.split_whitespace().next().unwrap().to_string();
    assert!(
        row.contains(STOP_LOGGING_RULE_ID) && row.contains(&account),
        "{made}"
    );
    let listed = orgtrail_json_at(&stack, &["suppressions", "list"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["suppressionId"].to_string(), suppression_id);
    assert_eq!(listed[0]["sourceIps"], serde_json::json!(["10.0.0.0/8"]));
    assert_eq!(listed[0]["reason"], "the nightly trail rotation");
    let expires = DateTime::parse_from_rfc3339(listed[0]["expiresAt"].as_str().unwrap()).unwrap();
    let from_now = expires.with_timezone(&Utc) - Utc::now();
    assert!(
        from_now > TimeDelta::days(6) && from_now <= TimeDelta::days(7),
        "+7d is a week from now: {expires}"
    );
    let table = orgtrail_ok_at(&stack, &["suppressions", "list"]);
    assert!(table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .starts_with(&suppression_id));

    let output = orgtrail_at(
        &stack,
        &[
            "suppressions",
            "create",
            "--rule",
            STOP_LOGGING_RULE_ID,
            "--account",
            &account,
            "--reason",
            "x",
            "--expires",
            "7d",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("write +7d"),
        "{}",
        text(&output.stderr)
    );

    let deleted = orgtrail_ok_at(
        &stack,
        &[
            "suppressions",
            "delete",
            &suppression_id,
            "--reason",
            "the job was retired",
        ],
    );
    assert_eq!(deleted, format!("suppression {suppression_id} deleted\n"));
    let live = orgtrail_json_at(&stack, &["suppressions", "list"]);
    assert_eq!(live, serde_json::json!([]));
    let all = orgtrail_json_at(&stack, &["suppressions", "list", "--all"]);
    assert_eq!(all.as_array().unwrap().len(), 1, "a deleted one is kept");
    let audited = orgtrail_json_at(&stack, &["audit", "list", "--action", "suppression."]);
    let actions: Vec<&str> = audited
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["suppression.delete", "suppression.create"]);
}
