//! `cargo xtask bench archive [--events N] [--records-per-file R]`: the consolidated archive
//! (issue 15) against moto's S3 on loopback, with a release aggregator and a throwaway
//! PostgreSQL:
//!
//! 1. the archive writer's throughput: every event is ingested first with the archive off (not
//!    measured), then the aggregator restarts with the archive on (a round every second, hours
//!    settled at once), timed from its start until `archive_objects` holds every stored event —
//!    and, beside it, over the span from the first object's `written_at` to the last's;
//! 2. bytes per event in the archive (the recorded sizes of its zstd Parquet objects) against
//!    CloudTrail's own gzip'd JSON of the same events: the generated `.json.gz` files as they
//!    are (gzip level 1, the generator's), and the same JSON at gzip's default level 6;
//! 3. `orgtrail verify --archive` once every object is in a digest: objects verified per
//!    second, digests read.
//!
//! The events are `bench_data`'s, laid out as CloudTrail writes its files for a busy
//! organization: each file 5 minutes of one account and region, each account and region's files
//! one after the other (`EventTimes::ConsecutiveFiles`). Objects are one per account, region and hour of event time, so
//! their density (events per object) is printed with the figures.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::check_interrupted;
use anyhow::{bail, Context};

use crate::bench::{count, time_grpc_ingest, IngestBenchOptions};
use crate::bench_data::{collect_gz, generate_bench_data_with, EventTimes, REGIONS};
use crate::postgres::ThrowawayPostgres;
use crate::processes::{
    build_binaries, start_aggregator, start_moto, Profile, Security, COLLECTOR_ENVIRONMENT,
};
use crate::workspace_root;

const BUCKET: &str = "orgtrail-bench-archive";
const PREFIX: &str = "consolidated";
/// Seconds between the archive's digests.
const DIGEST_INTERVAL_SECONDS: u64 = 2;
/// The minutes of event time each generated file spans (CloudTrail delivers a file about
/// every 5 minutes per account and region).
const FILE_MINUTES: u64 = 5;
/// The accounts `bench_data` spreads its files over.
const ACCOUNTS: usize = 100;
/// Each detection off in both runs: no ingest is measured, and nothing but the archive writer
/// works while it is timed.
const QUIET_AGGREGATOR: [(&str, &str); 3] = [
    ("ORGTRAIL_ALARMS__CIS_BUILTIN", "false"),
    ("ORGTRAIL_DETECTIONS__SIGMAHQ_RULES", "false"),
    ("ORGTRAIL_INSIGHTS__ENABLED", "false"),
];

struct Options {
    events: usize,
    records_per_file: usize,
}

