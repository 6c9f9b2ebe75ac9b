//! The chain walk over a trail of hourly digests signed with a test key, intact and with each
//! kind of tampering: every problem kind reported, naming its object.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use orgtrail_integrity::{
    ChainWalk, CloudTrailLayout, DigestDraft, DigestLogFile, DigestRead, DigestSigner, KeyLayout,
    LogFileRead, LogFileStatus, Problem, PublicKeys, S3Location, Sha256Hash, VerificationReport,
};

const TEST_KEY: &str = include_str!("data/test-signing-key.pem");
const OTHER_KEY: &str = include_str!("data/other-signing-key-pkcs1.pem");
const BUCKET: &str = "trail-bucket";
const HOURS: usize = 5;

fn layout() -> CloudTrailLayout {
    CloudTrailLayout {
        prefix: "p".into(),
        organization_id: None,
        account_id: "123456789012".into(),
        region: "eu-west-1".into(),
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 22, 15, 7).unwrap()
}

/// A trail: digest objects (content, metadata signature) and log files, oldest first.
struct Trail {
    digests: Vec<(S3Location, Vec<u8>, String)>,
    log_files: BTreeMap<S3Location, Vec<u8>>,
    keys: PublicKeys,
    /// Every digest ending by then should be there.
    due_until: DateTime<Utc>,
}

fn log_key(time: DateTime<Utc>, n: usize) -> String {
    format!(
        "{}{}/123456789012_CloudTrail_eu-west-1_{}_file{n:012}.json.gz",
        layout().log_file_prefix(),
        time.format("%Y/%m/%d"),
        time.format("%Y%m%dT%H%MZ")
    )
}

fn digest_key(end: DateTime<Utc>) -> String {
    format!(
        "{}{}/123456789012_CloudTrail-Digest_eu-west-1_my_trail_us-east-1_{}.json.gz",
        layout().digest_prefix(),
        end.format("%Y/%m/%d"),
        end.format("%Y%m%dT%H%M%SZ")
    )
}

fn trail() -> Trail {
    let signer = DigestSigner::from_pem(TEST_KEY).unwrap();
    let mut keys = PublicKeys::new();
    keys.insert(signer.public_key(None, None));
    let mut digests = Vec::new();
    let mut log_files = BTreeMap::new();
    let mut previous = None;
    for hour in 0..HOURS {
        let from = start() + Duration::hours(hour as i64);
        let until = from + Duration::hours(1);
        let mut listed = Vec::new();
        for n in 0..2 {
            let delivered = from + Duration::minutes(10 + 20 * n as i64);
            let location = S3Location::new(BUCKET, log_key(delivered, hour * 2 + n));
            let content = format!("{{\"Records\":[{{\"n\":{}}}]}}", hour * 2 + n).into_bytes();
            listed.push(DigestLogFile {
                location: location.clone(),
                hash_value: Sha256Hash::of(&content),
                newest_event_time: Some(delivered),
                oldest_event_time: Some(delivered - Duration::minutes(5)),
            });
            log_files.insert(location, content);
        }
        let signed = signer
            .sign_digest(&DigestDraft {
                aws_account_id: "123456789012".into(),
                digest_start_time: from,
                digest_end_time: until,
                location: S3Location::new(BUCKET, digest_key(until)),
                previous: previous.take(),
                log_files: listed,
            })
            .unwrap();
        previous = Some(signed.as_previous());
        digests.push((
            signed.digest.location.clone(),
            signed.content,
            signed.signature,
        ));
    }
    Trail {
        digests,
        log_files,
        keys,
        due_until: start() + Duration::hours(HOURS as i64),
    }
}

/// Walks the trail as `orgtrail verify` does: digests newest first, listed log files hashed,
/// the present ones given at the end.
fn walk(trail: &Trail) -> VerificationReport {
    let mut walk = ChainWalk::new(layout(), trail.keys.clone());
    for (location, content, signature) in trail.digests.iter().rev() {
        let to_check = walk.accept_digest(DigestRead {
            location: location.clone(),
            content: Some(content.clone()),
            metadata_signature: Some(signature.clone()),
        });
        for log_file in to_check {
            let read = match trail.log_files.get(&log_file) {
                Some(content) => LogFileRead::Hashed(Sha256Hash::of(content)),
                None => LogFileRead::Missing,
            };
            walk.accept_log_file(&log_file, read);
        }
    }
    walk.finish(trail.log_files.keys().cloned(), start(), trail.due_until)
}

fn kinds(report: &VerificationReport) -> Vec<(&'static str, String)> {
    report
        .problems
        .iter()
        .map(|problem| (problem.kind(), problem.location().key.clone()))
        .collect()
}

