//! Ingest: log files arrive as a stream of record batches and each is committed — its new
//! events and its ledger row — in one transaction, then answered.
//!
//! Invariants: a file is stored whole or not at all (a stream that breaks mid-file rolls the
//! file back); a file whose ledger row exists stores nothing; an eventID is stored once; the
//! answer is sent only after the commit, so a sender that retries after any failure is safe.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use orgtrail_domain::{
    parse_cloudtrail_key, parse_record_bytes, CloudTrailEvent, CloudTrailKey, LogFileOrigin,
    RecordError,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::detection::{Detectors, FileDetections};
use crate::store::{
    self, Encryption, FileCounts, FileTransaction, LedgerEntry, NewLogFile, PgStore,
    QuarantineItem, QuarantineOrigin, RollupDelta, StoreError,
};

/// One record as sent: its index in the file and its text.
#[derive(Clone, Debug)]
pub struct RawRecord {
    pub index: u32,
    pub json: Vec<u8>,
}

/// One message of an ingest stream.
#[derive(Clone, Debug)]
pub struct FileChunk {
    pub file_seq: u64,
    /// Present on the first message of a file.
    pub origin: Option<LogFileOrigin>,
    pub records: Vec<RawRecord>,
    /// Records the sender rejected while reading.
    pub rejections: Vec<(u32, String)>,
    /// Present on the last message of a file.
    pub end: Option<FileEnd>,
}

#[derive(Clone, Debug)]
pub struct FileEnd {
    pub records_read: u32,
    pub fault: Option<String>,
    /// SHA-256 of the file's uncompressed content, when the sender read it whole (kept in the
    /// ledger: what a CloudTrail digest's `hashValue` for the file must be).
    pub content_sha256: Option<[u8; 32]>,
}

/// The answer for one file.
#[derive(Clone, Debug)]
pub struct FileReport {
    pub file_seq: u64,
    pub origin: LogFileOrigin,
    pub outcome: FileOutcome,
    pub accepted: u32,
    pub duplicates: u32,
    pub rejected: u32,
    /// The first [`MAX_REPORTED_REJECTIONS`] rejections, by index.
    pub rejections: Vec<(u32, String)>,
    pub fault: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileOutcome {
    Committed,
    AlreadyIngested { first_committed_at: DateTime<Utc> },
}

/// How many rejections an answer lists (the count is always exact).
pub const MAX_REPORTED_REJECTIONS: usize = 1000;

/// The limits senders must respect.
#[derive(Clone, Copy, Debug)]
pub struct IngestLimits {
    pub max_request_bytes: usize,
    pub max_record_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("file {file_seq} starts without its origin")]
    MissingOrigin { file_seq: u64 },
    #[error("file {started} started before file {open} ended")]
    InterleavedFiles { open: u64, started: u64 },
    #[error("the ingest service is closed")]
    Closed,
    #[error("cannot store {origin}")]
    Store {
        origin: String,
        #[source]
        source: StoreError,
    },
}

impl IngestError {
    pub fn is_retryable(&self) -> bool {
        match self {
            IngestError::Store { source, .. } => source.is_retryable(),
            IngestError::Closed => true,
            IngestError::MissingOrigin { .. } | IngestError::InterleavedFiles { .. } => false,
        }
    }
}

/// Takes log files into the store.
#[derive(Clone)]
pub struct IngestService {
    store: PgStore,
    limits: IngestLimits,
    /// Bounds the files in flight (each holds a connection for its transaction).
    file_permits: Arc<Semaphore>,
    /// What every newly stored event passes (the alarms' metric filters).
    detectors: Arc<Detectors>,
    /// Whether files add their events to the rollups (`ingest.rollups`: off only to measure
    /// what the rollups cost).
    maintain_rollups: bool,
}

