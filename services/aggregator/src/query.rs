//! SQL over the whole history (`docs/sql.md`): a query reads one consistent snapshot — the
//! archive's objects recorded (fetched from the archive's bucket once into a local cache and
//! checked against their recorded SHA-256) and every stored event no recorded object holds
//! (opened from PostgreSQL) — through `orgtrail_sql`'s `events` table, as the caller's accounts
//! allow, within the configured limits. Every query is audited with its text and outcome.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use orgtrail_archive::{events_batch, ArchiveEvent, HourPartition};
use orgtrail_service_runtime::error_chain;
use orgtrail_sql::{
    ArchiveFile, EventSources, GeoIpDatabase, GeoIpError, ObjectFetcher, QueryResult, QueryScope,
    SqlEngine, SqlError, SqlLimits,
};
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
    cache: Arc<ObjectCache>,
    engine: SqlEngine,
    max_recent_events: u64,
}

/// The archive's objects kept on local disk, at most `max_bytes` of them: past it, the least
/// recently used objects no running query reads are removed (objects never change, so a copy
/// is good until removed).
#[derive(Debug)]
struct ObjectCache {
    directory: PathBuf,
    max_bytes: u64,
    /// Running queries per object they read.
    in_use: Mutex<HashMap<PathBuf, usize>>,
}

/// The objects a running query may read, released when it ends.
struct InUse {
    cache: Arc<ObjectCache>,
    paths: Vec<PathBuf>,
}

impl Drop for InUse {
    fn drop(&mut self) {
        if let Ok(mut in_use) = self.cache.in_use.lock() {
            for path in &self.paths {
                if let Some(count) = in_use.get_mut(path) {
                    *count -= 1;
                    if *count == 0 {
                        in_use.remove(path);
                    }
                }
            }
        }
    }
}

impl ObjectCache {
    /// Marks `path` read by one more running query (a poisoned registry holds nothing, and
    /// eviction, which needs it too, then removes nothing).
    fn hold(&self, path: &Path) {
        if let Ok(mut in_use) = self.in_use.lock() {
            *in_use.entry(path.to_path_buf()).or_default() += 1;
        }
    }

    /// Removes the least recently used objects no query reads until the cache is within its
    /// bound. Best effort: what cannot be read or removed is logged and left.
    fn evict(&self) {
        let mut files = Vec::new();
        collect_files(&self.directory, &mut files);
        let mut total: u64 = files.iter().map(|(_, size, _)| size).sum();
        if total <= self.max_bytes {
            return;
        }
        files.sort_by_key(|(_, _, used)| *used);
        let Ok(in_use) = self.in_use.lock() else {
            return;
        };
        for (path, size, _) in files {
            if total <= self.max_bytes {
                break;
            }
            if in_use.contains_key(&path) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => total = total.saturating_sub(size),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot remove a cached archive object")
                }
            }
        }
    }
}

/// Every file under `directory`: its path, size and last use (access, else modification).
fn collect_files(directory: &Path, files: &mut Vec<(PathBuf, u64, std::time::SystemTime)>) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        if metadata.is_dir() {
            collect_files(&path, files);
        } else {
            let used = metadata
                .accessed()
                .or_else(|_| metadata.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            files.push((path, metadata.len(), used));
        }
    }
}

