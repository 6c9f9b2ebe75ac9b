//! Retention on the real sample data (its events lie between 2014 and 2024, so policies of a
//! few years cut it at known places): enforcement deletes exactly what a direct computation
//! from the input says has expired, keeps held events and other scopes, matches its preview,
//! refuses policies under the floors, runs on one replica at a time, finishes what a crashed
//! run left, and loses nothing of an ingest running beside it. Everything is audited.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::audit_service_client::AuditServiceClient;
use orgtrail_api::v1::retention_service_client::RetentionServiceClient;
use orgtrail_client::AuthChannel;
use orgtrail_client::{LogFileReader, SenderSettings};
use orgtrail_tests::memory_file::{gzip, log_file_json, MemoryLogFile};
use orgtrail_tests::organization::fresh_records;
use orgtrail_tests::samples::{
    expected_event, expected_store, sample_files, ExpectedEvent, ExpectedStore,
};
use orgtrail_tests::{ingest_sample_files, send_all, test_now, StackOptions, TestStack, WAIT};
use tonic::Code;

/// The aggregator's default retention in these tests.
const DEFAULT_DAYS: u32 = 3650;

fn options(batch_size: u32) -> StackOptions {
    StackOptions {
        environment: vec![
            (
                "ORGTRAIL_RETENTION__DEFAULT_RETAIN_DAYS".into(),
                DEFAULT_DAYS.to_string(),
            ),
            (
                "ORGTRAIL_RETENTION__BATCH_SIZE".into(),
                batch_size.to_string(),
            ),
            // Enforcement only when asked.
            (
                "ORGTRAIL_RETENTION__INTERVAL_SECONDS".into(),
                "86400".into(),
            ),
        ],
        ..StackOptions::default()
    }
}

async fn ingest_samples(stack: &TestStack) -> ExpectedStore {
    let files = sample_files();
    ingest_sample_files(stack, &files).await;
    expected_store(&files)
}

fn scope(
    accounts: &[&str],
    regions: &[&str],
    categories: &[&str],
    sources: &[&str],
    read_only: Option<bool>,
) -> pb::RetentionScope {
    let owned = |values: &[&str]| values.iter().map(|value| value.to_string()).collect();
    pb::RetentionScope {
        accounts: owned(accounts),
        regions: owned(regions),
        event_categories: owned(categories),
        event_sources: owned(sources),
        event_names: Vec::new(),
        read_only,
    }
}

/// Whether `scope` covers `event` — written here from the policy's definition, independently
/// of the aggregator.
fn covers(scope: &pb::RetentionScope, event: &ExpectedEvent) -> bool {
    let listed = |values: &[String], value: Option<&String>| {
        values.is_empty() || value.is_some_and(|value| values.contains(value))
    };
    listed(&scope.accounts, event.account_id.as_ref())
        && listed(&scope.regions, event.aws_region.as_ref())
        && listed(&scope.event_categories, Some(&event.event_category))
        && listed(&scope.event_sources, event.event_source.as_ref())
        && listed(&scope.event_names, event.event_name.as_ref())
        && scope
            .read_only
            .is_none_or(|read_only| event.read_only == Some(read_only))
}

/// The events enforcement at `now` must delete: expired under the longest matching policy
/// (or the default), and not held. Panics if an event lies within a day of its cutoff (the
/// test would depend on the second it runs).
fn expected_deleted(
    store: &ExpectedStore,
    policies: &[(pb::RetentionScope, u32)],
    holds: &[pb::RetentionScope],
    now: DateTime<Utc>,
) -> BTreeMap<String, (String, String)> {
    let mut deleted = BTreeMap::new();
    for event in store.events.values() {
        let days = policies
            .iter()
            .filter(|(scope, _)| covers(scope, event))
            .map(|(_, days)| *days)
            .max()
            .unwrap_or(DEFAULT_DAYS);
        let cutoff = now - Duration::days(i64::from(days));
        assert!(
            (event.event_time - cutoff).num_hours().abs() > 24,
            "{} lies within a day of its cutoff; pick other retention days",
            event.event_id
        );
        if event.event_time < cutoff && !holds.iter().any(|hold| covers(hold, event)) {
            deleted.insert(
                event.event_id.clone(),
                (
                    event.account_id.clone().unwrap_or_default(),
                    event.aws_region.clone().unwrap_or_default(),
                ),
            );
        }
    }
    deleted
}

fn tallies(deleted: &BTreeMap<String, (String, String)>) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for place in deleted.values() {
        *counts.entry(place.clone()).or_default() += 1;
    }
    counts
}

