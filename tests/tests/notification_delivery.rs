//! The aggregator's notification deliverer used directly (no aggregator process): signed
//! webhooks checked by a receiver with its own HMAC, refusals, unreachable and stalling
//! receivers bounded by the timeout, Slack's format, and SNS through moto's server into a
//! subscribed SQS queue.

use std::time::Duration;

use chrono::{DateTime, Utc};
use orgtrail_aggregator::notify::delivery::{
    Deliverer, DeliveryError, DeliverySettings, DeliveryTarget, OutgoingNotification,
};
use orgtrail_tests::moto::MotoServer;
use orgtrail_tests::receiver::{verify_signature, NotificationReceiver};
use orgtrail_tests::sns::{
    create_topic_with_queue, use_moto_credentials_in_this_process, wait_for_messages,
};
use serde_json::json;

/// Every delivery of these tests gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(3);
/// How long a test waits for what a delivery should have caused.
const BOUND: Duration = Duration::from_secs(30);
const SECRET: &str = "whsec_orgtrail_test_secret";

async fn deliverer(sns_endpoint: Option<String>) -> Deliverer {
    // Before anything of the test reads the environment (the SDK's default chain does).
    use_moto_credentials_in_this_process();
    Deliverer::new(DeliverySettings {
        timeout: TIMEOUT,
        sns_endpoint,
        sns_region: None,
    })
    .await
}

fn alarm_notification() -> OutgoingNotification {
    OutgoingNotification {
        notification_id: 4242,
        kind: "alarm.state_change".into(),
        subject: "root-login".into(),
        body: json!({
            "alarm": {"name": "root-login", "cisId": "4.3", "title": "Root account usage"},
            "oldState": "OK",
            "newState": "ALARM",
            "reason": "1 event in the 5-minute period ending 2026-11-30T11:55:00Z",
            "periodEnd": "2026-11-30T11:55:00Z",
            "eventIds": ["3038ebd2-c98a-4c65-9b6e-e22506292313"],
        }),
        created_at: DateTime::parse_from_rfc3339("2026-11-30T11:55:01.250Z")
            .map(|time| time.with_timezone(&Utc))
            .unwrap(),
    }
}

/// The JSON text a webhook (and SNS) must receive, computed from the notification: the
/// envelope's members in their order, then the body's as serde_json writes them.
fn expected_envelope(notification: &OutgoingNotification) -> String {
    let body = serde_json::to_string(&notification.body).unwrap();
    let members = body.strip_prefix('{').unwrap().strip_suffix('}').unwrap();
    format!(
        r#"{{"notificationId":{},"kind":{},"subject":{},"createdAt":"2026-11-30T11:55:01.250Z",{members}}}"#,
        notification.notification_id,
        json!(notification.kind),
        json!(notification.subject),
    )
}

fn webhook(url: String) -> DeliveryTarget {
    DeliveryTarget::Webhook {
        url,
        signing_secret: SECRET.to_string().into(),
    }
}

#[tokio::test]
async fn a_signed_webhook_arrives_with_a_valid_signature_and_the_exact_body() {
    let deliverer = deliverer(None).await;
    let receiver = NotificationReceiver::start().await;
    let notification = alarm_notification();

    deliverer
        .deliver(&webhook(receiver.url()), &notification)
        .await
        .unwrap();

    let requests = receiver.wait_for(1, BOUND).await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/notifications");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(request
        .header("user-agent")
        .is_some_and(|agent| agent.starts_with("orgtrail/")));
    assert_eq!(request.header("x-orgtrail-notification-id"), Some("4242"));
    assert_eq!(
        String::from_utf8(request.body.clone()).unwrap(),
        expected_envelope(&notification)
    );
    // The timestamp is the time of sending, from the real clock.
    let timestamp: i64 = request
        .header("x-orgtrail-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (request.received_at.timestamp() - timestamp).abs() <= 5,
        "sent at {timestamp}, received at {}",
        request.received_at
    );
    assert!(verify_signature(request, SECRET));
    assert!(!verify_signature(request, "another secret"));
    let mut tampered = request.clone();
    tampered.body.push(b' ');
    assert!(!verify_signature(&tampered, SECRET));
}

