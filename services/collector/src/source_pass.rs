//! One pass over one source: assume its role, find its accounts and regions, list each region
//! folder from where the ledger says it left off, ask the aggregator which files are new, and
//! stream those. A failure of one account and region is kept to it; the rest go on.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use orgtrail_api::v1 as pb;
use orgtrail_client::{FileOutcome, LogFileOrigin, LogFileReader};
use tokio_util::sync::CancellationToken;

use crate::aggregator_client::AggregatorClient;
use crate::aws_access::AwsAccess;
use crate::config::SourceConfig;
use crate::digest_validation::{validate_unit, PublicKeySource, UnitValidation, Validation};
use crate::listing::{discover_units, list_unit, start_after};
use crate::s3_log_file::S3LogFile;
use crate::source_error::SourceError;

/// What a pass needs besides its source.
pub struct PassContext {
    pub aws: Arc<AwsAccess>,
    pub aggregator: AggregatorClient,
    pub trailing_window_days: u32,
    pub streams: usize,
    /// Digest validation after each pass; `None` when off.
    pub public_keys: Option<Arc<PublicKeySource>>,
    pub hash_concurrency: usize,
}

/// Counts of one pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassCounts {
    pub files_listed: usize,
    pub files_new: usize,
    pub committed: usize,
    pub already_ingested: usize,
    pub events_stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub faults: usize,
}

/// The outcome of one account and region of a source in a pass.
#[derive(Clone, Debug, Default)]
pub struct RegionOutcome {
    pub files_taken: u32,
    /// The newest key the ledger holds for it (the last file taken).
    pub newest_key: Option<String>,
    pub errors: Vec<String>,
    /// Digest validation, when the trail writes digests there.
    pub integrity: Option<UnitValidation>,
}

/// How a visit to a source ended.
#[derive(Debug)]
pub enum SourceOutcome {
    Read(SourcePassReport),
    Failed(SourceError),
    /// Another collector holds the source's lease.
    LeasedElsewhere(String),
}

#[derive(Clone, Debug, Default)]
pub struct SourcePassReport {
    pub counts: PassCounts,
    /// By (account, region).
    pub regions: BTreeMap<(String, String), RegionOutcome>,
}

impl SourcePassReport {
    pub fn errors(&self) -> impl Iterator<Item = String> + '_ {
        self.regions
            .iter()
            .flat_map(|((account, region), outcome)| {
                outcome
                    .errors
                    .iter()
                    .map(move |error| format!("{account} {region}: {error}"))
            })
    }
}

pub async fn read_source(
    context: &PassContext,
    source: &SourceConfig,
    cancel: &CancellationToken,
) -> Result<SourcePassReport, SourceError> {
    let s3 = context.aws.s3_for(source).await?;
    let units = discover_units(&s3, source).await?;
    let checkpoints = context
        .aggregator
        .checkpoints(
            &source.bucket,
            units.iter().map(|unit| unit.prefix.clone()).collect(),
        )
        .await?;

    let mut report = SourcePassReport::default();
    let mut listed_keys: HashMap<String, ListedKey> = HashMap::new();
    let mut listed: Vec<pb::StoredFile> = Vec::new();
    for (unit, checkpoint) in units.iter().zip(&checkpoints) {
        if cancel.is_cancelled() {
            return Err(SourceError::Cancelled);
        }
        let region_key = (unit.account_id.clone(), unit.region.clone());
        let outcome = report.regions.entry(region_key.clone()).or_default();
        if checkpoint.as_ref() > outcome.newest_key.as_ref() {
            outcome.newest_key = checkpoint.clone();
        }
        let start = start_after(
            unit,
            checkpoint.as_deref(),
            context.trailing_window_days,
            source.since,
        );
        match list_unit(&s3, &source.bucket, unit, start.as_deref()).await {
            Ok(objects) => {
                for object in objects {
                    listed_keys.insert(
                        object.key.clone(),
                        ListedKey {
                            unit: region_key.clone(),
                            last_modified: object.last_modified,
                        },
                    );
                    listed.push(pb::StoredFile {
                        bucket: source.bucket.clone(),
                        object_key: object.key,
                        etag: object.etag,
                    });
                }
            }
            Err(error) => {
                tracing::warn!(source = %source.name, prefix = %unit.prefix, %error, "cannot list");
                outcome.errors.push(error.to_string());
            }
        }
    }
    report.counts.files_listed = listed.len();

    let new_files = context.aggregator.filter_new_files(listed).await?;
    report.counts.files_new = new_files.len();
    if !new_files.is_empty() {
        send_files(
            context,
            source,
            &s3,
            new_files,
            &listed_keys,
            &mut report,
            cancel,
        )
        .await?;
    }
    if let Some(public_keys) = &context.public_keys {
        let validation = Validation {
            aws: &context.aws,
            aggregator: &context.aggregator,
            public_keys,
            hash_concurrency: context.hash_concurrency,
        };
        let now = Utc::now();
        for unit in &units {
            if cancel.is_cancelled() {
                return Err(SourceError::Cancelled);
            }
            let outcome = report
                .regions
                .entry((unit.account_id.clone(), unit.region.clone()))
                .or_default();
            match validate_unit(&validation, source, &s3, unit, now).await {
                Ok(Some(validated)) => outcome.integrity = Some(validated),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(source = %source.name, prefix = %unit.prefix, error = %format!("{error:#}"), "cannot validate digests");
                    outcome.errors.push(format!("digest validation: {error:#}"));
                }
            }
        }
    }
    Ok(report)
}

