//! S3's notifications of new objects, as an SQS queue receives them, taken apart: S3's own
//! event messages (`{"Records": [...]}`, object keys form-encoded: `+` for a space), the same
//! wrapped in an SNS envelope (`{"Type": "Notification", "Message": "<the S3 message>"}`),
//! EventBridge's `Object Created` events (keys as they are), and S3's `s3:TestEvent`. What a
//! collector does with them (read each new log file, ignore other buckets) is its own; this
//! only says what a message holds, or why it cannot be read.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// What one queue message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum S3Notification {
    /// S3's `s3:TestEvent`, sent when a notification is configured: nothing to read.
    Test { bucket: Option<String> },
    /// Objects created (one message of S3's may carry several records).
    Created(Vec<CreatedObject>),
    /// Events of other kinds only (removals, tags, restores …): nothing to read.
    Other { kinds: Vec<String> },
}

/// An object S3 says was created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedObject {
    pub bucket: String,
    /// The key as S3 stores it (decoded).
    pub key: String,
    /// Without quotes; S3 omits it for some events.
    pub etag: Option<String>,
    pub size: Option<u64>,
    /// When S3 created it, per the event.
    pub event_time: Option<DateTime<Utc>>,
}

/// Why a message cannot be read; the text says what was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an S3 notification: {0}")]
pub struct NotificationError(pub String);

/// Takes one queue message's body apart.
pub fn parse_s3_notification(body: &str) -> Result<S3Notification, NotificationError> {
    let value: Value = serde_json::from_str(body)
        .map_err(|error| NotificationError(format!("the body is not JSON ({error})")))?;
    parse_value(&value, true)
}

fn parse_value(value: &Value, may_be_envelope: bool) -> Result<S3Notification, NotificationError> {
    let Some(object) = value.as_object() else {
        return Err(NotificationError("the body is not a JSON object".into()));
    };
    // SNS → SQS without raw delivery: the S3 message is the envelope's Message text.
    if may_be_envelope && object.get("Type").and_then(Value::as_str) == Some("Notification") {
        let message = object
            .get("Message")
            .and_then(Value::as_str)
            .ok_or_else(|| NotificationError("an SNS envelope without a Message text".into()))?;
        let inner: Value = serde_json::from_str(message).map_err(|error| {
            NotificationError(format!("the SNS envelope's Message is not JSON ({error})"))
        })?;
        return parse_value(&inner, false);
    }
    if object.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(S3Notification::Test {
            bucket: object
                .get("Bucket")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    }
    if let Some(records) = object.get("Records") {
        return parse_records(records);
    }
    if object.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return parse_eventbridge(object);
    }
    Err(NotificationError(
        "neither S3 event records, an SNS envelope, an EventBridge S3 event nor s3:TestEvent"
            .into(),
    ))
}

fn parse_records(records: &Value) -> Result<S3Notification, NotificationError> {
    let records = records
        .as_array()
        .ok_or_else(|| NotificationError("Records is not a list".into()))?;
    let mut created = Vec::new();
    let mut kinds = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let field = |path: &str| record.pointer(path);
        let name = field("/eventName")
            .and_then(Value::as_str)
            .ok_or_else(|| NotificationError(format!("record {index} has no eventName")))?;
        if field("/eventSource").and_then(Value::as_str) != Some("aws:s3") {
            return Err(NotificationError(format!(
                "record {index} is not from aws:s3"
            )));
        }
        if !name.starts_with("ObjectCreated:") {
            kinds.push(name.to_string());
            continue;
        }
        let bucket = field("/s3/bucket/name")
            .and_then(Value::as_str)
            .ok_or_else(|| NotificationError(format!("record {index} has no s3.bucket.name")))?;
        let encoded = field("/s3/object/key")
            .and_then(Value::as_str)
            .ok_or_else(|| NotificationError(format!("record {index} has no s3.object.key")))?;
        let key = form_decode(encoded).ok_or_else(|| {
            NotificationError(format!(
                "record {index}'s key {encoded:?} is not URL-encoded UTF-8"
            ))
        })?;
        created.push(CreatedObject {
            bucket: bucket.to_string(),
            key,
            etag: field("/s3/object/eTag")
                .and_then(Value::as_str)
                .map(|etag| etag.trim_matches('"').to_string()),
            size: field("/s3/object/size").and_then(Value::as_u64),
            event_time: field("/eventTime")
                .and_then(Value::as_str)
                .and_then(parse_time),
        });
    }
    if created.is_empty() {
        Ok(S3Notification::Other { kinds })
    } else {
        Ok(S3Notification::Created(created))
    }
}

