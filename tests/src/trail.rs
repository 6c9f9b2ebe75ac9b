//! Playing CloudTrail with log file validation for tests: hours of gzip'd log files made of
//! the real sample records under CloudTrail's key layout, and an hourly digest for each hour in
//! CloudTrail's format (gzip'd, its signature in `x-amz-meta-signature`), signed by OpenSSL
//! (`openssl dgst -sha256 -sign`) with a key made for the test — not by the code under test —
//! and a public-key file in the shape `aws cloudtrail list-public-keys` prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::StreamExt;
use md5::{Digest as _, Md5};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::memory_file::gzip;
use crate::samples::sample_files;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "eu-west-1";
pub const PREFIX: &str = "trails";
pub const TRAIL: &str = "org-trail";
pub const HOURS: usize = 4;
pub const FILES_PER_HOUR: usize = 3;
pub const RECORDS_PER_FILE: usize = 15;

/// The first digest's start: CloudTrail's digest hours run from any second.
pub fn first_hour() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 10, 23, 41).unwrap()
}

/// An RSA key made by OpenSSL for the test, and its public key as CloudTrail gives it (DER of
/// the PKCS#1 RSAPublicKey) with a fingerprint (MD5 of that DER, hex).
pub struct SigningKey {
    pub pem: PathBuf,
    pub public_der: Vec<u8>,
    pub fingerprint: String,
}

impl SigningKey {
    pub fn generate(directory: &Path, name: &str) -> SigningKey {
        let pem = directory.join(format!("{name}.pem"));
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                path(&pem),
            ],
            &[],
        );
        let public_der = openssl(
            &[
                "rsa",
                "-in",
                path(&pem),
                "-RSAPublicKey_out",
                "-outform",
                "DER",
            ],
            &[],
        );
        let fingerprint = hex(&Md5::digest(&public_der));
        SigningKey {
            pem,
            public_der,
            fingerprint,
        }
    }

    /// RSA PKCS#1 v1.5 SHA-256 of `message`, hex — by OpenSSL, not by the code under test.
    pub fn sign(&self, message: &str) -> String {
        hex(&openssl(
            &["dgst", "-sha256", "-sign", path(&self.pem)],
            message.as_bytes(),
        ))
    }
}

pub fn path(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

pub fn openssl(arguments: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("the test signs digests with the openssl command, which cannot run: {error}")
        });
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "openssl {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn time_text(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An object as CloudTrail would write it.
#[derive(Clone)]
pub struct TrailObject {
    pub key: String,
    /// Uncompressed content (gzip'd when written).
    pub content: Vec<u8>,
    /// `x-amz-meta-signature`, for digests.
    pub signature: Option<String>,
}

/// The trail: log files and digests, oldest first; the bucket name is the test's choice.
#[derive(Clone)]
pub struct Trail {
    pub log_files: Vec<TrailObject>,
    pub digests: Vec<TrailObject>,
}

pub fn log_file_key(delivered: DateTime<Utc>, unique: usize) -> String {
    format!(
        "{PREFIX}/AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{}/{ACCOUNT}_CloudTrail_{REGION}_{}_{unique:016}.json.gz",
        delivered.format("%Y/%m/%d"),
        delivered.format("%Y%m%dT%H%MZ")
    )
}

pub fn digest_key(end: DateTime<Utc>) -> String {
    format!(
        "{PREFIX}/AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/{}/{ACCOUNT}_CloudTrail-Digest_{REGION}_{TRAIL}_us-east-1_{}.json.gz",
        end.format("%Y/%m/%d"),
        end.format("%Y%m%dT%H%M%SZ")
    )
}

