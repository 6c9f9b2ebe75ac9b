//! What collectors ask of the store: which files the ledger lacks, listing checkpoints,
//! source leases, and the status of each source, account and region.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{convert_sqlx_error, PgStore, StoreError};

/// A file as S3 lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedFile {
    pub bucket: String,
    pub object_key: String,
    pub etag: String,
}

/// The outcome of asking for a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLease {
    pub granted: bool,
    pub holder: String,
    pub expires_at: DateTime<Utc>,
}

/// A collector's report on a source, or one account and region of it.
#[derive(Clone, Debug)]
pub struct SourceReport {
    pub source: String,
    pub account_id: String,
    pub aws_region: String,
    pub collector: String,
    pub outcome: SourceOutcome,
}

#[derive(Clone, Debug)]
pub enum SourceOutcome {
    Success {
        files_taken: u32,
        newest_object_key: Option<String>,
        newest_delivery_time: Option<DateTime<Utc>>,
    },
    Failure {
        error: String,
    },
}

/// A row of source status with its lease.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SourceStatusRow {
    pub source: String,
    pub account_id: String,
    pub aws_region: String,
    pub collector: String,
    pub last_object_key: Option<String>,
    pub last_delivery_time: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub lag_seconds: Option<f64>,
    pub lease_holder: Option<String>,
    /// Digest validation: the end of the newest digest read, the problems found, when.
    pub integrity_checked_until: Option<DateTime<Utc>>,
    pub integrity_problems: Option<i64>,
    pub integrity_checked_at: Option<DateTime<Utc>>,
    /// Log files in the ledger per integrity status.
    pub log_files_by_integrity: sqlx::types::Json<BTreeMap<String, i64>>,
    /// Seconds from S3's LastModified to the commit: the newest file's, and the 95th
    /// percentile of the last 24 hours.
    pub freshness_seconds: Option<f64>,
    pub freshness_p95_seconds: Option<f64>,
}

