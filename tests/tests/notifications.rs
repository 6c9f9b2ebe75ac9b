//! Notifications against running aggregators: alarm transitions reach a webhook receiver
//! exactly once, signed, though the receiver refuses them for a while and the aggregator is
//! killed (SIGKILL) while they wait; two replicas never deliver one notification twice; a
//! notification whose attempts are spent is marked failed and listed, not dropped; SNS
//! deliveries reach a queue subscribed to the topic in moto; destinations' URLs and secrets
//! are sealed at rest and never shown.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::alarm_service_client::AlarmServiceClient;
use orgtrail_api::v1::notification_service_client::NotificationServiceClient;
use orgtrail_client::LogFileReader;
use orgtrail_tests::memory_file::{gzip, log_file_json, MemoryLogFile};
use orgtrail_tests::moto::MotoServer;
use orgtrail_tests::receiver::{verify_signature, NotificationReceiver};
use orgtrail_tests::samples::invictus_records;
use orgtrail_tests::sns::{create_topic_with_queue, wait_for_messages};
use orgtrail_tests::{send_all, test_now, StackOptions, TestStack, WAIT};
use serde_json::Value;

fn fast_notifications(extra: &[(&str, &str)]) -> StackOptions {
    let mut environment: Vec<(String, String)> = [
        ("ORGTRAIL_ALARMS__SETTLE_SECONDS", "60"),
        ("ORGTRAIL_ALARMS__EVALUATION_INTERVAL_SECONDS", "1"),
        ("ORGTRAIL_ALARMS__CIS_BUILTIN", "false"),
        ("ORGTRAIL_NOTIFICATIONS__BACKOFF_BASE_SECONDS", "0.2"),
        ("ORGTRAIL_NOTIFICATIONS__BACKOFF_MAX_SECONDS", "1"),
        ("ORGTRAIL_NOTIFICATIONS__MAX_ATTEMPTS", "1000"),
        ("ORGTRAIL_NOTIFICATIONS__POLL_INTERVAL_MILLISECONDS", "100"),
        ("ORGTRAIL_NOTIFICATIONS__DELIVERY_TIMEOUT_SECONDS", "5"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    for (name, value) in extra {
        environment.retain(|(existing, _)| existing != name);
        environment.push((name.to_string(), value.to_string()));
    }
    StackOptions {
        environment,
        ..StackOptions::default()
    }
}

async fn create_webhook(stack: &TestStack, name: &str, url: &str, every_alarm: bool) -> String {
    NotificationServiceClient::new(stack.channel().await)
        .create_destination(pb::CreateDestinationRequest {
            name: name.into(),
            kind: "webhook".into(),
            target: url.into(),
            every_alarm,
            finding_level: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .signing_secret
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

/// Pending notifications in the outbox, and all of them.
async fn outbox(stack: &TestStack) -> BTreeMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>("SELECT state, count(*) FROM notifications GROUP BY state")
        .fetch_all(&stack.pool().await)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn wait_until_all_delivered(stack: &TestStack, total: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let states = outbox(stack).await;
        if states.get("delivered").copied().unwrap_or(0) == total && states.len() == 1 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all {total} notifications were delivered within {WAIT:?}: {states:?}\n{}",
            stack.aggregator_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_arrive_exactly_once_and_signed_through_refusals_and_a_killed_aggregator() {
    let receiver = NotificationReceiver::start().await;
    receiver.refuse_all(true);
    let mut stack = TestStack::start_with(fast_notifications(&[])).await;
    let secret = create_webhook(&stack, "security-team", &receiver.url(), true).await;
    AlarmServiceClient::new(stack.channel().await)
        .create_alarm(pb::CreateAlarmRequest {
            name: "bucket-policies".into(),
            definition: Some(pb::AlarmDefinition {
                description: "bucket policy changes".into(),
                filter_pattern: r#"{ $.eventName = "PutBucketPolicy" }"#.into(),
                scope: None,
                period_seconds: 300,
                evaluation_periods: 1,
                datapoints_to_alarm: 1,
                threshold: 1.0,
                comparison_operator: "GreaterThanOrEqualToThreshold".into(),
                treat_missing_data: "notBreaching".into(),
                notify_on: vec!["ALARM".into(), "OK".into()],
                destinations: Vec::new(),
                enabled: true,
                finding_level: String::new(),
            }),
        })
        .await
        .unwrap();

    // Two bursts of policy changes in the last hour: ALARM, OK, ALARM, OK.
    let template = invictus_records(1).remove(0);
    let burst = |minutes_ago: i64| test_now() - TimeDelta::minutes(minutes_ago);
    let records: Vec<String> = [50, 49, 30]
        .into_iter()
        .map(|minutes| put_bucket_policy(&template, burst(minutes)))
        .collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let file: std::sync::Arc<dyn LogFileReader> =
        MemoryLogFile::shared("b", "bursts.json.gz", gzip(&log_file_json(&refs)));
    let sender = stack.ingest_sender(Default::default()).await;
    for result in send_all(&sender, vec![file]).await {
        result.result.unwrap();
    }

    // Every notification is tried and refused at least once; then the aggregator is killed
    // while they wait for their next attempt.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let refused: std::collections::BTreeSet<String> = receiver
            .requests()
            .iter()
            .filter_map(|request| {
                request
                    .header("x-orgtrail-notification-id")
                    .map(String::from)
            })
            .collect();
        if refused.len() == 4 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "4 notifications were not attempted within {WAIT:?}: {refused:?}\n{}",
            stack.aggregator_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack.signal_aggregator("KILL");
    assert_eq!(stack.wait_for_aggregator_exit(WAIT), Some(-1));
    assert_eq!(outbox(&stack).await.get("pending"), Some(&4));

    receiver.refuse_all(false);
    stack.restart_aggregator();
    wait_until_all_delivered(&stack, 4).await;

    let accepted: Vec<_> = receiver
        .requests()
        .into_iter()
        .filter(|request| request.answered == 200)
        .collect();
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for request in &accepted {
        assert!(
            verify_signature(request, &secret),
            "a delivery with a bad signature"
        );
        let body = request.json();
        assert_eq!(body["kind"], "alarm.state_change");
        assert_eq!(body["alarm"]["name"], "bucket-policies");
        *per_id
            .entry(request.header("x-orgtrail-notification-id").unwrap().into())
            .or_default() += 1;
    }
    assert_eq!(per_id.len(), 4, "{per_id:?}");
    assert!(per_id.values().all(|count| *count == 1), "{per_id:?}");
    let states: Vec<(String, String)> = accepted
        .iter()
        .map(|request| {
            let body = request.json();
            (
                body["oldState"].as_str().unwrap().to_string(),
                body["newState"].as_str().unwrap().to_string(),
            )
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        states,
        vec![
            ("ALARM".into(), "OK".into()),
            ("INSUFFICIENT_DATA".into(), "ALARM".into()),
            ("OK".into(), "ALARM".into()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_deliver_the_same_notification_twice() {
    let receiver = NotificationReceiver::start().await;
    let options =
        fast_notifications(&[("ORGTRAIL_NOTIFICATIONS__POLL_INTERVAL_MILLISECONDS", "20")]);
    let stack = TestStack::start_with(options).await;
    let _replica = stack.start_replica();
    create_webhook(&stack, "queue", &receiver.url(), false).await;
    const TOTAL: i64 = 300;
    sqlx::query(
        "INSERT INTO notifications (destination_id, kind, subject, dedupe_key, body)
         SELECT (SELECT destination_id FROM destinations WHERE name = 'queue'), 'destination.test',
                'load ' || n, 'load-' || n, jsonb_build_object('n', n)
         FROM generate_series(1, $1) AS n",
    )
    .bind(TOTAL)
    .execute(&stack.pool().await)
    .await
    .unwrap();
    wait_until_all_delivered(&stack, TOTAL).await;
    receiver.wait_for(TOTAL as usize, WAIT).await;
    let per_id = receiver.counts_per_notification_id();
    assert_eq!(per_id.len() as i64, TOTAL);
    assert!(
        per_id.values().all(|count| *count == 1),
        "delivered twice: {:?}",
        per_id
            .iter()
            .filter(|(_, count)| **count > 1)
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_whose_attempts_are_spent_is_marked_failed_and_listed() {
    let receiver = NotificationReceiver::start().await;
    receiver.refuse_all(true);
    let stack = TestStack::start_with(fast_notifications(&[(
        "ORGTRAIL_NOTIFICATIONS__MAX_ATTEMPTS",
        "3",
    )]))
    .await;
    create_webhook(&stack, "down", &receiver.url(), false).await;
    let mut client = NotificationServiceClient::new(stack.channel().await);
    let tested = client
        .test_destination(pb::TestDestinationRequest {
            name: "down".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(tested.attempts >= 1, "{tested:?}");
    assert!(tested.last_error.contains("503"), "{tested:?}");
    let deadline = tokio::time::Instant::now() + WAIT;
    let failed = loop {
        let failed = client
            .list_notifications(pb::ListNotificationsRequest {
                failed_only: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .notifications;
        if !failed.is_empty() {
            break failed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never marked failed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].state, "failed");
    assert_eq!(failed[0].attempts, 3);
    assert_eq!(receiver.requests().len(), 3, "no attempt after the last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sns_destination_delivers_to_a_queue_subscribed_to_the_topic() {
    let moto = MotoServer::start();
    let queue = create_topic_with_queue(&moto.endpoint(), "orgtrail-alarms").await;
    let stack = TestStack::start_with(fast_notifications(&[
        ("ORGTRAIL_NOTIFICATIONS__SNS_ENDPOINT", &moto.endpoint()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]))
    .await;
    let mut client = NotificationServiceClient::new(stack.channel().await);
    client
        .create_destination(pb::CreateDestinationRequest {
            name: "sns".into(),
            kind: "sns".into(),
            target: queue.topic_arn.clone(),
            every_alarm: true,
            finding_level: String::new(),
        })
        .await
        .unwrap();
    let tested = client
        .test_destination(pb::TestDestinationRequest { name: "sns".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tested.state, "delivered", "{tested:?}");
    let messages = wait_for_messages(&queue, 1, WAIT).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].message["kind"], "destination.test");
    assert_eq!(
        messages[0]
            .attributes
            .get("notificationId")
            .map(String::as_str),
        Some(tested.notification_id.to_string().as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destinations_url_and_secret_are_sealed_and_never_shown() {
    let stack = TestStack::start().await;
    let url = "https://hooks.example.com/services/T000/B000/the-secret-path-token";
    let secret = create_webhook(&stack, "slackish", url, false).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let listed = NotificationServiceClient::new(stack.channel().await)
        .list_destinations(pb::ListDestinationsRequest {})
        .await
        .unwrap()
        .into_inner()
        .destinations;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].target, "https://hooks.example.com/…");
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT sealed_config FROM destinations WHERE name = 'slackish'")
            .fetch_one(&stack.pool().await)
            .await
            .unwrap();
    let sealed = String::from_utf8_lossy(&sealed);
    assert!(!sealed.contains("the-secret-path-token"));
    assert!(!sealed.contains(&secret));
    // Plain http is refused but to loopback.
    let refused = NotificationServiceClient::new(stack.channel().await)
        .create_destination(pb::CreateDestinationRequest {
            name: "plain".into(),
            kind: "webhook".into(),
            target: "http://hooks.example.com/x".into(),
            every_alarm: false,
            finding_level: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}
