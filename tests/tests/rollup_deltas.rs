//! The rollups' rows: each file inserts its minute rows and its hour deltas, which the
//! aggregator folds in the background into one row per hour. Reads are exact before the fold; a
//! retention run deletes events whose hour counts are still deltas (batches and partition
//! drops) and the rollups stay the counts of the events; after the fold the same counts are
//! left in one row per hour and no delta. The migration that changed which series are kept per
//! API and ended the minutes' deltas moves the counts kept before.

use std::time::Instant;

use orgtrail_api::v1 as pb;
use orgtrail_api::v1::retention_service_client::RetentionServiceClient;
use orgtrail_tests::rollups::assert_rollups_match_the_events;
use orgtrail_tests::samples::sample_files;
use orgtrail_tests::{ingest_sample_files, StackOptions, TestStack, WAIT};
use sqlx::PgPool;

/// (minute rows, (hour delta rows, folded hour rows)).
async fn rollup_rows(pool: &PgPool) -> (i64, (i64, i64)) {
    let (minutes, hour_deltas, hours): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM event_minutes), (SELECT count(*) FROM event_hour_deltas),
                (SELECT count(*) FROM event_hours)",
    )
    .fetch_one(pool)
    .await
    .expect("cannot count the rollup rows");
    (minutes, (hour_deltas, hours))
}

async fn summary(stack: &TestStack) -> Vec<pb::EventCount> {
    stack
        .events_client()
        .await
        .summarize_events(pb::SummarizeEventsRequest::default())
        .await
        .expect("the summary")
        .into_inner()
        .counts
}

async fn stored_events(pool: &PgPool) -> u64 {
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .expect("cannot count the events");
    u64::try_from(events).unwrap_or(0)
}

