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
    /// Set once no row is sealed with it any more: its master key is not needed at start.
    pub retired_at: Option<DateTime<Utc>>,
}

const DATA_KEY_COLUMNS: &str =
    "key_id, wrapped_key, wrapped_by, created_at, created_by, retired_at";

/// A rotation settles this long before the keys it replaced may be retired: every replica has
/// picked up the new active key by then (they look every 10 s), so none still seals with an
/// old one.
const RETIRE_SETTLE: std::time::Duration = std::time::Duration::from_secs(25);

/// The outcome of re-encrypting one batch.
pub struct ReencryptBatch {
    /// Where the next batch of the partition starts (the last tuple id read), or `None` when
    /// the partition is done.
    pub next: Option<String>,
    pub rewritten: u64,
}

impl PgStore {
    pub async fn data_keys(&self) -> Result<Vec<StoredDataKey>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {DATA_KEY_COLUMNS} FROM data_keys ORDER BY key_id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// Stores a wrapped data key. With `keep_newest`, only when there is no key yet or the
    /// newest one fails it (and then that newest key is returned instead): two replicas
    /// starting at once make one key, not two.
    pub async fn create_data_key(
        &self,
        actor: &str,
        wrapped_key: &[u8],
        wrapped_by: &str,
        keep_newest: Option<&(dyn Fn(&StoredDataKey) -> bool + Sync)>,
    ) -> Result<StoredDataKey, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(DATA_KEY_LOCK)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        if let Some(keep_newest) = keep_newest {
            let existing: Option<StoredDataKey> = sqlx::query_as(&format!(
                "SELECT {DATA_KEY_COLUMNS} FROM data_keys ORDER BY key_id DESC LIMIT 1"
            ))
            .fetch_optional(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
            if let Some(existing) = existing.filter(|newest| keep_newest(newest)) {
                return Ok(existing);
            }
        }
        let key: StoredDataKey = sqlx::query_as(
            "INSERT INTO data_keys (wrapped_key, wrapped_by, created_by) VALUES ($1, $2, $3)
             RETURNING key_id, wrapped_key, wrapped_by, created_at, created_by, retired_at",
        )
        .bind(wrapped_key)
        .bind(wrapped_by)
        .bind(actor)
        .fetch_one(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        audit_data_key(&mut transaction, actor, "key.create", &key).await?;
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
            let sealed = reseal(
                cipher,
                row.get("event_id"),
                row.get("key_id"),
                row.get("record"),
            )?;
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

    /// Re-encrypts up to `limit` kept quarantine contents after quarantine id `after` that are
    /// not under the cipher's active key, in one transaction. Returns the last id read (`None`
    /// when done) and the rows rewritten.
    async fn reencrypt_quarantine_batch(
        &self,
        after: i64,
        cipher: &RecordCipher,
        limit: i64,
    ) -> Result<(Option<i64>, u64), StoreError> {
        let active = cipher.active();
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let rows: Vec<(i64, Uuid, Option<i32>, Vec<u8>)> = sqlx::query_as(
            "SELECT quarantine_id, seal_id, key_id, content FROM quarantine
             WHERE quarantine_id > $1 AND content IS NOT NULL AND key_id IS DISTINCT FROM $2
             ORDER BY quarantine_id LIMIT $3 FOR UPDATE",
        )
        .bind(after)
        .bind(active)
        .bind(limit)
        .fetch_all(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        let Some(last) = rows.last().map(|row| row.0) else {
            return Ok((None, 0));
        };
        let mut ids = Vec::with_capacity(rows.len());
        let mut contents = Vec::with_capacity(rows.len());
        for (quarantine_id, seal_id, key_id, stored) in rows {
            ids.push(quarantine_id);
            contents.push(reseal(cipher, seal_id, key_id, stored)?);
        }
        let updated = sqlx::query(
            "UPDATE quarantine AS q SET content = u.content, key_id = $3
             FROM UNNEST($1::bigint[], $2::bytea[]) AS u (quarantine_id, content)
             WHERE q.quarantine_id = u.quarantine_id",
        )
        .bind(&ids)
        .bind(&contents)
        .bind(active)
        .execute(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok((Some(last), updated.rows_affected()))
    }

    /// Retires the data keys older than the active one that no event and no quarantined
    /// content is sealed with any more (checked after the rotation has settled), so their
    /// master keys are no longer needed. Returns the keys retired.
    pub async fn retire_unused_data_keys(&self, actor: &str) -> Result<Vec<i32>, StoreError> {
        let keys = self.data_keys().await?;
        let Some(active) = keys.last() else {
            return Ok(Vec::new());
        };
        // Measured on PostgreSQL's clock, which stamped the key's creation and which every
        // replica shares: a duration between replicas, not a date.
        let wait_seconds: f64 = sqlx::query_scalar(
            "SELECT GREATEST(0, EXTRACT(EPOCH FROM $1::timestamptz + make_interval(secs => $2) - now()))::float8",
        )
        .bind(active.created_at)
        .bind(RETIRE_SETTLE.as_secs_f64())
        .fetch_one(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        let wait = std::time::Duration::try_from_secs_f64(wait_seconds).unwrap_or_default();
        tokio::time::sleep(wait.min(RETIRE_SETTLE)).await;
        let mut retired = Vec::new();
        for key in keys
            .iter()
            .filter(|key| key.key_id < active.key_id && key.retired_at.is_none())
        {
            let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
            let updated = sqlx::query(
                "UPDATE data_keys SET retired_at = now()
                 WHERE key_id = $1 AND retired_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM events WHERE key_id = $1)
                   AND NOT EXISTS (SELECT 1 FROM quarantine WHERE key_id = $1)
                   AND NOT EXISTS (SELECT 1 FROM destinations WHERE key_id = $1)
                   AND NOT EXISTS (SELECT 1 FROM api_tokens WHERE key_id = $1)
                   AND NOT EXISTS (SELECT 1 FROM lake_queries WHERE key_id = $1)",
            )
            .bind(key.key_id)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
            if updated.rows_affected() == 1 {
                audit_data_key(&mut transaction, actor, "key.retire", key).await?;
                retired.push(key.key_id);
            }
            transaction.commit().await.map_err(convert_sqlx_error)?;
        }
        Ok(retired)
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
    /// here, at start, never later with garbage), then makes a data key with the configured
    /// master key, kept as the new active key unless the newest stored one was wrapped by that
    /// same master. So the master key is used at every start (a KMS key that does not exist,
    /// is disabled or is not allowed fails the start), and new writes go under a changed master
    /// key (another keyring primary, another KMS key, KMS over a keyring) at once.
    pub async fn with_encryption(
        mut self,
        master: MasterKeys,
        actor: &str,
    ) -> Result<PgStore, EncryptionError> {
        self.encryption = Some(Arc::new(Encryption {
            master,
            cipher: RecordCipher::new(),
        }));
        self.refresh_data_keys().await?;
        if let Some(encryption) = &self.encryption {
            let (_, wrapped, wrapped_by) = encryption.master.new_data_key().await?;
            let same_master = |newest: &StoredDataKey| newest.wrapped_by == wrapped_by;
            self.create_data_key(actor, &wrapped, &wrapped_by, Some(&same_master))
                .await?;
        }
        self.refresh_data_keys().await?;
        Ok(self)
    }

    pub fn encryption(&self) -> Option<&Arc<Encryption>> {
        self.encryption.as_ref()
    }

    /// Seals a small secret (a destination's configuration, an access key's secret) for
    /// `seal_id` under the active data key; in the clear (`None`) when records are, on purpose.
    pub(super) fn seal_secret(
        &self,
        seal_id: Uuid,
        plaintext: &[u8],
    ) -> Result<(Option<i32>, Vec<u8>), StoreError> {
        match self.encryption() {
            Some(encryption) => {
                let (key_id, sealed) = encryption
                    .cipher
                    .seal(seal_id, plaintext)
                    .map_err(|error| StoreError::Encryption(error.to_string()))?;
                Ok((Some(key_id), sealed))
            }
            None => Ok((None, plaintext.to_vec())),
        }
    }

    /// Opens what [`PgStore::seal_secret`] sealed; `what` names it in errors.
    pub(super) fn open_secret(
        &self,
        what: &str,
        key_id: Option<i32>,
        seal_id: Uuid,
        stored: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        match (key_id, self.encryption()) {
            (None, _) => Ok(stored.to_vec()),
            (Some(key_id), Some(encryption)) => encryption
                .cipher
                .open(key_id, seal_id, stored)
                .map_err(|error| StoreError::Encryption(format!("{what}: {error}"))),
            (Some(key_id), None) => Err(StoreError::Encryption(format!(
                "{what} is sealed under data key {key_id}, and record encryption is off"
            ))),
        }
    }

    /// Unwraps the data keys this replica does not hold yet (another replica's rotation) and
    /// makes the newest the active one.
    pub async fn refresh_data_keys(&self) -> Result<(), EncryptionError> {
        let Some(encryption) = &self.encryption else {
            return Ok(());
        };
        let keys = self.data_keys().await?;
        // A retired key seals nothing: its master key may be gone (a replaced keyring or KMS
        // key), and it is not needed.
        for key in keys.iter().filter(|key| key.retired_at.is_none()) {
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
        let (data_key, wrapped, wrapped_by) = encryption.master.new_data_key().await?;
        let key = self
            .create_data_key(actor, &wrapped, &wrapped_by, None)
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
        let mut after = 0;
        while let (Some(last), count) = self
            .reencrypt_quarantine_batch(after, &encryption.cipher, batch)
            .await?
        {
            rewritten += count;
            after = last;
        }
        rewritten += self.reencrypt_destinations(&encryption.cipher).await?;
        rewritten += self.reencrypt_access_keys(&encryption.cipher).await?;
        rewritten += self
            .reseal_secrets::<Uuid>(
                &encryption.cipher,
                "SELECT query_id, query_id, key_id, sealed_results FROM lake_queries
                 WHERE sealed_results IS NOT NULL AND key_id IS DISTINCT FROM $1
                 ORDER BY query_id FOR UPDATE",
                "UPDATE lake_queries AS q SET sealed_results = u.sealed, key_id = $3
                 FROM UNNEST($1::uuid[], $2::bytea[]) AS u (query_id, sealed)
                 WHERE q.query_id = u.query_id",
            )
            .await?;
        Ok(rewritten)
    }

    /// Re-seals the notification destinations not under the active key (a handful of rows:
    /// one transaction).
    async fn reencrypt_destinations(&self, cipher: &RecordCipher) -> Result<u64, StoreError> {
        self.reseal_secrets::<i64>(
            cipher,
            "SELECT destination_id, seal_id, key_id, sealed_config FROM destinations
             WHERE key_id IS DISTINCT FROM $1 ORDER BY destination_id FOR UPDATE",
            "UPDATE destinations AS d SET sealed_config = u.sealed, key_id = $3
             FROM UNNEST($1::bigint[], $2::bytea[]) AS u (destination_id, sealed)
             WHERE d.destination_id = u.destination_id",
        )
        .await
    }

    /// Re-seals the access keys' secrets not under the active key (revoked ones too: they
    /// would otherwise keep an old data key from retiring). The token id is the seal id.
    async fn reencrypt_access_keys(&self, cipher: &RecordCipher) -> Result<u64, StoreError> {
        self.reseal_secrets::<Uuid>(
            cipher,
            "SELECT token_id, token_id, key_id, sealed_secret FROM api_tokens
             WHERE sealed_secret IS NOT NULL AND key_id IS DISTINCT FROM $1
             ORDER BY token_id FOR UPDATE",
            "UPDATE api_tokens AS t SET sealed_secret = u.sealed, key_id = $3
             FROM UNNEST($1::uuid[], $2::bytea[]) AS u (token_id, sealed)
             WHERE t.token_id = u.token_id",
        )
        .await
    }

    /// Re-seals a table of small sealed secrets in one transaction: `select` (given the active
    /// key as `$1`) locks and returns each row's id, seal id, key and sealed bytes; `update`
    /// writes the ids (`$1`), the bytes sealed again (`$2`) and the active key (`$3`).
    async fn reseal_secrets<Id>(
        &self,
        cipher: &RecordCipher,
        select: &str,
        update: &str,
    ) -> Result<u64, StoreError>
    where
        Id: for<'r> sqlx::Decode<'r, sqlx::Postgres>
            + for<'q> sqlx::Encode<'q, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>
            + sqlx::postgres::PgHasArrayType
            + Send
            + Unpin,
    {
        let active = cipher.active();
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let rows: Vec<(Id, Uuid, Option<i32>, Vec<u8>)> = sqlx::query_as(select)
            .bind(active)
            .fetch_all(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut sealed = Vec::with_capacity(rows.len());
        for (id, seal_id, key_id, stored) in rows {
            ids.push(id);
            sealed.push(reseal(cipher, seal_id, key_id, stored)?);
        }
        let updated = sqlx::query(update)
            .bind(ids)
            .bind(&sealed)
            .bind(active)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(updated.rows_affected())
    }
}

/// A data key's creation or retirement in the audit log, in the change's transaction.
async fn audit_data_key(
    transaction: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    actor: &str,
    action: &str,
    key: &StoredDataKey,
) -> Result<(), StoreError> {
    append_audit(
        transaction,
        actor,
        action,
        &format!("data key {}", key.key_id),
        None,
        Some(&json!({ "keyId": key.key_id, "wrappedBy": key.wrapped_by })),
        None,
    )
    .await
}

/// Opens stored bytes sealed for `seal_id` under `key_id` (`None`: in the clear) and seals them
/// again under the cipher's active key.
fn reseal(
    cipher: &RecordCipher,
    seal_id: Uuid,
    key_id: Option<i32>,
    stored: Vec<u8>,
) -> Result<Vec<u8>, StoreError> {
    let corrupt = |error: crate::crypto::CryptoError| StoreError::CorruptRow(error.to_string());
    let plaintext = match key_id {
        None => stored,
        Some(key_id) => cipher.open(key_id, seal_id, &stored).map_err(corrupt)?,
    };
    Ok(cipher.seal(seal_id, &plaintext).map_err(corrupt)?.1)
}

fn is_undefined_table(error: &StoreError) -> bool {
    match error {
        StoreError::Database(sqlx::Error::Database(database)) => {
            database.code().as_deref() == Some("42P01")
        }
        _ => false,
    }
}
