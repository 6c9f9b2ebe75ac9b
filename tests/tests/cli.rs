//! The `orgtrail` command line against a running aggregator: a backfill, lookups in every
//! output format, and bad input named on stderr.

use std::collections::BTreeMap;
use std::time::Duration;

use orgtrail_tests::cli_process::run_orgtrail;
use orgtrail_tests::memory_file::{gzip, log_file_json};
use orgtrail_tests::samples::{data_dir, expected_event, invictus_records, sample_files_of};
use orgtrail_tests::TestStack;
use serde_json::Value;

const BOUND: Duration = Duration::from_secs(180);

fn text(output: &[u8]) -> String {
    String::from_utf8_lossy(output).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_then_jsonl_prints_every_matching_original_record_across_pages() {
    let stack = TestStack::start().await;
    let endpoint = stack.endpoint();
    let invictus = data_dir().join("invictus-ir-aws_dataset");
    let output = run_orgtrail(
        &[
            "--endpoint",
            &endpoint,
            "ingest",
            &invictus.to_string_lossy(),
        ],
        BOUND,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let files = sample_files_of("invictus-ir-aws_dataset");
    assert!(
        text(&output.stdout).contains(&format!(
            "files: {} committed, 0 already ingested, 0 failed",
            files.len()
        )),
        "{}",
        text(&output.stdout)
    );

    // More ec2 events than one page holds: every one printed once, byte for byte.
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for record in files.iter().flat_map(|file| &file.records) {
        let event = expected_event(record, None).unwrap();
        if event.event_source.as_deref() == Some("ec2.amazonaws.com") {
            *expected.entry(record.clone()).or_default() += 1;
        }
    }
    assert!(expected.len() > 500, "the lookup spans more than one page");
    let output = run_orgtrail(
        &[
            "--endpoint",
            &endpoint,
            "events",
            "lookup",
            "--attr",
            "EventSource=ec2.amazonaws.com",
            "--output",
            "jsonl",
        ],
        BOUND,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut printed: BTreeMap<String, usize> = BTreeMap::new();
    for line in text(&output.stdout).lines() {
        *printed.entry(line.to_string()).or_default() += 1;
    }
    assert_eq!(printed, expected);
}

/// The record without any whitespace at all: equal for two texts that differ only in
/// whitespace outside strings, once their parsed values are equal too (which pins the
/// whitespace inside strings).
fn without_whitespace(text: &str) -> String {
    text.chars().filter(|c| !c.is_ascii_whitespace()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_prints_pretty_printed_records_one_per_line_losslessly() {
    let stack = TestStack::start().await;
    let endpoint = stack.endpoint();
    let stratus = data_dir().join("stratus-red-team-detonation-logs");
    let output = run_orgtrail(
        &[
            "--endpoint",
            &endpoint,
            "ingest",
            &stratus.to_string_lossy(),
        ],
        BOUND,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let records: BTreeMap<String, String> = sample_files_of("stratus-red-team-detonation-logs")
        .iter()
        .flat_map(|file| &file.records)
        .map(|record| {
            (
                expected_event(record, None).unwrap().event_id,
                record.clone(),
            )
        })
        .collect();
    assert!(
        records
            .values()
            .filter(|record| record.contains('\n'))
            .count()
            > 100,
        "the Stratus Red Team files hold pretty-printed records"
    );

    let output = run_orgtrail(
        &[
            "--endpoint",
            &endpoint,
            "events",
            "lookup",
            "--output",
            "jsonl",
        ],
        BOUND,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert_eq!(
        stdout.lines().count(),
        records.len(),
        "exactly one line per event"
    );
    for line in stdout.lines() {
        let printed: Value = serde_json::from_str(line).expect("each line is one JSON record");
        let event_id = printed["eventID"].as_str().unwrap();
        let original = &records[event_id];
        assert_eq!(
            printed,
            serde_json::from_str::<Value>(original).unwrap(),
            "{event_id}: every key and value as stored"
        );
        assert_eq!(
            without_whitespace(line),
            without_whitespace(original),
            "{event_id}: nothing but insignificant whitespace removed (keys in order, numbers as written)"
        );
    }

    let output = run_orgtrail(
        &[
            "--endpoint",
            &endpoint,
            "events",
            "lookup",
            "--max",
            "5",
            "--output",
            "json",
        ],
        BOUND,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let events: Vec<Value> = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(events.len(), 5);
    for event in &events {
        let original = &records[event["eventId"].as_str().unwrap()];
        assert_eq!(
            event["cloudTrailEvent"],
            serde_json::from_str::<Value>(original).unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_print_tables_and_json_and_refuse_unknown_keys() {
    let stack = TestStack::start().await;
    let endpoint = stack.endpoint();
    let grycap = data_dir().join("grycap-cloudtrail-tracker");
    let output = run_orgtrail(
        &[
            "--endpoint",
            &endpoint,
            "ingest",
            "--streams",
            "2",
            &grycap.to_string_lossy(),
        ],
        BOUND,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    let output = run_orgtrail(
        &[
            "--endpoint",
            &endpoint,
            "events",
            "lookup",
            "--attr",
            "EventName=ConsoleLogin",
            "--max",
            "3",
            "--output",
            "json",
        ],
        BOUND,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let events: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(events.len(), 3);
    for event in &events {
        assert_eq!(event["eventName"], "ConsoleLogin");
        assert_eq!(
            event["cloudTrailEvent"]["eventName"], "ConsoleLogin",
            "the original record is embedded as JSON"
        );
    }
    assert!(text(&output.stderr).contains("more events match"));

    let output = run_orgtrail(
        &[
            "--endpoint",
            &endpoint,
            "events",
            "lookup",
            "--attr",
            "Username=root",
            "--start",
            "2014-09-26",
            "--end",
            "2014-09-26",
        ],
        BOUND,
    );
    let table = text(&output.stdout);
    assert!(table.starts_with("EVENT TIME"), "{table}");
    assert_eq!(
        table.lines().count(),
        2,
        "the header and the one root sign-in of that day: {table}"
    );
    assert!(table.contains("ConsoleLogin"));

    let output = run_orgtrail(&["--endpoint", &endpoint, "events", "summary"], BOUND);
    assert!(
        text(&output.stdout).contains("974349055189  sa-east-1"),
        "{}",
        text(&output.stdout)
    );

    let output = run_orgtrail(
        &[
            "--endpoint",
            &endpoint,
            "events",
            "lookup",
            "--attr",
            "Colour=red",
        ],
        BOUND,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("is not one of EventId, EventName"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_named_on_stderr_and_the_exit_status_says_so() {
    let stack = TestStack::start().await;
    let endpoint = stack.endpoint();
    let directory = std::env::temp_dir().join(format!(
        "orgtrail-cli-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&directory).unwrap();
    let records = invictus_records(300);
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let compressed = gzip(&log_file_json(&refs));
    let truncated = directory.join("truncated.json.gz");
    std::fs::write(&truncated, &compressed[..compressed.len() / 2]).unwrap();
    let mixed = directory.join("mixed.json.gz");
    std::fs::write(
        &mixed,
        gzip(&log_file_json(&[
            refs[0],
            r#"{"eventTime":"2023-07-10T11:42:36Z"}"#,
        ])),
    )
    .unwrap();

    let output = run_orgtrail(
        &[
            "--endpoint",
            &endpoint,
            "ingest",
            &directory.to_string_lossy(),
        ],
        BOUND,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let truncated_path = truncated.canonicalize().unwrap();
    let mixed_path = mixed.canonicalize().unwrap();
    assert!(
        stderr.contains(&format!(
            "fault: {}: gzip stream is corrupt or truncated after",
            truncated_path.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "rejected: {}: record 1: record has no eventID",
            mixed_path.display()
        )),
        "{stderr}"
    );

    let output = run_orgtrail(
        &[
            "--endpoint",
            "https://127.0.0.1:1",
            "ingest",
            &truncated_path.to_string_lossy(),
        ],
        BOUND,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("cannot connect to the aggregator at https://127.0.0.1:1"),
        "{}",
        text(&output.stderr)
    );
    std::fs::remove_dir_all(&directory).unwrap();
}
