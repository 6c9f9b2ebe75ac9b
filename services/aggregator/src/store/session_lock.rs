//! Work that one replica at a time does (an enforcement run, an alarm evaluation round): a
//! PostgreSQL session advisory lock, held on a connection of its own for as long as the work
//! takes. A replica that dies releases it with its connection.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::Postgres;

use super::{convert_sqlx_error, PgStore, StoreError};

/// The advisory lock keys (`orgtr` in the high bytes).
pub const ENFORCEMENT_LOCK: i64 = 0x6f72_6774_7261_0003;
pub const ALARM_EVALUATION_LOCK: i64 = 0x6f72_6774_7261_0004;
pub const INSIGHT_EVALUATION_LOCK: i64 = 0x6f72_6774_7261_0005;
/// The archive's digests: one chain, one writer.
pub const ARCHIVE_DIGEST_LOCK: i64 = 0x6f72_6774_7261_0006;

/// A held session lock. Dropping it without [`SessionLock::release`] closes its connection,
/// which releases the lock too.
pub struct SessionLock {
    key: i64,
    connection: Option<PoolConnection<Postgres>>,
}

impl SessionLock {
    pub async fn release(mut self) {
        if let Some(mut connection) = self.connection.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut *connection)
                .await;
            if unlocked.is_err() {
                drop(connection.detach());
            }
        }
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            drop(connection.detach());
        }
    }
}

impl PgStore {
    /// Takes the lock `key` if no other session holds it.
    pub async fn try_session_lock(&self, key: i64) -> Result<Option<SessionLock>, StoreError> {
        let mut connection = self.pool().acquire().await.map_err(convert_sqlx_error)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *connection)
            .await
            .map_err(convert_sqlx_error)?;
        Ok(locked.then_some(SessionLock {
            key,
            connection: Some(connection),
        }))
    }

    /// Waits (polling, at most `bound`) for the lock `key`.
    pub async fn session_lock(
        &self,
        key: i64,
        bound: Duration,
    ) -> Result<Option<SessionLock>, StoreError> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            if let Some(lock) = self.try_session_lock(key).await? {
                return Ok(Some(lock));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
