//! Retention enforcement in SQL: the "may be deleted" predicate built from the rules, whole
//! day partitions dropped when every event in them may go, bounded keyset batches for the
//! rest, and the bookkeeping that lets the next run finish what a crashed one left.
//!
//! An event may be deleted when its time is older than now less the longest `retain_days` of
//! the policies that match it (the default when none does), and no active hold covers it —
//! the same rule as `orgtrail_domain::retention::decide`.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use orgtrail_domain::retention::{LegalHold, RetentionPolicy, RetentionScope};
use serde_json::Value;
use sqlx::{Postgres, QueryBuilder, Row};

use super::partitions::{day_of_partition, partition_name, PARTITION_DDL_LOCK};
use super::retention::{list_policies, RETENTION_RULES_LOCK};
use super::rollups::{gone_columns, push_subtract_gone, recount_rollups, remove_empty_rollups};
use super::{convert_sqlx_error, PgStore, StoreError};

/// The rules a run (or a preview) applies, fixed at its start.
#[derive(Clone, Debug)]
pub struct RetentionRules {
    pub policies: Vec<RetentionPolicy>,
    /// Active holds.
    pub holds: Vec<LegalHold>,
    pub default_retain_days: u32,
    pub now: DateTime<Utc>,
}

impl RetentionRules {
    /// No event younger than this can be deleted: now less the shortest retention.
    pub fn scan_bound(&self) -> DateTime<Utc> {
        let shortest = self
            .policies
            .iter()
            .map(|policy| policy.retain_days)
            .chain([self.default_retain_days])
            .min()
            .unwrap_or(self.default_retain_days);
        self.now - chrono::Duration::days(i64::from(shortest))
    }
}

/// What the store says of the rules now: their content and a fingerprint that changes with
/// any policy version or hold.
pub struct LoadedRules {
    pub policies: Vec<RetentionPolicy>,
    pub holds: Vec<LegalHold>,
    pub fingerprint: String,
}

/// Deletions of a run, per (account, region).
pub type RunCounts = BTreeMap<(String, String), i64>;

/// The outcome of one batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchOutcome {
    pub deleted: i64,
}

/// What happened to a partition the run wanted to drop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionDrop {
    Dropped {
        events: i64,
    },
    /// Events that must be kept appeared meanwhile: the partition is attached again.
    Kept,
    /// The rules changed: the run stops, the next one decides again.
    RulesChanged,
}

/// Pushes `COALESCE((…all of the scope's conditions…), FALSE)`: NULL-safe, so an event
/// without an account never matches an account-scoped policy or hold.
fn push_scope(sql: &mut QueryBuilder<'_, Postgres>, scope: &RetentionScope, alias: &str) {
    sql.push("COALESCE((TRUE");
    for (column, values) in [
        ("account_id", &scope.accounts),
        ("aws_region", &scope.regions),
        ("event_category", &scope.event_categories),
        ("event_source", &scope.event_sources),
        ("event_name", &scope.event_names),
    ] {
        if !values.is_empty() {
            sql.push(format!(" AND {alias}{column} = ANY("))
                .push_bind(values.clone())
                .push(")");
        }
    }
    if let Some(read_only) = scope.read_only {
        sql.push(format!(" AND {alias}read_only = "))
            .push_bind(read_only);
    }
    sql.push("), FALSE)");
}

/// Pushes the predicate "this event may be deleted under `rules`".
fn push_deletable(sql: &mut QueryBuilder<'_, Postgres>, rules: &RetentionRules, alias: &str) {
    let days = |days: u32| i32::try_from(days).unwrap_or(i32::MAX);
    sql.push(format!("({alias}event_time < "))
        .push_bind(rules.now)
        .push(" - make_interval(days => ");
    if rules.policies.is_empty() {
        sql.push_bind(days(rules.default_retain_days));
    } else {
        sql.push("COALESCE(GREATEST(");
        for (position, policy) in rules.policies.iter().enumerate() {
            if position > 0 {
                sql.push(", ");
            }
            sql.push("CASE WHEN ");
            push_scope(sql, &policy.scope, alias);
            sql.push(" THEN ")
                .push_bind(days(policy.retain_days))
                .push(" END");
        }
        sql.push("), ")
            .push_bind(days(rules.default_retain_days))
            .push(")");
    }
    sql.push(")");
    for hold in &rules.holds {
        sql.push(" AND NOT ");
        push_scope(sql, &hold.scope, alias);
    }
    sql.push(")");
}

