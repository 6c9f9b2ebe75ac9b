//! `orgtrail keys rotate|list`: the data keys that seal stored records (admins only).

use std::process::ExitCode;

use anyhow::anyhow;
use clap::Subcommand;
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::key_service_client::KeyServiceClient;
use orgtrail_client::table::render_table;
use orgtrail_client::{connect, ClientSettings};
use serde_json::json;

use crate::events_command::format_time;
use crate::retention_command::OutputArguments;
use crate::SummaryFormat;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a new data key (wrapped by the primary master key) the one new records are sealed
    /// with; older records stay readable under their keys.
    Rotate {
        /// Then rewrite the older records under the new key, in the background (follow it
        /// with `orgtrail keys list`).
        #[arg(long)]
        reencrypt: bool,
    },
    /// The data keys, and how many stored events each seals.
    List(OutputArguments),
}

pub async fn run_keys(settings: &ClientSettings, command: KeysCommand) -> anyhow::Result<ExitCode> {
    let mut client = KeyServiceClient::new(connect(settings).await?);
    match command {
        KeysCommand::Rotate { reencrypt } => {
            let response = client
                .rotate_data_key(pb::RotateDataKeyRequest { reencrypt })
                .await
                .map_err(|status| anyhow!("cannot rotate the data key: {}", status.message()))?
                .into_inner();
            println!("data key {} is now active", response.key_id);
            if response.reencrypting {
                println!("older records are being re-encrypted under it: `orgtrail keys list` shows the progress");
            } else if reencrypt {
                println!("a re-encryption already runs on that aggregator; it continues under the new key");
            }
        }
        KeysCommand::List(output) => {
            let response = client
                .list_data_keys(pb::ListDataKeysRequest {})
                .await
                .map_err(|status| anyhow!("cannot list the data keys: {}", status.message()))?
                .into_inner();
            match output.output {
                SummaryFormat::Json => {
                    let keys: Vec<_> = response
                        .keys
                        .iter()
                        .map(|key| {
                            json!({
                                "keyId": key.key_id,
                                "wrappedBy": key.wrapped_by,
                                "createdAt": format_time(key.created_at.as_ref()),
                                "createdBy": key.created_by,
                                "active": key.active,
                                "events": key.events,
                                "retired": key.retired,
                            })
                        })
                        .collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&json!({
                            "keys": keys,
                            "plaintextEvents": response.plaintext_events,
                            "reencrypting": response.reencrypting,
                        }))?
                    );
                }
                SummaryFormat::Table => {
                    let rows: Vec<Vec<String>> = response
                        .keys
                        .iter()
                        .map(|key| {
                            vec![
                                key.key_id.to_string(),
                                if key.active {
                                    "yes"
                                } else if key.retired {
                                    "retired"
                                } else {
                                    ""
                                }
                                .to_string(),
                                key.events.to_string(),
                                key.wrapped_by.clone(),
                                format_time(key.created_at.as_ref()),
                                key.created_by.clone(),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        render_table(
                            &["KEY", "ACTIVE", "EVENTS", "WRAPPED BY", "CREATED", "BY"],
                            &rows
                        )
                    );
                    if response.plaintext_events > 0 {
                        println!(
                            "{} events are stored in the clear",
                            response.plaintext_events
                        );
                    }
                    if response.reencrypting {
                        println!("a re-encryption is running");
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
