//! Findings — Sigma matches written in the transaction that stores their event, alarm
//! transitions into ALARM written with the transition — each raised once (a dedupe key per
//! cause), with their notifications queued in the same transaction; their triage state
//! (audited); and suppressions, whose covered matches are kept as suppressed findings.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::alarms::bump_generation;
use super::events::text_array_literal;
use super::notifications::{enqueue_notification, NewNotification};
use super::retention::append_audit;
use super::{convert_sqlx_error, PgStore, StoreError};

/// The levels, lowest first: a finding's `level_rank` is its index.
pub const FINDING_LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

pub fn level_rank(level: &str) -> Option<i16> {
    FINDING_LEVELS
        .iter()
        .position(|known| *known == level)
        .and_then(|rank| i16::try_from(rank).ok())
}

/// A finding to raise.
#[derive(Clone, Debug, PartialEq)]
pub struct NewFinding {
    pub kind: &'static str,
    pub rule_id: String,
    pub rule_version: i32,
    pub title: String,
    pub level: String,
    pub author: Option<String>,
    pub tags: Vec<String>,
    pub account_id: Option<String>,
    pub aws_region: Option<String>,
    pub event_time: DateTime<Utc>,
    pub event_ids: Vec<Uuid>,
    pub summary: String,
    pub dedupe_key: String,
    /// Set: kept as suppressed, notifies no one.
    pub suppression_id: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct StoredFinding {
    pub finding_id: i64,
    pub kind: String,
    pub rule_id: String,
    pub rule_version: i32,
    pub title: String,
    pub level: String,
    pub author: Option<String>,
    pub tags: Vec<String>,
    pub account_id: Option<String>,
    pub aws_region: Option<String>,
    pub event_time: DateTime<Utc>,
    pub event_ids: Vec<Uuid>,
    pub summary: String,
    pub state: String,
    pub suppression_id: Option<i64>,
    pub state_changed_at: Option<DateTime<Utc>>,
    pub state_changed_by: Option<String>,
    pub state_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct FindingFilter {
    pub min_level: Option<String>,
    pub rule_ids: Vec<String>,
    pub accounts: Vec<String>,
    pub states: Vec<String>,
    pub since: Option<DateTime<Utc>>,
    pub kind: Option<String>,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct StoredSuppression {
    pub suppression_id: i64,
    pub rule_id: String,
    pub accounts: Vec<String>,
    pub principals: Vec<String>,
    pub source_ips: Vec<String>,
    pub reason: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Matches it silenced.
    pub suppressed: i64,
}

/// What raising findings did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaisedFindings {
    /// New findings (the rest were raised before).
    pub raised: u64,
    pub suppressed: u64,
    /// The ids of the new findings.
    pub finding_ids: Vec<i64>,
}

const FINDING_COLUMNS: &str =
    "finding_id, kind, rule_id, rule_version, title, level, author, tags, \
     account_id, aws_region, event_time, event_ids, summary, state, suppression_id, \
     state_changed_at, state_changed_by, state_reason, created_at";

const SUPPRESSION_COLUMNS: &str = "s.suppression_id, s.rule_id, s.accounts, s.principals, \
     s.source_ips, s.reason, s.expires_at, s.created_at, s.created_by, s.deleted_at, \
     (SELECT count(*) FROM findings f WHERE f.suppression_id = s.suppression_id) AS suppressed";

/// Raises findings in the caller's transaction: those whose dedupe key is new are written, and
/// each that is not suppressed and whose event is recent enough (`notify_since`) is queued
/// for every destination taking its level. The body carries the rule's author, as the
/// Detection Rule License requires of every alert based on a match.
pub async fn raise_findings(
    connection: &mut PgConnection,
    findings: &[NewFinding],
    notify_since: DateTime<Utc>,
) -> Result<RaisedFindings, StoreError> {
    let mut outcome = RaisedFindings::default();
    if findings.is_empty() {
        return Ok(outcome);
    }
    let destinations: Vec<(i64, i16)> = sqlx::query_as(
        "SELECT destination_id, finding_level_rank FROM destinations
         WHERE deleted_at IS NULL AND finding_level_rank IS NOT NULL",
    )
    .fetch_all(&mut *connection)
    .await
    .map_err(convert_sqlx_error)?;
    // One statement for the batch; arrays of arrays travel as array literals.
    let text =
        |values: &[String]| text_array_literal(values.iter().map(|value| Some(value.as_str())));
    let ids = |values: &[Uuid]| {
        let texts: Vec<String> = values.iter().map(Uuid::to_string).collect();
        text(&texts)
    };
    let inserted: Vec<(i64, String)> = sqlx::query_as(
        "INSERT INTO findings (kind, rule_id, rule_version, title, level, level_rank, author, tags,
             account_id, aws_region, event_time, event_ids, summary, dedupe_key, state, suppression_id)
         SELECT kind, rule_id, rule_version, title, level, level_rank, author, tags::text[],
             account_id, aws_region, event_time, event_ids::uuid[], summary, dedupe_key,
             CASE WHEN suppression_id IS NULL THEN 'open' ELSE 'suppressed' END, suppression_id
         FROM UNNEST($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::smallint[],
             $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::text[],
             $13::text[], $14::text[], $15::bigint[])
           AS input (kind, rule_id, rule_version, title, level, level_rank, author, tags,
             account_id, aws_region, event_time, event_ids, summary, dedupe_key, suppression_id)
         ON CONFLICT (dedupe_key) DO NOTHING RETURNING finding_id, dedupe_key",
    )
    .bind(findings.iter().map(|finding| finding.kind).collect::<Vec<_>>())
    .bind(findings.iter().map(|finding| finding.rule_id.clone()).collect::<Vec<_>>())
    .bind(findings.iter().map(|finding| finding.rule_version).collect::<Vec<_>>())
    .bind(findings.iter().map(|finding| finding.title.clone()).collect::<Vec<_>>())
    .bind(findings.iter().map(|finding| finding.level.clone()).collect::<Vec<_>>())
    .bind(
        findings
            .iter()
            .map(|finding| level_rank(&finding.level).unwrap_or(0))
            .collect::<Vec<_>>(),
    )
    .bind(findings.iter().map(|finding| finding.author.clone()).collect::<Vec<_>>())
    .bind(findings.iter().map(|finding| text(&finding.tags)).collect::<Vec<_>>())
    .bind(findings.iter().map(|finding| finding.account_id.clone()).collect::<Vec<_>>())
    .bind(findings.iter().map(|finding| finding.aws_region.clone()).collect::<Vec<_>>())
    .bind(findings.iter().map(|finding| finding.event_time).collect::<Vec<_>>())
    .bind(findings.iter().map(|finding| ids(&finding.event_ids)).collect::<Vec<_>>())
    .bind(findings.iter().map(|finding| finding.summary.clone()).collect::<Vec<_>>())
    .bind(findings.iter().map(|finding| finding.dedupe_key.clone()).collect::<Vec<_>>())
    .bind(findings.iter().map(|finding| finding.suppression_id).collect::<Vec<_>>())
    .fetch_all(&mut *connection)
    .await
    .map_err(convert_sqlx_error)?;
    let by_key: std::collections::HashMap<&str, &NewFinding> = findings
        .iter()
        .map(|finding| (finding.dedupe_key.as_str(), finding))
        .collect();
    for (finding_id, dedupe_key) in inserted {
        let Some(finding) = by_key.get(dedupe_key.as_str()) else {
            continue;
        };
        outcome.finding_ids.push(finding_id);
        if finding.suppression_id.is_some() {
            outcome.suppressed += 1;
            continue;
        }
        outcome.raised += 1;
        if finding.event_time < notify_since {
            continue;
        }
        let rank = level_rank(&finding.level).unwrap_or(0);
        let body = json!({
            "finding": {
                "id": finding_id,
                "kind": finding.kind,
                "ruleId": finding.rule_id,
                "title": finding.title,
                "level": finding.level,
                "author": finding.author,
                "tags": finding.tags,
                "accountId": finding.account_id,
                "awsRegion": finding.aws_region,
                "eventTime": finding.event_time,
                "eventIds": finding.event_ids,
                "summary": finding.summary,
            }
        });
        for (destination_id, minimum) in &destinations {
            if rank >= *minimum {
                enqueue_notification(
                    &mut *connection,
                    &NewNotification {
                        destination_id: *destination_id,
                        kind: "finding".into(),
                        subject: finding.title.clone(),
                        dedupe_key: format!("finding:{finding_id}:{destination_id}"),
                        body: body.clone(),
                    },
                )
                .await?;
            }
        }
    }
    Ok(outcome)
}

/// The suppressions not deleted (expired ones too: the caller compares with its clock), read
/// in a file's transaction.
pub async fn live_suppressions(
    connection: &mut PgConnection,
) -> Result<Vec<StoredSuppression>, StoreError> {
    sqlx::query_as(&format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions s WHERE s.deleted_at IS NULL"
    ))
    .fetch_all(connection)
    .await
    .map_err(convert_sqlx_error)
}

