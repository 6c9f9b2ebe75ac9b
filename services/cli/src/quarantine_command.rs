//! `orgtrail quarantine list|show`: input the aggregator refused, with the reason.

use std::io::Write;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Subcommand;
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::quarantine_service_client::QuarantineServiceClient;
use orgtrail_client::table::render_table;
use orgtrail_client::{connect, ClientSettings};
use serde_json::json;

use crate::events_command::format_time;
use crate::retention_command::OutputArguments;
use crate::SummaryFormat;

#[derive(Subcommand)]
pub enum QuarantineCommand {
    /// Refused records and file faults, newest first.
    List {
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 50)]
        max: u32,
        #[command(flatten)]
        output: OutputArguments,
    },
    /// One entry, with what was kept of the refused content (admins only).
    Show {
        quarantine_id: i64,
        /// Write the kept content, as it was received, to standard output and nothing else.
        #[arg(long)]
        raw: bool,
    },
}

fn entry_json(entry: &pb::QuarantineEntry, with_content: bool) -> serde_json::Value {
    let mut value = json!({
        "quarantineId": entry.quarantine_id,
        "receivedAt": format_time(entry.received_at.as_ref()),
        "source": entry.source,
        "bucket": entry.bucket,
        "objectKey": entry.object_key,
        "etag": entry.etag,
        "recordIndex": (entry.record_index >= 0).then_some(entry.record_index),
        "reason": entry.reason,
        "contentBytes": entry.content_bytes,
    });
    if with_content {
        value["content"] = json!(String::from_utf8_lossy(&entry.content));
        value["contentKeptBytes"] = json!(entry.content.len());
    }
    value
}

pub async fn run_quarantine(
    settings: &ClientSettings,
    command: QuarantineCommand,
) -> anyhow::Result<ExitCode> {
    let mut client = QuarantineServiceClient::new(connect(settings).await?);
    match command {
        QuarantineCommand::List {
            source,
            max,
            output,
        } => {
            let mut entries = Vec::new();
            let mut next_token = String::new();
            while entries.len() < max as usize {
                let page = client
                    .list_quarantine(pb::ListQuarantineRequest {
                        source: source.clone().unwrap_or_default(),
                        max_results: (max as usize - entries.len()).min(1000) as u32,
                        next_token: next_token.clone(),
                    })
                    .await
                    .map_err(|status| anyhow!("cannot list the quarantine: {}", status.message()))?
                    .into_inner();
                entries.extend(page.entries);
                if page.next_token.is_empty() {
                    break;
                }
                next_token = page.next_token;
            }
            match output.output {
                SummaryFormat::Json => {
                    let rows: Vec<_> = entries
                        .iter()
                        .map(|entry| entry_json(entry, false))
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                }
                SummaryFormat::Table => {
                    let rows: Vec<Vec<String>> = entries
                        .iter()
                        .map(|entry| {
                            vec![
                                entry.quarantine_id.to_string(),
                                format_time(entry.received_at.as_ref()),
                                entry.source.clone(),
                                if entry.bucket.is_empty() {
                                    entry.object_key.clone()
                                } else {
                                    format!("s3://{}/{}", entry.bucket, entry.object_key)
                                },
                                if entry.record_index >= 0 {
                                    entry.record_index.to_string()
                                } else {
                                    "file".into()
                                },
                                entry.content_bytes.to_string(),
                                entry.reason.clone(),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        render_table(
                            &["ID", "RECEIVED", "SOURCE", "FILE", "RECORD", "BYTES", "REASON"],
                            &rows
                        )
                    );
                }
            }
        }
        QuarantineCommand::Show { quarantine_id, raw } => {
            let entry = client
                .get_quarantined(pb::GetQuarantinedRequest { quarantine_id })
                .await
                .map_err(|status| {
                    anyhow!(
                        "cannot read quarantine entry {quarantine_id}: {}",
                        status.message()
                    )
                })?
                .into_inner();
            if raw {
                std::io::stdout().write_all(&entry.content)?;
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&entry_json(&entry, true))?
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