#[test]
fn an_intact_trail_verifies_clean() {
    let report = walk(&trail());
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.digests_verified(), HOURS);
    assert_eq!(report.log_files_with(LogFileStatus::Verified), HOURS * 2);
    assert!(report.digests.last().unwrap().starting);
}

#[test]
fn a_modified_log_file_is_named_with_its_digest() {
    let mut trail = trail();
    let (location, content) = trail.log_files.iter_mut().nth(3).unwrap();
    content[3] ^= 1;
    let location = location.clone();
    let report = walk(&trail);
    assert_eq!(
        kinds(&report),
        [("log_file_modified", location.key.clone())]
    );
    assert!(report.problems[0]
        .to_string()
        .contains(&location.to_string()));
}

#[test]
fn a_deleted_log_file_is_missing_and_an_added_one_unlisted() {
    let mut trail = trail();
    let deleted = trail.log_files.keys().nth(4).unwrap().clone();
    trail.log_files.remove(&deleted);
    let added = S3Location::new(BUCKET, log_key(start() + Duration::minutes(95), 99));
    trail
        .log_files
        .insert(added.clone(), b"{\"Records\":[]}".to_vec());
    let report = walk(&trail);
    let mut found = kinds(&report);
    found.sort();
    assert_eq!(
        found,
        [
            ("log_file_missing", deleted.key.clone()),
            ("log_file_unlisted", added.key.clone())
        ]
    );
}

#[test]
fn a_log_file_after_the_newest_digest_is_not_yet_covered() {
    let mut trail = trail();
    let late = S3Location::new(
        BUCKET,
        log_key(
            start() + Duration::hours(HOURS as i64) + Duration::minutes(5),
            98,
        ),
    );
    trail.log_files.insert(late.clone(), b"{}".to_vec());
    let report = walk(&trail);
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.log_files_with(LogFileStatus::NotYetCovered), 1);
}

#[test]
fn one_deleted_digest_is_named_by_the_chain() {
    let mut trail = trail();
    let (deleted, _, _) = trail.digests.remove(2);
    let report = walk(&trail);
    assert_eq!(kinds(&report), [("digest_missing", deleted.key.clone())]);
    assert_eq!(report.log_files_with(LogFileStatus::Unverifiable), 2);
}

#[test]
fn two_consecutive_deleted_digests_are_both_named() {
    let mut trail = trail();
    let (first, _, _) = trail.digests.remove(3);
    let (second, _, _) = trail.digests.remove(2);
    let report = walk(&trail);
    assert_eq!(
        kinds(&report),
        [
            ("digest_missing", first.key.clone()),
            ("digest_missing", second.key.clone())
        ]
    );
    assert!(matches!(
        report.problems[1],
        Problem::DigestMissing { inferred: true, .. }
    ));
    // Their log files are listed by no digest read: unverifiable, not unlisted.
    assert_eq!(
        report.log_files_with(LogFileStatus::Verified),
        (HOURS - 2) * 2
    );
    assert_eq!(report.log_files_with(LogFileStatus::Unverifiable), 4);
}

#[test]
fn the_oldest_digest_deleted_is_missing_when_the_listing_reached_its_hour() {
    let mut trail = trail();
    let (deleted, _, _) = trail.digests.remove(0);
    let report = walk(&trail);
    assert_eq!(kinds(&report), [("digest_missing", deleted.key.clone())]);
}

#[test]
fn a_digest_re_signed_with_another_key_has_a_bad_signature() {
    let mut trail = trail();
    let other = DigestSigner::from_pem(OTHER_KEY).unwrap();
    let (location, content, signature) = &mut trail.digests[2];
    *signature = other.sign(b"anything").unwrap();
    let location = location.clone();
    let _ = content;
    let report = walk(&trail);
    assert_eq!(
        kinds(&report),
        [("digest_bad_signature", location.key.clone())]
    );
    // The newest has only its own signature.
    let mut trail = self::trail();
    let newest = trail.digests.last_mut().unwrap();
    newest.2 = other.sign(b"anything").unwrap();
    let report = walk(&trail);
    assert_eq!(
        kinds(&report),
        [("digest_bad_signature", newest_key(&trail))]
    );
}

fn newest_key(trail: &Trail) -> String {
    trail.digests.last().unwrap().0.key.clone()
}

#[test]
fn a_changed_digest_breaks_the_chain_and_its_signature() {
    let mut trail = trail();
    let (location, content, _) = &mut trail.digests[1];
    let text = String::from_utf8(content.clone()).unwrap();
    *content = text.replacen("SHA-256\"", "SHA-256\" ", 1).into_bytes();
    let location = location.clone();
    let report = walk(&trail);
    let found = kinds(&report);
    assert!(
        found.contains(&("chain_broken", location.key.clone())),
        "{found:?}"
    );
    assert!(
        found.contains(&("digest_bad_signature", location.key.clone())),
        "{found:?}"
    );
}

