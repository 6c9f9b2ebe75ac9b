//! Benchmarks.
//!
//! `cargo xtask bench ingest [--events N] [--streams S] [--records-per-file R]`: ingest
//! throughput through gRPC into PostgreSQL — in the clear, then secure with the 15 CIS alarms
//! off and on, each into a fresh database — beside the ceiling of this machine, a plain COPY of
//! the very same rows into the same table, in one run; the CIS filters' cost on their own
//! (`bench_filters`) over the same events; then lookup latencies.
//!
//! `cargo xtask bench collect [--accounts A] [--regions R] [--files-per-region F]
//! [--records-per-file N] [--large-file-records L]`: one collector pass over a generated
//! organization in moto: files/s, events/s and the collector's peak memory.
//!
//! The ingest benchmark's events are generated from the shapes of the real samples
//! (`bench_data`).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};

use crate::bench_data::{event_id, generate_bench_data, REGIONS};
use crate::bench_filters::measure_detections_in_release;
use crate::postgres::ThrowawayPostgres;
use crate::processes::{
    build_binaries, create_admin_token, start_aggregator, ChildProcess, Profile, Security,
};
use crate::workspace_root;

pub fn bench_collect(arguments: &[String], interrupted: &AtomicBool) -> anyhow::Result<()> {
    let mut options = [
        ("--accounts", 100usize),
        ("--regions", 4),
        ("--files-per-region", 5),
        ("--records-per-file", 100),
        ("--large-file-records", 620_000),
    ];
    let mut arguments = arguments.iter();
    while let Some(flag) = arguments.next() {
        let value: usize = arguments
            .next()
            .with_context(|| format!("{flag} needs a value"))?
            .parse()
            .with_context(|| format!("{flag} needs a number"))?;
        let option = options
            .iter_mut()
            .find(|(name, _)| name == flag)
            .with_context(|| format!("unknown option {flag}: use --accounts, --regions, --files-per-region, --records-per-file, --large-file-records"))?;
        option.1 = value;
    }
    let [accounts, regions, files_per_region, records_per_file, large_file_records] =
        options.map(|(_, value)| value.to_string());

    let bin_dir = build_binaries(Profile::Release)?;
    let moto_server = crate::moto::ensure_moto_server()?;
    let work = workspace_root().join("target/bench/collect");
    std::fs::create_dir_all(&work)?;
    let postgres = ThrowawayPostgres::start()?;
    let (_moto, moto_endpoint) =
        crate::processes::start_moto(&moto_server, &work.join("moto.log"))?;
    let pki = crate::pki::ensure_pki(&crate::pki_dir())?;
    let security = Security::Tls(&pki);
    let (mut aggregator, address) = start_aggregator(
        &bin_dir,
        &postgres.url("postgres"),
        &work.join("aggregator.log"),
        &[(
            "ORGTRAIL_LOG__LEVEL",
            "warn,orgtrail_aggregator::server=info",
        )],
        security,
    )?;
    let endpoint = security.endpoint(address);
    let config = work.join("collector.toml");
    eprintln!("bench: putting the generated organization into moto");
    let seeded = Command::new(bin_dir.join("orgtrail-sample-organization"))
        .args([
            "--moto",
            &moto_endpoint,
            "--aggregator",
            &endpoint,
            "--config-out",
        ])
        .arg(&config)
        .args([
            "--generated",
            &accounts,
            &regions,
            &files_per_region,
            &records_per_file,
            &large_file_records,
        ])
        .env("ORGTRAIL_TEST_PKI", &pki.dir)
        .output()
        .context("cannot run orgtrail-sample-organization")?;
    if !seeded.status.success() {
        bail!(
            "seeding failed: {}",
            String::from_utf8_lossy(&seeded.stderr)
        );
    }
    let organization = String::from_utf8_lossy(&seeded.stdout).trim().to_string();
    check_interrupted(interrupted)?;

    eprintln!("bench: one collector pass");
    let started = Instant::now();
    let output = Command::new(bin_dir.join("orgtrail-collector"))
        .arg("--config")
        .arg(&config)
        .arg("--once")
        .envs(crate::processes::COLLECTOR_ENVIRONMENT)
        .env("ORGTRAIL_LOG__LEVEL", "warn")
        .output()
        .context("cannot run orgtrail-collector")?;
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        bail!("the collector's pass failed:\n{stdout}{stderr}");
    }
    aggregator.stop();
    let column = |name: &str| -> u64 {
        let mut lines = stdout.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let position = header
            .iter()
            .position(|title| *title == name)
            .unwrap_or(usize::MAX);
        lines
            .filter_map(|line| line.split_whitespace().nth(position)?.parse::<u64>().ok())
            .sum()
    };
    let files = column("COMMITTED");
    let events = column("EVENTS");
    let peak = stderr
        .lines()
        .find_map(|line| {
            line.strip_prefix("peak memory: ")?
                .strip_suffix(" KiB")?
                .parse::<u64>()
                .ok()
        })
        .context("the collector did not report its peak memory")?;
    println!("collect benchmark: {organization}");
    println!("  one pass, {accounts} sources (one per account), {regions} regions each:");
    println!("  {files} files, {events} events in {seconds:.1} s");
    println!("  {:10.1} files/s", files as f64 / seconds);
    println!("  {:10.0} events/s", events as f64 / seconds);
    println!("  collector peak RSS: {:.1} MiB", peak as f64 / 1024.0);
    println!("  (moto's S3/STS server, the aggregator, PostgreSQL and the collector sharing this machine's cores)");
    Ok(())
}

