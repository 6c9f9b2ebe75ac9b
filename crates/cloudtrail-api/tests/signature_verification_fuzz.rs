//! SigV4 verification never panics, whatever the headers and request target say: the signer
//! underneath has `expect`s (a missing host, for one) that must stay unreachable.

use chrono::DateTime;
use orgtrail_cloudtrail_api::{verify_signature, SignedRequest};
use proptest::prelude::*;
use secrecy::SecretString;

fn authorization() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["AKID", "", "AKID/x"]),
        prop::sample::select(vec!["20231114", "2023111", "20231115"]),
        prop::sample::select(vec!["us-east-1", "", " "]),
        prop::sample::select(vec!["cloudtrail", "s3"]),
        prop::sample::select(vec![
            "host;x-amz-date",
            "host;x-amz-date;x-odd",
            "host;x-amz-date;x-amz-security-token",
            ";",
            "",
        ]),
        "[0-9a-f]{64}|.{0,70}",
        ".{0,10}",
    )
        .prop_map(|(key, date, region, service, signed, signature, noise)| {
            format!(
                "AWS4-HMAC-SHA256 Credential={key}/{date}/{region}/{service}/aws4_request, \
                 SignedHeaders={signed}, Signature={signature}{noise}"
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_requests_never_panic(
        authorization in prop_oneof![authorization(), ".{0,120}"],
        amz_date in prop_oneof![Just("20231114T221320Z".to_string()), ".{0,20}"],
        host in ".{0,30}",
        odd_name in "[ -~]{0,12}",
        odd_value in ".{0,20}",
        method in prop_oneof![Just("POST".to_string()), ".{0,8}"],
        path_and_query in prop_oneof![Just("/".to_string()), ".{0,30}"],
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let headers = [
            ("Authorization", authorization.as_str()),
            ("X-Amz-Date", amz_date.as_str()),
            ("Host", host.as_str()),
            ("x-odd", odd_value.as_str()),
            (odd_name.as_str(), odd_value.as_str()),
            ("X-Amz-Security-Token", odd_value.as_str()),
        ];
        let request = SignedRequest {
            method: &method,
            path_and_query: &path_and_query,
            headers: &headers,
            body: &body,
        };
        let secrets = |key: &str| (key == "AKID").then(|| SecretString::from("secret"));
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let outcome = verify_signature(&request, &secrets, now);
        // A random signature matching would be a 2^-256 event.
        prop_assert!(outcome.is_err());
    }
}
