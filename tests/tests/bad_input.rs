//! Bad input: each kind gets an error naming the file (and the record index) and the reason,
//! and the good records sent with it are stored.

use std::collections::HashSet;

use orgtrail_api::v1 as pb;
use orgtrail_client::{FileOutcome, FileReport, SenderSettings};
use orgtrail_tests::memory_file::{gzip, log_file_json, MemoryLogFile};
use orgtrail_tests::raw_ingest::{end_message, origin, records_message, RawIngestStream};
use orgtrail_tests::samples::{invictus_records, record_event_id};
use orgtrail_tests::{send_all, StackOptions, TestStack, WAIT};
use serde_json::Value;
use tonic::Code;

fn with_field(record: &str, field: &str, value: Option<Value>) -> String {
    let mut parsed: serde_json::Map<String, Value> = serde_json::from_str(record).unwrap();
    match value {
        Some(value) => parsed.insert(field.to_string(), value),
        None => parsed.remove(field),
    };
    serde_json::to_string(&parsed).unwrap()
}

async fn send_one(stack: &TestStack, key: &str, bytes: Vec<u8>) -> FileReport {
    let sender = stack.ingest_sender(SenderSettings::default()).await;
    let mut results = send_all(
        &sender,
        vec![MemoryLogFile::shared("bad-input-bucket", key, bytes)],
    )
    .await;
    assert_eq!(results.len(), 1);
    let result = results.remove(0);
    assert_eq!(result.origin.object_key, key, "the result names the file");
    result
        .result
        .unwrap_or_else(|error| panic!("{key} was not delivered: {error}"))
}

