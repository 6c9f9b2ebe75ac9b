//! One request of the CloudTrail-compatible endpoint, answered in CloudTrail's order: the body
//! (bounded), the caller (SigV4 with the secret of the access key it claims, then whether the key
//! may still be used, its role and its rate), the operation and its parameters, the caller's
//! account scope, the lookup. Every answer carries `x-amzn-RequestId`; every refusal is
//! CloudTrail's error shape, and a refused caller is audited as gRPC refusals are.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use orgtrail_cloudtrail_api::{
    claimed_access_key_id, operation_of, parse_lake_request, parse_lookup_events_request,
    verify_signature, ApiError, ApiEvent, ApiResource, LookupEventsResponse, Operation, RequestId,
    SignedRequest, CONTENT_TYPE, MAX_BODY_BYTES,
};
use orgtrail_domain::lookup::LookupQuery;
use orgtrail_domain::CloudTrailEvent;

use super::lake::LakeQueries;
use crate::auth::{AccessKeyCaller, Authenticator, Refusal};
use crate::lookup::{EventLookup, LookupRequest, LookupServiceError};
use crate::rate_limits::{CallerAdmission, CallerLimits};
use crate::role::Role;

/// How refusals and calls are named in the audit log and the logs.
const METHOD: &str = "CloudTrail_20131101.LookupEvents";

/// The endpoint's request handling, shared by every connection.
pub struct CloudTrailApi {
    lookup: EventLookup,
    lake: LakeQueries,
    authenticator: Arc<Authenticator>,
    admission: CallerAdmission,
}

impl CloudTrailApi {
    /// `limits` are the gRPC server's per-caller limits (a key is limited as a token is), with
    /// its request timeout bounding each lookup.
    pub fn new(
        lookup: EventLookup,
        lake: LakeQueries,
        authenticator: Arc<Authenticator>,
        limits: CallerLimits,
    ) -> CloudTrailApi {
        CloudTrailApi {
            lookup,
            lake,
            authenticator,
            admission: CallerAdmission::new(limits),
        }
    }

