//! `orgtrail-collector --config FILE [--once]`: reads the CloudTrail log files of every source
//! and streams them to the aggregator; with `--once`, one full pass, then a per-source summary
//! and an exit status saying whether every source was read.

mod aggregator_client;
mod aws_access;
mod collector;
mod config;
mod digest_validation;
mod listing;
mod metrics;
mod s3_log_file;
mod source_error;
mod source_pass;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use orgtrail_client::table::render_table;
use orgtrail_service_runtime::{init_logging, shutdown_signal};
use tokio_util::sync::CancellationToken;

use crate::collector::Collector;
use crate::config::load_config;
use crate::source_pass::SourceOutcome;

/// The orgtrail collector: assumes a role into each member account and region, reads the
/// CloudTrail log files there and streams them to the aggregator.
#[derive(Parser)]
#[command(name = "orgtrail-collector", version)]
struct Arguments {
    /// TOML configuration file; settings can also come from ORGTRAIL_* variables.
    #[arg(long, global = true, env = "ORGTRAIL_CONFIG")]
    config: Option<PathBuf>,
    /// One full pass over every source, then exit: 0 when every source was read.
    #[arg(long)]
    once: bool,
    /// Plaintext gRPC to an aggregator started with --insecure (trials on one machine only).
    #[arg(long, global = true)]
    insecure: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Load and validate the configuration, print it, and exit.
    CheckConfig,
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let arguments = Arguments::parse();
    let config = load_config(arguments.config.as_deref(), arguments.insecure)
        .context("invalid configuration")?;
    if let Some(Command::CheckConfig) = arguments.command {
        println!("{config:#?}");
        return Ok(ExitCode::SUCCESS);
    }
    init_logging(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        tokio::spawn(cancel_on_signal(cancel.clone()));
        tracing::info!(collector = %config.collector_id, sources = config.sources.len(), "collector starting");
        if matches!(config.aggregator.transport, orgtrail_client::Transport::Insecure) {
            tracing::warn!("plaintext gRPC to the aggregator (insecure): the records cross the network in the clear");
        }
        let (health_listen, metrics_listen) = (config.health_listen, config.metrics_listen);
        let collector = Collector::new(config).await.context("invalid aggregator settings")?;
        let (health, health_service) = tonic_health::server::health_reporter();
        orgtrail_service_runtime::serve_probes(health_listen, health_service, metrics_listen).await?;
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        if arguments.once {
            let outcomes = collector.run_once(&cancel).await;
            Ok(print_summary(&outcomes, cancel.is_cancelled()))
        } else {
            collector.run(&cancel).await;
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            tracing::info!("collector stopped");
            Ok(ExitCode::SUCCESS)
        }
    })
}

/// Prints one line per source and the errors; exit status 0 only if every source was read
/// without error.
fn print_summary(outcomes: &BTreeMap<String, SourceOutcome>, cancelled: bool) -> ExitCode {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut integrity_problems = Vec::new();
    for (name, outcome) in outcomes {
        match outcome {
            SourceOutcome::Read(report) => {
                let region_errors: Vec<String> = report.errors().collect();
                let status = if region_errors.is_empty() {
                    "read"
                } else {
                    "partial"
                };
                let counts = &report.counts;
                let mut row = vec![name.clone(), status.to_string()];
                row.extend(
                    [
                        counts.files_listed as u64,
                        counts.files_new as u64,
                        counts.committed as u64,
                        counts.already_ingested as u64,
                        counts.events_stored,
                        counts.duplicates,
                        counts.rejected,
                        counts.faults as u64,
                    ]
                    .map(|count| count.to_string()),
                );
                let integrity = report
                    .regions
                    .values()
                    .filter_map(|region| region.integrity.as_ref());
                let (mut verified, mut problems, mut validated) = (0usize, 0usize, false);
                for unit in integrity {
                    validated = true;
                    verified += unit.log_files.get("verified").copied().unwrap_or(0);
                    problems += unit.problems.len();
                    integrity_problems.extend(
                        unit.problems
                            .iter()
                            .map(|problem| format!("{name}: {problem}")),
                    );
                }
                row.extend(if validated {
                    [verified.to_string(), problems.to_string()]
                } else {
                    ["-".to_string(), "-".to_string()]
                });
                rows.push(row);
                errors.extend(
                    region_errors
                        .into_iter()
                        .map(|error| format!("{name}: {error}")),
                );
            }
            SourceOutcome::Failed(error) => {
                rows.push(not_read_row(name, "failed"));
                errors.push(format!("{name}: {error}"));
            }
            SourceOutcome::LeasedElsewhere(holder) => {
                rows.push(not_read_row(name, "skipped"));
                errors.push(format!("{name}: leased by {holder} for the whole pass"));
            }
        }
    }
    print!(
        "{}",
        render_table(
            &[
                "SOURCE",
                "STATUS",
                "LISTED",
                "NEW",
                "COMMITTED",
                "ALREADY",
                "EVENTS",
                "DUPLICATES",
                "REJECTED",
                "FAULTS",
                "VERIFIED",
                "PROBLEMS"
            ],
            &rows
        )
    );
    if let Some(peak) = peak_memory_kib() {
        eprintln!("peak memory: {peak} KiB");
    }
    // Integrity problems are findings in the aggregator; the pass itself went well.
    for problem in &integrity_problems {
        eprintln!("integrity problem: {problem}");
    }
    for error in &errors {
        eprintln!("error: {error}");
    }
    if cancelled {
        eprintln!("error: stopped before the pass was complete");
    }
    if errors.is_empty() && !cancelled {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn not_read_row(name: &str, status: &str) -> Vec<String> {
    let mut row = vec![name.to_string(), status.to_string()];
    row.extend(std::iter::repeat_n("-".to_string(), 10));
    row
}

/// The process's peak resident set size (VmHWM), for benchmarks.
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// On SIGTERM or SIGINT: finish the files in flight, start no new one.
async fn cancel_on_signal(cancel: CancellationToken) {
    shutdown_signal().await;
    tracing::info!("stopping: finishing the files in flight");
    cancel.cancel();
}
