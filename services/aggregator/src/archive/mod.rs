//! The consolidated archive's writer (`docs/archive.md`). Every replica runs a round every
//! `archive.interval_seconds`: the partitions (account, region, hour of event time) whose hour
//! has settled and whose stored events outnumber the archived ones are taken one at a time,
//! each under a lock of its folder and hour (one writer at a time across replicas); the events
//! no archived object holds are encoded by `orgtrail_archive` as one zstd Parquet object, put
//! in the bucket with server-side encryption, and recorded with the ids of its events. A
//! partition archived before gets an additional object (the next sequence number) for its late
//! events; a recorded object is never written again.
//!
//! A crash between the upload and the record leaves an object no row names: the next round
//! writes the same key again with the events still not archived, so no event is archived
//! twice or lost.

use std::time::Duration;

use orgtrail_archive::{ArchiveEvent, ArchiveWriter as ParquetWriter, HourPartition, ObjectKey};
use orgtrail_service_runtime::{error_chain, SharedClock};
use sha2::{Digest, Sha256};

pub mod digests;
pub mod s3;

use self::digests::{ArchiveDigests, ArchiveSigner};
use self::s3::{ArchiveBucket, BucketError};
use crate::config::ArchiveSettings;
use crate::drain::Drain;
use crate::store::{ArchiveObject, ArchivePartition, PgStore, StoreError, MAX_RECORDED_PRINCIPALS};

/// Events in one object at most (and in memory at once): a busy hour of one account and region
/// gets several objects.
const MAX_EVENTS_PER_OBJECT: u32 = 100_000;

/// Set (to anything) only by the crash test: the process aborts after an object is uploaded
/// and before it is recorded.
const CRASH_AFTER_UPLOAD: &str = "ORGTRAIL_TEST_CRASH_AFTER_ARCHIVE_UPLOAD";

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read or record the archive's state")]
    Store(#[from] StoreError),
    #[error("cannot encode the archive object {key}: {detail}")]
    Encode { key: String, detail: String },
    #[error("cannot read or write the archive's bucket")]
    Bucket(#[from] BucketError),
}

/// What a round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveRound {
    pub objects: usize,
    pub events: usize,
    pub bytes: u64,
    /// Partitions another replica was writing.
    pub skipped: usize,
}

pub struct ArchiveService {
    store: PgStore,
    clock: SharedClock,
    settings: ArchiveSettings,
    bucket: ArchiveBucket,
    digests: ArchiveDigests,
}

impl ArchiveService {
    /// The writer of the configured bucket, its signing key ready and its public key
    /// published; `None` when no bucket is configured.
    pub async fn connect(
        store: PgStore,
        clock: SharedClock,
        settings: ArchiveSettings,
    ) -> Result<Option<ArchiveService>, String> {
        let Some(bucket) = settings.bucket.clone() else {
            return Ok(None);
        };
        let signer = ArchiveSigner::from_settings(&settings).await?;
        let bucket = ArchiveBucket::connect(&settings, bucket).await;
        let digests = ArchiveDigests {
            store: store.clone(),
            bucket: bucket.clone(),
            settings: settings.clone(),
            signer,
        };
        digests
            .publish_public_key()
            .await
            .map_err(|error| error_chain(&error))?;
        Ok(Some(ArchiveService {
            store,
            clock,
            settings,
            bucket,
            digests,
        }))
    }