    /// The answer to one request: 200 with the page, or CloudTrail's error shape.
    pub async fn answer(
        &self,
        request: Request<Incoming>,
        remote: SocketAddr,
    ) -> Response<Full<Bytes>> {
        let request_id = RequestId::new_random();
        let (status, body, code) = match self.respond(request, remote).await {
            Ok(body) => (200, body, "OK"),
            Err(error) => {
                if error.http_status() >= 500 {
                    tracing::warn!(request_id = %request_id, code = error.code(), %error, "CloudTrail-API request failed");
                } else {
                    tracing::info!(request_id = %request_id, code = error.code(), %error, "CloudTrail-API request refused");
                }
                (error.http_status(), error.to_json_body(), error.code())
            }
        };
        crate::metrics::cloudtrail_api_request(code);
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() =
            hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(CONTENT_TYPE),
        );
        if let Ok(value) = hyper::header::HeaderValue::from_str(request_id.as_str()) {
            headers.insert(RequestId::HEADER_NAME, value);
        }
        response
    }

    async fn respond(
        &self,
        request: Request<Incoming>,
        remote: SocketAddr,
    ) -> Result<Vec<u8>, ApiError> {
        let (parts, body) = request.into_parts();
        if parts.method != hyper::Method::POST {
            return Err(ApiError::UnknownOperation {
                target: format!("{} {}", parts.method, parts.uri.path()),
            });
        }
        let body = read_body(
            &parts.headers,
            body,
            self.admission.limits().request_timeout,
        )
        .await?;
        let headers: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
                .map(|(_, value)| *value)
        };
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |path_and_query| path_and_query.as_str());

        // The caller.
        let access_key_id = claimed_access_key_id(&headers)?;
        let key = match self
            .authenticator
            .access_key(&access_key_id, Some(remote))
            .await
        {
            Ok(key) => key,
            Err(refusal) => return Err(self.refused(refusal, remote).await),
        };
        let signed = SignedRequest {
            method: parts.method.as_str(),
            path_and_query,
            headers: &headers,
            body: &body,
        };
        let secret = |id: &str| (id == access_key_id).then(|| key.secret_access_key.clone());
        // Against the wall clock, which clients sign with, not the aggregator's clock of
        // decisions by the date (frozen in tests).
        if let Err(error) = verify_signature(&signed, &secret, chrono::Utc::now()) {
            let refusal = Refusal::InvalidSignature(key.caller.identity.clone(), error.to_string());
            self.refused(refusal, remote).await;
            return Err(error);
        }
        if let Err(refusal) = key.admit() {
            return Err(self.refused(refusal, remote).await);
        }
        if !key.caller.role.allows(Role::Reader) {
            let refusal = Refusal::RoleTooLow {
                identity: key.caller.identity.clone(),
                role: key.caller.role,
                required: Role::Reader,
                method: METHOD.to_string(),
            };
            return Err(self.refused(refusal, remote).await);
        }
        let _slot = self
            .admission
            .admit(&key.caller.identity)
            .map_err(|reason| {
                crate::metrics::call_refused("ThrottlingException");
                ApiError::Throttling { reason }
            })?;

        // The operation.
        let operation = operation_of(header("x-amz-target").unwrap_or_default())?;
        if operation != Operation::LookupEvents {
            let request = parse_lake_request(operation, header("content-type"), &body)?;
            return self.lake.answer(&key, request).await;
        }
        let request =
            parse_lookup_events_request(header("x-amz-target"), header("content-type"), &body)?;
        let mut parameters = request.to_lookup_parameters();
        parameters.accounts = match scoped_accounts(&key, request.account.as_deref()) {
            Ok(accounts) => accounts,
            Err(refusal) => return Err(self.refused(refusal, remote).await),
        };
        let query =
            LookupQuery::new(parameters).map_err(|error| ApiError::from_lookup_error(&error))?;
        let lookup = self.lookup.lookup_events(LookupRequest {
            query,
            next_token: request.next_token,
        });
        let page = match tokio::time::timeout(self.admission.limits().request_timeout, lookup).await
        {
            Ok(Ok(page)) => page,
            Ok(Err(LookupServiceError::Invalid(error))) => {
                return Err(ApiError::from_lookup_error(&error))
            }
            Ok(Err(error)) => {
                tracing::warn!(error = %orgtrail_service_runtime::error_chain(&error), "CloudTrail-API lookup failed");
                return Err(ApiError::ServiceUnavailable {
                    reason: "the events cannot be read now".into(),
                });
            }
            Err(_) => {
                return Err(ApiError::ServiceUnavailable {
                    reason: format!(
                        "the lookup took longer than {:?}",
                        self.admission.limits().request_timeout
                    ),
                })
            }
        };
        tracing::debug!(caller = %key.caller, events = page.events.len(), "CloudTrail-API lookup served");
        Ok(LookupEventsResponse {
            events: page.events.into_iter().map(api_event).collect(),
            next_token: page.next_token,
        }
        .to_json_body())
    }

    /// Audits a refused caller and answers with CloudTrail's code for it.
    async fn refused(&self, refusal: Refusal, remote: SocketAddr) -> ApiError {
        let error = refusal_error(&refusal);
        crate::metrics::call_refused(error.code());
        self.authenticator
            .record_refusal(&refusal, METHOD, Some(remote))
            .await;
        error
    }
}

/// The accounts a lookup reads: the one asked for (orgtrail's `AccountId` attribute) if the key
/// may see it, else the key's scope (empty: every account).
fn scoped_accounts(key: &AccessKeyCaller, asked: Option<&str>) -> Result<Vec<String>, Refusal> {
    match asked {
        Some(account)
            if key.accounts.is_empty() || key.accounts.iter().any(|scoped| scoped == account) =>
        {
            Ok(vec![account.to_string()])
        }
        Some(account) => Err(Refusal::AccountOutOfScope {
            identity: key.caller.identity.clone(),
            account: account.to_string(),
        }),
        None => Ok(key.accounts.clone()),
    }
}

/// Bytes of a refused oversized body still read (and dropped) so that the client, which sends
/// it all before reading the answer, can read the 413; a longer body ends the connection.
const OVERSIZED_BODY_DRAIN_BYTES: u64 = 1 << 20;

/// The body, refused past [`MAX_BODY_BYTES`] (by its declared length before keeping any of it)
/// and read within `bound`.
async fn read_body(
    headers: &hyper::HeaderMap,
    body: Incoming,
    bound: Duration,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(length) = declared.filter(|length| *length > MAX_BODY_BYTES as u64) {
        if length <= OVERSIZED_BODY_DRAIN_BYTES {
            let _ = tokio::time::timeout(bound, drain_body(body)).await;
        }
        return Err(ApiError::RequestBodyTooLarge {
            length: usize::try_from(length).unwrap_or(usize::MAX),
            limit: MAX_BODY_BYTES,
        });
    }
    match tokio::time::timeout(bound, Limited::new(body, MAX_BODY_BYTES).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::RequestBodyTooLarge {
                length: MAX_BODY_BYTES + 1,
                limit: MAX_BODY_BYTES,
            })
        }
        Ok(Err(error)) => Err(ApiError::Serialization {
            reason: format!("the body cannot be read: {error}"),
        }),
        Err(_) => Err(ApiError::Serialization {
            reason: format!("the body did not arrive within {bound:?}"),
        }),
    }
}

