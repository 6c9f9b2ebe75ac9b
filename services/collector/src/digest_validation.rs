//! Digest validation of a source, after its log files are taken: for each account and region
//! whose trail writes digests, the digests from the newest one the last validation read (read
//! again, so the newer ones link to it) to now go through `orgtrail_integrity`'s chain walk,
//! newest first; each log file they list is checked with the SHA-256 the ledger holds for the
//! version present (read from S3 only when the ledger has none); the log files present are
//! listed to find those no digest lists. Each file's status, the problems and the progress go
//! to the aggregator, which keeps them in the ledger, raises the problems as findings and
//! moves the events of a modified log file to the quarantine.
//!
//! A log file deleted from its bucket after orgtrail stored it is reported missing, and its
//! stored copy is still checked against the digest with the ledger's hash.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use orgtrail_api::v1 as pb;
use orgtrail_domain::LogFileKind;
use orgtrail_integrity::{
    ChainWalk, CloudTrailLayout, KeyLayout, LogFileRead, LogFileStatus, Problem, PublicKeys,
    S3Location, Sha256Hash, VerificationReport,
};
use orgtrail_trail_s3::{hash_log_files, list_public_keys, read_chain, trails_of, TrailS3};
use tokio::sync::Mutex;

use crate::aggregator_client::{AggregatorClient, IntegrityScope};
use crate::aws_access::{AwsAccess, SourceS3};
use crate::config::SourceConfig;
use crate::listing::ListingUnit;

/// Where CloudTrail's public keys come from.
pub enum PublicKeySource {
    /// A file of them, read at start.
    File(PublicKeys),
    /// `ListPublicKeys` per region, cached with the time they were asked up to.
    ListPublicKeys(Mutex<HashMap<String, (PublicKeys, DateTime<Utc>)>>),
}

impl PublicKeySource {
    /// The file's keys when one was given, else CloudTrail's.
    pub fn new(file: Option<PublicKeys>) -> PublicKeySource {
        match file {
            Some(keys) => PublicKeySource::File(keys),
            None => PublicKeySource::ListPublicKeys(Mutex::new(HashMap::new())),
        }
    }

    /// The keys valid over `[from, until]` in `region`.
    async fn keys_for(
        &self,
        aws: &AwsAccess,
        region: &str,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<PublicKeys> {
        match self {
            PublicKeySource::File(keys) => Ok(keys.clone()),
            PublicKeySource::ListPublicKeys(cache) => {
                let mut cache = cache.lock().await;
                if let Some((keys, asked_until)) = cache.get(region) {
                    if *asked_until >= until {
                        return Ok(keys.clone());
                    }
                }
                // A key in use is valid over the whole window; asking from the window's start
                // each time keeps the keys of older digests too.
                let keys = list_public_keys(&aws.cloudtrail_in(region), from, until).await?;
                cache.insert(region.to_string(), (keys.clone(), until));
                Ok(keys)
            }
        }
    }
}

/// What validation needs besides a source.
pub struct Validation<'a> {
    pub aws: &'a AwsAccess,
    pub aggregator: &'a AggregatorClient,
    pub public_keys: &'a Arc<PublicKeySource>,
    pub hash_concurrency: usize,
}

/// The outcome of validating one account and region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnitValidation {
    pub digests_read: usize,
    pub digests_verified: usize,
    /// Log files per status.
    pub log_files: BTreeMap<String, usize>,
    /// Log files read from S3 to hash them (the rest from the ledger).
    pub hashed_from_s3: usize,
    pub problems: Vec<String>,
    pub findings_raised: u32,
    pub events_quarantined: u64,
}

