//! Digest files parsed field by field, the signing string, public-key files, and signatures:
//! one made by OpenSSL (`openssl dgst -sha256 -sign`) over a digest in the layout of AWS's
//! documented example, and ring's own, sign → verify.

use chrono::{TimeZone, Utc};
use orgtrail_integrity::{
    signing_string, Digest, DigestDraft, DigestError, DigestLogFile, DigestSigner, PublicKeys,
    S3Location, Sha256Hash, SignatureProblem,
};

const STARTING_DIGEST: &[u8] = include_bytes!("data/starting-digest.json");
const STARTING_DIGEST_SIGNATURE: &str = include_str!("data/starting-digest.signature.hex");
const PUBLIC_KEYS: &[u8] = include_bytes!("data/public-keys.json");
const TEST_KEY: &str = include_str!("data/test-signing-key.pem");
const OTHER_KEY_PKCS1: &str = include_str!("data/other-signing-key-pkcs1.pem");

fn with_field(name: &str, value: serde_json::Value) -> Vec<u8> {
    let mut document: serde_json::Value = serde_json::from_slice(STARTING_DIGEST).unwrap();
    document[name] = value;
    serde_json::to_vec(&document).unwrap()
}

#[test]
fn a_starting_digest_is_parsed_with_every_field() {
    let digest = Digest::parse(STARTING_DIGEST).unwrap();
    assert_eq!(digest.aws_account_id, "111122223333");
    assert_eq!(
        digest.digest_end_time,
        Utc.with_ymd_and_hms(2015, 8, 17, 15, 1, 31).unwrap()
    );
    assert_eq!(digest.digest_end_time_text, "2015-08-17T15:01:31Z");
    assert_eq!(digest.location.bucket, "S3-bucket-name");
    assert_eq!(
        digest.public_key_fingerprint,
        "31e8b5433410dfb61a9dc45cc65b22ff"
    );
    assert!(digest.is_starting_digest());
    assert_eq!(digest.log_files.len(), 1);
    assert_eq!(
        digest.log_files[0].hash_value.to_hex(),
        "9bb6196fc6b84d6f075a56548feca262bd99ba3c2de41b618e5b6e22c1fc71f6"
    );
    assert_eq!(digest.content_hash, Sha256Hash::of(STARTING_DIGEST));
}

#[test]
fn malformed_digests_are_refused_naming_the_field() {
    let cases = [
        (with_field("digestEndTime", serde_json::Value::Null), "field digestEndTime is missing"),
        (with_field("awsAccountId", 1.into()), "field awsAccountId is invalid: not a string"),
        (
            with_field("digestStartTime", "yesterday".into()),
            "field digestStartTime is invalid: not an RFC 3339 time",
        ),
        (
            with_field("digestSignatureAlgorithm", "SHA1withRSA".into()),
            "field digestSignatureAlgorithm is invalid",
        ),
        (
            with_field("previousDigestS3Bucket", "b".into()),
            "field previousDigestS3Object is invalid: null while other previousDigest fields are set",
        ),
        (
            with_field(
                "logFiles",
                serde_json::json!([{"s3Bucket": "b", "s3Object": "k", "hashValue": "abc", "hashAlgorithm": "SHA-256"}]),
            ),
            "field logFiles[0].hashValue is invalid: not 64 hex digits",
        ),
        (with_field("logFiles", "none".into()), "field logFiles is invalid: not an array"),
        (b"[1]".to_vec(), "not a JSON object"),
        (b"{".to_vec(), "not JSON"),
    ];
    for (content, message) in cases {
        let error = Digest::parse(&content).unwrap_err();
        assert!(
            error.to_string().starts_with(message),
            "{error} should start with {message}"
        );
    }
    assert!(matches!(
        Digest::parse(&with_field("logFiles", serde_json::Value::Null)),
        Err(DigestError::MissingField { field }) if field == "logFiles"
    ));
}

#[test]
fn the_signing_string_is_cloudtrails() {
    let digest = Digest::parse(STARTING_DIGEST).unwrap();
    assert_eq!(
        signing_string(&digest),
        format!(
            "2015-08-17T15:01:31Z\nS3-bucket-name/AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz\n{}\nnull",
            Sha256Hash::of(STARTING_DIGEST).to_hex()
        )
    );
}

