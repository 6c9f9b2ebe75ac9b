//! SigV4 verification of a CloudTrail request: the `Authorization` header and `X-Amz-Date`
//! parsed, the credential scope checked (service `cloudtrail`, any region), the clock skew
//! bounded, and the signature recomputed by the AWS SDK's own signer (`aws-sigv4`, so the
//! canonical request is AWS's, not a copy of it) with the secret the caller looks up for the
//! access key id, then compared in constant time.
//!
//! Only header-signed requests (`Authorization: AWS4-HMAC-SHA256 …`) are accepted; presigned
//! query strings and SigV4a are not, since no CloudTrail client sends them for LookupEvents.
//! Time is an argument ([`verify_signature`]'s `now`), never read here.

use std::time::{Duration as StdDuration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::api_error::ApiError;

/// The signing name CloudTrail's clients use (botocore's `signingName`, reference §6.2).
pub const SIGNING_SERVICE: &str = "cloudtrail";
/// How far a request's `X-Amz-Date` may be from `now`, either way. The shared reference does
/// not give CloudTrail's value (§12 item 8); AWS's JSON services answer "Signature expired"
/// after 5 minutes (some after 15), and 5 is the safer bound against replays.
pub const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
const SECURITY_TOKEN_HEADER: &str = "x-amz-security-token";

/// The request as received, before anything is trusted.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The request target as sent: path and query, e.g. `/`.
    pub path_and_query: &'a str,
    /// Every header, names in any case, repeated names repeated.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Finds the secret access key of an access key id; `None` for a key it does not know.
pub trait SecretAccessKeys {
    fn secret_access_key(&self, access_key_id: &str) -> Option<SecretString>;
}

impl<F> SecretAccessKeys for F
where
    F: Fn(&str) -> Option<SecretString>,
{
    fn secret_access_key(&self, access_key_id: &str) -> Option<SecretString> {
        self(access_key_id)
    }
}

/// Who signed a verified request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCaller {
    pub access_key_id: String,
    /// The region of the credential scope (any is accepted).
    pub region: String,
}

/// The access key id the request's `Authorization` header claims, read before anything is
/// verified: the server looks its secret up (asynchronously) and then calls
/// [`verify_signature`]. A request without a well-formed header is refused here already.
pub fn claimed_access_key_id(headers: &[(&str, &str)]) -> Result<String, ApiError> {
    match header_values(headers, "authorization").as_slice() {
        [] => Err(ApiError::MissingAuthentication),
        [authorization] => Ok(parse_authorization(authorization)?
            .credential
            .access_key_id
            .to_string()),
        _ => Err(incomplete("more than one Authorization header")),
    }
}

/// Checks `request`'s SigV4 signature as CloudTrail would, at time `now`.
pub fn verify_signature(
    request: &SignedRequest<'_>,
    secrets: &impl SecretAccessKeys,
    now: DateTime<Utc>,
) -> Result<VerifiedCaller, ApiError> {
    let authorization = match header_values(request.headers, "authorization").as_slice() {
        [] => return Err(ApiError::MissingAuthentication),
        [authorization] => parse_authorization(authorization)?,
        _ => return Err(incomplete("more than one Authorization header")),
    };
    let scope = &authorization.credential;
    if scope.service != SIGNING_SERVICE {
        return Err(ApiError::WrongSigningService {
            service: truncated(scope.service),
        });
    }
    let signed_at = match header_values(request.headers, "x-amz-date").as_slice() {
        [date] => parse_amz_date(date)?,
        _ => return Err(incomplete("the request needs one X-Amz-Date header")),
    };
    if signed_at.format("%Y%m%d").to_string() != scope.date {
        return Err(incomplete(
            "the date in the credential scope does not match X-Amz-Date",
        ));
    }
    check_clock_skew(signed_at, now)?;
    for required in ["host", "x-amz-date"] {
        if !authorization.signed_headers.contains(&required) {
            return Err(incomplete(&format!(
                "SignedHeaders must include {required}"
            )));
        }
    }
    for signed in &authorization.signed_headers {
        if header_values(request.headers, signed).is_empty() {
            return Err(incomplete(&format!(
                "signed header {} is not in the request",
                truncated(signed)
            )));
        }
    }
    let secret = secrets
        .secret_access_key(scope.access_key_id)
        .ok_or(ApiError::UnrecognizedClient)?;
    let expected = compute_signature(request, &authorization, &secret, signed_at)?;
    if bool::from(
        expected
            .as_bytes()
            .ct_eq(authorization.signature.as_bytes()),
    ) {
        Ok(VerifiedCaller {
            access_key_id: scope.access_key_id.to_string(),
            region: scope.region.to_string(),
        })
    } else {
        Err(ApiError::SignatureDoesNotMatch)
    }
}

