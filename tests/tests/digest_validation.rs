//! Digest validation by the collector, against moto's S3 and a running aggregator. The test
//! plays CloudTrail with log file validation (`orgtrail_tests::trail`: log files of the sample
//! records, hourly digests in CloudTrail's format signed by OpenSSL with the test's key), one
//! trail per bucket with event ids of its own, and tampers with all but one. One collector pass
//! takes the log files and validates them; the ledger, the findings, the quarantine and the
//! lookups say what it found.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration as StdDuration;

use chrono::Duration;
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::quarantine_service_client::QuarantineServiceClient;
use orgtrail_api::v1::source_service_client::SourceServiceClient;
use orgtrail_tests::collector_process::{run_collector_once, BaseCredentials};
use orgtrail_tests::moto::MotoServer;
use orgtrail_tests::organization::s3_client;
use orgtrail_tests::trail::*;
use orgtrail_tests::TestStack;

const BOUND: StdDuration = StdDuration::from_secs(300);

/// A directory removed when dropped.
struct TempDirectory(PathBuf);

impl Drop for TempDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Setup {
    moto: MotoServer,
    s3: aws_sdk_s3::Client,
    stack: TestStack,
    _directory: TempDirectory,
    genuine: SigningKey,
    attacker: SigningKey,
    public_keys: PathBuf,
}

