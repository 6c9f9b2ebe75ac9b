//! The day partitions of `events`: `events_pYYYYMMDD` holds the events of one UTC day.
//!
//! A partition is created as a plain table and then attached, because ATTACH PARTITION takes a
//! lock on `events` that does not conflict with inserts and reads (CREATE TABLE … PARTITION OF
//! would wait for every open ingest transaction and block everything queued behind it).
//! Creation runs in its own short transaction under an advisory lock, so replicas creating the
//! same day serialise, and is remembered in memory so a batch pays for it once.
//!
//! A file's transaction that has written to `events` keeps the partitions it saw then: PostgreSQL
//! takes in other sessions' changes to a table's partitions only when the transaction takes a
//! lock it did not hold. So before a batch writes to a day for the first time, the transaction
//! locks that day's partition ([`lock_partitions`]), which makes a partition attached since it
//! began visible to its inserts.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{Days, NaiveDate};
use sqlx::Row;

use super::{convert_sqlx_error, PgStore, StoreError};

/// Serialises partition DDL between replicas (`pg_advisory_xact_lock` key).
pub(super) const PARTITION_DDL_LOCK: i64 = 0x6f72_6774_7261_0001;

/// The days known to have a partition.
#[derive(Default)]
pub struct EventPartitions {
    known_days: Mutex<HashSet<NaiveDate>>,
}

impl EventPartitions {
    fn missing(&self, days: impl IntoIterator<Item = NaiveDate>) -> Vec<NaiveDate> {
        let known = self
            .known_days
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut missing: Vec<NaiveDate> = days
            .into_iter()
            .filter(|day| !known.contains(day))
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }

    fn remember(&self, days: impl IntoIterator<Item = NaiveDate>) {
        let mut known = self
            .known_days
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        known.extend(days);
    }

    /// Forgets everything, so the next batches check the catalog again (after a partition was
    /// dropped behind this replica's back).
    pub fn forget_all(&self) {
        self.known_days
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }
}

pub(super) fn partition_name(day: NaiveDate) -> String {
    format!("events_p{}", day.format("%Y%m%d"))
}

pub(super) fn day_of_partition(name: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(name.strip_prefix("events_p")?, "%Y%m%d").ok()
}

/// Locks the partitions of `days` (which must exist) in the caller's transaction, as an insert
/// would; see the module's documentation for why a file's transaction does it before writing to
/// a day for the first time.
pub async fn lock_partitions(
    connection: &mut sqlx::PgConnection,
    days: impl IntoIterator<Item = NaiveDate>,
) -> Result<(), StoreError> {
    let names: Vec<String> = days.into_iter().map(partition_name).collect();
    if names.is_empty() {
        return Ok(());
    }
    // The names are made from dates only, so they need no quoting.
    sqlx::query(&format!(
        "LOCK TABLE {} IN ROW EXCLUSIVE MODE",
        names.join(", ")
    ))
    .execute(connection)
    .await
    .map_err(convert_sqlx_error)?;
    Ok(())
}

impl PgStore {
    /// The day partitions that exist, oldest first, with their names.
    pub async fn partition_days(&self) -> Result<Vec<(NaiveDate, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT child.relname AS name
             FROM pg_inherits
             JOIN pg_class child ON child.oid = pg_inherits.inhrelid
             WHERE pg_inherits.inhparent = 'events'::regclass",
        )
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        let mut days: Vec<(NaiveDate, String)> = rows
            .iter()
            .filter_map(|row| {
                let name: String = row.get("name");
                day_of_partition(&name).map(|day| (day, name))
            })
            .collect();
        days.sort();
        Ok(days)
    }

    /// Reads which day partitions exist.
    pub async fn load_partitions(&self) -> Result<usize, StoreError> {
        let days: Vec<NaiveDate> = self
            .partition_days()
            .await?
            .into_iter()
            .map(|(day, _)| day)
            .collect();
        let count = days.len();
        self.partitions.remember(days);
        Ok(count)
    }

    /// Makes sure every day of `days` has its partition.
    pub async fn ensure_partitions(
        &self,
        days: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<(), StoreError> {
        for day in self.partitions.missing(days) {
            self.create_partition(day).await?;
            self.partitions.remember([day]);
        }
        Ok(())
    }

    /// Creates the partitions from yesterday to `ahead_days` after `today`.
    pub async fn prepare_partitions_ahead(
        &self,
        today: NaiveDate,
        ahead_days: u32,
    ) -> Result<(), StoreError> {
        let first = today.checked_sub_days(Days::new(1)).unwrap_or(today);
        let days = first
            .iter_days()
            .take(ahead_days as usize + 2)
            .collect::<Vec<_>>();
        self.ensure_partitions(days).await
    }

    /// Forgets what is known of partitions (see [`EventPartitions::forget_all`]).
    pub fn forget_partitions(&self) {
        self.partitions.forget_all();
    }

    async fn create_partition(&self, day: NaiveDate) -> Result<(), StoreError> {
        let name = partition_name(day);
        let next_day = day
            .checked_add_days(Days::new(1))
            .ok_or_else(|| StoreError::CorruptRow(format!("no day follows {day}")))?;
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PARTITION_DDL_LOCK)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        let attached: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass($1))",
        )
        .bind(&name)
        .fetch_one(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        if !attached {
            // The name is made from a date only, so it needs no quoting beyond this.
            let create = format!(
                "CREATE TABLE {name} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            );
            let attach = format!(
                "ALTER TABLE events ATTACH PARTITION {name} \
                 FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next_day} 00:00:00+00')"
            );
            for statement in [create, attach] {
                sqlx::query(&statement)
                    .execute(&mut *transaction)
                    .await
                    .map_err(convert_sqlx_error)?;
            }
            tracing::info!(partition = %name, "created event partition");
        }
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        let day = NaiveDate::from_ymd_opt(2014, 9, 27).unwrap();
        assert_eq!(partition_name(day), "events_p20140927");
        assert_eq!(day_of_partition("events_p20140927"), Some(day));
        assert_eq!(day_of_partition("events_default"), None);
    }
}
