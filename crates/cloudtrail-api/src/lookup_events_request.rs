//! A `LookupEvents` request read off the wire: the operation named by `X-Amz-Target`, the
//! content type, and the JSON body checked field by field with CloudTrail's error codes
//! (shared reference §6.1 for the fields and codes, §6.2 for AWS JSON 1.1).
//!
//! The result, [`LookupEventsRequest`], holds the domain's [`LookupAttribute`]s and maps onto
//! the domain's [`LookupParameters`]; the page token stays opaque here, since only the server,
//! holding the [`orgtrail_domain::lookup::LookupQuery`], can decode it
//! ([`orgtrail_domain::lookup::decode_page_token`], errors mapped by
//! [`ApiError::from_lookup_error`]).
//!
//! Unknown members of the body are ignored, as AWS JSON services do (a newer botocore may send
//! members this code has not heard of); `null` reads as absent.

use chrono::{DateTime, Utc};
use orgtrail_domain::lookup::{LookupAttribute, LookupAttributeKey, LookupParameters};
use serde_json::{Map, Value};

use crate::api_error::ApiError;

/// The `X-Amz-Target` prefix of CloudTrail's operations as botocore sends it (its
/// `targetPrefix`, §6.2: the AWS CLI, boto3).
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101";
/// The prefix the Smithy-generated SDKs send (the AWS SDKs for Rust, Java v2, Go v2, …: the
/// service shape's name). CloudTrail answers both; so does orgtrail.
pub const SMITHY_TARGET_PREFIX: &str = "CloudTrail_20131101";
/// The one operation served, as botocore names it.
pub const LOOKUP_EVENTS_TARGET: &str =
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";
/// AWS JSON 1.1's content type.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The largest body read. A LookupEvents body is a few hundred bytes; eight attributes of
/// 2,000 characters each (four bytes at most) stay under 64 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// CloudTrail's page size bounds and default (§6.1).
pub const MIN_MAX_RESULTS: u32 = 1;
pub const MAX_MAX_RESULTS: u32 = 50;
pub const DEFAULT_MAX_RESULTS: u32 = 50;
/// orgtrail's bound on lookup attributes (CloudTrail allows one).
pub const MAX_LOOKUP_ATTRIBUTES: usize = 8;
/// CloudTrail's bound on an attribute value, where `_`, space, `,` and `\n` count twice (§6.1).
pub const MAX_ATTRIBUTE_VALUE_WEIGHT: usize = 2000;
/// Page tokens orgtrail issues are 44 characters; anything much longer was not issued here.
pub const MAX_NEXT_TOKEN_CHARS: usize = 1024;

/// The lookup attribute keys CloudTrail allows with `EventCategory: insight` (§6.1).
const INSIGHT_ATTRIBUTE_KEYS: [LookupAttributeKey; 3] = [
    LookupAttributeKey::EventId,
    LookupAttributeKey::EventName,
    LookupAttributeKey::EventSource,
];

/// orgtrail's extension keys: the account (`recipientAccountId`) and the region of the event,
/// which CloudTrail does not need since its Event history is one account in one region.
pub const ACCOUNT_ID_KEY: &str = "AccountId";
pub const AWS_REGION_KEY: &str = "AwsRegion";

/// A parsed, validated LookupEvents request.
#[derive(Clone, Debug, PartialEq)]
pub struct LookupEventsRequest {
    /// All must match (CloudTrail allows at most one; orgtrail up to [`MAX_LOOKUP_ATTRIBUTES`]).
    pub attributes: Vec<LookupAttribute>,
    /// orgtrail's extension: the account named by an `AccountId` attribute (at most one).
    pub account: Option<String>,
    /// orgtrail's extension: the region named by an `AwsRegion` attribute (at most one).
    pub region: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    /// `EventCategory: insight`; otherwise management events, as CloudTrail's Event history.
    pub insight_events: bool,
    /// 1–50, 50 when absent.
    pub max_results: u32,
    /// Opaque; decoded by the server against the query.
    pub next_token: Option<String>,
}

impl LookupEventsRequest {
    /// The domain's lookup parameters for this request: the account and region of the
    /// extension attributes when given. A caller scoped to some accounts is narrowed by the
    /// server, which knows the caller.
    pub fn to_lookup_parameters(&self) -> LookupParameters {
        let category = if self.insight_events {
            "Insight"
        } else {
            "Management"
        };
        LookupParameters {
            start_time: self.start_time,
            end_time: self.end_time,
            attributes: self.attributes.clone(),
            accounts: self.account.iter().cloned().collect(),
            regions: self.region.iter().cloned().collect(),
            categories: vec![category.to_string()],
            max_results: self.max_results,
            ..Default::default()
        }
    }
}

