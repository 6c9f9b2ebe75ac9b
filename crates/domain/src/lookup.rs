//! Event lookups: CloudTrail's Event history attributes, orgtrail's filters beyond them, the
//! rules a query must follow, and the opaque page tokens of keyset pagination.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::event::{EventCategory, EventId};
use crate::s3_key::is_account_id;

/// CloudTrail's lookup attribute keys, spelled as CloudTrail spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LookupAttributeKey {
    EventId,
    EventName,
    ReadOnly,
    Username,
    ResourceType,
    ResourceName,
    EventSource,
    AccessKeyId,
}

impl LookupAttributeKey {
    pub const ALL: [LookupAttributeKey; 8] = [
        LookupAttributeKey::EventId,
        LookupAttributeKey::EventName,
        LookupAttributeKey::ReadOnly,
        LookupAttributeKey::Username,
        LookupAttributeKey::ResourceType,
        LookupAttributeKey::ResourceName,
        LookupAttributeKey::EventSource,
        LookupAttributeKey::AccessKeyId,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            LookupAttributeKey::EventId => "EventId",
            LookupAttributeKey::EventName => "EventName",
            LookupAttributeKey::ReadOnly => "ReadOnly",
            LookupAttributeKey::Username => "Username",
            LookupAttributeKey::ResourceType => "ResourceType",
            LookupAttributeKey::ResourceName => "ResourceName",
            LookupAttributeKey::EventSource => "EventSource",
            LookupAttributeKey::AccessKeyId => "AccessKeyId",
        }
    }

    /// The key CloudTrail spells `text` (case-sensitive, as in CloudTrail).
    pub fn parse(text: &str) -> Option<LookupAttributeKey> {
        Self::ALL.into_iter().find(|key| key.as_str() == text)
    }
}

impl fmt::Display for LookupAttributeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One lookup attribute with its value; every attribute of a query must match.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LookupAttribute {
    EventId(EventId),
    EventName(String),
    ReadOnly(bool),
    Username(String),
    ResourceType(String),
    /// A resource's ARN or the last segment of it.
    ResourceName(String),
    EventSource(String),
    AccessKeyId(String),
}

/// CloudTrail's bound on an attribute value.
const MAX_ATTRIBUTE_VALUE_CHARS: usize = 2000;

impl LookupAttribute {
    pub fn new(key: LookupAttributeKey, value: &str) -> Result<LookupAttribute, LookupError> {
        let invalid = |reason: &str| LookupError::InvalidAttributeValue {
            key,
            reason: reason.to_string(),
        };
        if value.is_empty() {
            return Err(invalid("the value is empty"));
        }
        if value.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS {
            return Err(invalid("the value is longer than 2000 characters"));
        }
        let owned = value.to_string();
        Ok(match key {
            LookupAttributeKey::EventId => LookupAttribute::EventId(
                EventId::from_cloudtrail(value).ok_or_else(|| invalid("the value is empty"))?,
            ),
            LookupAttributeKey::EventName => LookupAttribute::EventName(owned),
            LookupAttributeKey::ReadOnly => match value {
                "true" => LookupAttribute::ReadOnly(true),
                "false" => LookupAttribute::ReadOnly(false),
                _ => return Err(invalid("the value must be true or false")),
            },
            LookupAttributeKey::Username => LookupAttribute::Username(owned),
            LookupAttributeKey::ResourceType => LookupAttribute::ResourceType(owned),
            LookupAttributeKey::ResourceName => LookupAttribute::ResourceName(owned),
            LookupAttributeKey::EventSource => LookupAttribute::EventSource(owned),
            LookupAttributeKey::AccessKeyId => LookupAttribute::AccessKeyId(owned),
        })
    }

    pub fn key(&self) -> LookupAttributeKey {
        match self {
            LookupAttribute::EventId(_) => LookupAttributeKey::EventId,
            LookupAttribute::EventName(_) => LookupAttributeKey::EventName,
            LookupAttribute::ReadOnly(_) => LookupAttributeKey::ReadOnly,
            LookupAttribute::Username(_) => LookupAttributeKey::Username,
            LookupAttribute::ResourceType(_) => LookupAttributeKey::ResourceType,
            LookupAttribute::ResourceName(_) => LookupAttributeKey::ResourceName,
            LookupAttribute::EventSource(_) => LookupAttributeKey::EventSource,
            LookupAttribute::AccessKeyId(_) => LookupAttributeKey::AccessKeyId,
        }
    }

    /// The value as CloudTrail writes it.
    pub fn value_text(&self) -> String {
        match self {
            LookupAttribute::EventId(id) => id.to_string(),
            LookupAttribute::ReadOnly(read_only) => read_only.to_string(),
            LookupAttribute::EventName(text)
            | LookupAttribute::Username(text)
            | LookupAttribute::ResourceType(text)
            | LookupAttribute::ResourceName(text)
            | LookupAttribute::EventSource(text)
            | LookupAttribute::AccessKeyId(text) => text.clone(),
        }
    }
}

