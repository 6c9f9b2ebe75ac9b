//! The errors a CloudTrail-compatible endpoint answers, each with the `__type` code and the HTTP
//! status it is sent with, and the AWS JSON 1.1 error body (`{"__type": …, "message": …}`,
//! shared reference §6.2).
//!
//! Where the codes come from: the LookupEvents validation codes and `UnsupportedOperationException`
//! are CloudTrail's own (reference §6.1), sent with 400 as AWS JSON services and moto's mock do
//! (§6.2). The reference leaves the exact codes of authentication failures open (§12 item 8); the
//! ones here are what AWS's JSON 1.1 services answer (`UnrecognizedClientException`,
//! `InvalidSignatureException`, `IncompleteSignatureException`,
//! `MissingAuthenticationTokenException`, `UnknownOperationException`, `SerializationException`),
//! which botocore reads like any other code. `AccessDeniedException` (403) and
//! `ThrottlingException` (400, which botocore's retry handlers treat as a throttle) are the codes
//! AWS's JSON services use for a caller without permission and a caller over its rate;
//! `ServiceUnavailableException` (503) and `InternalFailure` (500) are retried by botocore as
//! transient. `RequestEntityTooLargeException` (413) is orgtrail's.

use std::fmt;

use orgtrail_domain::lookup::LookupError;
use serde::Serialize;

/// Why a request was refused, as the client will read it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    // --- protocol ---
    #[error("unknown operation {target:?}")]
    UnknownOperation { target: String },
    #[error("operation {operation} is not supported by this endpoint; only LookupEvents is")]
    UnsupportedOperation { operation: String },
    #[error("content type {content_type:?} is not application/x-amz-json-1.1")]
    UnsupportedContentType { content_type: String },
    #[error("the request body is {length} bytes, over the limit of {limit}")]
    RequestBodyTooLarge { length: usize, limit: usize },
    #[error("the request body is not a LookupEvents request: {reason}")]
    Serialization { reason: String },

    // --- LookupEvents validation (reference §6.1) ---
    #[error("invalid lookup attributes: {reason}")]
    InvalidLookupAttributes { reason: String },
    #[error("invalid time range: {reason}")]
    InvalidTimeRange { reason: String },
    #[error("max results {value} is outside 1 to 50")]
    InvalidMaxResults { value: String },
    #[error("the next token is not valid for this request")]
    InvalidNextToken,
    #[error("event category {value:?} is not valid; the only category is insight")]
    InvalidEventCategory { value: String },

    // --- SigV4 ---
    #[error("the request has no Authorization header")]
    MissingAuthentication,
    #[error("the authorization is incomplete: {reason}")]
    IncompleteSignature { reason: String },
    #[error("the security token included in the request is invalid")]
    UnrecognizedClient,
    #[error(
        "credential should be scoped to correct service: 'cloudtrail'; it is scoped to {service:?}"
    )]
    WrongSigningService { service: String },
    #[error("the request signature we calculated does not match the signature you provided")]
    SignatureDoesNotMatch,
    #[error(
        "signature expired: {signed} is now earlier than {earliest} ({now} - {skew_minutes} min.)"
    )]
    SignatureExpired {
        signed: String,
        earliest: String,
        now: String,
        skew_minutes: i64,
    },
    #[error("signature not yet current: {signed} is still later than {latest} ({now} + {skew_minutes} min.)")]
    SignatureNotYetCurrent {
        signed: String,
        latest: String,
        now: String,
        skew_minutes: i64,
    },

    // --- Lake's query operations ---
    #[error("{reason}")]
    InvalidParameter { reason: String },
    #[error("the query statement is not valid: {reason}")]
    InvalidQueryStatement { reason: String },
    #[error("no query {query_id} of this caller")]
    QueryIdNotFound { query_id: String },
    #[error("{reason}")]
    InactiveQuery { reason: String },
    #[error("event data store {name:?} does not exist; orgtrail's is orgtrail")]
    EventDataStoreNotFound { name: String },
    #[error("query status {status:?} is not one of QUEUED, RUNNING, FINISHED, FAILED, CANCELLED, TIMED_OUT")]
    InvalidQueryStatus { status: String },
    #[error("{reason}")]
    InvalidDateRange { reason: String },

    // --- the caller, once known ---
    #[error("{reason}")]
    ExpiredToken { reason: String },
    #[error("{reason}")]
    AccessDenied { reason: String },
    #[error("rate exceeded: {reason}")]
    Throttling { reason: String },

    // --- the server ---
    #[error("the service cannot answer now ({reason}); retry later")]
    ServiceUnavailable { reason: String },
    #[error("the service met an internal error ({reason})")]
    InternalFailure { reason: String },
}

