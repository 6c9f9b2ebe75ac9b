//! API tokens: created with their audit entry, looked up by id on every call (so a revocation
//! takes effect at once, on every replica), revoked, listed.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::retention::append_audit;
use super::{convert_sqlx_error, PgStore, StoreError};

/// A token as stored (never its secret).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredToken {
    pub token_id: Uuid,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

/// What a presented token is checked against.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TokenCredential {
    pub name: String,
    pub role: String,
    pub secret_sha256: Vec<u8>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const TOKEN_COLUMNS: &str =
    "token_id, name, role, created_at, created_by, expires_at, revoked_at, revoked_by";

fn token_json(token: &StoredToken) -> serde_json::Value {
    json!({
        "token_id": token.token_id,
        "name": token.name,
        "role": token.role,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    })
}

impl PgStore {
    pub async fn create_token(
        &self,
        actor: &str,
        token_id: Uuid,
        name: &str,
        role: &str,
        secret_sha256: &[u8],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<StoredToken, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let token: StoredToken = sqlx::query_as(&format!(
            "INSERT INTO api_tokens (token_id, name, role, secret_sha256, created_by, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(token_id)
        .bind(name)
        .bind(role)
        .bind(secret_sha256)
        .bind(actor)
        .bind(expires_at)
        .fetch_one(&mut *transaction)
        .await
        .map_err(|error| match convert_sqlx_error(error) {
            StoreError::UniqueViolation(_) => {
                StoreError::AlreadyExists(format!("a live token named {name:?}"))
            }
            other => other,
        })?;
        append_audit(
            &mut transaction,
            actor,
            "token.create",
            &format!("token {name}"),
            None,
            Some(&token_json(&token)),
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(token)
    }

    /// Revokes the live token of that name (or id).
    pub async fn revoke_token(
        &self,
        actor: &str,
        name_or_id: &str,
    ) -> Result<StoredToken, StoreError> {
        let id = Uuid::parse_str(name_or_id).ok();
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let token: Option<StoredToken> = sqlx::query_as(&format!(
            "UPDATE api_tokens SET revoked_at = now(), revoked_by = $3
             WHERE revoked_at IS NULL AND (name = $1 OR token_id = $2) RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(name_or_id)
        .bind(id)
        .bind(actor)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        let token =
            token.ok_or_else(|| StoreError::NotFound(format!("a live token {name_or_id:?}")))?;
        append_audit(
            &mut transaction,
            actor,
            "token.revoke",
            &format!("token {}", token.name),
            None,
            Some(&token_json(&token)),
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(token)
    }

    pub async fn list_tokens(&self, include_revoked: bool) -> Result<Vec<StoredToken>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE $1 OR revoked_at IS NULL ORDER BY created_at, name"
        ))
        .bind(include_revoked)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    pub async fn token_credential(
        &self,
        token_id: Uuid,
    ) -> Result<Option<TokenCredential>, StoreError> {
        sqlx::query_as(
            "SELECT name, role, secret_sha256, expires_at, revoked_at FROM api_tokens WHERE token_id = $1",
        )
        .bind(token_id)
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }
}
