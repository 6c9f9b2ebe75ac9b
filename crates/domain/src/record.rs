//! One CloudTrail record (an element of a log file's `Records` array) → [`CloudTrailEvent`].
//!
//! Only the searchable fields are read, each checked for its type; the record itself is kept
//! as the text it arrived as. Every eventVersion from 1.0 to 1.11 is accepted: fields a version
//! lacks are absent, `eventCategory` defaults to Management (it exists from 1.07), and the
//! account falls back as [`AccountIdSource`] says.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::{
    AccountIdSource, CloudTrailEvent, EventCategory, EventId, Resource, UserIdentity,
};
use crate::s3_key::CloudTrailKey;
use crate::username::{derive_username, UsernameInputs};

/// Why a record cannot be stored. The rest of its file is unaffected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record is not valid UTF-8")]
    NotUtf8,
    #[error("record is not valid JSON: {0}")]
    NotJson(String),
    #[error("record is not a JSON object but {found}")]
    NotAnObject { found: &'static str },
    #[error("record is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("record has no eventID")]
    MissingEventId,
    #[error("record has no eventTime")]
    MissingEventTime,
    #[error("eventTime {value:?} is not an ISO-8601 timestamp")]
    InvalidEventTime { value: String },
    #[error("eventTime {value} is outside the supported range 2000-01-01 to 2100-01-01")]
    EventTimeOutOfRange { value: String },
    #[error("{field} must be {expected}, found {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    #[error("eventVersion {value:?} is not a version this orgtrail reads (1.x): kept in the quarantine for a newer one")]
    UnsupportedEventVersion { value: String },
    #[error("record nests deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("{field} contains a NUL character, which cannot be stored or searched")]
    NulCharacter { field: &'static str },
    #[error("{field} is {bytes} bytes, over the {limit} bytes a searchable field may have")]
    FieldTooLong {
        field: &'static str,
        bytes: usize,
        limit: usize,
    },
}

/// The deepest nesting of objects and arrays a record may have (CloudTrail's own stay well
/// under 20); deeper ones are refused before anything parses them.
pub const MAX_RECORD_DEPTH: usize = 64;

/// Refuses a record nested deeper than [`MAX_RECORD_DEPTH`]: one pass over the bytes,
/// counting brackets outside strings.
fn check_depth(json: &str) -> Result<(), RecordError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_RECORD_DEPTH {
                    return Err(RecordError::TooDeep {
                        limit: MAX_RECORD_DEPTH,
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// CloudTrail's record versions are 1.0 to 1.11 so far; any 1.x is read (minor versions add
/// fields), another major version is not.
fn is_supported_event_version(version: &str) -> bool {
    match version.split_once('.') {
        Some((major, minor)) => {
            major == "1" && !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit())
        }
        None => version == "1",
    }
}

/// The longest value of a field that is searched through an index (its index entry must stay
/// under PostgreSQL's ~2.7 KB; the longest ARNs AWS documents are 2048 characters).
pub const MAX_SEARCHABLE_FIELD_BYTES: usize = 2048;

/// Fields stored as columns but not indexed: any length (the record's own limit bounds them).
const UNINDEXED_FIELDS: [&str; 6] = [
    "userAgent",
    "errorMessage",
    "sourceIPAddress",
    "requestID",
    "sharedEventID",
    "eventVersion",
];

/// Extracts the event from one record. `key` is the log file's S3 key when it follows
/// CloudTrail's layout: its account is the fallback for records without `recipientAccountId`,
/// and its folder marks Insight files.
pub fn parse_record(
    json: String,
    key: Option<&CloudTrailKey>,
) -> Result<CloudTrailEvent, RecordError> {
    let fields = extract_fields(&json, key)?;
    Ok(fields.into_event(json))
}

/// Like [`parse_record`] for bytes that may not be UTF-8; a refused record's bytes come back
/// with the reason (for the quarantine), without a copy on the way.
pub fn parse_record_bytes(
    bytes: Vec<u8>,
    key: Option<&CloudTrailKey>,
) -> Result<CloudTrailEvent, (RecordError, Vec<u8>)> {
    let json =
        String::from_utf8(bytes).map_err(|error| (RecordError::NotUtf8, error.into_bytes()))?;
    match extract_fields(&json, key) {
        Ok(fields) => Ok(fields.into_event(json)),
        Err(error) => Err((error, json.into_bytes())),
    }
}

/// The JSON kind of a value's text, for error messages.
pub fn json_kind(raw: &str) -> &'static str {
    match raw.trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(_) => "a number",
        None => "nothing",
    }
}

#[derive(Deserialize)]
struct RecordFields<'a> {
    #[serde(rename = "eventID", borrow, default)]
    event_id: Option<&'a RawValue>,
    #[serde(rename = "eventTime", borrow, default)]
    event_time: Option<&'a RawValue>,
    #[serde(rename = "eventVersion", borrow, default)]
    event_version: Option<&'a RawValue>,
    #[serde(rename = "eventSource", borrow, default)]
    event_source: Option<&'a RawValue>,
    #[serde(rename = "eventName", borrow, default)]
    event_name: Option<&'a RawValue>,
    #[serde(rename = "awsRegion", borrow, default)]
    aws_region: Option<&'a RawValue>,
    #[serde(rename = "recipientAccountId", borrow, default)]
    recipient_account_id: Option<&'a RawValue>,
    #[serde(rename = "eventType", borrow, default)]
    event_type: Option<&'a RawValue>,
    #[serde(rename = "eventCategory", borrow, default)]
    event_category: Option<&'a RawValue>,
    #[serde(rename = "readOnly", borrow, default)]
    read_only: Option<&'a RawValue>,
    #[serde(rename = "managementEvent", borrow, default)]
    management_event: Option<&'a RawValue>,
    #[serde(rename = "userIdentity", borrow, default)]
    user_identity: Option<&'a RawValue>,
    #[serde(rename = "sourceIPAddress", borrow, default)]
    source_ip_address: Option<&'a RawValue>,
    #[serde(rename = "userAgent", borrow, default)]
    user_agent: Option<&'a RawValue>,
    #[serde(rename = "errorCode", borrow, default)]
    error_code: Option<&'a RawValue>,
    #[serde(rename = "errorMessage", borrow, default)]
    error_message: Option<&'a RawValue>,
    #[serde(rename = "resources", borrow, default)]
    resources: Option<&'a RawValue>,
    #[serde(rename = "sharedEventID", borrow, default)]
    shared_event_id: Option<&'a RawValue>,
    #[serde(rename = "requestID", borrow, default)]
    request_id: Option<&'a RawValue>,
    #[serde(rename = "insightDetails", borrow, default)]
    insight_details: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct UserIdentityFields<'a> {
    #[serde(rename = "type", borrow, default)]
    identity_type: Option<&'a RawValue>,
    #[serde(rename = "arn", borrow, default)]
    arn: Option<&'a RawValue>,
    #[serde(rename = "principalId", borrow, default)]
    principal_id: Option<&'a RawValue>,
    #[serde(rename = "accountId", borrow, default)]
    account_id: Option<&'a RawValue>,
    #[serde(rename = "accessKeyId", borrow, default)]
    access_key_id: Option<&'a RawValue>,
    #[serde(rename = "invokedBy", borrow, default)]
    invoked_by: Option<&'a RawValue>,
    #[serde(rename = "userName", borrow, default)]
    user_name: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ResourceFields<'a> {
    #[serde(rename = "type", borrow, default)]
    resource_type: Option<&'a RawValue>,
    #[serde(rename = "ARN", borrow, default)]
    arn: Option<&'a RawValue>,
    #[serde(rename = "ARNPrefix", borrow, default)]
    arn_prefix: Option<&'a RawValue>,
    #[serde(rename = "accountId", borrow, default)]
    account_id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct InsightDetailsFields<'a> {
    #[serde(rename = "eventSource", borrow, default)]
    event_source: Option<&'a RawValue>,
    #[serde(rename = "eventName", borrow, default)]
    event_name: Option<&'a RawValue>,
}