struct IngestBenchOptions {
    events: usize,
    streams: usize,
    records_per_file: usize,
}

pub fn bench_ingest(arguments: &[String], interrupted: &AtomicBool) -> anyhow::Result<()> {
    let options = parse_options(arguments)?;
    let bin_dir = build_binaries(Profile::Release)?;
    let data = generate_bench_data(options.events, options.records_per_file, 0)?;
    check_interrupted(interrupted)?;

    // The filters on their own first, before any server runs (the release xtask was built with
    // the binaries).
    let filters = measure_detections_in_release(&bin_dir, &data)?;
    check_interrupted(interrupted)?;

    let postgres = ThrowawayPostgres::start()?;
    let pki = crate::pki::ensure_pki(&crate::pki_dir())?;
    let work = data.parent().unwrap_or(&data).to_path_buf();

    // In the clear first (plaintext gRPC, unencrypted records), into a database of its own;
    // the CIS alarms on, as by default, so that it differs from the secure run below in
    // security only…
    postgres.psql("postgres", "CREATE DATABASE bench_plaintext")?;
    let token = create_admin_token(&bin_dir, &postgres.url("bench_plaintext"))?;
    let plaintext = Security::Insecure(&token);
    let (mut aggregator, address) = start_aggregator(
        &bin_dir,
        &postgres.url("bench_plaintext"),
        &work.join("aggregator-plaintext.log"),
        &[],
        plaintext,
    )?;
    let plaintext_seconds = time_grpc_ingest(
        &bin_dir,
        &plaintext.endpoint(address),
        plaintext,
        &data,
        &options,
    )?;
    aggregator.stop();
    postgres.psql("postgres", "DROP DATABASE bench_plaintext")?;
    check_interrupted(interrupted)?;

    // …then secure, as orgtrail runs by default: TLS with client certificates, records sealed.
    // Twice, each into a fresh database: with the CIS alarms off (none made, so no filter
    // runs), then on (the 15 made at start, the default). The first database is dropped before
    // the second run, so neither runs beside the other's autovacuum.
    let security = Security::Tls(&pki);
    postgres.psql("postgres", "CREATE DATABASE bench_cis_off")?;
    let (mut aggregator, address) = start_aggregator(
        &bin_dir,
        &postgres.url("bench_cis_off"),
        &work.join("aggregator-cis-off.log"),
        &[("ORGTRAIL_ALARMS__CIS_BUILTIN", "false")],
        security,
    )?;
    let cis_off_cpu = CpuUse::start(&aggregator, &postgres)?;
    let cis_off_seconds = time_grpc_ingest(
        &bin_dir,
        &security.endpoint(address),
        security,
        &data,
        &options,
    )?;
    let cis_off_cpu = cis_off_cpu.end(&aggregator, &postgres, options.events)?;
    aggregator.stop();
    let alarms_off = count(&postgres, "bench_cis_off", "SELECT count(*) FROM alarms")?;
    if alarms_off != 0 {
        bail!("{alarms_off} alarms exist with ORGTRAIL_ALARMS__CIS_BUILTIN=false");
    }
    postgres.psql("postgres", "DROP DATABASE bench_cis_off")?;
    check_interrupted(interrupted)?;

    let (mut aggregator, address) = start_aggregator(
        &bin_dir,
        &postgres.url("postgres"),
        &work.join("aggregator.log"),
        &[],
        security,
    )?;
    let endpoint = security.endpoint(address);
    let cis_alarms = count(
        &postgres,
        "postgres",
        "SELECT count(*) FROM alarms WHERE cis_id IS NOT NULL AND deleted_at IS NULL",
    )?;
    let cis_set = orgtrail_detection::cis_metric_filters().len() as u64;
    if cis_alarms != cis_set {
        bail!("{cis_alarms} CIS alarms made at start, {cis_set} expected");
    }
    let cis_on_cpu = CpuUse::start(&aggregator, &postgres)?;
    let grpc_seconds = time_grpc_ingest(&bin_dir, &endpoint, security, &data, &options)?;
    let cis_on_cpu = cis_on_cpu.end(&aggregator, &postgres, options.events)?;
    // What the alarms matched, every file's rows written in the transaction of its events.
    let alarm_matches = count(
        &postgres,
        "postgres",
        "SELECT coalesce(sum(matches), 0) FROM alarm_matches",
    )?;
    let transitions = count(
        &postgres,
        "postgres",
        "SELECT count(*) FROM alarm_transitions",
    )?;
    // Statistics as autovacuum keeps them on a live system (a bulk load outruns it).
    postgres.psql("postgres", "ANALYZE events")?;
    let lookups = time_lookups(&bin_dir, &endpoint, security)?;
    aggregator.stop();
    check_interrupted(interrupted)?;

    // The ceiling: the same rows, already extracted, copied straight into the same table.
    let rows = data.parent().unwrap_or(&data).join("events.copy");
    let rows_path = rows.to_string_lossy();
    postgres.psql(
        "postgres",
        &format!("\\copy (SELECT * FROM events) TO '{rows_path}'"),
    )?;
    postgres.psql("postgres", "TRUNCATE events")?;
    let started = Instant::now();
    postgres.psql("postgres", &format!("\\copy events FROM '{rows_path}'"))?;
    let copy_seconds = started.elapsed().as_secs_f64();
    let copied = count(&postgres, "postgres", "SELECT count(*) FROM events")?;
    let _ = std::fs::remove_file(&rows);
    if copied != options.events as u64 {
        bail!("COPY stored {copied} rows, {} expected", options.events);
    }

    let grpc_rate = options.events as f64 / grpc_seconds;
    let cis_off_rate = options.events as f64 / cis_off_seconds;
    let plaintext_rate = options.events as f64 / plaintext_seconds;
    let copy_rate = options.events as f64 / copy_seconds;
    let files = options.events.div_ceil(options.records_per_file);
    println!(
        "ingest benchmark: {} events in {files} files ({} records per file), {} streams",
        options.events, options.records_per_file, options.streams
    );
    println!(
        "  gRPC → aggregator → PostgreSQL, in the clear (plaintext gRPC, unencrypted records), CIS set on:"
    );
    println!("                                  {plaintext_seconds:8.1} s  {plaintext_rate:10.0} events/s");
    println!(
        "  gRPC → aggregator → PostgreSQL, secure (TLS, client certificate, AES-256-GCM records):"
    );
    println!(
        "    CIS set off (no alarm):       {cis_off_seconds:8.1} s  {cis_off_rate:10.0} events/s"
    );
    println!("    CIS set on (15, the default): {grpc_seconds:8.1} s  {grpc_rate:10.0} events/s ({:+.1}% against the clear)", (grpc_rate / plaintext_rate - 1.0) * 100.0);
    println!(
        "  CIS set on: {grpc_rate:.0} events/s, off: {cis_off_rate:.0} events/s, {}",
        signed_percent(grpc_rate / cis_off_rate - 1.0)
    );
    println!(
        "  CPU per event, CIS set off → on: aggregator {:.1} → {:.1} µs ({}), PostgreSQL {:.1} → {:.1} µs ({})",
        cis_off_cpu.aggregator_microseconds,
        cis_on_cpu.aggregator_microseconds,
        signed_percent(cis_on_cpu.aggregator_microseconds / cis_off_cpu.aggregator_microseconds - 1.0),
        cis_off_cpu.postgres_microseconds,
        cis_on_cpu.postgres_microseconds,
        signed_percent(cis_on_cpu.postgres_microseconds / cis_off_cpu.postgres_microseconds - 1.0),
    );
    let off_total = cis_off_cpu.aggregator_microseconds + cis_off_cpu.postgres_microseconds;
    let on_total = cis_on_cpu.aggregator_microseconds + cis_on_cpu.postgres_microseconds;
    println!(
        "    both: {off_total:.1} → {on_total:.1} µs ({}; CPU time, user and system, from /proc: what the runs cost, whatever else shared the cores)",
        signed_percent(on_total / off_total - 1.0)
    );
    println!(
        "  the 15 alarms counted {alarm_matches} matches (sum of alarm_matches.matches; the same filters in-process: {}); {transitions} alarm transitions recorded meanwhile",
        filters.cis_matches
    );
    println!("  COPY of the same rows:          {copy_seconds:8.1} s  {copy_rate:10.0} events/s (the ceiling)");
    println!(
        "  ratio secure (CIS on) / COPY:   {:8.2}",
        grpc_rate / copy_rate
    );
    println!("  (PostgreSQL 15 on loopback with fsync off, client, aggregator and server sharing this machine's cores)");
    print!("{}", filters.tables);
    println!("lookups over the {} stored events (first page of 50, median of {LOOKUP_RUNS} runs of `orgtrail events lookup`, process start included):", options.events);
    for (label, milliseconds, printed) in lookups {
        println!("  {label:<58} {milliseconds:7.1} ms  ({printed} events)");
    }
    if alarm_matches != filters.cis_matches {
        bail!(
            "the aggregator counted {alarm_matches} matches of the 15 CIS alarms, the same filters in-process {}",
            filters.cis_matches
        );
    }
    Ok(())
}

