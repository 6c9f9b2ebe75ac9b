//! Insights' storage: the per-minute counts of each API read from the rollups, what changed
//! since an evaluation, the attributions counted over the events, the episodes found, the
//! evaluator's progress, and the tuning per scope (audited).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use orgtrail_detection::insights::{AttributionCounts, InsightType, ValueCounts};
use serde_json::Value;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use super::retention::append_audit;
use super::{convert_sqlx_error, PgStore, StoreError};

/// An account's API in a region: what Insights are about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InsightApi {
    pub account_id: String,
    pub aws_region: String,
    pub event_source: String,
    pub event_name: String,
}

/// The rollup series an Insight type counts: write management calls (every error code), or
/// management calls with an error (read and write).
fn series_condition(insight_type: InsightType) -> &'static str {
    match insight_type {
        InsightType::ApiCallRate => "s.event_category = 'Management' AND s.access = 'w'",
        InsightType::ApiErrorRate => "s.event_category = 'Management' AND s.error_code <> ''",
    }
}

/// A minute as a Unix minute number.
pub fn unix_minute(time: DateTime<Utc>) -> i64 {
    time.timestamp().div_euclid(60)
}

/// The start of a Unix minute.
pub fn minute_start(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(minute.saturating_mul(60), 0).unwrap_or_default()
}

/// The evaluator's progress.
#[derive(Clone, Copy, Debug, Default)]
pub struct InsightProgress {
    pub evaluated_through: Option<DateTime<Utc>>,
    /// Rollup changes of transactions from this id on may not have been seen.
    pub evaluated_xmin: Option<i64>,
}

/// An episode as stored.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct StoredEpisode {
    pub episode_id: i64,
    pub account_id: String,
    pub aws_region: String,
    pub event_source: String,
    pub event_name: String,
    pub insight_type: String,
    pub start_minute: DateTime<Utc>,
    pub end_minute: DateTime<Utc>,
    pub closed: bool,
    pub shared_event_id: Uuid,
    pub start_event_id: Uuid,
    pub end_event_id: Option<Uuid>,
    pub statistics: Value,
    pub model: Value,
    pub finding_id: Option<i64>,
    pub superseded_at: Option<DateTime<Utc>>,
}

impl StoredEpisode {
    pub fn api(&self) -> InsightApi {
        InsightApi {
            account_id: self.account_id.clone(),
            aws_region: self.aws_region.clone(),
            event_source: self.event_source.clone(),
            event_name: self.event_name.clone(),
        }
    }
}

/// An episode to record.
#[derive(Clone, Debug)]
pub struct EpisodeWrite {
    pub api: InsightApi,
    pub insight_type: InsightType,
    pub start_minute: DateTime<Utc>,
    pub end_minute: DateTime<Utc>,
    pub closed: bool,
    pub shared_event_id: Uuid,
    pub start_event_id: Uuid,
    pub end_event_id: Option<Uuid>,
    pub statistics: Value,
    pub model: Value,
}

/// Which episodes to list.
#[derive(Clone, Debug, Default)]
pub struct EpisodeFilter {
    pub accounts: Vec<String>,
    pub insight_type: Option<InsightType>,
    pub since: Option<DateTime<Utc>>,
    pub include_superseded: bool,
}

/// A setting of one scope ('' for any).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct StoredInsightSetting {
    pub account_id: String,
    pub event_source: String,
    pub event_name: String,
    pub threshold_sigma: Option<f64>,
    pub min_rate_per_minute: Option<f64>,
    pub disabled: bool,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

const EPISODE_COLUMNS: &str = "episode_id, account_id, aws_region, event_source, event_name, insight_type, start_minute, end_minute, closed, shared_event_id, start_event_id, end_event_id, statistics, model, finding_id, superseded_at";

impl PgStore {
    pub async fn insight_progress(&self) -> Result<InsightProgress, StoreError> {
        let (evaluated_through, evaluated_xmin): (Option<DateTime<Utc>>, Option<i64>) =
            sqlx::query_as("SELECT evaluated_through, evaluated_xmin FROM insight_evaluation")
                .fetch_one(self.pool())
                .await
                .map_err(convert_sqlx_error)?;
        Ok(InsightProgress {
            evaluated_through,
            evaluated_xmin,
        })
    }

