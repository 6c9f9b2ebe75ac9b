//! `orgtrail-bench-calls`: the gRPC calls `cargo xtask bench insights` times that the CLI does
//! not make, or makes with a process start around each: summaries over one connection, and an
//! Insights replay. xtask knows no tonic, so it runs this (built with the release binaries).
//!
//! ```text
//! orgtrail-bench-calls --endpoint URL --ca FILE --cert FILE --key FILE summarize RUNS START END
//! orgtrail-bench-calls --endpoint URL --ca FILE --cert FILE --key FILE replay START END
//! ```
//!
//! START and END are RFC 3339, or `-` for an open side. `summarize` prints one line per run,
//! `<milliseconds> <groups> <events>`; `replay` prints `<seconds> <series evaluated> <Insights
//! found> <Insights written>`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::event_service_client::EventServiceClient;
use orgtrail_api::v1::insight_service_client::InsightServiceClient;
use orgtrail_client::{connect, ClientSettings, TlsFiles, Transport};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| orgtrail_tests::flag_value(&arguments, flag);
    let mut settings = ClientSettings::new(
        value("--endpoint")?,
        Transport::Tls(TlsFiles {
            ca: Some(value("--ca")?.into()),
            cert: Some(value("--cert")?.into()),
            key: Some(value("--key")?.into()),
            domain: None,
        }),
    );
    // A replay of a month may take minutes; the aggregator bounds it with its own timeout.
    settings.request_timeout = Duration::from_secs(3600);
    let channel = connect(&settings).await.context("cannot connect")?;
    let command_at = arguments
        .iter()
        .position(|argument| argument == "summarize" || argument == "replay")
        .context("give summarize RUNS START END or replay START END")?;
    match &arguments[command_at..] {
        [command, runs, start, end] if command == "summarize" => {
            let runs: usize = runs.parse().context("RUNS is a number")?;
            let (start_time, end_time) = (timestamp(start)?, timestamp(end)?);
            let mut client = EventServiceClient::new(channel);
            for _ in 0..runs {
                let started = Instant::now();
                let counts = client
                    .summarize_events(pb::SummarizeEventsRequest {
                        start_time,
                        end_time,
                    })
                    .await
                    .context("the summary failed")?
                    .into_inner()
                    .counts;
                let milliseconds = started.elapsed().as_secs_f64() * 1000.0;
                let events: u64 = counts.iter().map(|count| count.events).sum();
                println!("{milliseconds:.3} {} {events}", counts.len());
            }
        }
        [command, start, end] if command == "replay" => {
            let started = Instant::now();
            let answer = InsightServiceClient::new(channel)
                .replay_insights(pb::ReplayInsightsRequest {
                    start_time: timestamp(start)?,
                    end_time: timestamp(end)?,
                })
                .await
                .context("the replay failed")?
                .into_inner();
            println!(
                "{:.3} {} {} {}",
                started.elapsed().as_secs_f64(),
                answer.series_evaluated,
                answer.insights_found,
                answer.insights_written
            );
        }
        _ => bail!("give summarize RUNS START END or replay START END"),
    }
    Ok(())
}

/// RFC 3339, or `-` for none.
fn timestamp(text: &str) -> anyhow::Result<Option<prost_types::Timestamp>> {
    if text == "-" {
        return Ok(None);
    }
    let time: DateTime<Utc> = text
        .parse()
        .with_context(|| format!("{text:?} is not RFC 3339"))?;
    Ok(Some(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }))
}