/// A stack with `environment` that folds only at its start (when there is nothing to fold yet),
/// with the sample files ingested.
async fn samples_ingested_without_fold(environment: &[(&str, &str)]) -> TestStack {
    let mut options = StackOptions::default();
    options.environment.push((
        "ORGTRAIL_INGEST__ROLLUP_FOLD_INTERVAL_SECONDS".into(),
        "86400".into(),
    ));
    options.environment.extend(
        environment
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string())),
    );
    let stack = TestStack::start_with(options).await;
    ingest_sample_files(&stack, &sample_files()).await;
    stack
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_exact_before_and_after_the_fold_and_retention_takes_unfolded_counts() {
    let mut stack = samples_ingested_without_fold(&[
        ("ORGTRAIL_RETENTION__DEFAULT_RETAIN_DAYS", "3650"),
        ("ORGTRAIL_RETENTION__BATCH_SIZE", "200"),
        ("ORGTRAIL_RETENTION__INTERVAL_SECONDS", "86400"),
    ])
    .await;
    let pool = stack.pool().await;

    // Every count is a delta: nothing was folded.
    let (minutes, (hour_deltas, hours)) = rollup_rows(&pool).await;
    assert!(minutes > 0 && hour_deltas > 0, "no rows");
    assert_eq!(hours, 0, "hours were folded");
    assert_rollups_match_the_events(&pool).await;
    let total: u64 = summary(&stack).await.iter().map(|count| count.events).sum();
    assert_eq!(total, stored_events(&pool).await);

    // Retention over counts that are deltas only: read-only management events go after 1000
    // days (batches in days that keep other events), and the 2014 events after the default
    // 3650 (whole days dropped with their partitions).
    let mut retention = RetentionServiceClient::new(stack.channel().await);
    retention
        .create_policy(pb::CreatePolicyRequest {
            name: "short-reads".into(),
            description: "read-only management events (test)".into(),
            scope: Some(pb::RetentionScope {
                event_categories: vec!["Management".into()],
                read_only: Some(true),
                ..pb::RetentionScope::default()
            }),
            retain_days: 1000,
        })
        .await
        .expect("the policy");
    let before = stored_events(&pool).await;
    let report = retention
        .run_enforcement(pb::RunEnforcementRequest {})
        .await
        .expect("the enforcement run")
        .into_inner();
    assert_eq!(report.status, "completed");
    assert!(report.events_deleted > 0 && !report.partitions_dropped.is_empty());
    assert_eq!(stored_events(&pool).await, before - report.events_deleted);
    assert_rollups_match_the_events(&pool).await;
    let unfolded = summary(&stack).await;
    assert_eq!(
        unfolded.iter().map(|count| count.events).sum::<u64>(),
        stored_events(&pool).await
    );

    // Folded (every second from the restart on): no delta left, the same counts.
    stack.set_aggregator_environment("ORGTRAIL_INGEST__ROLLUP_FOLD_INTERVAL_SECONDS", Some("1"));
    stack.restart_aggregator();
    let started = Instant::now();
    loop {
        let (_, (hour_deltas, _)) = rollup_rows(&pool).await;
        if hour_deltas == 0 {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "{hour_deltas} hour deltas left after {WAIT:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (minutes, (_, hours)) = rollup_rows(&pool).await;
    assert!(minutes > 0 && hours > 0);
    assert_rollups_match_the_events(&pool).await;
    assert_eq!(summary(&stack).await, unfolded);
}

/// The series each event was counted in before `migrations/…13_rollup_minutes.sql`:
/// every call per API.
const SERIES_PER_API_FOR_EVERY_CALL: &str =
    "coalesce(e.account_id, ''), coalesce(e.aws_region, ''), e.event_category,
     coalesce(e.event_source, ''), coalesce(e.event_name, ''),
     CASE e.read_only WHEN true THEN 'r' WHEN false THEN 'w' ELSE '-' END, coalesce(e.error_code, '')";

/// The statement that counts, per series of [`SERIES_PER_API_FOR_EVERY_CALL`] and minute, the
/// events of an even (`parity` 0) or odd (1) second into `table`.
fn count_per_api_into(table: &str, parity: u8) -> String {
    format!(
        "INSERT INTO {table} (series_id, minute, events)
         SELECT s.series_id, date_trunc('minute', e.event_time, 'UTC'), count(*)
         FROM events AS e JOIN rollup_series AS s
           ON (s.account_id, s.aws_region, s.event_category, s.event_source, s.event_name,
               s.access, s.error_code) = ({SERIES_PER_API_FOR_EVERY_CALL})
         WHERE extract(second FROM e.event_time)::integer % 2 = {parity}
         GROUP BY 1, 2"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_moves_the_counts_kept_before_into_shared_series_and_one_table_of_minutes() {
    let mut stack = samples_ingested_without_fold(&[]).await;
    let pool = stack.pool().await;
    stack.terminate_aggregator();
    assert_eq!(stack.wait_for_aggregator_exit(WAIT), Some(0));

    // The rollups as the previous version kept them (its schema, as migrations 10 and 12 left
    // it): every call per API, half of the counts folded and half still deltas (a key can
    // have both), a change recorded for every series, and the migration not applied.
    let mut previous = pool.begin().await.expect("a transaction");
    for statement in [
        "DROP VIEW minute_counts".to_string(),
        "DELETE FROM event_minutes".to_string(),
        "DROP INDEX event_minutes_series".to_string(),
        "ALTER TABLE event_minutes ADD PRIMARY KEY (series_id, minute)".to_string(),
        "CREATE TABLE event_minute_deltas (
             series_id integer     NOT NULL,
             minute    timestamptz NOT NULL,
             events    bigint      NOT NULL CHECK (events > 0)
         )"
        .to_string(),
        "CREATE INDEX event_minute_deltas_minute ON event_minute_deltas (minute)".to_string(),
        "CREATE VIEW minute_counts AS
             SELECT series_id, minute, events FROM event_minutes
             UNION ALL
             SELECT series_id, minute, events FROM event_minute_deltas"
            .to_string(),
        "DELETE FROM rollup_changes".to_string(),
        "DELETE FROM rollup_series".to_string(),
        format!(
            "INSERT INTO rollup_series (account_id, aws_region, event_category, event_source,
                                        event_name, access, error_code)
             SELECT DISTINCT {SERIES_PER_API_FOR_EVERY_CALL} FROM events AS e"
        ),
        count_per_api_into("event_minutes", 0),
        count_per_api_into("event_minute_deltas", 1),
        "INSERT INTO rollup_changes (series_id, first_minute, last_minute)
         SELECT series_id, min(minute), max(minute) FROM minute_counts GROUP BY 1"
            .to_string(),
        "ALTER TABLE event_minutes ADD FOREIGN KEY (series_id) REFERENCES rollup_series"
            .to_string(),
        "DROP FUNCTION rollup_api, rollup_per_api, rollup_access".to_string(),
        "DELETE FROM _sqlx_migrations WHERE version = 20261130000013".to_string(),
    ] {
        sqlx::query(&statement)
            .execute(&mut *previous)
            .await
            .unwrap_or_else(|error| {
                panic!("cannot set up the previous rollups: {error}\n{statement}")
            });
    }
    previous.commit().await.expect("the previous rollups");
    let read_series_per_api: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT series_id) FROM minute_counts JOIN rollup_series USING (series_id)
         WHERE access = 'r' AND error_code = '' AND event_source <> ''",
    )
    .fetch_one(&pool)
    .await
    .expect("the read series");
    assert!(read_series_per_api > 10, "the samples have few read calls");

    // The aggregator applies the migration at start.
    stack.restart_aggregator();
    assert_rollups_match_the_events(&pool).await;
    let minute_deltas_left: bool =
        sqlx::query_scalar("SELECT to_regclass('event_minute_deltas') IS NOT NULL")
            .fetch_one(&pool)
            .await
            .expect("the tables");
    assert!(!minute_deltas_left, "event_minute_deltas is still there");
    let (left_per_api, changes_not_per_api): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM minute_counts JOIN rollup_series AS s USING (series_id)
                 WHERE NOT rollup_per_api(s.event_category, s.access, s.error_code)
                   AND (s.event_source <> '' OR s.event_name <> '')),
                (SELECT count(*) FROM rollup_changes JOIN rollup_series AS s USING (series_id)
                 WHERE NOT rollup_per_api(s.event_category, s.access, s.error_code))",
    )
    .fetch_one(&pool)
    .await
    .expect("the counts left");
    assert_eq!((left_per_api, changes_not_per_api), (0, 0));
    let total: u64 = summary(&stack).await.iter().map(|count| count.events).sum();
    assert_eq!(total, stored_events(&pool).await);
}
