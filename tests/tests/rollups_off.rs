//! `ingest.rollups = false`, the setting `cargo xtask bench insights` measures the rollups'
//! cost with: ingest and lookups work, nothing is added to the rollups, the summary and Insights
//! replays are refused with FAILED_PRECONDITION rather than answered wrong, a warning is logged
//! at start, and the aggregator refuses to start with Insights on.

use orgtrail_api::v1 as pb;
use orgtrail_api::v1::insight_service_client::InsightServiceClient;
use orgtrail_tests::samples::{expected_store, sample_files_of};
use orgtrail_tests::{ingest_sample_files, test_now, StackOptions, TestStack};
use tonic::Code;

fn rollups_off() -> Vec<(String, String)> {
    vec![
        ("ORGTRAIL_INGEST__ROLLUPS".into(), "false".into()),
        ("ORGTRAIL_INSIGHTS__ENABLED".into(), "false".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_rollups_events_are_stored_and_the_summary_and_replays_are_refused() {
    let stack = TestStack::start_with(StackOptions {
        environment: rollups_off(),
        ..StackOptions::default()
    })
    .await;
    assert!(
        stack
            .aggregator_log()
            .contains("the rollups are not kept (ingest.rollups = false, for benchmarks only)"),
        "no warning at start:\n{}",
        stack.aggregator_log()
    );
    let files = sample_files_of("stratus-red-team-detonation-logs");
    let expected = expected_store(&files);
    ingest_sample_files(&stack, &files).await;
    assert_eq!(stack.stored_event_ids().await.len(), expected.events.len());
    let pool = stack.pool().await;
    let (series, minutes, hours): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM rollup_series), (SELECT count(*) FROM minute_counts),
                (SELECT count(*) FROM hour_counts)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((series, minutes, hours), (0, 0, 0), "rollups were kept");

    let refused = stack
        .events_client()
        .await
        .summarize_events(pb::SummarizeEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("ingest.rollups = false"),
        "{refused:?}"
    );
    let now = test_now();
    let refused = InsightServiceClient::new(stack.channel().await)
        .replay_insights(pb::ReplayInsightsRequest {
            start_time: Some(prost_types::Timestamp {
                seconds: now.timestamp() - 86_400,
                nanos: 0,
            }),
            end_time: Some(prost_types::Timestamp {
                seconds: now.timestamp(),
                nanos: 0,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("ingest.rollups = false"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aggregator_does_not_start_with_insights_on_and_the_rollups_off() {
    let mut stack = TestStack::start().await;
    // Insights are on by default, but off in the test kit: turned on here.
    let log = stack.start_aggregator_expecting_failure(&[
        ("ORGTRAIL_INGEST__ROLLUPS".into(), "false".into()),
        ("ORGTRAIL_INSIGHTS__ENABLED".into(), "true".into()),
    ]);
    assert!(
        log.contains("insights.enabled needs the rollups, and ingest.rollups is false"),
        "{log}"
    );
}