pub fn bench_archive(arguments: &[String], interrupted: &AtomicBool) -> anyhow::Result<()> {
    if arguments.first().map(String::as_str) == Some("--in-release") {
        return gzip_sizes_in_release(&arguments[1..]);
    }
    let options = parse_options(arguments)?;
    let bin_dir = build_binaries(Profile::Release)?;
    let moto_server = crate::moto::ensure_moto_server()?;
    crate::prerequisites::ensure_openssl()?;
    let data = generate_bench_data_with(
        options.events,
        options.records_per_file,
        0,
        EventTimes::ConsecutiveFiles(FILE_MINUTES),
    )?;
    let work = workspace_root().join("target/bench/archive");
    std::fs::create_dir_all(&work)?;
    let signing_key = ensure_signing_key(&work)?;
    let gzip = gzip_sizes(&bin_dir, &data)?;
    check_interrupted(interrupted)?;

    let postgres = ThrowawayPostgres::start()?;
    let (moto, moto_endpoint) = start_moto(&moto_server, &work.join("moto.log"))?;
    create_bucket(&moto_endpoint, BUCKET)?;
    let pki = crate::pki::ensure_pki(&crate::pki_dir())?;
    let security = Security::Tls(&pki);

    // 1. Every event stored, the archive off (not measured).
    let ingest_log = work.join("aggregator-ingest.log");
    let (mut aggregator, address) = start_aggregator(
        &bin_dir,
        &postgres.url("postgres"),
        &ingest_log,
        &QUIET_AGGREGATOR,
        security,
    )?;
    let ingest = IngestBenchOptions {
        events: options.events,
        streams: 4,
        records_per_file: options.records_per_file,
    };
    let ingest_seconds = time_grpc_ingest(
        &bin_dir,
        &security.endpoint(address),
        security,
        &data,
        &ingest,
    )?;
    aggregator.stop();
    let stored = count(&postgres, "postgres", "SELECT count(*) FROM events")?;
    if stored != options.events as u64 {
        bail!("{stored} events stored, {} expected", options.events);
    }
    // The archive's aggregator opens the stored records with the same keyring (a new start
    // makes a new one at its log's path).
    let keyring = work.join("archive-keyring.json");
    std::fs::copy(ingest_log.with_extension("keyring.json"), &keyring)
        .context("cannot keep the ingest aggregator's keyring")?;
    check_interrupted(interrupted)?;

    // 2. The archive on: timed from the aggregator's start until every event is archived.
    let keyring_text = keyring.to_string_lossy().into_owned();
    let signing_key_text = signing_key.to_string_lossy().into_owned();
    let digest_interval = DIGEST_INTERVAL_SECONDS.to_string();
    let mut environment: Vec<(&str, &str)> = QUIET_AGGREGATOR.to_vec();
    environment.extend([
        ("ORGTRAIL_ENCRYPTION__KEYRING", keyring_text.as_str()),
        ("ORGTRAIL_ARCHIVE__BUCKET", BUCKET),
        ("ORGTRAIL_ARCHIVE__PREFIX", PREFIX),
        ("ORGTRAIL_ARCHIVE__ENDPOINT_URL", moto_endpoint.as_str()),
        ("ORGTRAIL_ARCHIVE__REGION", "us-east-1"),
        ("ORGTRAIL_ARCHIVE__SERVER_SIDE_ENCRYPTION", "AES256"),
        ("ORGTRAIL_ARCHIVE__SETTLE_SECONDS", "0"),
        ("ORGTRAIL_ARCHIVE__INTERVAL_SECONDS", "1"),
        ("ORGTRAIL_ARCHIVE__ACCOUNT_ID", "123456789012"),
        (
            "ORGTRAIL_ARCHIVE__DIGEST_INTERVAL_SECONDS",
            digest_interval.as_str(),
        ),
        (
            "ORGTRAIL_ARCHIVE__SIGNING_KEY_FILE",
            signing_key_text.as_str(),
        ),
    ]);
    environment.extend(COLLECTOR_ENVIRONMENT);
    let archive_log = work.join("aggregator-archive.log");
    let postgres_cpu = postgres.cpu_seconds()?;
    let moto_cpu = moto.cpu_seconds()?;
    eprintln!("bench: archiving {stored} events into s3://{BUCKET}/{PREFIX} at {moto_endpoint}");
    let started = Instant::now();
    let (mut aggregator, _) = start_aggregator(
        &bin_dir,
        &postgres.url("postgres"),
        &archive_log,
        &environment,
        security,
    )?;
    wait_until_archived(&postgres, stored, &archive_log, interrupted)?;
    let archive_seconds = started.elapsed().as_secs_f64();
    let cpu = [
        aggregator.cpu_seconds()?,
        postgres.cpu_seconds()? - postgres_cpu,
        moto.cpu_seconds()? - moto_cpu,
    ];
    let objects = ArchivedObjects::read(&postgres)?;
    if objects.events != stored {
        bail!(
            "the archive holds {} events, {stored} stored",
            objects.events
        );
    }

    // 3. `orgtrail verify --archive`, once a digest lists every object.
    wait_until_digested(&postgres, &archive_log, interrupted)?;
    let verify = time_verify(&bin_dir, &moto_endpoint, &work)?;
    aggregator.stop();
    if verify.objects != objects.count {
        bail!(
            "orgtrail verify --archive verified {} objects, {} recorded",
            verify.objects,
            objects.count
        );
    }

    let events = stored as f64;
    let files = gzip.files;
    println!(
        "archive benchmark: {stored} events in {files} CloudTrail-style files, each {FILE_MINUTES} minutes of one account and region ({} records; {ACCOUNTS} accounts × {} regions, each account and region's files one after the other)",
        options.records_per_file,
        REGIONS.len()
    );
    println!(
        "  density: {} objects (one per account, region and hour of event time), {:.1} events per object (fewest {}, most {}), {:.2} objects per file: each account and region's files follow one another, {FILE_MINUTES} minutes each, as CloudTrail delivers a busy organization (12 files an hour share an hour's object)",
        objects.count,
        objects.mean_events(),
        objects.fewest_events,
        objects.most_events,
        objects.count as f64 / files as f64
    );
    println!(
        "  stored first with the archive off (not measured): {ingest_seconds:.1} s through gRPC"
    );
    println!(
        "  archive writer (release aggregator → moto's S3 on 127.0.0.1, SSE AES256, one replica, a round every second, settle 0 s):"
    );
    println!(
        "    from the aggregator's start to the last event archived: {archive_seconds:7.1} s {:10.0} events/s {:8.1} objects/s  (start and the first round's 1 s wait included)",
        events / archive_seconds,
        objects.count as f64 / archive_seconds
    );
    if let Some(span) = objects.span_seconds.filter(|span| *span > 0.0) {
        // The first object's work is before its written_at: the span holds the others'.
        let after_first = objects.events - objects.first_events;
        println!(
            "    first to last object's written_at:                       {span:7.1} s {:10.0} events/s {:8.1} objects/s  (the first object's events left out)",
            after_first as f64 / span,
            (objects.count - 1) as f64 / span
        );
    }
    println!(
        "    CPU per event: aggregator {:.1} µs (since its start), PostgreSQL {:.1} µs, moto {:.1} µs",
        cpu[0] * 1e6 / events,
        cpu[1] * 1e6 / events,
        cpu[2] * 1e6 / events
    );
    let per_event = |bytes: u64| bytes as f64 / events;
    let archive_per_event = per_event(objects.bytes);
    println!("  bytes per event:");
    println!(
        "    {:<58} {:>12} bytes {:8.1} bytes/event",
        "archive (zstd Parquet, sum of archive_objects.bytes):", objects.bytes, archive_per_event
    );
    println!(
        "    {:<58} {:>12} bytes {:8.1} bytes/event",
        "CloudTrail gzip'd JSON, the files as generated (level 1):",
        gzip.as_generated,
        per_event(gzip.as_generated)
    );
    println!(
        "    {:<58} {:>12} bytes {:8.1} bytes/event",
        "the same JSON at gzip's default level 6:",
        gzip.level_6,
        per_event(gzip.level_6)
    );
    println!(
        "    {:<58} {:>12} bytes {:8.1} bytes/event",
        "(the JSON uncompressed:)",
        gzip.json,
        per_event(gzip.json)
    );
    let ratio_generated = objects.bytes as f64 / gzip.as_generated as f64;
    let ratio_level_6 = objects.bytes as f64 / gzip.level_6 as f64;
    println!(
        "    ratio archive / gzip'd JSON: {ratio_generated:.2} against the files as generated, {ratio_level_6:.2} against level 6; target, the archive smaller: {}",
        if ratio_level_6 < 1.0 && ratio_generated < 1.0 {
            "met"
        } else if ratio_generated < 1.0 {
            "met against the files as generated only"
        } else {
            "missed"
        }
    );
    println!(
        "  orgtrail verify --archive (release, {DIGEST_INTERVAL_SECONDS} s digests, process start included):"
    );
    println!(
        "    {} objects and {} digests ({} signatures checked) in {:.1} s {:10.1} objects/s (exit status 0)",
        verify.objects,
        verify.digests,
        verify.digests_verified,
        verify.seconds,
        verify.objects as f64 / verify.seconds
    );
    println!(
        "  (moto's S3 server, the aggregator, PostgreSQL with fsync off and the CLI sharing this machine's cores)"
    );
    Ok(())
}

