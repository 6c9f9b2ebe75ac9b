//! What one SQL query reads, as one consistent snapshot: the archive objects recorded, and the
//! stored events no recorded object holds — read in one REPEATABLE READ, READ ONLY transaction,
//! so an hour the archiver moves meanwhile counts once: an object is recorded in the same
//! transaction as nothing else, after its upload, and the snapshot either lists it (its events
//! are left out of the recent ones) or does not (they are read from PostgreSQL). Of the
//! partitions not archived yet, only those a query's predicates reach are read.

use chrono::{DateTime, Utc};
use orgtrail_domain::CloudTrailEvent;

use super::archive::StoredArchiveObject;
use super::events::{PgEventRow, EVENT_COLUMNS};
use super::{convert_sqlx_error, PgStore, StoreError};

/// One query's data.
pub struct QuerySnapshot {
    pub objects: Vec<StoredArchiveObject>,
    /// Every stored event of the scope no listed object holds, opened — or, when there are
    /// more than asked for, one more than asked for.
    pub recent: Vec<CloudTrailEvent>,
}

impl PgStore {
    /// The snapshot of `accounts` (`None`: every account), with the recent events of the
    /// partitions (account, region, hour) `reaches` keeps only — at most `max_recent + 1` of
    /// them (more than `max_recent` says there are too many to read).
    pub async fn query_snapshot(
        &self,
        accounts: Option<&[String]>,
        max_recent: u64,
        reaches: impl Fn(&str, &str, DateTime<Utc>) -> bool,
    ) -> Result<QuerySnapshot, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        let objects: Vec<StoredArchiveObject> = sqlx::query_as(
            "SELECT object_key, account_id, aws_region, hour, sequence, events, bytes, sha256,
                    written_at, principals
             FROM archive_objects WHERE $1::text[] IS NULL OR account_id = ANY($1)
             ORDER BY object_key",
        )
        .bind(accounts)
        .fetch_all(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        // The partitions whose stored events outnumber the archived ones (the rollups' hours,
        // exact before their fold); only those are read event by event.
        let partitions: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(
            "WITH stored AS (
                 SELECT account_id, aws_region, hour, sum(events) AS events
                 FROM hour_counts WHERE $1::text[] IS NULL OR account_id = ANY($1)
                 GROUP BY 1, 2, 3
             ),
             archived AS (
                 SELECT account_id, aws_region, hour, sum(events) AS events
                 FROM archive_objects WHERE $1::text[] IS NULL OR account_id = ANY($1)
                 GROUP BY 1, 2, 3
             )
             SELECT s.account_id, s.aws_region, s.hour
             FROM stored AS s LEFT JOIN archived AS a USING (account_id, aws_region, hour)
             WHERE s.events > coalesce(a.events, 0)",
        )
        .bind(accounts)
        .fetch_all(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        // Only the partitions the query's predicates on time, account and region can reach.
        let partitions: Vec<(String, String, DateTime<Utc>)> = partitions
            .into_iter()
            .filter(|(account, region, hour)| reaches(account, region, *hour))
            .collect();
        let mut rows: Vec<PgEventRow> = Vec::new();
        if !partitions.is_empty() {
            let (account_ids, regions, hours): (Vec<String>, Vec<String>, Vec<DateTime<Utc>>) =
                partitions.into_iter().fold(
                    (Vec::new(), Vec::new(), Vec::new()),
                    |(mut a, mut r, mut h), (account, region, hour)| {
                        a.push(account);
                        r.push(region);
                        h.push(hour);
                        (a, r, h)
                    },
                );
            rows = sqlx::query_as(&format!(
                "SELECT {EVENT_COLUMNS} FROM events
                 JOIN unnest($1::text[], $2::text[], $3::timestamptz[]) AS p (account, region, hour)
                   ON coalesce(events.account_id, '') = p.account
                  AND coalesce(events.aws_region, '') = p.region
                  AND events.event_time >= p.hour
                  AND events.event_time < p.hour + interval '1 hour'
                 WHERE NOT EXISTS (
                     SELECT 1 FROM archive_objects AS o
                     WHERE o.account_id = p.account AND o.aws_region = p.region
                       AND o.hour = p.hour AND events.event_id = ANY(o.event_ids))
                 LIMIT $4"
            ))
            .bind(&account_ids)
            .bind(&regions)
            .bind(&hours)
            .bind(i64::try_from(max_recent.saturating_add(1)).unwrap_or(i64::MAX))
            .fetch_all(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        }
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(QuerySnapshot {
            objects,
            recent: self.open_rows(rows).await?,
        })
    }
}