    pub async fn run_periodically(self, drain: Drain) {
        // The first round an interval after the start, the server listening by then.
        let period = Duration::from_secs(self.settings.interval_seconds);
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = drain.started() => return,
                _ = interval.tick() => {}
            }
            match self.round(&drain).await {
                Ok(round) if round.objects > 0 => {
                    tracing::info!(
                        objects = round.objects,
                        events = round.events,
                        bytes = round.bytes,
                        "archived"
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "archive round failed; the next round tries again");
                }
            }
            if let Err(error) = self.digests.round().await {
                tracing::warn!(error = %error_chain(&error), "archive digests failed; the next round tries again");
            }
        }
    }

    /// One round: every settled partition with events the archive lacks (at most
    /// `partitions_per_round`), each under its folder's lock.
    pub async fn round(&self, drain: &Drain) -> Result<ArchiveRound, ArchiveError> {
        let settled_before = self.clock.now()
            - chrono::TimeDelta::seconds(
                i64::try_from(self.settings.settle_seconds).unwrap_or(i64::MAX / 2),
            );
        let candidates = self
            .store
            .archive_candidates(settled_before, self.settings.partitions_per_round)
            .await?;
        let mut round = ArchiveRound::default();
        for partition in candidates {
            if drain.is_started() {
                break;
            }
            let folder =
                ObjectKey::hour_listing_prefix(&self.settings.prefix, &hour_partition(&partition));
            let Some(lock) = self.store.try_archive_folder_lock(&folder).await? else {
                round.skipped += 1;
                continue;
            };
            // A busy hour is written in objects of at most MAX_EVENTS_PER_OBJECT events.
            let mut written = Ok(None);
            loop {
                match self.archive_partition(&partition, &folder).await {
                    Ok(Some((events, bytes))) => {
                        round.objects += 1;
                        round.events += events;
                        round.bytes += bytes;
                        if events < MAX_EVENTS_PER_OBJECT as usize || drain.is_started() {
                            break;
                        }
                    }
                    other => {
                        written = other;
                        break;
                    }
                }
            }
            lock.release().await;
            written?;
        }
        Ok(round)
    }

    /// Writes the partition's events not archived yet as one object, and records it; `None`
    /// when there were none (another replica wrote them meanwhile).
    async fn archive_partition(
        &self,
        partition: &ArchivePartition,
        folder: &str,
    ) -> Result<Option<(usize, u64)>, ArchiveError> {
        let (events, sequence) = self
            .store
            .unarchived_events(partition, folder, MAX_EVENTS_PER_OBJECT)
            .await?;
        if events.is_empty() {
            return Ok(None);
        }
        let key = ObjectKey::new(
            &self.settings.prefix,
            hour_partition(partition),
            u32::try_from(sequence).unwrap_or(u32::MAX),
        )
        .map_err(|error| ArchiveError::Encode {
            key: folder.to_string(),
            detail: error.to_string(),
        })?
        .to_string();
        let rows = events
            .iter()
            .map(ArchiveEvent::from_cloudtrail_event)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| ArchiveError::Encode {
                key: key.clone(),
                detail: error.to_string(),
            })?;
        let bytes = ParquetWriter::new()
            .encode(&rows)
            .map_err(|error| ArchiveError::Encode {
                key: key.clone(),
                detail: error.to_string(),
            })?;
        let sha256: [u8; 32] = Sha256::digest(&bytes).into();
        let size = bytes.len() as u64;
        let principals = {
            let set: std::collections::BTreeSet<&str> = rows
                .iter()
                .filter_map(|row| row.user_arn.as_deref())
                .collect();
            (set.len() <= MAX_RECORDED_PRINCIPALS)
                .then(|| set.into_iter().map(str::to_string).collect::<Vec<_>>())
        };
        self.bucket
            .put(&key, bytes, "application/vnd.apache.parquet", None)
            .await?;
        if std::env::var_os(CRASH_AFTER_UPLOAD).is_some() {
            tracing::error!(%key, "{CRASH_AFTER_UPLOAD} is set: aborting after the upload");
            std::process::abort();
        }
        self.store
            .record_archive_object(&ArchiveObject {
                object_key: key,
                partition: partition.clone(),
                sequence,
                bytes: i64::try_from(size).unwrap_or(i64::MAX),
                sha256,
                event_ids: events
                    .iter()
                    .map(|event| event.event_id.as_uuid())
                    .collect(),
                principals,
            })
            .await?;
        Ok(Some((events.len(), size)))
    }
}

/// The archive's folder partition of a stored partition ('' is none).
fn hour_partition(partition: &ArchivePartition) -> HourPartition {
    let value = |text: &str| (!text.is_empty()).then_some(text.to_string());
    HourPartition::new(
        value(&partition.account_id).as_deref(),
        value(&partition.aws_region).as_deref(),
        partition.hour,
    )
}
