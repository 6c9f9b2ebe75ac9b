//! Sources: the services collectors use to read S3 without state of their own (what is new,
//! where to resume listing, who reads which source) and the status operators read.

use orgtrail_domain::parse_cloudtrail_key;

use orgtrail_service_runtime::SharedClock;

use crate::store::{
    IntegrityReport, IntegrityState, ListedFile, PgStore, RecordedIntegrity, SourceLease,
    SourceOutcome, SourceReport, SourceStatusRow, StoreError,
};

/// Files or prefixes per request at most.
pub const MAX_ITEMS_PER_REQUEST: usize = 10_000;
/// A log file's integrity as a collector reports it (`missing`: gone from its bucket).
pub const LOG_FILE_STATUSES: [&str; 6] = [
    "verified",
    "not_yet_covered",
    "modified",
    "missing",
    "unlisted",
    "unverifiable",
];
/// The problems digest validation reports (`orgtrail_integrity::Problem::kind`).
pub const PROBLEM_KINDS: [&str; 10] = [
    "log_file_modified",
    "log_file_missing",
    "log_file_unlisted",
    "digest_missing",
    "digest_malformed",
    "digest_bad_signature",
    "digest_unknown_key",
    "digest_moved",
    "chain_broken",
    "gap",
];
/// Lease lengths accepted.
pub const LEASE_SECONDS: std::ops::RangeInclusive<u32> = 5..=3600;

#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error("{what} has {count} items, over the limit of {MAX_ITEMS_PER_REQUEST}")]
    TooMany { what: &'static str, count: usize },
    #[error("lease_seconds {0} is outside 5 to 3600")]
    InvalidLeaseSeconds(u32),
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read or write source state")]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct SourceRegistry {
    store: PgStore,
    /// When integrity findings are raised.
    clock: SharedClock,
}

impl SourceRegistry {
    pub fn new(store: PgStore, clock: SharedClock) -> SourceRegistry {
        SourceRegistry { store, clock }
    }

    pub async fn filter_new_files(
        &self,
        files: Vec<ListedFile>,
    ) -> Result<Vec<ListedFile>, SourcesError> {
        if files.len() > MAX_ITEMS_PER_REQUEST {
            return Err(SourcesError::TooMany {
                what: "files",
                count: files.len(),
            });
        }
        Ok(self.store.filter_new_files(&files).await?)
    }

    /// The newest key the ledger holds under each prefix (`None` where it holds none).
    pub async fn checkpoints(
        &self,
        bucket: &str,
        prefixes: Vec<String>,
    ) -> Result<Vec<(String, Option<String>)>, SourcesError> {
        if prefixes.len() > MAX_ITEMS_PER_REQUEST {
            return Err(SourcesError::TooMany {
                what: "prefixes",
                count: prefixes.len(),
            });
        }
        let mut checkpoints = Vec::with_capacity(prefixes.len());
        for prefix in prefixes {
            let newest = self.store.newest_key_under(bucket, &prefix).await?;
            checkpoints.push((prefix, newest));
        }
        Ok(checkpoints)
    }

    pub async fn acquire_lease(
        &self,
        source: &str,
        holder: &str,
        lease_seconds: u32,
    ) -> Result<SourceLease, SourcesError> {
        if source.is_empty() {
            return Err(SourcesError::Empty("source"));
        }
        if holder.is_empty() {
            return Err(SourcesError::Empty("holder"));
        }
        if !LEASE_SECONDS.contains(&lease_seconds) {
            return Err(SourcesError::InvalidLeaseSeconds(lease_seconds));
        }
        Ok(self
            .store
            .acquire_source_lease(source, holder, lease_seconds)
            .await?)
    }

    pub async fn release_lease(&self, source: &str, holder: &str) -> Result<bool, SourcesError> {
        Ok(self.store.release_source_lease(source, holder).await?)
    }

    /// Records a collector's report; a success's delivery time comes from its newest key.
    pub async fn report(&self, report: ReportedOutcome) -> Result<(), SourcesError> {
        if report.source.is_empty() {
            return Err(SourcesError::Empty("source"));
        }
        let outcome = match report.error {
            Some(error) => SourceOutcome::Failure { error },
            None => SourceOutcome::Success {
                files_taken: report.files_taken,
                newest_delivery_time: report
                    .newest_object_key
                    .as_deref()
                    .and_then(parse_cloudtrail_key)
                    .and_then(|key| key.delivery_time()),
                newest_object_key: report.newest_object_key,
            },
        };
        self.store
            .record_source_report(&SourceReport {
                source: report.source,
                account_id: report.account_id,
                aws_region: report.aws_region,
                collector: report.collector,
                outcome,
            })
            .await?;
        Ok(())
    }

    /// Where validation of an account and region stands, and the ledger's hashes of `files`.
    pub async fn integrity_state(
        &self,
        source: &str,
        bucket: &str,
        account_id: &str,
        aws_region: &str,
        files: Vec<(String, String)>,
    ) -> Result<IntegrityState, SourcesError> {
        if files.len() > MAX_ITEMS_PER_REQUEST {
            return Err(SourcesError::TooMany {
                what: "files",
                count: files.len(),
            });
        }
        for (value, what) in [(source, "source"), (bucket, "bucket")] {
            if value.is_empty() {
                return Err(SourcesError::Empty(what));
            }
        }
        Ok(self
            .store
            .integrity_state(source, bucket, account_id, aws_region, &files)
            .await?)
    }

    /// Records a collector's validation of an account and region.
    pub async fn record_integrity(
        &self,
        report: IntegrityReport,
    ) -> Result<RecordedIntegrity, SourcesError> {
        for (count, what) in [
            (report.log_files.len(), "log_files"),
            (report.problems.len(), "problems"),
        ] {
            if count > MAX_ITEMS_PER_REQUEST {
                return Err(SourcesError::TooMany { what, count });
            }
        }
        for (value, what) in [
            (&report.source, "source"),
            (&report.bucket, "bucket"),
            (&report.account_id, "account_id"),
            (&report.aws_region, "aws_region"),
        ] {
            if value.is_empty() {
                return Err(SourcesError::Empty(what));
            }
        }
        if let Some(file) = report
            .log_files
            .iter()
            .find(|file| !LOG_FILE_STATUSES.contains(&file.status.as_str()))
        {
            return Err(SourcesError::Invalid(format!(
                "log file {} has status {:?}; expected one of {}",
                file.object_key,
                file.status,
                LOG_FILE_STATUSES.join(", ")
            )));
        }
        if let Some(problem) = report
            .problems
            .iter()
            .find(|problem| !PROBLEM_KINDS.contains(&problem.kind.as_str()))
        {
            return Err(SourcesError::Invalid(format!(
                "problem kind {:?} is not one of {}",
                problem.kind,
                PROBLEM_KINDS.join(", ")
            )));
        }
        Ok(self
            .store
            .record_integrity(&report, self.clock.now())
            .await?)
    }

    pub async fn list(&self) -> Result<Vec<SourceStatusRow>, SourcesError> {
        Ok(self.store.list_source_status().await?)
    }
}

/// A collector's report as sent.
#[derive(Clone, Debug)]
pub struct ReportedOutcome {
    pub source: String,
    pub account_id: String,
    pub aws_region: String,
    pub collector: String,
    pub error: Option<String>,
    pub files_taken: u32,
    pub newest_object_key: Option<String>,
}