fn parse_eventbridge(
    event: &serde_json::Map<String, Value>,
) -> Result<S3Notification, NotificationError> {
    let kind = event
        .get("detail-type")
        .and_then(Value::as_str)
        .ok_or_else(|| NotificationError("an EventBridge event without detail-type".into()))?;
    if kind != "Object Created" {
        return Ok(S3Notification::Other {
            kinds: vec![kind.to_string()],
        });
    }
    let detail = event
        .get("detail")
        .ok_or_else(|| NotificationError("an Object Created event without detail".into()))?;
    let text = |path: &str| detail.pointer(path).and_then(Value::as_str);
    let bucket = text("/bucket/name")
        .ok_or_else(|| NotificationError("an Object Created event without bucket.name".into()))?;
    let key = text("/object/key")
        .ok_or_else(|| NotificationError("an Object Created event without object.key".into()))?;
    Ok(S3Notification::Created(vec![CreatedObject {
        bucket: bucket.to_string(),
        // EventBridge's keys are not encoded.
        key: key.to_string(),
        etag: text("/object/etag")
            .or_else(|| text("/object/eTag"))
            .map(|etag| etag.trim_matches('"').to_string()),
        size: detail.pointer("/object/size").and_then(Value::as_u64),
        event_time: event
            .get("time")
            .and_then(Value::as_str)
            .and_then(parse_time),
    }]))
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// `application/x-www-form-urlencoded` decoding, as S3 encodes keys in its event records: `+`
/// is a space, `%XX` a byte; `None` for a bad escape or bytes that are not UTF-8.
pub fn form_decode(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => {
                decoded.push(b' ');
                index += 1;
            }
            b'%' => {
                let hex = encoded.get(index + 1..index + 3)?;
                decoded.push(u8::from_str_radix(hex, 16).ok()?);
                index += 3;
            }
            byte => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key the messages below name, as S3 stores it (with a `+` and a space).
    const KEY: &str = "AWSLogs/o-abc123/111122223333/CloudTrail/us-east-1/2026/11/30/111122223333_CloudTrail_us-east-1_20261130T1205Z_AbCd+ef 1.json.gz";

    // Captured from moto 5 (server mode): S3 → SQS, S3 → SNS → SQS, S3 → EventBridge → SQS.
    const DIRECT: &str = r#"{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-12-01T06:21:40.259Z", "eventName": "ObjectCreated:Put", "s3": {"s3SchemaVersion": "1.0", "configurationId": "hdbF3bSrqBzQtp8L8an6DkCl66pRa5trSUyJ9ojEwiG3P2N2Kb", "bucket": {"name": "trail-direct", "arn": "arn:aws:s3:::trail-direct"}, "object": {"key": "AWSLogs%2Fo-abc123%2F111122223333%2FCloudTrail%2Fus-east-1%2F2026%2F11%2F30%2F111122223333_CloudTrail_us-east-1_20261130T1205Z_AbCd%2Bef+1.json.gz", "size": 1, "eTag": "9dd4e461268c8034f5c8564e155c67a6"}}}]}"#;
    const TEST_EVENT: &str = r#"{"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-12-01T06:21:40.255Z", "Bucket": "trail-direct"}"#;
    const EVENTBRIDGE: &str = r#"{"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012", "time": "2026-12-01T06:21:44Z", "region": "us-east-1", "resources": ["arn:aws:s3:::trail-eb"], "detail": {"version": "0", "bucket": {"name": "trail-eb"}, "object": {"key": "AWSLogs/o-abc123/111122223333/CloudTrail/us-east-1/2026/11/30/111122223333_CloudTrail_us-east-1_20261130T1205Z_AbCd+ef 1.json.gz", "size": 1, "eTag": "9dd4e461268c8034f5c8564e155c67a6", "version-id": "null", "sequencer": "617f08299329d189"}, "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "source-ip-address": "1.2.3.4", "reason": "ObjectCreated"}}"#;

    fn sns_envelope(message: &str) -> String {
        serde_json::json!({
            "Type": "Notification",
            "MessageId": "f0717310-c04d-4f12-9d62-402e52e7b511",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:trail",
            "Message": message,
            "Timestamp": "2026-12-01T06:21:42.372Z",
        })
        .to_string()
    }

    #[test]
    fn s3s_own_records_sns_envelopes_and_eventbridge_events_name_the_same_object() {
        let created = |body: &str| match parse_s3_notification(body).unwrap() {
            S3Notification::Created(objects) => objects,
            other => panic!("{other:?}"),
        };
        let direct = created(DIRECT);
        assert_eq!(direct.len(), 1);
        assert_eq!(direct[0].bucket, "trail-direct");
        assert_eq!(direct[0].key, KEY);
        assert_eq!(
            direct[0].etag.as_deref(),
            Some("9dd4e461268c8034f5c8564e155c67a6")
        );
        assert_eq!(direct[0].size, Some(1));
        assert_eq!(
            direct[0].event_time.map(|time| time.to_rfc3339()),
            Some("2026-12-01T06:21:40.259+00:00".to_string())
        );
        assert_eq!(created(&sns_envelope(DIRECT)), direct);
        let bridged = created(EVENTBRIDGE);
        assert_eq!(bridged[0].key, KEY);
        assert_eq!(bridged[0].bucket, "trail-eb");
    }

    #[test]
    fn test_events_other_kinds_and_several_records() {
        assert_eq!(
            parse_s3_notification(TEST_EVENT).unwrap(),
            S3Notification::Test {
                bucket: Some("trail-direct".into())
            }
        );
        assert_eq!(
            parse_s3_notification(&sns_envelope(TEST_EVENT)).unwrap(),
            S3Notification::Test {
                bucket: Some("trail-direct".into())
            }
        );
        let tags = EVENTBRIDGE.replace("\"Object Created\"", "\"Object Tags Added\"");
        assert_eq!(
            parse_s3_notification(&tags).unwrap(),
            S3Notification::Other {
                kinds: vec!["Object Tags Added".into()]
            }
        );
        let mut value: Value = serde_json::from_str(DIRECT).unwrap();
        let record = value["Records"][0].clone();
        let mut removed = record.clone();
        removed["eventName"] = "ObjectRemoved:Delete".into();
        let mut second = record.clone();
        second["s3"]["object"]["key"] = "a%2Fb.json.gz".into();
        value["Records"] = Value::Array(vec![record, removed.clone(), second]);
        match parse_s3_notification(&value.to_string()).unwrap() {
            S3Notification::Created(objects) => {
                let keys: Vec<&str> = objects.iter().map(|object| object.key.as_str()).collect();
                assert_eq!(keys, [KEY, "a/b.json.gz"]);
            }
            other => panic!("{other:?}"),
        }
        value["Records"] = Value::Array(vec![removed]);
        assert_eq!(
            parse_s3_notification(&value.to_string()).unwrap(),
            S3Notification::Other {
                kinds: vec!["ObjectRemoved:Delete".into()]
            }
        );
    }

    #[test]
    fn malformed_messages_say_what_is_wrong() {
        let cases = [
            ("not json", "not JSON"),
            ("[1, 2]", "not a JSON object"),
            (r#"{"hello": "world"}"#, "neither S3 event records"),
            (r#"{"Records": 3}"#, "Records is not a list"),
            (
                r#"{"Records": [{"eventSource": "aws:s3"}]}"#,
                "no eventName",
            ),
            (
                r#"{"Records": [{"eventSource": "aws:sqs", "eventName": "ObjectCreated:Put"}]}"#,
                "not from aws:s3",
            ),
            (
                r#"{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "a%ZZ"}}}]}"#,
                "is not URL-encoded UTF-8",
            ),
            (
                r#"{"Type": "Notification", "Message": "{oops"}"#,
                "Message is not JSON",
            ),
        ];
        for (body, expected) in cases {
            let error = parse_s3_notification(body).unwrap_err();
            assert!(error.to_string().contains(expected), "{body}: {error}");
        }
    }

    #[test]
    fn form_decoding_is_s3s() {
        assert_eq!(form_decode("a+b%2Bc%2Fd").as_deref(), Some("a b+c/d"));
        assert_eq!(form_decode("%C3%A9t%C3%A9").as_deref(), Some("été"));
        assert_eq!(form_decode("bad%2"), None);
        assert_eq!(form_decode("%FF"), None);
    }
}