    pub async fn set_insight_progress(
        &self,
        evaluated_through: DateTime<Utc>,
        evaluated_xmin: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE insight_evaluation SET evaluated_through = $1, evaluated_xmin = $2")
            .bind(evaluated_through)
            .bind(evaluated_xmin)
            .execute(self.pool())
            .await
            .map_err(convert_sqlx_error)?;
        Ok(())
    }

    /// The APIs with counts of `insight_type` in `[from, to)`.
    pub async fn insight_apis(
        &self,
        insight_type: InsightType,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<InsightApi>, StoreError> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(&format!(
            "SELECT DISTINCT s.account_id, s.aws_region, s.event_source, s.event_name
             FROM minute_counts AS m JOIN rollup_series AS s USING (series_id)
             WHERE m.minute >= $1 AND m.minute < $2 AND m.events > 0 AND {}
             ORDER BY 1, 2, 3, 4",
            series_condition(insight_type)
        ))
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        Ok(rows.into_iter().map(api_of).collect())
    }

    /// The APIs whose counts of `insight_type` files changed, in transactions from `xmin` on,
    /// at minutes before `before`: each with the earliest such minute.
    pub async fn late_insight_changes(
        &self,
        insight_type: InsightType,
        xmin: i64,
        before: DateTime<Utc>,
    ) -> Result<Vec<(InsightApi, DateTime<Utc>)>, StoreError> {
        let rows: Vec<(String, String, String, String, DateTime<Utc>)> = sqlx::query_as(&format!(
            "SELECT s.account_id, s.aws_region, s.event_source, s.event_name, min(c.first_minute)
                 FROM rollup_changes AS c JOIN rollup_series AS s USING (series_id)
                 WHERE c.xid >= $1 AND c.first_minute < $2 AND {}
                 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
            series_condition(insight_type)
        ))
        .bind(xmin)
        .bind(before)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        Ok(rows
            .into_iter()
            .map(|(account, region, source, name, first)| {
                (api_of((account, region, source, name)), first)
            })
            .collect())
    }

    /// Forgets rollup changes of minutes before `before` that every evaluation has seen
    /// (transactions before `xmin`).
    pub async fn forget_rollup_changes(&self, xmin: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM rollup_changes WHERE xid < $1")
            .bind(xmin)
            .execute(self.pool())
            .await
            .map(|done| done.rows_affected())
            .map_err(convert_sqlx_error)
    }

    /// The per-minute counts of `insight_type` of each API in `[from, to)` (Unix minutes →
    /// count; minutes without a call are absent).
    pub async fn insight_counts(
        &self,
        insight_type: InsightType,
        apis: &[InsightApi],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<HashMap<InsightApi, BTreeMap<i64, u64>>, StoreError> {
        let mut counts: HashMap<InsightApi, BTreeMap<i64, u64>> = HashMap::new();
        if apis.is_empty() {
            return Ok(counts);
        }
        let column =
            |field: fn(&InsightApi) -> &str| -> Vec<&str> { apis.iter().map(field).collect() };
        let rows: Vec<(String, String, String, String, DateTime<Utc>, i64)> =
            sqlx::query_as(&format!(
                "SELECT s.account_id, s.aws_region, s.event_source, s.event_name, m.minute, sum(m.events)::bigint
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS a (account_id, aws_region, event_source, event_name)
                 JOIN rollup_series AS s
                   ON s.account_id = a.account_id AND s.aws_region = a.aws_region
                  AND s.event_source = a.event_source AND s.event_name = a.event_name
                 JOIN minute_counts AS m ON m.series_id = s.series_id AND m.minute >= $5 AND m.minute < $6
                 WHERE m.events > 0 AND {}
                 GROUP BY 1, 2, 3, 4, 5",
                series_condition(insight_type)
            ))
            .bind(column(|api| &api.account_id))
            .bind(column(|api| &api.aws_region))
            .bind(column(|api| &api.event_source))
            .bind(column(|api| &api.event_name))
            .bind(from)
            .bind(to)
            .fetch_all(self.pool())
            .await
            .map_err(convert_sqlx_error)?;
        for (account, region, source, name, minute, events) in rows {
            counts
                .entry(api_of((account, region, source, name)))
                .or_default()
                .insert(unix_minute(minute), u64::try_from(events).unwrap_or(0));
        }
        Ok(counts)
    }

    /// The first hour each account and region has events of any kind in: where its history
    /// starts.
    pub async fn history_starts(
        &self,
    ) -> Result<HashMap<(String, String), DateTime<Utc>>, StoreError> {
        let rows: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT account_id, aws_region, min(hour) FROM hour_counts WHERE events > 0 GROUP BY 1, 2",
        )
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        Ok(rows
            .into_iter()
            .map(|(account, region, hour)| ((account, region), hour))
            .collect())
    }

