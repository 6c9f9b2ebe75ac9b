//! `orgtrail verify` against moto's S3. The test plays CloudTrail: hours of gzip'd log files
//! made of the real sample records under CloudTrail's key layout, and an hourly digest for
//! each hour in CloudTrail's format (gzip'd, its signature in `x-amz-meta-signature`), signed
//! by OpenSSL (`openssl dgst -sha256 -sign`) with a key made for the test, and a public-key
//! file in the shape `aws cloudtrail list-public-keys` prints (`orgtrail_tests::trail`). The intact trail verifies clean;
//! each tampering, on a fresh copy of the trail in a bucket of its own, is reported naming the
//! object, and the command exits non-zero.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration as StdDuration;

use chrono::Duration;
use orgtrail_tests::cli_process::{moto_aws_environment, run_orgtrail_with};
use orgtrail_tests::memory_file::gzip;
use orgtrail_tests::moto::MotoServer;
use orgtrail_tests::organization::s3_client;
use orgtrail_tests::trail::*;
use serde_json::Value;

/// Runs `orgtrail verify --output json` over the trail in `bucket`.
fn verify(moto: &MotoServer, bucket: &str, public_keys: &Path) -> (Output, Value) {
    verify_hours(moto, bucket, public_keys, HOURS)
}

fn verify_hours(
    moto: &MotoServer,
    bucket: &str,
    public_keys: &Path,
    hours: usize,
) -> (Output, Value) {
    let output = run_verify(moto, bucket, Some(public_keys), hours);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "verify printed no JSON ({error}); status {:?}\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, report)
}

/// Runs `orgtrail verify --output json` over `hours` hours of the trail in `bucket`.
fn run_verify(moto: &MotoServer, bucket: &str, public_keys: Option<&Path>, hours: usize) -> Output {
    let environment = moto_aws_environment();
    let start = time_text(first_hour());
    let end = time_text(first_hour() + Duration::hours(hours as i64));
    let endpoint = moto.endpoint();
    let mut arguments = vec![
        "verify",
        "--bucket",
        bucket,
        "--prefix",
        PREFIX,
        "--account",
        ACCOUNT,
        "--region",
        REGION,
        "--start",
        &start,
        "--end",
        &end,
        "--endpoint-url",
        &endpoint,
        "--output",
        "json",
    ];
    if let Some(public_keys) = public_keys {
        arguments.extend(["--public-keys", path(public_keys)]);
    }
    run_orgtrail_with(&environment, &arguments, StdDuration::from_secs(600))
}

/// Uploads `trail` into `bucket`, verifies it, expects exactly the `expected` problems and
/// returns the report.
async fn expect_tampering(
    setup: &Setup,
    bucket: &str,
    trail: &Trail,
    case: &str,
    expected: &[(&str, &str)],
) -> Value {
    upload(&setup.s3, bucket, trail).await;
    let (output, report) = verify(&setup.moto, bucket, &setup.public_keys);
    expect_problems(case, &output, &report, expected);
    report
}

fn expect_problems(case: &str, output: &Output, report: &Value, expected: &[(&str, &str)]) {
    let mut expected: Vec<(String, String)> = expected
        .iter()
        .map(|(kind, key)| (kind.to_string(), key.to_string()))
        .collect();
    expected.sort();
    assert_eq!(report_problems(report), expected, "{case}: {report:#}");
    assert_eq!(output.status.code(), Some(1), "{case}: exit status");
}

fn gzip_is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

struct Setup {
    moto: MotoServer,
    s3: aws_sdk_s3::Client,
    _directory: TempDirectory,
    genuine: SigningKey,
    attacker: SigningKey,
    public_keys: PathBuf,
}

/// A directory removed when dropped.
struct TempDirectory(PathBuf);

