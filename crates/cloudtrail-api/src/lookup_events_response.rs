//! The LookupEvents response body, `{"Events": [...], "NextToken": ...}`, in CloudTrail's
//! `Event` shape (shared reference §6.1): `ReadOnly` a string, `EventTime` epoch seconds as a
//! number (§6.2), `CloudTrailEvent` the original record as a JSON string. The server maps its
//! stored events into [`ApiEvent`]; this module only writes them.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

/// One event as LookupEvents returns it. Optional members are left out when absent, as
/// CloudTrail does.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiEvent {
    pub event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_read_only"
    )]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(serialize_with = "serialize_epoch_seconds")]
    pub event_time: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub resources: Vec<ApiResource>,
    /// The original record, compact JSON text.
    #[serde(rename = "CloudTrailEvent")]
    pub cloudtrail_event: String,
}

/// One of an event's resources.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiResource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
}

/// A page of events, newest first; no `next_token` on the last page.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEventsResponse {
    pub events: Vec<ApiEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl LookupEventsResponse {
    /// The HTTP 200 body (content type [`crate::CONTENT_TYPE`]).
    pub fn to_json_body(&self) -> Vec<u8> {
        // Strings, numbers and lists only: serialization cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

fn serialize_read_only<S: Serializer>(
    read_only: &Option<bool>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match read_only {
        Some(true) => serializer.serialize_str("true"),
        Some(false) => serializer.serialize_str("false"),
        None => serializer.serialize_none(),
    }
}

/// Epoch seconds with milliseconds as a fraction, always written with a decimal point
/// (`1424476529.0`, as CloudTrail's own responses).
fn serialize_epoch_seconds<S: Serializer>(
    time: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(time.timestamp_millis() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_written_in_cloudtrails_shape() {
        let response = LookupEventsResponse {
            events: vec![ApiEvent {
                event_id: "0b5ccb84-7b7b-4bf3-9e1b-3e8a4d7a7c1a".into(),
                event_name: Some("ConsoleLogin".into()),
                read_only: Some(false),
                access_key_id: None,
                event_time: DateTime::from_timestamp(1424476529, 0).unwrap(),
                event_source: Some("signin.amazonaws.com".into()),
                username: Some("alice".into()),
                resources: vec![ApiResource {
                    resource_type: Some("AWS::IAM::User".into()),
                    resource_name: Some("alice".into()),
                }],
                cloudtrail_event: r#"{"eventVersion":"1.08"}"#.into(),
            }],
            next_token: Some("token".into()),
        };
        let body: serde_json::Value = serde_json::from_slice(&response.to_json_body()).unwrap();
        let event = &body["Events"][0];
        assert_eq!(event["ReadOnly"], "false");
        assert_eq!(event["EventTime"], serde_json::json!(1424476529.0));
        assert_eq!(event["CloudTrailEvent"], r#"{"eventVersion":"1.08"}"#);
        assert_eq!(event["Resources"][0]["ResourceType"], "AWS::IAM::User");
        assert!(event.get("AccessKeyId").is_none());
        assert_eq!(body["NextToken"], "token");
        assert!(String::from_utf8(response.to_json_body())
            .unwrap()
            .contains(r#""EventTime":1424476529.0"#));
    }

    #[test]
    fn the_last_page_has_no_next_token() {
        let response = LookupEventsResponse {
            events: vec![],
            next_token: None,
        };
        assert_eq!(response.to_json_body(), br#"{"Events":[]}"#);
    }
}