/// The parts of `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Debug, PartialEq, Eq)]
struct Authorization<'a> {
    credential: CredentialScope<'a>,
    /// Lowercase names as listed.
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// `AKID/YYYYMMDD/REGION/SERVICE/aws4_request`.
#[derive(Debug, PartialEq, Eq)]
struct CredentialScope<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

fn parse_authorization(header: &str) -> Result<Authorization<'_>, ApiError> {
    let parameters = header
        .trim()
        .strip_prefix(ALGORITHM)
        .filter(|rest| rest.starts_with(' '))
        .ok_or_else(|| incomplete("the Authorization header is not AWS4-HMAC-SHA256"))?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for parameter in parameters.split(',') {
        let parameter = parameter.trim();
        let (name, value) = parameter
            .split_once('=')
            .ok_or_else(|| incomplete("an Authorization parameter has no '='"))?;
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(incomplete("an Authorization parameter is unknown")),
        };
        if slot.replace(value).is_some() {
            return Err(incomplete("an Authorization parameter is repeated"));
        }
    }
    let credential = parse_credential_scope(
        credential.ok_or_else(|| incomplete("the Authorization header has no Credential"))?,
    )?;
    let signed_headers: Vec<&str> = signed_headers
        .ok_or_else(|| incomplete("the Authorization header has no SignedHeaders"))?
        .split(';')
        .collect();
    if signed_headers
        .iter()
        .any(|name| name.is_empty() || name.bytes().any(|byte| byte.is_ascii_uppercase()))
    {
        return Err(incomplete("SignedHeaders must be lowercase header names"));
    }
    let signature =
        signature.ok_or_else(|| incomplete("the Authorization header has no Signature"))?;
    if signature.len() != 64 || !signature.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(incomplete("the Signature is not 64 hexadecimal digits"));
    }
    Ok(Authorization {
        credential,
        signed_headers,
        signature,
    })
}

fn parse_credential_scope(credential: &str) -> Result<CredentialScope<'_>, ApiError> {
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [access_key_id, date, region, service, "aws4_request"]
            if !access_key_id.is_empty()
                && date.len() == 8
                && date.bytes().all(|byte| byte.is_ascii_digit())
                && !region.is_empty()
                && !service.is_empty() =>
        {
            Ok(CredentialScope {
                access_key_id,
                date,
                region,
                service,
            })
        }
        _ => Err(incomplete(
            "the Credential is not AKID/YYYYMMDD/REGION/SERVICE/aws4_request",
        )),
    }
}

fn parse_amz_date(text: &str) -> Result<DateTime<Utc>, ApiError> {
    NaiveDateTime::parse_from_str(text.trim(), AMZ_DATE_FORMAT)
        .map(|naive| naive.and_utc())
        .map_err(|_| incomplete("X-Amz-Date is not YYYYMMDDTHHMMSSZ"))
}

fn check_clock_skew(signed_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), ApiError> {
    let format = |time: DateTime<Utc>| time.format(AMZ_DATE_FORMAT).to_string();
    let skew_minutes = MAX_CLOCK_SKEW.num_minutes();
    if signed_at < now - MAX_CLOCK_SKEW {
        return Err(ApiError::SignatureExpired {
            signed: format(signed_at),
            earliest: format(now - MAX_CLOCK_SKEW),
            now: format(now),
            skew_minutes,
        });
    }
    if signed_at > now + MAX_CLOCK_SKEW {
        return Err(ApiError::SignatureNotYetCurrent {
            signed: format(signed_at),
            latest: format(now + MAX_CLOCK_SKEW),
            now: format(now),
            skew_minutes,
        });
    }
    Ok(())
}