const FINGERPRINT: &str = "SELECT
    (SELECT coalesce(string_agg(policy_id || ':' || current_version || ':' || coalesce(deleted_at::text, ''), ',' ORDER BY policy_id), '')
     FROM retention_policies)
    || '|' ||
    (SELECT coalesce(string_agg(hold_id || ':' || coalesce(released_at::text, ''), ',' ORDER BY hold_id), '')
     FROM legal_holds)";

impl PgStore {
    /// The live policies, the active holds and their fingerprint, read together.
    pub async fn load_rules(&self, now: DateTime<Utc>) -> Result<LoadedRules, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(RETENTION_RULES_LOCK)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        let policies = list_policies(&mut *transaction)
            .await?
            .into_iter()
            .map(|stored| stored.policy)
            .collect();
        let fingerprint: String = sqlx::query_scalar(FINGERPRINT)
            .fetch_one(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        let holds = self
            .list_holds(false, now)
            .await?
            .into_iter()
            .map(|stored| stored.hold)
            .filter(|hold| hold.is_active(now))
            .collect();
        Ok(LoadedRules {
            policies,
            holds,
            fingerprint,
        })
    }

    /// Records the start of a run with its plan.
    pub async fn begin_run(&self, runner: &str, plan: &Value) -> Result<i64, StoreError> {
        sqlx::query_scalar("INSERT INTO retention_runs (status, runner, plan) VALUES ('running', $1, $2) RETURNING run_id")
            .bind(runner)
            .bind(plan)
            .fetch_one(self.pool())
            .await
            .map_err(convert_sqlx_error)
    }

    /// Runs left 'running' by a runner that died (called under the enforcement lock): their
    /// ids, plans and deletions, marked interrupted.
    pub async fn close_interrupted_runs(&self) -> Result<Vec<(i64, Value, RunCounts)>, StoreError> {
        let runs: Vec<(i64, Value)> =
            sqlx::query_as("UPDATE retention_runs SET status = 'interrupted', finished_at = now() WHERE status = 'running' RETURNING run_id, plan")
                .fetch_all(self.pool())
                .await
                .map_err(convert_sqlx_error)?;
        let mut closed = Vec::new();
        for (run_id, plan) in runs {
            closed.push((run_id, plan, self.run_counts(run_id).await?));
        }
        Ok(closed)
    }

    pub async fn finish_run(&self, run_id: i64, status: &str) -> Result<RunCounts, StoreError> {
        sqlx::query("UPDATE retention_runs SET status = $2, finished_at = now() WHERE run_id = $1")
            .bind(run_id)
            .bind(status)
            .execute(self.pool())
            .await
            .map_err(convert_sqlx_error)?;
        self.run_counts(run_id).await
    }