impl Drop for TempDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn setup(name: &str) -> Setup {
    let directory =
        std::env::temp_dir().join(format!("orgtrail-verify-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let genuine = SigningKey::generate(&directory, "genuine");
    let attacker = SigningKey::generate(&directory, "attacker");
    let public_keys = write_public_keys(&directory, &genuine);
    let moto = MotoServer::start();
    let s3 = s3_client(&moto.endpoint()).await;
    Setup {
        moto,
        s3,
        _directory: TempDirectory(directory),
        genuine,
        attacker,
        public_keys,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intact_trail_verifies_clean_with_every_log_file_verified() {
    let setup = setup("intact").await;
    let trail = make_trail("intact-trail", &setup.genuine);
    assert!(gzip_is_gzip(&gzip(&trail.log_files[0].content)));
    upload(&setup.s3, "intact-trail", &trail).await;
    let (output, report) = verify(&setup.moto, "intact-trail", &setup.public_keys);
    assert_eq!(
        report_problems(&report),
        Vec::<(String, String)>::new(),
        "{report:#}"
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["clean"], true);
    assert_eq!(report["summary"]["digests"], HOURS);
    assert_eq!(report["summary"]["digests_verified"], HOURS);
    assert_eq!(
        report["summary"]["log_files"]["verified"],
        HOURS * FILES_PER_HOUR
    );
    let statuses: Vec<&str> = report["log_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["verified"; HOURS * FILES_PER_HOUR]);

    // Table output says the same, and exits 0.
    let table = run_orgtrail_with(
        &[
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ],
        &[
            "verify",
            "--bucket",
            "intact-trail",
            "--prefix",
            PREFIX,
            "--account",
            ACCOUNT,
            "--region",
            REGION,
            "--start",
            &time_text(first_hour()),
            "--end",
            &time_text(first_hour() + Duration::hours(HOURS as i64)),
            "--public-keys",
            path(&setup.public_keys),
            "--endpoint-url",
            &setup.moto.endpoint(),
        ],
        StdDuration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&table.stdout);
    assert_eq!(table.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("{} verified", HOURS * FILES_PER_HOUR)),
        "{text}"
    );
    assert!(text.contains("problems: 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_files_changed_deleted_or_added_are_each_named() {
    let setup = setup("log-files").await;

    let bucket = "log-file-changed";
    let mut trail = make_trail(bucket, &setup.genuine);
    let changed = trail.log_files[4].key.clone();
    let position = trail.log_files[4].content.len() / 2;
    trail.log_files[4].content[position] ^= 0x01;
    expect_tampering(
        &setup,
        bucket,
        &trail,
        "one byte changed",
        &[("log_file_modified", &changed)],
    )
    .await;

    let bucket = "log-file-deleted";
    let mut trail = make_trail(bucket, &setup.genuine);
    let deleted = trail.log_files.remove(7).key;
    expect_tampering(
        &setup,
        bucket,
        &trail,
        "log file deleted",
        &[("log_file_missing", &deleted)],
    )
    .await;

    let bucket = "log-file-added";
    let mut trail = make_trail(bucket, &setup.genuine);
    let added = log_file_key(first_hour() + Duration::minutes(90), 999);
    trail.log_files.push(TrailObject {
        key: added.clone(),
        content: trail.log_files[0].content.clone(),
        signature: None,
    });
    expect_tampering(
        &setup,
        bucket,
        &trail,
        "log file added",
        &[("log_file_unlisted", &added)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_deleted_re_signed_or_moved_are_each_named() {
    let setup = setup("digests").await;

    let bucket = "digest-deleted";
    let mut trail = make_trail(bucket, &setup.genuine);
    let deleted = trail.digests.remove(2).key;
    let report = expect_tampering(
        &setup,
        bucket,
        &trail,
        "one digest deleted",
        &[("digest_missing", &deleted)],
    )
    .await;
    assert_eq!(
        report["summary"]["log_files"]["unverifiable"], FILES_PER_HOUR,
        "{report:#}"
    );

    let bucket = "two-digests-deleted";
    let mut trail = make_trail(bucket, &setup.genuine);
    let newer = trail.digests.remove(2).key;
    let older = trail.digests.remove(1).key;
    expect_tampering(
        &setup,
        bucket,
        &trail,
        "two consecutive digests deleted",
        &[("digest_missing", &newer), ("digest_missing", &older)],
    )
    .await;

    let bucket = "digest-re-signed";
    let mut trail = make_trail(bucket, &setup.genuine);
    let re_signed = trail.digests[1].key.clone();
    let until = first_hour() + Duration::hours(2);
    let previous_signature = trail.digests[0].signature.clone();
    trail.digests[1].signature = Some(setup.attacker.sign(&signing_string(
        until,
        bucket,
        &re_signed,
        &trail.digests[1].content,
        previous_signature.as_deref(),
    )));
    expect_tampering(
        &setup,
        bucket,
        &trail,
        "digest re-signed with another key",
        &[("digest_bad_signature", &re_signed)],
    )
    .await;

    let bucket = "digest-moved";
    let mut trail = make_trail(bucket, &setup.genuine);
    let original = trail.digests[2].key.clone();
    let moved = digest_key(first_hour() + Duration::hours(3) + Duration::seconds(1));
    trail.digests[2].key = moved.clone();
    let report = expect_tampering(
        &setup,
        bucket,
        &trail,
        "digest moved",
        &[("digest_moved", &moved)],
    )
    .await;
    let message = report["problems"][0]["message"].as_str().unwrap();
    assert!(message.contains(&original), "{message}");
}

/// How fast `orgtrail verify` goes: a day of hourly digests and 20 log files an hour, read from
/// moto's S3 on this machine (moto, a Python server on the same cores, answers every GetObject;
/// against S3 the bound is the network). A measurement, not a check: run it with
/// `cargo xtask test --test verify -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: cargo xtask test --test verify -- --ignored"]
async fn verify_throughput_in_log_files_per_second() {
    const DAY: usize = 24;
    const FILES: usize = 20;
    let setup = setup("throughput").await;
    let trail = make_trail_of("throughput-trail", &setup.genuine, DAY, FILES);
    upload(&setup.s3, "throughput-trail", &trail).await;
    let bytes: usize = trail.log_files.iter().map(|file| file.content.len()).sum();
    let began = std::time::Instant::now();
    let (output, report) = verify_hours(&setup.moto, "throughput-trail", &setup.public_keys, DAY);
    let seconds = began.elapsed().as_secs_f64();
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(report["summary"]["log_files"]["verified"], DAY * FILES);
    println!(
        "verify: {} digests, {} log files ({:.1} MB uncompressed) in {seconds:.2} s: {:.0} log files/s, {:.1} MB/s (the command's own figure: {})",
        DAY,
        DAY * FILES,
        bytes as f64 / 1e6,
        (DAY * FILES) as f64 / seconds,
        bytes as f64 / 1e6 / seconds,
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_verified_exits_2_saying_why() {
    let setup = setup("nothing").await;
    // No digests in the window: log file validation is off.
    let bucket = "no-digests";
    let mut trail = make_trail(bucket, &setup.genuine);
    trail.digests.clear();
    upload(&setup.s3, bucket, &trail).await;
    let output = run_verify(&setup.moto, bucket, Some(&setup.public_keys), HOURS);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no digest files"), "{stderr}");

    // No key file, and CloudTrail's ListPublicKeys cannot answer (moto does not implement it).
    let output = run_verify(&setup.moto, bucket, None, HOURS);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ListPublicKeys failed"), "{stderr}");
    assert!(stderr.contains("--public-keys"), "{stderr}");
}
