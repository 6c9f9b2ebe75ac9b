//! `cargo xtask`: the developer and CI tasks.
//!
//! - `cargo xtask test [ARGS…]`: prepares the test environment (the binaries, moto's server and
//!   the Parquet readers pyarrow and DuckDB in venvs, a throwaway PostgreSQL), runs the deploy
//!   checks, runs every test of the workspace against it (`cargo test --workspace ARGS…`),
//!   tears it down.
//! - `cargo xtask check-deploy`: the Helm chart, the Dockerfile and the CloudFormation
//!   templates, checked offline (see `deploy_checks`).
//! - `cargo xtask demo`: the main job on a local sample organization, summarised, then its
//!   alarms, a notification end to end, and the Sigma rules' findings.
//! - `cargo xtask bench ingest`: ingest throughput through gRPC against the COPY ceiling, with
//!   every detection off, the CIS alarms alone, and the CIS alarms and Sigma rules on; and the
//!   detections' cost on their own.
//! - `cargo xtask bench filters`: the CIS filters' and the Sigma rules' cost on their own, per
//!   filter and rule and together.
//! - `cargo xtask bench collect`: a collector pass over a generated organization.
//! - `cargo xtask bench retention`: enforcement over millions of events, both ways.
//! - `cargo xtask bench insights`: precision and recall of the Insights model over generated
//!   scenarios, the rollups' cost on ingest, the events summary over 10 M events, and the
//!   replay of a month of one account (see `bench_insights`).
//! - `cargo xtask bench archive`: the archive writer's throughput into moto's S3, the archive's
//!   bytes per event against CloudTrail's gzip'd JSON, and `orgtrail verify --archive`'s speed
//!   (see `bench_archive`).
//! - `cargo xtask bench sql`: SQL over 10 M events as archive objects (see `bench_sql`).
//! - `cargo xtask bench lookup-events`: the CloudTrail-compatible endpoint with 16 SigV4 callers
//!   over the 1 M-event bench set (see `bench_lookup_events`).
//! - `cargo xtask pki [--out DIR]`: a local CA and certificates for trials.

mod bench;
mod bench_archive;
mod bench_data;
mod bench_detection_runs;
mod bench_filters;
mod bench_insight_scenarios;
mod bench_insights;
mod bench_lookup_events;
mod bench_retention;
mod bench_rules;
mod bench_sql;
mod demo;
mod demo_alarms;
mod demo_cloudtrail_api;
mod demo_findings;
mod deploy_checks;
mod geoip;
mod moto;
mod pki;
mod postgres;
mod prerequisites;
mod processes;
mod python_readers;
mod python_venv;
mod webhook_receiver;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::postgres::ThrowawayPostgres;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test [ARGS…]    run every test against a throwaway PostgreSQL (ARGS go to cargo test)
  check-deploy    check the Helm chart and the Dockerfile, cfn-lint the CloudFormation templates
  demo            run orgtrail on a local sample organization: the consolidated view, alarms, a notification, findings
  bench ingest    measure ingest through gRPC (detections off, CIS alarms only, CIS and Sigma on) against a plain COPY of the same rows
  bench filters   measure the CIS metric filters and the Sigma rules alone over the same generated events (one thread)
  bench collect   measure one collector pass over a generated organization in moto
  bench retention measure enforcement by batched deletes and by partition drops, and ingest beside it
  bench insights  measure the Insights model over scenarios, the rollups' cost on ingest, the summary over 10 M events and a month's replay
  bench archive   measure the archive writer into moto's S3, bytes per event against gzip'd JSON, and verify --archive
  bench sql       measure SQL over 10 M events in archive objects (count by name, one principal over a month, bytes read)
  bench lookup-events  measure the CloudTrail-compatible endpoint with 16 SigV4 callers over 1 M events (req/s, p50/p99)
  pki [--out DIR] make a local CA, the aggregator's certificate and client certificates (trials only)";

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if let Err(error) = run(&arguments) {
        eprintln!("xtask: {error:#}");
        std::process::exit(1);
    }
}