impl IngestService {
    pub fn new(
        store: PgStore,
        limits: IngestLimits,
        max_concurrent_files: usize,
        detectors: Detectors,
        maintain_rollups: bool,
    ) -> IngestService {
        IngestService {
            store,
            limits,
            file_permits: Arc::new(Semaphore::new(max_concurrent_files)),
            detectors: Arc::new(detectors),
            maintain_rollups,
        }
    }

    /// Stores one whole file of records made in the process (orgtrail's own Insight events):
    /// the same path as a file sent over the API — the ledger, dedupe, detectors, rollups.
    pub async fn ingest_records(
        &self,
        origin: LogFileOrigin,
        records: Vec<Vec<u8>>,
    ) -> Result<FileReport, IngestError> {
        let records_read = u32::try_from(records.len()).unwrap_or(u32::MAX);
        let chunk = FileChunk {
            file_seq: 0,
            origin: Some(origin.clone()),
            records: records
                .into_iter()
                .enumerate()
                .map(|(index, json)| RawRecord {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    json,
                })
                .collect(),
            rejections: Vec::new(),
            end: Some(FileEnd {
                records_read,
                fault: None,
                content_sha256: None,
            }),
        };
        let mut stream = IngestStream::new(self.clone());
        match stream.accept(chunk).await? {
            Some(report) => Ok(report),
            // A chunk with an end always ends its file.
            None => Err(IngestError::MissingOrigin { file_seq: 0 }),
        }
    }

    /// Whether files add their events to the rollups (`ingest.rollups`).
    pub fn keeps_rollups(&self) -> bool {
        self.maintain_rollups
    }

    pub fn limits(&self) -> IngestLimits {
        self.limits
    }

    /// Starts a file: waits for a permit, opens its transaction and takes its ledger row.
    async fn open_file(
        &self,
        file_seq: u64,
        origin: LogFileOrigin,
    ) -> Result<OpenFile, IngestError> {
        let store_error = |source| IngestError::Store {
            origin: origin.to_string(),
            source,
        };
        let permit = Arc::clone(&self.file_permits)
            .acquire_owned()
            .await
            .map_err(|_| IngestError::Closed)?;
        let key = parse_cloudtrail_key(&origin.object_key);
        let mut transaction = self
            .store
            .begin_file_transaction()
            .await
            .map_err(store_error)?;
        let entry = store::take_log_file(
            &mut transaction,
            &NewLogFile {
                source: &origin.source,
                bucket: &origin.bucket,
                object_key: &origin.object_key,
                etag: &origin.etag,
                account_id: key.as_ref().map(|key| key.account_id.as_str()),
                aws_region: key.as_ref().map(|key| key.region.as_str()),
                last_modified: origin.last_modified,
            },
        )
        .await
        .map_err(store_error)?;
        let state = match entry {
            LedgerEntry::Taken { log_file_id } => {
                let detectors = self
                    .detectors
                    .for_file(&mut transaction)
                    .await
                    .map_err(store_error)?;
                OpenFileState::Taking {
                    transaction,
                    log_file_id,
                    seen_event_ids: HashSet::new(),
                    locked_days: HashSet::new(),
                    detections: Box::new(self.detectors.file_detections(detectors)),
                    rollups: self.maintain_rollups.then(Box::default),
                }
            }
            LedgerEntry::AlreadyTaken(previous) => {
                // Nothing of this file will be written: end the transaction now.
                drop(transaction);
                OpenFileState::AlreadyTaken {
                    first_committed_at: previous.committed_at,
                }
            }
        };
        Ok(OpenFile {
            file_seq,
            origin,
            key,
            state,
            counts: FileCounts::default(),
            rejections: Vec::new(),
            quarantined: Vec::new(),
            quarantine_overflow: 0,
            service_cipher: self.store.encryption().cloned(),
            store: self.store.clone(),
            _permit: permit,
        })
    }
}

/// The files of one ingest stream, one after the other.
pub struct IngestStream {
    service: IngestService,
    open_file: Option<OpenFile>,
}

