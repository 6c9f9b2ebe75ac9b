//! Delivery of one notification to one destination — a signed JSON webhook, a Slack incoming
//! webhook or an Amazon SNS topic — pure of the database. The outbox dispatcher claims a
//! pending notification, opens its destination into a [`DeliveryTarget`], calls
//! [`Deliverer::deliver`] and records the outcome; a failure it retries later, so delivery is
//! **at least once**.
//!
//! # The webhook body and its signature
//!
//! A webhook gets `POST <url>` with `content-type: application/json` and the body
//! [`envelope`] makes: `{"notificationId":…,"kind":…,"subject":…,"createdAt":…}` followed by
//! the members of the notification's own body. The headers `x-orgtrail-notification-id`,
//! `x-orgtrail-timestamp` (Unix seconds when it was sent) and `x-orgtrail-signature`
//! (`v1=<hex>`, see [`signature`]) come with it. A receiver verifies it so:
//!
//! 1. take the **raw** body bytes as received (before any JSON parsing or re-encoding) and the
//!    `x-orgtrail-timestamp` header text;
//! 2. compute HMAC-SHA256 keyed with the destination's signing secret (its UTF-8 bytes) over
//!    `timestamp + "." + raw body`, and hex-encode it in lowercase;
//! 3. compare `"v1=" + hex` with `x-orgtrail-signature` **in constant time**;
//! 4. refuse a timestamp more than 5 minutes from its own clock (a replayed request);
//! 5. dedupe on `x-orgtrail-notification-id`: a crash between the receiver's 2xx and orgtrail
//!    recording it sends the same notification again, with the same id (and a new timestamp
//!    and signature).
//!
//! Any 2xx answer is a delivery; redirects are not followed; every exchange is bounded by
//! [`DeliverySettings::timeout`] (connection and the whole answer).

mod slack;
mod sns;

pub use sns::validate_topic_arn;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use orgtrail_service_runtime::error_chain;
use secrecy::{ExposeSecret, SecretString};
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

/// Where a notification goes, opened (secrets in the clear, in memory only).
pub enum DeliveryTarget {
    /// A JSON POST, signed.
    Webhook {
        url: String,
        signing_secret: SecretString,
    },
    /// A Slack incoming webhook.
    Slack { url: String },
    /// An Amazon SNS topic.
    Sns { topic_arn: String },
}

impl std::fmt::Debug for DeliveryTarget {
    // URLs are secrets (a Slack webhook's path is its credential): only scheme and host show.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryTarget::Webhook { url, .. } => formatter
                .debug_struct("Webhook")
                .field("destination", &destination_of(url))
                .finish_non_exhaustive(),
            DeliveryTarget::Slack { url } => formatter
                .debug_struct("Slack")
                .field("destination", &destination_of(url))
                .finish_non_exhaustive(),
            DeliveryTarget::Sns { topic_arn } => formatter
                .debug_struct("Sns")
                .field("topic_arn", topic_arn)
                .finish(),
        }
    }
}

/// One notification as it leaves.
#[derive(Clone, Debug)]
pub struct OutgoingNotification {
    pub notification_id: i64,
    /// `alarm.state_change`, `destination.test` (later `finding`).
    pub kind: String,
    /// What it is about, e.g. the alarm's name.
    pub subject: String,
    /// A JSON object: the notification's content, built by the caller. Its members follow the
    /// envelope's in the webhook body, so none may be named like one of those.
    pub body: Value,
    pub created_at: DateTime<Utc>,
}

/// How deliveries are made.
#[derive(Clone, Debug)]
pub struct DeliverySettings {
    /// Bounds one webhook or Slack exchange (connecting, sending, the whole answer) and each of
    /// the (at most two) attempts of an SNS `Publish`.
    pub timeout: Duration,
    /// Sends SNS calls here instead of AWS's endpoint of the topic's region (a VPC endpoint,
    /// moto in tests).
    pub sns_endpoint: Option<String>,
    /// Signs SNS calls for this region instead of the topic ARN's (an endpoint that serves
    /// one region whatever the topic); `None`: each topic's own region.
    pub sns_region: Option<String>,
}

/// [`DeliverySettings::timeout`] unless configured.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            timeout: DEFAULT_DELIVERY_TIMEOUT,
            sns_endpoint: None,
            sns_region: None,
        }
    }
}

