//! The stored event: a CloudTrail record's searchable fields beside its original JSON text.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A CloudTrail event: the fields people search by, extracted from one record, and the record
/// itself, byte for byte as it was in the log file.
#[derive(Clone, Debug, PartialEq)]
pub struct CloudTrailEvent {
    pub event_id: EventId,
    pub event_time: DateTime<Utc>,
    pub event_version: Option<String>,
    /// For Insight events, the subject API's source (`insightDetails.eventSource`).
    pub event_source: Option<String>,
    /// For Insight events, the subject API's name (`insightDetails.eventName`).
    pub event_name: Option<String>,
    pub aws_region: Option<String>,
    /// `recipientAccountId`, or its fallback: see [`AccountIdSource`].
    pub account_id: Option<String>,
    pub account_id_source: AccountIdSource,
    pub event_type: Option<String>,
    pub event_category: EventCategory,
    pub read_only: Option<bool>,
    pub management_event: Option<bool>,
    pub user_identity: UserIdentity,
    pub source_ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub resources: Vec<Resource>,
    pub shared_event_id: Option<String>,
    pub request_id: Option<String>,
    /// The original record text, never re-serialized, so that every field (unknown ones too)
    /// and its exact bytes are kept.
    pub record_json: String,
}

/// `eventID`, as a UUID. CloudTrail's eventIDs are GUIDs; one that is not (hand-written
/// documentation samples use `EXAMPLE8-9621-…`) is mapped to a name-based UUID (v5) of its
/// text, so the same text always maps to the same id and lookups by it still work. The
/// record keeps the original text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(Uuid);

/// The namespace of name-based ids for eventIDs that are not GUIDs.
const NON_GUID_EVENT_ID_NAMESPACE: Uuid =
    Uuid::from_u128(0x6f72_6774_7261_696c_8000_6576_656e_7449);

impl EventId {
    /// The id of an eventID's text; `None` for an empty one.
    pub fn from_cloudtrail(text: &str) -> Option<EventId> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let uuid = match Uuid::try_parse(text) {
            Ok(uuid) => uuid,
            Err(_) => Uuid::new_v5(&NON_GUID_EVENT_ID_NAMESPACE, text.as_bytes()),
        };
        Some(EventId(uuid))
    }

    pub fn from_uuid(uuid: Uuid) -> EventId {
        EventId(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `eventCategory`. Records before eventVersion 1.07 have none: they are management events.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventCategory {
    Management,
    Data,
    Insight,
    NetworkActivity,
    /// A category newer than this code, kept as written.
    Other(String),
}

impl EventCategory {
    /// The category named by `text`, ignoring case for the known ones (CloudTrail's own
    /// LookupEvents spells Insight `insight`).
    pub fn parse(text: &str) -> EventCategory {
        const KNOWN: [EventCategory; 4] = [
            EventCategory::Management,
            EventCategory::Data,
            EventCategory::Insight,
            EventCategory::NetworkActivity,
        ];
        KNOWN
            .into_iter()
            .find(|category| category.as_str().eq_ignore_ascii_case(text))
            .unwrap_or_else(|| EventCategory::Other(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            EventCategory::Management => "Management",
            EventCategory::Data => "Data",
            EventCategory::Insight => "Insight",
            EventCategory::NetworkActivity => "NetworkActivity",
            EventCategory::Other(text) => text,
        }
    }
}

impl fmt::Display for EventCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where [`CloudTrailEvent::account_id`] came from. `recipientAccountId` exists from
/// eventVersion 1.02; older records fall back to the account in the log file's S3 key (the
/// account whose trail delivered it), then to `userIdentity.accountId` (the caller's account).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccountIdSource {
    RecipientAccountId,
    S3Key,
    UserIdentity,
    None,
}

impl AccountIdSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            AccountIdSource::RecipientAccountId => "recipientAccountId",
            AccountIdSource::S3Key => "s3Key",
            AccountIdSource::UserIdentity => "userIdentity",
            AccountIdSource::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<AccountIdSource> {
        [
            AccountIdSource::RecipientAccountId,
            AccountIdSource::S3Key,
            AccountIdSource::UserIdentity,
            AccountIdSource::None,
        ]
        .into_iter()
        .find(|source| source.as_str() == text)
    }
}

/// The searchable part of `userIdentity`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserIdentity {
    pub identity_type: Option<String>,
    pub arn: Option<String>,
    pub principal_id: Option<String>,
    pub account_id: Option<String>,
    /// Empty strings (CloudTrail writes `""` for console sessions) are `None`.
    pub access_key_id: Option<String>,
    pub invoked_by: Option<String>,
    /// The user name as Event history shows it; see [`crate::username`].
    pub username: Option<String>,
}