    async fn run_counts(&self, run_id: i64) -> Result<RunCounts, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT account_id, aws_region, events FROM retention_run_deletions WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        Ok(rows
            .into_iter()
            .map(|(account, region, events)| ((account, region), events))
            .collect())
    }

    /// Events `rules` would delete, per (account, region).
    pub async fn count_deletable(&self, rules: &RetentionRules) -> Result<RunCounts, StoreError> {
        let mut sql = QueryBuilder::<Postgres>::new(
            "SELECT coalesce(account_id, ''), coalesce(aws_region, ''), count(*) FROM events WHERE event_time < ",
        );
        sql.push_bind(rules.scan_bound()).push(" AND ");
        push_deletable(&mut sql, rules, "");
        sql.push(" GROUP BY 1, 2");
        let rows: Vec<(String, String, i64)> = sql
            .build_query_as()
            .fetch_all(self.pool())
            .await
            .map_err(convert_sqlx_error)?;
        Ok(rows
            .into_iter()
            .map(|(account, region, events)| ((account, region), events))
            .collect())
    }

    /// The day partitions that start before the scan bound, oldest first, with (all events,
    /// deletable events).
    pub async fn partitions_to_consider(
        &self,
        rules: &RetentionRules,
    ) -> Result<Vec<(NaiveDate, i64, i64)>, StoreError> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT child.relname::text FROM pg_inherits
             JOIN pg_class child ON child.oid = pg_inherits.inhrelid
             WHERE pg_inherits.inhparent = 'events'::regclass AND NOT pg_inherits.inhdetachpending",
        )
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        let bound = rules.scan_bound();
        let mut days: Vec<NaiveDate> = names
            .iter()
            .filter_map(|name| day_of_partition(name))
            .filter(|day| {
                day.checked_add_days(Days::new(1))
                    .is_some_and(|end| end.and_time(chrono::NaiveTime::MIN).and_utc() <= bound)
            })
            .collect();
        days.sort();
        let mut considered = Vec::with_capacity(days.len());
        for day in days {
            let mut sql = QueryBuilder::<Postgres>::new("SELECT count(*), count(*) FILTER (WHERE ");
            push_deletable(&mut sql, rules, "");
            sql.push(format!(") FROM {}", partition_name(day)));
            let (all, deletable): (i64, i64) = sql
                .build_query_as()
                .fetch_one(self.pool())
                .await
                .map_err(convert_sqlx_error)?;
            considered.push((day, all, deletable));
        }
        Ok(considered)
    }

    /// Drops the partition of `day`, every event of which `rules` may delete: recorded first,
    /// detached without blocking ingest, checked again under the rules lock, then dropped with
    /// its counts in one transaction; its eventIDs leave the dedupe index after.
    pub async fn drop_partition(
        &self,
        run_id: i64,
        day: NaiveDate,
        rules: &RetentionRules,
        fingerprint: &str,
    ) -> Result<PartitionDrop, StoreError> {
        let name = partition_name(day);
        sqlx::query(
            "INSERT INTO retention_partition_drops (partition, run_id, day, state, events) VALUES ($1, $2, $3, 'detaching', 0)
             ON CONFLICT (partition) DO UPDATE SET run_id = EXCLUDED.run_id, state = 'detaching', updated_at = now()",
        )
        .bind(&name)
        .bind(run_id)
        .bind(day)
        .execute(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        // CONCURRENTLY waits for the transactions that may use the partition instead of
        // locking everyone out; it cannot run inside a transaction block.
        sqlx::raw_sql(&format!(
            "ALTER TABLE events DETACH PARTITION {name} CONCURRENTLY"
        ))
        .execute(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        self.forget_partitions();
        self.finish_detached_partition(run_id, day, rules, Some(fingerprint))
            .await
    }

    /// Drops a detached day partition if every event in it may still be deleted, else attaches
    /// it again. With a fingerprint, refuses when the rules changed since it was taken.
    async fn finish_detached_partition(
        &self,
        run_id: i64,
        day: NaiveDate,
        rules: &RetentionRules,
        fingerprint: Option<&str>,
    ) -> Result<PartitionDrop, StoreError> {
        let name = partition_name(day);
        let next_day = day.checked_add_days(Days::new(1)).unwrap_or(day);
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        for (lock, key) in [
            ("pg_advisory_xact_lock_shared", RETENTION_RULES_LOCK),
            ("pg_advisory_xact_lock", PARTITION_DDL_LOCK),
        ] {
            sqlx::query(&format!("SELECT {lock}($1)"))
                .bind(key)
                .execute(&mut *transaction)
                .await
                .map_err(convert_sqlx_error)?;
        }
        let attach_again = format!(
            "ALTER TABLE events ATTACH PARTITION {name} FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next_day} 00:00:00+00')"
        );
        if let Some(fingerprint) = fingerprint {
            let now: String = sqlx::query_scalar(FINGERPRINT)
                .fetch_one(&mut *transaction)
                .await
                .map_err(convert_sqlx_error)?;
            if now != fingerprint {
                sqlx::query(&attach_again)
                    .execute(&mut *transaction)
                    .await
                    .map_err(convert_sqlx_error)?;
                sqlx::query("DELETE FROM retention_partition_drops WHERE partition = $1")
                    .bind(&name)
                    .execute(&mut *transaction)
                    .await
                    .map_err(convert_sqlx_error)?;
                transaction.commit().await.map_err(convert_sqlx_error)?;
                return Ok(PartitionDrop::RulesChanged);
            }
        }
        let mut sql = QueryBuilder::<Postgres>::new("SELECT coalesce(account_id, ''), coalesce(aws_region, ''), count(*), count(*) FILTER (WHERE NOT ");
        push_deletable(&mut sql, rules, "");
        sql.push(format!(") FROM {name} GROUP BY 1, 2"));
        let rows: Vec<(String, String, i64, i64)> = sql
            .build_query_as()
            .fetch_all(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        if rows.iter().any(|(_, _, _, kept)| *kept > 0) {
            sqlx::query(&attach_again)
                .execute(&mut *transaction)
                .await
                .map_err(convert_sqlx_error)?;
            sqlx::query("DELETE FROM retention_partition_drops WHERE partition = $1")
                .bind(&name)
                .execute(&mut *transaction)
                .await
                .map_err(convert_sqlx_error)?;
            transaction.commit().await.map_err(convert_sqlx_error)?;
            return Ok(PartitionDrop::Kept);
        }
        let mut events = 0;
        for (account, region, count, _) in &rows {
            events += count;
            add_deletions(&mut transaction, run_id, account, region, *count).await?;
        }
        sqlx::query(&format!("DROP TABLE {name}"))
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        // The day's rollups go with it (counting whatever came back to the day meanwhile).
        let (day_start, day_end) = day_bounds(day);
        recount_rollups(&mut transaction, day_start, day_end).await?;
        sqlx::query("UPDATE retention_partition_drops SET state = 'dropped', events = $2, run_id = $3, updated_at = now() WHERE partition = $1")
            .bind(&name)
            .bind(events)
            .bind(run_id)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        tracing::info!(partition = %name, events, "dropped an expired day partition");
        self.forget_dropped_event_ids(day).await?;
        Ok(PartitionDrop::Dropped { events })
    }

    /// Removes the dedupe entries of a dropped day, in batches, then marks the drop done. If a
    /// late delivery has brought the day back meanwhile, the entries of its new events stay.
    async fn forget_dropped_event_ids(&self, day: NaiveDate) -> Result<(), StoreError> {
        let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
        let end = start + chrono::Duration::days(1);
        let name = partition_name(day);
        let recreated: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(&name)
            .fetch_one(self.pool())
            .await
            .map_err(convert_sqlx_error)?;
        let kept_alive = if recreated {
            format!(" AND NOT EXISTS (SELECT 1 FROM {name} AS e WHERE e.event_time = ids.event_time AND e.event_id = ids.event_id)")
        } else {
            String::new()
        };
        let statement = format!(
            "DELETE FROM event_ids WHERE event_id IN (
                 SELECT ids.event_id FROM event_ids AS ids
                 WHERE ids.event_time >= $1 AND ids.event_time < $2{kept_alive}
                 LIMIT 10000)"
        );
        loop {
            let removed = sqlx::query(&statement)
                .bind(start)
                .bind(end)
                .execute(self.pool())
                .await
                .map_err(convert_sqlx_error)?
                .rows_affected();
            if removed == 0 {
                break;
            }
        }
        sqlx::query("UPDATE retention_partition_drops SET state = 'done', updated_at = now() WHERE partition = $1")
            .bind(&name)
            .execute(self.pool())
            .await
            .map_err(convert_sqlx_error)?;
        Ok(())
    }

    /// Finishes the partition drops a crashed run left (called under the enforcement lock):
    /// a detach still pending is finalised, a detached partition is dropped if all its events
    /// may still go (else attached again), a dropped one's eventIDs are removed.
    pub async fn finish_pending_partition_drops(
        &self,
        run_id: i64,
        rules: &RetentionRules,
    ) -> Result<Vec<(NaiveDate, PartitionDrop)>, StoreError> {
        let pending: Vec<(String, NaiveDate, String)> =
            sqlx::query_as("SELECT partition, day, state FROM retention_partition_drops WHERE state <> 'done' ORDER BY day")
                .fetch_all(self.pool())
                .await
                .map_err(convert_sqlx_error)?;
        let mut finished = Vec::new();
        for (name, day, state) in pending {
            if state == "dropped" {
                self.forget_dropped_event_ids(day).await?;
                continue;
            }
            let row = sqlx::query(
                "SELECT to_regclass($1) IS NOT NULL AS exists,
                        (SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = to_regclass($1)) AS pending",
            )
            .bind(&name)
            .fetch_one(self.pool())
            .await
            .map_err(convert_sqlx_error)?;
            let exists: bool = row.get("exists");
            let pending: Option<bool> = row.get("pending");
            match (exists, pending) {
                (true, Some(false)) | (false, _) => {
                    // Never detached (or gone): the run decides afresh.
                    sqlx::query("DELETE FROM retention_partition_drops WHERE partition = $1")
                        .bind(&name)
                        .execute(self.pool())
                        .await
                        .map_err(convert_sqlx_error)?;
                }
                (true, Some(true)) => {
                    sqlx::raw_sql(&format!(
                        "ALTER TABLE events DETACH PARTITION {name} FINALIZE"
                    ))
                    .execute(self.pool())
                    .await
                    .map_err(convert_sqlx_error)?;
                    finished.push((
                        day,
                        self.finish_detached_partition(run_id, day, rules, None)
                            .await?,
                    ));
                }
                (true, None) => finished.push((
                    day,
                    self.finish_detached_partition(run_id, day, rules, None)
                        .await?,
                )),
            }
        }
        Ok(finished)
    }

    /// Deletes, in one short transaction, up to `batch` events of the partition of `day` that
    /// `rules` may delete, with their dedupe entries and their count. `None` when the rules
    /// changed since `fingerprint` (nothing is deleted then).
    pub async fn delete_expired_batch(
        &self,
        run_id: i64,
        rules: &RetentionRules,
        fingerprint: &str,
        day: NaiveDate,
        batch: u32,
    ) -> Result<Option<BatchOutcome>, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(RETENTION_RULES_LOCK)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        let now: String = sqlx::query_scalar(FINGERPRINT)
            .fetch_one(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        if now != fingerprint {
            return Ok(None);
        }
        // One partition, by tuple id: no scan of the other days, no lock outside these rows.
        let name = partition_name(day);
        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "WITH gone AS (DELETE FROM {name} AS e WHERE e.ctid = ANY(ARRAY(SELECT ctid FROM {name} AS e WHERE "
        ));
        push_deletable(&mut sql, rules, "e.");
        sql.push(" LIMIT ").push_bind(i64::from(batch));
        // The deleted events leave the dedupe index, the run's counts and the rollups.
        let (day_start, day_end) = day_bounds(day);
        sql.push(format!(
            ")) RETURNING e.event_id, {}), \
             ids AS (DELETE FROM event_ids AS i USING gone AS g WHERE i.event_id = g.event_id), ",
            gone_columns("e")
        ));
        push_subtract_gone(&mut sql, day_start, day_end);
        sql.push(
            ", counted AS (INSERT INTO retention_run_deletions (run_id, account_id, aws_region, events) SELECT ",
        );
        sql.push_bind(run_id);
        sql.push(
            ", coalesce(account_id, ''), coalesce(aws_region, ''), count(*) FROM gone GROUP BY 2, 3 \
                 ON CONFLICT (run_id, account_id, aws_region) \
                 DO UPDATE SET events = retention_run_deletions.events + EXCLUDED.events) \
             SELECT count(*) FROM gone",
        );
        let deleted: i64 = sql
            .build_query_scalar()
            .fetch_one(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        remove_empty_rollups(&mut transaction, day_start, day_end).await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(Some(BatchOutcome { deleted }))
    }
}

/// `[start, end)` of a UTC day.
fn day_bounds(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
    (start, start + chrono::Duration::days(1))
}

async fn add_deletions(
    transaction: &mut sqlx::Transaction<'static, Postgres>,
    run_id: i64,
    account: &str,
    region: &str,
    events: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO retention_run_deletions (run_id, account_id, aws_region, events) VALUES ($1, $2, $3, $4)
         ON CONFLICT (run_id, account_id, aws_region) DO UPDATE SET events = retention_run_deletions.events + EXCLUDED.events",
    )
    .bind(run_id)
    .bind(account)
    .bind(region)
    .bind(events)
    .execute(&mut **transaction)
    .await
    .map_err(convert_sqlx_error)?;
    Ok(())
}