    /// The caller ARNs, user agents and error codes of an API's calls of `insight_type` in
    /// `insight` and in `baseline` (half-open ranges of event time), counted.
    pub async fn attribution_counts(
        &self,
        api: &InsightApi,
        insight_type: InsightType,
        insight: (DateTime<Utc>, DateTime<Utc>),
        baseline: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<AttributionCounts, StoreError> {
        let calls = match insight_type {
            InsightType::ApiCallRate => "e.read_only = false",
            InsightType::ApiErrorRate => "e.error_code IS NOT NULL",
        };
        let rows: Vec<(bool, String, String, i64)> = sqlx::query_as(&format!(
            "SELECT in_insight, attribute, value, count(*) FROM (
                 SELECT e.event_time >= $5 AS in_insight, e.user_arn, e.user_agent,
                        coalesce(e.error_code, 'null') AS error_code
                 FROM events AS e
                 WHERE e.event_name = $4 AND e.event_time >= $7 AND e.event_time < $6
                   AND NOT (e.event_time >= $8 AND e.event_time < $5)
                   AND coalesce(e.account_id, '') = $1 AND coalesce(e.aws_region, '') = $2
                   AND coalesce(e.event_source, '') = $3 AND e.event_category = 'Management' AND {calls}
             ) AS calls
             CROSS JOIN LATERAL (VALUES ('userIdentityArn', user_arn), ('userAgent', user_agent),
                                        ('errorCode', error_code)) AS a (attribute, value)
             WHERE value IS NOT NULL
             GROUP BY 1, 2, 3"
        ))
        .bind(&api.account_id)
        .bind(&api.aws_region)
        .bind(&api.event_source)
        .bind(&api.event_name)
        .bind(insight.0)
        .bind(insight.1)
        .bind(baseline.0)
        .bind(baseline.1)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        let mut counts = AttributionCounts::default();
        for (in_insight, attribute, value, count) in rows {
            let values: &mut ValueCounts = match attribute.as_str() {
                "userIdentityArn" => &mut counts.user_identity_arn,
                "userAgent" => &mut counts.user_agent,
                _ => &mut counts.error_code,
            };
            let side = if in_insight {
                &mut values.insight
            } else {
                &mut values.baseline
            };
            side.insert(value, u64::try_from(count).unwrap_or(0));
        }
        Ok(counts)
    }