/// Everything of the event but the record text, so the text can be moved in afterwards.
struct ExtractedFields {
    event_id: EventId,
    event_time: DateTime<Utc>,
    event_version: Option<String>,
    event_source: Option<String>,
    event_name: Option<String>,
    aws_region: Option<String>,
    account_id: Option<String>,
    account_id_source: AccountIdSource,
    event_type: Option<String>,
    event_category: EventCategory,
    read_only: Option<bool>,
    management_event: Option<bool>,
    user_identity: UserIdentity,
    source_ip_address: Option<String>,
    user_agent: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
    resources: Vec<Resource>,
    shared_event_id: Option<String>,
    request_id: Option<String>,
}

impl ExtractedFields {
    fn into_event(self, record_json: String) -> CloudTrailEvent {
        CloudTrailEvent {
            event_id: self.event_id,
            event_time: self.event_time,
            event_version: self.event_version,
            event_source: self.event_source,
            event_name: self.event_name,
            aws_region: self.aws_region,
            account_id: self.account_id,
            account_id_source: self.account_id_source,
            event_type: self.event_type,
            event_category: self.event_category,
            read_only: self.read_only,
            management_event: self.management_event,
            user_identity: self.user_identity,
            source_ip_address: self.source_ip_address,
            user_agent: self.user_agent,
            error_code: self.error_code,
            error_message: self.error_message,
            resources: self.resources,
            shared_event_id: self.shared_event_id,
            request_id: self.request_id,
            record_json,
        }
    }
}