fn tallies_of(proto: &[pb::EventTally]) -> BTreeMap<(String, String), u64> {
    proto
        .iter()
        .map(|tally| {
            (
                (tally.account_id.clone(), tally.aws_region.clone()),
                tally.events,
            )
        })
        .collect()
}

fn with_actor<T>(message: T, actor: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-orgtrail-actor", actor.parse().unwrap());
    request
}

async fn retention(channel: AuthChannel) -> RetentionServiceClient<AuthChannel> {
    RetentionServiceClient::new(channel)
}

async fn create(
    client: &mut RetentionServiceClient<AuthChannel>,
    name: &str,
    scope: pb::RetentionScope,
    retain_days: u32,
) -> pb::RetentionPolicy {
    client
        .create_policy(with_actor(
            pb::CreatePolicyRequest {
                name: name.into(),
                description: format!("{name} (test)"),
                scope: Some(scope),
                retain_days,
            },
            "compliance@test",
        ))
        .await
        .unwrap_or_else(|status| panic!("cannot create {name}: {status}"))
        .into_inner()
}

async fn event_ids_are_consistent(stack: &TestStack) {
    let pool = stack.pool().await;
    let (events, ids): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM event_ids)")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        events, ids,
        "the dedupe index holds exactly the stored events"
    );
    // And the rollups count exactly them.
    orgtrail_tests::rollups::assert_rollups_match_the_events(&pool).await;
}

/// P1 keeps GRyCAP's 2014 us-east-1 events from late August 2014 on; P2 keeps read-only
/// management events 1000 days (cutting Invictus's 2023 reads); P3 keeps IAM events 3000
/// days; the hold keeps Invictus's S3 events whatever the policies say.
fn sample_policies() -> Vec<(&'static str, pb::RetentionScope, u32)> {
    vec![
        (
            "keep-grycap-us-east-1",
            scope(&["974349055189"], &["us-east-1"], &[], &[], None),
            4500,
        ),
        (
            "short-reads",
            scope(&[], &[], &["Management"], &[], Some(true)),
            1000,
        ),
        (
            "iam-long",
            scope(&[], &[], &[], &["iam.amazonaws.com"], None),
            3000,
        ),
    ]
}

