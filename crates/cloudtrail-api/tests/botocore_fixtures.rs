//! Requests signed by botocore (tests/fixtures/make_requests.py, run by hand; its output
//! `signed_requests.json` is committed) verify here, and tampered, mis-keyed or stale copies of
//! them are refused with CloudTrail's errors. Also pins the response fixtures that the same
//! script feeds back to botocore's parser (`make_requests.py responses`): the serializer's
//! output must stay byte-for-byte what botocore was shown.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use orgtrail_cloudtrail_api::{
    parse_lookup_events_request, verify_signature, ApiError, ApiEvent, ApiResource,
    LookupEventsResponse, SignedRequest, VerifiedCaller, MAX_CLOCK_SKEW,
};
use orgtrail_domain::lookup::LookupAttribute;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
struct FixtureFile {
    botocore_version: String,
    requests: Vec<Fixture>,
}

#[derive(Clone, Deserialize)]
struct Fixture {
    name: String,
    method: String,
    url: String,
    path_and_query: String,
    headers: Vec<(String, String)>,
    body: String,
    access_key_id: String,
    secret_access_key: String,
    signing_time: String,
}

impl Fixture {
    fn signing_time(&self) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(&self.signing_time, "%Y%m%dT%H%M%SZ")
            .unwrap()
            .and_utc()
    }

    fn region(&self) -> String {
        let authorization = self.header("Authorization").unwrap();
        authorization.split('/').nth(2).unwrap().to_string()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn set_header(&mut self, name: &str, value: &str) {
        for (header, old) in &mut self.headers {
            if header.eq_ignore_ascii_case(name) {
                *old = value.to_string();
            }
        }
    }

    /// Verifies with a key store holding only this fixture's key, under `secret`.
    fn verify_with(&self, secret: &str, now: DateTime<Utc>) -> Result<VerifiedCaller, ApiError> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let request = SignedRequest {
            method: &self.method,
            path_and_query: &self.path_and_query,
            headers: &headers,
            body: self.body.as_bytes(),
        };
        let access_key_id = self.access_key_id.clone();
        let secret = secret.to_string();
        let secrets =
            move |key: &str| (key == access_key_id).then(|| SecretString::from(secret.clone()));
        verify_signature(&request, &secrets, now)
    }

    fn verify(&self) -> Result<VerifiedCaller, ApiError> {
        self.verify_with(&self.secret_access_key, self.signing_time())
    }
}

fn fixtures() -> Vec<Fixture> {
    let file: FixtureFile =
        serde_json::from_str(include_str!("fixtures/signed_requests.json")).unwrap();
    assert!(file.botocore_version.starts_with("1."));
    assert_eq!(file.requests.len(), 5);
    file.requests
}

#[test]
fn every_botocore_signed_request_verifies_and_parses() {
    for fixture in fixtures() {
        let caller = fixture
            .verify()
            .unwrap_or_else(|error| panic!("{}: {error}", fixture.name));
        assert_eq!(
            caller.access_key_id, fixture.access_key_id,
            "{}",
            fixture.name
        );
        assert_eq!(caller.region, fixture.region(), "{}", fixture.name);
        assert!(fixture.url.starts_with("https://"), "{}", fixture.name);
        parse_lookup_events_request(
            fixture.header("X-Amz-Target"),
            fixture.header("Content-Type"),
            fixture.body.as_bytes(),
        )
        .unwrap_or_else(|error| panic!("{}: {error}", fixture.name));
    }
}