/// One entry of `resources`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resource {
    pub resource_type: Option<String>,
    /// `ARN`, or `ARNPrefix` for the entries that carry a prefix instead.
    pub arn: Option<String>,
    pub account_id: Option<String>,
}

impl Resource {
    /// The names Event history's ResourceName matches for this resource: its ARN and the
    /// ARN's last `/`- or `:`-separated segment (the bucket, user, role or instance name).
    pub fn lookup_names(&self) -> Vec<&str> {
        let Some(arn) = self.arn.as_deref() else {
            return Vec::new();
        };
        let mut names = vec![arn];
        if let Some(short) = arn_short_name(arn) {
            if short != arn {
                names.push(short);
            }
        }
        names
    }
}

/// The last segment of an ARN's resource part: `arn:aws:iam::1:user/path/Alice` → `Alice`,
/// `arn:aws:s3:::bucket` → `bucket`. `None` when that segment is empty.
pub fn arn_short_name(arn: &str) -> Option<&str> {
    let resource = if arn.starts_with("arn:") {
        arn.splitn(6, ':').nth(5).unwrap_or(arn)
    } else {
        arn
    };
    let short = resource.rsplit(['/', ':']).next().unwrap_or(resource);
    (!short.is_empty()).then_some(short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_event_ids_keep_their_value_and_others_map_to_a_stable_uuid() {
        let guid = EventId::from_cloudtrail("3038ebd2-c98a-4c65-9b6e-e22506292313").unwrap();
        assert_eq!(guid.to_string(), "3038ebd2-c98a-4c65-9b6e-e22506292313");
        let upper = EventId::from_cloudtrail("3038EBD2-C98A-4C65-9B6E-E22506292313").unwrap();
        assert_eq!(guid, upper);
        let example = EventId::from_cloudtrail("EXAMPLE8-9621-4d00-b913-beca2EXAMPLE").unwrap();
        assert_eq!(
            example,
            EventId::from_cloudtrail("EXAMPLE8-9621-4d00-b913-beca2EXAMPLE").unwrap()
        );
        assert_ne!(
            example,
            EventId::from_cloudtrail("EXAMPLEc-28be-486c-8928-49ce6EXAMPLE").unwrap()
        );
        assert_eq!(EventId::from_cloudtrail("  "), None);
    }

    #[test]
    fn categories_parse_ignoring_case_and_keep_unknown_ones() {
        assert_eq!(EventCategory::parse("insight"), EventCategory::Insight);
        assert_eq!(
            EventCategory::parse("Management"),
            EventCategory::Management
        );
        assert_eq!(
            EventCategory::parse("networkactivity"),
            EventCategory::NetworkActivity
        );
        assert_eq!(
            EventCategory::parse("ConfigurationItem"),
            EventCategory::Other("ConfigurationItem".into())
        );
    }

    #[test]
    fn arn_short_names_are_the_last_resource_segment() {
        assert_eq!(arn_short_name("arn:aws:s3:::my-bucket"), Some("my-bucket"));
        assert_eq!(
            arn_short_name("arn:aws:iam::123456789012:user/path/Alice"),
            Some("Alice")
        );
        assert_eq!(
            arn_short_name("arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"),
            Some("i-0abc")
        );
        assert_eq!(
            arn_short_name("arn:aws:logs:us-east-1:1:log-group:my-group"),
            Some("my-group")
        );
        assert_eq!(arn_short_name("arn:aws:s3:::bucket/"), None);
    }
}