fn extract_fields(json: &str, key: Option<&CloudTrailKey>) -> Result<ExtractedFields, RecordError> {
    let found = json_kind(json);
    if found != "an object" {
        return Err(RecordError::NotAnObject { found });
    }
    check_depth(json)?;
    let fields: RecordFields<'_> =
        serde_json::from_str(json).map_err(|error| RecordError::NotJson(error.to_string()))?;
    let event_version = string_field("eventVersion", fields.event_version)?;
    if let Some(version) = &event_version {
        if !is_supported_event_version(version) {
            return Err(RecordError::UnsupportedEventVersion {
                value: version.chars().take(16).collect(),
            });
        }
    }

    let event_id_text =
        string_field("eventID", fields.event_id)?.ok_or(RecordError::MissingEventId)?;
    let event_id = EventId::from_cloudtrail(&event_id_text).ok_or(RecordError::MissingEventId)?;
    let event_time_text =
        string_field("eventTime", fields.event_time)?.ok_or(RecordError::MissingEventTime)?;
    let event_time = parse_event_time(&event_time_text)?;

    let user_identity = match fields.user_identity {
        None => UserIdentity::default(),
        Some(raw) => parse_user_identity(raw)?,
    };
    let resources = match fields.resources {
        None => Vec::new(),
        Some(raw) => parse_resources(raw)?,
    };

    let event_type = string_field("eventType", fields.event_type)?;
    let event_category = match string_field("eventCategory", fields.event_category)? {
        Some(category) => EventCategory::parse(&category),
        None if event_type.as_deref() == Some("AwsCloudTrailInsight")
            || key.is_some_and(|key| key.kind == crate::s3_key::LogFileKind::Insight) =>
        {
            EventCategory::Insight
        }
        None => EventCategory::Management,
    };

    let mut event_source = string_field("eventSource", fields.event_source)?;
    let mut event_name = string_field("eventName", fields.event_name)?;
    if let Some(raw) = fields.insight_details {
        expect_kind("insightDetails", raw, "an object")?;
        let insight: InsightDetailsFields<'_> = serde_json::from_str(raw.get())
            .map_err(|error| RecordError::NotJson(error.to_string()))?;
        if event_source.is_none() {
            event_source = string_field("insightDetails.eventSource", insight.event_source)?;
        }
        if event_name.is_none() {
            event_name = string_field("insightDetails.eventName", insight.event_name)?;
        }
    }

    let recipient_account_id = string_field("recipientAccountId", fields.recipient_account_id)?;
    let (account_id, account_id_source) =
        match (recipient_account_id, key, &user_identity.account_id) {
            (Some(account), _, _) => (Some(account), AccountIdSource::RecipientAccountId),
            (None, Some(key), _) => (Some(key.account_id.clone()), AccountIdSource::S3Key),
            (None, None, Some(account)) => (Some(account.clone()), AccountIdSource::UserIdentity),
            (None, None, None) => (None, AccountIdSource::None),
        };
    let aws_region = match string_field("awsRegion", fields.aws_region)? {
        Some(region) => Some(region),
        None => key.map(|key| key.region.clone()),
    };

    Ok(ExtractedFields {
        event_id,
        event_time,
        event_version,
        event_source,
        event_name,
        aws_region,
        account_id,
        account_id_source,
        event_type,
        event_category,
        read_only: bool_field("readOnly", fields.read_only)?,
        management_event: bool_field("managementEvent", fields.management_event)?,
        user_identity,
        source_ip_address: string_field("sourceIPAddress", fields.source_ip_address)?,
        user_agent: string_field("userAgent", fields.user_agent)?,
        error_code: string_field("errorCode", fields.error_code)?,
        error_message: string_field("errorMessage", fields.error_message)?,
        resources,
        shared_event_id: string_field("sharedEventID", fields.shared_event_id)?,
        request_id: string_field("requestID", fields.request_id)?,
    })
}

