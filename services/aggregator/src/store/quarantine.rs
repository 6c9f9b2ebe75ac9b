//! The quarantine: refused records and file faults, kept with their reason and origin, the
//! content sealed like the events' records.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{convert_sqlx_error, PgStore, StoreError};
use crate::crypto::RecordCipher;

/// Something refused, as ingest found it.
#[derive(Clone, Debug)]
pub struct QuarantineItem {
    /// `None`: the file as a whole (a fault).
    pub record_index: Option<u32>,
    pub reason: String,
    pub content_bytes: usize,
    /// What is kept of the content (at most the cap); `None` when there is none.
    pub content: Option<Vec<u8>>,
}

/// Where the refused input came from.
pub struct QuarantineOrigin<'a> {
    pub log_file_id: i64,
    pub source: &'a str,
    pub bucket: &'a str,
    pub object_key: &'a str,
    pub etag: &'a str,
}

/// A quarantine entry as stored, its content opened.
#[derive(Clone, Debug)]
pub struct QuarantineEntry {
    pub quarantine_id: i64,
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub bucket: String,
    pub object_key: String,
    pub etag: String,
    pub record_index: Option<i32>,
    pub reason: String,
    pub content_bytes: i32,
    pub content: Option<Vec<u8>>,
}

#[derive(sqlx::FromRow)]
struct QuarantineRow {
    quarantine_id: i64,
    received_at: DateTime<Utc>,
    source: String,
    bucket: String,
    object_key: String,
    etag: String,
    record_index: Option<i32>,
    reason: String,
    content_bytes: i32,
    content: Option<Vec<u8>>,
    seal_id: Uuid,
    key_id: Option<i32>,
}

impl QuarantineRow {
    fn into_entry(self, content: Option<Vec<u8>>) -> QuarantineEntry {
        QuarantineEntry {
            quarantine_id: self.quarantine_id,
            received_at: self.received_at,
            source: self.source,
            bucket: self.bucket,
            object_key: self.object_key,
            etag: self.etag,
            record_index: self.record_index,
            reason: self.reason,
            content_bytes: self.content_bytes,
            content,
        }
    }
}

/// Writes the items in the file's transaction, their content sealed with `cipher`.
pub async fn quarantine_items(
    connection: &mut PgConnection,
    origin: &QuarantineOrigin<'_>,
    items: &[QuarantineItem],
    cipher: Option<&RecordCipher>,
) -> Result<(), StoreError> {
    if items.is_empty() {
        return Ok(());
    }
    let mut indexes = Vec::with_capacity(items.len());
    let mut reasons = Vec::with_capacity(items.len());
    let mut sizes = Vec::with_capacity(items.len());
    let mut contents: Vec<Option<Vec<u8>>> = Vec::with_capacity(items.len());
    let mut seal_ids = Vec::with_capacity(items.len());
    let mut key_ids: Vec<Option<i32>> = Vec::with_capacity(items.len());
    for item in items {
        let seal_id = Uuid::new_v4();
        let (key_id, content) = match (&item.content, cipher) {
            (Some(content), Some(cipher)) => {
                let (key_id, sealed) = cipher
                    .seal(seal_id, content)
                    .map_err(|error| StoreError::Encryption(error.to_string()))?;
                (Some(key_id), Some(sealed))
            }
            (content, _) => (None, content.clone()),
        };
        indexes.push(
            item.record_index
                .map(|index| i32::try_from(index).unwrap_or(i32::MAX)),
        );
        reasons.push(item.reason.clone());
        sizes.push(i32::try_from(item.content_bytes).unwrap_or(i32::MAX));
        contents.push(content);
        seal_ids.push(seal_id);
        key_ids.push(key_id);
    }
    sqlx::query(
        "INSERT INTO quarantine (log_file_id, source, bucket, object_key, etag, record_index, reason,
                                 content_bytes, content, seal_id, key_id)
         SELECT $1, $2, $3, $4, $5, item.record_index, item.reason, item.content_bytes,
                item.content, item.seal_id, item.key_id
         FROM UNNEST($6::integer[], $7::text[], $8::integer[], $9::bytea[], $10::uuid[], $11::integer[])
              AS item (record_index, reason, content_bytes, content, seal_id, key_id)",
    )
    .bind(origin.log_file_id)
    .bind(origin.source)
    .bind(origin.bucket)
    .bind(origin.object_key)
    .bind(origin.etag)
    .bind(&indexes)
    .bind(&reasons)
    .bind(&sizes)
    .bind(&contents)
    .bind(&seal_ids)
    .bind(&key_ids)
    .execute(connection)
    .await
    .map_err(convert_sqlx_error)?;
    Ok(())
}

const QUARANTINE_COLUMNS: &str = "quarantine_id, received_at, source, bucket, object_key, etag, \
    record_index, reason, content_bytes, content, seal_id, key_id";

impl PgStore {
    /// Entries newest first, before `before_id`, optionally of one source, without their
    /// content.
    pub async fn list_quarantine(
        &self,
        source: Option<&str>,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<QuarantineEntry>, StoreError> {
        let rows: Vec<QuarantineRow> = sqlx::query_as(&format!(
            "SELECT {QUARANTINE_COLUMNS} FROM quarantine
             WHERE ($1::text IS NULL OR source = $1) AND ($2::bigint IS NULL OR quarantine_id < $2)
             ORDER BY quarantine_id DESC LIMIT $3"
        ))
        .bind(source)
        .bind(before_id)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        Ok(rows.into_iter().map(|row| row.into_entry(None)).collect())
    }

    /// One entry with its content opened.
    pub async fn quarantine_entry(
        &self,
        quarantine_id: i64,
    ) -> Result<QuarantineEntry, StoreError> {
        let row: QuarantineRow = sqlx::query_as(&format!(
            "SELECT {QUARANTINE_COLUMNS} FROM quarantine WHERE quarantine_id = $1"
        ))
        .bind(quarantine_id)
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)?
        .ok_or_else(|| StoreError::NotFound(format!("quarantine entry {quarantine_id}")))?;
        let content = match (&row.content, row.key_id) {
            (Some(sealed), Some(key_id)) => {
                if let Some(encryption) = self.encryption() {
                    if !encryption.cipher.holds(key_id) {
                        self.refresh_data_keys()
                            .await
                            .map_err(|error| StoreError::Encryption(error.to_string()))?;
                    }
                }
                let encryption = self.encryption().ok_or_else(|| {
                    StoreError::Encryption(format!(
                        "quarantine entry {quarantine_id} is sealed with data key {key_id}, and encryption is off"
                    ))
                })?;
                Some(
                    encryption
                        .cipher
                        .open(key_id, row.seal_id, sealed)
                        .map_err(|error| StoreError::Encryption(error.to_string()))?,
                )
            }
            (content, _) => content.clone(),
        };
        Ok(row.into_entry(content))
    }
}
