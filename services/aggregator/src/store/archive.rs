//! The consolidated archive's bookkeeping: which partitions (account, region, hour of event
//! time) hold stored events the archive does not, the events of one partition not archived
//! yet (opened), a lock per partition so one replica writes it at a time, and the objects
//! written, each with the ids of the events it holds.

use chrono::{DateTime, Duration, Utc};
use orgtrail_domain::CloudTrailEvent;
use sha2::{Digest, Sha256};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use super::events::{PgEventRow, EVENT_COLUMNS};
use super::session_lock::SessionLock;
use super::{convert_sqlx_error, PgStore, StoreError};

/// The high half of every partition lock's key ("orga"); the low half is from the partition.
const PARTITION_LOCK_SPACE: i64 = 0x6f72_6761;

/// One hour of one account and region: the unit the archive writes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::FromRow)]
pub struct ArchivePartition {
    /// As the rollups keep it: '' for none.
    pub account_id: String,
    pub aws_region: String,
    pub hour: DateTime<Utc>,
}

/// The key of the session lock of the objects whose keys start with `folder` (an hour's
/// folder and hour: two partitions the archive's paths put in one folder share it).
fn folder_lock_key(folder: &str) -> i64 {
    let digest = Sha256::digest(folder.as_bytes());
    let low = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    (PARTITION_LOCK_SPACE << 32) | i64::from(low)
}

/// An object written to the archive, to record.
#[derive(Clone, Debug)]
pub struct ArchiveObject {
    pub object_key: String,
    pub partition: ArchivePartition,
    pub sequence: i32,
    pub bytes: i64,
    pub sha256: [u8; 32],
    pub event_ids: Vec<Uuid>,
    /// The events' principals (`userIdentity.arn`), sorted and distinct; `None` when there
    /// are more than the archiver records ([`MAX_RECORDED_PRINCIPALS`]).
    pub principals: Option<Vec<String>>,
}

/// Principals recorded per object at most: past it an object is recorded as holding any.
pub const MAX_RECORDED_PRINCIPALS: usize = 1000;

/// An archive digest as recorded.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredArchiveDigest {
    pub digest_key: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub content_sha256: Vec<u8>,
    pub signature: String,
}

/// An object as recorded.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredArchiveObject {
    pub object_key: String,
    pub account_id: String,
    pub aws_region: String,
    pub hour: DateTime<Utc>,
    pub sequence: i32,
    pub events: i32,
    pub bytes: i64,
    pub sha256: Vec<u8>,
    pub written_at: DateTime<Utc>,
    /// Sorted and distinct; `None`: not recorded.
    pub principals: Option<Vec<String>>,
}

impl PgStore {
    /// Partitions of hours ended before `settled_before` whose stored events outnumber the
    /// archived ones (never archived, or late events since), oldest first, at most `limit`.
    /// The counts come from the rollups' hours, exact before their fold.
    pub async fn archive_candidates(
        &self,
        settled_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ArchivePartition>, StoreError> {
        sqlx::query_as(
            "WITH stored AS (
                 SELECT account_id, aws_region, hour, sum(events) AS events
                 FROM hour_counts WHERE hour + interval '1 hour' <= $1
                 GROUP BY 1, 2, 3
             ),
             archived AS (
                 SELECT account_id, aws_region, hour, sum(events) AS events
                 FROM archive_objects GROUP BY 1, 2, 3
             )
             SELECT s.account_id, s.aws_region, s.hour
             FROM stored AS s
             LEFT JOIN archived AS a USING (account_id, aws_region, hour)
             WHERE s.events > coalesce(a.events, 0)
             ORDER BY s.hour, s.account_id, s.aws_region
             LIMIT $2",
        )
        .bind(settled_before)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// The lock of the objects whose keys start with `folder` (an hour's folder and hour), if
    /// no other session holds it: their one writer.
    pub async fn try_archive_folder_lock(
        &self,
        folder: &str,
    ) -> Result<Option<SessionLock>, StoreError> {
        self.try_session_lock(folder_lock_key(folder)).await
    }

    /// The partition's stored events no archived object holds, opened, oldest first, at most
    /// `limit`; and the
    /// sequence number the next object whose key starts with `folder` takes.
    pub async fn unarchived_events(
        &self,
        partition: &ArchivePartition,
        folder: &str,
        limit: u32,
    ) -> Result<(Vec<CloudTrailEvent>, i32), StoreError> {
        let next_sequence: i32 = sqlx::query_scalar(
            "SELECT coalesce(max(sequence) + 1, 0) FROM archive_objects
             WHERE starts_with(object_key, $1)",
        )
        .bind(folder)
        .fetch_one(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE event_time >= "
        ));
        sql.push_bind(partition.hour)
            .push(" AND event_time < ")
            .push_bind(partition.hour + Duration::hours(1));
        for (column, value) in [
            ("account_id", &partition.account_id),
            ("aws_region", &partition.aws_region),
        ] {
            if value.is_empty() {
                sql.push(format!(" AND {column} IS NULL"));
            } else {
                sql.push(format!(" AND {column} = "))
                    .push_bind(value.clone());
            }
        }
        sql.push(
            " AND NOT EXISTS (SELECT 1 FROM archive_objects AS o, unnest(o.event_ids) AS archived \
             WHERE o.account_id = ",
        )
        .push_bind(partition.account_id.clone())
        .push(" AND o.aws_region = ")
        .push_bind(partition.aws_region.clone())
        .push(" AND o.hour = ")
        .push_bind(partition.hour)
        .push(" AND archived = events.event_id) ORDER BY event_time, event_id LIMIT ")
        .push_bind(i64::from(limit));
        let rows: Vec<PgEventRow> = sql
            .build_query_as()
            .fetch_all(self.pool())
            .await
            .map_err(convert_sqlx_error)?;
        Ok((self.open_rows(rows).await?, next_sequence))
    }

