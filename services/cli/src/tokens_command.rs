//! `orgtrail tokens create|list|revoke`: bearer tokens for callers without a client
//! certificate, and AWS-style access keys for the CloudTrail-compatible endpoint (admins only).

use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::token_service_client::TokenServiceClient;
use orgtrail_client::table::render_table;
use orgtrail_client::{connect, ClientSettings};
use serde_json::{json, Value};

use crate::events_command::format_time;
use crate::retention_command::OutputArguments;
use crate::SummaryFormat;

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create a token; its secret is printed once, on standard output.
    Create(CreateTokenArguments),
    /// The live tokens (never their secrets).
    List {
        /// Revoked tokens too.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        output: OutputArguments,
    },
    /// Revoke a live token: calls presenting it are refused from then on.
    Revoke {
        /// The token's name or id.
        name_or_id: String,
    },
}

#[derive(Args)]
pub struct CreateTokenArguments {
    /// The token's name, unique among live tokens (e.g. the person or job that uses it).
    #[arg(long)]
    pub name: String,
    /// ingest (collectors, backfills), reader (lookups, previews, audit) or admin.
    #[arg(long)]
    pub role: String,
    /// Days until the token expires (0: never).
    #[arg(long, default_value_t = 90)]
    pub expires_in_days: u32,
    /// An access key id and secret access key for the CloudTrail-compatible endpoint (the AWS
    /// CLI, boto3, the AWS SDKs) instead of a bearer token, printed as the lines of an AWS
    /// credentials file. Role reader or admin.
    #[arg(long)]
    pub aws_credentials: bool,
    /// With --aws-credentials: the key sees only this account's events (repeat for several).
    #[arg(
        long = "account",
        value_name = "ACCOUNT_ID",
        requires = "aws_credentials"
    )]
    pub accounts: Vec<String>,
}

fn token_json(token: &pb::ApiToken) -> Value {
    json!({
        "tokenId": token.token_id,
        "name": token.name,
        "role": token.role,
        "createdAt": format_time(token.created_at.as_ref()),
        "createdBy": token.created_by,
        "expiresAt": token.expires_at.as_ref().map(|time| format_time(Some(time))),
        "revokedAt": token.revoked_at.as_ref().map(|time| format_time(Some(time))),
        "revokedBy": token.revoked_by,
        "accessKeyId": (!token.access_key_id.is_empty()).then_some(&token.access_key_id),
        "accounts": token.accounts,
    })
}

/// The access key id and the accounts it is scoped to, or `-` for a bearer token.
fn access_key_column(token: &pb::ApiToken) -> String {
    match (token.access_key_id.as_str(), token.accounts.as_slice()) {
        ("", _) => "-".into(),
        (id, []) => id.to_string(),
        (id, accounts) => format!("{id} ({})", accounts.join(", ")),
    }
}

pub async fn run_tokens(
    settings: &ClientSettings,
    command: TokensCommand,
) -> anyhow::Result<ExitCode> {
    let mut client = TokenServiceClient::new(connect(settings).await?);
    match command {
        TokensCommand::Create(arguments) => {
            let response = client
                .create_token(pb::CreateTokenRequest {
                    name: arguments.name,
                    role: arguments.role,
                    expires_in_days: arguments.expires_in_days,
                    aws_credentials: arguments.aws_credentials,
                    accounts: arguments.accounts,
                })
                .await
                .map_err(|status| anyhow!("cannot create the token: {}", status.message()))?
                .into_inner();
            if let Some(token) = &response.token {
                let what = if response.access_key_id.is_empty() {
                    "token"
                } else {
                    "access key of token"
                };
                eprintln!(
                    "{what} {} ({}, role {}) created; it is shown once:",
                    token.name, token.token_id, token.role
                );
            }
            if response.access_key_id.is_empty() {
                println!("{}", response.secret);
            } else {
                eprintln!("(the lines of an AWS credentials file: put them under a [profile] of ~/.aws/credentials)");
                println!("aws_access_key_id = {}", response.access_key_id);
                println!("aws_secret_access_key = {}", response.secret_access_key);
            }
        }
        TokensCommand::List { all, output } => {
            let tokens = client
                .list_tokens(pb::ListTokensRequest {
                    include_revoked: all,
                })
                .await
                .map_err(|status| anyhow!("cannot list tokens: {}", status.message()))?
                .into_inner()
                .tokens;
            match output.output {
                SummaryFormat::Json => {
                    let rows: Vec<Value> = tokens.iter().map(token_json).collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                }
                SummaryFormat::Table => {
                    let rows: Vec<Vec<String>> = tokens
                        .iter()
                        .map(|token| {
                            vec![
                                token.name.clone(),
                                token.role.clone(),
                                token.token_id.clone(),
                                access_key_column(token),
                                format_time(token.created_at.as_ref()),
                                token.created_by.clone(),
                                format_time(token.expires_at.as_ref()),
                                format_time(token.revoked_at.as_ref()),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        render_table(
                            &[
                                "NAME",
                                "ROLE",
                                "ID",
                                "ACCESS KEY",
                                "CREATED",
                                "BY",
                                "EXPIRES",
                                "REVOKED"
                            ],
                            &rows
                        )
                    );
                }
            }
        }
        TokensCommand::Revoke { name_or_id } => {
            let token = client
                .revoke_token(pb::RevokeTokenRequest { name_or_id })
                .await
                .map_err(|status| anyhow!("cannot revoke the token: {}", status.message()))?
                .into_inner();
            println!("revoked token {} ({})", token.name, token.token_id);
        }
    }
    Ok(ExitCode::SUCCESS)
}