/// Reads a body to its end, keeping nothing.
async fn drain_body(mut body: Incoming) {
    while let Some(Ok(_)) = body.frame().await {}
}

/// CloudTrail's answer to a refused caller. A revoked key reads as one never issued, as AWS
/// answers for a deleted access key.
fn refusal_error(refusal: &Refusal) -> ApiError {
    match refusal {
        Refusal::UnknownToken | Refusal::RevokedToken(_) => ApiError::UnrecognizedClient,
        Refusal::ExpiredToken(name) => ApiError::ExpiredToken {
            reason: format!("the access key of token {name} has expired"),
        },
        Refusal::RoleTooLow { .. } | Refusal::AccountOutOfScope { .. } => ApiError::AccessDenied {
            reason: refusal.to_string(),
        },
        Refusal::Store(_) => ApiError::ServiceUnavailable {
            reason: "the credentials cannot be checked now".into(),
        },
        // The endpoint answers a bad signature with the verifier's own error; this is the
        // closest code should it not.
        Refusal::InvalidSignature(..) => ApiError::SignatureDoesNotMatch,
        Refusal::NoCredentials
        | Refusal::MalformedToken
        | Refusal::UnreadableCertificate
        | Refusal::UnmappedCertificate(_) => ApiError::MissingAuthentication,
    }
}

/// A stored event in CloudTrail's `Event` shape. `EventId` is the record's own `eventID`:
/// orgtrail keys a GUID by itself, and any other id by a UUID derived from it, which clients
/// would not know.
fn api_event(event: CloudTrailEvent) -> ApiEvent {
    #[derive(serde::Deserialize)]
    struct RecordId<'a> {
        #[serde(rename = "eventID", borrow)]
        event_id: Option<std::borrow::Cow<'a, str>>,
    }
    let key = event.event_id.to_string();
    // Nearly every eventID is a GUID, keyed by itself: found in the text without parsing it.
    let record_id = if event.record_json.contains(&key) {
        None
    } else {
        serde_json::from_str::<RecordId<'_>>(&event.record_json)
            .ok()
            .and_then(|record| record.event_id)
            .map(|id| id.into_owned())
    };
    ApiEvent {
        event_id: record_id.unwrap_or(key),
        event_name: event.event_name,
        read_only: event.read_only,
        access_key_id: event.user_identity.access_key_id,
        event_time: event.event_time,
        event_source: event.event_source,
        username: event.user_identity.username,
        resources: event
            .resources
            .into_iter()
            .map(|resource| ApiResource {
                resource_type: resource.resource_type,
                resource_name: resource.arn,
            })
            .collect(),
        cloudtrail_event: event.record_json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Caller;

    fn key(accounts: &[&str]) -> AccessKeyCaller {
        AccessKeyCaller::for_tests(
            Caller {
                identity: "token:team-a".into(),
                role: Role::Reader,
                address: None,
            },
            accounts.iter().map(|account| account.to_string()).collect(),
        )
    }

    #[test]
    fn a_scoped_key_reads_only_its_accounts() {
        let scoped = key(&["111122223333", "444455556666"]);
        assert_eq!(
            scoped_accounts(&scoped, None).unwrap(),
            vec!["111122223333", "444455556666"]
        );
        assert_eq!(
            scoped_accounts(&scoped, Some("444455556666")).unwrap(),
            vec!["444455556666"]
        );
        let refusal = scoped_accounts(&scoped, Some("999999999999")).unwrap_err();
        assert_eq!(refusal_error(&refusal).code(), "AccessDeniedException");
        let everything = key(&[]);
        assert!(scoped_accounts(&everything, None).unwrap().is_empty());
        assert_eq!(
            scoped_accounts(&everything, Some("999999999999")).unwrap(),
            vec!["999999999999"]
        );
    }

    #[test]
    fn refused_callers_get_cloudtrails_codes() {
        assert_eq!(
            refusal_error(&Refusal::RevokedToken("x".into())).code(),
            "UnrecognizedClientException"
        );
        assert_eq!(
            refusal_error(&Refusal::ExpiredToken("x".into())).code(),
            "ExpiredTokenException"
        );
    }
}