    /// Records an episode (made, or its end and statistics updated; one superseded before is
    /// live again). Answers the stored row as it was before, if any.
    pub async fn record_episode(
        &self,
        episode: &EpisodeWrite,
    ) -> Result<Option<StoredEpisode>, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let before: Option<StoredEpisode> = sqlx::query_as(&format!(
            "SELECT {EPISODE_COLUMNS} FROM insight_episodes WHERE shared_event_id = $1 FOR UPDATE"
        ))
        .bind(episode.shared_event_id)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        sqlx::query(
            "INSERT INTO insight_episodes (account_id, aws_region, event_source, event_name, insight_type,
                 start_minute, end_minute, closed, shared_event_id, start_event_id, end_event_id,
                 statistics, model)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (shared_event_id) DO UPDATE SET end_minute = EXCLUDED.end_minute,
                 closed = EXCLUDED.closed, end_event_id = EXCLUDED.end_event_id,
                 statistics = EXCLUDED.statistics, model = EXCLUDED.model,
                 superseded_at = NULL, updated_at = now()",
        )
        .bind(&episode.api.account_id)
        .bind(&episode.api.aws_region)
        .bind(&episode.api.event_source)
        .bind(&episode.api.event_name)
        .bind(episode.insight_type.as_str())
        .bind(episode.start_minute)
        .bind(episode.end_minute)
        .bind(episode.closed)
        .bind(episode.shared_event_id)
        .bind(episode.start_event_id)
        .bind(episode.end_event_id)
        .bind(&episode.statistics)
        .bind(&episode.model)
        .execute(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(before)
    }

    pub async fn set_episode_finding(
        &self,
        shared_event_id: Uuid,
        finding_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE insight_episodes SET finding_id = $2 WHERE shared_event_id = $1")
            .bind(shared_event_id)
            .bind(finding_id)
            .execute(self.pool())
            .await
            .map_err(convert_sqlx_error)?;
        Ok(())
    }

    /// Marks superseded the live episodes of an API and type that start in `[from, to)` and
    /// are not among `kept` (their shared event ids): a re-evaluation over late events no
    /// longer finds them. Answers how many.
    pub async fn supersede_episodes(
        &self,
        api: &InsightApi,
        insight_type: InsightType,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        kept: &[Uuid],
    ) -> Result<u64, StoreError> {
        sqlx::query(
            "UPDATE insight_episodes SET superseded_at = now(), updated_at = now()
             WHERE account_id = $1 AND aws_region = $2 AND event_source = $3 AND event_name = $4
               AND insight_type = $5 AND start_minute >= $6 AND start_minute < $7
               AND superseded_at IS NULL AND NOT shared_event_id = ANY($8)",
        )
        .bind(&api.account_id)
        .bind(&api.aws_region)
        .bind(&api.event_source)
        .bind(&api.event_name)
        .bind(insight_type.as_str())
        .bind(from)
        .bind(to)
        .bind(kept)
        .execute(self.pool())
        .await
        .map(|done| done.rows_affected())
        .map_err(convert_sqlx_error)
    }

    /// The live episodes still open (not yet ended when last evaluated).
    pub async fn open_episodes(&self) -> Result<Vec<StoredEpisode>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {EPISODE_COLUMNS} FROM insight_episodes WHERE NOT closed AND superseded_at IS NULL ORDER BY episode_id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// Episodes newest first (by start, then id), after the page key `before`.
    pub async fn list_episodes(
        &self,
        filter: &EpisodeFilter,
        before: Option<(DateTime<Utc>, i64)>,
        limit: u32,
    ) -> Result<Vec<StoredEpisode>, StoreError> {
        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "SELECT {EPISODE_COLUMNS} FROM insight_episodes WHERE TRUE"
        ));
        if !filter.accounts.is_empty() {
            sql.push(" AND account_id = ANY(")
                .push_bind(filter.accounts.clone())
                .push(")");
        }
        if let Some(insight_type) = filter.insight_type {
            sql.push(" AND insight_type = ")
                .push_bind(insight_type.as_str());
        }
        if let Some(since) = filter.since {
            sql.push(" AND start_minute >= ").push_bind(since);
        }
        if !filter.include_superseded {
            sql.push(" AND superseded_at IS NULL");
        }
        if let Some((start, id)) = before {
            sql.push(" AND (start_minute, episode_id) < (")
                .push_bind(start)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        sql.push(" ORDER BY start_minute DESC, episode_id DESC LIMIT ")
            .push_bind(i64::from(limit));
        sql.build_query_as()
            .fetch_all(self.pool())
            .await
            .map_err(convert_sqlx_error)
    }

    pub async fn get_episode(
        &self,
        shared_event_id: Uuid,
    ) -> Result<Option<StoredEpisode>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {EPISODE_COLUMNS} FROM insight_episodes WHERE shared_event_id = $1"
        ))
        .bind(shared_event_id)
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    pub async fn list_insight_settings(&self) -> Result<Vec<StoredInsightSetting>, StoreError> {
        sqlx::query_as(
            "SELECT account_id, event_source, event_name, threshold_sigma, min_rate_per_minute,
                    disabled, updated_at, updated_by
             FROM insight_settings ORDER BY account_id, event_source, event_name",
        )
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// Sets (or replaces) the setting of its scope, audited.
    pub async fn set_insight_setting(
        &self,
        actor: &str,
        setting: &StoredInsightSetting,
    ) -> Result<StoredInsightSetting, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let before = setting_row(&mut transaction, setting, true).await?;
        let after: StoredInsightSetting = sqlx::query_as(
            "INSERT INTO insight_settings (account_id, event_source, event_name, threshold_sigma,
                 min_rate_per_minute, disabled, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (account_id, event_source, event_name) DO UPDATE SET
                 threshold_sigma = EXCLUDED.threshold_sigma,
                 min_rate_per_minute = EXCLUDED.min_rate_per_minute,
                 disabled = EXCLUDED.disabled, updated_by = EXCLUDED.updated_by, updated_at = now()
             RETURNING account_id, event_source, event_name, threshold_sigma, min_rate_per_minute,
                 disabled, updated_at, updated_by",
        )
        .bind(&setting.account_id)
        .bind(&setting.event_source)
        .bind(&setting.event_name)
        .bind(setting.threshold_sigma)
        .bind(setting.min_rate_per_minute)
        .bind(setting.disabled)
        .bind(actor)
        .fetch_one(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        append_audit(
            &mut transaction,
            actor,
            "insights.setting.set",
            &scope_name(setting),
            before.as_ref().map(setting_json).as_ref(),
            Some(&setting_json(&after)),
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(after)
    }

    /// Deletes the setting of a scope, audited.
    pub async fn delete_insight_setting(
        &self,
        actor: &str,
        scope: &StoredInsightSetting,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let before = setting_row(&mut transaction, scope, true)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("insight setting {}", scope_name(scope)))
            })?;
        sqlx::query(
            "DELETE FROM insight_settings WHERE account_id = $1 AND event_source = $2 AND event_name = $3",
        )
        .bind(&scope.account_id)
        .bind(&scope.event_source)
        .bind(&scope.event_name)
        .execute(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        append_audit(
            &mut transaction,
            actor,
            "insights.setting.delete",
            &scope_name(scope),
            Some(&setting_json(&before)),
            None,
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(())
    }
}

