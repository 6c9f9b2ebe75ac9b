//! Retention policies (versioned), legal holds and the audit log. Every change is written with
//! its audit entry in one transaction, under the exclusive side of the retention rules lock,
//! so an enforcement batch (which holds the shared side) never deletes under rules that
//! changed while it ran.

use chrono::{DateTime, Utc};
use orgtrail_domain::retention::{LegalHold, RetentionPolicy, RetentionScope};
use serde_json::{json, Value};
use sqlx::{PgConnection, Postgres, Transaction};

use super::{convert_sqlx_error, PgStore, StoreError};

/// `pg_advisory_xact_lock` key of the retention rules: rule changes take it exclusively,
/// deletions shared.
pub const RETENTION_RULES_LOCK: i64 = 0x6f72_6774_7261_0002;

/// A policy as stored: its current version and when it was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPolicy {
    pub policy: RetentionPolicy,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// What a new version of a policy says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyContent {
    pub description: String,
    pub scope: RetentionScope,
    pub retain_days: u32,
}

/// An entry of the audit log.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct AuditEntry {
    pub audit_id: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub details: Option<Value>,
}

/// A stored hold with who made and released it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredHold {
    pub hold: LegalHold,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub released_by: Option<String>,
    pub release_reason: Option<String>,
}

#[derive(sqlx::FromRow)]
struct PgPolicyRow {
    name: String,
    version: i32,
    description: String,
    scope: Value,
    retain_days: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    updated_by: String,
    deleted_at: Option<DateTime<Utc>>,
}

impl TryFrom<PgPolicyRow> for StoredPolicy {
    type Error = StoreError;

    fn try_from(row: PgPolicyRow) -> Result<StoredPolicy, StoreError> {
        Ok(StoredPolicy {
            policy: RetentionPolicy {
                name: row.name,
                version: row.version,
                description: row.description,
                scope: serde_json::from_value(row.scope)
                    .map_err(|error| StoreError::CorruptRow(format!("policy scope: {error}")))?,
                retain_days: u32::try_from(row.retain_days).unwrap_or(0),
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
            updated_by: row.updated_by,
            deleted_at: row.deleted_at,
        })
    }
}

const POLICY_COLUMNS: &str = "version.name, version.version, version.description, version.scope, version.retain_days, \
     policy.created_at, version.created_at AS updated_at, version.created_by AS updated_by, policy.deleted_at";

#[derive(sqlx::FromRow)]
struct PgHoldRow {
    hold_id: i64,
    reason: String,
    scope: Value,
    expires_at: Option<DateTime<Utc>>,
    released_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    created_by: String,
    released_by: Option<String>,
    release_reason: Option<String>,
}

impl TryFrom<PgHoldRow> for StoredHold {
    type Error = StoreError;

    fn try_from(row: PgHoldRow) -> Result<StoredHold, StoreError> {
        Ok(StoredHold {
            hold: LegalHold {
                hold_id: row.hold_id,
                reason: row.reason,
                scope: serde_json::from_value(row.scope)
                    .map_err(|error| StoreError::CorruptRow(format!("hold scope: {error}")))?,
                expires_at: row.expires_at,
                released_at: row.released_at,
            },
            created_at: row.created_at,
            created_by: row.created_by,
            released_by: row.released_by,
            release_reason: row.release_reason,
        })
    }
}

fn policy_json(policy: &StoredPolicy) -> Value {
    json!({
        "name": policy.policy.name,
        "version": policy.policy.version,
        "description": policy.policy.description,
        "scope": policy.policy.scope,
        "retainDays": policy.policy.retain_days,
    })
}

fn hold_json(hold: &StoredHold) -> Value {
    json!({
        "holdId": hold.hold.hold_id,
        "reason": hold.hold.reason,
        "scope": hold.hold.scope,
        "expiresAt": hold.hold.expires_at,
        "releasedAt": hold.hold.released_at,
        "releaseReason": hold.release_reason,
    })
}

/// Appends an audit entry in the caller's transaction.
pub async fn append_audit(
    connection: &mut PgConnection,
    actor: &str,
    action: &str,
    subject: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    details: Option<&Value>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (actor, action, subject, before, after, details) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(before)
        .bind(after)
        .bind(details)
        .execute(connection)
        .await
        .map_err(convert_sqlx_error)?;
    Ok(())
}

impl PgStore {
    /// A transaction holding the retention rules lock exclusively.
    async fn begin_rules_change(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(RETENTION_RULES_LOCK)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        Ok(transaction)
    }