/// Reads a LookupEvents request from its `X-Amz-Target` and `Content-Type` header values and
/// its body. The operation is checked first, so a client calling another operation learns
/// that, not that its body is wrong.
pub fn parse_lookup_events_request(
    target: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<LookupEventsRequest, ApiError> {
    check_target(target.unwrap_or_default())?;
    check_content_type(content_type.unwrap_or_default())?;
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::RequestBodyTooLarge {
            length: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    let members = parse_body_members(body)?;
    let insight_events = parse_event_category(member(&members, "EventCategory"))?;
    let Attributes {
        attributes,
        account,
        region,
    } = parse_lookup_attributes(member(&members, "LookupAttributes"), insight_events)?;
    let start_time = parse_time(member(&members, "StartTime"), "StartTime")?;
    let end_time = parse_time(member(&members, "EndTime"), "EndTime")?;
    if let (Some(start), Some(end)) = (start_time, end_time) {
        if start > end {
            return Err(ApiError::InvalidTimeRange {
                reason: format!("the start time {start} is after the end time {end}"),
            });
        }
    }
    Ok(LookupEventsRequest {
        attributes,
        account,
        region,
        start_time,
        end_time,
        insight_events,
        max_results: parse_max_results(member(&members, "MaxResults"))?,
        next_token: parse_next_token(member(&members, "NextToken"))?,
    })
}

fn check_target(target: &str) -> Result<(), ApiError> {
    match operation_of(target)? {
        crate::Operation::LookupEvents => Ok(()),
        other => Err(ApiError::UnsupportedOperation {
            operation: other.name().to_string(),
        }),
    }
}

/// The operation `X-Amz-Target` names (botocore's or the Smithy SDKs' spelling): one served, or
/// CloudTrail's `UnsupportedOperationException` for CloudTrail's others, or
/// `UnknownOperationException` for anything else.
pub fn operation_of(target: &str) -> Result<crate::Operation, ApiError> {
    let operation = [TARGET_PREFIX, SMITHY_TARGET_PREFIX]
        .into_iter()
        .find_map(|prefix| target.strip_prefix(prefix)?.strip_prefix('.'));
    if let Some(served) = operation.and_then(crate::Operation::parse) {
        return Ok(served);
    }
    match operation {
        Some(operation)
            if !operation.is_empty()
                && operation.bytes().all(|byte| byte.is_ascii_alphanumeric()) =>
        {
            Err(ApiError::UnsupportedOperation {
                operation: operation.to_string(),
            })
        }
        _ => Err(ApiError::UnknownOperation {
            target: target.chars().take(200).collect(),
        }),
    }
}

/// The media type must be AWS JSON 1.1's; parameters (`; charset=utf-8`) are allowed.
pub(crate) fn check_content_type(content_type: &str) -> Result<(), ApiError> {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if media_type.eq_ignore_ascii_case(CONTENT_TYPE) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedContentType {
            content_type: content_type.chars().take(200).collect(),
        })
    }
}

fn serialization(reason: impl Into<String>) -> ApiError {
    ApiError::Serialization {
        reason: reason.into(),
    }
}

/// The body's members; an empty body is the empty request, as `{}`.
fn parse_body_members(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(members)) => Ok(members),
        Ok(_) => Err(serialization("the body is not a JSON object")),
        Err(error) => Err(serialization(format!("the body is not JSON: {error}"))),
    }
}

/// A member's value, `null` read as absent.
fn member<'a>(members: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    members.get(name).filter(|value| !value.is_null())
}

fn parse_event_category(value: Option<&Value>) -> Result<bool, ApiError> {
    match value {
        None => Ok(false),
        Some(Value::String(category)) if category == "insight" => Ok(true),
        Some(Value::String(category)) => Err(ApiError::InvalidEventCategory {
            value: category.chars().take(200).collect(),
        }),
        Some(_) => Err(serialization("EventCategory is not a string")),
    }
}

/// The lookup attributes of a request: CloudTrail's, and orgtrail's extension keys.
#[derive(Default)]
struct Attributes {
    attributes: Vec<LookupAttribute>,
    account: Option<String>,
    region: Option<String>,
}