fn parse_options(arguments: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        events: 300_000,
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
            "--records-per-file" => options.records_per_file = value,
            _ => bail!("unknown option {flag}: use --events N, --records-per-file R"),
        }
    }
    if options.events < 2 || options.records_per_file == 0 {
        bail!("--events must be at least 2 and --records-per-file positive");
    }
    Ok(options)
}

/// The RSA key that signs the archive's digests, made once (`openssl genpkey`).
fn ensure_signing_key(work: &Path) -> anyhow::Result<PathBuf> {
    let path = work.join("digest-signing-key.pem");
    if path.exists() {
        return Ok(path);
    }
    let partial = work.join("digest-signing-key.pem.partial");
    let output = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&partial)
        .output()
        .context("cannot run openssl genpkey")?;
    if !output.status.success() {
        bail!(
            "openssl genpkey failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// Creates `bucket` in moto's S3 (moto takes unsigned requests): a path-style PUT.
fn create_bucket(endpoint: &str, bucket: &str) -> anyhow::Result<()> {
    let address: SocketAddr = endpoint
        .strip_prefix("http://")
        .unwrap_or(endpoint)
        .parse()
        .with_context(|| format!("moto's endpoint {endpoint} is not http://ADDRESS:PORT"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .with_context(|| format!("cannot connect to moto at {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    match answer.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        _ => bail!("moto did not create the bucket {bucket}:\n{answer}"),
    }
}

/// The generated files' sizes.
struct GzipSizes {
    files: u64,
    /// The `.json.gz` files as the generator wrote them (gzip level 1).
    as_generated: u64,
    /// Their JSON compressed again at gzip's default level, one file at a time.
    level_6: u64,
    /// Their JSON.
    json: u64,
}

/// Sums the files' sizes in the release xtask (gzip in a debug build is slow).
fn gzip_sizes(bin_dir: &Path, data: &Path) -> anyhow::Result<GzipSizes> {
    eprintln!("bench: the generated files' JSON compressed again at gzip level 6 (release xtask)");
    let output = Command::new(bin_dir.join("xtask"))
        .args(["bench", "archive", "--in-release"])
        .arg(data)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run the release xtask")?;
    if !output.status.success() {
        bail!("sizing the gzip'd JSON failed ({})", output.status);
    }
    let text = String::from_utf8(output.stdout)?;
    let numbers: Vec<u64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("the release xtask printed {text:?}"))?;
    let [files, as_generated, level_6, json] = numbers[..] else {
        bail!("the release xtask printed {text:?}, four numbers expected");
    };
    if files == 0 {
        bail!("no .json.gz files under {}", data.display());
    }
    Ok(GzipSizes {
        files,
        as_generated,
        level_6,
        json,
    })
}

/// `xtask bench archive --in-release DIR`: prints the number of `.json.gz` files under DIR,
/// their sizes, their JSON's at gzip level 6 and their JSON's, summed (two threads).
fn gzip_sizes_in_release(arguments: &[String]) -> anyhow::Result<()> {
    let [directory] = arguments else {
        bail!("--in-release takes the data directory");
    };
    let mut paths = Vec::new();
    collect_gz(Path::new(directory), &mut paths)?;
    let sums = std::thread::scope(|scope| -> anyhow::Result<[u64; 3]> {
        let workers = 2;
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let paths = &paths;
                scope.spawn(move || -> anyhow::Result<[u64; 3]> {
                    let mut sums = [0; 3];
                    let mut json = Vec::new();
                    for path in paths.iter().skip(worker).step_by(workers) {
                        sums[0] += std::fs::metadata(path)?.len();
                        json.clear();
                        flate2::read::MultiGzDecoder::new(std::fs::File::open(path)?)
                            .read_to_end(&mut json)
                            .with_context(|| format!("cannot read {}", path.display()))?;
                        let mut encoder = flate2::write::GzEncoder::new(
                            Vec::new(),
                            flate2::Compression::default(),
                        );
                        encoder.write_all(&json)?;
                        sums[1] += encoder.finish()?.len() as u64;
                        sums[2] += json.len() as u64;
                    }
                    Ok(sums)
                })
            })
            .collect();
        let mut total = [0; 3];
        for handle in handles {
            let sums = handle
                .join()
                .map_err(|_| anyhow::anyhow!("a sizing thread panicked"))??;
            for (total, sum) in total.iter_mut().zip(sums) {
                *total += sum;
            }
        }
        Ok(total)
    })?;
    println!("{} {} {} {}", paths.len(), sums[0], sums[1], sums[2]);
    Ok(())
}

/// Waits until the recorded objects hold `stored` events: polls every 200 ms, fails on an
/// archive round that failed, on no progress for a minute, or after a bound that grows with
/// the events.
fn wait_until_archived(
    postgres: &ThrowawayPostgres,
    stored: u64,
    log: &Path,
    interrupted: &AtomicBool,
) -> anyhow::Result<()> {
    let bound = Duration::from_secs(120 + stored / 1_000);
    let stall_bound = Duration::from_secs(60);
    let started = Instant::now();
    let mut last_progress = (0, Instant::now());
    let mut last_report = Instant::now();
    loop {
        let archived = count(
            postgres,
            "postgres",
            "SELECT coalesce(sum(events), 0) FROM archive_objects",
        )?;
        if archived >= stored {
            return Ok(());
        }
        check_interrupted(interrupted)?;
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|line| line.contains("archive round failed"))
        {
            bail!("an archive round failed ({archived} of {stored} events archived): {line}");
        }
        if archived > last_progress.0 {
            last_progress = (archived, Instant::now());
        }
        if last_progress.1.elapsed() > stall_bound {
            bail!(
                "no event archived for {stall_bound:?} ({archived} of {stored}); the aggregator's log ({}) ends:\n{}",
                log.display(),
                tail(&text, 20)
            );
        }
        if started.elapsed() > bound {
            bail!(
                "{archived} of {stored} events archived after {bound:?}; the aggregator's log ({}) ends:\n{}",
                log.display(),
                tail(&text, 20)
            );
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            eprintln!("bench: {archived} of {stored} events archived");
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits (at most two minutes) until a digest lists every object, then two digest intervals
/// and a second more: a digest is written a round after its interval ends, and verify expects
/// every digest due until two intervals ago.
fn wait_until_digested(
    postgres: &ThrowawayPostgres,
    log: &Path,
    interrupted: &AtomicBool,
) -> anyhow::Result<()> {
    let bound = Duration::from_secs(120);
    let started = Instant::now();
    loop {
        let undigested = count(
            postgres,
            "postgres",
            "SELECT count(*) FROM archive_objects WHERE digest_key IS NULL",
        )?;
        if undigested == 0 {
            std::thread::sleep(Duration::from_secs(2 * DIGEST_INTERVAL_SECONDS + 1));
            return Ok(());
        }
        check_interrupted(interrupted)?;
        if started.elapsed() > bound {
            bail!(
                "{undigested} archive objects in no digest after {bound:?}; the aggregator's log ({}) ends:\n{}",
                log.display(),
                tail(&std::fs::read_to_string(log).unwrap_or_default(), 20)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What `archive_objects` records.
struct ArchivedObjects {
    count: u64,
    events: u64,
    bytes: u64,
    fewest_events: u64,
    most_events: u64,
    /// The events of the object written first.
    first_events: u64,
    /// Seconds from the first object's `written_at` to the last's.
    span_seconds: Option<f64>,
}

impl ArchivedObjects {
    fn read(postgres: &ThrowawayPostgres) -> anyhow::Result<ArchivedObjects> {
        let sql = "SELECT count(*), coalesce(sum(events), 0), coalesce(sum(bytes), 0),
                          coalesce(min(events), 0), coalesce(max(events), 0),
                          coalesce((array_agg(events ORDER BY written_at))[1], 0),
                          coalesce(extract(epoch FROM max(written_at) - min(written_at)), 0)
                   FROM archive_objects";
        let answer = postgres.psql("postgres", sql)?;
        let fields: Vec<&str> = answer.trim().split('|').collect();
        let [count, events, bytes, fewest, most, first, span] = fields[..] else {
            bail!("archive_objects answered {answer:?}");
        };
        let number = |text: &str| -> anyhow::Result<u64> {
            text.parse()
                .with_context(|| format!("archive_objects answered {answer:?}"))
        };
        let count = number(count)?;
        let span: f64 = span
            .parse()
            .with_context(|| format!("archive_objects answered {answer:?}"))?;
        Ok(ArchivedObjects {
            count,
            events: number(events)?,
            bytes: number(bytes)?,
            fewest_events: number(fewest)?,
            most_events: number(most)?,
            first_events: number(first)?,
            span_seconds: (count > 1).then_some(span),
        })
    }

    fn mean_events(&self) -> f64 {
        self.events as f64 / self.count.max(1) as f64
    }
}

struct Verification {
    seconds: f64,
    objects: u64,
    digests: u64,
    digests_verified: u64,
}

/// Runs `orgtrail verify --archive` (at most 10 minutes), its report in the work directory;
/// fails unless it exits 0.
fn time_verify(bin_dir: &Path, endpoint: &str, work: &Path) -> anyhow::Result<Verification> {
    let report_path = work.join("verify-report.json");
    let errors_path = work.join("verify-stderr.txt");
    eprintln!("bench: orgtrail verify --archive");
    let started = Instant::now();
    let mut child = Command::new(bin_dir.join("orgtrail"))
        .args([
            "verify",
            "--archive",
            "--bucket",
            BUCKET,
            "--prefix",
            PREFIX,
        ])
        .args([
            "--digest-interval-seconds",
            &DIGEST_INTERVAL_SECONDS.to_string(),
        ])
        .args(["--endpoint-url", endpoint, "--output", "json"])
        .env_remove("ORGTRAIL_AWS_ENDPOINT_URL")
        .envs(COLLECTOR_ENVIRONMENT)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&report_path)?)
        .stderr(std::fs::File::create(&errors_path)?)
        .spawn()
        .context("cannot run orgtrail verify")?;
    let bound = Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            bail!("orgtrail verify --archive took longer than {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let seconds = started.elapsed().as_secs_f64();
    let errors = std::fs::read_to_string(&errors_path).unwrap_or_default();
    if !status.success() {
        let report = std::fs::read_to_string(&report_path).unwrap_or_default();
        let problems = serde_json::from_str::<serde_json::Value>(&report)
            .ok()
            .and_then(|report| serde_json::to_string_pretty(&report["problems"]).ok())
            .unwrap_or_default();
        bail!(
            "orgtrail verify --archive failed ({status}); its report is in {}; problems: {problems}\n{errors}",
            report_path.display()
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report_path)?)
        .with_context(|| format!("orgtrail verify --archive printed no JSON:\n{errors}"))?;
    let summary = &report["summary"];
    let field = |value: &serde_json::Value, name: &str| -> anyhow::Result<u64> {
        value
            .as_u64()
            .with_context(|| format!("no {name} in the report's summary: {summary}"))
    };
    Ok(Verification {
        seconds,
        objects: field(&summary["log_files"]["verified"], "log_files.verified")?,
        digests: field(&summary["digests"], "digests")?,
        digests_verified: field(&summary["digests_verified"], "digests_verified")?,
    })
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