impl IngestStream {
    pub fn new(service: IngestService) -> IngestStream {
        IngestStream {
            service,
            open_file: None,
        }
    }

    pub fn open_file(&self) -> Option<&LogFileOrigin> {
        self.open_file.as_ref().map(|file| &file.origin)
    }

    /// Takes one message; returns the file's report when the message ends a file.
    pub async fn accept(&mut self, chunk: FileChunk) -> Result<Option<FileReport>, IngestError> {
        let mut file = match self.open_file.take() {
            Some(file) if file.file_seq == chunk.file_seq => file,
            Some(file) => {
                return Err(IngestError::InterleavedFiles {
                    open: file.file_seq,
                    started: chunk.file_seq,
                })
            }
            None => {
                let origin = chunk.origin.clone().ok_or(IngestError::MissingOrigin {
                    file_seq: chunk.file_seq,
                })?;
                self.service.open_file(chunk.file_seq, origin).await?
            }
        };
        file.add(&self.service, chunk.records, chunk.rejections)
            .await?;
        match chunk.end {
            Some(end) => file.finish(end).await.map(Some),
            None => {
                self.open_file = Some(file);
                Ok(None)
            }
        }
    }

    /// Rolls back the file in flight, if any.
    pub fn abandon_open_file(&mut self) -> Option<LogFileOrigin> {
        self.open_file.take().map(|file| file.origin)
    }
}

struct OpenFile {
    file_seq: u64,
    origin: LogFileOrigin,
    key: Option<CloudTrailKey>,
    state: OpenFileState,
    counts: FileCounts,
    rejections: Vec<(u32, String)>,
    /// What goes to the quarantine with the file (at most [`MAX_QUARANTINED_PER_FILE`]).
    quarantined: Vec<QuarantineItem>,
    /// Refusals beyond that.
    quarantine_overflow: u32,
    /// Seals the quarantined content.
    service_cipher: Option<Arc<Encryption>>,
    /// Where the rollups' series ids are cached.
    store: PgStore,
    _permit: OwnedSemaphorePermit,
}

/// Refused records kept in the quarantine per file; the rest are counted.
const MAX_QUARANTINED_PER_FILE: usize = 1000;
/// Bytes of a refused record kept in the quarantine.
const QUARANTINE_CONTENT_CAP: usize = 64 * 1024;

enum OpenFileState {
    Taking {
        transaction: FileTransaction,
        log_file_id: i64,
        /// eventIDs of this file so far: a repeat within the file is a duplicate before it
        /// reaches the database.
        seen_event_ids: HashSet<orgtrail_domain::EventId>,
        /// The days whose partitions the transaction has locked (`store::lock_partitions`).
        locked_days: HashSet<chrono::NaiveDate>,
        /// What the file's new events matched, written with them.
        detections: Box<FileDetections>,
        /// The file's new events, counted per series and minute, added to the rollups with them
        /// (`None` when the rollups are not kept).
        rollups: Option<Box<RollupDelta>>,
    },
    AlreadyTaken {
        first_committed_at: DateTime<Utc>,
    },
}