impl PgStore {
    /// The files of `files` the ledger does not hold, in their order.
    pub async fn filter_new_files(
        &self,
        files: &[ListedFile],
    ) -> Result<Vec<ListedFile>, StoreError> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let buckets: Vec<&str> = files.iter().map(|file| file.bucket.as_str()).collect();
        let keys: Vec<&str> = files.iter().map(|file| file.object_key.as_str()).collect();
        let etags: Vec<&str> = files.iter().map(|file| file.etag.as_str()).collect();
        let new_positions: Vec<i64> = sqlx::query_scalar(
            "SELECT listed.position
             FROM UNNEST($1::text[], $2::text[], $3::text[]) WITH ORDINALITY
                  AS listed (bucket, object_key, etag, position)
             WHERE NOT EXISTS (
                 SELECT 1 FROM log_files
                 WHERE log_files.bucket = listed.bucket
                   AND log_files.object_key = listed.object_key
                   AND log_files.etag = listed.etag)
             ORDER BY listed.position",
        )
        .bind(&buckets)
        .bind(&keys)
        .bind(&etags)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        Ok(new_positions
            .into_iter()
            .filter_map(|position| files.get(usize::try_from(position - 1).ok()?).cloned())
            .collect())
    }

    /// The newest key (in S3's byte order) the ledger holds under `prefix` in `bucket`.
    pub async fn newest_key_under(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Option<String>, StoreError> {
        // Every key under the prefix sorts between the prefix and the prefix followed by the
        // largest byte; the columns compare in the "C" collation, byte for byte.
        sqlx::query_scalar(
            "SELECT object_key FROM log_files
             WHERE bucket = $1 AND object_key >= $2 AND object_key < $2 || chr(1114111)
             ORDER BY object_key DESC LIMIT 1",
        )
        .bind(bucket)
        .bind(prefix)
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// Takes or renews `source` for `holder` when it is free, expired, or already `holder`'s.
    pub async fn acquire_source_lease(
        &self,
        source: &str,
        holder: &str,
        lease_seconds: u32,
    ) -> Result<SourceLease, StoreError> {
        let granted: Option<(String, DateTime<Utc>)> = sqlx::query_as(
            "INSERT INTO source_leases (source, holder, acquired_at, expires_at)
             VALUES ($1, $2, now(), now() + make_interval(secs => $3))
             ON CONFLICT (source) DO UPDATE
                 SET holder = EXCLUDED.holder,
                     acquired_at = CASE WHEN source_leases.holder = EXCLUDED.holder
                                        THEN source_leases.acquired_at ELSE now() END,
                     expires_at = EXCLUDED.expires_at
                 WHERE source_leases.holder = EXCLUDED.holder OR source_leases.expires_at < now()
             RETURNING holder, expires_at",
        )
        .bind(source)
        .bind(holder)
        .bind(f64::from(lease_seconds))
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        if let Some((holder, expires_at)) = granted {
            return Ok(SourceLease {
                granted: true,
                holder,
                expires_at,
            });
        }
        let (holder, expires_at): (String, DateTime<Utc>) =
            sqlx::query_as("SELECT holder, expires_at FROM source_leases WHERE source = $1")
                .bind(source)
                .fetch_one(self.pool())
                .await
                .map_err(convert_sqlx_error)?;
        Ok(SourceLease {
            granted: false,
            holder,
            expires_at,
        })
    }

    /// Gives up `holder`'s lease on `source`; false when `holder` did not hold it.
    pub async fn release_source_lease(
        &self,
        source: &str,
        holder: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM source_leases WHERE source = $1 AND holder = $2")
            .bind(source)
            .bind(holder)
            .execute(self.pool())
            .await
            .map_err(convert_sqlx_error)?;
        Ok(result.rows_affected() > 0)
    }

    pub async fn record_source_report(&self, report: &SourceReport) -> Result<(), StoreError> {
        let query = match &report.outcome {
            SourceOutcome::Success {
                files_taken,
                newest_object_key,
                newest_delivery_time,
            } => sqlx::query(
                "INSERT INTO source_status
                     (source, account_id, aws_region, collector, last_object_key,
                      last_delivery_time, last_success_at, files_taken)
                 VALUES ($1, $2, $3, $4, $5, $6, now(), $7)
                 ON CONFLICT (source, account_id, aws_region) DO UPDATE
                     SET collector = EXCLUDED.collector,
                         last_object_key = COALESCE(EXCLUDED.last_object_key, source_status.last_object_key),
                         last_delivery_time = COALESCE(EXCLUDED.last_delivery_time, source_status.last_delivery_time),
                         last_success_at = now(),
                         files_taken = source_status.files_taken + EXCLUDED.files_taken",
            )
            .bind(&report.source)
            .bind(&report.account_id)
            .bind(&report.aws_region)
            .bind(&report.collector)
            .bind(newest_object_key)
            .bind(newest_delivery_time)
            .bind(i64::from(*files_taken)),
            SourceOutcome::Failure { error } => sqlx::query(
                "INSERT INTO source_status
                     (source, account_id, aws_region, collector, last_error, last_error_at)
                 VALUES ($1, $2, $3, $4, $5, now())
                 ON CONFLICT (source, account_id, aws_region) DO UPDATE
                     SET collector = EXCLUDED.collector,
                         last_error = EXCLUDED.last_error,
                         last_error_at = now()",
            )
            .bind(&report.source)
            .bind(&report.account_id)
            .bind(&report.aws_region)
            .bind(&report.collector)
            .bind(error),
        };
        query
            .execute(self.pool())
            .await
            .map_err(convert_sqlx_error)?;
        Ok(())
    }

    pub async fn list_source_status(&self) -> Result<Vec<SourceStatusRow>, StoreError> {
        sqlx::query_as(
            "SELECT status.source, status.account_id, status.aws_region, status.collector,
                    status.last_object_key, status.last_delivery_time, status.last_success_at,
                    status.last_error, status.last_error_at,
                    EXTRACT(EPOCH FROM now() - status.last_delivery_time)::float8 AS lag_seconds,
                    CASE WHEN lease.expires_at > now() THEN lease.holder END AS lease_holder,
                    progress.digest_end_time AS integrity_checked_until,
                    progress.problems AS integrity_problems,
                    progress.checked_at AS integrity_checked_at,
                    coalesce(integrity.counts, '{}') AS log_files_by_integrity,
                    freshness.last_seconds AS freshness_seconds,
                    freshness.p95_seconds AS freshness_p95_seconds
             FROM source_status AS status
             LEFT JOIN source_leases AS lease ON lease.source = status.source
             LEFT JOIN digest_progress AS progress
                    ON progress.source = status.source AND progress.account_id = status.account_id
                   AND progress.aws_region = status.aws_region
             LEFT JOIN (
                 SELECT source, account_id, aws_region, jsonb_object_agg(integrity, files) AS counts
                 FROM (SELECT source, account_id, aws_region, integrity, count(*) AS files
                       FROM log_files GROUP BY 1, 2, 3, 4) AS per_status
                 GROUP BY 1, 2, 3
             ) AS integrity
                    ON integrity.source = status.source
                   AND integrity.account_id = status.account_id
                   AND integrity.aws_region = status.aws_region
             LEFT JOIN (
                 SELECT source, account_id, aws_region,
                        (array_agg(seconds ORDER BY committed_at DESC))[1] AS last_seconds,
                        percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds)
                            FILTER (WHERE committed_at > now() - interval '24 hours')
                            AS p95_seconds
                 FROM (SELECT source, account_id, aws_region, committed_at,
                              greatest(0, EXTRACT(EPOCH FROM committed_at - object_last_modified))::float8
                                  AS seconds
                       FROM log_files WHERE object_last_modified IS NOT NULL) AS files
                 GROUP BY 1, 2, 3
             ) AS freshness
                    ON freshness.source = status.source
                   AND freshness.account_id = status.account_id
                   AND freshness.aws_region = status.aws_region
             ORDER BY status.source, status.account_id, status.aws_region",
        )
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }
}
