//! Benchmarks.
//!
//! `cargo xtask bench ingest [--events N] [--streams S] [--records-per-file R]`: ingest
//! throughput through gRPC into PostgreSQL, beside the ceiling of this machine — a plain COPY
//! of the very same rows into the same table — in one run; then lookup latencies.
//!
//! `cargo xtask bench collect [--accounts A] [--regions R] [--files-per-region F]
//! [--records-per-file N] [--large-file-records L]`: one collector pass over a generated
//! organization in moto: files/s, events/s and the collector's peak memory.
//!
//! The data is generated from the shapes of the real samples: each record is a real sample
//! record with a fresh eventID, an eventTime spread over 30 days, and one of 100 accounts and
//! 4 regions; files hold R records (CloudTrail's own hold tens to hundreds), in CloudTrail's
//! key layout. Generation is deterministic and cached under target/bench.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::Value;

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

    let postgres = ThrowawayPostgres::start()?;
    let pki = crate::pki::ensure_pki(&crate::pki_dir())?;
    let work = data.parent().unwrap_or(&data).to_path_buf();

    // In the clear first (plaintext gRPC, unencrypted records), into a database of its own…
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
    let security = Security::Tls(&pki);
    let (mut aggregator, address) = start_aggregator(
        &bin_dir,
        &postgres.url("postgres"),
        &work.join("aggregator.log"),
        &[],
        security,
    )?;
    let endpoint = security.endpoint(address);
    let grpc_seconds = time_grpc_ingest(&bin_dir, &endpoint, security, &data, &options)?;
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
    let copied: usize = postgres
        .psql("postgres", "SELECT count(*) FROM events")?
        .trim()
        .parse()?;
    let _ = std::fs::remove_file(&rows);
    if copied != options.events {
        bail!("COPY stored {copied} rows, {} expected", options.events);
    }

    let grpc_rate = options.events as f64 / grpc_seconds;
    let plaintext_rate = options.events as f64 / plaintext_seconds;
    let copy_rate = options.events as f64 / copy_seconds;
    let files = options.events.div_ceil(options.records_per_file);
    println!(
        "ingest benchmark: {} events in {files} files ({} records per file), {} streams",
        options.events, options.records_per_file, options.streams
    );
    println!(
        "  gRPC → aggregator → PostgreSQL, in the clear (plaintext gRPC, unencrypted records):"
    );
    println!("                                  {plaintext_seconds:8.1} s  {plaintext_rate:10.0} events/s");
    println!(
        "  gRPC → aggregator → PostgreSQL, secure (TLS, client certificate, AES-256-GCM records):"
    );
    println!("                                  {grpc_seconds:8.1} s  {grpc_rate:10.0} events/s ({:+.1}% against the clear)", (grpc_rate / plaintext_rate - 1.0) * 100.0);
    println!("  COPY of the same rows:          {copy_seconds:8.1} s  {copy_rate:10.0} events/s (the ceiling)");
    println!(
        "  ratio secure / COPY:            {:8.2}",
        grpc_rate / copy_rate
    );
    println!("  (PostgreSQL 15 on loopback with fsync off, client, aggregator and server sharing this machine's cores)");
    println!("lookups over the {} stored events (first page of 50, median of {LOOKUP_RUNS} runs of `orgtrail events lookup`, process start included):", options.events);
    for (label, milliseconds, printed) in lookups {
        println!("  {label:<58} {milliseconds:7.1} ms  ({printed} events)");
    }
    Ok(())
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

const ACCOUNTS: usize = 100;
const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"];
const DAYS: u64 = 30;
/// 2026-10-01T00:00:00Z.
const FIRST_DAY_UNIX: u64 = 1_790_812_800;