/// The CPU the aggregator and PostgreSQL used during a run, per event.
struct CpuPerEvent {
    aggregator_microseconds: f64,
    postgres_microseconds: f64,
}

/// CPU seconds at the start of a run.
struct CpuUse {
    aggregator: f64,
    postgres: f64,
}

impl CpuUse {
    fn start(aggregator: &ChildProcess, postgres: &ThrowawayPostgres) -> anyhow::Result<CpuUse> {
        Ok(CpuUse {
            aggregator: aggregator.cpu_seconds()?,
            postgres: postgres.cpu_seconds()?,
        })
    }

    fn end(
        self,
        aggregator: &ChildProcess,
        postgres: &ThrowawayPostgres,
        events: usize,
    ) -> anyhow::Result<CpuPerEvent> {
        let per_event = |seconds: f64| seconds * 1e6 / events as f64;
        Ok(CpuPerEvent {
            aggregator_microseconds: per_event(aggregator.cpu_seconds()? - self.aggregator),
            postgres_microseconds: per_event(postgres.cpu_seconds()? - self.postgres),
        })
    }
}

/// A one-number query's answer.
fn count(postgres: &ThrowawayPostgres, database: &str, sql: &str) -> anyhow::Result<u64> {
    let answer = postgres.psql(database, sql)?;
    answer
        .trim()
        .parse()
        .with_context(|| format!("{sql} answered {answer:?}"))
}

