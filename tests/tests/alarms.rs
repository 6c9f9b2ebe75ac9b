//! Alarms against a running aggregator: the built-in CIS alarms count exactly the sample
//! events the independent evaluator lists (`data/cis/EXPECTED.json`); an alarm fires, recovers
//! and fires again on a generated sequence of known periods, late events re-evaluate the
//! periods they land in, and a backfill of the same events after the fact gives the same
//! transitions as live ingest; late events that raise a breaching period's count give its
//! transition the reason a backfill gives, and notify once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::alarm_service_client::AlarmServiceClient;
use orgtrail_api::v1::notification_service_client::NotificationServiceClient;
use orgtrail_client::{AuthChannel, LogFileReader};
use orgtrail_tests::memory_file::{gzip, log_file_json, MemoryLogFile};
use orgtrail_tests::receiver::NotificationReceiver;
use orgtrail_tests::samples::{expected_store, invictus_records, sample_files};
use orgtrail_tests::{ingest_sample_files, send_all, StackOptions, TestStack, WAIT};
use serde_json::Value;

fn cis_expected() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/cis/EXPECTED.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn minute(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::minutes(1)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cis_alarms_count_exactly_the_events_the_independent_evaluator_lists() {
    let stack = TestStack::start().await;
    let files = sample_files();
    ingest_sample_files(&stack, &files).await;
    let store = expected_store(&files);
    let expected = cis_expected();
    let pool = stack.pool().await;
    let mut client = AlarmServiceClient::new(stack.channel().await);

    let alarms = client
        .list_alarms(pb::ListAlarmsRequest {})
        .await
        .unwrap()
        .into_inner()
        .alarms;
    let patterns = expected["patterns"].as_object().unwrap();
    let primary: Vec<(&String, &Value)> = patterns
        .iter()
        .filter(|(_, pattern)| pattern["primary"] == true)
        .collect();
    assert_eq!(primary.len(), 15);
    for (cis_id, pattern) in primary {
        let alarm = alarms
            .iter()
            .find(|alarm| alarm.cis_id == *cis_id)
            .unwrap_or_else(|| panic!("no built-in alarm for CIS {cis_id}"));
        assert_eq!(
            alarm.definition.as_ref().unwrap().filter_pattern,
            pattern["pattern"].as_str().unwrap(),
            "CIS {cis_id}: the exact pattern"
        );
        // What ingest counted, per minute, against the minutes of the listed events.
        let mut want: BTreeMap<DateTime<Utc>, i64> = BTreeMap::new();
        for event_id in pattern["eventIDs"].as_array().unwrap() {
            let event = &store.events[event_id.as_str().unwrap()];
            *want.entry(minute(event.event_time)).or_default() += 1;
        }
        let got: BTreeMap<DateTime<Utc>, i64> = sqlx::query_as::<_, (DateTime<Utc>, i64)>(
            "SELECT m.minute_start, sum(m.matches)::bigint FROM alarm_matches m
             JOIN alarms a USING (alarm_id) WHERE a.cis_id = $1 GROUP BY m.minute_start",
        )
        .bind(cis_id)
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
        assert_eq!(got, want, "CIS {cis_id}: matches per minute");

        // A backtest of the same pattern over all of history agrees.
        let report = client
            .test_filter(pb::TestFilterRequest {
                filter_pattern: pattern["pattern"].as_str().unwrap().into(),
                max_events: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            report.events_matched,
            pattern["count"].as_u64().unwrap(),
            "CIS {cis_id}: backtest"
        );
        assert_eq!(report.events_scanned as usize, store.events.len());
        let listed: Vec<&str> = pattern["eventIDs"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for event in &report.events {
            assert!(
                listed.contains(&event.event_id.as_str()),
                "CIS {cis_id}: {} is not listed",
                event.event_id
            );
        }
    }
    // 4.3 under CloudWatch's `!=`: the 2014 root console login (no eventType) does not count.
    assert_eq!(patterns["4.3"]["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_that_does_not_parse_is_refused_naming_its_column() {
    let stack = TestStack::start().await;
    let mut client = AlarmServiceClient::new(stack.channel().await);
    let refused = client
        .create_alarm(pb::CreateAlarmRequest {
            name: "broken".into(),
            definition: Some(definition("{ $.eventName = }", 1.0)),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().starts_with("filter pattern: column 17:"),
        "{}",
        refused.message()
    );
    let refused = client
        .test_filter(pb::TestFilterRequest {
            filter_pattern: "{ $.a = 1 ".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("column"),
        "{}",
        refused.message()
    );
    // A built-in alarm may be disabled, not deleted.
    let refused = client
        .delete_alarm(pb::DeleteAlarmRequest {
            name: "cis-4.3".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
}

/// The start of the generated sequence: periods of 5 minutes from here.
const SEQUENCE_START: &str = "2026-11-29T00:00:00Z";
const PERIOD: i64 = 300;
const SETTLE: i64 = 60;
/// Matches per period in the end, and which of them arrive late (in the file of a later
/// period).
const COUNTS: [u32; 9] = [0, 3, 3, 0, 2, 0, 2, 2, 0];
/// (period, how many of its events, the period whose file brings them)
const LATE: [(usize, u32, usize); 2] = [(4, 1, 6), (7, 2, 8)];

fn sequence_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(SEQUENCE_START)
        .unwrap()
        .with_timezone(&Utc)
}

fn period_end(period: usize) -> DateTime<Utc> {
    sequence_start() + TimeDelta::seconds(PERIOD * (period as i64 + 1))
}

fn definition(pattern: &str, threshold: f64) -> pb::AlarmDefinition {
    pb::AlarmDefinition {
        description: "policy changes on buckets".into(),
        filter_pattern: pattern.into(),
        scope: None,
        period_seconds: PERIOD as u32,
        evaluation_periods: 1,
        datapoints_to_alarm: 1,
        threshold,
        comparison_operator: "GreaterThanOrEqualToThreshold".into(),
        treat_missing_data: "notBreaching".into(),
        notify_on: vec!["ALARM".into(), "OK".into()],
        destinations: Vec::new(),
        enabled: true,
        finding_level: String::new(),
    }
}

/// A real record turned into a `PutBucketPolicy` at `time`, with an id of its own.
fn put_bucket_policy(template: &str, time: DateTime<Utc>) -> String {
    let mut record: serde_json::Map<String, Value> = serde_json::from_str(template).unwrap();
    record.insert("eventID".into(), uuid::Uuid::new_v4().to_string().into());
    record.insert(
        "eventTime".into(),
        time.format("%Y-%m-%dT%H:%M:%SZ").to_string().into(),
    );
    record.insert("eventName".into(), "PutBucketPolicy".into());
    serde_json::to_string(&record).unwrap()
}

/// The files of the sequence, one per period: its on-time events, and late ones of earlier
/// periods where `LATE` says.
fn sequence_files() -> Vec<Vec<String>> {
    let template = invictus_records(1).remove(0);
    let mut files: Vec<Vec<String>> = vec![Vec::new(); COUNTS.len()];
    for (period, count) in COUNTS.iter().enumerate() {
        let late: u32 = LATE
            .iter()
            .filter(|(late_period, _, _)| *late_period == period)
            .map(|(_, count, _)| count)
            .sum();
        for index in 0..*count {
            let time = sequence_start()
                + TimeDelta::seconds(PERIOD * period as i64 + 30 + i64::from(index) * 17);
            let carrier = if index < count - late {
                period
            } else {
                LATE.iter()
                    .find(|(late_period, _, _)| *late_period == period)
                    .map(|(_, _, carrier)| *carrier)
                    .unwrap()
            };
            files[carrier].push(put_bucket_policy(&template, time));
        }
    }
    files
}

fn frozen_at(time: DateTime<Utc>) -> (String, String) {
    (
        "ORGTRAIL_CLOCK__FROZEN_AT".into(),
        time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

fn alarm_options() -> StackOptions {
    StackOptions {
        environment: vec![
            frozen_at(sequence_start()),
            ("ORGTRAIL_ALARMS__SETTLE_SECONDS".into(), SETTLE.to_string()),
            (
                "ORGTRAIL_ALARMS__EVALUATION_INTERVAL_SECONDS".into(),
                "1".into(),
            ),
            // The built-in set would only add noise here.
            ("ORGTRAIL_ALARMS__CIS_BUILTIN".into(), "false".into()),
        ],
        ..StackOptions::default()
    }
}

async fn send(stack: &TestStack, name: &str, records: &[String]) {
    if records.is_empty() {
        return;
    }
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let file: Arc<dyn LogFileReader> =
        MemoryLogFile::shared("sequence", name, gzip(&log_file_json(&refs)));
    let sender = stack.ingest_sender(Default::default()).await;
    for result in send_all(&sender, vec![file]).await {
        result.result.unwrap();
    }
}

/// Restarts the aggregator with its clock at `now` and waits until the alarm is evaluated
/// through `through`.
async fn evaluate_through(
    stack: &mut TestStack,
    now: DateTime<Utc>,
    through: DateTime<Utc>,
) -> pb::Alarm {
    let (name, value) = frozen_at(now);
    stack.set_aggregator_environment(&name, Some(&value));
    stack.restart_aggregator();
    let mut client = AlarmServiceClient::new(stack.channel().await);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let alarm = client
            .get_alarm(pb::GetAlarmRequest {
                name: "bucket-policies".into(),
                version: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let evaluated = alarm
            .evaluated_through
            .as_ref()
            .and_then(|time| DateTime::from_timestamp(time.seconds, 0));
        if evaluated.is_some_and(|evaluated| evaluated >= through) {
            return alarm;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the alarm was not evaluated through {through} within {WAIT:?}: {evaluated:?}\n{}",
            stack.aggregator_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The live (not superseded) transitions, oldest first, as (period end, old, new, reason).
async fn live_transitions(
    channel: AuthChannel,
) -> (Vec<(DateTime<Utc>, String, String, String)>, usize) {
    let history = AlarmServiceClient::new(channel)
        .get_alarm_history(pb::GetAlarmHistoryRequest {
            name: "bucket-policies".into(),
            max_results: 1000,
            next_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .transitions;
    let superseded = history
        .iter()
        .filter(|transition| transition.superseded_at.is_some())
        .count();
    let mut live: Vec<_> = history
        .into_iter()
        .filter(|transition| transition.superseded_at.is_none())
        .map(|transition| {
            (
                DateTime::from_timestamp(transition.period_end.unwrap().seconds, 0).unwrap(),
                transition.old_state,
                transition.new_state,
                transition.reason,
            )
        })
        .collect();
    live.sort();
    (live, superseded)
}

async fn create_alarm(stack: &TestStack) {
    AlarmServiceClient::new(stack.channel().await)
        .create_alarm(pb::CreateAlarmRequest {
            name: "bucket-policies".into(),
            definition: Some(definition(r#"{ $.eventName = "PutBucketPolicy" }"#, 2.0)),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_fires_recovers_and_fires_again_and_a_backfill_gives_the_same_transitions() {
    let files = sequence_files();

    // Live: each period's file arrives in its period, and the alarm is evaluated once the
    // period has settled.
    let mut live = TestStack::start_with(alarm_options()).await;
    create_alarm(&live).await;
    for (period, records) in files.iter().enumerate() {
        send(&live, &format!("live-{period}.json.gz"), records).await;
        evaluate_through(
            &mut live,
            period_end(period) + TimeDelta::seconds(SETTLE),
            period_end(period),
        )
        .await;
    }
    let (live_transitions_seen, superseded) = live_transitions(live.channel().await).await;

    // What the counts say, computed here from the sequence: ≥ 2 matches is ALARM.
    let mut expected = Vec::new();
    let mut state = "INSUFFICIENT_DATA";
    for (period, count) in COUNTS.iter().enumerate() {
        let next = if *count >= 2 { "ALARM" } else { "OK" };
        if next != state {
            expected.push((period_end(period), state.to_string(), next.to_string()));
            state = next;
        }
    }
    let seen: Vec<(DateTime<Utc>, String, String)> = live_transitions_seen
        .iter()
        .map(|(end, old, new, _)| (*end, old.clone(), new.clone()))
        .collect();
    assert_eq!(
        seen, expected,
        "fires at 1, recovers at 3, fires again at 4 and 6"
    );
    assert!(
        superseded >= 1,
        "the late events of period 7 superseded its ALARM -> OK transition"
    );

    // Backfill: the same events after the fact, evaluated once.
    let mut backfill = TestStack::start_with(alarm_options()).await;
    create_alarm(&backfill).await;
    let everything: Vec<String> = files.into_iter().flatten().collect();
    send(&backfill, "backfill.json.gz", &everything).await;
    let last = period_end(COUNTS.len() - 1);
    evaluate_through(&mut backfill, last + TimeDelta::seconds(SETTLE), last).await;
    let (backfilled, _) = live_transitions(backfill.channel().await).await;
    assert_eq!(
        backfilled, live_transitions_seen,
        "the same transitions, reasons included"
    );
}

/// Every transition, live and superseded, as the history lists them.
async fn full_history(channel: AuthChannel) -> Vec<pb::AlarmTransition> {
    AlarmServiceClient::new(channel)
        .get_alarm_history(pb::GetAlarmHistoryRequest {
            name: "bucket-policies".into(),
            max_results: 1000,
            next_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .transitions
}

/// The live transitions, oldest first, with what differs between two stacks given the same
/// events left out: ids, evaluation times, and whether a destination took them.
async fn live_transitions_in_full(channel: AuthChannel) -> Vec<pb::AlarmTransition> {
    let mut live: Vec<pb::AlarmTransition> = full_history(channel)
        .await
        .into_iter()
        .filter(|transition| transition.superseded_at.is_none())
        .map(|transition| pb::AlarmTransition {
            transition_id: 0,
            evaluated_at: None,
            not_notified_reason: String::new(),
            ..transition
        })
        .collect();
    live.sort_by_key(|transition| transition.period_end.as_ref().map(|end| end.seconds));
    live
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_events_in_a_breaching_period_give_it_the_reason_a_backfill_gives_and_notify_once() {
    // Period 0 breaches with its on-time events; more of its events come late, in the file of
    // period 1, which breaches too (so the state stays ALARM and only period 0 changes).
    const ON_TIME: u32 = 3;
    const LATE_EVENTS: u32 = 2;
    const PERIOD_1: u32 = 3;
    let template = invictus_records(1).remove(0);
    let at = |period: i64, index: u32| {
        sequence_start() + TimeDelta::seconds(PERIOD * period + 30 + i64::from(index) * 17)
    };
    let first_file: Vec<String> = (0..ON_TIME)
        .map(|index| put_bucket_policy(&template, at(0, index)))
        .collect();
    let second_file: Vec<String> = (ON_TIME..ON_TIME + LATE_EVENTS)
        .map(|index| put_bucket_policy(&template, at(0, index)))
        .chain((0..PERIOD_1).map(|index| put_bucket_policy(&template, at(1, index))))
        .collect();

    // Live: period 0 is evaluated on its on-time events, then the late ones arrive.
    let receiver = NotificationReceiver::start().await;
    let mut live = TestStack::start_with(alarm_options()).await;
    NotificationServiceClient::new(live.channel().await)
        .create_destination(pb::CreateDestinationRequest {
            name: "security-team".into(),
            kind: "webhook".into(),
            target: receiver.url(),
            every_alarm: true,
            finding_level: String::new(),
        })
        .await
        .unwrap();
    create_alarm(&live).await;
    send(&live, "live-0.json.gz", &first_file).await;
    evaluate_through(
        &mut live,
        period_end(0) + TimeDelta::seconds(SETTLE),
        period_end(0),
    )
    .await;
    let before = live_transitions_in_full(live.channel().await).await;
    assert_eq!(before.len(), 1, "{before:#?}");
    assert_eq!(
        before[0].datapoints[0].value,
        Some(f64::from(ON_TIME)),
        "{before:#?}"
    );
    send(&live, "live-1.json.gz", &second_file).await;
    evaluate_through(
        &mut live,
        period_end(1) + TimeDelta::seconds(SETTLE),
        period_end(1),
    )
    .await;
    let live_history = live_transitions_in_full(live.channel().await).await;

    // The transition of period 0 now says what period 0 holds.
    assert_eq!(live_history.len(), 1, "{live_history:#?}");
    let current = &live_history[0];
    assert_eq!(
        (current.old_state.as_str(), current.new_state.as_str()),
        ("INSUFFICIENT_DATA", "ALARM")
    );
    let count = f64::from(ON_TIME + LATE_EVENTS);
    assert_eq!(current.datapoints[0].value, Some(count), "{current:#?}");
    assert!(
        current
            .reason
            .contains(&format!("[{count:.1} (29/11/26 00:00:00)]")),
        "{}",
        current.reason
    );
    assert_eq!(
        current.event_ids.len(),
        (ON_TIME + LATE_EVENTS) as usize,
        "{current:#?}"
    );
    // The transition it replaced is kept, superseded.
    let superseded: Vec<pb::AlarmTransition> = full_history(live.channel().await)
        .await
        .into_iter()
        .filter(|transition| transition.superseded_at.is_some())
        .collect();
    assert_eq!(superseded.len(), 1, "{superseded:#?}");
    assert_eq!(superseded[0].reason, before[0].reason);

    // One notification for period 0's ALARM, however often it was evaluated.
    let pool = live.pool().await;
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(queued, 1, "one notification per period and state");
    let requests = receiver.wait_for(1, WAIT).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM notifications WHERE state = 'delivered'",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
        < 1
    {
        assert!(tokio::time::Instant::now() < deadline, "not delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(receiver.requests().len(), 1, "{requests:#?}");
    assert_eq!(requests[0].json()["newState"], "ALARM");

    // Backfill: every event at once gives the same transitions, reasons, datapoints and
    // events included.
    let mut backfill = TestStack::start_with(alarm_options()).await;
    create_alarm(&backfill).await;
    let everything: Vec<String> = first_file.into_iter().chain(second_file).collect();
    send(&backfill, "backfill.json.gz", &everything).await;
    evaluate_through(
        &mut backfill,
        period_end(1) + TimeDelta::seconds(SETTLE),
        period_end(1),
    )
    .await;
    assert_eq!(
        live_transitions_in_full(backfill.channel().await).await,
        live_history,
        "live and backfill agree"
    );
}