fn parse_lookup_attributes(
    value: Option<&Value>,
    insight_events: bool,
) -> Result<Attributes, ApiError> {
    let Some(value) = value else {
        return Ok(Attributes::default());
    };
    let Value::Array(items) = value else {
        return Err(serialization("LookupAttributes is not a list"));
    };
    if items.len() > MAX_LOOKUP_ATTRIBUTES {
        return Err(ApiError::InvalidLookupAttributes {
            reason: format!(
                "{} lookup attributes, over the limit of {MAX_LOOKUP_ATTRIBUTES}",
                items.len()
            ),
        });
    }
    let mut parsed = Attributes::default();
    for item in items {
        let Value::Object(members) = item else {
            return Err(serialization("a lookup attribute is not an object"));
        };
        let text = |name: &str| match member(members, name) {
            None => Err(ApiError::InvalidLookupAttributes {
                reason: format!("a lookup attribute has no {name}"),
            }),
            Some(Value::String(text)) => Ok(text.as_str()),
            Some(_) => Err(serialization(format!("{name} is not a string"))),
        };
        let key = text("AttributeKey")?;
        let value = text("AttributeValue")?;
        let extension = match key {
            ACCOUNT_ID_KEY => Some(&mut parsed.account),
            AWS_REGION_KEY => Some(&mut parsed.region),
            _ => None,
        };
        match extension {
            Some(slot) => {
                if slot.replace(value.to_string()).is_some() {
                    return Err(ApiError::InvalidLookupAttributes {
                        reason: format!("at most one {key} attribute"),
                    });
                }
            }
            None => parsed
                .attributes
                .push(parse_lookup_attribute(key, value, insight_events)?),
        }
    }
    Ok(parsed)
}

fn parse_lookup_attribute(
    key_text: &str,
    value: &str,
    insight_events: bool,
) -> Result<LookupAttribute, ApiError> {
    let key =
        LookupAttributeKey::parse(key_text).ok_or_else(|| ApiError::InvalidLookupAttributes {
            reason: format!(
                "{:?} is not one of CloudTrail's attribute keys (or orgtrail's {ACCOUNT_ID_KEY} and {AWS_REGION_KEY})",
                key_text.chars().take(200).collect::<String>()
            ),
        })?;
    if insight_events && !INSIGHT_ATTRIBUTE_KEYS.contains(&key) {
        return Err(ApiError::InvalidLookupAttributes {
            reason: format!("{key} cannot be used with the insight event category"),
        });
    }
    let weight = attribute_value_weight(value);
    if weight == 0 || weight > MAX_ATTRIBUTE_VALUE_WEIGHT {
        return Err(ApiError::InvalidLookupAttributes {
            reason: format!(
                "the {key} value must be 1 to {MAX_ATTRIBUTE_VALUE_WEIGHT} characters \
                 (with _, space, comma and newline counting twice)"
            ),
        });
    }
    LookupAttribute::new(key, value).map_err(|error| ApiError::InvalidLookupAttributes {
        reason: error.to_string(),
    })
}

/// The length CloudTrail measures an attribute value by (§6.1).
fn attribute_value_weight(value: &str) -> usize {
    value
        .chars()
        .map(|character| match character {
            '_' | ' ' | ',' | '\n' => 2,
            _ => 1,
        })
        .sum()
}

/// Epoch seconds as botocore sends them (`unixtimestamp`, integer or fractional), kept to the
/// millisecond.
fn parse_time(value: Option<&Value>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let Some(seconds) = value.as_f64() else {
        return Err(serialization(format!(
            "{name} is not a number of epoch seconds"
        )));
    };
    let millis = (seconds * 1000.0).round();
    // Beyond ±2^53 ms an f64 no longer holds whole milliseconds; chrono's range is smaller.
    let time = if millis.is_finite() && millis.abs() < 9.0e15 {
        DateTime::from_timestamp_millis(millis as i64)
    } else {
        None
    };
    time.map(Some).ok_or_else(|| ApiError::InvalidTimeRange {
        reason: format!("{name} {seconds} is not a representable time"),
    })
}

fn parse_max_results(value: Option<&Value>) -> Result<u32, ApiError> {
    let Some(value) = value else {
        return Ok(DEFAULT_MAX_RESULTS);
    };
    let Value::Number(number) = value else {
        return Err(serialization("MaxResults is not a number"));
    };
    match number.as_u64() {
        Some(count)
            if (u64::from(MIN_MAX_RESULTS)..=u64::from(MAX_MAX_RESULTS)).contains(&count) =>
        {
            Ok(count as u32)
        }
        _ => Err(ApiError::InvalidMaxResults {
            value: number.to_string(),
        }),
    }
}

