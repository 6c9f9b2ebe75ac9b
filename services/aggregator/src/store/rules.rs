//! Sigma rules as stored: by their Sigma id, every version kept (its text byte for byte), each
//! change audited and bumping the detection generation (ingest compiles the enabled rules again
//! for its next file). The SigmaHQ set is made once; a built-in rule is disabled, not deleted.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::alarms::bump_generation;
use super::retention::append_audit;
use super::{convert_sqlx_error, PgStore, StoreError};

/// What a version says, parsed by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleContent {
    pub rule_id: String,
    pub yaml: String,
    pub title: String,
    pub level: String,
    pub author: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredRule {
    pub rule_id: String,
    pub origin: String,
    pub version: i32,
    pub yaml: String,
    pub title: String,
    pub level: String,
    pub author: Option<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// What adding a rule did.
pub enum RuleWrite {
    Written(StoredRule),
    /// The same text and state are stored already.
    Unchanged(String),
}

const RULE_COLUMNS: &str = "r.rule_id, r.origin, v.version, v.yaml, v.title, v.level, v.author, \
     v.enabled, r.created_at, v.created_at AS updated_at, v.created_by AS updated_by";

fn rule_json(rule: &StoredRule) -> Value {
    json!({
        "ruleId": rule.rule_id,
        "version": rule.version,
        "title": rule.title,
        "level": rule.level,
        "author": rule.author,
        "enabled": rule.enabled,
        "origin": rule.origin,
    })
}

async fn rule_by_id(
    connection: &mut PgConnection,
    rule_id: &str,
    version: Option<i32>,
) -> Result<Option<StoredRule>, StoreError> {
    sqlx::query_as(&format!(
        "SELECT {RULE_COLUMNS} FROM sigma_rules r
         JOIN sigma_rule_versions v ON v.rule_id = r.rule_id AND v.version = COALESCE($2, r.current_version)
         WHERE r.rule_id = $1"
    ))
    .bind(rule_id)
    .bind(version)
    .fetch_optional(connection)
    .await
    .map_err(convert_sqlx_error)
}

async fn insert_version(
    connection: &mut PgConnection,
    content: &RuleContent,
    version: i32,
    enabled: bool,
    actor: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sigma_rule_versions (rule_id, version, yaml, title, level, author, enabled, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&content.rule_id)
    .bind(version)
    .bind(&content.yaml)
    .bind(&content.title)
    .bind(&content.level)
    .bind(&content.author)
    .bind(enabled)
    .bind(actor)
    .execute(&mut *connection)
    .await
    .map_err(convert_sqlx_error)?;
    sqlx::query(
        "UPDATE sigma_rules SET current_version = $2, deleted_at = NULL WHERE rule_id = $1",
    )
    .bind(&content.rule_id)
    .bind(version)
    .execute(connection)
    .await
    .map_err(convert_sqlx_error)?;
    Ok(())
}

/// The enabled rules' ids, versions and texts, read in a file's transaction.
pub async fn enabled_rules(
    connection: &mut PgConnection,
) -> Result<Vec<(String, i32, String)>, StoreError> {
    sqlx::query_as(
        "SELECT r.rule_id, v.version, v.yaml FROM sigma_rules r
         JOIN sigma_rule_versions v ON v.rule_id = r.rule_id AND v.version = r.current_version
         WHERE r.deleted_at IS NULL AND v.enabled ORDER BY r.rule_id",
    )
    .fetch_all(connection)
    .await
    .map_err(convert_sqlx_error)
}

impl PgStore {
    /// Adds the rules, or new versions of those whose text or state changed, all in one
    /// transaction (all or nothing). `origin` applies to rules made here.
    pub async fn write_rules(
        &self,
        actor: &str,
        origin: &str,
        rules: &[RuleContent],
        enabled: bool,
    ) -> Result<Vec<RuleWrite>, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let mut outcomes = Vec::with_capacity(rules.len());
        let mut changed = false;
        for content in rules {
            // Serialises writers of the same rule.
            let existing: Option<(i32, Option<DateTime<Utc>>)> = sqlx::query_as(
                "SELECT current_version, deleted_at FROM sigma_rules WHERE rule_id = $1 FOR UPDATE",
            )
            .bind(&content.rule_id)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
            let before = match existing {
                Some(_) => rule_by_id(&mut transaction, &content.rule_id, None).await?,
                None => None,
            };
            let version = match (&existing, &before) {
                (Some((_, None)), Some(before))
                    if before.yaml == content.yaml && before.enabled == enabled =>
                {
                    outcomes.push(RuleWrite::Unchanged(content.rule_id.clone()));
                    continue;
                }
                (Some((current, _)), _) => current + 1,
                (None, _) => {
                    sqlx::query(
                        "INSERT INTO sigma_rules (rule_id, origin, current_version, created_by) VALUES ($1, $2, 0, $3)",
                    )
                    .bind(&content.rule_id)
                    .bind(origin)
                    .bind(actor)
                    .execute(&mut *transaction)
                    .await
                    .map_err(convert_sqlx_error)?;
                    1
                }
            };
            insert_version(&mut transaction, content, version, enabled, actor).await?;
            let after = rule_by_id(&mut transaction, &content.rule_id, None)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("rule {}", content.rule_id)))?;
            let live_before = before.filter(|_| matches!(existing, Some((_, None))));
            append_audit(
                &mut transaction,
                actor,
                if live_before.is_some() {
                    "rule.update"
                } else {
                    "rule.add"
                },
                &content.rule_id,
                live_before.as_ref().map(rule_json).as_ref(),
                Some(&rule_json(&after)),
                None,
            )
            .await?;
            changed = true;
            outcomes.push(RuleWrite::Written(after));
        }
        if changed {
            bump_generation(&mut transaction).await?;
        }
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(outcomes)
    }

    /// Makes each built-in rule that was never made (one an operator disabled or replaced is
    /// left as it is). Returns the ids made.
    pub async fn ensure_builtin_rules(
        &self,
        actor: &str,
        rules: &[RuleContent],
    ) -> Result<Vec<String>, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let mut made = Vec::new();
        for content in rules {
            let inserted = sqlx::query(
                "INSERT INTO sigma_rules (rule_id, origin, current_version, created_by)
                 VALUES ($1, 'builtin', 0, $2) ON CONFLICT (rule_id) DO NOTHING",
            )
            .bind(&content.rule_id)
            .bind(actor)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
            if inserted.rows_affected() == 1 {
                insert_version(&mut transaction, content, 1, true, actor).await?;
                made.push(content.rule_id.clone());
            }
        }
        if !made.is_empty() {
            bump_generation(&mut transaction).await?;
            append_audit(
                &mut transaction,
                actor,
                "rule.add",
                "SigmaHQ AWS CloudTrail rules",
                None,
                None,
                Some(&json!({ "ruleIds": made })),
            )
            .await?;
        }
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(made)
    }

    /// A new version enabling or disabling the rule (its text unchanged).
    pub async fn set_rule_enabled(
        &self,
        actor: &str,
        rule_id: &str,
        enabled: bool,
    ) -> Result<StoredRule, StoreError> {
        let current = self.get_rule(rule_id, None).await?;
        let content = RuleContent {
            rule_id: current.rule_id.clone(),
            yaml: current.yaml.clone(),
            title: current.title.clone(),
            level: current.level.clone(),
            author: current.author.clone(),
        };
        match self
            .write_rules(actor, &current.origin, &[content], enabled)
            .await?
            .pop()
        {
            Some(RuleWrite::Written(rule)) => Ok(rule),
            _ => Ok(current),
        }
    }

    /// Deletes a rule that is not built in (its versions and findings stay).
    pub async fn delete_rule(&self, actor: &str, rule_id: &str) -> Result<StoredRule, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let rule = rule_by_id(&mut transaction, rule_id, None)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("rule {rule_id}")))?;
        if rule.origin == "builtin" {
            return Err(StoreError::VersionConflict(format!(
                "rule {rule_id} is one of SigmaHQ's built-in rules: disable it (orgtrail rules disable {rule_id}) rather than delete it"
            )));
        }
        let deleted = sqlx::query(
            "UPDATE sigma_rules SET deleted_at = now() WHERE rule_id = $1 AND deleted_at IS NULL",
        )
        .bind(rule_id)
        .execute(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("rule {rule_id}")));
        }
        bump_generation(&mut transaction).await?;
        append_audit(
            &mut transaction,
            actor,
            "rule.delete",
            rule_id,
            Some(&rule_json(&rule)),
            None,
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(rule)
    }

    /// A live rule, at its current version or at `version`.
    pub async fn get_rule(
        &self,
        rule_id: &str,
        version: Option<i32>,
    ) -> Result<StoredRule, StoreError> {
        let mut connection = self.pool().acquire().await.map_err(convert_sqlx_error)?;
        let live: Option<bool> =
            sqlx::query_scalar("SELECT deleted_at IS NULL FROM sigma_rules WHERE rule_id = $1")
                .bind(rule_id)
                .fetch_optional(&mut *connection)
                .await
                .map_err(convert_sqlx_error)?;
        if live != Some(true) {
            return Err(StoreError::NotFound(format!("rule {rule_id}")));
        }
        rule_by_id(&mut connection, rule_id, version)
            .await?
            .ok_or_else(|| match version {
                Some(version) => {
                    StoreError::NotFound(format!("version {version} of rule {rule_id}"))
                }
                None => StoreError::NotFound(format!("rule {rule_id}")),
            })
    }

    /// The live rules, by title.
    pub async fn list_rules(&self) -> Result<Vec<StoredRule>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {RULE_COLUMNS} FROM sigma_rules r
             JOIN sigma_rule_versions v ON v.rule_id = r.rule_id AND v.version = r.current_version
             WHERE r.deleted_at IS NULL ORDER BY v.title, r.rule_id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// The enabled rules (for a replay), read now.
    pub async fn enabled_rule_texts(&self) -> Result<Vec<(String, i32, String)>, StoreError> {
        let mut connection = self.pool().acquire().await.map_err(convert_sqlx_error)?;
        enabled_rules(&mut connection).await
    }
}
