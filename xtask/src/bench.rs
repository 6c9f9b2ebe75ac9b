//! Benchmarks.
//!
//! `cargo xtask bench ingest [--events N] [--streams S] [--records-per-file R]`: ingest
//! throughput through gRPC into PostgreSQL — in the clear, then secure three times, each into a
//! fresh database: every detection off, the 15 CIS alarms alone, the CIS alarms and SigmaHQ's
//! rules (the default), with the CPU per event of each and the slowdown of everything on against
//! the target (`bench_detection_runs`) — beside the ceiling of this machine, a plain COPY of the
//! very same rows into the same table; the detections' cost on their own (`bench_filters`,
//! `bench_rules`) over the same events, and a check that what the aggregator stored (alarm
//! matches, Sigma findings per rule) is what the same detectors match in-process; then lookup
//! latencies.
//!
//! `cargo xtask bench collect [--accounts A] [--regions R] [--files-per-region F]
//! [--records-per-file N] [--large-file-records L]`: one collector pass over a generated
//! organization in moto: files/s, events/s and the collector's peak memory.
//!
//! The ingest benchmark's events are generated from the shapes of the real samples
//! (`bench_data`).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::check_interrupted;
use anyhow::{bail, Context};

use crate::bench_data::{event_id, generate_bench_data, REGIONS};
use crate::bench_detection_runs::{compare_runs, Detections, IngestRuns, SLOWDOWN_TARGET};
use crate::bench_filters::measure_detections_in_release;
use crate::postgres::ThrowawayPostgres;
use crate::processes::{build_binaries, create_admin_token, start_aggregator, Profile, Security};
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

pub struct IngestBenchOptions {
    pub events: usize,
    pub streams: usize,
    pub records_per_file: usize,
}