async fn setup(name: &str) -> Setup {
    let directory = std::env::temp_dir().join(format!(
        "orgtrail-digest-validation-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&directory).unwrap();
    let genuine = SigningKey::generate(&directory, "genuine");
    let attacker = SigningKey::generate(&directory, "attacker");
    let public_keys = write_public_keys(&directory, &genuine);
    let moto = MotoServer::start();
    let s3 = s3_client(&moto.endpoint()).await;
    let stack = TestStack::start().await;
    Setup {
        moto,
        s3,
        stack,
        _directory: TempDirectory(directory),
        genuine,
        attacker,
        public_keys,
    }
}

/// A trail of its own events in `bucket`.
fn trail_in(bucket: &str, key: &SigningKey) -> Trail {
    make_trail_with(
        bucket,
        key,
        HOURS,
        FILES_PER_HOUR,
        &records_unique_to(bucket),
    )
}

/// A collector configuration with one source per bucket, validating with the test's key.
fn collector_config(setup: &Setup, buckets: &[&str]) -> String {
    let mut config = format!(
        r#"collector_id = "validator"
lease_seconds = 30

[aggregator]
endpoint = "{endpoint}"
{tls}
[aws]
region = "us-east-1"
endpoint_url = "{moto}"

[integrity]
public_keys_file = "{keys}"

[log]
level = "info"
format = "json"
"#,
        endpoint = setup.stack.endpoint(),
        tls =
            orgtrail_tests::pki::collector_tls_toml(orgtrail_tests::pki::ClientIdentity::Collector),
        moto = setup.moto.endpoint(),
        keys = setup.public_keys.display(),
    );
    for bucket in buckets {
        config.push_str(&format!(
            "\n[[sources]]\nname = \"{bucket}\"\nbucket = \"{bucket}\"\nprefix = \"{PREFIX}\"\n"
        ));
    }
    config
}

async fn collect_once(setup: &Setup, buckets: &[&str]) -> Output {
    let config = collector_config(setup, buckets);
    let output = tokio::task::spawn_blocking(move || {
        run_collector_once(&config, &BaseCredentials::default(), BOUND)
    })
    .await
    .unwrap()
    .unwrap_or_else(|output| {
        panic!(
            "orgtrail-collector --once took longer than {BOUND:?}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The ledger's integrity status of each log file of `bucket`, by key.
async fn ledger(stack: &TestStack, bucket: &str) -> BTreeMap<String, String> {
    sqlx::query_as("SELECT object_key, integrity FROM log_files WHERE bucket = $1")
        .bind(bucket)
        .fetch_all(&stack.pool().await)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// The integrity findings: (problem kind, summary).
async fn integrity_findings(stack: &TestStack) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT rule_id, summary FROM findings WHERE kind = 'integrity' ORDER BY finding_id",
    )
    .fetch_all(&stack.pool().await)
    .await
    .unwrap()
}

/// Findings about objects of `bucket`: (kind, key).
async fn findings_in(stack: &TestStack, bucket: &str) -> Vec<(String, String)> {
    let prefix = format!("s3://{bucket}/");
    let mut found: Vec<(String, String)> = integrity_findings(stack)
        .await
        .into_iter()
        .filter_map(|(kind, summary)| {
            let rest = summary.strip_prefix(&prefix)?;
            let key = rest.split(": ").next()?.to_string();
            Some((kind, key))
        })
        .collect();
    found.sort();
    found
}

fn expect(mut expected: Vec<(&str, &str)>) -> Vec<(String, String)> {
    expected.sort();
    expected
        .into_iter()
        .map(|(kind, key)| (kind.to_string(), key.to_string()))
        .collect()
}

/// Every stored event, or only those of verified log files, by lookup over gRPC.
async fn lookup_count(stack: &TestStack, verified_only: bool) -> usize {
    let mut client = stack.events_client().await;
    let mut request = pb::LookupEventsRequest {
        max_results: 1000,
        verified_only,
        ..pb::LookupEventsRequest::default()
    };
    let mut count = 0;
    loop {
        let page = client
            .lookup_events(request.clone())
            .await
            .unwrap()
            .into_inner();
        count += page.events.len();
        if page.next_token.is_empty() {
            return count;
        }
        request.next_token = page.next_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intact_trail_is_verified_while_collected_and_a_later_deletion_is_found() {
    let setup = setup("intact").await;
    let bucket = "validated-trail";
    let trail = trail_in(bucket, &setup.genuine);
    upload(&setup.s3, bucket, &trail).await;

    let first = collect_once(&setup, &[bucket]).await;
    let stdout = String::from_utf8_lossy(&first.stdout);
    let row: Vec<&str> = stdout
        .lines()
        .find(|line| line.starts_with(bucket))
        .unwrap_or_else(|| panic!("no row for {bucket}:\n{stdout}"))
        .split_whitespace()
        .collect();
    // SOURCE STATUS LISTED NEW COMMITTED ALREADY EVENTS DUPLICATES REJECTED FAULTS VERIFIED PROBLEMS
    assert_eq!(row[10], (HOURS * FILES_PER_HOUR).to_string(), "{stdout}");
    assert_eq!(row[11], "0", "{stdout}");

    let statuses = ledger(&setup.stack, bucket).await;
    assert_eq!(statuses.len(), HOURS * FILES_PER_HOUR);
    assert!(
        statuses.values().all(|status| status == "verified"),
        "{statuses:#?}"
    );
    assert_eq!(integrity_findings(&setup.stack).await, Vec::new());
    let stored = lookup_count(&setup.stack, false).await;
    assert!(stored > 0);
    assert_eq!(lookup_count(&setup.stack, true).await, stored);

    // Where validation got to, per account and region.
    let sources = SourceServiceClient::new(setup.stack.channel().await)
        .list_sources(pb::ListSourcesRequest {})
        .await
        .unwrap()
        .into_inner()
        .sources;
    let region = sources
        .iter()
        .find(|status| status.source == bucket && status.aws_region == REGION)
        .unwrap_or_else(|| panic!("no status of {REGION}: {sources:#?}"));
    assert_eq!(
        region
            .integrity_checked_until
            .as_ref()
            .map(|time| time.seconds),
        Some((first_hour() + Duration::hours(HOURS as i64)).timestamp())
    );
    assert_eq!(
        region.log_files_by_integrity.get("verified"),
        Some(&((HOURS * FILES_PER_HOUR) as u64))
    );
    assert_eq!(region.integrity_problems, 0);

    // A log file of the newest hour deleted from the bucket after orgtrail stored it: the next
    // pass (which reads the newest digest again) names it, and the stored copy still verifies.
    let deleted = trail.log_files[HOURS * FILES_PER_HOUR - 1].key.clone();
    setup
        .s3
        .delete_object()
        .bucket(bucket)
        .key(&deleted)
        .send()
        .await
        .unwrap();
    collect_once(&setup, &[bucket]).await;
    assert_eq!(
        findings_in(&setup.stack, bucket).await,
        expect(vec![("log_file_missing", &deleted)])
    );
    assert_eq!(ledger(&setup.stack, bucket).await[&deleted], "verified");
    assert_eq!(lookup_count(&setup.stack, true).await, stored);

    // A third pass finds the same and raises nothing new.
    collect_once(&setup, &[bucket]).await;
    assert_eq!(integrity_findings(&setup.stack).await.len(), 1);
}

/// A bucket, its tampered trail, and the problems expected: (kind, key).
type Case = (&'static str, Trail, Vec<(&'static str, String)>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tampering_is_a_finding_naming_the_object_and_a_modified_files_events_are_quarantined()
{
    let setup = setup("tampering").await;
    let mut cases: Vec<Case> = Vec::new();

    // One byte of an eventID changed: valid JSON, another event.
    let bucket = "tampered-byte";
    let mut trail = trail_in(bucket, &setup.genuine);
    let changed = trail.log_files[4].key.clone();
    let content = &mut trail.log_files[4].content;
    let at = content
        .windows(11)
        .position(|window| window == b"\"eventID\":\"")
        .expect("an eventID")
        + 11;
    content[at] = if content[at] == b'a' { b'b' } else { b'a' };
    let tampered_content = content.clone();
    cases.push((bucket, trail, vec![("log_file_modified", changed.clone())]));

    let bucket = "tampered-deleted-file";
    let mut trail = trail_in(bucket, &setup.genuine);
    let deleted = trail.log_files.remove(7).key;
    cases.push((bucket, trail, vec![("log_file_missing", deleted)]));

    let bucket = "tampered-added-file";
    let mut trail = trail_in(bucket, &setup.genuine);
    let added = log_file_key(first_hour() + Duration::minutes(90), 999);
    let mut forged = trail.log_files[0].clone();
    forged.key = added.clone();
    forged.content = String::from_utf8(forged.content)
        .unwrap()
        .replacen("\"eventID\":\"", "\"eventID\":\"f", 1)
        .into_bytes();
    trail.log_files.push(forged);
    cases.push((bucket, trail, vec![("log_file_unlisted", added.clone())]));

    let bucket = "tampered-deleted-digest";
    let mut trail = trail_in(bucket, &setup.genuine);
    let deleted_digest = trail.digests.remove(2).key;
    cases.push((bucket, trail, vec![("digest_missing", deleted_digest)]));

    let bucket = "tampered-two-digests";
    let mut trail = trail_in(bucket, &setup.genuine);
    let newer = trail.digests.remove(2).key;
    let older = trail.digests.remove(1).key;
    cases.push((
        bucket,
        trail,
        vec![("digest_missing", newer), ("digest_missing", older)],
    ));

    let bucket = "tampered-re-signed";
    let mut trail = trail_in(bucket, &setup.genuine);
    let re_signed = trail.digests[1].key.clone();
    let previous_signature = trail.digests[0].signature.clone();
    trail.digests[1].signature = Some(setup.attacker.sign(&signing_string(
        first_hour() + Duration::hours(2),
        bucket,
        &re_signed,
        &trail.digests[1].content,
        previous_signature.as_deref(),
    )));
    cases.push((bucket, trail, vec![("digest_bad_signature", re_signed)]));

    let bucket = "tampered-moved-digest";
    let mut trail = trail_in(bucket, &setup.genuine);
    let moved = digest_key(first_hour() + Duration::hours(3) + Duration::seconds(1));
    trail.digests[2].key = moved.clone();
    cases.push((bucket, trail, vec![("digest_moved", moved)]));

    for (bucket, trail, _) in &cases {
        upload(&setup.s3, bucket, trail).await;
    }
    let buckets: Vec<&str> = cases.iter().map(|(bucket, _, _)| *bucket).collect();
    let output = collect_once(&setup, &buckets).await;
    let stderr = String::from_utf8_lossy(&output.stderr);

    for (bucket, _, expected) in &cases {
        let expected: Vec<(&str, &str)> = expected
            .iter()
            .map(|(kind, key)| (*kind, key.as_str()))
            .collect();
        assert_eq!(
            findings_in(&setup.stack, bucket).await,
            expect(expected.clone()),
            "{bucket}: {stderr}"
        );
        for (_, key) in expected {
            assert!(
                stderr.contains(key),
                "{bucket}: the collector names {key}:\n{stderr}"
            );
        }
    }

    // The ledger says which log files are not genuine.
    let statuses = ledger(&setup.stack, "tampered-byte").await;
    assert_eq!(statuses[&changed], "modified");
    assert_eq!(
        statuses
            .values()
            .filter(|status| *status == "verified")
            .count(),
        HOURS * FILES_PER_HOUR - 1
    );
    assert_eq!(
        ledger(&setup.stack, "tampered-added-file").await[&added],
        "unlisted"
    );
    let unverifiable = ledger(&setup.stack, "tampered-deleted-digest").await;
    assert_eq!(
        unverifiable
            .values()
            .filter(|status| *status == "unverifiable")
            .count(),
        FILES_PER_HOUR
    );

    // The modified file's events left the store for the quarantine, none lost.
    let pool = setup.stack.pool().await;
    let (log_file_id, accepted): (i64, i32) = sqlx::query_as(
        "SELECT log_file_id, accepted FROM log_files WHERE bucket = 'tampered-byte' AND object_key = $1",
    )
    .bind(&changed)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(accepted > 0);
    let in_store: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE log_file_id = $1")
        .bind(log_file_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(in_store, 0);
    let quarantined: Vec<(i64, String)> =
        sqlx::query_as("SELECT quarantine_id, reason FROM quarantine WHERE log_file_id = $1")
            .bind(log_file_id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(quarantined.len(), accepted as usize);
    // Each record opens from the quarantine as the file held it (sealed as it was stored).
    let mut quarantine = QuarantineServiceClient::new(setup.stack.channel().await);
    for (quarantine_id, reason) in &quarantined {
        assert!(reason.contains("modified"), "{reason}");
        let entry = quarantine
            .get_quarantined(pb::GetQuarantinedRequest {
                quarantine_id: *quarantine_id,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(entry.object_key, changed);
        assert!(!entry.content.is_empty());
        assert_eq!(entry.content_bytes as usize, entry.content.len());
        assert!(
            tampered_content
                .windows(entry.content.len())
                .any(|window| window == entry.content.as_slice()),
            "quarantined content is a record of the file"
        );
    }

    // Verified-only lookups leave out every file not verified.
    let verified_events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events AS e JOIN log_files AS f USING (log_file_id)
         WHERE f.integrity = 'verified'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let all = lookup_count(&setup.stack, false).await;
    let verified = lookup_count(&setup.stack, true).await;
    assert_eq!(verified as i64, verified_events);
    assert!(verified < all, "{verified} of {all}");
}