async fn setting_row(
    transaction: &mut sqlx::Transaction<'static, Postgres>,
    scope: &StoredInsightSetting,
    lock: bool,
) -> Result<Option<StoredInsightSetting>, StoreError> {
    sqlx::query_as(&format!(
        "SELECT account_id, event_source, event_name, threshold_sigma, min_rate_per_minute,
                disabled, updated_at, updated_by
         FROM insight_settings WHERE account_id = $1 AND event_source = $2 AND event_name = $3{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(&scope.account_id)
    .bind(&scope.event_source)
    .bind(&scope.event_name)
    .fetch_optional(&mut **transaction)
    .await
    .map_err(convert_sqlx_error)
}

/// `account/source/name`, `*` for any.
pub fn scope_name(scope: &StoredInsightSetting) -> String {
    let part = |text: &str| {
        if text.is_empty() {
            "*".to_string()
        } else {
            text.to_string()
        }
    };
    format!(
        "{}/{}/{}",
        part(&scope.account_id),
        part(&scope.event_source),
        part(&scope.event_name)
    )
}

fn setting_json(setting: &StoredInsightSetting) -> Value {
    serde_json::json!({
        "accountId": setting.account_id,
        "eventSource": setting.event_source,
        "eventName": setting.event_name,
        "thresholdSigma": setting.threshold_sigma,
        "minRatePerMinute": setting.min_rate_per_minute,
        "disabled": setting.disabled,
    })
}

fn api_of(
    (account_id, aws_region, event_source, event_name): (String, String, String, String),
) -> InsightApi {
    InsightApi {
        account_id,
        aws_region,
        event_source,
        event_name,
    }
}
