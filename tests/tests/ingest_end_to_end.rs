//! Every sample file through gRPC into PostgreSQL: stored once per eventID, the ledger
//! complete, and a second delivery — the same files, or the same records under organization
//! trail keys — storing nothing new.

use std::collections::HashSet;
use std::sync::Arc;

use orgtrail_client::{
    FileOutcome, FileReport, FileResult, LocalLogFile, LogFileReader, SenderSettings,
};
use orgtrail_tests::memory_file::MemoryLogFile;
use orgtrail_tests::samples::{expected_store, sample_files, SampleFile};
use orgtrail_tests::{send_all, TestStack};

fn local_files(files: &[SampleFile]) -> Vec<Arc<dyn LogFileReader>> {
    files
        .iter()
        .map(|file| {
            let local = LocalLogFile::new(&file.path, "samples")
                .unwrap_or_else(|error| panic!("{}: {error}", file.path.display()));
            Arc::new(local) as Arc<dyn LogFileReader>
        })
        .collect()
}

fn reports(results: Vec<FileResult>) -> Vec<FileReport> {
    results
        .into_iter()
        .map(|result| {
            result
                .result
                .unwrap_or_else(|error| panic!("{} was not delivered: {error}", result.origin))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_file_is_stored_once_per_event_id_and_resending_stores_nothing() {
    let stack = TestStack::start().await;
    let files = sample_files();
    let expected = expected_store(&files);
    assert_eq!(
        expected.duplicates, 4,
        "the sample holds 4 real duplicate deliveries"
    );
    let sender = stack.ingest_sender(SenderSettings::default()).await;

    let first = reports(send_all(&sender, local_files(&files)).await);
    assert_eq!(first.len(), files.len());
    assert!(first
        .iter()
        .all(|report| report.outcome == FileOutcome::Committed));
    let accepted: u32 = first.iter().map(|report| report.accepted).sum();
    let duplicates: u32 = first.iter().map(|report| report.duplicates).sum();
    let rejected: u32 = first.iter().map(|report| report.rejected).sum();
    assert_eq!(accepted as usize, expected.events.len());
    assert_eq!(duplicates as usize, expected.duplicates);
    assert_eq!(rejected as usize, expected.unusable);
    let stored = stack.stored_event_ids().await;
    let expected_ids: HashSet<String> = expected.events.keys().cloned().collect();
    assert_eq!(stored, expected_ids);

    // The ledger holds every file with its counts, committed with its events.
    let pool = stack.pool().await;
    let (ledger_files, ledger_accepted, ledger_records): (i64, i64, i64) =
        sqlx::query_as("SELECT count(*), sum(accepted), sum(records_read) FROM log_files")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(ledger_files as usize, files.len());
    assert_eq!(ledger_accepted as usize, expected.events.len());
    assert_eq!(ledger_records as usize, expected.records);
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE log_file_id NOT IN (SELECT log_file_id FROM log_files)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0);

    // The same files again: every one already in the ledger, every record a duplicate.
    let second = reports(send_all(&sender, local_files(&files)).await);
    assert!(second
        .iter()
        .all(|report| report.outcome == FileOutcome::AlreadyIngested));
    assert!(second.iter().all(|report| report.accepted == 0));
    let second_duplicates: u32 = second.iter().map(|report| report.duplicates).sum();
    assert_eq!(second_duplicates as usize, expected.records);
    assert_eq!(stack.stored_event_ids().await, expected_ids);

    // The same records delivered by an organization trail: new files, no new events.
    let organization_files: Vec<Arc<dyn LogFileReader>> = files
        .iter()
        .map(|file| {
            let (account, region) = file
                .key_account_and_region()
                .unwrap_or_else(|| ("123456789012".into(), "us-east-1".into()));
            let name = file.path.file_name().unwrap().to_string_lossy();
            let key =
                format!("AWSLogs/o-exampleorg01/{account}/CloudTrail/{region}/2024/01/01/{name}");
            MemoryLogFile::shared("organization-trail-bucket", &key, file.bytes.clone())
        })
        .collect();
    let third = reports(send_all(&sender, organization_files).await);
    assert!(third
        .iter()
        .all(|report| report.outcome == FileOutcome::Committed));
    let third_accepted: u32 = third.iter().map(|report| report.accepted).sum();
    let third_duplicates: u32 = third.iter().map(|report| report.duplicates).sum();
    assert_eq!(third_accepted, 0);
    assert_eq!(
        third_duplicates as usize,
        expected.records - expected.unusable
    );
    assert_eq!(stack.stored_event_ids().await, expected_ids);
    let ledger_files: i64 = sqlx::query_scalar("SELECT count(*) FROM log_files")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(ledger_files as usize, 2 * files.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_file_on_two_streams_at_once_is_taken_once() {
    let stack = TestStack::start().await;
    let files = sample_files();
    let largest = files.iter().max_by_key(|file| file.records.len()).unwrap();
    let expected = expected_store(std::slice::from_ref(largest));
    let sender = stack
        .ingest_sender(SenderSettings {
            streams: 4,
            ..SenderSettings::default()
        })
        .await;
    let copies: Vec<Arc<dyn LogFileReader>> = (0..8)
        .map(|_| MemoryLogFile::shared("bucket", &largest.key, largest.bytes.clone()))
        .collect();
    let results = reports(send_all(&sender, copies).await);
    let committed: Vec<&FileReport> = results
        .iter()
        .filter(|report| report.outcome == FileOutcome::Committed)
        .collect();
    assert_eq!(committed.len(), 1, "exactly one copy is taken");
    assert_eq!(committed[0].accepted as usize, expected.events.len());
    let stored = stack.stored_event_ids().await;
    assert_eq!(stored.len(), expected.events.len());
}

/// A backfill file whose events span days that have no partition yet, arriving in several
/// messages: each message's new day gets its partition while the file's transaction is open
/// (PostgreSQL keeps a transaction's view of the table's partitions until it takes a new
/// lock), and every event is stored in one delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_spanning_new_days_in_several_messages_is_stored_at_once() {
    use orgtrail_api::v1 as pb;
    use orgtrail_tests::raw_ingest::{end_message, origin, records_message, RawIngestStream};
    use orgtrail_tests::samples::{invictus_records, record_event_id};
    use orgtrail_tests::WAIT;

    let stack = TestStack::start().await;
    // One record per day over five days of 2015 (no partition is made that far back ahead
    // of time), each day in a message of its own.
    let records: Vec<String> = invictus_records(5)
        .iter()
        .enumerate()
        .map(|(day, record)| {
            let mut value: serde_json::Value = serde_json::from_str(record).unwrap();
            value["eventTime"] = format!("2015-03-0{}T12:00:00Z", day + 1).into();
            value.to_string()
        })
        .collect();
    let mut stream = RawIngestStream::open(stack.channel().await).await.unwrap();
    let key = "AWSLogs/123837392027/CloudTrail/us-east-1/2015/03/05/backfill.json.gz";
    for (index, record) in records.iter().enumerate() {
        let first = (index == 0).then(|| origin("backfill-bucket", key, "etag-1"));
        stream
            .send(records_message(1, first, index as u32, &[record.as_str()]))
            .await;
    }
    stream.send(end_message(1, records.len() as u32)).await;
    let answer = stream
        .next_answer(WAIT)
        .await
        .expect("the file is answered, not failed")
        .expect("an answer");
    assert_eq!(
        answer.outcome,
        pb::FileOutcome::Committed as i32,
        "{answer:?}"
    );
    assert_eq!(answer.accepted, 5, "{answer:?}");
    let want: HashSet<String> = records
        .iter()
        .map(|record| record_event_id(record))
        .collect();
    assert_eq!(stack.stored_event_ids().await, want);
}
