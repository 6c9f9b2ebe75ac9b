//! SQL over the whole history (`docs/sql.md`): a query reads one consistent snapshot — the
//! archive's objects recorded (fetched from the archive's bucket once into a local cache and
//! checked against their recorded SHA-256) and every stored event no recorded object holds
//! (opened from PostgreSQL) — through `orgtrail_sql`'s `events` table, as the caller's accounts
//! allow, within the configured limits. Every query is audited with its text and outcome.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orgtrail_archive::{events_batch, ArchiveEvent};
use orgtrail_service_runtime::error_chain;
use orgtrail_sql::{EventSources, QueryResult, QueryScope, SqlEngine, SqlError, SqlLimits};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::archive::s3::ArchiveBucket;
use crate::config::{ArchiveSettings, QuerySettings};
use crate::store::{PgStore, StoreError, StoredArchiveObject};

/// Why a query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryServiceError {
    #[error(transparent)]
    Sql(#[from] SqlError),
    #[error("more than {0} events are not archived yet: the query would hold them all in memory (query.max_recent_events); wait for the archive, or raise the limit")]
    TooManyRecentEvents(u64),
    #[error(
        "the archive's objects are recorded but no archive bucket is configured (archive.bucket)"
    )]
    NoArchiveBucket,
    #[error("archive object {0} cannot be read: {1}")]
    ArchiveObject(String, String),
    #[error("cannot read the events")]
    Store(#[from] StoreError),
}

/// Runs queries.
#[derive(Clone)]
pub struct QueryService {
    store: PgStore,
    bucket: Option<ArchiveBucket>,
    cache_directory: PathBuf,
    engine: SqlEngine,
    max_recent_events: u64,
}

impl QueryService {
    pub async fn new(
        store: PgStore,
        settings: &QuerySettings,
        archive: &ArchiveSettings,
    ) -> QueryService {
        let bucket = match &archive.bucket {
            Some(bucket) => Some(ArchiveBucket::connect(archive, bucket.clone()).await),
            None => None,
        };
        QueryService {
            store,
            bucket,
            cache_directory: settings.cache_directory(),
            engine: SqlEngine::new(SqlLimits {
                max_rows: settings.max_rows,
                max_memory_bytes: settings.max_memory_mb.saturating_mul(1 << 20),
                timeout: Duration::from_secs(settings.timeout_seconds),
                max_query_chars: orgtrail_sql::engine::MAX_QUERY_CHARS,
            }),
            max_recent_events: settings.max_recent_events,
        }
    }

    /// Runs `sql` for `actor`, reading only `accounts` when given; audited either way.
    pub async fn run(
        &self,
        actor: &str,
        sql: &str,
        accounts: Option<Vec<String>>,
    ) -> Result<QueryResult, QueryServiceError> {
        let started = Instant::now();
        let outcome = self.answer(sql, accounts.clone()).await;
        let milliseconds = started.elapsed().as_millis() as u64;
        let details = match &outcome {
            Ok(result) => json!({
                "sql": sql, "accounts": accounts, "rows": result.rows,
                "milliseconds": milliseconds, "outcome": "ok",
            }),
            Err(error) => json!({
                "sql": sql, "accounts": accounts, "milliseconds": milliseconds,
                "outcome": "failed", "error": error.to_string(),
            }),
        };
        if let Err(error) = self
            .store
            .audit(actor, "query.run", "events", &details)
            .await
        {
            tracing::warn!(error = %error_chain(&error), "cannot audit a query");
        }
        outcome
    }

    async fn answer(
        &self,
        sql: &str,
        accounts: Option<Vec<String>>,
    ) -> Result<QueryResult, QueryServiceError> {
        let snapshot = self
            .store
            .query_snapshot(accounts.as_deref(), self.max_recent_events)
            .await?;
        if snapshot.recent.len() as u64 > self.max_recent_events {
            return Err(QueryServiceError::TooManyRecentEvents(
                self.max_recent_events,
            ));
        }
        let mut archive_files = Vec::with_capacity(snapshot.objects.len());
        for object in &snapshot.objects {
            archive_files.push(self.cached(object).await?);
        }
        let recent: Vec<ArchiveEvent> = snapshot
            .recent
            .iter()
            .map(ArchiveEvent::from_cloudtrail_event)
            .collect::<Result<_, _>>()
            .map_err(|error| StoreError::CorruptRow(error.to_string()))?;
        let recent = if recent.is_empty() {
            Vec::new()
        } else {
            vec![events_batch(&recent).map_err(|error| StoreError::CorruptRow(error.to_string()))?]
        };
        let sources = EventSources {
            archive_files,
            recent,
        };
        Ok(self
            .engine
            .query(sql, &sources, &QueryScope { accounts })
            .await?)
    }

    /// The local copy of an archived object: fetched once, checked against the SHA-256 recorded
    /// when it was written, kept (objects are never rewritten).
    async fn cached(&self, object: &StoredArchiveObject) -> Result<PathBuf, QueryServiceError> {
        let path = self.cache_directory.join(&object.object_key);
        if tokio::fs::metadata(&path)
            .await
            .is_ok_and(|metadata| metadata.len() == object.bytes as u64)
        {
            return Ok(path);
        }
        let bucket = self
            .bucket
            .as_ref()
            .ok_or(QueryServiceError::NoArchiveBucket)?;
        let failed =
            |detail: String| QueryServiceError::ArchiveObject(object.object_key.clone(), detail);
        let bytes = bucket
            .get(&object.object_key)
            .await
            .map_err(|error| failed(error.to_string()))?
            .ok_or_else(|| failed("it is not in the bucket".into()))?;
        if Sha256::digest(&bytes).as_slice() != object.sha256.as_slice() {
            return Err(failed(
                "its SHA-256 is not the one recorded when it was written (orgtrail verify --archive names what changed)".into(),
            ));
        }
        write_atomically(&path, &bytes).await.map_err(|error| {
            failed(format!(
                "cannot keep it in {}: {error}",
                self.cache_directory.display()
            ))
        })?;
        Ok(path)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, so a reader never
/// sees half an object.
async fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let temporary = path.with_extension(format!("part-{}", uuid::Uuid::new_v4().simple()));
    tokio::fs::write(&temporary, bytes).await?;
    tokio::fs::rename(&temporary, path).await
}