/// The headers of a webhook request besides content type and user agent.
pub const NOTIFICATION_ID_HEADER: &str = "x-orgtrail-notification-id";
pub const TIMESTAMP_HEADER: &str = "x-orgtrail-timestamp";
pub const SIGNATURE_HEADER: &str = "x-orgtrail-signature";

/// `orgtrail/<version>`, the user agent of every webhook and Slack request.
pub const USER_AGENT: &str = concat!("orgtrail/", env!("CARGO_PKG_VERSION"));

/// What went wrong with one delivery. Messages never carry a URL's path or query (a Slack
/// webhook's path is its secret): a destination is named by scheme, host and port.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The destination cannot be delivered to as configured.
    #[error("invalid target: {reason}")]
    InvalidTarget { reason: String },
    /// The notification itself cannot be sent (its body is not a JSON object, …).
    #[error("notification {notification_id} cannot be sent: {reason}")]
    InvalidNotification {
        notification_id: i64,
        reason: String,
    },
    /// The destination answered, with something else than 2xx.
    #[error("{destination} answered HTTP {status}: {excerpt:?}")]
    HttpStatus {
        destination: String,
        status: u16,
        /// The first 256 bytes of the answer's body, as text.
        excerpt: String,
    },
    /// No connection (refused, DNS, TLS), or it broke before an answer.
    #[error("cannot reach {destination}: {detail}")]
    Connection { destination: String, detail: String },
    #[error("{destination} did not answer within {timeout:?}")]
    Timeout {
        destination: String,
        timeout: Duration,
    },
    /// SNS refused the `Publish`.
    #[error("SNS Publish to {topic_arn} failed: {code}: {message}{hint}")]
    Sns {
        topic_arn: String,
        code: String,
        message: String,
        /// What to fix, when the code says (`; …`), else empty.
        hint: String,
    },
}

impl DeliveryError {
    /// Whether the same delivery may succeed later with nothing changed: the outbox retries
    /// these with backoff and fails the others at once.
    pub fn is_retryable(&self) -> bool {
        match self {
            DeliveryError::InvalidTarget { .. } | DeliveryError::InvalidNotification { .. } => {
                false
            }
            // A 4xx is the receiver's considered no, except these.
            DeliveryError::HttpStatus { status, .. } => {
                matches!(status, 408 | 425 | 429) || *status >= 500
            }
            DeliveryError::Connection { .. } | DeliveryError::Timeout { .. } => true,
            DeliveryError::Sns { code, .. } => !sns::is_permanent_error_code(code),
        }
    }
}

/// Sends notifications; cheap to clone (one HTTP connection pool and one SNS client per
/// region, shared).
#[derive(Clone)]
pub struct Deliverer {
    inner: Arc<DelivererInner>,
}

struct DelivererInner {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    sns: sns::SnsPublisher,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Deliverer")
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// Async for the AWS configuration (credentials come from the SDK's default chain, read
    /// on first use); SNS clients are made per region on first use.
    pub async fn new(settings: DeliverySettings) -> Deliverer {
        Deliverer {
            inner: Arc::new(DelivererInner {
                http: http_client(settings.timeout),
                timeout: settings.timeout,
                sns: sns::SnsPublisher::new(&settings).await,
            }),
        }
    }

    /// Delivers once: `Ok` when the destination took it (HTTP 2xx, or SNS accepted it).
    pub async fn deliver(
        &self,
        target: &DeliveryTarget,
        notification: &OutgoingNotification,
    ) -> Result<(), DeliveryError> {
        match target {
            DeliveryTarget::Webhook {
                url,
                signing_secret,
            } => {
                validate_target_url(url)
                    .map_err(|reason| DeliveryError::InvalidTarget { reason })?;
                let body = envelope(notification)?.into_bytes();
                let timestamp = unix_seconds_now();
                let signed = signature(signing_secret.expose_secret().as_bytes(), timestamp, &body);
                let headers = [
                    (
                        NOTIFICATION_ID_HEADER,
                        notification.notification_id.to_string(),
                    ),
                    (TIMESTAMP_HEADER, timestamp.to_string()),
                    (SIGNATURE_HEADER, signed),
                ];
                self.post_json(url, body, &headers).await
            }
            DeliveryTarget::Slack { url } => {
                validate_target_url(url)
                    .map_err(|reason| DeliveryError::InvalidTarget { reason })?;
                let message = slack::slack_message(notification);
                let body = serde_json::to_vec(&message).map_err(|error| {
                    DeliveryError::InvalidNotification {
                        notification_id: notification.notification_id,
                        reason: format!("its Slack message is not JSON: {error}"),
                    }
                })?;
                self.post_json(url, body, &[]).await
            }
            DeliveryTarget::Sns { topic_arn } => {
                let message = envelope(notification)?;
                let subject = sns::sns_subject(&slack::one_line_summary(notification));
                self.inner
                    .sns
                    .publish(topic_arn, &subject, message, notification)
                    .await
            }
        }
    }

