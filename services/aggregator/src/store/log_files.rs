//! The file ledger (`log_files`): one row per log file taken, written in the transaction that
//! stores the file's events.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;

use super::{convert_sqlx_error, StoreError};

/// A file about to be taken.
#[derive(Clone, Debug)]
pub struct NewLogFile<'a> {
    pub source: &'a str,
    pub bucket: &'a str,
    pub object_key: &'a str,
    pub etag: &'a str,
    pub account_id: Option<&'a str>,
    pub aws_region: Option<&'a str>,
    /// When S3 created the object, as listed; `None` for a local file.
    pub last_modified: Option<DateTime<Utc>>,
}

/// What the ledger says of a file.
#[derive(Clone, Debug)]
pub enum LedgerEntry {
    /// The file is new: its row is written (uncommitted) with this id.
    Taken { log_file_id: i64 },
    /// The file was taken before.
    AlreadyTaken(PreviousLogFile),
}

#[derive(Clone, Debug)]
pub struct PreviousLogFile {
    pub committed_at: DateTime<Utc>,
    pub records_read: i32,
    pub accepted: i32,
    pub duplicates: i32,
    pub rejected: i32,
}

/// The outcome of a file, written to its ledger row.
#[derive(Clone, Debug, Default)]
pub struct FileCounts {
    pub records_read: u32,
    pub accepted: u32,
    pub duplicates: u32,
    pub rejected: u32,
}

/// How many rejections a ledger row keeps (the count is always exact).
const MAX_STORED_REJECTIONS: usize = 1000;

/// Writes the file's ledger row, or finds the one written before. A concurrent transaction
/// taking the same file makes this wait for it, then see its row.
pub async fn take_log_file(
    connection: &mut PgConnection,
    file: &NewLogFile<'_>,
) -> Result<LedgerEntry, StoreError> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO log_files
             (source, bucket, object_key, etag, account_id, aws_region,
              records_read, accepted, duplicates, rejected, object_last_modified)
         VALUES ($1, $2, $3, $4, $5, $6, 0, 0, 0, 0, $7)
         ON CONFLICT ON CONSTRAINT log_files_identity DO NOTHING
         RETURNING log_file_id",
    )
    .bind(file.source)
    .bind(file.bucket)
    .bind(file.object_key)
    .bind(file.etag)
    .bind(file.account_id)
    .bind(file.aws_region)
    .bind(file.last_modified)
    .fetch_optional(&mut *connection)
    .await
    .map_err(convert_sqlx_error)?;
    if let Some(log_file_id) = inserted {
        return Ok(LedgerEntry::Taken { log_file_id });
    }
    let previous: (DateTime<Utc>, i32, i32, i32, i32) = sqlx::query_as(
        "SELECT committed_at, records_read, accepted, duplicates, rejected
         FROM log_files WHERE bucket = $1 AND object_key = $2 AND etag = $3",
    )
    .bind(file.bucket)
    .bind(file.object_key)
    .bind(file.etag)
    .fetch_one(&mut *connection)
    .await
    .map_err(convert_sqlx_error)?;
    Ok(LedgerEntry::AlreadyTaken(PreviousLogFile {
        committed_at: previous.0,
        records_read: previous.1,
        accepted: previous.2,
        duplicates: previous.3,
        rejected: previous.4,
    }))
}

/// Records the file's outcome on its ledger row (in the file's transaction).
pub async fn complete_log_file(
    connection: &mut PgConnection,
    log_file_id: i64,
    counts: &FileCounts,
    rejections: &[(u32, String)],
    fault: Option<&str>,
    content_sha256: Option<&[u8]>,
) -> Result<(), StoreError> {
    let stored_rejections: Vec<serde_json::Value> = rejections
        .iter()
        .take(MAX_STORED_REJECTIONS)
        .map(|(index, reason)| json!({ "index": index, "reason": reason }))
        .collect();
    sqlx::query(
        "UPDATE log_files
         SET records_read = $2, accepted = $3, duplicates = $4, rejected = $5,
             rejections = $6::text::jsonb, fault = $7, content_sha256 = $8, committed_at = now()
         WHERE log_file_id = $1",
    )
    .bind(log_file_id)
    .bind(to_i32(counts.records_read))
    .bind(to_i32(counts.accepted))
    .bind(to_i32(counts.duplicates))
    .bind(to_i32(counts.rejected))
    .bind(serde_json::Value::Array(stored_rejections).to_string())
    .bind(fault)
    .bind(content_sha256)
    .execute(&mut *connection)
    .await
    .map_err(convert_sqlx_error)?;
    Ok(())
}

fn to_i32(count: u32) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}