#[tokio::test]
async fn a_delivery_sent_again_carries_the_same_notification_id_and_a_fresh_signature() {
    let deliverer = deliverer(None).await;
    let receiver = NotificationReceiver::start().await;
    let notification = alarm_notification();
    for _ in 0..2 {
        deliverer
            .deliver(&webhook(receiver.url()), &notification)
            .await
            .unwrap();
    }
    let requests = receiver.wait_for(2, BOUND).await;
    assert_eq!(
        receiver.counts_per_notification_id(),
        [("4242".to_string(), 2)].into_iter().collect()
    );
    assert_eq!(requests[0].body, requests[1].body);
    assert!(requests
        .iter()
        .all(|request| verify_signature(request, SECRET)));
}

#[tokio::test]
async fn a_refused_delivery_is_an_error_naming_503_and_the_next_one_goes_through() {
    let deliverer = deliverer(None).await;
    let receiver = NotificationReceiver::start().await;
    receiver.refuse_next(1);
    let notification = alarm_notification();

    let error = deliverer
        .deliver(&webhook(receiver.url()), &notification)
        .await
        .unwrap_err();
    assert!(
        matches!(error, DeliveryError::HttpStatus { status: 503, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("503"), "{message}");
    assert!(
        message.contains("refused by the test receiver"),
        "{message}"
    );
    // The destination is named by scheme, host and port: a URL's path may be its secret.
    assert!(
        message.contains(&receiver.address().to_string()),
        "{message}"
    );
    assert!(!message.contains("/notifications"), "{message}");
    assert!(error.is_retryable());

    deliverer
        .deliver(&webhook(receiver.url()), &notification)
        .await
        .unwrap();
    let answered: Vec<u16> = receiver
        .wait_for(2, BOUND)
        .await
        .iter()
        .map(|request| request.answered)
        .collect();
    assert_eq!(answered, [503, 200]);
}

#[tokio::test]
async fn an_unreachable_url_is_an_error_within_the_bound() {
    let deliverer = deliverer(None).await;
    // A port nobody listens on: bound, then freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = tokio::time::Instant::now();
    let error = deliverer
        .deliver(
            &webhook(format!("http://127.0.0.1:{port}/hook")),
            &alarm_notification(),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() <= TIMEOUT + Duration::from_secs(1));
    assert!(
        matches!(error, DeliveryError::Connection { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot reach http://127.0.0.1:{port}:")),
        "{error}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_receiver_that_stalls_is_a_timeout_within_the_bound() {
    let deliverer = deliverer(None).await;
    let receiver = NotificationReceiver::start().await;
    receiver.stall(true);
    let started = tokio::time::Instant::now();
    let error = deliverer
        .deliver(&webhook(receiver.url()), &alarm_notification())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= TIMEOUT && elapsed <= TIMEOUT + Duration::from_secs(2),
        "gave up after {elapsed:?}"
    );
    assert!(matches!(error, DeliveryError::Timeout { .. }), "{error:?}");
    assert!(
        error.to_string().contains("did not answer within 3s"),
        "{error}"
    );
    // It did arrive: the receiver just never answered.
    assert_eq!(receiver.wait_for(1, BOUND).await.len(), 1);
    receiver.stall(false);
}

#[tokio::test]
async fn a_target_orgtrail_may_not_post_to_is_refused_before_anything_is_sent() {
    let deliverer = deliverer(None).await;
    for target in [
        webhook("http://example.com/hook".into()),
        DeliveryTarget::Slack {
            url: "https://user:password@hooks.example.com/x".into(),
        },
        DeliveryTarget::Sns {
            topic_arn: "arn:aws:sns:us-east-1:alarms".into(),
        },
    ] {
        let error = deliverer
            .deliver(&target, &alarm_notification())
            .await
            .unwrap_err();
        assert!(
            matches!(error, DeliveryError::InvalidTarget { .. }),
            "{target:?}: {error:?}"
        );
        assert!(!error.is_retryable());
        assert!(!error.to_string().contains("password"), "{error}");
    }
}

#[tokio::test]
async fn a_slack_delivery_arrives_as_slack_json() {
    let deliverer = deliverer(None).await;
    let receiver = NotificationReceiver::start().await;
    deliverer
        .deliver(
            &DeliveryTarget::Slack {
                url: receiver.url(),
            },
            &alarm_notification(),
        )
        .await
        .unwrap();
    let requests = receiver.wait_for(1, BOUND).await;
    let request = &requests[0];
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-orgtrail-signature"), None);
    let message = request.json();
    assert_eq!(
        message["text"],
        "orgtrail alarm root-login (CIS 4.3): OK → ALARM"
    );
    let blocks = message["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!(blocks[0]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("root-login is ALARM"));
    assert_eq!(blocks[1]["type"], "section");
    assert_eq!(
        blocks[1]["text"]["text"],
        "*Root account usage*\n1 event in the 5-minute period ending 2026-11-30T11:55:00Z"
    );
    let fields: Vec<&str> = blocks[2]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| field["text"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"*State*\nOK → ALARM"), "{fields:?}");
    assert!(fields.contains(&"*CIS control*\n4.3"), "{fields:?}");
    assert!(
        fields.contains(&"*Events (1)*\n`3038ebd2-c98a-4c65-9b6e-e22506292313`"),
        "{fields:?}"
    );
    // Every text within Slack's limits.
    for block in blocks {
        if let Some(text) = block["text"]["text"].as_str() {
            assert!(text.chars().count() <= 3000);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sns_delivery_reaches_the_subscribed_queue_with_the_json_message_and_attributes() {
    use_moto_credentials_in_this_process();
    let moto = MotoServer::start();
    let deliverer = deliverer_for(&moto).await;
    let queue = create_topic_with_queue(&moto.endpoint(), "orgtrail-alarms").await;
    let notification = alarm_notification();

    deliverer
        .deliver(
            &DeliveryTarget::Sns {
                topic_arn: queue.topic_arn.clone(),
            },
            &notification,
        )
        .await
        .unwrap();

    let messages = wait_for_messages(&queue, 1, BOUND).await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let message = &messages[0];
    assert_eq!(message.topic_arn, queue.topic_arn);
    assert_eq!(message.message_text, expected_envelope(&notification));
    assert_eq!(message.message["alarm"]["cisId"], "4.3");
    assert_eq!(
        message.subject.as_deref(),
        Some("orgtrail alarm root-login (CIS 4.3): OK -> ALARM")
    );
    assert_eq!(
        message.attributes,
        [
            ("kind".to_string(), "alarm.state_change".to_string()),
            ("notificationId".to_string(), "4242".to_string()),
        ]
        .into_iter()
        .collect()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_to_a_topic_that_does_not_exist_is_an_sns_error_with_its_code() {
    use_moto_credentials_in_this_process();
    let moto = MotoServer::start();
    let deliverer = deliverer_for(&moto).await;
    let topic_arn = "arn:aws:sns:us-east-1:123456789012:no-such-topic";
    let error = deliverer
        .deliver(
            &DeliveryTarget::Sns {
                topic_arn: topic_arn.into(),
            },
            &alarm_notification(),
        )
        .await
        .unwrap_err();
    let DeliveryError::Sns { code, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(code, "NotFound", "{error}");
    assert!(error.to_string().contains(topic_arn), "{error}");
    assert!(!error.is_retryable());
}

async fn deliverer_for(moto: &MotoServer) -> Deliverer {
    deliverer(Some(moto.endpoint())).await
}