/// Validates one account and region (a log-file unit); `None` when its trail writes no digests
/// there.
pub async fn validate_unit(
    validation: &Validation<'_>,
    source: &SourceConfig,
    s3: &SourceS3,
    unit: &ListingUnit,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<UnitValidation>> {
    if unit.kind != LogFileKind::Log {
        return Ok(None);
    }
    let trail_s3 = TrailS3::new(s3.client.clone());
    let layout = CloudTrailLayout {
        prefix: source.prefix.clone(),
        organization_id: unit.organization_id.clone(),
        account_id: unit.account_id.clone(),
        region: unit.region.clone(),
    };
    let scope = IntegrityScope {
        source: &source.name,
        bucket: &source.bucket,
        account_id: &unit.account_id,
        aws_region: &unit.region,
    };
    let checkpoint = validation
        .aggregator
        .integrity_state(&scope, &[])
        .await?
        .digest;
    let from = match &checkpoint {
        Some((_, end_time)) => *end_time,
        None => source
            .since
            .map(|day| day.and_time(chrono::NaiveTime::MIN).and_utc())
            .unwrap_or(DateTime::UNIX_EPOCH),
    };
    let mut digest_keys = trail_s3
        .list_digest_keys(&source.bucket, &layout, from, now)
        .await?;
    match &source.trail {
        Some(trail) => digest_keys.retain(|key| &key.trail_name == trail),
        None if trails_of(&digest_keys).len() > 1 => anyhow::bail!(
            "digests of several trails are delivered to s3://{}/{} ({}): name the source's trail",
            source.bucket,
            layout.digest_prefix(),
            trails_of(&digest_keys).join(", ")
        ),
        None => {}
    }
    if digest_keys.is_empty() && checkpoint.is_none() {
        return Ok(None);
    }
    let public_keys = validation
        .public_keys
        .keys_for(validation.aws, &unit.region, from, now)
        .await?;
    let mut walk = ChainWalk::new(layout.clone(), public_keys);
    let to_hash = read_chain(&trail_s3, &mut walk, &source.bucket, &digest_keys).await?;
    let (covered_from, _) = walk.coverage().unwrap_or((from, now));
    let present: HashMap<String, String> = trail_s3
        .list_log_files(&source.bucket, &layout, covered_from.min(from), now)
        .await?
        .into_iter()
        .map(|listed| (listed.key, listed.etag))
        .collect();

    // The ledger's hash of each listed file present (of its version there), or of any version
    // of one that is gone.
    let asked: Vec<(String, String)> = to_hash
        .iter()
        .map(|location| {
            let etag = present.get(&location.key).cloned().unwrap_or_default();
            (location.key.clone(), etag)
        })
        .collect();
    let ledger: HashMap<String, Sha256Hash> = validation
        .aggregator
        .integrity_state(&scope, &asked)
        .await?
        .hashes
        .into_iter()
        .filter_map(|hash| {
            let bytes: [u8; 32] = hash.content_sha256.try_into().ok()?;
            Some((hash.object_key, Sha256Hash(bytes)))
        })
        .collect();
    let mut deleted_after_storing = Vec::new();
    let mut from_s3 = Vec::new();
    for location in to_hash {
        match (
            present.contains_key(&location.key),
            ledger.get(&location.key),
        ) {
            (true, Some(hash)) => walk.accept_log_file(&location, LogFileRead::Hashed(*hash)),
            (false, Some(hash)) => {
                walk.accept_log_file(&location, LogFileRead::Hashed(*hash));
                deleted_after_storing.push(location);
            }
            (false, None) => walk.accept_log_file(&location, LogFileRead::Missing),
            (true, None) => from_s3.push(location),
        }
    }
    let hashed_from_s3 = from_s3.len();
    let hashes = hash_log_files(from_s3, validation.hash_concurrency, |location| async {
        let read = trail_s3.hash_log_file(&location).await;
        read.map(|read| (location, read))
    })
    .await?;
    for (location, read) in hashes {
        walk.accept_log_file(&location, read);
    }
    let present_locations = present
        .keys()
        .map(|key| S3Location::new(source.bucket.clone(), key.clone()));
    // Every digest ending an hour or more ago should be there — up to the newest log file
    // present: a trail whose logging was stopped delivers no more digests (nor log files),
    // and StopLogging is itself an event the CIS alarms watch.
    let newest_delivery = present
        .keys()
        .filter_map(|key| layout.log_file_delivery_time(key))
        .max();
    let due_until = newest_delivery.map_or(from, |newest| newest.min(now - Duration::hours(1)));
    let mut report = walk.finish(present_locations, from, due_until);
    for location in deleted_after_storing {
        let digest = report
            .log_files
            .iter()
            .find(|file| file.location == location)
            .and_then(|file| file.digest.clone())
            .unwrap_or_else(|| location.clone());
        report
            .problems
            .push(Problem::LogFileMissing { location, digest });
    }
    if checkpoint.is_some() && digest_keys.is_empty() {
        if let Some((key, _)) = &checkpoint {
            report.problems.push(Problem::DigestMissing {
                location: S3Location::new(source.bucket.clone(), key.clone()),
                newer_digest: S3Location::new(source.bucket.clone(), key.clone()),
                inferred: false,
            });
        }
    }
    let request = integrity_request(source, unit, &present, &report);
    let answer = validation.aggregator.record_integrity(request).await?;
    let mut outcome = UnitValidation {
        digests_read: report.digests.len(),
        digests_verified: report.digests_verified(),
        hashed_from_s3,
        problems: report.problems.iter().map(Problem::to_string).collect(),
        findings_raised: answer.findings_raised,
        events_quarantined: answer.events_quarantined,
        ..UnitValidation::default()
    };
    for file in &report.log_files {
        *outcome
            .log_files
            .entry(status_name(file.status).to_string())
            .or_default() += 1;
    }
    for problem in &outcome.problems {
        tracing::warn!(source = %source.name, account = %unit.account_id, region = %unit.region, %problem, "integrity problem");
    }
    Ok(Some(outcome))
}

/// The walk's report as the aggregator takes it.
fn integrity_request(
    source: &SourceConfig,
    unit: &ListingUnit,
    present: &HashMap<String, String>,
    report: &VerificationReport,
) -> pb::RecordIntegrityRequest {
    // The newest digest read with a time: where the next validation starts.
    let newest = report.digests.iter().find_map(|digest| {
        digest
            .digest_end_time
            .map(|end_time| (digest.location.key.clone(), end_time))
    });
    let (digest_key, digest_end_time) = match newest {
        Some((key, end_time)) => (key, Some(prost_timestamp(end_time))),
        None => (String::new(), None),
    };
    pb::RecordIntegrityRequest {
        source: source.name.clone(),
        bucket: source.bucket.clone(),
        account_id: unit.account_id.clone(),
        aws_region: unit.region.clone(),
        collector: String::new(),
        digest_key,
        digest_end_time,
        digests_read: u32::try_from(report.digests.len()).unwrap_or(u32::MAX),
        digests_verified: u32::try_from(report.digests_verified()).unwrap_or(u32::MAX),
        log_files: report
            .log_files
            .iter()
            .filter(|file| file.status != LogFileStatus::Unchecked)
            .map(|file| pb::LogFileIntegrity {
                object_key: file.location.key.clone(),
                etag: present.get(&file.location.key).cloned().unwrap_or_default(),
                status: status_name(file.status).to_string(),
                digest_key: file
                    .digest
                    .as_ref()
                    .map(|digest| digest.key.clone())
                    .unwrap_or_default(),
            })
            .collect(),
        problems: report
            .problems
            .iter()
            .map(|problem| pb::IntegrityProblem {
                kind: problem.kind().to_string(),
                bucket: problem.location().bucket.clone(),
                object_key: problem.location().key.clone(),
                message: problem.to_string(),
            })
            .collect(),
    }
}

fn status_name(status: LogFileStatus) -> &'static str {
    match status {
        LogFileStatus::Verified => "verified",
        LogFileStatus::Modified => "modified",
        LogFileStatus::Missing => "missing",
        LogFileStatus::Unlisted => "unlisted",
        LogFileStatus::NotYetCovered => "not_yet_covered",
        LogFileStatus::Unverifiable => "unverifiable",
        LogFileStatus::Unchecked => "unchecked",
    }
}

fn prost_timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}