async fn ledger_fault(stack: &TestStack, key: &str) -> Option<String> {
    sqlx::query_scalar("SELECT fault FROM log_files WHERE object_key = $1")
        .bind(key)
        .fetch_one(&stack.pool().await)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_gzip_keeps_the_records_before_the_cut() {
    let stack = TestStack::start().await;
    let records = invictus_records(400);
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let compressed = gzip(&log_file_json(&refs));
    let truncated = compressed[..compressed.len() * 6 / 10].to_vec();

    let key = "AWSLogs/123837392027/CloudTrail/us-east-1/2023/07/10/truncated.json.gz";
    let report = send_one(&stack, key, truncated).await;
    let fault = report.fault.clone().expect("a fault is reported");
    let stored = report.accepted as usize;
    assert!(
        fault.starts_with(&format!(
            "gzip stream is corrupt or truncated after {stored} records"
        )),
        "{fault}"
    );
    assert!(
        stored > 0 && stored < records.len(),
        "{stored} of {} stored",
        records.len()
    );
    // Every complete record before the cut is stored, nothing after it.
    let before_cut: HashSet<String> = records[..stored]
        .iter()
        .map(|record| record_event_id(record))
        .collect();
    assert_eq!(stack.stored_event_ids().await, before_cut);
    assert_eq!(
        ledger_fault(&stack, key).await.as_deref(),
        Some(fault.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_are_not_log_files_are_recorded_with_their_fault() {
    let stack = TestStack::start().await;
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "not-json.json.gz",
            gzip(b"<html>an error page</html>"),
            "file is not JSON: it starts with byte 0x3c",
        ),
        (
            "not-json-plain.json",
            b"Records: none".to_vec(),
            "file is not JSON: it starts with byte 0x52",
        ),
        (
            "records-not-an-array.json.gz",
            gzip(br#"{"Records": {"eventID": "x"}}"#),
            "Records is not an array: invalid type: map, expected an array of records",
        ),
        (
            "no-records.json.gz",
            gzip(br#"{"digestStartTime": "2024-01-01T00:00:00Z"}"#),
            "file has no Records array",
        ),
    ];
    for (key, bytes, message) in cases {
        let report = send_one(&stack, key, bytes).await;
        assert_eq!(report.outcome, FileOutcome::Committed);
        assert_eq!(report.accepted, 0);
        let fault = report.fault.unwrap_or_default();
        assert!(
            fault.starts_with(message),
            "{key}: {fault:?} does not start with {message:?}"
        );
        assert_eq!(ledger_fault(&stack, key).await, Some(fault));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_records_are_rejected_with_their_index_and_their_neighbours_are_stored() {
    let stack = TestStack::start().await;
    let records = invictus_records(6);
    let no_event_id = with_field(&records[2], "eventID", None);
    let no_event_time = with_field(&records[3], "eventTime", None);
    let wrong_type = with_field(&records[4], "eventName", Some(Value::from(42)));
    let file = log_file_json(&[
        &records[0],
        "42",
        &no_event_id,
        &no_event_time,
        "\"a string\"",
        &wrong_type,
        &records[5],
        "[1, 2]",
        &records[1],
    ]);
    let report = send_one(&stack, "mixed.json.gz", gzip(&file)).await;
    assert_eq!(report.fault, None);
    assert_eq!(
        report.rejections,
        vec![
            (1, "record is not a JSON object but a number".to_string()),
            (2, "record has no eventID".to_string()),
            (3, "record has no eventTime".to_string()),
            (4, "record is not a JSON object but a string".to_string()),
            (5, "eventName must be a string, found a number".to_string()),
            (7, "record is not a JSON object but an array".to_string()),
        ]
    );
    assert_eq!(report.rejected, 6);
    assert_eq!(report.accepted, 3);
    let good: HashSet<String> = [&records[0], &records[5], &records[1]]
        .iter()
        .map(|record| record_event_id(record))
        .collect();
    assert_eq!(stack.stored_event_ids().await, good);
    let stored_rejections: Value = sqlx::query_scalar::<_, Value>(
        "SELECT rejections FROM log_files WHERE object_key = 'mixed.json.gz'",
    )
    .fetch_one(&stack.pool().await)
    .await
    .unwrap();
    assert_eq!(stored_rejections[1]["index"], 2);
    assert_eq!(stored_rejections[1]["reason"], "record has no eventID");
}

fn small_limits() -> StackOptions {
    StackOptions {
        environment: vec![
            ("ORGTRAIL_INGEST__MAX_REQUEST_BYTES".into(), "262144".into()),
            ("ORGTRAIL_INGEST__MAX_RECORD_BYTES".into(), "65536".into()),
        ],
        ..StackOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_the_size_limit_is_rejected_and_its_neighbours_are_stored() {
    let stack = TestStack::start_with(small_limits()).await;
    let records = invictus_records(4);
    let padded = with_field(
        &records[1],
        "padding",
        Some(Value::from("x".repeat(100_000))),
    );

    // Through the sender, which learns the limits and rejects the record itself.
    let file = log_file_json(&[&records[0], &padded, &records[2]]);
    let report = send_one(&stack, "oversized-record.json.gz", gzip(&file)).await;
    assert_eq!(report.accepted, 2);
    assert_eq!(
        report.rejections,
        vec![(
            1,
            format!(
                "record is {} bytes, over the limit of 65536 bytes",
                padded.len()
            )
        )]
    );

    // Straight to the aggregator, which rejects it too.
    let mut stream = RawIngestStream::open(stack.channel().await).await.unwrap();
    let key = "oversized-record-raw.json";
    stream
        .send(records_message(
            1,
            Some(origin("b", key, "e1")),
            0,
            &[&records[3], &padded],
        ))
        .await;
    stream.send(end_message(1, 2)).await;
    let answer = stream.next_answer(WAIT).await.unwrap().unwrap();
    assert_eq!(answer.accepted, 1);
    assert_eq!(
        answer.rejections,
        vec![pb::RecordRejection {
            index: 1,
            reason: format!(
                "record is {} bytes, over the limit of 65536 bytes",
                padded.len()
            ),
        }]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_size_limit_fails_its_stream_naming_the_file_and_rolls_the_file_back() {
    let stack = TestStack::start_with(small_limits()).await;
    let records = invictus_records(6);
    let mut stream = RawIngestStream::open(stack.channel().await).await.unwrap();

    // A file that fits is committed and answered.
    let good_key = "AWSLogs/123837392027/CloudTrail/us-east-1/2023/07/10/good.json.gz";
    stream
        .send(records_message(
            1,
            Some(origin("b", good_key, "e1")),
            0,
            &[&records[0], &records[1]],
        ))
        .await;
    stream.send(end_message(1, 2)).await;
    let answer = stream.next_answer(WAIT).await.unwrap().unwrap();
    assert_eq!(answer.accepted, 2);

    // The next file's second message is larger than the aggregator decodes.
    let bad_key = "AWSLogs/123837392027/CloudTrail/us-east-1/2023/07/10/too-large.json.gz";
    stream
        .send(records_message(
            2,
            Some(origin("b", bad_key, "e2")),
            0,
            &[&records[2], &records[3]],
        ))
        .await;
    let big: Vec<String> = (0..6)
        .map(|n| {
            with_field(
                &records[4],
                "padding",
                Some(Value::from(format!("{n}{}", "y".repeat(60_000)))),
            )
        })
        .collect();
    let big_refs: Vec<&str> = big.iter().map(String::as_str).collect();
    stream.send(records_message(2, None, 2, &big_refs)).await;
    let status = stream.next_answer(WAIT).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains(bad_key),
        "{:?} does not name the file",
        status.message()
    );
    assert!(
        status.message().contains("rolled back"),
        "{:?}",
        status.message()
    );

    let good: HashSet<String> = records[..2]
        .iter()
        .map(|record| record_event_id(record))
        .collect();
    assert_eq!(stack.stored_event_ids().await, good);
    let ledger: Vec<String> = sqlx::query_scalar("SELECT object_key FROM log_files")
        .fetch_all(&stack.pool().await)
        .await
        .unwrap();
    assert_eq!(ledger, vec![good_key.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_too_many_records_fails_its_stream_and_stores_nothing_of_its_file() {
    let stack = TestStack::start().await;
    let mut stream = RawIngestStream::open(stack.channel().await).await.unwrap();
    let empty: Vec<&str> = vec!["{}"; 10_001];
    stream
        .send(records_message(
            1,
            Some(origin(
                "b",
                "AWSLogs/123837392027/CloudTrail/us-east-1/2023/07/10/many.json.gz",
                "e",
            )),
            0,
            &empty,
        ))
        .await;
    expect_refused_with_nothing_stored(&stack, &mut stream, "over the limit of 10000").await;
}

/// The stream fails with InvalidArgument saying `reason`, and no file is in the ledger.
async fn expect_refused_with_nothing_stored(
    stack: &TestStack,
    stream: &mut RawIngestStream,
    reason: &str,
) {
    let status = stream.next_answer(WAIT).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains(reason), "{}", status.message());
    let files: i64 = sqlx::query_scalar("SELECT count(*) FROM log_files")
        .fetch_one(&stack.pool().await)
        .await
        .unwrap();
    assert_eq!(files, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_hash_that_is_not_a_sha256_fails_its_stream_and_stores_nothing_of_its_file() {
    let stack = TestStack::start().await;
    let mut stream = RawIngestStream::open(stack.channel().await).await.unwrap();
    let mut message = records_message(
        1,
        Some(origin(
            "b",
            "AWSLogs/123837392027/CloudTrail/us-east-1/2023/07/10/hash.json.gz",
            "e",
        )),
        0,
        &[
            r#"{"eventID":"4bd6d6a2-3b7d-4c2f-9d1e-0a1b2c3d4e5f","eventTime":"2023-07-10T00:00:00Z","eventName":"ListBuckets","eventSource":"s3.amazonaws.com","awsRegion":"us-east-1","recipientAccountId":"123837392027"}"#,
        ],
    );
    message.end = end_message(1, 1).end.map(|mut end| {
        end.content_sha256 = vec![0xab; 20];
        end
    });
    stream.send(message).await;
    expect_refused_with_nothing_stored(&stack, &mut stream, "content_sha256 is 20 bytes").await;
}