impl ApiError {
    /// The `__type` code botocore turns into the exception's name.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::UnknownOperation { .. } => "UnknownOperationException",
            ApiError::UnsupportedOperation { .. } => "UnsupportedOperationException",
            ApiError::UnsupportedContentType { .. } | ApiError::Serialization { .. } => {
                "SerializationException"
            }
            ApiError::RequestBodyTooLarge { .. } => "RequestEntityTooLargeException",
            ApiError::InvalidLookupAttributes { .. } => "InvalidLookupAttributesException",
            ApiError::InvalidTimeRange { .. } => "InvalidTimeRangeException",
            ApiError::InvalidMaxResults { .. } => "InvalidMaxResultsException",
            ApiError::InvalidNextToken => "InvalidNextTokenException",
            ApiError::InvalidEventCategory { .. } => "InvalidEventCategoryException",
            ApiError::MissingAuthentication => "MissingAuthenticationTokenException",
            ApiError::IncompleteSignature { .. } => "IncompleteSignatureException",
            ApiError::UnrecognizedClient => "UnrecognizedClientException",
            ApiError::WrongSigningService { .. }
            | ApiError::SignatureDoesNotMatch
            | ApiError::SignatureExpired { .. }
            | ApiError::SignatureNotYetCurrent { .. } => "InvalidSignatureException",
            ApiError::InvalidParameter { .. } => "InvalidParameterException",
            ApiError::InvalidQueryStatement { .. } => "InvalidQueryStatementException",
            ApiError::QueryIdNotFound { .. } => "QueryIdNotFoundException",
            ApiError::InactiveQuery { .. } => "InactiveQueryException",
            ApiError::EventDataStoreNotFound { .. } => "EventDataStoreNotFoundException",
            ApiError::InvalidQueryStatus { .. } => "InvalidQueryStatusException",
            ApiError::InvalidDateRange { .. } => "InvalidDateRangeException",
            ApiError::ExpiredToken { .. } => "ExpiredTokenException",
            ApiError::AccessDenied { .. } => "AccessDeniedException",
            ApiError::Throttling { .. } => "ThrottlingException",
            ApiError::ServiceUnavailable { .. } => "ServiceUnavailableException",
            ApiError::InternalFailure { .. } => "InternalFailure",
        }
    }

    /// The HTTP status the error is sent with.
    pub fn http_status(&self) -> u16 {
        match self {
            ApiError::RequestBodyTooLarge { .. } => 413,
            ApiError::MissingAuthentication
            | ApiError::UnrecognizedClient
            | ApiError::WrongSigningService { .. }
            | ApiError::SignatureDoesNotMatch
            | ApiError::SignatureExpired { .. }
            | ApiError::SignatureNotYetCurrent { .. }
            | ApiError::ExpiredToken { .. }
            | ApiError::AccessDenied { .. } => 403,
            ApiError::ServiceUnavailable { .. } => 503,
            ApiError::InternalFailure { .. } => 500,
            _ => 400,
        }
    }

    /// Whether the same request may succeed later: a throttled call, and a server that could not
    /// answer (botocore retries both by their codes and statuses). Every other error is about the
    /// request itself (a skewed clock is fixed by re-signing, which is a new request).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::Throttling { .. }
                | ApiError::ServiceUnavailable { .. }
                | ApiError::InternalFailure { .. }
        )
    }

    /// The AWS JSON 1.1 error body.
    pub fn to_json_body(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            #[serde(rename = "__type")]
            code: &'a str,
            message: &'a str,
        }
        let message = self.to_string();
        serde_json::to_vec(&ErrorBody {
            code: self.code(),
            message: &message,
        })
        // A struct of two strings always serializes.
        .unwrap_or_default()
    }

    /// The CloudTrail error for a domain lookup error met after parsing (the server decodes the
    /// page token and builds the `LookupQuery`, which can refuse what the wire layer let through).
    pub fn from_lookup_error(error: &LookupError) -> ApiError {
        match error {
            LookupError::InvalidAttributeValue { .. } => ApiError::InvalidLookupAttributes {
                reason: error.to_string(),
            },
            LookupError::InvalidTimeRange { .. } => ApiError::InvalidTimeRange {
                reason: error.to_string(),
            },
            LookupError::InvalidMaxResults { value } => ApiError::InvalidMaxResults {
                value: value.to_string(),
            },
            LookupError::InvalidNextToken | LookupError::NextTokenForAnotherQuery => {
                ApiError::InvalidNextToken
            }
            LookupError::InvalidEventCategory { value } => ApiError::InvalidEventCategory {
                value: value.clone(),
            },
            // The wire request carries no accounts or regions; a server that adds them has
            // made a mistake of its own, which still reads best as a bad parameter.
            LookupError::InvalidAccount { .. } | LookupError::InvalidRegion { .. } => {
                ApiError::InvalidLookupAttributes {
                    reason: error.to_string(),
                }
            }
        }
    }
}