/// `+1.2 %` or `−3.4 %` (a true minus sign) of a ratio less one.
fn signed_percent(change: f64) -> String {
    let sign = if change < 0.0 { '−' } else { '+' };
    format!("{sign}{:.1} %", change.abs() * 100.0)
}

/// Sends the data through `orgtrail ingest` and checks every event was stored; returns the
/// seconds it took.
fn time_grpc_ingest(
    bin_dir: &Path,
    endpoint: &str,
    security: Security<'_>,
    data: &Path,
    options: &IngestBenchOptions,
) -> anyhow::Result<f64> {
    eprintln!(
        "bench: ingesting {} events through gRPC ({} streams) at {endpoint}",
        options.events, options.streams
    );
    let started = Instant::now();
    let output = security
        .orgtrail(bin_dir, endpoint)
        .args(["ingest", "--streams", &options.streams.to_string()])
        .arg(data)
        .output()
        .context("cannot run orgtrail ingest")?;
    let seconds = started.elapsed().as_secs_f64();
    let summary = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "orgtrail ingest failed: {summary}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stored = stored_count(&summary).context("no event count in the ingest summary")?;
    if stored != options.events {
        bail!(
            "{stored} events stored, {} expected:\n{summary}",
            options.events
        );
    }
    Ok(seconds)
}

