//! SNS topics in moto's server and the SQS queues that receive what they publish: a test
//! publishes (through the aggregator's deliverer) and reads the queue to see what SNS sent.
//!
//! The subscription has raw message delivery off, as SNS's default: each SQS message body is
//! then SNS's JSON notification — `{"Type":"Notification","MessageId":…,"TopicArn":…,
//! "Subject":…,"Message":"<the published text>","Timestamp":…,"MessageAttributes":{"kind":
//! {"Type":"String","Value":…},…},"Signature":…}` — which moto writes as SNS does;
//! [`SnsMessage`] is that notification taken apart.

use std::collections::BTreeMap;
use std::sync::Once;
use std::time::Duration;

use crate::organization::{moto_sdk_config, test_credentials};

/// An SNS topic with an SQS queue subscribed to it.
#[derive(Clone, Debug)]
pub struct SubscribedQueue {
    pub topic_arn: String,
    pub queue_url: String,
    pub queue_arn: String,
    sqs: aws_sdk_sqs::Client,
}

/// One message SNS delivered to the queue.
#[derive(Clone, Debug)]
pub struct SnsMessage {
    /// `Message` as published.
    pub message_text: String,
    /// `Message` parsed as JSON (`Null` when it is not JSON).
    pub message: serde_json::Value,
    pub subject: Option<String>,
    /// `MessageAttributes`: name → `Value`.
    pub attributes: BTreeMap<String, String>,
    pub topic_arn: String,
    /// The whole notification SNS wrapped the message in.
    pub notification: serde_json::Value,
}

pub async fn sns_client(endpoint: &str) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(&moto_sdk_config(endpoint, test_credentials()).await)
}

pub async fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&moto_sdk_config(endpoint, test_credentials()).await)
}

/// Gives this test process moto's test credentials in the environment, where the SDK's
/// default chain — which the aggregator's code uses, as in production — finds them, and
/// keeps that chain off the instance metadata service. Call it first thing in a test,
/// before any thread of the test could read the environment.
pub fn use_moto_credentials_in_this_process() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (name, value) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            std::env::set_var(name, value);
        }
    });
}

/// A new topic `name` and a queue `<name>-queue` subscribed to it (raw delivery off).
pub async fn create_topic_with_queue(endpoint: &str, name: &str) -> SubscribedQueue {
    let sns = sns_client(endpoint).await;
    let sqs = sqs_client(endpoint).await;
    let topic_arn = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .unwrap_or_else(|error| panic!("moto: CreateTopic {name}: {error:?}"))
        .topic_arn()
        .unwrap_or_else(|| panic!("moto: CreateTopic answered no ARN"))
        .to_string();
    let queue_name = format!("{name}-queue");
    let queue_url = sqs
        .create_queue()
        .queue_name(&queue_name)
        .send()
        .await
        .unwrap_or_else(|error| panic!("moto: CreateQueue {queue_name}: {error:?}"))
        .queue_url()
        .unwrap_or_else(|| panic!("moto: CreateQueue answered no URL"))
        .to_string();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap_or_else(|error| panic!("moto: GetQueueAttributes: {error:?}"))
        .attributes()
        .and_then(|attributes| attributes.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .unwrap_or_else(|| panic!("moto: the queue has no ARN"));
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "false")
        .send()
        .await
        .unwrap_or_else(|error| panic!("moto: Subscribe: {error:?}"));
    SubscribedQueue {
        topic_arn,
        queue_url,
        queue_arn,
        sqs,
    }
}

/// The messages in the queue: polls (1 s long polls) until a poll finds nothing after some
/// arrived, or `bound` passes; what arrived, possibly nothing. Received messages are deleted.
pub async fn receive_all(queue: &SubscribedQueue, bound: Duration) -> Vec<SnsMessage> {
    let deadline = tokio::time::Instant::now() + bound;
    let mut messages = Vec::new();
    while tokio::time::Instant::now() < deadline {
        let received = receive_some(queue).await;
        if received.is_empty() && !messages.is_empty() {
            break;
        }
        messages.extend(received);
    }
    messages
}

/// Waits until at least `count` messages arrived and returns them; panics with what arrived
/// when `bound` passes first.
pub async fn wait_for_messages(
    queue: &SubscribedQueue,
    count: usize,
    bound: Duration,
) -> Vec<SnsMessage> {
    let deadline = tokio::time::Instant::now() + bound;
    let mut messages = Vec::new();
    while messages.len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {count} SNS messages reached {} within {bound:?}: {messages:#?}",
            messages.len(),
            queue.queue_url
        );
        messages.extend(receive_some(queue).await);
    }
    messages
}

/// One long poll (1 s) of up to 10 messages, deleted once read.
async fn receive_some(queue: &SubscribedQueue) -> Vec<SnsMessage> {
    let receive = queue
        .sqs
        .receive_message()
        .queue_url(&queue.queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send();
    let output = match tokio::time::timeout(Duration::from_secs(30), receive).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => panic!("moto: ReceiveMessage: {error:?}"),
        Err(_elapsed) => panic!("moto: ReceiveMessage did not answer within 30 s"),
    };
    let mut messages = Vec::new();
    for message in output.messages() {
        let body = message.body().unwrap_or_default();
        messages.push(sns_message(body));
        if let Some(receipt) = message.receipt_handle() {
            queue
                .sqs
                .delete_message()
                .queue_url(&queue.queue_url)
                .receipt_handle(receipt)
                .send()
                .await
                .unwrap_or_else(|error| panic!("moto: DeleteMessage: {error:?}"));
        }
    }
    messages
}

/// An SQS body (SNS's notification JSON) taken apart; panics when it is not one.
fn sns_message(body: &str) -> SnsMessage {
    let notification: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|error| panic!("not an SNS notification ({error}): {body}"));
    assert_eq!(notification["Type"], "Notification", "{body}");
    let text = |name: &str| notification.get(name).and_then(|value| value.as_str());
    let message_text = text("Message")
        .unwrap_or_else(|| panic!("no Message: {body}"))
        .to_string();
    let attributes = notification
        .get("MessageAttributes")
        .and_then(|attributes| attributes.as_object())
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, attribute)| {
                    let value = attribute["Value"].as_str().unwrap_or_default().to_string();
                    (name.clone(), value)
                })
                .collect()
        })
        .unwrap_or_default();
    SnsMessage {
        message: serde_json::from_str(&message_text).unwrap_or(serde_json::Value::Null),
        subject: text("Subject").map(str::to_string),
        topic_arn: text("TopicArn").unwrap_or_default().to_string(),
        message_text,
        attributes,
        notification,
    }
}