    /// One POST of JSON, bounded by the timeout from connecting to the end of the answer.
    async fn post_json(
        &self,
        url: &str,
        body: Vec<u8>,
        extra_headers: &[(&'static str, String)],
    ) -> Result<(), DeliveryError> {
        let destination = destination_of(url);
        let mut request = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, USER_AGENT);
        for (name, value) in extra_headers {
            request = request.header(*name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| DeliveryError::InvalidTarget {
                reason: format!("cannot make a request to {destination}: {error}"),
            })?;
        let timeout = self.inner.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let response =
            match tokio::time::timeout_at(deadline, self.inner.http.request(request)).await {
                Err(_elapsed) => {
                    return Err(DeliveryError::Timeout {
                        destination,
                        timeout,
                    })
                }
                Ok(Err(error)) => {
                    return Err(DeliveryError::Connection {
                        detail: error_chain(&error),
                        destination,
                    })
                }
                Ok(Ok(response)) => response,
            };
        let status = response.status();
        // Read (a bounded part of) the answer so the connection can be used again; a 2xx whose
        // body then fails or stalls was still delivered.
        let answer = tokio::time::timeout_at(
            deadline,
            read_at_most(response.into_body(), MAX_ANSWER_BYTES),
        )
        .await;
        if status.is_success() {
            return Ok(());
        }
        let excerpt = match answer {
            Ok(Ok(bytes)) => excerpt_of(&bytes),
            Ok(Err(error)) => format!("(the body broke off: {error})"),
            Err(_elapsed) => format!("(the body did not arrive within {timeout:?})"),
        };
        Err(DeliveryError::HttpStatus {
            destination,
            status: status.as_u16(),
            excerpt,
        })
    }
}

/// The JSON text of a notification as webhooks and SNS receive it:
/// `{"notificationId":…,"kind":…,"subject":…,"createdAt":"<RFC 3339, UTC, milliseconds>"`,
/// then the members of `notification.body` in its own order, `}`. Made once and signed as it
/// is: the signature is over exactly these bytes.
pub fn envelope(notification: &OutgoingNotification) -> Result<String, DeliveryError> {
    let invalid = |reason: String| DeliveryError::InvalidNotification {
        notification_id: notification.notification_id,
        reason,
    };
    let Value::Object(body) = &notification.body else {
        return Err(invalid("its body is not a JSON object".into()));
    };
    if let Some(name) = ENVELOPE_MEMBERS
        .iter()
        .find(|name| body.contains_key(**name))
    {
        return Err(invalid(format!(
            "its body has a member `{name}`, which the envelope has"
        )));
    }
    serde_json::to_string(&Envelope { notification, body })
        .map_err(|error| invalid(format!("it is not JSON: {error}")))
}

/// `"v1="` + lowercase hex of HMAC-SHA256 keyed with `secret` over `"{timestamp}."` followed
/// by `body`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(format!("{timestamp}.").as_bytes());
    context.update(body);
    let tag = context.sign();
    let mut text = String::with_capacity(3 + 64);
    text.push_str("v1=");
    for byte in tag.as_ref() {
        text.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// A webhook or Slack URL orgtrail will post to: `https://`, or `http://` to a loopback
/// address (127.0.0.0/8, `[::1]`, `localhost`) for receivers on the same host; a host; no
/// credentials (user information) in it. The reason when not.
pub fn validate_target_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("the URL is empty".into());
    }
    if !url.contains("://") {
        return Err("the URL has no scheme: it must start with https://".into());
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|error| format!("the URL does not parse: {error}"))?;
    let Some(scheme) = uri.scheme_str() else {
        return Err("the URL has no scheme: it must start with https://".into());
    };
    let Some(authority) = uri.authority() else {
        return Err("the URL has no host".into());
    };
    if authority.as_str().contains('@') {
        return Err(
            "the URL carries credentials (user information before an @), which is not allowed"
                .into(),
        );
    }
    let host = authority.host();
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    if scheme.eq_ignore_ascii_case("https") {
        Ok(())
    } else if scheme.eq_ignore_ascii_case("http") {
        if is_loopback_host(host) {
            Ok(())
        } else {
            Err(format!(
                "http:// is allowed only to a loopback address (127.0.0.0/8, ::1, localhost), not {host}: use https://"
            ))
        }
    } else {
        Err(format!("the URL's scheme is {scheme}: it must be https"))
    }
}

/// The most of an answer's body that is read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The most of an answer's body an error quotes.
const EXCERPT_BYTES: usize = 256;
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
/// The envelope's own members, which a body may not repeat.
const ENVELOPE_MEMBERS: [&str; 4] = ["notificationId", "kind", "subject", "createdAt"];

/// The envelope's members, then the body's, in one JSON object.
struct Envelope<'a> {
    notification: &'a OutgoingNotification,
    body: &'a Map<String, Value>,
}