const LOOKUP_RUNS: usize = 5;

/// Times typical lookups through the CLI: (what, median milliseconds, events printed).
fn time_lookups(
    bin_dir: &Path,
    endpoint: &str,
    security: Security<'_>,
) -> anyhow::Result<Vec<(String, f64, usize)>> {
    let account = format!("{:012}", 100_000_000_000u64 + 7 * 7_919);
    let event = event_id(123_457);
    let lookups: Vec<(&str, Vec<String>)> = vec![
        ("newest events, no filter", vec![]),
        ("EventId", vec!["--attr".into(), format!("EventId={event}")]),
        (
            "EventName=DescribeInstances (common)",
            vec!["--attr".into(), "EventName=DescribeInstances".into()],
        ),
        (
            "EventName=ConsoleLogin (rare)",
            vec!["--attr".into(), "EventName=ConsoleLogin".into()],
        ),
        (
            "Username=root (rare)",
            vec!["--attr".into(), "Username=root".into()],
        ),
        (
            "ResourceType=AWS::S3::Bucket",
            vec!["--attr".into(), "ResourceType=AWS::S3::Bucket".into()],
        ),
        (
            "AccessKeyId",
            vec!["--attr".into(), "AccessKeyId=ASIATFQR7NSCTM3XVF6B".into()],
        ),
        (
            "category Insight (rare)",
            vec!["--category".into(), "Insight".into()],
        ),
        (
            "account + region + ReadOnly=false + EventSource",
            vec![
                "--account".into(),
                account,
                "--region".into(),
                REGIONS[0].into(),
                "--attr".into(),
                "ReadOnly=false".into(),
                "--attr".into(),
                "EventSource=ec2.amazonaws.com".into(),
            ],
        ),
        (
            "one day, EventSource=iam.amazonaws.com",
            vec![
                "--start".into(),
                "2026-10-15".into(),
                "--end".into(),
                "2026-10-15".into(),
                "--attr".into(),
                "EventSource=iam.amazonaws.com".into(),
            ],
        ),
    ];
    let mut timings = Vec::new();
    for (label, arguments) in lookups {
        let mut runs = Vec::with_capacity(LOOKUP_RUNS);
        let mut printed = 0;
        for _ in 0..LOOKUP_RUNS {
            let started = Instant::now();
            let output = security
                .orgtrail(bin_dir, endpoint)
                .args(["events", "lookup", "--max", "50", "--output", "jsonl"])
                .args(&arguments)
                .output()
                .context("cannot run orgtrail events lookup")?;
            runs.push(started.elapsed().as_secs_f64() * 1000.0);
            if !output.status.success() {
                bail!(
                    "lookup {label} failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            printed = output.stdout.iter().filter(|byte| **byte == b'\n').count();
        }
        runs.sort_by(f64::total_cmp);
        timings.push((label.to_string(), runs[runs.len() / 2], printed));
    }
    Ok(timings)
}

fn parse_options(arguments: &[String]) -> anyhow::Result<IngestBenchOptions> {
    let mut options = IngestBenchOptions {
        events: 1_000_000,
        streams: 4,
        records_per_file: 100,
    };
    let mut arguments = arguments.iter();
    while let Some(flag) = arguments.next() {
        let value: usize = arguments
            .next()
            .with_context(|| format!("{flag} needs a value"))?
            .parse()
            .with_context(|| format!("{flag} needs a number"))?;
        match flag.as_str() {
            "--events" => options.events = value,
            "--streams" => options.streams = value,
            "--records-per-file" => options.records_per_file = value,
            _ => bail!("unknown option {flag}: use --events N, --streams S, --records-per-file R"),
        }
    }
    if options.events == 0 || options.streams == 0 || options.records_per_file == 0 {
        bail!("--events, --streams and --records-per-file must be positive");
    }
    Ok(options)
}

fn stored_count(summary: &str) -> Option<usize> {
    let line = summary.lines().find(|line| line.starts_with("events: "))?;
    line.trim_start_matches("events: ")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn check_interrupted(interrupted: &AtomicBool) -> anyhow::Result<()> {
    if interrupted.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}
