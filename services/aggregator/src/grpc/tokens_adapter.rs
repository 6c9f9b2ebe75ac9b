//! `TokenService` over gRPC: admins create, list and revoke bearer tokens.

use std::sync::Arc;

use orgtrail_api::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::to_timestamp;
use super::status::token_error_status;
use crate::auth::{Authenticator, Caller, Role};
use crate::store::{PgStore, StoredToken};

/// The longest life of a token, in days.
const MAX_TOKEN_DAYS: u32 = 3650;

pub struct TokensAdapter {
    authenticator: Arc<Authenticator>,
    store: PgStore,
}

impl TokensAdapter {
    pub fn new(authenticator: Arc<Authenticator>, store: PgStore) -> TokensAdapter {
        TokensAdapter {
            authenticator,
            store,
        }
    }
}

/// The authenticated caller, as the audit log names it.
pub fn actor<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<Caller>()
        .map(Caller::to_string)
        .unwrap_or_else(|| "unauthenticated".into())
}

fn token_to_proto(token: StoredToken) -> pb::ApiToken {
    pb::ApiToken {
        token_id: token.token_id.to_string(),
        name: token.name,
        role: token.role,
        created_at: Some(to_timestamp(token.created_at)),
        created_by: token.created_by,
        expires_at: token.expires_at.map(to_timestamp),
        revoked_at: token.revoked_at.map(to_timestamp),
        revoked_by: token.revoked_by.unwrap_or_default(),
    }
}

/// A token's name: 1–64 letters, digits, `-`, `_`, `.`, `@`.
pub fn validate_token_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("a token name has 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    {
        return Err(format!(
            "token name {name:?} may hold only letters, digits, '-', '_', '.' and '@'"
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl pb::token_service_server::TokenService for TokensAdapter {
    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let actor = actor(&request);
        let request = request.into_inner();
        validate_token_name(&request.name).map_err(Status::invalid_argument)?;
        let role: Role = request
            .role
            .parse()
            .map_err(|error: crate::auth::UnknownRole| {
                Status::invalid_argument(error.to_string())
            })?;
        if request.expires_in_days > MAX_TOKEN_DAYS {
            return Err(Status::invalid_argument(format!(
                "expires_in_days is over the limit of {MAX_TOKEN_DAYS}"
            )));
        }
        let expires_at = (request.expires_in_days > 0).then(|| {
            chrono::Utc::now() + chrono::Duration::days(i64::from(request.expires_in_days))
        });
        let (token, secret) = self
            .authenticator
            .create_token(&actor, &request.name, role, expires_at)
            .await
            .map_err(|error| token_error_status(&error))?;
        Ok(Response::new(pb::CreateTokenResponse {
            token: Some(token_to_proto(token)),
            secret,
        }))
    }

    async fn list_tokens(
        &self,
        request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        let tokens = self
            .store
            .list_tokens(request.into_inner().include_revoked)
            .await
            .map_err(|error| token_error_status(&error))?;
        Ok(Response::new(pb::ListTokensResponse {
            tokens: tokens.into_iter().map(token_to_proto).collect(),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::ApiToken>, Status> {
        let actor = actor(&request);
        let token = self
            .store
            .revoke_token(&actor, &request.into_inner().name_or_id)
            .await
            .map_err(|error| token_error_status(&error))?;
        Ok(Response::new(token_to_proto(token)))
    }
}