impl serde::Serialize for Envelope<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let notification = self.notification;
        let mut map = serializer.serialize_map(Some(ENVELOPE_MEMBERS.len() + self.body.len()))?;
        map.serialize_entry("notificationId", &notification.notification_id)?;
        map.serialize_entry("kind", &notification.kind)?;
        map.serialize_entry("subject", &notification.subject)?;
        map.serialize_entry("createdAt", &rfc3339(notification.created_at))?;
        for (name, value) in self.body {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The HTTP client of webhooks and Slack: HTTP/1.1, TLS by rustls with ring and Mozilla's
/// roots compiled in (the image is distroless: there are no system roots to read), plain
/// HTTP only where [`validate_target_url`] let it through. The legacy client follows no
/// redirects.
fn http_client(timeout: Duration) -> Client<HttpsConnector<HttpConnector>, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.enforce_http(false);
    connector.set_connect_timeout(Some(timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        // Not reachable from input: ring supports every protocol version rustls defaults to.
        .expect("rustls with ring supports its default protocol versions")
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new()).build(https)
}

/// Up to `limit` bytes of a body; the rest is left unread.
async fn read_at_most(
    mut body: hyper::body::Incoming,
    limit: usize,
) -> Result<Vec<u8>, hyper::Error> {
    let mut bytes = Vec::new();
    while bytes.len() < limit {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame?.into_data() {
            let take = data.len().min(limit - bytes.len());
            bytes.extend_from_slice(&data[..take]);
        }
    }
    Ok(bytes)
}

/// The first [`EXCERPT_BYTES`] of a body as one line of text.
fn excerpt_of(body: &[u8]) -> String {
    let mut end = body.len().min(EXCERPT_BYTES);
    // Do not end on a cut character.
    if let Err(error) = std::str::from_utf8(&body[..end]) {
        if error.error_len().is_none() {
            end = error.valid_up_to();
        }
    }
    String::from_utf8_lossy(&body[..end])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// `scheme://host[:port]` of a URL: how errors and logs name a destination without its
/// path and query, which may be its credential.
fn destination_of(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(uri) => match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => {
                let host_and_port = authority
                    .as_str()
                    .rsplit_once('@')
                    .map_or(authority.as_str(), |(_, rest)| rest);
                format!("{scheme}://{host_and_port}")
            }
            _ => "a destination without a host".into(),
        },
        Err(_) => "a destination whose URL does not parse".into(),
    }
}

fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Some(inner) = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|address| address.is_loopback());
    }
    host.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|address| address.is_loopback())
}