/// CloudTrail's digest of one hour, as JSON text, for `bucket`.
pub fn digest_json(
    bucket: &str,
    key: &str,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    fingerprint: &str,
    previous: Option<(&TrailObject, &str)>,
    log_files: &[(&TrailObject, DateTime<Utc>)],
) -> Vec<u8> {
    let previous_digest = |value: Value| {
        if previous.is_some() {
            value
        } else {
            Value::Null
        }
    };
    let document = json!({
        "awsAccountId": ACCOUNT,
        "digestStartTime": time_text(from),
        "digestEndTime": time_text(until),
        "digestS3Bucket": bucket,
        "digestS3Object": key,
        "digestPublicKeyFingerprint": fingerprint,
        "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": time_text(until - Duration::minutes(2)),
        "oldestEventTime": time_text(from - Duration::minutes(3)),
        "previousDigestS3Bucket": previous_digest(bucket.into()),
        "previousDigestS3Object": previous_digest(previous.map(|(digest, _)| digest.key.clone()).into()),
        "previousDigestHashValue": previous_digest(previous.map(|(digest, _)| sha256_hex(&digest.content)).into()),
        "previousDigestHashAlgorithm": previous_digest("SHA-256".into()),
        "previousDigestSignature": previous_digest(previous.map(|(_, signature)| signature.to_string()).into()),
        "logFiles": log_files.iter().map(|(file, delivered)| json!({
            "s3Bucket": bucket,
            "s3Object": file.key,
            "hashValue": sha256_hex(&file.content),
            "hashAlgorithm": "SHA-256",
            "newestEventTime": time_text(*delivered - Duration::minutes(1)),
            "oldestEventTime": time_text(*delivered - Duration::minutes(6)),
        })).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&document).unwrap()
}

/// What CloudTrail signs (reference §3.2), written out here independently of the verifier.
pub fn signing_string(
    until: DateTime<Utc>,
    bucket: &str,
    key: &str,
    content: &[u8],
    previous_signature: Option<&str>,
) -> String {
    format!(
        "{}\n{bucket}/{key}\n{}\n{}",
        time_text(until),
        sha256_hex(content),
        previous_signature.unwrap_or("null")
    )
}

/// Plays CloudTrail for [`HOURS`] hours in `bucket`: the sample records in log files, a
/// starting digest, then digests chained to the one before.
pub fn make_trail(bucket: &str, key: &SigningKey) -> Trail {
    make_trail_of(bucket, key, HOURS, FILES_PER_HOUR)
}

/// `hours` hours of `files_per_hour` log files each ([`RECORDS_PER_FILE`] sample records, the
/// samples used again from the start when they run out).
pub fn make_trail_of(bucket: &str, key: &SigningKey, hours: usize, files_per_hour: usize) -> Trail {
    let records: Vec<String> = sample_files()
        .into_iter()
        .flat_map(|file| file.records)
        .collect();
    make_trail_with(bucket, key, hours, files_per_hour, &records)
}

/// The sample records, each with an eventID of its own to `salt` (a name-based UUID of the
/// salt and the original), the rest of each record byte for byte: trails made of them share no
/// event with each other.
pub fn records_unique_to(salt: &str) -> Vec<String> {
    sample_files()
        .into_iter()
        .flat_map(|file| file.records)
        .map(|record| {
            let parsed: Value = serde_json::from_str(&record).expect("sample records are JSON");
            let Some(event_id) = parsed["eventID"].as_str() else {
                return record;
            };
            let unique = uuid::Uuid::new_v5(
                &uuid::Uuid::NAMESPACE_OID,
                format!("{salt}/{event_id}").as_bytes(),
            );
            record.replacen(&format!("\"{event_id}\""), &format!("\"{unique}\""), 1)
        })
        .collect()
}

/// [`make_trail_of`] over the records given.
pub fn make_trail_with(
    bucket: &str,
    key: &SigningKey,
    hours: usize,
    files_per_hour: usize,
    records: &[String],
) -> Trail {
    let mut chunks = records.chunks(RECORDS_PER_FILE).cycle();
    let mut log_files = Vec::new();
    let mut digests: Vec<TrailObject> = Vec::new();
    for hour in 0..hours {
        let from = first_hour() + Duration::hours(hour as i64);
        let until = from + Duration::hours(1);
        let mut listed = Vec::new();
        for file in 0..files_per_hour {
            let delivered = from + Duration::minutes(5 + (50 * file / files_per_hour) as i64);
            let chunk = chunks.next().expect("sample records");
            let content = format!("{{\"Records\":[{}]}}", chunk.join(",")).into_bytes();
            listed.push((
                TrailObject {
                    key: log_file_key(delivered, hour * files_per_hour + file),
                    content,
                    signature: None,
                },
                delivered,
            ));
        }
        let key_text = digest_key(until);
        let previous = digests
            .last()
            .map(|digest| (digest, digest.signature.as_deref().unwrap_or_default()));
        let listed_refs: Vec<(&TrailObject, DateTime<Utc>)> =
            listed.iter().map(|(file, time)| (file, *time)).collect();
        let content = digest_json(
            bucket,
            &key_text,
            from,
            until,
            &key.fingerprint,
            previous,
            &listed_refs,
        );
        let signature = key.sign(&signing_string(
            until,
            bucket,
            &key_text,
            &content,
            previous.map(|(_, signature)| signature),
        ));
        log_files.extend(listed.into_iter().map(|(file, _)| file));
        digests.push(TrailObject {
            key: key_text,
            content,
            signature: Some(signature),
        });
    }
    Trail { log_files, digests }
}

/// The public-key file, as `aws cloudtrail list-public-keys` (CLI v2) prints it.
pub fn write_public_keys(directory: &Path, key: &SigningKey) -> PathBuf {
    let file = directory.join("public-keys.json");
    let document = json!({
        "PublicKeyList": [{
            "Value": base64::engine::general_purpose::STANDARD.encode(&key.public_der),
            "ValidityStartTime": "2024-01-01T00:00:00+00:00",
            "ValidityEndTime": "2025-01-01T00:00:00+00:00",
            "Fingerprint": key.fingerprint,
        }]
    });
    std::fs::write(&file, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    file
}

pub async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, trail: &Trail) {
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|error| panic!("cannot create {bucket}: {error:?}"));
    futures::stream::iter(trail.log_files.iter().chain(&trail.digests))
        .for_each_concurrent(8, |object| async move {
            let mut put = s3
                .put_object()
                .bucket(bucket)
                .key(&object.key)
                .body(ByteStream::from(gzip(&object.content)));
            if let Some(signature) = &object.signature {
                put = put
                    .metadata("signature", signature)
                    .metadata("signature-algorithm", "SHA256withRSA");
            }
            put.send()
                .await
                .unwrap_or_else(|error| panic!("cannot put {}: {error:?}", object.key));
        })
        .await;
}

/// The problems an `orgtrail verify --output json` report names: (kind, key of the object),
/// sorted.
pub fn report_problems(report: &Value) -> Vec<(String, String)> {
    let mut problems: Vec<(String, String)> = report["problems"]
        .as_array()
        .expect("the report has problems")
        .iter()
        .map(|problem| {
            (
                problem["kind"].as_str().unwrap_or_default().to_string(),
                problem["location"]["key"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    problems.sort();
    problems
}