#[test]
fn a_digest_signed_with_an_unknown_key_is_said_so() {
    let mut trail = trail();
    trail.keys = PublicKeys::new();
    let report = walk(&trail);
    assert_eq!(report.problems.len(), HOURS);
    assert!(report
        .problems
        .iter()
        .all(|problem| problem.kind() == "digest_unknown_key"));
}

#[test]
fn a_digest_moved_to_another_key_is_reported_where_it_is() {
    let mut trail = trail();
    let original = trail.digests[2].0.clone();
    let moved = S3Location::new(
        BUCKET,
        original
            .key
            .replace("_my_trail_", "_my_trail_x_")
            .replace("07Z", "08Z"),
    );
    trail.digests[2].0 = moved.clone();
    let report = walk(&trail);
    assert_eq!(kinds(&report), [("digest_moved", moved.key.clone())]);
    assert!(report.problems[0].to_string().contains(&original.key));
}

#[test]
fn a_gap_between_linked_digests_is_reported() {
    // A newer digest whose start is not the older one's end: signed so, with a valid link.
    let signer = DigestSigner::from_pem(TEST_KEY).unwrap();
    let mut keys = PublicKeys::new();
    keys.insert(signer.public_key(None, None));
    let first_end = start() + Duration::hours(1);
    let first = signer
        .sign_digest(&DigestDraft {
            aws_account_id: "123456789012".into(),
            digest_start_time: start(),
            digest_end_time: first_end,
            location: S3Location::new(BUCKET, digest_key(first_end)),
            previous: None,
            log_files: Vec::new(),
        })
        .unwrap();
    let second_end = start() + Duration::hours(3);
    let second = signer
        .sign_digest(&DigestDraft {
            aws_account_id: "123456789012".into(),
            digest_start_time: start() + Duration::hours(2),
            digest_end_time: second_end,
            location: S3Location::new(BUCKET, digest_key(second_end)),
            previous: Some(first.as_previous()),
            log_files: Vec::new(),
        })
        .unwrap();
    let trail = Trail {
        digests: vec![
            (
                first.digest.location.clone(),
                first.content,
                first.signature,
            ),
            (
                second.digest.location.clone(),
                second.content,
                second.signature,
            ),
        ],
        log_files: BTreeMap::new(),
        keys,
        due_until: second_end,
    };
    let report = walk(&trail);
    assert_eq!(kinds(&report), [("gap", first.digest.location.key.clone())]);
}

#[test]
fn a_malformed_or_vanished_digest_is_reported() {
    let mut trail = trail();
    trail.digests[4].1 = b"{\"awsAccountId\":\"123456789012\"}".to_vec();
    let report = walk(&trail);
    assert_eq!(report.problems[0].kind(), "digest_malformed");
    assert!(report.problems[0].to_string().contains("digestStartTime"));
    // Its log files are unverifiable, not unlisted; the digest before has its own signature.
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.log_files_with(LogFileStatus::Unverifiable), 2);

    let trail = self::trail();
    let mut walk = ChainWalk::new(layout(), trail.keys.clone());
    let (location, _, _) = trail.digests.last().unwrap();
    walk.accept_digest(DigestRead {
        location: location.clone(),
        content: None,
        metadata_signature: None,
    });
    let report = walk.finish(Vec::new(), start(), start());
    assert_eq!(kinds(&report), [("digest_missing", location.key.clone())]);
}

#[test]
fn digest_keys_are_taken_apart_by_the_layout() {
    let key = layout().parse_digest_key(&digest_key(start())).unwrap();
    assert_eq!(key.trail_name, "my_trail");
    assert_eq!(key.home_region, "us-east-1");
    assert_eq!(key.end_time, start());
    assert_eq!(layout().digest_key_at(&key, start()), digest_key(start()));
    assert!(layout().parse_digest_key(&log_key(start(), 1)).is_none());
    assert_eq!(
        layout().log_file_delivery_time(&log_key(start(), 1)),
        Some(Utc.with_ymd_and_hms(2024, 3, 1, 22, 15, 0).unwrap())
    );
    assert!(layout().digest_start_after(start()) < digest_key(start()));
    assert!(layout().log_file_start_after(start()) < log_key(start(), 1));
}

#[test]
fn the_newest_digests_deleted_are_found_by_the_hours_due() {
    let mut trail = trail();
    let newest = trail.digests.pop().unwrap().0;
    let next = trail.digests.pop().unwrap().0;
    let report = walk(&trail);
    let mut found = kinds(&report);
    found.sort();
    let mut expected = vec![
        ("digest_missing", newest.key.clone()),
        ("digest_missing", next.key.clone()),
    ];
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(report.log_files_with(LogFileStatus::Unverifiable), 4);
}