#[test]
fn a_signature_made_by_openssl_verifies_and_a_changed_digest_does_not() {
    let keys = PublicKeys::from_list_public_keys_json(PUBLIC_KEYS).unwrap();
    let digest = Digest::parse(STARTING_DIGEST).unwrap();
    keys.verify_digest(&digest, STARTING_DIGEST_SIGNATURE)
        .unwrap();

    let changed = Digest::parse(&with_field(
        "newestEventTime",
        "2015-08-17T14:52:28Z".into(),
    ))
    .unwrap();
    assert!(matches!(
        keys.verify_digest(&changed, STARTING_DIGEST_SIGNATURE),
        Err(SignatureProblem::DoesNotVerify { .. })
    ));
    assert_eq!(
        keys.verify_digest(&digest, "xyz"),
        Err(SignatureProblem::NotHex)
    );
    let other = Digest::parse(&with_field("digestPublicKeyFingerprint", "00".into())).unwrap();
    assert!(matches!(
        keys.verify_digest(&other, STARTING_DIGEST_SIGNATURE),
        Err(SignatureProblem::UnknownKey { .. })
    ));
    let late = Digest::parse(&with_field("digestEndTime", "2016-01-01T00:00:00Z".into())).unwrap();
    assert!(matches!(
        keys.verify_digest(&late, STARTING_DIGEST_SIGNATURE),
        Err(SignatureProblem::KeyNotValidAt { .. })
    ));
}

#[test]
fn public_key_files_of_both_cli_versions_are_read_and_errors_name_the_field() {
    let keys = PublicKeys::from_list_public_keys_json(PUBLIC_KEYS).unwrap();
    assert_eq!(keys.len(), 1);
    // CLI v1 and the wire give epoch seconds.
    let mut document: serde_json::Value = serde_json::from_slice(PUBLIC_KEYS).unwrap();
    document["PublicKeyList"][0]["ValidityStartTime"] = 1438387200.0.into();
    let epoch =
        PublicKeys::from_list_public_keys_json(&serde_json::to_vec(&document).unwrap()).unwrap();
    assert_eq!(
        epoch.keys().next().unwrap().validity_start,
        Some(Utc.with_ymd_and_hms(2015, 8, 1, 0, 0, 0).unwrap())
    );
    // What orgtrail writes reads back.
    let written =
        PublicKeys::from_list_public_keys_json(keys.to_list_public_keys_json().as_bytes()).unwrap();
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        keys.keys().collect::<Vec<_>>()
    );

    document["PublicKeyList"][0]["Value"] = "***".into();
    let error = PublicKeys::from_list_public_keys_json(&serde_json::to_vec(&document).unwrap())
        .unwrap_err();
    assert_eq!(error.field, "PublicKeyList[0].Value");
    let error = PublicKeys::from_list_public_keys_json(b"{}").unwrap_err();
    assert_eq!(error.field, "PublicKeyList");
}

fn draft(previous: Option<orgtrail_integrity::PreviousDigest>) -> DigestDraft {
    DigestDraft {
        aws_account_id: "123456789012".into(),
        digest_start_time: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        digest_end_time: Utc.with_ymd_and_hms(2024, 1, 1, 1, 0, 0).unwrap(),
        location: S3Location::new("archive", "digests/one.json.gz"),
        previous,
        log_files: vec![DigestLogFile {
            location: S3Location::new("archive", "logs/one.json.gz"),
            hash_value: Sha256Hash::of(b"log"),
            newest_event_time: Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 30, 0).unwrap()),
            oldest_event_time: Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 10, 0).unwrap()),
        }],
    }
}

#[test]
fn digests_signed_by_orgtrail_verify_with_its_public_key() {
    for pem in [TEST_KEY, OTHER_KEY_PKCS1] {
        let signer = DigestSigner::from_pem(pem).unwrap();
        let mut keys = PublicKeys::new();
        keys.insert(signer.public_key(None, None));
        let first = signer.sign_digest(&draft(None)).unwrap();
        keys.verify_digest(&first.digest, &first.signature).unwrap();
        let second = signer
            .sign_digest(&draft(Some(first.as_previous())))
            .unwrap();
        keys.verify_digest(&second.digest, &second.signature)
            .unwrap();
        assert_eq!(second.digest.previous, Some(first.as_previous()));
        assert_eq!(
            second.digest.oldest_event_time,
            Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 10, 0).unwrap())
        );
    }
    let test = DigestSigner::from_pem(TEST_KEY).unwrap();
    let other = DigestSigner::from_pem(OTHER_KEY_PKCS1).unwrap();
    assert_ne!(test.fingerprint(), other.fingerprint());
    // The key of the openssl fixture is the same key.
    let keys = PublicKeys::from_list_public_keys_json(PUBLIC_KEYS).unwrap();
    assert_eq!(keys.keys().next().unwrap().der, test.public_key_der());
}

#[test]
fn keys_that_are_not_usable_are_refused_with_the_reason() {
    assert!(DigestSigner::from_pem("nothing").is_err());
    let public_pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    let error = DigestSigner::from_pem(public_pem).err().unwrap();
    assert!(error.to_string().contains("PUBLIC KEY"), "{error}");
    let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert!(DigestSigner::from_pem(garbage).is_err());
}
