//! Amazon SNS as a destination: `Publish` to a topic, the message being the webhook's JSON
//! text, with the attributes `kind` and `notificationId` for subscription filter policies.
//! One client per region (the topic ARN's), made on first use and kept; credentials from the
//! SDK's default chain (IRSA in Kubernetes); HTTPS by rustls with ring, as `kms` does.
//! Bounded: connect 5 s, each attempt the delivery timeout, at most two attempts (the outbox
//! retries anyway).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;

use super::{DeliveryError, DeliverySettings, OutgoingNotification};

/// SNS's bound on a subject (ASCII characters).
pub(super) const SUBJECT_LIMIT: usize = 100;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_ATTEMPTS: u32 = 2;
/// Room for the SDK's backoff between the two attempts (its first retry waits under 1 s).
const BACKOFF_ALLOWANCE: Duration = Duration::from_secs(2);

/// Publishes to SNS topics, with one client per region.
pub(super) struct SnsPublisher {
    base: SdkConfig,
    region_override: Option<String>,
    endpoint: Option<String>,
    operation_timeout: Duration,
    clients: Mutex<HashMap<String, aws_sdk_sns::Client>>,
}

impl SnsPublisher {
    pub(super) async fn new(settings: &DeliverySettings) -> SnsPublisher {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let operation_timeout = settings.timeout * MAX_ATTEMPTS + BACKOFF_ALLOWANCE;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(settings.timeout)
                    .operation_timeout(operation_timeout)
                    .build(),
            )
            // Every client gets its region from its topic; one here spares the loader the
            // region chain (which may ask the instance metadata service).
            .region(Region::new(
                settings
                    .sns_region
                    .clone()
                    .unwrap_or_else(|| "us-east-1".into()),
            ));
        if let Some(endpoint) = &settings.sns_endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        SnsPublisher {
            base: loader.load().await,
            region_override: settings.sns_region.clone(),
            endpoint: settings.sns_endpoint.clone(),
            operation_timeout,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// One `Publish` of `message` (the envelope's JSON text).
    pub(super) async fn publish(
        &self,
        topic_arn: &str,
        subject: &str,
        message: String,
        notification: &OutgoingNotification,
    ) -> Result<(), DeliveryError> {
        let topic =
            TopicArn::parse(topic_arn).map_err(|reason| DeliveryError::InvalidTarget { reason })?;
        let region = self.region_override.as_deref().unwrap_or(topic.region);
        let client = self.client(region);
        let mut publish = client
            .publish()
            .topic_arn(topic_arn)
            .subject(subject)
            .message(message)
            .message_attributes("kind", string_attribute(&notification.kind)?)
            .message_attributes(
                "notificationId",
                string_attribute(&notification.notification_id.to_string())?,
            );
        if topic.is_fifo() {
            // A FIFO topic requires a group, and dedupes on this id for five minutes.
            publish = publish
                .message_group_id("orgtrail")
                .message_deduplication_id(notification.notification_id.to_string());
        }
        publish
            .send()
            .await
            .map(|_| ())
            .map_err(|error| self.publish_error(topic_arn, region, error))
    }

    fn client(&self, region: &str) -> aws_sdk_sns::Client {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                aws_sdk_sns::Client::from_conf(
                    aws_sdk_sns::config::Builder::from(&self.base)
                        .region(Region::new(region.to_string()))
                        .build(),
                )
            })
            .clone()
    }

    fn publish_error<E, R>(
        &self,
        topic_arn: &str,
        region: &str,
        error: SdkError<E, R>,
    ) -> DeliveryError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let destination = match &self.endpoint {
            Some(endpoint) => format!("SNS at {endpoint} ({region})"),
            None => format!("SNS in {region}"),
        };
        let timed_out = match &error {
            SdkError::TimeoutError(_) => true,
            SdkError::DispatchFailure(failure) => failure.is_timeout(),
            _ => false,
        };
        if timed_out {
            return DeliveryError::Timeout {
                destination,
                timeout: self.operation_timeout,
            };
        }
        if let SdkError::DispatchFailure(_) = &error {
            return DeliveryError::Connection {
                destination,
                detail: DisplayErrorContext(&error).to_string(),
            };
        }
        let code = error.code().unwrap_or("unknown").to_string();
        let message = match error.message() {
            Some(message) => message.to_string(),
            None => DisplayErrorContext(&error).to_string(),
        };
        DeliveryError::Sns {
            topic_arn: topic_arn.to_string(),
            hint: hint_for(&code).to_string(),
            code,
            message,
        }
    }
}

/// SNS error codes that the same `Publish` will meet again until someone changes something.
pub(super) fn is_permanent_error_code(code: &str) -> bool {
    matches!(
        code,
        "InvalidParameter"
            | "InvalidParameterValue"
            | "ParameterValueInvalid"
            | "NotFound"
            | "AuthorizationError"
            | "InvalidSecurity"
            | "KMSAccessDenied"
            | "KMSDisabled"
            | "KMSInvalidState"
            | "KMSNotFound"
            | "KMSOptInRequired"
    )
}

/// The SNS subject: the summary in printable ASCII (an arrow as `->`, any other character
/// outside it as `?`), at most 100 characters, `...` marking a cut.
pub(super) fn sns_subject(summary: &str) -> String {
    let mut ascii = String::with_capacity(summary.len());
    for c in summary.chars() {
        match c {
            '→' => ascii.push_str("->"),
            ' '..='~' => ascii.push(c),
            c if c.is_whitespace() || c.is_control() => ascii.push(' '),
            _ => ascii.push('?'),
        }
    }
    // SNS wants it to start with a letter, number or punctuation.
    let ascii = ascii.trim();
    if ascii.is_empty() {
        return "orgtrail notification".into();
    }
    if ascii.len() <= SUBJECT_LIMIT {
        return ascii.to_string();
    }
    // All ASCII now: bytes are characters.
    format!("{}...", ascii[..SUBJECT_LIMIT - 3].trim_end())
}

