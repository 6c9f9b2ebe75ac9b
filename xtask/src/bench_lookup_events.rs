//! `cargo xtask bench lookup-events`: the CloudTrail-compatible endpoint under load. The bench
//! set of `bench ingest` (1 M generated events over 30 days, 4 regions, many accounts) is
//! stored through gRPC in a secure aggregator (TLS, sealed records, every detection on); then
//! `orgtrail-bench-lookup-events` — the AWS SDK for Rust's CloudTrail client, SigV4 over TLS —
//! asks each lookup with 16 callers at once on one key for a fixed time, every page of 50 a
//! timed request, and the requests per second and p50/p99/max latency of each are printed
//! against the target (p99 under 50 ms per page; CloudTrail itself allows 2 requests per second).

use std::process::Command;
use std::sync::atomic::AtomicBool;

use crate::check_interrupted;
use anyhow::{bail, Context};

use crate::bench::{count, time_grpc_ingest, IngestBenchOptions};
use crate::bench_data::{event_id, generate_bench_data, REGIONS};
use crate::demo_cloudtrail_api::aws_credentials;
use crate::postgres::ThrowawayPostgres;
use crate::processes::{
    build_binaries, start_aggregator, waited_children_cpu_seconds, Profile, Security,
};
use crate::workspace_root;

/// The target of the issue: p99 of one page under this many milliseconds.
const P99_TARGET_MILLISECONDS: f64 = 50.0;

struct Options {
    events: usize,
    callers: usize,
    seconds: u64,
}