/// A validated lookup: newest events first within the time range, all attributes matching,
/// and the event's account, region and category each in its list when the list is not empty.
#[derive(Clone, Debug, PartialEq)]
pub struct LookupQuery {
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub attributes: Vec<LookupAttribute>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub categories: Vec<EventCategory>,
    /// Only events whose log file was verified against its CloudTrail digest.
    pub verified_only: bool,
    pub max_results: u32,
}

/// What a caller asks for, before validation.
#[derive(Clone, Debug, Default)]
pub struct LookupParameters {
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub attributes: Vec<LookupAttribute>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub categories: Vec<String>,
    pub verified_only: bool,
    /// 0 means [`LookupQuery::DEFAULT_MAX_RESULTS`].
    pub max_results: u32,
}

impl LookupQuery {
    /// CloudTrail's default page size.
    pub const DEFAULT_MAX_RESULTS: u32 = 50;
    /// CloudTrail allows 50; orgtrail serves larger pages.
    pub const MAX_MAX_RESULTS: u32 = 1000;

    pub fn new(parameters: LookupParameters) -> Result<LookupQuery, LookupError> {
        if let (Some(start), Some(end)) = (parameters.start_time, parameters.end_time) {
            if start > end {
                return Err(LookupError::InvalidTimeRange { start, end });
            }
        }
        let max_results = match parameters.max_results {
            0 => Self::DEFAULT_MAX_RESULTS,
            value if value > Self::MAX_MAX_RESULTS => {
                return Err(LookupError::InvalidMaxResults { value })
            }
            value => value,
        };
        if let Some(account) = parameters
            .accounts
            .iter()
            .find(|account| !is_account_id(account))
        {
            return Err(LookupError::InvalidAccount {
                value: account.clone(),
            });
        }
        if let Some(region) = parameters
            .regions
            .iter()
            .find(|region| !is_region_name(region))
        {
            return Err(LookupError::InvalidRegion {
                value: region.clone(),
            });
        }
        let mut categories = Vec::with_capacity(parameters.categories.len());
        for category in &parameters.categories {
            if category.is_empty() || category.len() > 64 {
                return Err(LookupError::InvalidEventCategory {
                    value: category.clone(),
                });
            }
            categories.push(EventCategory::parse(category));
        }
        Ok(LookupQuery {
            start_time: parameters.start_time,
            end_time: parameters.end_time,
            attributes: parameters.attributes,
            accounts: parameters.accounts,
            regions: parameters.regions,
            categories,
            verified_only: parameters.verified_only,
            max_results,
        })
    }

    /// Identifies the query's filters (not its page size), so a page token is only honoured
    /// for the query that issued it, as CloudTrail requires.
    fn fingerprint(&self) -> [u8; 8] {
        let mut hasher = Sha256::new();
        let time = |time: Option<DateTime<Utc>>| {
            time.map(|time| time.timestamp_micros().to_string())
                .unwrap_or_default()
        };
        let mut attributes: Vec<String> = self
            .attributes
            .iter()
            .map(|attribute| format!("{}={}", attribute.key(), attribute.value_text()))
            .collect();
        attributes.sort();
        let mut sorted = |values: Vec<String>| {
            let mut values = values;
            values.sort();
            values.dedup();
            for value in values {
                hasher.update((value.len() as u64).to_be_bytes());
                hasher.update(value.as_bytes());
            }
            hasher.update([0xff]);
        };
        sorted(vec![time(self.start_time), time(self.end_time)]);
        sorted(attributes);
        sorted(self.accounts.clone());
        sorted(self.regions.clone());
        sorted(
            self.categories
                .iter()
                .map(|category| category.to_string())
                .collect(),
        );
        hasher.update([u8::from(self.verified_only)]);
        let digest = hasher.finalize();
        let mut fingerprint = [0; 8];
        fingerprint.copy_from_slice(&digest[..8]);
        fingerprint
    }
}

/// `[a-z0-9-]{1,64}`: AWS region names (and the made-up ones in anonymised data sets).
fn is_region_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

/// Where the next page starts: after this event in newest-first order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCursor {
    pub event_time: DateTime<Utc>,
    pub event_id: EventId,
}

const PAGE_TOKEN_VERSION: u8 = 1;
const PAGE_TOKEN_LENGTH: usize = 1 + 8 + 16 + 8;

/// The opaque token for the page after `cursor` of `query`.
pub fn encode_page_token(cursor: &PageCursor, query: &LookupQuery) -> String {
    let mut bytes = Vec::with_capacity(PAGE_TOKEN_LENGTH);
    bytes.push(PAGE_TOKEN_VERSION);
    bytes.extend_from_slice(&cursor.event_time.timestamp_micros().to_be_bytes());
    bytes.extend_from_slice(cursor.event_id.as_uuid().as_bytes());
    bytes.extend_from_slice(&query.fingerprint());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The cursor in `token`, if `token` was issued for `query`.
pub fn decode_page_token(token: &str, query: &LookupQuery) -> Result<PageCursor, LookupError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| LookupError::InvalidNextToken)?;
    if bytes.len() != PAGE_TOKEN_LENGTH || bytes[0] != PAGE_TOKEN_VERSION {
        return Err(LookupError::InvalidNextToken);
    }
    let micros = i64::from_be_bytes(
        bytes[1..9]
            .try_into()
            .map_err(|_| LookupError::InvalidNextToken)?,
    );
    let uuid = Uuid::from_slice(&bytes[9..25]).map_err(|_| LookupError::InvalidNextToken)?;
    if bytes[25..] != query.fingerprint() {
        return Err(LookupError::NextTokenForAnotherQuery);
    }
    let event_time =
        DateTime::from_timestamp_micros(micros).ok_or(LookupError::InvalidNextToken)?;
    Ok(PageCursor {
        event_time,
        event_id: EventId::from_uuid(uuid),
    })
}