fn run(arguments: &[String]) -> anyhow::Result<()> {
    let interrupted = keep_running_on_interrupt()?;
    match arguments.first().map(String::as_str) {
        Some("test") => test(&arguments[1..], &interrupted),
        Some("check-deploy") => {
            let bin_dir = processes::build_binaries(processes::Profile::Debug)?;
            deploy_checks::check_deploy(&bin_dir)
        }
        Some("demo") => demo::run_demo(&interrupted),
        Some("pki") => pki::run_pki(&arguments[1..], &pki_dir()),
        Some("bench") => match arguments.get(1).map(String::as_str) {
            Some("ingest") => bench::bench_ingest(&arguments[2..], &interrupted),
            Some("filters") => bench_filters::bench_filters(&arguments[2..], &interrupted),
            Some("collect") => bench::bench_collect(&arguments[2..], &interrupted),
            Some("retention") => bench_retention::bench_retention(&arguments[2..], &interrupted),
            Some("insights") => bench_insights::bench_insights(&arguments[2..], &interrupted),
            Some("archive") => bench_archive::bench_archive(&arguments[2..], &interrupted),
            Some("sql") => bench_sql::bench_sql(&arguments[2..], &interrupted),
            Some("lookup-events") => {
                bench_lookup_events::bench_lookup_events(&arguments[2..], &interrupted)
            }
            _ => bail!("{USAGE}"),
        },
        _ => bail!("{USAGE}"),
    }
}

/// Stops a long command once Ctrl-C or SIGTERM has come (its children got the signal too).
pub fn check_interrupted(interrupted: &AtomicBool) -> anyhow::Result<()> {
    if interrupted.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Where the local CA of the demo and the tests lives.
pub fn pki_dir() -> PathBuf {
    workspace_root().join("target/xtask/pki")
}

fn test(cargo_arguments: &[String], interrupted: &AtomicBool) -> anyhow::Result<()> {
    // The end-to-end tests run the real binaries.
    let bin_dir = processes::build_binaries_and_tests()?;
    // Fast (once its tools are installed) and offline, so first; a failure is reported again
    // after the tests, which run all the same.
    let deploy_checks = deploy_checks::check_deploy(&bin_dir);
    if let Err(error) = &deploy_checks {
        eprintln!("xtask: {error:#}; running the tests all the same");
    }
    let moto_server = moto::ensure_moto_server()?;
    let readers_python = python_readers::ensure_readers_python()?;
    let aws_clients_python = python_readers::ensure_aws_clients_python()?;
    let geoip_database = geoip::ensure_geoip_database()?;
    prerequisites::ensure_openssl()?;
    let pki = pki::ensure_pki(&pki_dir())?;
    let postgres = ThrowawayPostgres::start()?;
    eprintln!("xtask: PostgreSQL ready at {}", postgres.url("postgres"));
    let status = Command::new(cargo())
        .current_dir(workspace_root())
        .args(["test", "--workspace"])
        .args(cargo_arguments)
        .env("ORGTRAIL_TEST_DATABASE_URL", postgres.url("postgres"))
        .env("DATABASE_URL", postgres.url("postgres"))
        .env("ORGTRAIL_BIN_DIR", &bin_dir)
        .env("ORGTRAIL_TEST_MOTO_SERVER", &moto_server)
        .env("ORGTRAIL_TEST_PYTHON", &readers_python)
        .env("ORGTRAIL_TEST_AWS_PYTHON", &aws_clients_python)
        .env("ORGTRAIL_TEST_GEOIP_FILE", &geoip_database)
        .env("ORGTRAIL_TEST_PKI", &pki.dir)
        .status()
        .context("cannot run cargo test")?;
    drop(postgres);
    if interrupted.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    match (status.success(), deploy_checks) {
        (true, result) => result,
        (false, Ok(())) => bail!("tests failed"),
        (false, Err(error)) => bail!("tests failed, and {error:#}"),
    }
}

/// Ctrl-C and SIGTERM reach the children (tests, servers) directly; xtask itself keeps
/// running so that it can tear the environment down.
fn keep_running_on_interrupt() -> anyhow::Result<Arc<AtomicBool>> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot install the signal handler")?;
    Ok(interrupted)
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

pub fn unique_suffix() -> String {
    format!("{:08x}", RandomState::new().build_hasher().finish() as u32)
}

/// A port free on loopback now (the OS picks it).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}