fn parse_user_identity(raw: &RawValue) -> Result<UserIdentity, RecordError> {
    expect_kind("userIdentity", raw, "an object")?;
    let fields: UserIdentityFields<'_> =
        serde_json::from_str(raw.get()).map_err(|error| RecordError::NotJson(error.to_string()))?;
    let identity_type = string_field("userIdentity.type", fields.identity_type)?;
    let arn = string_field("userIdentity.arn", fields.arn)?;
    let principal_id = string_field("userIdentity.principalId", fields.principal_id)?;
    let invoked_by = string_field("userIdentity.invokedBy", fields.invoked_by)?;
    let user_name = string_field("userIdentity.userName", fields.user_name)?;
    let username = derive_username(UsernameInputs {
        identity_type: identity_type.as_deref(),
        user_name: user_name.as_deref(),
        arn: arn.as_deref(),
        principal_id: principal_id.as_deref(),
        invoked_by: invoked_by.as_deref(),
    });
    Ok(UserIdentity {
        identity_type,
        arn,
        principal_id,
        account_id: string_field("userIdentity.accountId", fields.account_id)?,
        access_key_id: string_field("userIdentity.accessKeyId", fields.access_key_id)?,
        invoked_by,
        username,
    })
}

fn parse_resources(raw: &RawValue) -> Result<Vec<Resource>, RecordError> {
    if json_kind(raw.get()) == "null" {
        return Ok(Vec::new());
    }
    expect_kind("resources", raw, "an array")?;
    let entries: Vec<&RawValue> =
        serde_json::from_str(raw.get()).map_err(|error| RecordError::NotJson(error.to_string()))?;
    entries
        .into_iter()
        .map(|entry| {
            expect_kind("resources[]", entry, "an object")?;
            let fields: ResourceFields<'_> = serde_json::from_str(entry.get())
                .map_err(|error| RecordError::NotJson(error.to_string()))?;
            let arn = match string_field("resources[].ARN", fields.arn)? {
                Some(arn) => Some(arn),
                None => string_field("resources[].ARNPrefix", fields.arn_prefix)?,
            };
            Ok(Resource {
                resource_type: string_field("resources[].type", fields.resource_type)?,
                arn,
                account_id: string_field("resources[].accountId", fields.account_id)?,
            })
        })
        .collect()
}