/// How many events one account and region hold in one category.
#[derive(Clone, Debug, PartialEq)]
pub struct EventCount {
    pub account_id: Option<String>,
    pub aws_region: Option<String>,
    pub event_category: EventCategory,
    pub events: u64,
    pub oldest_event_time: DateTime<Utc>,
    pub newest_event_time: DateTime<Utc>,
}

/// Why a lookup was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("invalid {key} lookup attribute: {reason}")]
    InvalidAttributeValue {
        key: LookupAttributeKey,
        reason: String,
    },
    #[error("the start time {start} is after the end time {end}")]
    InvalidTimeRange {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    #[error("max results {value} is over the limit of 1000")]
    InvalidMaxResults { value: u32 },
    #[error("account {value:?} is not a 12-digit AWS account id")]
    InvalidAccount { value: String },
    #[error("region {value:?} is not a region name")]
    InvalidRegion { value: String },
    #[error("event category {value:?} is not a category name")]
    InvalidEventCategory { value: String },
    #[error("the next token is not valid")]
    InvalidNextToken,
    #[error("the next token was issued for a query with other filters")]
    NextTokenForAnotherQuery,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(attributes: Vec<LookupAttribute>, max_results: u32) -> LookupQuery {
        LookupQuery::new(LookupParameters {
            attributes,
            accounts: vec!["123456789012".into()],
            max_results,
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn page_tokens_round_trip_for_the_same_filters_only() {
        let cursor = PageCursor {
            event_time: DateTime::from_timestamp_micros(1_400_000_000_123_456).unwrap(),
            event_id: EventId::from_cloudtrail("3038ebd2-c98a-4c65-9b6e-e22506292313").unwrap(),
        };
        let name = LookupAttribute::new(LookupAttributeKey::EventName, "ConsoleLogin").unwrap();
        let issuing = query(vec![name.clone()], 10);
        let token = encode_page_token(&cursor, &issuing);
        assert_eq!(
            decode_page_token(&token, &query(vec![name], 50)),
            Ok(cursor)
        );
        let other = LookupAttribute::new(LookupAttributeKey::EventName, "GetObject").unwrap();
        assert_eq!(
            decode_page_token(&token, &query(vec![other], 10)),
            Err(LookupError::NextTokenForAnotherQuery)
        );
        assert_eq!(
            decode_page_token("not a token", &issuing),
            Err(LookupError::InvalidNextToken)
        );
        assert_eq!(
            decode_page_token("", &issuing),
            Err(LookupError::InvalidNextToken)
        );
    }

    #[test]
    fn attributes_follow_cloudtrails_rules() {
        assert_eq!(
            LookupAttribute::new(LookupAttributeKey::ReadOnly, "true"),
            Ok(LookupAttribute::ReadOnly(true))
        );
        assert_eq!(
            LookupAttribute::new(LookupAttributeKey::ReadOnly, "yes")
                .unwrap_err()
                .to_string(),
            "invalid ReadOnly lookup attribute: the value must be true or false"
        );
        assert!(LookupAttribute::new(LookupAttributeKey::EventName, "").is_err());
        assert!(LookupAttribute::new(LookupAttributeKey::EventName, &"x".repeat(2001)).is_err());
        assert_eq!(
            LookupAttributeKey::parse("Username"),
            Some(LookupAttributeKey::Username)
        );
        assert_eq!(LookupAttributeKey::parse("username"), None);
    }

    #[test]
    fn queries_are_validated() {
        let start = DateTime::from_timestamp(2_000, 0).unwrap();
        let end = DateTime::from_timestamp(1_000, 0).unwrap();
        let invalid = [
            LookupParameters {
                start_time: Some(start),
                end_time: Some(end),
                ..Default::default()
            },
            LookupParameters {
                max_results: 1001,
                ..Default::default()
            },
            LookupParameters {
                accounts: vec!["12345".into()],
                ..Default::default()
            },
            LookupParameters {
                regions: vec!["US EAST".into()],
                ..Default::default()
            },
            LookupParameters {
                categories: vec!["".into()],
                ..Default::default()
            },
        ];
        for parameters in invalid {
            assert!(
                LookupQuery::new(parameters.clone()).is_err(),
                "{parameters:?}"
            );
        }
        let query = LookupQuery::new(LookupParameters {
            categories: vec!["insight".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(query.max_results, 50);
        assert_eq!(query.categories, vec![EventCategory::Insight]);
    }
}