/// What the listing said of a key: its account and region, and when S3 created it (sent
/// with the file, for the freshness figure).
struct ListedKey {
    unit: (String, String),
    last_modified: Option<DateTime<Utc>>,
}

/// Streams the new files to the aggregator, counting their outcomes into `report`.
async fn send_files(
    context: &PassContext,
    source: &SourceConfig,
    s3: &crate::aws_access::SourceS3,
    new_files: Vec<pb::StoredFile>,
    listed_keys: &HashMap<String, ListedKey>,
    report: &mut SourcePassReport,
    cancel: &CancellationToken,
) -> Result<(), SourceError> {
    let runtime = tokio::runtime::Handle::current();
    let readers: Vec<Arc<dyn LogFileReader>> = new_files
        .into_iter()
        .map(|file| {
            let origin = LogFileOrigin {
                source: source.name.clone(),
                bucket: file.bucket,
                last_modified: listed_keys
                    .get(&file.object_key)
                    .and_then(|listed| listed.last_modified),
                object_key: file.object_key,
                etag: file.etag,
            };
            Arc::new(S3LogFile::new(origin, s3.clone(), runtime.clone())) as Arc<dyn LogFileReader>
        })
        .collect();
    let sender = context.aggregator.ingest_sender(context.streams).await?;
    let mut undelivered: HashMap<(String, String), (usize, String)> = HashMap::new();
    sender
        .send_files_until(readers, cancel, |result| {
            let region_key = listed_keys
                .get(&result.origin.object_key)
                .map(|listed| listed.unit.clone())
                .unwrap_or_default();
            match result.result {
                Ok(file) => {
                    let counts = &mut report.counts;
                    match file.outcome {
                        FileOutcome::Committed => counts.committed += 1,
                        FileOutcome::AlreadyIngested => counts.already_ingested += 1,
                    }
                    counts.events_stored += u64::from(file.accepted);
                    counts.duplicates += u64::from(file.duplicates);
                    counts.rejected += u64::from(file.rejected);
                    if let Some(fault) = &file.fault {
                        counts.faults += 1;
                        tracing::warn!(file = %result.origin, %fault, "log file fault");
                    }
                    let outcome = report.regions.entry(region_key).or_default();
                    outcome.files_taken += 1;
                    if Some(&result.origin.object_key) > outcome.newest_key.as_ref() {
                        outcome.newest_key = Some(result.origin.object_key);
                    }
                }
                Err(error) => {
                    let message = orgtrail_client::error_chain(&error);
                    tracing::warn!(file = %result.origin, error = %message, "log file not delivered");
                    let entry = undelivered.entry(region_key).or_insert((0, format!("{}: {message}", result.origin.object_key)));
                    entry.0 += 1;
                }
            }
        })
        .await;
    for (region_key, (count, first)) in undelivered {
        report
            .regions
            .entry(region_key)
            .or_default()
            .errors
            .push(format!("{count} files not delivered; the first: {first}"));
    }
    if cancel.is_cancelled() {
        return Err(SourceError::Cancelled);
    }
    Ok(())
}
