//! `orgtrail events lookup|summary`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use chrono::{DateTime, SecondsFormat, Utc};
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::event_service_client::EventServiceClient;
use orgtrail_client::{connect, ClientSettings};
use orgtrail_domain::compact_json;
use orgtrail_domain::lookup::LookupAttributeKey;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::time_argument::{timestamp_argument, RangeEnd};
use crate::{LookupArguments, OutputFormat, SummaryArguments, SummaryFormat};
use orgtrail_client::table::render_table;

/// Events asked for per call while paging.
const PAGE_SIZE: u64 = 500;
/// Pages can be large: records reach 256 KB.
const MAX_RESPONSE_BYTES: usize = 512 << 20;
/// `--max` when not given, for table and json output.
const DEFAULT_MAX: u64 = 50;

pub async fn run_lookup(
    settings: &ClientSettings,
    arguments: LookupArguments,
) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let start_time = timestamp_argument(arguments.start.as_deref(), RangeEnd::Start, now)?;
    let end_time = timestamp_argument(arguments.end.as_deref(), RangeEnd::End, now)?;
    let lookup_attributes = arguments
        .attributes
        .iter()
        .map(|attribute| parse_attribute(attribute))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let limit = match (arguments.max, arguments.output) {
        (Some(max), _) => Some(max),
        (None, OutputFormat::Jsonl) => None,
        (None, _) => Some(DEFAULT_MAX),
    };
    let mut client = EventServiceClient::new(connect(settings).await?)
        .max_decoding_message_size(MAX_RESPONSE_BYTES);
    let mut request = pb::LookupEventsRequest {
        start_time,
        end_time,
        lookup_attributes,
        accounts: arguments.accounts,
        regions: arguments.regions,
        event_categories: arguments.categories,
        max_results: 0,
        next_token: String::new(),
        verified_only: arguments.verified_only,
    };

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut collected: Vec<pb::Event> = Vec::new();
    let mut printed: u64 = 0;
    let more_available = loop {
        let wanted = limit.map_or(PAGE_SIZE, |limit| (limit - printed).min(PAGE_SIZE));
        request.max_results = u32::try_from(wanted).unwrap_or(u32::MAX);
        let page = client
            .lookup_events(request.clone())
            .await
            .map_err(|status| anyhow!("lookup failed: {}", status.message()))?
            .into_inner();
        for event in page.events {
            printed += 1;
            match arguments.output {
                // JSON Lines: one record per line, whatever its log file looked like.
                OutputFormat::Jsonl => {
                    let record = original_record(&event)?;
                    writeln!(out, "{}", compact_json(record.get()))?
                }
                OutputFormat::Table | OutputFormat::Json => collected.push(event),
            }
        }
        if page.next_token.is_empty() {
            break false;
        }
        if limit.is_some_and(|limit| printed >= limit) {
            break true;
        }
        request.next_token = page.next_token;
    };
    match arguments.output {
        OutputFormat::Jsonl => {}
        OutputFormat::Table => write!(out, "{}", events_table(&collected))?,
        OutputFormat::Json => {
            let events = collected
                .iter()
                .map(EventJson::from_event)
                .collect::<anyhow::Result<Vec<_>>>()?;
            serde_json::to_writer_pretty(&mut out, &events)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    if more_available {
        eprintln!("(more events match: raise --max, or use --output jsonl for all of them)");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_summary(
    settings: &ClientSettings,
    arguments: SummaryArguments,
) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let request = pb::SummarizeEventsRequest {
        start_time: timestamp_argument(arguments.start.as_deref(), RangeEnd::Start, now)?,
        end_time: timestamp_argument(arguments.end.as_deref(), RangeEnd::End, now)?,
    };
    let counts = EventServiceClient::new(connect(settings).await?)
        .summarize_events(request)
        .await
        .map_err(|status| anyhow!("summary failed: {}", status.message()))?
        .into_inner()
        .counts;
    match arguments.output {
        SummaryFormat::Table => {
            let total: u64 = counts.iter().map(|count| count.events).sum();
            let accounts: std::collections::BTreeSet<&str> = counts
                .iter()
                .map(|count| count.account_id.as_str())
                .collect();
            let regions: std::collections::BTreeSet<&str> = counts
                .iter()
                .map(|count| count.aws_region.as_str())
                .collect();
            let rows: Vec<Vec<String>> = counts
                .iter()
                .map(|count| {
                    vec![
                        or_dash(&count.account_id),
                        or_dash(&count.aws_region),
                        count.event_category.clone(),
                        count.events.to_string(),
                        format_time(count.oldest_event_time.as_ref()),
                        format_time(count.newest_event_time.as_ref()),
                    ]
                })
                .collect();
            print!(
                "{}",
                render_table(
                    &["ACCOUNT", "REGION", "CATEGORY", "EVENTS", "OLDEST", "NEWEST"],
                    &rows
                )
            );
            println!(
                "{total} events in {} accounts and {} regions",
                accounts.len(),
                regions.len()
            );
        }
        SummaryFormat::Json => {
            let rows: Vec<serde_json::Value> = counts
                .iter()
                .map(|count| {
                    serde_json::json!({
                        "accountId": count.account_id,
                        "awsRegion": count.aws_region,
                        "eventCategory": count.event_category,
                        "events": count.events,
                        "oldestEventTime": format_time(count.oldest_event_time.as_ref()),
                        "newestEventTime": format_time(count.newest_event_time.as_ref()),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `Key=Value`, the key as CloudTrail spells it.
fn parse_attribute(text: &str) -> anyhow::Result<pb::LookupAttribute> {
    let (key, value) = text
        .split_once('=')
        .with_context(|| format!("--attr {text:?} is not KEY=VALUE"))?;
    let key = LookupAttributeKey::parse(key).with_context(|| {
        let keys: Vec<&str> = LookupAttributeKey::ALL
            .iter()
            .map(|key| key.as_str())
            .collect();
        format!("--attr key {key:?} is not one of {}", keys.join(", "))
    })?;
    let key = match key {
        LookupAttributeKey::EventId => pb::LookupAttributeKey::EventId,
        LookupAttributeKey::EventName => pb::LookupAttributeKey::EventName,
        LookupAttributeKey::ReadOnly => pb::LookupAttributeKey::ReadOnly,
        LookupAttributeKey::Username => pb::LookupAttributeKey::Username,
        LookupAttributeKey::ResourceType => pb::LookupAttributeKey::ResourceType,
        LookupAttributeKey::ResourceName => pb::LookupAttributeKey::ResourceName,
        LookupAttributeKey::EventSource => pb::LookupAttributeKey::EventSource,
        LookupAttributeKey::AccessKeyId => pb::LookupAttributeKey::AccessKeyId,
    };
    Ok(pb::LookupAttribute {
        key: key.into(),
        value: value.to_string(),
    })
}

fn events_table(events: &[pb::Event]) -> String {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|event| {
            let username = event
                .user_identity
                .as_ref()
                .map(|identity| identity.username.as_str())
                .unwrap_or_default();
            vec![
                format_time(event.event_time.as_ref()),
                or_dash(&event.account_id),
                or_dash(&event.aws_region),
                or_dash(&event.event_source),
                or_dash(&event.event_name),
                or_dash(username),
                event
                    .read_only
                    .map_or("-".to_string(), |read_only| read_only.to_string()),
                or_dash(&event.error_code),
            ]
        })
        .collect();
    render_table(
        &[
            "EVENT TIME",
            "ACCOUNT",
            "REGION",
            "EVENT SOURCE",
            "EVENT NAME",
            "USERNAME",
            "READ ONLY",
            "ERROR CODE",
        ],
        &rows,
    )
}

pub fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_string()
    }
}

pub fn format_time(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(|timestamp| {
            DateTime::from_timestamp(
                timestamp.seconds,
                u32::try_from(timestamp.nanos).unwrap_or(0),
            )
        })
        .map(|time| time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| "-".into())
}

/// A time in `--output json`: RFC 3339, or null when absent.
pub fn format_optional_time(timestamp: Option<&prost_types::Timestamp>) -> Option<String> {
    timestamp.map(|timestamp| format_time(Some(timestamp)))
}

/// An event in `--output json`: the searchable fields, and the original record as it was.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventJson<'a> {
    event_id: &'a str,
    event_time: String,
    event_version: &'a str,
    event_source: &'a str,
    event_name: &'a str,
    aws_region: &'a str,
    account_id: &'a str,
    account_id_source: &'static str,
    event_type: &'a str,
    event_category: &'a str,
    read_only: Option<bool>,
    management_event: Option<bool>,
    username: &'a str,
    user_identity_type: &'a str,
    user_identity_arn: &'a str,
    access_key_id: &'a str,
    source_ip_address: &'a str,
    user_agent: &'a str,
    error_code: &'a str,
    error_message: &'a str,
    resources: Vec<ResourceJson<'a>>,
    shared_event_id: &'a str,
    request_id: &'a str,
    cloud_trail_event: Box<RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceJson<'a> {
    #[serde(rename = "type")]
    resource_type: &'a str,
    #[serde(rename = "ARN")]
    arn: &'a str,
    account_id: &'a str,
}

impl<'a> EventJson<'a> {
    fn from_event(event: &'a pb::Event) -> anyhow::Result<EventJson<'a>> {
        let identity = event.user_identity.as_ref();
        let text = |value: Option<&'a String>| value.map(String::as_str).unwrap_or_default();
        Ok(EventJson {
            event_id: &event.event_id,
            event_time: format_time(event.event_time.as_ref()),
            event_version: &event.event_version,
            event_source: &event.event_source,
            event_name: &event.event_name,
            aws_region: &event.aws_region,
            account_id: &event.account_id,
            account_id_source: match pb::AccountIdSource::try_from(event.account_id_source) {
                Ok(pb::AccountIdSource::RecipientAccountId) => "recipientAccountId",
                Ok(pb::AccountIdSource::S3Key) => "s3Key",
                Ok(pb::AccountIdSource::UserIdentity) => "userIdentity",
                _ => "none",
            },
            event_type: &event.event_type,
            event_category: &event.event_category,
            read_only: event.read_only,
            management_event: event.management_event,
            username: text(identity.map(|identity| &identity.username)),
            user_identity_type: text(identity.map(|identity| &identity.r#type)),
            user_identity_arn: text(identity.map(|identity| &identity.arn)),
            access_key_id: text(identity.map(|identity| &identity.access_key_id)),
            source_ip_address: &event.source_ip_address,
            user_agent: &event.user_agent,
            error_code: &event.error_code,
            error_message: &event.error_message,
            resources: event
                .resources
                .iter()
                .map(|resource| ResourceJson {
                    resource_type: &resource.r#type,
                    arn: &resource.arn,
                    account_id: &resource.account_id,
                })
                .collect(),
            shared_event_id: &event.shared_event_id,
            request_id: &event.request_id,
            cloud_trail_event: original_record(event)?,
        })
    }
}

/// The event's original record, checked to be JSON (an aggregator answers only what it stored
/// from valid JSON; a client does not print what it cannot vouch for).
fn original_record(event: &pb::Event) -> anyhow::Result<Box<RawValue>> {
    RawValue::from_string(event.cloud_trail_event.clone())
        .with_context(|| format!("event {} carries a record that is not JSON", event.event_id))
}