fn sample_hold() -> pb::RetentionScope {
    scope(&["123837392027"], &[], &[], &["s3.amazonaws.com"], None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforcement_deletes_exactly_what_expired_keeps_held_events_and_matches_its_preview() {
    let stack = TestStack::start_with(options(200)).await;
    let store = ingest_samples(&stack).await;
    let mut client = retention(stack.channel().await).await;
    let policies = sample_policies();
    for (name, scope, days) in &policies[..1] {
        create(&mut client, name, scope.clone(), *days).await;
    }
    for (name, scope, days) in &policies[2..] {
        create(&mut client, name, scope.clone(), *days).await;
    }
    let hold = client
        .create_legal_hold(with_actor(
            pb::CreateLegalHoldRequest {
                reason: "litigation hold, case 17".into(),
                scope: Some(sample_hold()),
                expires_at: None,
            },
            "legal@test",
        ))
        .await
        .unwrap()
        .into_inner();

    // The preview of the policy still to come equals what the run then deletes, and the run
    // deletes exactly what the input says has expired.
    let (name, short_reads, days) = policies[1].clone();
    let preview = client
        .preview_policy(pb::PreviewPolicyRequest {
            name: name.into(),
            description: String::new(),
            scope: Some(short_reads.clone()),
            retain_days: days,
        })
        .await
        .unwrap()
        .into_inner();
    create(&mut client, name, short_reads, days).await;
    let now = test_now();
    let rules: Vec<(pb::RetentionScope, u32)> = policies
        .iter()
        .map(|(_, scope, days)| (scope.clone(), *days))
        .collect();
    let deleted = expected_deleted(&store, &rules, &[sample_hold()], now);
    assert!(
        deleted.len() > 1000 && deleted.len() < store.events.len() - 1000,
        "{} deleted",
        deleted.len()
    );

    let report = client
        .run_enforcement(with_actor(pb::RunEnforcementRequest {}, "compliance@test"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.status, "completed");
    assert_eq!(tallies_of(&report.deletions), tallies(&deleted));
    assert_eq!(
        tallies_of(&preview.deletions),
        tallies_of(&report.deletions),
        "the preview equals the run"
    );
    assert_eq!(report.events_deleted as usize, deleted.len());
    // Whole days went by dropping their partition; the mixed days went in batches.
    assert!(
        report
            .partitions_dropped
            .contains(&"2014-05-10".to_string()),
        "{:?}",
        report.partitions_dropped
    );
    assert!(!report
        .partitions_dropped
        .contains(&"2023-07-10".to_string()));

    let remaining: HashSet<String> = store
        .events
        .keys()
        .filter(|id| !deleted.contains_key(*id))
        .cloned()
        .collect();
    assert_eq!(stack.stored_event_ids().await, remaining);
    event_ids_are_consistent(&stack).await;

    // A held event explains itself.
    let held = store
        .events
        .values()
        .find(|event| covers(&sample_hold(), event) && event.read_only == Some(true))
        .unwrap();
    let explanation = client
        .explain_retention(pb::ExplainRetentionRequest {
            event_id: held.event_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(explanation.winning_policy, "short-reads");
    assert_eq!(explanation.retain_days, 1000);
    assert_eq!(
        explanation
            .holds
            .iter()
            .map(|hold| hold.hold_id)
            .collect::<Vec<_>>(),
        vec![hold.hold_id]
    );
    assert!(!explanation.deleted_by_next_run);

    // Releasing the hold lets the next run delete what it kept.
    client
        .release_legal_hold(with_actor(
            pb::ReleaseLegalHoldRequest {
                hold_id: hold.hold_id,
                reason: "case closed".into(),
            },
            "legal@test",
        ))
        .await
        .unwrap();
    let second = client
        .run_enforcement(pb::RunEnforcementRequest {})
        .await
        .unwrap()
        .into_inner();
    let now_deleted = expected_deleted(&store, &rules, &[], test_now());
    assert_eq!(
        second.events_deleted as usize,
        now_deleted.len() - deleted.len()
    );
    let remaining: HashSet<String> = store
        .events
        .keys()
        .filter(|id| !now_deleted.contains_key(*id))
        .cloned()
        .collect();
    assert_eq!(stack.stored_event_ids().await, remaining);

    // Every change and both runs are in the audit log, attributed.
    let entries = AuditServiceClient::new(stack.channel().await)
        .list_audit_entries(pb::ListAuditEntriesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries;
    // The first data key, the built-in alarms and Sigma rules, made at the first start, are
    // audited too; this test is about retention.
    let entries: Vec<pb::AuditEntry> = entries
        .into_iter()
        .filter(|entry| {
            ["policy.", "hold.", "retention."]
                .iter()
                .any(|prefix| entry.action.starts_with(prefix))
        })
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .rev()
        .map(|entry| entry.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "policy.create",
            "policy.create",
            "hold.create",
            "policy.create",
            "retention.run",
            "hold.release",
            "retention.run"
        ]
    );
    // The authenticated caller, and the person the CLI says it acts for, marked as stated.
    assert!(
        entries
            .iter()
            .all(|entry| entry.actor.starts_with("cert:orgtrail-admin (127.0.0.1:")),
        "{entries:#?}"
    );
    let first = entries.last().unwrap();
    assert!(
        first.actor.ends_with("[stated: compliance@test]"),
        "{}",
        first.actor
    );
    let run: serde_json::Value = serde_json::from_str(&entries[2].details).unwrap();
    assert_eq!(run["eventsDeleted"].as_u64(), Some(deleted.len() as u64));
    assert_eq!(run["plan"]["policies"].as_array().map(Vec::len), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floors_refuse_short_policies_and_every_update_is_a_new_version() {
    let stack = TestStack::start_with(options(1000)).await;
    let mut client = retention(stack.channel().await).await;
    for (scope, days) in [
        (scope(&[], &[], &["Management"], &[], None), 30),
        // No category: it covers Management too.
        (scope(&["111111111111"], &[], &[], &[], None), 60),
    ] {
        let status = client
            .create_policy(pb::CreatePolicyRequest {
                name: "too-short".into(),
                description: String::new(),
                scope: Some(scope),
                retain_days: days,
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains(&format!(
                "{days} days is under the operator's floor of 90 days for Management events"
            )),
            "{}",
            status.message()
        );
    }
    // Insight has no floor.
    create(
        &mut client,
        "insights",
        scope(&[], &[], &["Insight"], &[], None),
        30,
    )
    .await;

    let first = create(
        &mut client,
        "iam",
        scope(&[], &[], &[], &["iam.amazonaws.com"], None),
        400,
    )
    .await;
    assert_eq!(first.version, 1);
    let second = client
        .update_policy(pb::UpdatePolicyRequest {
            name: "iam".into(),
            description: None,
            scope: None,
            retain_days: Some(800),
            expected_version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((second.version, second.retain_days), (2, 800));
    let stale = client
        .update_policy(pb::UpdatePolicyRequest {
            name: "iam".into(),
            retain_days: Some(900),
            expected_version: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition);
    let under_floor = client
        .update_policy(pb::UpdatePolicyRequest {
            name: "iam".into(),
            retain_days: Some(10),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(under_floor.code(), Code::InvalidArgument);
    let history = client
        .get_policy_history(pb::GetPolicyHistoryRequest { name: "iam".into() })
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(
        history
            .iter()
            .map(|version| version.retain_days)
            .collect::<Vec<_>>(),
        vec![400, 800]
    );
    let old = client
        .get_policy(pb::GetPolicyRequest {
            name: "iam".into(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(old.retain_days, 400);
    client
        .delete_policy(pb::DeletePolicyRequest { name: "iam".into() })
        .await
        .unwrap();
    let gone = client
        .get_policy(pb::GetPolicyRequest {
            name: "iam".into(),
            version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let duplicate = create_result(&mut client, "insights").await.unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    // The audit log keeps before and after of each change, and cannot be rewritten.
    let entries = AuditServiceClient::new(stack.channel().await)
        .list_audit_entries(pb::ListAuditEntriesRequest {
            action_prefix: "policy.".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let update = entries
        .iter()
        .find(|entry| entry.action == "policy.update")
        .unwrap();
    let before: serde_json::Value = serde_json::from_str(&update.before).unwrap();
    let after: serde_json::Value = serde_json::from_str(&update.after).unwrap();
    assert_eq!(
        (before["retainDays"].as_u64(), after["retainDays"].as_u64()),
        (Some(400), Some(800))
    );
    let pool = stack.pool().await;
    for statement in [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let error = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(
            error.to_string().contains("audit_log is append-only"),
            "{statement}: {error}"
        );
    }
}

async fn create_result(
    client: &mut RetentionServiceClient<AuthChannel>,
    name: &str,
) -> Result<pb::RetentionPolicy, tonic::Status> {
    client
        .create_policy(pb::CreatePolicyRequest {
            name: name.into(),
            description: String::new(),
            scope: Some(scope(&[], &[], &["Insight"], &[], None)),
            retain_days: 30,
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_running_during_enforcement_loses_nothing() {
    let stack = TestStack::start_with(options(50)).await;
    let store = ingest_samples(&stack).await;
    let mut client = retention(stack.channel().await).await;
    let rules: Vec<(pb::RetentionScope, u32)> = sample_policies()
        .into_iter()
        .map(|(_, scope, days)| (scope, days))
        .collect();
    for (name, scope, days) in sample_policies() {
        create(&mut client, name, scope, days).await;
    }

    // Fresh events of the samples' shapes, in 150 files, sent while enforcement runs.
    let now = test_now();
    let fresh: Vec<Vec<String>> = (0..150).map(|_| fresh_records(20, Some(now))).collect();
    let files: Vec<Arc<dyn LogFileReader>> = fresh
        .iter()
        .enumerate()
        .map(|(number, records)| {
            let refs: Vec<&str> = records.iter().map(String::as_str).collect();
            MemoryLogFile::shared(
                "fresh",
                &format!("fresh-{number}.json.gz"),
                gzip(&log_file_json(&refs)),
            )
        })
        .collect();
    let sender = stack.ingest_sender(SenderSettings::default()).await;
    let ingest = tokio::spawn(async move { send_all(&sender, files).await });
    let report = client
        .run_enforcement(pb::RunEnforcementRequest {})
        .await
        .unwrap()
        .into_inner();
    for result in ingest.await.unwrap() {
        result
            .result
            .unwrap_or_else(|error| panic!("{}: {error}", result.origin));
    }

    let deleted = expected_deleted(&store, &rules, &[], now);
    assert_eq!(report.events_deleted as usize, deleted.len());
    let mut remaining: HashSet<String> = store
        .events
        .keys()
        .filter(|id| !deleted.contains_key(*id))
        .cloned()
        .collect();
    for record in fresh.iter().flatten() {
        remaining.insert(expected_event(record, None).unwrap().event_id);
    }
    assert_eq!(stack.stored_event_ids().await, remaining);
    event_ids_are_consistent(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_never_run_enforcement_at_once_and_a_crashed_run_is_finished_by_the_next() {
    let stack = TestStack::start_with(options(10)).await;
    let store = ingest_samples(&stack).await;
    let replica = stack.start_replica();
    let mut client = retention(stack.channel().await).await;
    let rules: Vec<(pb::RetentionScope, u32)> = sample_policies()
        .into_iter()
        .map(|(_, scope, days)| (scope, days))
        .collect();
    for (name, scope, days) in sample_policies() {
        create(&mut client, name, scope, days).await;
    }

    // A run on the first aggregator, killed in the middle of its batches.
    let pool = stack.pool().await;
    let running = tokio::spawn({
        let mut client = client.clone();
        async move { client.run_enforcement(pb::RunEnforcementRequest {}).await }
    });
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let deleted: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(events), 0)::bigint FROM retention_run_deletions",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if deleted > 100 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not get going"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stack.signal_aggregator("KILL");
    assert!(running.await.unwrap().is_err());
    let crashed: i64 =
        sqlx::query_scalar("SELECT run_id FROM retention_runs WHERE status = 'running'")
            .fetch_one(&pool)
            .await
            .unwrap();

    // Two runs on the replica at once: one after the other, the first finishing the crashed one.
    let replica_channel = orgtrail_client::connect(&orgtrail_client::ClientSettings::new(
        replica.endpoint(),
        orgtrail_tests::pki::client_transport(orgtrail_tests::pki::ClientIdentity::Admin),
    ))
    .await
    .unwrap();
    let mut first = retention(replica_channel.clone()).await;
    let mut second = retention(replica_channel).await;
    let (a, b) = tokio::join!(
        first.run_enforcement(pb::RunEnforcementRequest {}),
        second.run_enforcement(pb::RunEnforcementRequest {})
    );
    let (a, b) = (a.unwrap().into_inner(), b.unwrap().into_inner());
    let finisher = if a.interrupted_runs.is_empty() {
        &b
    } else {
        &a
    };
    assert_eq!(finisher.interrupted_runs, vec![crashed]);
    let intervals: Vec<(i64, i64)> = [&a, &b]
        .iter()
        .map(|report| {
            (
                report.started_at.unwrap().seconds * 1000
                    + i64::from(report.started_at.unwrap().nanos / 1_000_000),
                report.finished_at.unwrap().seconds * 1000
                    + i64::from(report.finished_at.unwrap().nanos / 1_000_000),
            )
        })
        .collect();
    assert!(
        intervals[0].1 <= intervals[1].0 || intervals[1].1 <= intervals[0].0,
        "runs overlapped: {intervals:?}"
    );

    let deleted = expected_deleted(&store, &rules, &[], test_now());
    let remaining: HashSet<String> = store
        .events
        .keys()
        .filter(|id| !deleted.contains_key(*id))
        .cloned()
        .collect();
    assert_eq!(stack.stored_event_ids().await, remaining);
    event_ids_are_consistent(&stack).await;
    // What the crashed run deleted is accounted for, with what the others deleted: together,
    // every expired event once.
    let accounted: i64 =
        sqlx::query_scalar("SELECT sum(events)::bigint FROM retention_run_deletions")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(accounted as usize, deleted.len());
    let interrupted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'retention.run.interrupted'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(interrupted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_left_detached_by_a_crash_is_dropped_by_the_next_run() {
    let stack = TestStack::start_with(options(1000)).await;
    let store = ingest_samples(&stack).await;
    let pool = stack.pool().await;
    // What a run that died between detaching and dropping leaves behind.
    let run_id: i64 = sqlx::query_scalar("INSERT INTO retention_runs (status, runner, plan) VALUES ('running', 'dead', '{}') RETURNING run_id")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO retention_partition_drops (partition, run_id, day, state, events) VALUES ('events_p20140510', $1, '2014-05-10', 'detaching', 0)")
        .bind(run_id)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE events DETACH PARTITION events_p20140510")
        .execute(&pool)
        .await
        .unwrap();

    let mut client = retention(stack.channel().await).await;
    let report = client
        .run_enforcement(pb::RunEnforcementRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.interrupted_runs, vec![run_id]);
    assert!(report
        .partitions_dropped
        .contains(&"2014-05-10".to_string()));
    let leftover: bool = sqlx::query_scalar("SELECT to_regclass('events_p20140510') IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!leftover);
    let deleted = expected_deleted(&store, &[], &[], test_now());
    let remaining: HashSet<String> = store
        .events
        .keys()
        .filter(|id| !deleted.contains_key(*id))
        .cloned()
        .collect();
    assert_eq!(stack.stored_event_ids().await, remaining);
    event_ids_are_consistent(&stack).await;
}