/// The time of sending, from the wall clock on purpose: the receiver checks it against its
/// own clock, so it must be real time even when the aggregator's `Clock` is frozen.
fn unix_seconds_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed_notification() -> OutgoingNotification {
        OutgoingNotification {
            notification_id: 42,
            kind: "alarm.state_change".into(),
            subject: "root-login".into(),
            body: serde_json::json!({
                "alarm": {"name": "root-login", "cisId": "4.3", "title": "Root account usage"},
                "eventIds": ["e1"],
                "newState": "ALARM",
                "oldState": "OK",
            }),
            created_at: DateTime::parse_from_rfc3339("2026-11-30T12:00:00.5Z")
                .map(|time| time.with_timezone(&Utc))
                .unwrap(),
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body_in_lowercase_hex() {
        // Computed apart from this code, with Python's hmac module:
        // hmac.new(b"whsec_test", b"1700000000." + b'{"a":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            signature(b"whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn the_envelope_puts_its_members_first_then_the_body_s() {
        assert_eq!(
            envelope(&fixed_notification()).unwrap(),
            r#"{"notificationId":42,"kind":"alarm.state_change","subject":"root-login","createdAt":"2026-11-30T12:00:00.500Z","alarm":{"cisId":"4.3","name":"root-login","title":"Root account usage"},"eventIds":["e1"],"newState":"ALARM","oldState":"OK"}"#
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_or_repeats_an_envelope_member_is_refused() {
        let mut notification = fixed_notification();
        notification.body = serde_json::json!(["not", "an", "object"]);
        let error = envelope(&notification).unwrap_err();
        assert!(!error.is_retryable());
        assert!(error.to_string().contains("not a JSON object"), "{error}");
        notification.body = serde_json::json!({"kind": "spoofed"});
        let error = envelope(&notification).unwrap_err();
        assert!(error.to_string().contains("`kind`"), "{error}");
    }

    #[test]
    fn target_urls_are_https_or_http_to_loopback_without_credentials() {
        for good in [
            "https://hooks.slack.com/services/T000/B000/XXXX",
            "https://example.com",
            "https://example.com:8443/hook?x=1",
            "HTTPS://EXAMPLE.COM/hook",
            "http://127.0.0.1:8080/hook",
            "http://127.10.20.30/hook",
            "http://[::1]:9000/hook",
            "http://localhost/hook",
            "http://LocalHost:1/",
        ] {
            assert_eq!(validate_target_url(good), Ok(()), "{good}");
        }
        for (bad, reason) in [
            ("http://example.com/hook", "loopback"),
            ("http://10.0.0.1/hook", "loopback"),
            ("http://localhost.example.com/", "loopback"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://128.0.0.1/", "loopback"),
            ("ftp://example.com/file", "scheme"),
            ("https://user:password@example.com/hook", "credentials"),
            ("https://token@example.com/hook", "credentials"),
            ("example.com/hook", "scheme"),
            ("/just/a/path", "scheme"),
            ("https://exa mple.com/", "parse"),
            ("https://exa<mple.com/", "parse"),
            ("", "empty"),
        ] {
            let refusal = validate_target_url(bad).expect_err(bad);
            assert!(refusal.contains(reason), "{bad}: {refusal}");
        }
    }

    #[test]
    fn destinations_are_named_without_path_query_or_credentials() {
        assert_eq!(
            destination_of("https://hooks.slack.com/services/T000/B000/secret"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            destination_of("http://127.0.0.1:8080/hook?token=secret"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            destination_of("https://user:secret@example.com/"),
            "https://example.com"
        );
        let target = DeliveryTarget::Slack {
            url: "https://hooks.slack.com/services/T000/B000/secret".into(),
        };
        assert!(!format!("{target:?}").contains("secret"));
    }

    #[test]
    fn an_excerpt_is_the_first_256_bytes_on_one_line_never_a_cut_character() {
        assert_eq!(excerpt_of(b"  busy\r\ntry later\n"), "busy  try later");
        let long = "é".repeat(200); // 400 bytes, two per character
        let excerpt = excerpt_of(long.as_bytes());
        assert_eq!(excerpt, "é".repeat(128));
        let odd = format!("a{}", "é".repeat(200)); // byte 256 cuts an é in two
        assert_eq!(excerpt_of(odd.as_bytes()), format!("a{}", "é".repeat(127)));
    }

    #[test]
    fn only_the_receivers_considered_refusals_are_final() {
        let status = |status| DeliveryError::HttpStatus {
            destination: "https://example.com".into(),
            status,
            excerpt: String::new(),
        };
        assert!(status(503).is_retryable());
        assert!(status(429).is_retryable());
        assert!(status(408).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!DeliveryError::InvalidTarget {
            reason: String::new()
        }
        .is_retryable());
    }
}
