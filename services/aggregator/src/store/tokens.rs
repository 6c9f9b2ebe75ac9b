//! API tokens: created with their audit entry, looked up by id on every call (so a revocation
//! takes effect at once, on every replica), revoked, listed. A token made with AWS credentials
//! also has an access key id and its secret, sealed (SigV4 needs the secret itself), and may be
//! scoped to accounts; it is looked up by access key id on every CloudTrail-API call.

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
    /// For a token with AWS credentials.
    pub access_key_id: Option<String>,
    /// The accounts an access key is scoped to; empty: every account.
    pub accounts: Vec<String>,
}

/// The AWS credentials of a new token.
pub struct NewAccessKey<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub accounts: &'a [String],
}

/// What a presented access key is checked against: its secret, opened.
pub struct AccessKeyCredential {
    pub token_id: Uuid,
    pub name: String,
    pub role: String,
    pub secret_access_key: secrecy::SecretString,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub accounts: Vec<String>,
}

/// What a presented token is checked against.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TokenCredential {
    pub name: String,
    /// A token with AWS credentials (its bearer secret was never shown).
    pub access_key: bool,
    pub role: String,
    pub secret_sha256: Vec<u8>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const TOKEN_COLUMNS: &str =
    "token_id, name, role, created_at, created_by, expires_at, revoked_at, \
     revoked_by, access_key_id, accounts";

fn token_json(token: &StoredToken) -> serde_json::Value {
    json!({
        "token_id": token.token_id,
        "name": token.name,
        "role": token.role,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
        "access_key_id": token.access_key_id,
        "accounts": token.accounts,
    })
}

impl PgStore {
    #[allow(clippy::too_many_arguments)]
    pub async fn create_token(
        &self,
        actor: &str,
        token_id: Uuid,
        name: &str,
        role: &str,
        secret_sha256: &[u8],
        expires_at: Option<DateTime<Utc>>,
        access_key: Option<NewAccessKey<'_>>,
    ) -> Result<StoredToken, StoreError> {
        // The token id is the seal id: the secret opens only in its own row.
        let (key_id, sealed_secret) = match &access_key {
            Some(access_key) => {
                let (key_id, sealed) =
                    self.seal_secret(token_id, access_key.secret_access_key.as_bytes())?;
                (key_id, Some(sealed))
            }
            None => (None, None),
        };
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let token: StoredToken = sqlx::query_as(&format!(
            "INSERT INTO api_tokens (token_id, name, role, secret_sha256, created_by, expires_at,
                                     access_key_id, key_id, sealed_secret, accounts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(token_id)
        .bind(name)
        .bind(role)
        .bind(secret_sha256)
        .bind(actor)
        .bind(expires_at)
        .bind(access_key.as_ref().map(|key| key.access_key_id))
        .bind(key_id)
        .bind(sealed_secret)
        .bind(access_key.as_ref().map_or(&[][..], |key| key.accounts))
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

    /// The token of an access key id, its secret opened; `None` for a key never issued.
    pub async fn access_key_credential(
        &self,
        access_key_id: &str,
    ) -> Result<Option<AccessKeyCredential>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            token_id: Uuid,
            name: String,
            role: String,
            key_id: Option<i32>,
            sealed_secret: Vec<u8>,
            expires_at: Option<DateTime<Utc>>,
            revoked_at: Option<DateTime<Utc>>,
            accounts: Vec<String>,
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT token_id, name, role, key_id, sealed_secret, expires_at, revoked_at, accounts
             FROM api_tokens WHERE access_key_id = $1",
        )
        .bind(access_key_id)
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let secret = self.open_secret(
            &format!("the secret of token {}", row.name),
            row.key_id,
            row.token_id,
            &row.sealed_secret,
        )?;
        let secret = String::from_utf8(secret)
            .map_err(|_| StoreError::CorruptRow(format!("the secret of token {}", row.name)))?;
        Ok(Some(AccessKeyCredential {
            token_id: row.token_id,
            name: row.name,
            role: row.role,
            secret_access_key: secret.into(),
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            accounts: row.accounts,
        }))
    }

    pub async fn token_credential(
        &self,
        token_id: Uuid,
    ) -> Result<Option<TokenCredential>, StoreError> {
        sqlx::query_as(
            "SELECT name, access_key_id IS NOT NULL AS access_key, role, secret_sha256, expires_at, revoked_at
             FROM api_tokens WHERE token_id = $1",
        )
        .bind(token_id)
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }
}
