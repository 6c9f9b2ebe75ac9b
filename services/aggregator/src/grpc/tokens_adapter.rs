//! `TokenService` over gRPC: admins create, list and revoke bearer tokens and access keys.

use std::sync::Arc;

use orgtrail_api::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::admin::{role_from_proto, token_to_proto};
use super::convert::authenticated_actor;
use super::status::{token_error_status, token_request_status};
use secrecy::ExposeSecret;

use crate::auth::{Authenticator, IssuedSecret, TokenRequest};
use crate::store::PgStore;

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

#[tonic::async_trait]
impl pb::token_service_server::TokenService for TokensAdapter {
    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let actor = authenticated_actor(&request);
        let request = request.into_inner();
        let role = role_from_proto(&request.role)?;
        let (token, secret) = self
            .authenticator
            .create_token(
                &actor,
                &TokenRequest {
                    name: &request.name,
                    role,
                    expires_in_days: request.expires_in_days,
                    aws_credentials: request.aws_credentials,
                    accounts: &request.accounts,
                },
            )
            .await
            .map_err(|error| token_request_status(&error))?;
        let token = Some(token_to_proto(token));
        Ok(Response::new(match secret {
            IssuedSecret::Bearer(secret) => pb::CreateTokenResponse {
                token,
                secret,
                ..Default::default()
            },
            IssuedSecret::AwsCredentials {
                access_key_id,
                secret_access_key,
            } => pb::CreateTokenResponse {
                token,
                access_key_id,
                secret_access_key: secret_access_key.expose_secret().to_string(),
                ..Default::default()
            },
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
        let actor = authenticated_actor(&request);
        let token = self
            .store
            .revoke_token(&actor, &request.into_inner().name_or_id)
            .await
            .map_err(|error| token_error_status(&error))?;
        Ok(Response::new(token_to_proto(token)))
    }
}