/// Refuses what is not an SNS topic ARN, saying why (checked when a destination is made).
pub fn validate_topic_arn(arn: &str) -> Result<(), String> {
    TopicArn::parse(arn).map(|_| ())
}

/// `arn:<partition>:sns:<region>:<account>:<name>`, the parts delivery needs.
struct TopicArn<'a> {
    region: &'a str,
    name: &'a str,
}

impl<'a> TopicArn<'a> {
    fn parse(arn: &'a str) -> Result<TopicArn<'a>, String> {
        let malformed = |what: &str| {
            format!(
                "{arn:?} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>): {what}"
            )
        };
        let parts: Vec<&str> = arn.split(':').collect();
        let &[prefix, partition, service, region, account, name] = parts.as_slice() else {
            return Err(malformed("it does not have six parts separated by colons"));
        };
        if prefix != "arn" || !partition.starts_with("aws") {
            return Err(malformed("it does not start with arn:aws"));
        }
        if service != "sns" {
            return Err(malformed("its service is not sns"));
        }
        let region_ok = !region.is_empty()
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !region_ok {
            return Err(malformed("its region is missing or malformed"));
        }
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            return Err(malformed("its account is not 12 digits"));
        }
        let base_name = name.strip_suffix(".fifo").unwrap_or(name);
        let name_ok = (1..=256).contains(&name.len())
            && !base_name.is_empty()
            && base_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(malformed("its topic name is missing or malformed"));
        }
        Ok(TopicArn { region, name })
    }

    fn is_fifo(&self) -> bool {
        self.name.ends_with(".fifo")
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, DeliveryError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|error| DeliveryError::InvalidTarget {
            reason: format!("cannot make an SNS message attribute: {error}"),
        })
}

fn hint_for(code: &str) -> &'static str {
    match code {
        "AuthorizationError" => {
            "; the aggregator's AWS identity may not publish to this topic: allow sns:Publish on it (the aggregator's IRSA role and the topic's access policy)"
        }
        "NotFound" => "; there is no such topic in that account and region",
        "KMSAccessDenied" | "KMSDisabled" | "KMSInvalidState" | "KMSNotFound"
        | "KMSOptInRequired" => {
            "; the topic is encrypted with a KMS key the aggregator cannot use: allow kms:GenerateDataKey and kms:Decrypt on it, and check that it is enabled"
        }
        "InvalidClientTokenId" | "SignatureDoesNotMatch" | "ExpiredToken"
        | "UnrecognizedClientException" => {
            "; the AWS credentials are not valid (the default chain: environment, profile, IRSA web identity)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_the_topic_arn() {
        let topic = TopicArn::parse("arn:aws:sns:eu-west-1:123456789012:orgtrail-alarms").unwrap();
        assert_eq!(topic.region, "eu-west-1");
        assert!(!topic.is_fifo());
        let topic = TopicArn::parse("arn:aws-cn:sns:cn-north-1:123456789012:alarms.fifo").unwrap();
        assert_eq!(topic.region, "cn-north-1");
        assert!(topic.is_fifo());
        for (bad, reason) in [
            ("orgtrail-alarms", "six parts"),
            ("arn:aws:sns:eu-west-1:123456789012", "six parts"),
            ("arn:aws:sns:eu-west-1:123456789012:a:b", "six parts"),
            ("urn:aws:sns:eu-west-1:123456789012:alarms", "arn:aws"),
            ("arn:aws:sqs:eu-west-1:123456789012:alarms", "service"),
            ("arn:aws:sns::123456789012:alarms", "region"),
            ("arn:aws:sns:EU-WEST-1:123456789012:alarms", "region"),
            ("arn:aws:sns:eu-west-1:1234:alarms", "12 digits"),
            ("arn:aws:sns:eu-west-1:123456789012:", "topic name"),
            ("arn:aws:sns:eu-west-1:123456789012:.fifo", "topic name"),
            ("arn:aws:sns:eu-west-1:123456789012:al arms", "topic name"),
        ] {
            let Err(refusal) = TopicArn::parse(bad) else {
                panic!("{bad} was taken");
            };
            assert!(refusal.contains(reason), "{bad}: {refusal}");
        }
    }

    #[test]
    fn the_subject_is_printable_ascii_of_at_most_100_characters() {
        assert_eq!(
            sns_subject("orgtrail alarm root-login (CIS 4.3): OK → ALARM"),
            "orgtrail alarm root-login (CIS 4.3): OK -> ALARM"
        );
        assert_eq!(
            sns_subject("orgtrail finding: café\tnaïve"),
            "orgtrail finding: caf? na?ve"
        );
        assert_eq!(sns_subject("  \n "), "orgtrail notification");
        let long = sns_subject(&format!("orgtrail finding: {}", "é".repeat(300)));
        assert_eq!(long.len(), 100);
        assert!(long.ends_with("?..."));
        assert!(long.chars().all(|c| (' '..='~').contains(&c)));
    }

    #[test]
    fn refusals_that_need_a_person_are_permanent() {
        assert!(is_permanent_error_code("AuthorizationError"));
        assert!(is_permanent_error_code("NotFound"));
        assert!(!is_permanent_error_code("Throttling"));
        assert!(!is_permanent_error_code("InternalError"));
        assert!(hint_for("AuthorizationError").contains("sns:Publish"));
    }
}
