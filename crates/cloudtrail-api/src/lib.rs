//! CloudTrail's `LookupEvents` API as orgtrail serves it, pure: the AWS JSON 1.1 request read
//! and validated ([`parse_lookup_events_request`] → [`LookupEventsRequest`], which maps onto
//! the domain's `LookupParameters`), the response written ([`LookupEventsResponse`] of
//! [`ApiEvent`]s), every refusal as CloudTrail's `{"__type", "message"}` body with its HTTP
//! status ([`ApiError`]) and the `x-amzn-RequestId` value ([`RequestId`]), and SigV4
//! verification of the caller ([`verify_signature`]) by the AWS SDK's own signer. No network,
//! no clock, no tokio: the HTTPS listener hands bytes, header values and the time in. The
//! reference is the shared `docs/cloudtrail-reference.md` §6.
//!
//! The server's order: [`verify_signature`], then [`parse_lookup_events_request`], then the
//! domain's `LookupQuery::new` and `decode_page_token` (their errors through
//! [`ApiError::from_lookup_error`]); every answer carries a [`RequestId`].
//!
//! # orgtrail's extensions to CloudTrail
//! - **Several lookup attributes**: `LookupAttributes` may hold up to
//!   [`MAX_LOOKUP_ATTRIBUTES`] entries (CloudTrail: at most one), and an event must match all
//!   of them. A request CloudTrail accepts is read the same way here.
//!
//! # Deliberate differences
//! - `LookupEvents` and Lake's query operations (`lake_requests`) are served; CloudTrail's other
//!   operations answer `UnsupportedOperationException`.
//! - Only header-signed SigV4 (`AWS4-HMAC-SHA256`); no presigned URLs, no SigV4a.
//! - The body is limited to [`MAX_BODY_BYTES`] (`RequestEntityTooLargeException`, 413).
//! - Times are kept to the millisecond.

pub mod api_error;
pub mod lake_requests;
pub mod lookup_events_request;
pub mod lookup_events_response;
pub mod signature_verification;

pub use api_error::{ApiError, RequestId};
pub use lake_requests::{
    page_token, parse_lake_request, statement_for_events, LakeRequest, Operation, EVENT_DATA_STORE,
};
pub use lookup_events_request::{
    operation_of, parse_lookup_events_request, LookupEventsRequest, CONTENT_TYPE,
    LOOKUP_EVENTS_TARGET, MAX_BODY_BYTES, MAX_LOOKUP_ATTRIBUTES,
};
pub use lookup_events_response::{ApiEvent, ApiResource, LookupEventsResponse};
pub use signature_verification::{
    claimed_access_key_id, verify_signature, SecretAccessKeys, SignedRequest, VerifiedCaller,
    MAX_CLOCK_SKEW, SIGNING_SERVICE,
};
