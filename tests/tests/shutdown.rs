//! SIGTERM drains the aggregator: a file in flight is committed whole if it ends within the
//! grace period and rolled back whole if it does not; new files are refused; a sender that
//! keeps sending through a restart loses nothing and stores nothing twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use orgtrail_api::v1 as pb;
use orgtrail_client::{LocalLogFile, LogFileReader, SenderSettings};
use orgtrail_tests::raw_ingest::{end_message, origin, records_message, RawIngestStream};
use orgtrail_tests::samples::{expected_store, invictus_records, record_event_id, sample_files};
use orgtrail_tests::{StackOptions, TestStack, WAIT};
use tonic::Code;

fn with_grace(seconds: u32) -> StackOptions {
    StackOptions {
        environment: vec![(
            "ORGTRAIL_SERVER__SHUTDOWN_GRACE_SECONDS".into(),
            seconds.to_string(),
        )],
        ..StackOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_in_flight_at_sigterm_is_committed_whole_when_it_ends_within_the_grace() {
    let mut stack = TestStack::start_with(with_grace(30)).await;
    let records = invictus_records(4);
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let channel = stack.channel().await;
    let mut stream = RawIngestStream::open(channel.clone()).await.unwrap();
    stream
        .send(records_message(
            1,
            Some(origin("b", "in-flight.json.gz", "e1")),
            0,
            &refs[..2],
        ))
        .await;
    stack.wait_for_file_in_flight().await;

    stack.terminate_aggregator_and_wait_for_drain().await;
    // A new stream is refused while draining.
    let mut refused = RawIngestStream::open(channel.clone()).await;
    if let Ok(stream) = &mut refused {
        stream
            .send(records_message(
                1,
                Some(origin("b", "refused.json.gz", "e2")),
                0,
                &refs[2..],
            ))
            .await;
        stream.send(end_message(1, 2)).await;
        refused = stream
            .next_answer(WAIT)
            .await
            .map(|_| panic!("a new file was taken while draining"));
    }
    // Refused by the handler (UNAVAILABLE), or, once the server has sent GOAWAY, by HTTP/2:
    // CANCELLED, or the GOAWAY itself seen by the client (tonic maps GOAWAY's NO_ERROR to
    // INTERNAL). An INTERNAL the server answered is a failure, not a refusal.
    let refused = refused.err();
    assert!(
        refused.as_ref().is_some_and(|status| matches!(
            status.code(),
            Code::Unavailable | Code::Cancelled
        ) || is_goaway(status)),
        "{refused:?}"
    );

    // The file in flight finishes and is committed whole, then the stream ends.
    stream.send(records_message(1, None, 2, &refs[2..])).await;
    stream.send(end_message(1, 4)).await;
    let answer = stream.next_answer(WAIT).await.unwrap().unwrap();
    assert_eq!(answer.outcome, pb::FileOutcome::Committed as i32);
    assert_eq!(answer.accepted, 4);
    let end = stream.next_answer(WAIT).await.unwrap_err();
    assert_eq!(end.code(), Code::Unavailable);

    assert_eq!(
        stack.wait_for_aggregator_exit(WAIT),
        Some(0),
        "{}",
        stack.aggregator_log()
    );
    let all: HashSet<String> = records
        .iter()
        .map(|record| record_event_id(record))
        .collect();
    assert_eq!(stack.stored_event_ids().await, all);
    // The ledger holds the file committed in the grace, and not the one refused.
    let ledger: Vec<String> =
        sqlx::query_scalar("SELECT object_key FROM log_files ORDER BY object_key")
            .fetch_all(&stack.pool().await)
            .await
            .unwrap();
    assert_eq!(ledger, vec!["in-flight.json.gz".to_string()]);
}

/// Whether `status` is the client's view of an HTTP/2 GOAWAY without error: the server
/// stopped taking streams and never saw this one.
fn is_goaway(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            return h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR);
        }
        source = error.source();
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_unfinished_when_the_grace_ends_is_rolled_back_whole() {
    let mut stack = TestStack::start_with(with_grace(1)).await;
    let records = invictus_records(3);
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let mut stream = RawIngestStream::open(stack.channel().await).await.unwrap();
    stream
        .send(records_message(
            1,
            Some(origin("b", "unfinished.json.gz", "e1")),
            0,
            &refs,
        ))
        .await;
    stack.wait_for_file_in_flight().await;

    stack.terminate_aggregator();
    let status = stream.next_answer(WAIT).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status
            .message()
            .contains("unfinished.json.gz was rolled back"),
        "{:?}",
        status.message()
    );
    assert_eq!(
        stack.wait_for_aggregator_exit(WAIT),
        Some(0),
        "{}",
        stack.aggregator_log()
    );

    assert!(stack.stored_event_ids().await.is_empty());
    let ledger: i64 = sqlx::query_scalar("SELECT count(*) FROM log_files")
        .fetch_one(&stack.pool().await)
        .await
        .unwrap();
    assert_eq!(ledger, 0, "no ledger row for a file rolled back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_sent_while_the_aggregator_restarts_are_all_stored_once() {
    let mut stack = TestStack::start_with(with_grace(10)).await;
    let files = sample_files();
    let expected = expected_store(&files);
    let readers: Vec<Arc<dyn LogFileReader>> = files
        .iter()
        .map(|file| {
            Arc::new(LocalLogFile::new(&file.path, "samples").unwrap()) as Arc<dyn LogFileReader>
        })
        .collect();
    let sender = stack
        .ingest_sender(SenderSettings {
            streams: 1,
            files_in_flight_per_stream: 2,
            ..SenderSettings::default()
        })
        .await;
    let sending = tokio::spawn(async move {
        let mut results = Vec::new();
        sender
            .send_files(readers, |result| results.push(result))
            .await;
        results
    });

    // Restart once a good part of the files is in.
    let pool = stack.pool().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let taken: i64 = sqlx::query_scalar("SELECT count(*) FROM log_files")
            .fetch_one(&pool)
            .await
            .unwrap();
        if taken >= 100 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "files are not arriving"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pool.close().await;
    stack.restart_aggregator();

    let results = tokio::time::timeout(WAIT * 3, sending)
        .await
        .expect("the sender did not finish")
        .unwrap();
    assert_eq!(results.len(), files.len());
    for result in &results {
        if let Err(error) = &result.result {
            panic!("{} was lost: {error}", result.origin);
        }
    }
    let want: HashSet<String> = expected.events.keys().cloned().collect();
    assert_eq!(stack.stored_event_ids().await, want);
    let ledger: i64 = sqlx::query_scalar("SELECT count(*) FROM log_files")
        .fetch_one(&stack.pool().await)
        .await
        .unwrap();
    assert_eq!(ledger as usize, files.len());
}