impl QueryService {
    /// The service; fails only when the configured GeoIP database cannot be read.
    pub async fn new(
        store: PgStore,
        settings: &QuerySettings,
        archive: &ArchiveSettings,
    ) -> Result<QueryService, GeoIpError> {
        let bucket = match &archive.bucket {
            Some(bucket) => Some(ArchiveBucket::connect(archive, bucket.clone()).await),
            None => None,
        };
        let mut engine = SqlEngine::with_metadata_cache(
            SqlLimits {
                max_rows: settings.max_rows,
                max_memory_bytes: settings.max_memory_mb.saturating_mul(1 << 20),
                timeout: Duration::from_secs(settings.timeout_seconds),
                max_query_chars: orgtrail_sql::engine::MAX_QUERY_CHARS,
            },
            settings.metadata_cache_mb.saturating_mul(1 << 20),
        );
        if let Some(path) = &settings.geoip_file {
            engine = engine.with_geoip(Arc::new(GeoIpDatabase::open(path)?));
        }
        Ok(QueryService {
            store,
            bucket,
            cache: Arc::new(ObjectCache {
                directory: settings.cache_directory(),
                max_bytes: settings.cache_max_mb.saturating_mul(1 << 20),
                in_use: Mutex::new(HashMap::new()),
            }),
            engine,
            max_recent_events: settings.max_recent_events,
        })
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
        let scope = QueryScope { accounts };
        // The partitions the query can reach, from its plan: of the events not archived yet,
        // only theirs are read.
        let reach = self.engine.reach(sql, &scope).await?;
        let snapshot = self
            .store
            .query_snapshot(
                scope.accounts.as_deref(),
                self.max_recent_events,
                |account, region, hour| {
                    reach.may_read(&HourPartition::new(Some(account), Some(region), hour))
                },
            )
            .await?;
        if snapshot.recent.len() as u64 > self.max_recent_events {
            return Err(QueryServiceError::TooManyRecentEvents(
                self.max_recent_events,
            ));
        }
        // Every object of the snapshot is kept from eviction while the query runs; only those
        // its predicates on time, account, region and principal reach are fetched (by the
        // engine's scan).
        let mut in_use = InUse {
            cache: self.cache.clone(),
            paths: Vec::with_capacity(snapshot.objects.len()),
        };
        let mut archive_files = Vec::with_capacity(snapshot.objects.len());
        let mut objects = HashMap::with_capacity(snapshot.objects.len());
        for object in snapshot.objects {
            let path = self.cache.directory.join(&object.object_key);
            let mut file =
                ArchiveFile::from_key(path.clone(), &object.object_key).ok_or_else(|| {
                    QueryServiceError::ArchiveObject(
                        object.object_key.clone(),
                        "its key is not an archive object's key".into(),
                    )
                })?;
            if let Some(principals) = &object.principals {
                file = file.with_principals(principals.iter().cloned());
            }
            self.cache.hold(&path);
            in_use.paths.push(path.clone());
            archive_files.push(file);
            objects.insert(path, object);
        }
        let fetcher = SnapshotFetcher {
            bucket: self.bucket.clone(),
            cache: self.cache.clone(),
            objects,
        };
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
            fetcher: Some(Arc::new(fetcher)),
        };
        let result = self.engine.query(sql, &sources, &scope).await;
        drop(in_use);
        Ok(result?)
    }
}

/// Objects fetched from the archive's bucket at once, per query.
const FETCH_CONCURRENCY: usize = 16;

/// Brings the objects of one query's snapshot that its scan reaches into the cache.
struct SnapshotFetcher {
    bucket: Option<ArchiveBucket>,
    cache: Arc<ObjectCache>,
    /// The snapshot's objects, by the path of their local copy.
    objects: HashMap<PathBuf, StoredArchiveObject>,
}

impl std::fmt::Debug for SnapshotFetcher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SnapshotFetcher")
            .field("objects", &self.objects.len())
            .finish()
    }
}

#[async_trait]
impl ObjectFetcher for SnapshotFetcher {
    async fn fetch(&self, files: Vec<ArchiveFile>) -> Result<(), String> {
        let fetched: Vec<Result<(), String>> = futures::stream::iter(files)
            .map(|file| async move {
                let object = self.objects.get(&file.path).ok_or_else(|| {
                    format!("{} is not in the query's snapshot", file.path.display())
                })?;
                self.cached(object, &file.path)
                    .await
                    .map_err(|error| error.to_string())
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .collect()
            .await;
        fetched.into_iter().collect::<Result<Vec<()>, String>>()?;
        self.cache.evict();
        Ok(())
    }
}

impl SnapshotFetcher {
    /// The local copy of an archived object: fetched once, checked against the SHA-256 recorded
    /// when it was written, kept (objects are never rewritten).
    async fn cached(
        &self,
        object: &StoredArchiveObject,
        path: &Path,
    ) -> Result<(), QueryServiceError> {
        if tokio::fs::metadata(path)
            .await
            .is_ok_and(|metadata| metadata.len() == object.bytes as u64)
        {
            return Ok(());
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
        write_atomically(path, &bytes).await.map_err(|error| {
            failed(format!(
                "cannot keep it in {}: {error}",
                self.cache.directory.display()
            ))
        })?;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_keeps_what_running_queries_read_and_bounds_the_rest() {
        let directory =
            std::env::temp_dir().join(format!("orgtrail-cache-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(directory.join("a/b")).unwrap();
        let files: Vec<PathBuf> = ["a/one.parquet", "a/b/two.parquet", "three.parquet"]
            .iter()
            .map(|name| directory.join(name))
            .collect();
        for file in &files {
            std::fs::write(file, vec![0u8; 1000]).unwrap();
        }
        let cache = Arc::new(ObjectCache {
            directory: directory.clone(),
            max_bytes: 1500,
            in_use: Mutex::new(HashMap::new()),
        });
        cache.hold(&files[1]);
        let held = InUse {
            cache: cache.clone(),
            paths: vec![files[1].clone()],
        };
        cache.evict();
        let left: Vec<bool> = files.iter().map(|file| file.exists()).collect();
        assert!(left[1], "a file a running query reads is kept");
        assert_eq!(left.iter().filter(|kept| **kept).count(), 1, "{left:?}");
        drop(held);
        assert!(cache.in_use.lock().unwrap().is_empty());
        // Within the bound: nothing more is removed.
        cache.evict();
        assert!(files[1].exists());
        let _ = std::fs::remove_dir_all(&directory);
    }
}