/// A string field; `null` and `""` are absent.
fn string_field(
    field: &'static str,
    raw: Option<&RawValue>,
) -> Result<Option<String>, RecordError> {
    let Some(raw) = raw else { return Ok(None) };
    let found = json_kind(raw.get());
    match found {
        "null" => Ok(None),
        "a string" => {
            let text: Cow<'_, str> = serde_json::from_str(raw.get())
                .map_err(|error| RecordError::NotJson(error.to_string()))?;
            if text.contains('\0') {
                return Err(RecordError::NulCharacter { field });
            }
            if text.len() > MAX_SEARCHABLE_FIELD_BYTES && !UNINDEXED_FIELDS.contains(&field) {
                return Err(RecordError::FieldTooLong {
                    field,
                    bytes: text.len(),
                    limit: MAX_SEARCHABLE_FIELD_BYTES,
                });
            }
            Ok((!text.is_empty()).then(|| text.into_owned()))
        }
        _ => Err(RecordError::WrongType {
            field,
            expected: "a string",
            found,
        }),
    }
}

/// A boolean field; CloudTrail writes JSON booleans, and `"true"`/`"false"` strings are read
/// as the same.
fn bool_field(field: &'static str, raw: Option<&RawValue>) -> Result<Option<bool>, RecordError> {
    let Some(raw) = raw else { return Ok(None) };
    match raw.get().trim() {
        "null" => Ok(None),
        "true" | "\"true\"" => Ok(Some(true)),
        "false" | "\"false\"" => Ok(Some(false)),
        other => Err(RecordError::WrongType {
            field,
            expected: "a boolean",
            found: json_kind(other),
        }),
    }
}

fn expect_kind(
    field: &'static str,
    raw: &RawValue,
    expected: &'static str,
) -> Result<(), RecordError> {
    let found = json_kind(raw.get());
    if found == expected {
        Ok(())
    } else {
        Err(RecordError::WrongType {
            field,
            expected,
            found,
        })
    }
}

/// CloudTrail writes `YYYY-MM-DDTHH:MM:SSZ`; any RFC 3339 time is accepted, and one without
/// an offset is read as UTC.
fn parse_event_time(text: &str) -> Result<DateTime<Utc>, RecordError> {
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|naive| Utc.from_utc_datetime(&naive))
        })
        .map_err(|_| RecordError::InvalidEventTime {
            value: text.chars().take(64).collect(),
        })?;
    if (SUPPORTED_FROM_UNIX..SUPPORTED_UNTIL_UNIX).contains(&parsed.timestamp()) {
        Ok(parsed)
    } else {
        Err(RecordError::EventTimeOutOfRange {
            value: text.to_string(),
        })
    }
}