pub fn bench_lookup_events(arguments: &[String], interrupted: &AtomicBool) -> anyhow::Result<()> {
    let options = parse_options(arguments)?;
    let bin_dir = build_binaries(Profile::Release)?;
    let records_per_file = 100;
    let data = generate_bench_data(options.events, records_per_file, 0)?;
    check_interrupted(interrupted)?;

    let postgres = ThrowawayPostgres::start()?;
    let pki = crate::pki::ensure_pki(&crate::pki_dir())?;
    let security = Security::Tls(&pki);
    let work = workspace_root().join("target/bench/lookup-events");
    std::fs::create_dir_all(&work)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("cannot find a free port")?
        .port();
    let listen = format!("127.0.0.1:{port}");
    // One key for all callers, as one tool would use: its limits out of the way, since what
    // is measured is the endpoint, not the limiter.
    let (mut aggregator, address) = start_aggregator(
        &bin_dir,
        &postgres.url("postgres"),
        &work.join("aggregator.log"),
        &[
            ("ORGTRAIL_CLOUDTRAIL_API__LISTEN", listen.as_str()),
            ("ORGTRAIL_SERVER__PER_CALLER_REQUESTS_PER_SECOND", "1000000"),
            ("ORGTRAIL_SERVER__PER_CALLER_BURST", "1000000"),
            ("ORGTRAIL_SERVER__PER_CALLER_CONCURRENCY", "256"),
            ("ORGTRAIL_INSIGHTS__ENABLED", "false"),
        ],
        security,
    )?;
    let endpoint = security.endpoint(address);
    let ingest = IngestBenchOptions {
        events: options.events,
        streams: 4,
        records_per_file,
    };
    time_grpc_ingest(&bin_dir, &endpoint, security, &data, &ingest)?;
    let stored = count(&postgres, "postgres", "SELECT count(*) FROM events")?;
    if stored != options.events as u64 {
        bail!("{stored} events stored, {} expected", options.events);
    }
    // Statistics as autovacuum keeps them on a live system (a bulk load outruns it).
    postgres.psql("postgres", "ANALYZE")?;
    check_interrupted(interrupted)?;

    let key = security
        .orgtrail(&bin_dir, &endpoint)
        .args(["tokens", "create", "--name", "bench", "--role", "reader"])
        .arg("--aws-credentials")
        .output()
        .context("cannot run orgtrail tokens create")?;
    if !key.status.success() {
        bail!(
            "orgtrail tokens create failed: {}",
            String::from_utf8_lossy(&key.stderr)
        );
    }
    let (access_key_id, secret_access_key) =
        aws_credentials(&String::from_utf8_lossy(&key.stdout))?;

    let account = format!("{:012}", 100_000_000_000u64 + 7 * 7_919);
    let queries: Vec<(&str, String, usize)> = vec![
        ("newest page, no filter", "-".into(), 1),
        ("EventId", format!("EventId={}", event_id(123_457)), 1),
        (
            "EventName=DescribeInstances (common)",
            "EventName=DescribeInstances".into(),
            1,
        ),
        (
            "EventName=ConsoleLogin (rare)",
            "EventName=ConsoleLogin".into(),
            1,
        ),
        ("Username=root (rare)", "Username=root".into(), 1),
        (
            "ResourceType=AWS::S3::Bucket",
            "ResourceType=AWS::S3::Bucket".into(),
            1,
        ),
        ("AccessKeyId", "AccessKeyId=ASIATFQR7NSCTM3XVF6B".into(), 1),
        (
            "ReadOnly=false + EventSource=ec2 (2 attributes)",
            "ReadOnly=false,EventSource=ec2.amazonaws.com".into(),
            1,
        ),
        (
            "AccountId + AwsRegion + ReadOnly + EventSource",
            format!(
                "AccountId={account},AwsRegion={},ReadOnly=false,EventSource=ec2.amazonaws.com",
                REGIONS[0]
            ),
            1,
        ),
        (
            "EventName=DescribeInstances, 20 pages deep",
            "EventName=DescribeInstances".into(),
            20,
        ),
    ];
    let mut command = Command::new(bin_dir.join("orgtrail-bench-lookup-events"));
    command
        .args(["--endpoint", &format!("https://{listen}")])
        .arg("--ca")
        .arg(pki.ca())
        .args(["--access-key-id", &access_key_id])
        .args(["--secret-access-key", &secret_access_key])
        .args(["--callers", &options.callers.to_string()])
        .args(["--seconds", &options.seconds.to_string()]);
    for (label, attributes, pages) in &queries {
        command
            .arg("--query")
            .arg(label)
            .arg(attributes)
            .arg(pages.to_string());
    }
    eprintln!(
        "bench: {} callers on the CloudTrail-compatible endpoint, {} s per lookup",
        options.callers, options.seconds
    );
    let cpu_before = (
        aggregator.cpu_seconds()?,
        postgres.cpu_seconds()?,
        waited_children_cpu_seconds()?,
    );
    let output = command
        .output()
        .context("cannot run orgtrail-bench-lookup-events")?;
    let cpu = (
        aggregator.cpu_seconds()? - cpu_before.0,
        postgres.cpu_seconds()? - cpu_before.1,
        waited_children_cpu_seconds()? - cpu_before.2,
    );
    aggregator.stop();
    if !output.status.success() {
        bail!(
            "orgtrail-bench-lookup-events failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    println!(
        "lookup-events benchmark: {} events stored, {} callers on one key, {} s per lookup, pages of 50 through the AWS SDK for Rust (SigV4, TLS)",
        options.events, options.callers, options.seconds
    );
    println!(
        "  {:<50} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "lookup", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "errors"
    );
    let mut over_target = Vec::new();
    let mut errors_seen = Vec::new();
    let mut requests_total = 0u64;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [label, requests, rate, p50, p99, max, errors, first_error] = fields[..] else {
            bail!("orgtrail-bench-lookup-events printed {line:?}");
        };
        println!("  {label:<50} {requests:>9} {rate:>9} {p50:>9} {p99:>9} {max:>9} {errors:>7}");
        if p99
            .parse::<f64>()
            .map_or(true, |p99| p99 >= P99_TARGET_MILLISECONDS)
        {
            over_target.push(label.to_string());
        }
        requests_total += requests.parse::<u64>().unwrap_or(0);
        if errors != "0" {
            errors_seen.push(format!("{label}: {errors} errors, first: {first_error}"));
        }
    }
    if over_target.is_empty() {
        println!("  target p99 < {P99_TARGET_MILLISECONDS} ms per page: met by every lookup");
    } else {
        println!(
            "  target p99 < {P99_TARGET_MILLISECONDS} ms per page: missed by {}",
            over_target.join("; ")
        );
    }
    let per_request = |seconds: f64| seconds * 1000.0 / requests_total.max(1) as f64;
    println!(
        "  CPU per request (all lookups): aggregator {:.2} ms, PostgreSQL {:.2} ms, the SDK's callers {:.2} ms — on 2 cores shared by all three",
        per_request(cpu.0),
        per_request(cpu.1),
        per_request(cpu.2)
    );
    if !errors_seen.is_empty() {
        bail!("lookups failed:\n{}", errors_seen.join("\n"));
    }
    Ok(())
}

fn parse_options(arguments: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        events: 1_000_000,
        callers: 16,
        seconds: 15,
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
            "--callers" => options.callers = value,
            "--seconds" => options.seconds = value as u64,
            _ => bail!("unknown option {flag}: use --events N, --callers C, --seconds S"),
        }
    }
    if options.events == 0 || options.callers == 0 || options.seconds == 0 {
        bail!("--events, --callers and --seconds must be positive");
    }
    Ok(options)
}
