//! A corpus of hostile and malformed input, sent the way a collector sends files: none crashes
//! or wedges the aggregator, each is refused — the record with its index, or the file with its
//! fault — and kept in the quarantine with its reason, and the valid records beside it are
//! stored.

use std::collections::HashSet;
use std::sync::Arc;

use orgtrail_api::v1 as pb;
use orgtrail_api::v1::quarantine_service_client::QuarantineServiceClient;
use orgtrail_client::{FileOutcome, LogFileReader, SenderSettings};
use orgtrail_domain::log_file::ReadLimits;
use orgtrail_tests::cli_process::run_orgtrail;
use orgtrail_tests::memory_file::{gzip, log_file_json, MemoryLogFile};
use orgtrail_tests::samples::{invictus_records, record_event_id};
use orgtrail_tests::{send_all, TestStack};
use serde_json::{json, Value};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// The decompressed size the test's reader allows (the default is 4 GiB; a bomb that size
/// would only make the test slow).
const BOMB_LIMIT: u64 = 64 << 20;

/// What the corpus expects of a file: a fault of the whole file (after the good records before
/// it), or one refused record at index 1 between two good ones.
enum Expect {
    Fault(&'static str),
    Rejected(&'static str),
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
    /// The good records of the file (stored whatever happens to the bad part).
    good: Vec<String>,
}

fn with_field(record: &str, field: &str, value: Value) -> String {
    let mut parsed: serde_json::Map<String, Value> = serde_json::from_str(record).unwrap();
    parsed.insert(field.to_string(), value);
    serde_json::to_string(&parsed).unwrap()
}

/// good, bad, good, as one gzip'd log file.
fn sandwich(records: &mut impl Iterator<Item = String>, bad: &str) -> (Vec<u8>, Vec<String>) {
    let first = records.next().unwrap();
    let last = records.next().unwrap();
    let bytes = format!("{{\"Records\":[{first},{bad},{last}]}}").into_bytes();
    (gzip(&bytes), vec![first, last])
}

fn corpus() -> Vec<Case> {
    let mut records = invictus_records(200).into_iter();
    let mut cases = Vec::new();
    let mut record_case = |name: &'static str, bad: String, reason: &'static str| {
        let (bytes, good) = sandwich(&mut records, &bad);
        (name, bytes, Expect::Rejected(reason), good)
    };
    let template = invictus_records(1).remove(0);
    let mut pending = vec![
        record_case(
            "wrong type: eventTime",
            with_field(&template, "eventTime", json!(12)),
            "eventTime",
        ),
        record_case(
            "wrong type: eventID",
            with_field(&template, "eventID", json!({"a": 1})),
            "eventID",
        ),
        record_case(
            "wrong type: eventName",
            with_field(&template, "eventName", json!(["x"])),
            "eventName",
        ),
        record_case(
            "wrong type: eventSource",
            with_field(&template, "eventSource", json!(7)),
            "eventSource",
        ),
        record_case(
            "wrong type: awsRegion",
            with_field(&template, "awsRegion", json!(true)),
            "awsRegion",
        ),
        record_case(
            "wrong type: recipientAccountId",
            with_field(&template, "recipientAccountId", json!(123456789012u64)),
            "recipientAccountId",
        ),
        record_case(
            "wrong type: readOnly",
            with_field(&template, "readOnly", json!("yes")),
            "readOnly",
        ),
        record_case(
            "wrong type: userIdentity",
            with_field(&template, "userIdentity", json!("root")),
            "userIdentity",
        ),
        record_case(
            "wrong type: sourceIPAddress",
            with_field(&template, "sourceIPAddress", json!(10)),
            "sourceIPAddress",
        ),
        record_case(
            "wrong type: resources",
            with_field(&template, "resources", json!("arn:aws:s3:::b")),
            "resources",
        ),
        record_case(
            "wrong type: eventCategory",
            with_field(&template, "eventCategory", json!(1)),
            "eventCategory",
        ),
        record_case(
            "unparseable eventTime",
            with_field(&template, "eventTime", json!("yesterday")),
            "eventTime",
        ),
        record_case(
            "unknown eventVersion",
            with_field(&template, "eventVersion", json!("9.99")),
            "eventVersion",
        ),
        record_case(
            "record not an object",
            "\"just a string\"".to_string(),
            "not a JSON object",
        ),
        record_case(
            "no eventID",
            {
                let mut parsed: serde_json::Map<String, Value> =
                    serde_json::from_str(&template).unwrap();
                parsed.remove("eventID");
                serde_json::to_string(&parsed).unwrap()
            },
            "eventID",
        ),
        record_case(
            "duplicate keys",
            {
                let text = with_field(&template, "eventName", json!("First"));
                text.replacen('{', "{\"eventName\":\"Second\",", 1)
            },
            "duplicate",
        ),
        record_case(
            "NUL in a searchable field",
            with_field(&template, "userAgent", json!("curl\u{0}/8")),
            "NUL",
        ),
        record_case(
            "a 200 KB event name",
            with_field(&template, "eventName", json!("A".repeat(200_000))),
            "eventName",
        ),
        record_case(
            "deeply nested JSON",
            with_field(&template, "requestParameters", {
                let mut value = json!(1);
                for _ in 0..100 {
                    value = json!([value]);
                }
                value
            })
            .replacen("[[[", &"[".repeat(5000), 1)
            .replacen("]]]", &"]".repeat(5000), 1),
            "nests deeper",
        ),
        record_case(
            "a 10 MB record",
            with_field(
                &template,
                "requestParameters",
                json!({"blob": "x".repeat(10 << 20)}),
            ),
            "over the limit",
        ),
    ];
    for (name, bytes, expect, good) in pending.drain(..) {
        cases.push(Case {
            name,
            bytes,
            expect,
            good,
        });
    }

    // Invalid UTF-8 inside a record's string.
    let first = records.next().unwrap();
    let last = records.next().unwrap();
    let bad = with_field(&template, "userAgent", json!("MARK"));
    let mut bytes = format!("{{\"Records\":[{first},{bad},{last}]}}").into_bytes();
    let mark = bytes
        .windows(4)
        .position(|window| window == b"MARK")
        .unwrap();
    bytes[mark] = 0xff;
    bytes[mark + 1] = 0xfe;
    cases.push(Case {
        name: "invalid UTF-8",
        bytes: gzip(&bytes),
        expect: Expect::Fault("not valid JSON"),
        good: vec![first],
    });

    // File-level: good records, then the damage.
    let good: Vec<String> = (0..20).map(|_| records.next().unwrap()).collect();
    let refs: Vec<&str> = good.iter().map(String::as_str).collect();
    let compressed = gzip(&log_file_json(&refs));
    cases.push(Case {
        name: "truncated gzip",
        bytes: compressed[..compressed.len() * 6 / 10].to_vec(),
        expect: Expect::Fault("gzip stream is corrupt or truncated"),
        good,
    });
    // A gzip bomb: a few hundred KB that inflate past the reader's limit (4 GiB by default;
    // 64 MiB in this test, see BOMB_LIMIT).
    let mut bomb = b"{\"Records\":[".to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 100 << 20));
    cases.push(Case {
        name: "gzip bomb",
        bytes: gzip(&bomb),
        expect: Expect::Fault("decompresses to more than"),
        good: Vec::new(),
    });
    // A huge Records array of junk: every element refused, the file survives.
    let mut huge = b"{\"Records\":[".to_vec();
    for index in 0..200_000 {
        if index > 0 {
            huge.push(b',');
        }
        huge.extend_from_slice(b"{}");
    }
    huge.extend_from_slice(b"]}");
    cases.push(Case {
        name: "a huge Records array",
        bytes: gzip(&huge),
        expect: Expect::Rejected("eventID"),
        good: Vec::new(),
    });
    cases.push(Case {
        name: "an empty file",
        bytes: Vec::new(),
        expect: Expect::Fault("file is empty"),
        good: Vec::new(),
    });
    cases.push(Case {
        name: "a nested file",
        bytes: gzip(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).as_bytes()),
        expect: Expect::Fault(""),
        good: Vec::new(),
    });
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_with_its_reason_quarantined_and_its_neighbours_are_stored() {
    let stack = TestStack::start().await;
    let cases = corpus();
    assert!(cases.len() >= 20, "{} kinds", cases.len());
    let sender = stack
        .ingest_sender(SenderSettings {
            read_limits: ReadLimits {
                max_decompressed_bytes: BOMB_LIMIT,
                ..ReadLimits::default()
            },
            ..SenderSettings::default()
        })
        .await;
    let files: Vec<Arc<dyn LogFileReader>> = cases
        .iter()
        .enumerate()
        .map(|(number, case)| {
            MemoryLogFile::shared(
                "hostile-bucket",
                &format!(
                    "AWSLogs/123837392027/CloudTrail/us-east-1/2024/01/01/case-{number:02}.json.gz"
                ),
                case.bytes.clone(),
            )
        })
        .collect();
    let mut results = send_all(&sender, files).await;
    assert_eq!(results.len(), cases.len());
    // Answers come as files finish; put them in the corpus's order (the keys sort by number).
    results.sort_by(|a, b| a.origin.object_key.cmp(&b.origin.object_key));

    let mut problems = Vec::new();
    let mut want_stored = HashSet::new();
    for (case, result) in cases.iter().zip(&results) {
        let report = match &result.result {
            Ok(report) => report,
            Err(error) => {
                problems.push(format!("{}: not delivered: {error}", case.name));
                continue;
            }
        };
        if report.outcome != FileOutcome::Committed {
            problems.push(format!("{}: {:?}", case.name, report.outcome));
        }
        match &case.expect {
            Expect::Fault(reason) => {
                let fault = report.fault.clone().unwrap_or_default();
                if fault.is_empty() || !fault.contains(reason) {
                    problems.push(format!(
                        "{}: fault {fault:?}, rejections {:?}; expected a fault naming {reason:?}",
                        case.name, report.rejections
                    ));
                }
            }
            Expect::Rejected(reason) => {
                let named = report
                    .rejections
                    .iter()
                    .any(|(_, text)| text.contains(reason));
                if report.rejected == 0 || !named {
                    problems.push(format!(
                        "{}: rejections {:?}, fault {:?}; expected one naming {reason:?}",
                        case.name, report.rejections, report.fault
                    ));
                }
            }
        }
        // A fault keeps the records before it: the first `accepted` of the good ones.
        let kept = match case.expect {
            Expect::Fault(_) => report.accepted as usize,
            Expect::Rejected(_) => case.good.len(),
        };
        if kept > case.good.len() {
            problems.push(format!(
                "{}: {kept} stored of {} good records",
                case.name,
                case.good.len()
            ));
        }
        want_stored.extend(
            case.good
                .iter()
                .take(kept)
                .map(|record| record_event_id(record)),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The valid records beside the bad ones are stored, nothing else.
    assert_eq!(stack.stored_event_ids().await, want_stored);

    // Each refusal is in the quarantine with its reason and origin; the huge array's beyond
    // the per-file cap are counted in one entry.
    let pool = stack.pool().await;
    let per_file: Vec<(String, i64)> = sqlx::query_as(
        "SELECT object_key, count(*) FROM quarantine GROUP BY object_key ORDER BY object_key",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(per_file.len(), cases.len(), "{per_file:?}");
    let huge = cases
        .iter()
        .position(|case| case.name == "a huge Records array")
        .unwrap();
    assert_eq!(per_file[huge].1, 1001);
    let sealed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM quarantine WHERE content IS NOT NULL AND key_id IS NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(sealed, 0, "quarantined content is sealed");

    // Readable through the API and the CLI.
    let mut quarantine = QuarantineServiceClient::new(stack.channel().await);
    // Page through the whole list (the huge array alone fills a page).
    let mut listed = Vec::new();
    let mut next_token = String::new();
    loop {
        let page = quarantine
            .list_quarantine(pb::ListQuarantineRequest {
                max_results: 1000,
                next_token: next_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.entries);
        if page.next_token.is_empty() {
            break;
        }
        next_token = page.next_token;
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM quarantine")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(listed.len() as i64, total);
    let nul = listed
        .iter()
        .find(|entry| entry.reason.contains("NUL"))
        .expect("the NUL record is quarantined");
    let shown = quarantine
        .get_quarantined(pb::GetQuarantinedRequest {
            quarantine_id: nul.quarantine_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(String::from_utf8_lossy(&shown.content).contains("curl\\u0000/8"));
    let output = run_orgtrail(
        &[
            "--endpoint",
            &stack.endpoint(),
            "quarantine",
            "list",
            "--max",
            "5",
        ],
        std::time::Duration::from_secs(60),
    );
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 6);

    // Still serving.
    HealthClient::new(stack.channel().await)
        .check(HealthCheckRequest::default())
        .await
        .expect("the aggregator still serves");
}