    /// Records an object once it is in the bucket.
    pub async fn record_archive_object(&self, object: &ArchiveObject) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO archive_objects
                 (object_key, account_id, aws_region, hour, sequence, events, bytes, sha256, event_ids,
                  principals)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&object.object_key)
        .bind(&object.partition.account_id)
        .bind(&object.partition.aws_region)
        .bind(object.partition.hour)
        .bind(object.sequence)
        .bind(i32::try_from(object.event_ids.len()).unwrap_or(i32::MAX))
        .bind(object.bytes)
        .bind(object.sha256.as_slice())
        .bind(&object.event_ids)
        .bind(&object.principals)
        .execute(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        Ok(())
    }

    /// The database's clock: digests go by wall-clock time of writing, the same clock that
    /// stamps the objects.
    pub async fn database_now(&self) -> Result<DateTime<Utc>, StoreError> {
        sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(self.pool())
            .await
            .map_err(convert_sqlx_error)
    }

    /// The newest archive digest.
    pub async fn last_archive_digest(&self) -> Result<Option<StoredArchiveDigest>, StoreError> {
        sqlx::query_as(
            "SELECT digest_key, start_time, end_time, content_sha256, signature
             FROM archive_digests ORDER BY end_time DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// When the first object not in a digest was written.
    pub async fn first_undigested_write(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        sqlx::query_scalar("SELECT min(written_at) FROM archive_objects WHERE digest_key IS NULL")
            .fetch_one(self.pool())
            .await
            .map_err(convert_sqlx_error)
    }

    /// The objects written before `before` that no digest lists yet, by key.
    pub async fn undigested_objects(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<StoredArchiveObject>, StoreError> {
        sqlx::query_as(
            "SELECT object_key, account_id, aws_region, hour, sequence, events, bytes, sha256,
                    written_at, principals
             FROM archive_objects WHERE digest_key IS NULL AND written_at < $1
             ORDER BY object_key",
        )
        .bind(before)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// Records a digest written to the bucket and the objects it lists, in one transaction.
    pub async fn record_archive_digest(
        &self,
        digest: &StoredArchiveDigest,
        object_keys: &[String],
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        sqlx::query(
            "INSERT INTO archive_digests
                 (digest_key, start_time, end_time, content_sha256, signature, objects)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&digest.digest_key)
        .bind(digest.start_time)
        .bind(digest.end_time)
        .bind(&digest.content_sha256)
        .bind(&digest.signature)
        .bind(i32::try_from(object_keys.len()).unwrap_or(i32::MAX))
        .execute(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        sqlx::query(
            "UPDATE archive_objects SET digest_key = $1
             WHERE object_key = ANY($2) AND digest_key IS NULL",
        )
        .bind(&digest.digest_key)
        .bind(object_keys)
        .execute(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        transaction.commit().await.map_err(convert_sqlx_error)
    }

    /// Every object recorded, by key.
    pub async fn archive_objects(&self) -> Result<Vec<StoredArchiveObject>, StoreError> {
        sqlx::query_as(
            "SELECT object_key, account_id, aws_region, hour, sequence, events, bytes, sha256,
                    written_at, principals
             FROM archive_objects ORDER BY object_key",
        )
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_locks_differ_by_folder_and_stay_off_the_other_locks() {
        let one = "orgtrail/events/account=111111111111/region=us-east-1/day=2024-05-01/10-";
        assert_eq!(folder_lock_key(one), folder_lock_key(one));
        assert_ne!(
            folder_lock_key(one),
            folder_lock_key(&one.replace("10-", "11-"))
        );
        assert_eq!(folder_lock_key(one) >> 32, PARTITION_LOCK_SPACE);
        assert_ne!(
            folder_lock_key(one) >> 32,
            super::super::session_lock::ENFORCEMENT_LOCK >> 32
        );
    }
}
