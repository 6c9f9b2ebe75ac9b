//! `cargo xtask bench retention [--events N] [--days D] [--ingest-events M]`: retention
//! enforcement over N events spread over D days (default 10,000,000 over 400), both ways:
//!
//! 1. batched deletes — a 90-day policy for read-only management events: every day holds
//!    reads and writes, so no partition can go whole and the reads go in bounded batches,
//!    one day partition at a time, while M fresh events are ingested beside it;
//! 2. partition drops — a 90-day policy for everything else: each older day is now wholly
//!    expired and its partition is dropped.
//!
//! The rows are generated in PostgreSQL from the real sample records (ingested first, as
//! templates) with fresh eventIDs, 100 accounts, 4 regions and times spread over D days.

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::check_interrupted;
use anyhow::{bail, Context};

use crate::bench_data::generate_bench_data;
use crate::postgres::ThrowawayPostgres;
use crate::processes::{build_binaries, start_aggregator, Profile, Security};
use crate::workspace_root;

/// Events generated per statement.
pub const CHUNK: u64 = 500_000;

pub fn bench_retention(arguments: &[String], interrupted: &AtomicBool) -> anyhow::Result<()> {
    let mut options = [
        ("--events", 10_000_000u64),
        ("--days", 400),
        ("--ingest-events", 200_000),
    ];
    let mut arguments = arguments.iter();
    while let Some(flag) = arguments.next() {
        let value: u64 = arguments
            .next()
            .with_context(|| format!("{flag} needs a value"))?
            .parse()
            .with_context(|| format!("{flag} needs a number"))?;
        let option = options
            .iter_mut()
            .find(|(name, _)| name == flag)
            .with_context(|| {
                format!("unknown option {flag}: use --events, --days, --ingest-events")
            })?;
        option.1 = value;
    }
    let [events, days, ingest_events] = options.map(|(_, value)| value);
    if days <= 91 || events == 0 {
        bail!("--days must be over 91 and --events positive");
    }

    let bin_dir = build_binaries(Profile::Release)?;
    let fresh_baseline = generate_bench_data(ingest_events as usize, 100, 1)?;
    let fresh_during = generate_bench_data(ingest_events as usize, 100, 2)?;
    let postgres = ThrowawayPostgres::start()?;
    let work = workspace_root().join("target/bench/retention");
    std::fs::create_dir_all(&work)?;
    let pki = crate::pki::ensure_pki(&crate::pki_dir())?;
    let security = Security::Tls(&pki);
    let (mut aggregator, address) = start_aggregator(
        &bin_dir,
        &postgres.url("postgres"),
        &work.join("aggregator.log"),
        &[
            ("ORGTRAIL_RETENTION__INTERVAL_SECONDS", "86400"),
            ("ORGTRAIL_RETENTION__DEFAULT_RETAIN_DAYS", "3650"),
            (
                "ORGTRAIL_LOG__LEVEL",
                "warn,orgtrail_aggregator::server=info",
            ),
        ],
        security,
    )?;
    let endpoint = security.endpoint(address);
    let orgtrail = |arguments: &[&str]| -> anyhow::Result<String> {
        let output = security
            .orgtrail(&bin_dir, &endpoint)
            .args(arguments)
            .output()
            .context("cannot run orgtrail")?;
        if !output.status.success() && output.status.code() != Some(2) {
            bail!(
                "orgtrail {} failed: {}",
                arguments.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };

    // Templates: the real sample records, as the aggregator stores them.
    orgtrail(&[
        "ingest",
        &workspace_root().join("data/cloudtrail").to_string_lossy(),
    ])?;
    postgres.psql(
        "postgres",
        "CREATE TABLE bench_templates AS SELECT (row_number() OVER (ORDER BY event_id) - 1)::bigint AS n, * FROM events;
         TRUNCATE events; TRUNCATE event_ids;",
    )?;
    // Only the generated days have partitions (the samples' days go with their templates).
    postgres.psql(
        "postgres",
        "DO $$ DECLARE name text; BEGIN
           FOR name IN SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid
                       WHERE pg_inherits.inhparent = 'events'::regclass LOOP
             EXECUTE format('DROP TABLE %I', name);
           END LOOP;
         END $$;",
    )?;
    // One "now" for the whole generation: it takes long enough to cross midnight.
    let base = postgres
        .psql("postgres", "SELECT now()::text")?
        .trim()
        .to_string();
    postgres.psql(
        "postgres",
        &format!(
            "SET TIME ZONE 'UTC';
             DO $$ DECLARE day date; name text; BEGIN
               FOR i IN 0..{days} LOOP
                 day := ('{base}'::timestamptz AT TIME ZONE 'UTC')::date - i;
                 name := 'events_p' || to_char(day, 'YYYYMMDD');
                 IF to_regclass(name) IS NULL THEN
                   EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
                   EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                                  name, day::text || ' 00:00:00+00', (day + 1)::text || ' 00:00:00+00');
                 END IF;
               END LOOP;
             END $$;"
        ),
    )?;
    eprintln!("bench: generating {events} events over {days} days in PostgreSQL");
    let started = Instant::now();
    let mut first = 0;
    while first < events {
        check_interrupted(interrupted)?;
        let last = (first + CHUNK).min(events) - 1;
        postgres.psql("postgres", &generate_sql(first, last, days, &base))?;
        first = last + 1;
        eprintln!(
            "bench: {first} events ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    postgres.psql(
        "postgres",
        "INSERT INTO event_ids SELECT event_id, event_time FROM events; ANALYZE;",
    )?;
    let load_seconds = started.elapsed().as_secs_f64();
    let stored: u64 = postgres
        .psql("postgres", "SELECT count(*) FROM events")?
        .trim()
        .parse()?;

    // Ingest alone, for comparison.
    let baseline = time_ingest(&bin_dir, &endpoint, security, &fresh_baseline)?.wait_for_rate()?;

    // 1. Batched deletes, with an ingest beside them.
    orgtrail(&[
        "retention",
        "create",
        "reads-90d",
        "--retain-days",
        "90",
        "--read-only",
        "true",
    ])?;
    let beside = time_ingest(&bin_dir, &endpoint, security, &fresh_during)?;
    let started = Instant::now();
    let batched = orgtrail(&["retention", "run"])?;
    let batched_seconds = started.elapsed().as_secs_f64();
    let during = beside.wait_for_rate()?;
    let (batched_deleted, batched_dropped) = parse_report(&batched)?;
    check_interrupted(interrupted)?;

    // 2. Partition drops.
    orgtrail(&["retention", "create", "all-90d", "--retain-days", "90"])?;
    let started = Instant::now();
    let dropping = orgtrail(&["retention", "run"])?;
    let dropping_seconds = started.elapsed().as_secs_f64();
    let (dropped_events, dropped_partitions) = parse_report(&dropping)?;
    aggregator.stop();

    println!("retention benchmark: {stored} events over {days} days (generated in {load_seconds:.0} s), release build, PostgreSQL with fsync off on this machine");
    println!(
        "  batched deletes (90 days for read-only events; every day mixed): {batched_deleted} events in {batched_seconds:.1} s = {:.0} events/s, {batched_dropped} partitions dropped",
        batched_deleted as f64 / batched_seconds
    );
    println!(
        "  partition drops (90 days for everything else):                  {dropped_events} events in {dropping_seconds:.1} s = {:.0} events/s, {dropped_partitions} day partitions dropped",
        dropped_events as f64 / dropping_seconds
    );
    // The run started right after the ingest did.
    let overlapped = batched_seconds.min(during.seconds) / during.seconds;
    println!(
        "  ingest of {ingest_events} events: {:.0} events/s alone, {:.0} events/s beside the batched run ({:.0} % of the ingest overlapped it)",
        baseline.rate,
        during.rate,
        100.0 * overlapped,
    );
    Ok(())
}

/// INSERT … SELECT of events `first..=last`: a template record each, a fresh eventID, one of
/// 100 accounts and 4 regions, a time spread over the `days` before `base`.
pub fn generate_sql(first: u64, last: u64, days: u64, base: &str) -> String {
    format!(
        "SET TIME ZONE 'UTC';
         INSERT INTO events (event_time, event_id, event_version, event_source, event_name, aws_region,
             account_id, account_id_source, event_type, event_category, read_only, management_event,
             user_type, user_arn, user_principal_id, user_account_id, access_key_id, invoked_by, username,
             source_ip_address, user_agent, error_code, error_message, resource_types, resource_arns,
             resource_account_ids, resource_names, shared_event_id, request_id, log_file_id, record, key_id)
         SELECT '{base}'::timestamptz - make_interval(secs => ((g * 104729) % ({days} * 86400))::double precision) - interval '1 minute',
                gen_random_uuid(), t.event_version, t.event_source, t.event_name,
                (ARRAY['us-east-1', 'eu-west-1', 'ap-southeast-2', 'sa-east-1'])[1 + (g % 4)],
                lpad((100000000000 + (g % 100) * 7919)::text, 12, '0'), 'recipientAccountId', t.event_type,
                t.event_category, t.read_only, t.management_event, t.user_type, t.user_arn, t.user_principal_id,
                t.user_account_id, t.access_key_id, t.invoked_by, t.username, t.source_ip_address, t.user_agent,
                t.error_code, t.error_message, t.resource_types, t.resource_arns, t.resource_account_ids,
                t.resource_names, t.shared_event_id, t.request_id, t.log_file_id, t.record, t.key_id
         FROM generate_series({first}::bigint, {last}::bigint) AS g
         JOIN bench_templates AS t ON t.n = g % (SELECT count(*) FROM bench_templates);"
    )
}

/// "run N completed: X events deleted, Y day partitions dropped".
fn parse_report(output: &str) -> anyhow::Result<(u64, u64)> {
    let line = output.lines().next().context("no enforcement report")?;
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|part| part.parse().ok())
        .collect();
    match numbers[..] {
        [_, deleted, dropped, ..] => Ok((deleted, dropped)),
        _ => bail!("cannot read the report: {line}"),
    }
}

struct RunningIngest {
    child: Child,
    started: Instant,
    events: u64,
}

struct IngestRate {
    rate: f64,
    seconds: f64,
}

fn time_ingest(
    bin_dir: &Path,
    endpoint: &str,
    security: Security<'_>,
    data: &Path,
) -> anyhow::Result<RunningIngest> {
    let events = count_events(data)?;
    let child = security
        .orgtrail(bin_dir, endpoint)
        .args(["ingest", "--streams", "4"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run orgtrail ingest")?;
    Ok(RunningIngest {
        child,
        started: Instant::now(),
        events,
    })
}

impl RunningIngest {
    fn wait_for_rate(mut self) -> anyhow::Result<IngestRate> {
        let status = self.child.wait()?;
        if !status.success() {
            bail!("orgtrail ingest failed ({status})");
        }
        let seconds = self.started.elapsed().as_secs_f64();
        Ok(IngestRate {
            rate: self.events as f64 / seconds,
            seconds,
        })
    }
}

/// The events the generator wrote (files of 100).
fn count_events(data: &Path) -> anyhow::Result<u64> {
    let name = data
        .parent()
        .and_then(Path::file_name)
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.split('-')
        .nth(1)
        .and_then(|events| events.parse().ok())
        .with_context(|| format!("cannot tell the events of {}", data.display()))
}