/// 2000-01-01T00:00:00Z: nothing older is a CloudTrail event (a bad clock or bad input).
const SUPPORTED_FROM_UNIX: i64 = 946_684_800;
/// 2100-01-01T00:00:00Z.
const SUPPORTED_UNTIL_UNIX: i64 = 4_102_444_800;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3_key::parse_cloudtrail_key;

    const ASSUMED_ROLE_RECORD: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:session-1","arn":"arn:aws:sts::123456789012:assumed-role/Admin/session-1","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE","sessionContext":{"attributes":{"mfaAuthenticated":"false"}}},"eventTime":"2023-07-10T11:42:36Z","eventSource":"s3.amazonaws.com","eventName":"GetBucketPolicy","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.1","userAgent":"aws-cli/2","errorCode":"NoSuchBucketPolicy","errorMessage":"The bucket policy does not exist","requestParameters":{"bucketName":"b"},"responseElements":null,"requestID":"R1","eventID":"3038ebd2-c98a-4c65-9b6e-e22506292313","readOnly":true,"resources":[{"accountId":"123456789012","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::b"}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management","tlsDetails":{"tlsVersion":"TLSv1.2"},"futureField":[1,2,3]}"#;

    #[test]
    fn a_current_record_yields_every_searchable_field_and_keeps_its_text() {
        let event = parse_record(ASSUMED_ROLE_RECORD.to_string(), None).unwrap();
        assert_eq!(
            event.event_id.to_string(),
            "3038ebd2-c98a-4c65-9b6e-e22506292313"
        );
        assert_eq!(event.event_time.to_rfc3339(), "2023-07-10T11:42:36+00:00");
        assert_eq!(event.event_version.as_deref(), Some("1.08"));
        assert_eq!(event.event_source.as_deref(), Some("s3.amazonaws.com"));
        assert_eq!(event.event_name.as_deref(), Some("GetBucketPolicy"));
        assert_eq!(event.aws_region.as_deref(), Some("us-east-1"));
        assert_eq!(event.account_id.as_deref(), Some("123456789012"));
        assert_eq!(event.account_id_source, AccountIdSource::RecipientAccountId);
        assert_eq!(event.event_type.as_deref(), Some("AwsApiCall"));
        assert_eq!(event.event_category, EventCategory::Management);
        assert_eq!(event.read_only, Some(true));
        assert_eq!(event.management_event, Some(true));
        assert_eq!(
            event.user_identity.identity_type.as_deref(),
            Some("AssumedRole")
        );
        assert_eq!(event.user_identity.username.as_deref(), Some("session-1"));
        assert_eq!(
            event.user_identity.access_key_id.as_deref(),
            Some("ASIAEXAMPLE")
        );
        assert_eq!(event.source_ip_address.as_deref(), Some("198.51.100.1"));
        assert_eq!(event.error_code.as_deref(), Some("NoSuchBucketPolicy"));
        assert_eq!(event.request_id.as_deref(), Some("R1"));
        assert_eq!(
            event.resources,
            vec![Resource {
                resource_type: Some("AWS::S3::Bucket".into()),
                arn: Some("arn:aws:s3:::b".into()),
                account_id: Some("123456789012".into()),
            }]
        );
        assert_eq!(event.record_json, ASSUMED_ROLE_RECORD);
    }

    #[test]
    fn an_old_record_takes_its_account_from_the_key_and_is_a_management_event() {
        let record = r#"{"eventVersion":"1.01","userIdentity":{"type":"IAMUser","principalId":"AIDA","arn":"arn:aws:iam::111111111111:user/bob","accountId":"111111111111","accessKeyId":"AKIA","userName":"bob"},"eventTime":"2014-09-27T06:45:11Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","sourceIPAddress":"1.2.3.4","userAgent":"console","requestParameters":null,"responseElements":null,"requestID":"r","eventID":"b2a5f6c4-0e79-4f67-8f7b-9f1d0c1a2b3c"}"#;
        let key =
            parse_cloudtrail_key("AWSLogs/974349055189/CloudTrail/us-east-1/2014/09/27/f.json.gz");
        let event = parse_record(record.to_string(), key.as_ref()).unwrap();
        assert_eq!(event.account_id.as_deref(), Some("974349055189"));
        assert_eq!(event.account_id_source, AccountIdSource::S3Key);
        assert_eq!(event.event_category, EventCategory::Management);
        assert_eq!(event.read_only, None);
        assert_eq!(event.user_identity.username.as_deref(), Some("bob"));

        let without_key = parse_record(record.to_string(), None).unwrap();
        assert_eq!(without_key.account_id.as_deref(), Some("111111111111"));
        assert_eq!(without_key.account_id_source, AccountIdSource::UserIdentity);
    }

    #[test]
    fn insight_records_are_found_by_their_subject_api() {
        let record = r#"{"eventVersion":"1.07","eventTime":"2019-11-14T00:51:00Z","awsRegion":"us-east-1","eventID":"EXAMPLE8-9621-4d00-b913-beca2EXAMPLE","eventType":"AwsCloudTrailInsight","recipientAccountId":"123456789012","sharedEventID":"12345678-1234-1234-1234-123456789012","insightDetails":{"state":"Start","eventSource":"ssm.amazonaws.com","eventName":"UpdateInstanceInformation","insightType":"ApiCallRateInsight"},"eventCategory":"Insight"}"#;
        let event = parse_record(record.to_string(), None).unwrap();
        assert_eq!(event.event_category, EventCategory::Insight);
        assert_eq!(event.event_source.as_deref(), Some("ssm.amazonaws.com"));
        assert_eq!(
            event.event_name.as_deref(),
            Some("UpdateInstanceInformation")
        );
        assert_eq!(event.user_identity, UserIdentity::default());
    }

    #[test]
    fn unusable_records_are_rejected_with_their_reason() {
        let cases = [
            ("[1,2]", "record is not a JSON object but an array"),
            ("\"text\"", "record is not a JSON object but a string"),
            (r#"{"eventTime":"2014-01-01T00:00:00Z"}"#, "record has no eventID"),
            (r#"{"eventID":"a"}"#, "record has no eventTime"),
            (r#"{"eventID":"","eventTime":"2014-01-01T00:00:00Z"}"#, "record has no eventID"),
            (
                r#"{"eventID":"a","eventTime":"yesterday"}"#,
                "eventTime \"yesterday\" is not an ISO-8601 timestamp",
            ),
            (
                r#"{"eventID":"a","eventTime":"1970-01-01T00:00:00Z"}"#,
                "eventTime 1970-01-01T00:00:00Z is outside the supported range 2000-01-01 to 2100-01-01",
            ),
            (
                r#"{"eventID":"a","eventTime":"2014-01-01T00:00:00Z","eventName":5}"#,
                "eventName must be a string, found a number",
            ),
            (
                r#"{"eventID":"a","eventTime":"2014-01-01T00:00:00Z","readOnly":"maybe"}"#,
                "readOnly must be a boolean, found a string",
            ),
            (
                r#"{"eventID":"a","eventTime":"2014-01-01T00:00:00Z","userIdentity":"root"}"#,
                "userIdentity must be an object, found a string",
            ),
            (
                r#"{"eventID":"a","eventTime":"2014-01-01T00:00:00Z","resources":{}}"#,
                "resources must be an array, found an object",
            ),
            (
                r#"{"eventID":["a"],"eventTime":"2014-01-01T00:00:00Z"}"#,
                "eventID must be a string, found an array",
            ),
        ];
        for (record, reason) in cases {
            let error = parse_record(record.to_string(), None).unwrap_err();
            assert_eq!(error.to_string(), reason, "{record}");
        }
        let duplicate = parse_record(
            r#"{"eventID":"a","eventID":"b","eventTime":"2014-01-01T00:00:00Z"}"#.to_string(),
            None,
        )
        .unwrap_err();
        assert!(
            duplicate.to_string().contains("duplicate field `eventID`"),
            "{duplicate}"
        );
        assert_eq!(
            parse_record_bytes(vec![b'{', 0xff, b'}'], None).unwrap_err(),
            (RecordError::NotUtf8, vec![b'{', 0xff, b'}'])
        );
    }

    #[test]
    fn depth_versions_nul_and_long_fields_are_refused_by_name() {
        let nested = format!("{{\"a\":{}1{}}}", "[".repeat(70), "]".repeat(70));
        assert!(matches!(
            check_depth(&nested),
            Err(RecordError::TooDeep { .. })
        ));
        // Brackets inside strings do not count.
        let quoted = format!("{{\"a\":\"{}\\\"\"}}", "[".repeat(100));
        assert!(check_depth(&quoted).is_ok());
        assert!(is_supported_event_version("1.11"));
        assert!(is_supported_event_version("1.0"));
        assert!(!is_supported_event_version("2.0"));
        assert!(!is_supported_event_version("1."));
        assert!(!is_supported_event_version("one"));
        let raw = serde_json::value::RawValue::from_string("\"a\\u0000b\"".into()).unwrap();
        assert!(matches!(
            string_field("eventName", Some(&raw)),
            Err(RecordError::NulCharacter { field: "eventName" })
        ));
        let long =
            serde_json::value::RawValue::from_string(format!("\"{}\"", "x".repeat(3000))).unwrap();
        assert!(matches!(
            string_field("eventName", Some(&long)),
            Err(RecordError::FieldTooLong { .. })
        ));
        assert!(string_field("userAgent", Some(&long)).is_ok());
    }
}