/// Generates (once) `events` records in files of `records_per_file`; returns the directory.
/// Data sets of different `seed`s share no eventID.
pub fn generate_bench_data(
    events: usize,
    records_per_file: usize,
    seed: u64,
) -> anyhow::Result<PathBuf> {
    let root = workspace_root().join(if seed == 0 {
        format!("target/bench/ingest-{events}-{records_per_file}")
    } else {
        format!("target/bench/ingest-{events}-{records_per_file}-seed{seed}")
    });
    let data = root.join("AWSLogs");
    let complete = root.join("complete");
    if complete.exists() {
        eprintln!(
            "bench: using the data generated before in {}",
            root.display()
        );
        return Ok(data);
    }
    let _ = std::fs::remove_dir_all(&root);
    let samples = sample_records()?;
    eprintln!(
        "bench: generating {events} events from {} sample records into {}",
        samples.len(),
        root.display()
    );
    let files = events.div_ceil(records_per_file);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers = 2;
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let samples = &samples;
                let data = &data;
                scope.spawn(move || -> anyhow::Result<()> {
                    for file in (worker..files).step_by(workers) {
                        let first = file * records_per_file;
                        let last = (first + records_per_file).min(events);
                        write_bench_file(data, samples, file, first..last, seed)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("a generator thread panicked"))??;
        }
        Ok(())
    })?;
    std::fs::write(&complete, b"")?;
    Ok(data)
}

fn write_bench_file(
    data: &Path,
    samples: &[Value],
    file: usize,
    records: std::ops::Range<usize>,
    seed: u64,
) -> anyhow::Result<()> {
    let account = format!("{:012}", 100_000_000_000 + (file % ACCOUNTS) as u64 * 7_919);
    let region = REGIONS[(file / ACCOUNTS) % REGIONS.len()];
    let mut generated = Vec::with_capacity(records.len());
    let mut newest = 0;
    for number in records {
        let mut record = samples[number % samples.len()].clone();
        let mixed = mix(number as u64);
        let time = FIRST_DAY_UNIX + mixed % (DAYS * 86_400);
        newest = newest.max(time);
        let object = record
            .as_object_mut()
            .context("a sample record is not an object")?;
        object.insert(
            "eventID".into(),
            Value::from(event_id(number as u64 + (seed << 40))),
        );
        object.insert("eventTime".into(), Value::from(format_time(time)));
        object.insert("recipientAccountId".into(), Value::from(account.clone()));
        object.insert("awsRegion".into(), Value::from(region));
        generated.push(serde_json::to_string(&record)?);
    }
    let day = format_time(newest);
    let (date, _) = day.split_once('T').unwrap_or((&day, ""));
    let folder = data.join(format!(
        "{account}/CloudTrail/{region}/{}",
        date.replace('-', "/")
    ));
    std::fs::create_dir_all(&folder)?;
    let stamp = day.replace(['-', ':'], "");
    let name = format!(
        "{account}_CloudTrail_{region}_{}Z_{file:016}.json.gz",
        &stamp[..13]
    );
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(folder.join(name))?,
        flate2::Compression::fast(),
    );
    write!(encoder, "{{\"Records\":[{}]}}", generated.join(","))?;
    encoder.finish()?;
    Ok(())
}

/// Every record of the sample data that has an eventID and an eventTime.
fn sample_records() -> anyhow::Result<Vec<Value>> {
    let mut paths = Vec::new();
    collect_gz(&workspace_root().join("data/cloudtrail"), &mut paths)?;
    paths.sort();
    let mut records = Vec::new();
    for path in paths {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&path)?).read_to_string(&mut text)?;
        let file: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        for record in file["Records"].as_array().cloned().unwrap_or_default() {
            if record.get("eventID").is_some() && record.get("eventTime").is_some() {
                records.push(record);
            }
        }
    }
    if records.is_empty() {
        bail!("no sample records under data/cloudtrail");
    }
    Ok(records)
}

fn collect_gz(directory: &Path, paths: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(directory)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_gz(&path, paths)?;
        } else if path.to_string_lossy().ends_with(".json.gz") {
            paths.push(path);
        }
    }
    Ok(())
}

/// SplitMix64: a fixed, well-spread sequence, so every run generates the same data.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A version-4-shaped GUID derived from `number`.
fn event_id(number: u64) -> String {
    let high = mix(number ^ 0x5555_5555);
    let low = mix(number);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0x0fff,
        0x8000 | (low >> 48) & 0x3fff,
        low & 0xffff_ffff_ffff
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (civil-from-days, proleptic Gregorian).
fn format_time(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let seconds = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_times_and_ids_are_well_formed() {
        assert_eq!(format_time(FIRST_DAY_UNIX), "2026-10-01T00:00:00Z");
        assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(1_411_800_311), "2014-09-27T06:45:11Z");
        let id = event_id(7);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(event_id(7), event_id(8));
    }
}