impl OpenFile {
    async fn add(
        &mut self,
        service: &IngestService,
        records: Vec<RawRecord>,
        rejections: Vec<(u32, String)>,
    ) -> Result<(), IngestError> {
        let OpenFileState::Taking {
            transaction,
            log_file_id,
            seen_event_ids,
            locked_days,
            detections,
            rollups,
        } = &mut self.state
        else {
            self.counts.duplicates += u32::try_from(records.len()).unwrap_or(u32::MAX);
            return Ok(());
        };
        // (index, reason, size, what of it is kept)
        let mut rejected: Vec<(u32, String, usize, Option<Vec<u8>>)> = rejections
            .into_iter()
            .map(|(index, reason)| (index, reason, 0, None))
            .collect();
        let mut events: Vec<CloudTrailEvent> = Vec::with_capacity(records.len());
        for record in records {
            let size = record.json.len();
            let head = |json: &[u8]| json[..json.len().min(QUARANTINE_CONTENT_CAP)].to_vec();
            if size > service.limits.max_record_bytes {
                let error = RecordError::TooLarge {
                    size,
                    limit: service.limits.max_record_bytes,
                };
                rejected.push((
                    record.index,
                    error.to_string(),
                    size,
                    Some(head(&record.json)),
                ));
                continue;
            }
            match parse_record_bytes(record.json, self.key.as_ref()) {
                Ok(event) if seen_event_ids.insert(event.event_id) => events.push(event),
                Ok(_) => self.counts.duplicates += 1,
                Err((error, json)) => {
                    rejected.push((record.index, error.to_string(), size, Some(head(&json))))
                }
            }
        }
        if !events.is_empty() {
            events.sort_by_key(|event| event.event_id);
            let days: HashSet<_> = events
                .iter()
                .map(|event| event.event_time.date_naive())
                .collect();
            let store_error = |source| IngestError::Store {
                origin: self.origin.to_string(),
                source,
            };
            let new_days: Vec<_> = days.difference(locked_days).copied().collect();
            service
                .store
                .ensure_partitions(days)
                .await
                .map_err(store_error)?;
            store::lock_partitions(transaction, new_days.iter().copied())
                .await
                .map_err(|source| {
                    // A partition retention dropped since it was remembered: the next
                    // attempt makes it again.
                    service.store.forget_partitions();
                    store_error(source)
                })?;
            locked_days.extend(new_days);
            let cipher = service
                .store
                .encryption()
                .map(|encryption| &encryption.cipher);
            let inserted = store::insert_events(transaction, *log_file_id, &events, cipher)
                .await
                .map_err(|source| {
                    if matches!(source, StoreError::MissingPartition(_)) {
                        service.store.forget_partitions();
                    }
                    store_error(source)
                })?;
            // Only events stored for the first time pass the detectors: a duplicate delivery
            // raises nothing twice. The batch and the ids are both in event id order.
            let mut new_ids = inserted.inserted.iter().peekable();
            for event in &events {
                let event_id = event.event_id.as_uuid();
                while new_ids.next_if(|id| **id < event_id).is_some() {}
                if new_ids.next_if(|id| **id == event_id).is_some() {
                    detections.observe(event);
                    if let Some(rollups) = rollups {
                        rollups.add(event);
                    }
                }
            }
            let inserted = u32::try_from(inserted.inserted.len()).unwrap_or(u32::MAX);
            let batch = u32::try_from(events.len()).unwrap_or(u32::MAX);
            self.counts.accepted += inserted;
            self.counts.duplicates += batch.saturating_sub(inserted);
        }
        for (index, reason, size, content) in rejected {
            self.reject(index, reason, size, content);
        }
        Ok(())
    }

    fn reject(&mut self, index: u32, reason: String, size: usize, content: Option<Vec<u8>>) {
        tracing::warn!(file = %self.origin, index, %reason, "record rejected");
        self.counts.rejected += 1;
        if self.quarantined.len() < MAX_QUARANTINED_PER_FILE {
            self.quarantined.push(QuarantineItem {
                record_index: Some(index),
                reason: reason.clone(),
                content_bytes: size,
                content,
            });
        } else {
            self.quarantine_overflow += 1;
        }
        self.rejections.push((index, reason));
    }

