//! `orgtrail sources list`: per source, account and region, what the collectors took last,
//! when it last went well, what went wrong, how far behind CloudTrail it is, and how far digest
//! validation has got (log files per integrity status, problems found).

use std::process::ExitCode;

use anyhow::anyhow;
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::source_service_client::SourceServiceClient;
use orgtrail_client::{connect, ClientSettings};

use crate::events_command::format_time;
use crate::{SourcesListArguments, SummaryFormat};
use orgtrail_client::table::render_table;

pub async fn run_sources_list(
    settings: &ClientSettings,
    arguments: SourcesListArguments,
) -> anyhow::Result<ExitCode> {
    let sources = SourceServiceClient::new(connect(settings).await?)
        .list_sources(pb::ListSourcesRequest {})
        .await
        .map_err(|status| anyhow!("cannot list sources: {}", status.message()))?
        .into_inner()
        .sources;
    match arguments.output {
        SummaryFormat::Table => {
            let rows: Vec<Vec<String>> = sources
                .iter()
                .map(|source| {
                    vec![
                        source.source.clone(),
                        dash(&source.account_id),
                        dash(&source.aws_region),
                        status_word(source).to_string(),
                        format_time(source.last_delivery_time.as_ref()),
                        if source.last_delivery_time.is_some() {
                            format_lag(source.lag_seconds)
                        } else {
                            "-".into()
                        },
                        freshness(source),
                        format_time(source.last_success_at.as_ref()),
                        format_time(source.integrity_checked_until.as_ref()),
                        integrity_counts(source),
                        source.integrity_problems.to_string(),
                        dash(&source.collector),
                        dash(&source.lease_holder),
                        dash(&source.last_error),
                    ]
                })
                .collect();
            print!(
                "{}",
                render_table(
                    &[
                        "SOURCE",
                        "ACCOUNT",
                        "REGION",
                        "STATUS",
                        "LAST FILE",
                        "LAG",
                        "FRESHNESS",
                        "LAST SUCCESS",
                        "DIGESTS UNTIL",
                        "LOG FILES",
                        "PROBLEMS",
                        "COLLECTOR",
                        "LEASED BY",
                        "LAST ERROR"
                    ],
                    &rows
                )
            );
        }
        SummaryFormat::Json => {
            let rows: Vec<serde_json::Value> = sources
                .iter()
                .map(|source| {
                    serde_json::json!({
                        "source": source.source,
                        "accountId": source.account_id,
                        "awsRegion": source.aws_region,
                        "status": status_word(source),
                        "lastObjectKey": source.last_object_key,
                        "lastDeliveryTime": source.last_delivery_time.as_ref().map(|time| format_time(Some(time))),
                        "lagSeconds": source.lag_seconds,
                        "freshnessSeconds": source.freshness_seconds,
                        "freshnessP95Seconds": source.freshness_p95_seconds,
                        "lastSuccessAt": source.last_success_at.as_ref().map(|time| format_time(Some(time))),
                        "lastError": source.last_error,
                        "lastErrorAt": source.last_error_at.as_ref().map(|time| format_time(Some(time))),
                        "collector": source.collector,
                        "leaseHolder": source.lease_holder,
                        "integrity": {
                            "checkedUntil": source.integrity_checked_until.as_ref().map(|time| format_time(Some(time))),
                            "checkedAt": source.integrity_checked_at.as_ref().map(|time| format_time(Some(time))),
                            "logFiles": source.log_files_by_integrity,
                            "problems": source.integrity_problems,
                        },
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The newest file's freshness, and the 24-hour 95th percentile: `40s (p95 2m)`.
fn freshness(source: &pb::SourceStatus) -> String {
    let seconds = |value: f64| format_lag(value.round() as i64);
    match (source.freshness_seconds, source.freshness_p95_seconds) {
        (Some(last), Some(p95)) => format!("{} (p95 {})", seconds(last), seconds(p95)),
        (Some(last), None) => seconds(last),
        _ => "-".into(),
    }
}

/// `error` when the last error is newer than the last success.
fn status_word(source: &pb::SourceStatus) -> &'static str {
    let seconds =
        |time: Option<&prost_types::Timestamp>| time.map(|time| (time.seconds, time.nanos));
    match (
        seconds(source.last_success_at.as_ref()),
        seconds(source.last_error_at.as_ref()),
    ) {
        (_, None) => "ok",
        (Some(success), Some(error)) if success > error => "ok",
        _ => "error",
    }
}

/// Log files per integrity status, most telling first: `12 verified, 3 not_yet_covered`.
fn integrity_counts(source: &pb::SourceStatus) -> String {
    const ORDER: [&str; 6] = [
        "modified",
        "unlisted",
        "unverifiable",
        "verified",
        "not_yet_covered",
        "unchecked",
    ];
    let counts: Vec<String> = ORDER
        .iter()
        .filter_map(|status| {
            let files = source.log_files_by_integrity.get(*status)?;
            (*files > 0).then(|| format!("{files} {status}"))
        })
        .collect();
    if counts.is_empty() {
        "-".into()
    } else {
        counts.join(", ")
    }
}

fn format_lag(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_string()
    }
}