/// The signature aws-sigv4 makes for the signed headers of `request`. `X-Amz-Date` and
/// `X-Amz-Security-Token` are not handed over as headers: the signer adds them itself, from
/// the signing time and the session token.
fn compute_signature(
    request: &SignedRequest<'_>,
    authorization: &Authorization<'_>,
    secret: &SecretString,
    signed_at: DateTime<Utc>,
) -> Result<String, ApiError> {
    let session_token = header_values(request.headers, SECURITY_TOKEN_HEADER)
        .first()
        .filter(|_| {
            authorization
                .signed_headers
                .contains(&SECURITY_TOKEN_HEADER)
        })
        .map(|token| token.to_string());
    let signed_headers = request.headers.iter().copied().filter(|(name, _)| {
        let name = name.to_ascii_lowercase();
        name != "x-amz-date"
            && name != SECURITY_TOKEN_HEADER
            && authorization.signed_headers.contains(&name.as_str())
    });
    let signable = SignableRequest::new(
        request.method,
        request.path_and_query,
        signed_headers,
        SignableBody::Bytes(request.body),
    )
    .map_err(|_| ApiError::SignatureDoesNotMatch)?;
    let identity = Credentials::new(
        authorization.credential.access_key_id,
        secret.expose_secret(),
        session_token,
        None,
        "orgtrail-cloudtrail-api",
    )
    .into();
    let mut settings = SigningSettings::default();
    // The client chose what to sign; sign exactly that, user-agent included if it did.
    settings.excluded_headers = Some(Vec::new());
    let seconds = u64::try_from(signed_at.timestamp())
        .map_err(|_| incomplete("X-Amz-Date is before 1970"))?;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(authorization.credential.region)
        .name(SIGNING_SERVICE)
        .time(UNIX_EPOCH + StdDuration::from_secs(seconds))
        .settings(settings)
        .build()
        .map_err(|_| ApiError::SignatureDoesNotMatch)?
        .into();
    // A request the signer cannot canonicalize (a header value it refuses, a target that is
    // not a URI) cannot carry a valid signature either.
    let output = sign(signable, &params).map_err(|_| ApiError::SignatureDoesNotMatch)?;
    Ok(output.signature().to_string())
}

/// The values of header `name` (any case).
fn header_values<'a>(headers: &[(&'a str, &'a str)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| *value)
        .collect()
}

fn incomplete(reason: &str) -> ApiError {
    ApiError::IncompleteSignature {
        reason: reason.to_string(),
    }
}

fn truncated(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers_are_parsed() {
        let authorization = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/cloudtrail/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        )
        .unwrap();
        assert_eq!(
            authorization.credential,
            CredentialScope {
                access_key_id: "AKIDEXAMPLE",
                date: "20150830",
                region: "us-east-1",
                service: "cloudtrail",
            }
        );
        assert_eq!(
            authorization.signed_headers,
            vec!["content-type", "host", "x-amz-date"]
        );
    }

    #[test]
    fn the_claimed_access_key_id_is_read_before_verifying() {
        let header = "AWS4-HMAC-SHA256 Credential=OTKAEXAMPLE/20150830/eu-west-1/cloudtrail/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        assert_eq!(
            claimed_access_key_id(&[("Authorization", header)]).unwrap(),
            "OTKAEXAMPLE"
        );
        assert_eq!(
            claimed_access_key_id(&[("host", "x")]).unwrap_err(),
            ApiError::MissingAuthentication
        );
        assert_eq!(
            claimed_access_key_id(&[("authorization", "Bearer x")])
                .unwrap_err()
                .code(),
            "IncompleteSignatureException"
        );
    }

    #[test]
    fn malformed_authorization_headers_are_incomplete_signatures() {
        let signature = "0".repeat(64);
        for header in [
            "AWS4-HMAC-SHA1 Credential=a/20150830/r/cloudtrail/aws4_request".to_string(),
            "AWS4-HMAC-SHA256".to_string(),
            format!("AWS4-HMAC-SHA256 SignedHeaders=host, Signature={signature}"),
            format!("AWS4-HMAC-SHA256 Credential=a/2015/r/cloudtrail/aws4_request, SignedHeaders=host, Signature={signature}"),
            format!("AWS4-HMAC-SHA256 Credential=a/20150830/r/cloudtrail/aws4_request, SignedHeaders=Host, Signature={signature}"),
            "AWS4-HMAC-SHA256 Credential=a/20150830/r/cloudtrail/aws4_request, SignedHeaders=host, Signature=zz".to_string(),
            format!("AWS4-HMAC-SHA256 Credential=a/20150830/r/cloudtrail/aws4_request, Credential=b/20150830/r/cloudtrail/aws4_request, SignedHeaders=host, Signature={signature}"),
        ] {
            let error = parse_authorization(&header).unwrap_err();
            assert_eq!(error.code(), "IncompleteSignatureException", "{header}");
        }
    }

    #[test]
    fn clock_skew_is_bounded_both_ways() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert!(check_clock_skew(now - MAX_CLOCK_SKEW, now).is_ok());
        assert!(check_clock_skew(now + MAX_CLOCK_SKEW, now).is_ok());
        let expired =
            check_clock_skew(now - MAX_CLOCK_SKEW - TimeDelta::seconds(1), now).unwrap_err();
        assert_eq!(expired.code(), "InvalidSignatureException");
        assert!(expired.to_string().starts_with("signature expired: "));
        let early =
            check_clock_skew(now + MAX_CLOCK_SKEW + TimeDelta::seconds(1), now).unwrap_err();
        assert!(early.to_string().starts_with("signature not yet current: "));
    }
}