pub fn bench_ingest(arguments: &[String], interrupted: &AtomicBool) -> anyhow::Result<()> {
    let options = parse_options(arguments)?;
    let bin_dir = build_binaries(Profile::Release)?;
    let data = generate_bench_data(options.events, options.records_per_file, 0)?;
    check_interrupted(interrupted)?;

    // The detections on their own first, before any server runs (the release xtask was built
    // with the binaries); what they match is what the aggregator must store below.
    let in_process = measure_detections_in_release(&bin_dir, &data)?;
    check_interrupted(interrupted)?;

    let postgres = ThrowawayPostgres::start()?;
    let pki = crate::pki::ensure_pki(&crate::pki_dir())?;
    let work = data.parent().unwrap_or(&data).to_path_buf();
    let runs = IngestRuns {
        bin_dir: &bin_dir,
        postgres: &postgres,
        work: &work,
        data: &data,
        options: &options,
        expected: &in_process,
    };

    // In the clear first (plaintext gRPC, unencrypted records), into a database of its own;
    // every detection on, as by default, so that it differs from the last secure run below in
    // security only…
    postgres.psql("postgres", "CREATE DATABASE bench_plaintext")?;
    let token = create_admin_token(&bin_dir, &postgres.url("bench_plaintext"))?;
    let plaintext = Security::Insecure(&token);
    let (mut aggregator, address) = start_aggregator(
        &bin_dir,
        &postgres.url("bench_plaintext"),
        &work.join("aggregator-plaintext.log"),
        // As in the secure runs (`bench_detection_runs`).
        &[("ORGTRAIL_INSIGHTS__ENABLED", "false")],
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
    // Three times, each into a fresh database: every detection off (no alarm, no Sigma rule
    // made, so no record is even parsed for them), the CIS alarms alone, then the CIS alarms
    // and SigmaHQ's rules (the default). Each database is dropped before the next run, so no
    // run shares the machine with another's autovacuum.
    let security = Security::Tls(&pki);
    let mut secure_runs = Vec::new();
    for (detections, database) in [
        (Detections::OFF, "bench_detections_off"),
        (Detections::CIS_ONLY, "bench_cis_only"),
    ] {
        postgres.psql("postgres", &format!("CREATE DATABASE {database}"))?;
        let (mut aggregator, _, run) = runs.secure_run(security, detections, database)?;
        aggregator.stop();
        postgres.psql("postgres", &format!("DROP DATABASE {database}"))?;
        secure_runs.push(run);
        check_interrupted(interrupted)?;
    }
    let (mut aggregator, endpoint, everything_on) =
        runs.secure_run(security, Detections::ALL, "postgres")?;
    // Statistics as autovacuum keeps them on a live system (a bulk load outruns it).
    postgres.psql("postgres", "ANALYZE events")?;
    let lookups = time_lookups(&bin_dir, &endpoint, security)?;
    aggregator.stop();
    secure_runs.push(everything_on);
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

    let [off, cis_only, all] = &secure_runs[..] else {
        bail!("{} secure runs, 3 expected", secure_runs.len());
    };
    let events = options.events as f64;
    let plaintext_rate = events / plaintext_seconds;
    let copy_rate = events / copy_seconds;
    let files = options.events.div_ceil(options.records_per_file);
    let cis_alarms = orgtrail_detection::cis_metric_filters().len();
    let sigma_rules = in_process.sigma.rules;
    println!(
        "ingest benchmark: {} events in {files} files ({} records per file), {} streams",
        options.events, options.records_per_file, options.streams
    );
    println!(
        "  gRPC → aggregator → PostgreSQL, in the clear (plaintext gRPC, unencrypted records), CIS set and Sigma rules on:"
    );
    println!(
        "    {:<52} {plaintext_seconds:7.1} s {plaintext_rate:10.0} events/s",
        ""
    );
    println!(
        "  gRPC → aggregator → PostgreSQL, secure (TLS, client certificate, AES-256-GCM records):"
    );
    println!(
        "    {:<52} {:>9} {:>10}           CPU per event: aggregator  PostgreSQL   both",
        "", "time", "rate"
    );
    for run in &secure_runs {
        let label = run.detections.label(cis_alarms, sigma_rules);
        println!(
            "    {label:<52} {:7.1} s {:10.0} events/s {:>24.1} µs {:8.1} µs {:6.1} µs",
            run.seconds,
            run.rate(events),
            run.cpu.aggregator_microseconds,
            run.cpu.postgres_microseconds,
            run.cpu.both_microseconds()
        );
    }
    println!(
        "    (CPU time, user and system, from /proc: what each run cost, whatever else shared the cores; the rates swing with it)"
    );
    println!(
        "  everything on against the clear: {}",
        signed_percent(all.rate(events) / plaintext_rate - 1.0)
    );
    println!("{}", compare_runs("CIS set only", cis_only, off, events));
    println!("{}", compare_runs("everything on", all, off, events));
    let slowdown = 1.0 - all.rate(events) / off.rate(events);
    // Where the cores are the limit, the rate goes as 1 / CPU per event: the slowdown the CPU
    // time predicts, steadier than the rates on a shared machine.
    let cpu_slowdown = 1.0 - off.cpu.both_microseconds() / all.cpu.both_microseconds();
    println!(
        "  target, everything on at most {:.0} % slower than everything off: by the rates {} ({}); by the CPU per event of the aggregator and PostgreSQL, {} ({})",
        SLOWDOWN_TARGET * 100.0,
        slower_or_faster(slowdown),
        if slowdown <= SLOWDOWN_TARGET { "met" } else { "missed" },
        slower_or_faster(cpu_slowdown),
        if cpu_slowdown <= SLOWDOWN_TARGET { "met" } else { "missed" },
    );
    println!(
        "  the {cis_alarms} alarms counted {} matches with the CIS set only, {} with everything on (sum of alarm_matches.matches; the same filters in-process: {}); {} and {} alarm transitions recorded meanwhile",
        cis_only.stored.alarm_matches,
        all.stored.alarm_matches,
        in_process.cis_matches,
        cis_only.stored.transitions,
        all.stored.transitions
    );
    let stored_sigma = &all.stored.sigma;
    let expected_sigma = &in_process.sigma;
    println!(
        "  the {} Sigma rules raised {} findings on {} events ({:.2} % of the events), {} rules matching (findings of kind sigma, events per rule); the same rules in-process: {} on {} events, {} rules, {}",
        stored_sigma.rules,
        stored_sigma.findings(),
        stored_sigma.events_matched,
        stored_sigma.events_matched as f64 * 100.0 / events,
        stored_sigma.events_per_rule.len(),
        expected_sigma.findings(),
        expected_sigma.events_matched,
        expected_sigma.events_per_rule.len(),
        if stored_sigma.events_per_rule == expected_sigma.events_per_rule {
            "equal rule by rule"
        } else {
            "NOT equal rule by rule"
        }
    );
    if expected_sigma.events_matched * 100 < options.events as u64 {
        println!(
            "  (under 1 % of the generated events match a Sigma rule: the rules' cost above is mostly that of finding nothing)"
        );
    }
    println!(
        "    {:<52} {copy_seconds:7.1} s {copy_rate:10.0} events/s (the ceiling)",
        "COPY of the same rows:"
    );
    println!(
        "  ratio secure (everything on) / COPY: {:.2}",
        all.rate(events) / copy_rate
    );
    println!("  (PostgreSQL 15 on loopback with fsync off, client, aggregator and server sharing this machine's cores)");
    print!("{}", in_process.tables);
    println!("lookups over the {} stored events (first page of 50, median of {LOOKUP_RUNS} runs of `orgtrail events lookup`, process start included):", options.events);
    for (label, milliseconds, printed) in lookups {
        println!("  {label:<58} {milliseconds:7.1} ms  ({printed} events)");
    }
    let wrong: Vec<String> = secure_runs
        .iter()
        .flat_map(|run| run.wrong_detections(&in_process))
        .collect();
    if !wrong.is_empty() {
        bail!("{}", wrong.join("; "));
    }
    Ok(())
}

/// A one-number query's answer.
pub fn count(postgres: &ThrowawayPostgres, database: &str, sql: &str) -> anyhow::Result<u64> {
    let answer = postgres.psql(database, sql)?;
    answer
        .trim()
        .parse()
        .with_context(|| format!("{sql} answered {answer:?}"))
}

/// `1.2 % slower` or `3.4 % faster`, of a slowdown (1 less the ratio of the rates).
fn slower_or_faster(slowdown: f64) -> String {
    if slowdown < 0.0 {
        format!("{:.1} % faster", -slowdown * 100.0)
    } else {
        format!("{:.1} % slower", slowdown * 100.0)
    }
}

/// `+1.2 %` or `−3.4 %` (a true minus sign) of a ratio less one.
pub fn signed_percent(change: f64) -> String {
    let sign = if change < 0.0 { '−' } else { '+' };
    format!("{sign}{:.1} %", change.abs() * 100.0)
}

/// Sends the data through `orgtrail ingest` and checks every event was stored; returns the
/// seconds it took.
pub fn time_grpc_ingest(
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