#[test]
fn botocores_serialization_of_every_member_is_read() {
    let fixture = fixtures()
        .into_iter()
        .find(|fixture| fixture.name == "botocore_client_all_members")
        .unwrap();
    let request = parse_lookup_events_request(
        fixture.header("X-Amz-Target"),
        fixture.header("Content-Type"),
        fixture.body.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        request.attributes,
        vec![LookupAttribute::Username("jürgen o'brien, ops_team".into())]
    );
    // make_requests.py: 2026-11-01T00:00:00.25Z and 2026-11-30T12:00:00Z.
    assert_eq!(
        request.start_time.unwrap().to_rfc3339(),
        "2026-11-01T00:00:00.250+00:00"
    );
    assert_eq!(
        request.end_time.unwrap().to_rfc3339(),
        "2026-11-30T12:00:00+00:00"
    );
    assert_eq!(request.max_results, 20);
    assert_eq!(
        request.next_token.as_deref(),
        Some("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    );
}

#[test]
fn a_flipped_body_byte_is_a_signature_mismatch() {
    for mut fixture in fixtures() {
        let mut body = fixture.body.into_bytes();
        body[0] ^= 0x01;
        fixture.body = String::from_utf8(body).unwrap();
        let error = fixture.verify().unwrap_err();
        assert_eq!(error, ApiError::SignatureDoesNotMatch, "{}", fixture.name);
        assert_eq!(error.code(), "InvalidSignatureException");
        assert_eq!(error.http_status(), 403);
    }
}

#[test]
fn a_changed_signed_header_is_a_signature_mismatch_and_an_unsigned_one_is_not() {
    for mut fixture in fixtures() {
        let mut changed = fixture.clone();
        changed.set_header(
            "X-Amz-Target",
            "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEventz",
        );
        assert_eq!(
            changed.verify().unwrap_err(),
            ApiError::SignatureDoesNotMatch,
            "{}",
            fixture.name
        );
        fixture.set_header("User-Agent", "something-else/2.0");
        fixture.set_header("Content-Length", "999");
        assert!(fixture.verify().is_ok(), "{}", fixture.name);
    }
}

#[test]
fn a_wrong_secret_is_a_signature_mismatch() {
    for fixture in fixtures() {
        let wrong = format!("{}x", fixture.secret_access_key);
        assert_eq!(
            fixture
                .verify_with(&wrong, fixture.signing_time())
                .unwrap_err(),
            ApiError::SignatureDoesNotMatch,
            "{}",
            fixture.name
        );
    }
}

#[test]
fn an_unknown_access_key_is_an_unrecognized_client() {
    for mut fixture in fixtures() {
        fixture.access_key_id = "AKIANOTKNOWNHERE0000".into();
        let error = fixture.verify().unwrap_err();
        assert_eq!(
            error.code(),
            "UnrecognizedClientException",
            "{}",
            fixture.name
        );
        assert_eq!(error.http_status(), 403);
    }
}

#[test]
fn requests_beyond_the_clock_skew_are_refused_either_way() {
    let one_second = TimeDelta::seconds(1);
    for fixture in fixtures() {
        let signed = fixture.signing_time();
        let secret = &fixture.secret_access_key;
        assert!(fixture.verify_with(secret, signed + MAX_CLOCK_SKEW).is_ok());
        assert!(fixture.verify_with(secret, signed - MAX_CLOCK_SKEW).is_ok());
        let stale = fixture
            .verify_with(secret, signed + MAX_CLOCK_SKEW + one_second)
            .unwrap_err();
        assert!(
            matches!(stale, ApiError::SignatureExpired { .. }),
            "{}: {stale}",
            fixture.name
        );
        assert_eq!(stale.code(), "InvalidSignatureException");
        let early = fixture
            .verify_with(secret, signed - MAX_CLOCK_SKEW - one_second)
            .unwrap_err();
        assert!(matches!(early, ApiError::SignatureNotYetCurrent { .. }));
    }
}

#[test]
fn a_credential_scoped_to_another_service_is_refused() {
    for mut fixture in fixtures() {
        let authorization = fixture
            .header("Authorization")
            .unwrap()
            .replace("/cloudtrail/aws4_request", "/s3/aws4_request");
        fixture.set_header("Authorization", &authorization);
        assert_eq!(
            fixture.verify().unwrap_err().code(),
            "InvalidSignatureException",
            "{}",
            fixture.name
        );
    }
}

#[test]
fn a_missing_signed_header_or_authorization_is_refused() {
    for fixture in fixtures() {
        let mut without_host = fixture.clone();
        without_host
            .headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("host"));
        assert_eq!(
            without_host.verify().unwrap_err().code(),
            "IncompleteSignatureException"
        );
        let mut anonymous = fixture.clone();
        anonymous
            .headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
        assert_eq!(
            anonymous.verify().unwrap_err().code(),
            "MissingAuthenticationTokenException"
        );
    }
}

/// The page `make_requests.py responses` hands to botocore, with what botocore must read.
fn response_page_fixture() -> serde_json::Value {
    let record = serde_json::json!({
        "eventVersion": "1.08",
        "eventID": "0b5ccb84-7b7b-4bf3-9e1b-3e8a4d7a7c1a",
        "eventTime": "2026-11-30T10:15:30Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "readOnly": true,
    });
    let event_time = DateTime::from_timestamp_millis(1_796_033_730_125).unwrap();
    let resources = vec![
        ApiResource {
            resource_type: Some("AWS::S3::Bucket".into()),
            resource_name: Some("orgtrail-example".into()),
        },
        ApiResource {
            resource_type: Some("AWS::IAM::Role".into()),
            resource_name: None,
        },
    ];
    let response = LookupEventsResponse {
        events: vec![ApiEvent {
            event_id: "0b5ccb84-7b7b-4bf3-9e1b-3e8a4d7a7c1a".into(),
            event_name: Some("ListBuckets".into()),
            read_only: Some(true),
            access_key_id: Some("ASIAEXAMPLEKEY000000".into()),
            event_time,
            event_source: Some("s3.amazonaws.com".into()),
            username: Some("alice".into()),
            resources: resources.clone(),
            cloudtrail_event: record.to_string(),
        }],
        next_token: Some("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()),
    };
    let expected_resources: Vec<serde_json::Value> = resources
        .iter()
        .map(|resource| serde_json::to_value(resource).unwrap())
        .collect();
    serde_json::json!({
        "request_id": "5c1d3d76-3b7e-4a3a-9b9e-0f6c1b0a7c11",
        "body": String::from_utf8(response.to_json_body()).unwrap(),
        "expected": {
            "event_time": event_time.timestamp_millis() as f64 / 1000.0,
            "read_only": "true",
            "next_token": response.next_token,
            "resources": expected_resources,
        },
    })
}

fn response_errors_fixture() -> serde_json::Value {
    let errors = [
        ApiError::InvalidLookupAttributes {
            reason: "\"eventname\" is not one of CloudTrail's attribute keys".into(),
        },
        ApiError::InvalidTimeRange {
            reason: "the start time is after the end time".into(),
        },
        ApiError::InvalidMaxResults { value: "51".into() },
        ApiError::InvalidNextToken,
        ApiError::InvalidEventCategory {
            value: "Insight".into(),
        },
        ApiError::UnsupportedOperation {
            operation: "CreateTrail".into(),
        },
        ApiError::UnknownOperation {
            target: "CloudTrail_20131101.LookupEvents".into(),
        },
        ApiError::UnrecognizedClient,
        ApiError::SignatureDoesNotMatch,
        ApiError::SignatureExpired {
            signed: "20261201T000000Z".into(),
            earliest: "20261201T001000Z".into(),
            now: "20261201T001500Z".into(),
            skew_minutes: 5,
        },
        ApiError::IncompleteSignature {
            reason: "the Signature is not 64 hexadecimal digits".into(),
        },
        ApiError::MissingAuthentication,
        ApiError::RequestBodyTooLarge {
            length: 70000,
            limit: 65536,
        },
    ];
    serde_json::Value::Array(
        errors
            .iter()
            .map(|error| {
                serde_json::json!({
                    "code": error.code(),
                    "status": error.http_status(),
                    "body": String::from_utf8(error.to_json_body()).unwrap(),
                })
            })
            .collect(),
    )
}

/// Compares with the committed fixture; `ORGTRAIL_WRITE_FIXTURES=1` rewrites it first (then
/// run `make_requests.py responses` again).
fn check_fixture(file_name: &str, value: serde_json::Value) {
    let path = format!("{}/tests/fixtures/{file_name}", env!("CARGO_MANIFEST_DIR"));
    let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
    if std::env::var_os("ORGTRAIL_WRITE_FIXTURES").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        committed, text,
        "{file_name} differs from the serializer's output"
    );
}

#[test]
fn the_response_fixtures_shown_to_botocore_are_the_serializers_output() {
    check_fixture("response_page.json", response_page_fixture());
    check_fixture("response_errors.json", response_errors_fixture());
}
