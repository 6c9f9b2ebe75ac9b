//! Data keys (stored wrapped) and the re-encryption of old rows under the active key: day
//! partition by day partition, in short transactions of a bounded number of rows, walking each
//! partition by tuple id so no row is read twice and no scan starts over.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;
use uuid::Uuid;

use super::partitions::day_of_partition;
use super::retention::append_audit;
use super::{convert_sqlx_error, PgStore, StoreError};
use crate::crypto::{MasterKeys, RecordCipher};

/// `pg_advisory_xact_lock` key of data key creation: two replicas starting on an empty
/// database make one first key, not two.
const DATA_KEY_LOCK: i64 = 0x6f72_6774_7261_0004;

/// A data key as stored: wrapped.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredDataKey {
    pub key_id: i32,
    pub wrapped_key: Vec<u8>,
    pub wrapped_by: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// The outcome of re-encrypting one batch.
pub struct ReencryptBatch {
    /// Where the next batch of the partition starts (the last tuple id read), or `None` when
    /// the partition is done.
    pub next: Option<String>,
    pub rewritten: u64,
}

impl PgStore {
    pub async fn data_keys(&self) -> Result<Vec<StoredDataKey>, StoreError> {
        sqlx::query_as(
            "SELECT key_id, wrapped_key, wrapped_by, created_at, created_by FROM data_keys ORDER BY key_id",
        )
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// Stores a wrapped data key. With `first_only`, only when there is none yet (and then the
    /// existing newest key is returned instead).
    pub async fn create_data_key(
        &self,
        actor: &str,
        wrapped_key: &[u8],
        wrapped_by: &str,
        first_only: bool,
    ) -> Result<StoredDataKey, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(DATA_KEY_LOCK)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        if first_only {
            let existing: Option<StoredDataKey> = sqlx::query_as(
                "SELECT key_id, wrapped_key, wrapped_by, created_at, created_by FROM data_keys ORDER BY key_id DESC LIMIT 1",
            )
            .fetch_optional(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
            if let Some(existing) = existing {
                return Ok(existing);
            }
        }
        let key: StoredDataKey = sqlx::query_as(
            "INSERT INTO data_keys (wrapped_key, wrapped_by, created_by) VALUES ($1, $2, $3)
             RETURNING key_id, wrapped_key, wrapped_by, created_at, created_by",
        )
        .bind(wrapped_key)
        .bind(wrapped_by)
        .bind(actor)
        .fetch_one(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        append_audit(
            &mut transaction,
            actor,
            "key.create",
            &format!("data key {}", key.key_id),
            None,
            Some(&json!({ "keyId": key.key_id, "wrappedBy": key.wrapped_by })),
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(key)
    }

    /// Stored events per data key (`None`: stored in the clear).
    pub async fn events_per_key(&self) -> Result<Vec<(Option<i32>, i64)>, StoreError> {
        sqlx::query_as("SELECT key_id, count(*) FROM events GROUP BY key_id ORDER BY key_id")
            .fetch_all(self.pool())
            .await
            .map_err(convert_sqlx_error)
    }

    /// Re-encrypts up to `limit` rows of `partition` after tuple id `after` that are not under
    /// the cipher's active key, in one transaction (the rows are locked while rewritten).
    pub async fn reencrypt_batch(
        &self,
        partition: &str,
        after: &str,
        cipher: &RecordCipher,
        limit: i64,
    ) -> Result<ReencryptBatch, StoreError> {
        if day_of_partition(partition).is_none() {
            return Err(StoreError::NotFound(format!("partition {partition:?}")));
        }
        let active = cipher.active();
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let rows = sqlx::query(&format!(
            "SELECT ctid::text AS tid, event_id, key_id, record FROM {partition}
             WHERE ctid > $1::tid AND key_id IS DISTINCT FROM $2
             ORDER BY ctid LIMIT $3 FOR UPDATE"
        ))
        .bind(after)
        .bind(active)
        .bind(limit)
        .fetch_all(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        let Some(last) = rows.last().map(|row| row.get::<String, _>("tid")) else {
            return Ok(ReencryptBatch {
                next: None,
                rewritten: 0,
            });
        };
        let mut tids = Vec::with_capacity(rows.len());
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            let event_id: Uuid = row.get("event_id");
            let key_id: Option<i32> = row.get("key_id");
            let stored: Vec<u8> = row.get("record");
            let plaintext = match key_id {
                None => stored,
                Some(key_id) => cipher
                    .open(key_id, event_id, &stored)
                    .map_err(|error| StoreError::CorruptRow(error.to_string()))?,
            };
            let (_, sealed) = cipher
                .seal(event_id, &plaintext)
                .map_err(|error| StoreError::CorruptRow(error.to_string()))?;
            tids.push(row.get::<String, _>("tid"));
            records.push(sealed);
        }
        let updated = sqlx::query(&format!(
            "UPDATE {partition} AS e SET record = u.record, key_id = $3
             FROM UNNEST($1::text[], $2::bytea[]) AS u (tid, record)
             WHERE e.ctid = u.tid::tid"
        ))
        .bind(&tids)
        .bind(&records)
        .bind(active)
        .execute(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(ReencryptBatch {
            next: Some(last),
            rewritten: updated.rows_affected(),
        })
    }
}

/// Records sealed at rest: the master keys that unwrap the data keys, and the cipher holding
/// the unwrapped data keys.
pub struct Encryption {
    pub master: MasterKeys,
    pub cipher: RecordCipher,
}

#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PgStore {
    /// Turns record encryption on: unwraps every data key (a wrong or missing master key fails
    /// here, at start, never later with garbage), making the first one if there is none.
    pub async fn with_encryption(
        mut self,
        master: MasterKeys,
        actor: &str,
    ) -> Result<PgStore, EncryptionError> {
        let encryption = Arc::new(Encryption {
            master,
            cipher: RecordCipher::new(),
        });
        if self.data_keys().await?.is_empty() {
            let data_key = crate::crypto::random_key()?;
            let (wrapped, wrapped_by) = encryption.master.wrap(&data_key).await?;
            self.create_data_key(actor, &wrapped, &wrapped_by, true)
                .await?;
        }
        self.encryption = Some(encryption);
        self.refresh_data_keys().await?;
        Ok(self)
    }

    pub fn encryption(&self) -> Option<&Arc<Encryption>> {
        self.encryption.as_ref()
    }

    /// Unwraps the data keys this replica does not hold yet (another replica's rotation) and
    /// makes the newest the active one.
    pub async fn refresh_data_keys(&self) -> Result<(), EncryptionError> {
        let Some(encryption) = &self.encryption else {
            return Ok(());
        };
        let keys = self.data_keys().await?;
        for key in &keys {
            if !encryption.cipher.holds(key.key_id) {
                let data_key = encryption
                    .master
                    .unwrap(key.key_id, &key.wrapped_key, &key.wrapped_by)
                    .await?;
                encryption.cipher.install(key.key_id, &data_key);
            }
        }
        if let Some(newest) = keys.last() {
            encryption.cipher.set_active(newest.key_id);
        }
        Ok(())
    }

    /// A new data key, wrapped by the primary master key, active from now on.
    pub async fn rotate_data_key(&self, actor: &str) -> Result<i32, EncryptionError> {
        let Some(encryption) = &self.encryption else {
            return Err(EncryptionError::Store(StoreError::NotFound(
                "record encryption (it is off: encryption.plaintext = true)".into(),
            )));
        };
        let data_key = crate::crypto::random_key()?;
        let (wrapped, wrapped_by) = encryption.master.wrap(&data_key).await?;
        let key = self
            .create_data_key(actor, &wrapped, &wrapped_by, false)
            .await?;
        encryption.cipher.install(key.key_id, &data_key);
        encryption.cipher.set_active(key.key_id);
        Ok(key.key_id)
    }

    /// Rewrites every row not under the active key, partition by partition, `batch` rows per
    /// transaction. Returns the rows rewritten.
    pub async fn reencrypt_all(&self, batch: i64) -> Result<u64, EncryptionError> {
        let Some(encryption) = &self.encryption else {
            return Ok(0);
        };
        let mut rewritten = 0;
        for (_, partition) in self.partition_days().await? {
            let mut after = "(0,0)".to_string();
            loop {
                let outcome = match self
                    .reencrypt_batch(&partition, &after, &encryption.cipher, batch)
                    .await
                {
                    Ok(outcome) => outcome,
                    // Dropped by retention meanwhile: nothing left to rewrite there.
                    Err(StoreError::MissingPartition(_)) => break,
                    Err(error) if is_undefined_table(&error) => break,
                    Err(error) => return Err(error.into()),
                };
                rewritten += outcome.rewritten;
                match outcome.next {
                    Some(next) => after = next,
                    None => break,
                }
            }
        }
        Ok(rewritten)
    }
}

fn is_undefined_table(error: &StoreError) -> bool {
    match error {
        StoreError::Database(sqlx::Error::Database(database)) => {
            database.code().as_deref() == Some("42P01")
        }
        _ => false,
    }
}