fn parse_next_token(value: Option<&Value>) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::String(token))
            if !token.is_empty() && token.chars().count() <= MAX_NEXT_TOKEN_CHARS =>
        {
            Ok(Some(token.clone()))
        }
        Some(Value::String(_)) => Err(ApiError::InvalidNextToken),
        Some(_) => Err(serialization("NextToken is not a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<LookupEventsRequest, ApiError> {
        parse_lookup_events_request(
            Some(LOOKUP_EVENTS_TARGET),
            Some(CONTENT_TYPE),
            body.as_bytes(),
        )
    }

    fn code(body: &str) -> &'static str {
        parse(body).unwrap_err().code()
    }

    #[test]
    fn an_empty_body_is_the_default_request() {
        for body in ["", "{}", " \n"] {
            let request = parse(body).unwrap();
            assert_eq!(request.max_results, 50);
            assert!(request.attributes.is_empty());
            assert_eq!(
                request.to_lookup_parameters().categories,
                vec!["Management"]
            );
        }
    }

    #[test]
    fn a_full_request_is_read() {
        let request = parse(
            r#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"ConsoleLogin"},
                {"AttributeKey":"ReadOnly","AttributeValue":"false"}],
               "StartTime":1424476529,"EndTime":1424476600.25,"MaxResults":7,
               "NextToken":"abc","Unknown":1}"#,
        )
        .unwrap();
        assert_eq!(
            request.attributes,
            vec![
                LookupAttribute::EventName("ConsoleLogin".into()),
                LookupAttribute::ReadOnly(false)
            ]
        );
        assert_eq!(request.start_time.unwrap().timestamp(), 1424476529);
        assert_eq!(request.end_time.unwrap().timestamp_millis(), 1424476600250);
        assert_eq!(request.max_results, 7);
        assert_eq!(request.next_token.as_deref(), Some("abc"));
    }

    #[test]
    fn the_account_and_region_extensions_narrow_the_lookup() {
        let request = parse(
            r#"{"LookupAttributes":[{"AttributeKey":"AccountId","AttributeValue":"111122223333"},
                {"AttributeKey":"AwsRegion","AttributeValue":"eu-west-1"},
                {"AttributeKey":"EventName","AttributeValue":"ConsoleLogin"}]}"#,
        )
        .unwrap();
        assert_eq!(request.account.as_deref(), Some("111122223333"));
        let parameters = request.to_lookup_parameters();
        assert_eq!(parameters.accounts, vec!["111122223333"]);
        assert_eq!(parameters.regions, vec!["eu-west-1"]);
        assert_eq!(
            parameters.attributes,
            vec![LookupAttribute::EventName("ConsoleLogin".into())]
        );
        assert_eq!(
            code(
                r#"{"LookupAttributes":[{"AttributeKey":"AccountId","AttributeValue":"111122223333"},
                    {"AttributeKey":"AccountId","AttributeValue":"444455556666"}]}"#
            ),
            "InvalidLookupAttributesException"
        );
    }

    #[test]
    fn other_cloudtrail_operations_are_unsupported() {
        let error = parse_lookup_events_request(
            Some("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.CreateTrail"),
            Some(CONTENT_TYPE),
            b"{}",
        )
        .unwrap_err();
        assert_eq!(error.code(), "UnsupportedOperationException");
    }

    #[test]
    fn the_smithy_sdks_target_is_read_as_botocores() {
        // The AWS SDK for Rust (and Java v2, Go v2) name the operation by the service shape.
        assert!(parse_lookup_events_request(
            Some("CloudTrail_20131101.LookupEvents"),
            Some(CONTENT_TYPE),
            b"{}"
        )
        .is_ok());
        assert_eq!(
            parse_lookup_events_request(
                Some("CloudTrail_20131101.DescribeTrails"),
                Some(CONTENT_TYPE),
                b"{}"
            )
            .unwrap_err()
            .code(),
            "UnsupportedOperationException"
        );
    }

    #[test]
    fn other_targets_are_unknown_operations() {
        for target in [
            None,
            Some("DynamoDB_20120810.ListTables"),
            Some("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."),
            Some("CloudTrail_20131101"),
            Some("cloudtrail_20131101.LookupEvents"),
        ] {
            let error = parse_lookup_events_request(target, Some(CONTENT_TYPE), b"{}").unwrap_err();
            assert_eq!(error.code(), "UnknownOperationException", "{target:?}");
        }
    }

    #[test]
    fn the_content_type_must_be_aws_json_1_1() {
        let parse_with = |content_type| {
            parse_lookup_events_request(Some(LOOKUP_EVENTS_TARGET), content_type, b"{}")
        };
        assert!(parse_with(Some("application/x-amz-json-1.1; charset=utf-8")).is_ok());
        for content_type in [
            None,
            Some("application/json"),
            Some("application/x-amz-json-1.0"),
        ] {
            assert_eq!(
                parse_with(content_type).unwrap_err().code(),
                "SerializationException"
            );
        }
    }

    #[test]
    fn oversized_bodies_are_refused_before_parsing() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        let error =
            parse_lookup_events_request(Some(LOOKUP_EVENTS_TARGET), Some(CONTENT_TYPE), &body)
                .unwrap_err();
        assert_eq!(error.code(), "RequestEntityTooLargeException");
        assert_eq!(error.http_status(), 413);
    }

    #[test]
    fn malformed_bodies_are_serialization_errors() {
        for body in [
            "[]",
            "{",
            r#"{"StartTime":"yesterday"}"#,
            r#"{"MaxResults":"5"}"#,
            r#"{"LookupAttributes":{}}"#,
            r#"{"LookupAttributes":[1]}"#,
            r#"{"LookupAttributes":[{"AttributeKey":1,"AttributeValue":"x"}]}"#,
            r#"{"EventCategory":1}"#,
            r#"{"NextToken":5}"#,
        ] {
            assert_eq!(code(body), "SerializationException", "{body}");
        }
    }

    #[test]
    fn bad_lookup_attributes_are_invalid_lookup_attributes() {
        let long = "x".repeat(2001);
        let long_by_weight = "_".repeat(1001);
        let nine = [r#"{"AttributeKey":"EventName","AttributeValue":"x"}"#; 9].join(",");
        for body in [
            r#"{"LookupAttributes":[{"AttributeKey":"eventname","AttributeValue":"x"}]}"#.to_string(),
            r#"{"LookupAttributes":[{"AttributeKey":"EventName"}]}"#.to_string(),
            r#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":""}]}"#.to_string(),
            r#"{"LookupAttributes":[{"AttributeKey":"ReadOnly","AttributeValue":"yes"}]}"#.to_string(),
            format!(r#"{{"LookupAttributes":[{{"AttributeKey":"EventName","AttributeValue":"{long}"}}]}}"#),
            format!(r#"{{"LookupAttributes":[{{"AttributeKey":"EventName","AttributeValue":"{long_by_weight}"}}]}}"#),
            format!(r#"{{"LookupAttributes":[{nine}]}}"#),
            r#"{"EventCategory":"insight","LookupAttributes":[{"AttributeKey":"Username","AttributeValue":"x"}]}"#.to_string(),
        ] {
            assert_eq!(code(&body), "InvalidLookupAttributesException", "{body}");
        }
        let exactly_2000 = "_".repeat(1000);
        assert!(parse(&format!(
            r#"{{"LookupAttributes":[{{"AttributeKey":"EventName","AttributeValue":"{exactly_2000}"}}]}}"#
        ))
        .is_ok());
    }

    #[test]
    fn a_start_after_the_end_is_an_invalid_time_range() {
        assert_eq!(
            code(r#"{"StartTime":1000.5,"EndTime":1000}"#),
            "InvalidTimeRangeException"
        );
        assert_eq!(code(r#"{"StartTime":1e300}"#), "InvalidTimeRangeException");
        assert!(parse(r#"{"StartTime":1000,"EndTime":1000}"#).is_ok());
    }

    #[test]
    fn max_results_outside_1_to_50_is_invalid() {
        for value in ["0", "51", "-1", "2.5", "1e3"] {
            assert_eq!(
                code(&format!(r#"{{"MaxResults":{value}}}"#)),
                "InvalidMaxResultsException",
                "{value}"
            );
        }
        assert_eq!(parse(r#"{"MaxResults":1}"#).unwrap().max_results, 1);
        assert_eq!(parse(r#"{"MaxResults":50}"#).unwrap().max_results, 50);
    }

    #[test]
    fn empty_or_huge_next_tokens_are_invalid() {
        assert_eq!(code(r#"{"NextToken":""}"#), "InvalidNextTokenException");
        let huge = "a".repeat(MAX_NEXT_TOKEN_CHARS + 1);
        assert_eq!(
            code(&format!(r#"{{"NextToken":"{huge}"}}"#)),
            "InvalidNextTokenException"
        );
    }

    #[test]
    fn only_the_insight_category_exists() {
        assert_eq!(
            code(r#"{"EventCategory":"Insight"}"#),
            "InvalidEventCategoryException"
        );
        let request = parse(
            r#"{"EventCategory":"insight","LookupAttributes":[{"AttributeKey":"EventSource","AttributeValue":"s3.amazonaws.com"}]}"#,
        )
        .unwrap();
        assert!(request.insight_events);
        assert_eq!(request.to_lookup_parameters().categories, vec!["Insight"]);
    }
}