    /// Commits the file (or, for a file taken before, just reports it).
    async fn finish(mut self, end: FileEnd) -> Result<FileReport, IngestError> {
        self.counts.records_read = end.records_read;
        if let Some(fault) = &end.fault {
            tracing::warn!(file = %self.origin, %fault, records_read = end.records_read, "log file fault");
        }
        let outcome = match self.state {
            OpenFileState::AlreadyTaken { first_committed_at } => {
                FileOutcome::AlreadyIngested { first_committed_at }
            }
            OpenFileState::Taking {
                mut transaction,
                log_file_id,
                detections,
                rollups,
                ..
            } => {
                let store_error = |source| IngestError::Store {
                    origin: self.origin.to_string(),
                    source,
                };
                self.rejections.sort_by_key(|(index, _)| *index);
                if let Some(fault) = &end.fault {
                    self.quarantined.push(QuarantineItem {
                        record_index: None,
                        reason: format!("file fault after {} records: {fault}", end.records_read),
                        content_bytes: 0,
                        content: None,
                    });
                }
                if self.quarantine_overflow > 0 {
                    self.quarantined.push(QuarantineItem {
                        record_index: None,
                        reason: format!(
                            "{} more refused records of this file are not kept (at most {MAX_QUARANTINED_PER_FILE} per file); the ledger counts them",
                            self.quarantine_overflow
                        ),
                        content_bytes: 0,
                        content: None,
                    });
                }
                let cipher = self
                    .service_cipher
                    .as_ref()
                    .map(|encryption| &encryption.cipher);
                store::quarantine_items(
                    &mut transaction,
                    &QuarantineOrigin {
                        log_file_id,
                        source: &self.origin.source,
                        bucket: &self.origin.bucket,
                        object_key: &self.origin.object_key,
                        etag: &self.origin.etag,
                    },
                    &self.quarantined,
                    cipher,
                )
                .await
                .map_err(store_error)?;
                store::complete_log_file(
                    &mut transaction,
                    log_file_id,
                    &self.counts,
                    &self.rejections,
                    end.fault.as_deref(),
                    end.content_sha256.as_ref().map(|hash| hash.as_slice()),
                )
                .await
                .map_err(store_error)?;
                let detected = detections.into_rows();
                store::insert_alarm_matches(&mut transaction, &detected.alarm_matches)
                    .await
                    .map_err(store_error)?;
                let raised = store::raise_findings(
                    &mut transaction,
                    &detected.findings,
                    detected.notify_since,
                )
                .await
                .map_err(store_error)?;
                // Last before the commit: the rollup rows it takes are held the shortest.
                if let Some(rollups) = &rollups {
                    store::add_rollups(&mut transaction, &self.store, rollups)
                        .await
                        .map_err(store_error)?;
                }
                PgStore::commit_file_transaction(transaction)
                    .await
                    .map_err(store_error)?;
                for (alarm, matches) in detected.matches_per_alarm {
                    crate::metrics::alarm_filter_matched(&alarm, matches);
                }
                // Wall-clock time (not the service clock, which tests may freeze), as S3's is.
                if let Some(created) = self.origin.last_modified {
                    let seconds = (chrono::Utc::now() - created).num_milliseconds() as f64 / 1000.0;
                    crate::metrics::file_freshness(&self.origin.source, seconds.max(0.0));
                }
                crate::metrics::findings_raised(raised.raised, raised.suppressed);
                tracing::info!(
                    file = %self.origin,
                    source = %self.origin.source,
                    accepted = self.counts.accepted,
                    duplicates = self.counts.duplicates,
                    rejected = self.counts.rejected,
                    "log file committed"
                );
                FileOutcome::Committed
            }
        };
        crate::metrics::file_finished(
            match outcome {
                FileOutcome::Committed => "committed",
                FileOutcome::AlreadyIngested { .. } => "already_ingested",
            },
            u64::from(self.counts.accepted),
            u64::from(self.counts.duplicates),
            u64::from(self.counts.rejected),
        );
        self.rejections.truncate(MAX_REPORTED_REJECTIONS);
        Ok(FileReport {
            file_seq: self.file_seq,
            origin: self.origin,
            outcome,
            accepted: self.counts.accepted,
            duplicates: self.counts.duplicates,
            rejected: self.counts.rejected,
            rejections: self.rejections,
            fault: end.fault,
        })
    }
}