    pub async fn create_policy(
        &self,
        actor: &str,
        name: &str,
        content: &PolicyContent,
    ) -> Result<StoredPolicy, StoreError> {
        let mut transaction = self.begin_rules_change().await?;
        let policy_id: i64 = sqlx::query_scalar("INSERT INTO retention_policies (name, current_version) VALUES ($1, 1) RETURNING policy_id")
            .bind(name)
            .fetch_one(&mut *transaction)
            .await
            .map_err(|error| match convert_sqlx_error(error) {
                StoreError::UniqueViolation(_) => StoreError::AlreadyExists(format!("policy {name}")),
                other => other,
            })?;
        insert_version(&mut transaction, policy_id, 1, name, content, actor).await?;
        let created = policy_by_id(&mut transaction, policy_id).await?;
        append_audit(
            &mut transaction,
            actor,
            "policy.create",
            name,
            None,
            Some(&policy_json(&created)),
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(created)
    }

    /// Writes a new version. With `expected_version`, refuses when the policy moved on.
    pub async fn update_policy(
        &self,
        actor: &str,
        name: &str,
        expected_version: Option<i32>,
        change: impl FnOnce(&StoredPolicy) -> Result<PolicyContent, StoreError>,
    ) -> Result<StoredPolicy, StoreError> {
        let mut transaction = self.begin_rules_change().await?;
        let (policy_id, current): (i64, i32) = sqlx::query_as(
            "SELECT policy_id, current_version FROM retention_policies WHERE name = $1 AND deleted_at IS NULL FOR UPDATE",
        )
        .bind(name)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?
        .ok_or_else(|| StoreError::NotFound(format!("policy {name}")))?;
        if let Some(expected) = expected_version {
            if expected != current {
                return Err(StoreError::VersionConflict(format!(
                    "policy {name} is at version {current}, not {expected}"
                )));
            }
        }
        let before = policy_by_id(&mut transaction, policy_id).await?;
        let content = change(&before)?;
        insert_version(
            &mut transaction,
            policy_id,
            current + 1,
            name,
            &content,
            actor,
        )
        .await?;
        sqlx::query("UPDATE retention_policies SET current_version = $2 WHERE policy_id = $1")
            .bind(policy_id)
            .bind(current + 1)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        let after = policy_by_id(&mut transaction, policy_id).await?;
        append_audit(
            &mut transaction,
            actor,
            "policy.update",
            name,
            Some(&policy_json(&before)),
            Some(&policy_json(&after)),
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(after)
    }

    pub async fn delete_policy(&self, actor: &str, name: &str) -> Result<StoredPolicy, StoreError> {
        let mut transaction = self.begin_rules_change().await?;
        let policy_id: i64 = sqlx::query_scalar(
            "UPDATE retention_policies SET deleted_at = now() WHERE name = $1 AND deleted_at IS NULL RETURNING policy_id",
        )
        .bind(name)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?
        .ok_or_else(|| StoreError::NotFound(format!("policy {name}")))?;
        let deleted = policy_by_id(&mut transaction, policy_id).await?;
        append_audit(
            &mut transaction,
            actor,
            "policy.delete",
            name,
            Some(&policy_json(&deleted)),
            None,
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(deleted)
    }

    /// The live policy named `name`, or one of its versions.
    pub async fn get_policy(
        &self,
        name: &str,
        version: Option<i32>,
    ) -> Result<StoredPolicy, StoreError> {
        let row: Option<PgPolicyRow> = sqlx::query_as(&format!(
            "SELECT {POLICY_COLUMNS} FROM retention_policies AS policy
             JOIN retention_policy_versions AS version ON version.policy_id = policy.policy_id
             WHERE policy.name = $1 AND policy.deleted_at IS NULL
               AND version.version = COALESCE($2, policy.current_version)"
        ))
        .bind(name)
        .bind(version)
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        row.ok_or_else(|| StoreError::NotFound(format!("policy {name}")))?
            .try_into()
    }

    /// Every version of the live policy named `name`, oldest first.
    pub async fn policy_history(&self, name: &str) -> Result<Vec<StoredPolicy>, StoreError> {
        let rows: Vec<PgPolicyRow> = sqlx::query_as(&format!(
            "SELECT {POLICY_COLUMNS} FROM retention_policies AS policy
             JOIN retention_policy_versions AS version ON version.policy_id = policy.policy_id
             WHERE policy.name = $1 AND policy.deleted_at IS NULL
             ORDER BY version.version"
        ))
        .bind(name)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        if rows.is_empty() {
            return Err(StoreError::NotFound(format!("policy {name}")));
        }
        rows.into_iter().map(StoredPolicy::try_from).collect()
    }

    /// The live policies at their current versions, by name.
    pub async fn list_policies(&self) -> Result<Vec<StoredPolicy>, StoreError> {
        list_policies(self.pool()).await
    }

    pub async fn create_hold(
        &self,
        actor: &str,
        reason: &str,
        scope: &RetentionScope,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<StoredHold, StoreError> {
        let mut transaction = self.begin_rules_change().await?;
        let scope_json = serde_json::to_value(scope)
            .map_err(|error| StoreError::CorruptRow(error.to_string()))?;
        let row: PgHoldRow = sqlx::query_as(
            "INSERT INTO legal_holds (reason, scope, created_by, expires_at) VALUES ($1, $2, $3, $4)
             RETURNING hold_id, reason, scope, expires_at, released_at, created_at, created_by, released_by, release_reason",
        )
        .bind(reason)
        .bind(scope_json)
        .bind(actor)
        .bind(expires_at)
        .fetch_one(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        let hold = StoredHold::try_from(row)?;
        append_audit(
            &mut transaction,
            actor,
            "hold.create",
            &format!("hold {}", hold.hold.hold_id),
            None,
            Some(&hold_json(&hold)),
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(hold)
    }

    pub async fn release_hold(
        &self,
        actor: &str,
        hold_id: i64,
        reason: &str,
    ) -> Result<StoredHold, StoreError> {
        let mut transaction = self.begin_rules_change().await?;
        let before: PgHoldRow = sqlx::query_as(
            "SELECT hold_id, reason, scope, expires_at, released_at, created_at, created_by, released_by, release_reason
             FROM legal_holds WHERE hold_id = $1 FOR UPDATE",
        )
        .bind(hold_id)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?
        .ok_or_else(|| StoreError::NotFound(format!("hold {hold_id}")))?;
        let before = StoredHold::try_from(before)?;
        if before.hold.released_at.is_some() {
            return Err(StoreError::VersionConflict(format!(
                "hold {hold_id} is released already"
            )));
        }
        let after: PgHoldRow = sqlx::query_as(
            "UPDATE legal_holds SET released_at = now(), released_by = $2, release_reason = $3 WHERE hold_id = $1
             RETURNING hold_id, reason, scope, expires_at, released_at, created_at, created_by, released_by, release_reason",
        )
        .bind(hold_id)
        .bind(actor)
        .bind(reason)
        .fetch_one(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        let after = StoredHold::try_from(after)?;
        append_audit(
            &mut transaction,
            actor,
            "hold.release",
            &format!("hold {hold_id}"),
            Some(&hold_json(&before)),
            Some(&hold_json(&after)),
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(after)
    }

    /// Holds, newest first; released and expired ones only when asked.
    pub async fn list_holds(
        &self,
        include_inactive: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredHold>, StoreError> {
        let rows: Vec<PgHoldRow> = sqlx::query_as(
            "SELECT hold_id, reason, scope, expires_at, released_at, created_at, created_by, released_by, release_reason
             FROM legal_holds
             WHERE $1 OR (released_at IS NULL AND (expires_at IS NULL OR expires_at > $2))
             ORDER BY hold_id DESC",
        )
        .bind(include_inactive)
        .bind(now)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        rows.into_iter().map(StoredHold::try_from).collect()
    }

    /// Audit entries newest first, older than `before_id`, optionally of one action prefix.
    pub async fn list_audit(
        &self,
        before_id: Option<i64>,
        action_prefix: Option<&str>,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        sqlx::query_as(
            "SELECT audit_id, occurred_at, actor, action, subject, before, after, details FROM audit_log
             WHERE ($1::bigint IS NULL OR audit_id < $1)
               AND ($2::text IS NULL OR starts_with(action, $2))
               AND ($3::timestamptz IS NULL OR occurred_at >= $3)
             ORDER BY audit_id DESC LIMIT $4",
        )
        .bind(before_id)
        .bind(action_prefix)
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// Appends an audit entry on its own.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        details: &Value,
    ) -> Result<(), StoreError> {
        let mut connection = self.pool().acquire().await.map_err(convert_sqlx_error)?;
        append_audit(
            &mut connection,
            actor,
            action,
            subject,
            None,
            None,
            Some(details),
        )
        .await
    }
}

/// The live policies (also used inside enforcement transactions).
pub async fn list_policies<'e>(
    executor: impl sqlx::Executor<'e, Database = Postgres>,
) -> Result<Vec<StoredPolicy>, StoreError> {
    let rows: Vec<PgPolicyRow> = sqlx::query_as(&format!(
        "SELECT {POLICY_COLUMNS} FROM retention_policies AS policy
         JOIN retention_policy_versions AS version
           ON version.policy_id = policy.policy_id AND version.version = policy.current_version
         WHERE policy.deleted_at IS NULL ORDER BY policy.name"
    ))
    .fetch_all(executor)
    .await
    .map_err(convert_sqlx_error)?;
    rows.into_iter().map(StoredPolicy::try_from).collect()
}

async fn insert_version(
    transaction: &mut Transaction<'static, Postgres>,
    policy_id: i64,
    version: i32,
    name: &str,
    content: &PolicyContent,
    actor: &str,
) -> Result<(), StoreError> {
    let scope = serde_json::to_value(&content.scope)
        .map_err(|error| StoreError::CorruptRow(error.to_string()))?;
    sqlx::query(
        "INSERT INTO retention_policy_versions (policy_id, version, name, description, scope, retain_days, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(policy_id)
    .bind(version)
    .bind(name)
    .bind(&content.description)
    .bind(scope)
    .bind(i32::try_from(content.retain_days).unwrap_or(i32::MAX))
    .bind(actor)
    .execute(&mut **transaction)
    .await
    .map_err(convert_sqlx_error)?;
    Ok(())
}

async fn policy_by_id(
    transaction: &mut Transaction<'static, Postgres>,
    policy_id: i64,
) -> Result<StoredPolicy, StoreError> {
    let row: PgPolicyRow = sqlx::query_as(&format!(
        "SELECT {POLICY_COLUMNS} FROM retention_policies AS policy
         JOIN retention_policy_versions AS version
           ON version.policy_id = policy.policy_id AND version.version = policy.current_version
         WHERE policy.policy_id = $1"
    ))
    .bind(policy_id)
    .fetch_one(&mut **transaction)
    .await
    .map_err(convert_sqlx_error)?;
    row.try_into()
}