/// The value of the `x-amzn-RequestId` header (botocore copies it into `ResponseMetadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    pub const HEADER_NAME: &'static str = "x-amzn-RequestId";

    /// A fresh random request id, a UUID as AWS's are.
    pub fn new_random() -> RequestId {
        RequestId(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_carry_the_code_and_message() {
        let error = ApiError::InvalidMaxResults { value: "51".into() };
        let body: serde_json::Value = serde_json::from_slice(&error.to_json_body()).unwrap();
        assert_eq!(body["__type"], "InvalidMaxResultsException");
        assert_eq!(body["message"], "max results 51 is outside 1 to 50");
        assert_eq!(error.http_status(), 400);
    }

    #[test]
    fn authentication_failures_are_403_and_validation_failures_400() {
        assert_eq!(ApiError::UnrecognizedClient.http_status(), 403);
        assert_eq!(ApiError::SignatureDoesNotMatch.http_status(), 403);
        assert_eq!(
            ApiError::SignatureDoesNotMatch.code(),
            "InvalidSignatureException"
        );
        assert_eq!(
            ApiError::InvalidTimeRange { reason: "x".into() }.http_status(),
            400
        );
        assert_eq!(
            ApiError::IncompleteSignature { reason: "x".into() }.http_status(),
            400
        );
    }

    #[test]
    fn domain_lookup_errors_map_to_cloudtrail_codes() {
        assert_eq!(
            ApiError::from_lookup_error(&LookupError::NextTokenForAnotherQuery).code(),
            "InvalidNextTokenException"
        );
        assert_eq!(
            ApiError::from_lookup_error(&LookupError::InvalidMaxResults { value: 2000 }).code(),
            "InvalidMaxResultsException"
        );
    }

    #[test]
    fn throttles_and_server_errors_are_retryable_and_nothing_else() {
        let throttled = ApiError::Throttling { reason: "x".into() };
        assert_eq!(throttled.code(), "ThrottlingException");
        assert_eq!(throttled.http_status(), 400);
        assert!(throttled.is_retryable());
        let unavailable = ApiError::ServiceUnavailable { reason: "x".into() };
        assert_eq!(unavailable.http_status(), 503);
        assert!(unavailable.is_retryable());
        let denied = ApiError::AccessDenied { reason: "x".into() };
        assert_eq!(denied.code(), "AccessDeniedException");
        assert_eq!(denied.http_status(), 403);
        assert!(!denied.is_retryable());
        assert!(!ApiError::UnrecognizedClient.is_retryable());
    }

    #[test]
    fn request_ids_are_uuids() {
        let id = RequestId::new_random();
        assert!(uuid::Uuid::try_parse(id.as_str()).is_ok());
        assert_ne!(id, RequestId::new_random());
    }
}