impl PgStore {
    /// Raises findings in a transaction of their own (a replay).
    pub async fn raise_findings(
        &self,
        findings: &[NewFinding],
        notify_since: DateTime<Utc>,
    ) -> Result<RaisedFindings, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let outcome = raise_findings(&mut transaction, findings, notify_since).await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(outcome)
    }

    /// Findings newest first, before `before_id`.
    pub async fn list_findings(
        &self,
        filter: &FindingFilter,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredFinding>, StoreError> {
        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE TRUE"
        ));
        if let Some(before_id) = before_id {
            sql.push(" AND finding_id < ").push_bind(before_id);
        }
        if let Some(rank) = filter.min_level.as_deref().and_then(level_rank) {
            sql.push(" AND level_rank >= ").push_bind(rank);
        }
        for (column, values) in [
            ("rule_id", &filter.rule_ids),
            ("account_id", &filter.accounts),
            ("state", &filter.states),
        ] {
            if !values.is_empty() {
                sql.push(format!(" AND {column} = ANY("))
                    .push_bind(values.clone())
                    .push(")");
            }
        }
        if let Some(since) = filter.since {
            sql.push(" AND created_at >= ").push_bind(since);
        }
        if let Some(kind) = &filter.kind {
            sql.push(" AND kind = ").push_bind(kind.clone());
        }
        sql.push(" ORDER BY finding_id DESC LIMIT ")
            .push_bind(i64::from(limit));
        sql.build_query_as()
            .fetch_all(self.pool())
            .await
            .map_err(convert_sqlx_error)
    }

    pub async fn get_finding(&self, finding_id: i64) -> Result<StoredFinding, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE finding_id = $1"
        ))
        .bind(finding_id)
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)?
        .ok_or_else(|| StoreError::NotFound(format!("finding {finding_id}")))
    }

    /// Moves a finding's triage state, with who and why, audited.
    pub async fn update_finding_state(
        &self,
        actor: &str,
        finding_id: i64,
        state: &str,
        reason: &str,
    ) -> Result<StoredFinding, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let before: StoredFinding = sqlx::query_as(&format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE finding_id = $1 FOR UPDATE"
        ))
        .bind(finding_id)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?
        .ok_or_else(|| StoreError::NotFound(format!("finding {finding_id}")))?;
        let after: StoredFinding = sqlx::query_as(&format!(
            "UPDATE findings SET state = $2, state_changed_at = now(), state_changed_by = $3, state_reason = $4
             WHERE finding_id = $1 RETURNING {FINDING_COLUMNS}"
        ))
        .bind(finding_id)
        .bind(state)
        .bind(actor)
        .bind(reason)
        .fetch_one(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        append_audit(
            &mut transaction,
            actor,
            "finding.state",
            &format!("finding {finding_id}"),
            Some(&json!({ "state": before.state })),
            Some(&json!({ "state": after.state, "reason": reason })),
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(after)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_suppression(
        &self,
        actor: &str,
        rule_id: &str,
        accounts: &[String],
        principals: &[String],
        source_ips: &[String],
        reason: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<StoredSuppression, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let suppression_id: i64 = sqlx::query_scalar(
            "INSERT INTO suppressions (rule_id, accounts, principals, source_ips, reason, expires_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING suppression_id",
        )
        .bind(rule_id)
        .bind(accounts)
        .bind(principals)
        .bind(source_ips)
        .bind(reason)
        .bind(expires_at)
        .bind(actor)
        .fetch_one(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        bump_generation(&mut transaction).await?;
        let created = suppression_by_id(&mut transaction, suppression_id).await?;
        append_audit(
            &mut transaction,
            actor,
            "suppression.create",
            &format!("suppression {suppression_id}"),
            None,
            Some(&suppression_json(&created)),
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(created)
    }

    pub async fn delete_suppression(
        &self,
        actor: &str,
        suppression_id: i64,
        reason: &str,
    ) -> Result<StoredSuppression, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let updated = sqlx::query(
            "UPDATE suppressions SET deleted_at = now(), deleted_by = $2
             WHERE suppression_id = $1 AND deleted_at IS NULL",
        )
        .bind(suppression_id)
        .bind(actor)
        .execute(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "suppression {suppression_id}"
            )));
        }
        bump_generation(&mut transaction).await?;
        let deleted = suppression_by_id(&mut transaction, suppression_id).await?;
        append_audit(
            &mut transaction,
            actor,
            "suppression.delete",
            &format!("suppression {suppression_id}"),
            Some(&suppression_json(&deleted)),
            None,
            Some(&json!({ "reason": reason })),
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(deleted)
    }

    /// Suppressions, newest first: live and not expired at `now`, or all when asked.
    pub async fn list_suppressions(
        &self,
        all: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredSuppression>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {SUPPRESSION_COLUMNS} FROM suppressions s
             WHERE $1 OR (s.deleted_at IS NULL AND s.expires_at > $2)
             ORDER BY s.suppression_id DESC"
        ))
        .bind(all)
        .bind(now)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// The live suppressions (for a replay), read now.
    pub async fn live_suppressions(&self) -> Result<Vec<StoredSuppression>, StoreError> {
        let mut connection = self.pool().acquire().await.map_err(convert_sqlx_error)?;
        live_suppressions(&mut connection).await
    }
}

async fn suppression_by_id(
    connection: &mut PgConnection,
    suppression_id: i64,
) -> Result<StoredSuppression, StoreError> {
    sqlx::query_as(&format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions s WHERE s.suppression_id = $1"
    ))
    .bind(suppression_id)
    .fetch_one(connection)
    .await
    .map_err(convert_sqlx_error)
}

fn suppression_json(suppression: &StoredSuppression) -> Value {
    json!({
        "ruleId": suppression.rule_id,
        "accounts": suppression.accounts,
        "principals": suppression.principals,
        "sourceIps": suppression.source_ips,
        "reason": suppression.reason,
        "expiresAt": suppression.expires_at,
    })
}
