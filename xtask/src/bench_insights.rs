//! `cargo xtask bench insights [--seeds LIST] [--ingest-events N] [--ingest-rounds R]
//! [--summary-events N] [--summary-days D] [--replay-days D] [--skip ingest,database]`: what
//! issue 14 asks to be measured of Insights and the rollups they read, printed in one report:
//!
//! 1. precision and recall of the model over generated scenarios, per seed and pooled — in the
//!    release xtask (`bench_insight_scenarios`), on seeds 300–304 by default, none of which
//!    took part in choosing the model;
//! 2. what the rollups cost on ingest: the ingest benchmark's events (`bench_data`) through
//!    gRPC, secure, with the rollups kept and with `ingest.rollups = false` (a setting for
//!    benchmarks only), each into a fresh database, every detection and Insights off in both so
//!    the rollups are the only difference; the rates, the slowdown against the 10 % target and
//!    the CPU per event of the aggregator and PostgreSQL (`bench_detection_runs::CpuUse`) — for
//!    files of 5 minutes of one account and region, as CloudTrail writes them, and for `bench
//!    ingest`'s files, each of whose records lies anywhere in 30 days (every event a rollup row
//!    of its own: the worst case);
//! 3. `events summary` over 10,000,000 events spread over D days (default 60), generated in
//!    PostgreSQL from the real sample records as `bench retention` does, with the rollups filled
//!    from them by the migration's own statements: several windows (everything, a day, odd edges
//!    in seconds and minutes), each checked against a count of the events, timed in one
//!    connection (`orgtrail-bench-calls`, median of several) and through the CLI (process start
//!    included);
//! 4. the replay of a month of one account: the scenario of the sample account with the most
//!    APIs (its own seed), a week of history and D days (default 30), turned into events in
//!    PostgreSQL (one event per count, each a sample record's fields with the series' account,
//!    region and API) with its rollups, then `ReplayInsights` over the month timed through
//!    gRPC: series evaluated, Insights found and written, against what the model finds over the
//!    same counts in-process; then the same replay again (everything written before).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::check_interrupted;
use anyhow::{bail, Context};

use crate::bench::{count, signed_percent, time_grpc_ingest, IngestBenchOptions};
use crate::bench_data::{format_time, generate_bench_data_with, EventTimes};
use crate::bench_detection_runs::{CpuPerEvent, CpuUse};
use crate::bench_insight_scenarios::{
    parse_seeds, read_expected, run_in_release, InReleaseOptions,
};
use crate::bench_retention::{generate_sql, CHUNK};
use crate::pki::Pki;
use crate::postgres::ThrowawayPostgres;
use crate::processes::{build_binaries, start_aggregator, Profile, Security};
use crate::workspace_root;

/// Issue 14: ingest with the rollups at most this much slower than without.
const ROLLUP_SLOWDOWN_TARGET: f64 = 0.10;
/// Issue 14: the summary over 10 M events answers within this.
const SUMMARY_TARGET_MILLISECONDS: f64 = 100.0;
/// Summaries timed per window in one connection, and through the CLI.
const SUMMARY_RUNS: usize = 9;
const CLI_SUMMARY_RUNS: usize = 5;

struct Options {
    seeds: String,
    ingest_events: usize,
    ingest_rounds: usize,
    summary_events: u64,
    summary_days: u64,
    replay_days: u32,
    /// Parts left out: `ingest`, `database` (the summary and the replay).
    skip: String,
}

/// Every detection and Insights off: the ingest runs differ in the rollups only, and nothing
/// evaluates in the background of the summary and the replay.
const QUIET_AGGREGATOR: [(&str, &str); 4] = [
    ("ORGTRAIL_ALARMS__CIS_BUILTIN", "false"),
    ("ORGTRAIL_DETECTIONS__SIGMAHQ_RULES", "false"),
    ("ORGTRAIL_INSIGHTS__ENABLED", "false"),
    // A month's replay is one unary call.
    ("ORGTRAIL_SERVER__REQUEST_TIMEOUT_SECONDS", "1800"),
];

pub fn bench_insights(arguments: &[String], interrupted: &AtomicBool) -> anyhow::Result<()> {
    if arguments.first().map(String::as_str) == Some("--in-release") {
        return run_in_release(&parse_in_release(&arguments[1..])?);
    }
    let options = parse_options(arguments)?;
    let seeds = parse_seeds(&options.seeds)?;
    let bin_dir = build_binaries(Profile::Release)?;
    let work = workspace_root().join("target/bench/insights");
    std::fs::create_dir_all(&work)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let today = (now / 86_400) as i64;

    // 1. The model over scenarios, and the month to replay, in the release xtask.
    let replay_dir = work.join("replay-month");
    let model_history_days = 7;
    let replay_first_day = today - model_history_days - i64::from(options.replay_days);
    eprintln!("bench: the Insights model over the scenarios of seeds {seeds:?} (release xtask)");
    let output = Command::new(bin_dir.join("xtask"))
        .args([
            "bench",
            "insights",
            "--in-release",
            "--seeds",
            &options.seeds,
        ])
        .arg("--replay-out")
        .arg(&replay_dir)
        .args([
            "--replay-first-day",
            &replay_first_day.to_string(),
            "--replay-days",
            &options.replay_days.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run the release xtask")?;
    if !output.status.success() {
        bail!("the scenario measurement failed ({})", output.status);
    }
    let scenario_table = String::from_utf8(output.stdout)?;
    print!("{scenario_table}");
    check_interrupted(interrupted)?;

    let postgres = ThrowawayPostgres::start()?;
    let pki = crate::pki::ensure_pki(&crate::pki_dir())?;
    let security = Security::Tls(&pki);

    // 2. Ingest with and without the rollups.
    let ingest = IngestBenchOptions {
        events: options.ingest_events,
        streams: 4,
        records_per_file: 100,
    };
    // Twice: files as CloudTrail writes them, and the ingest benchmark's files, whose records
    // lie anywhere in 30 days — each event a row of the rollups of its own, their worst case.
    let layouts = [
        (
            "files of 5 minutes of one account and region, as CloudTrail writes them",
            EventTimes::FileWindowMinutes(5),
        ),
        (
            "bench ingest's files: each record anywhere in 30 days (the rollups' worst case)",
            EventTimes::SpreadOverDays,
        ),
    ];
    for (layout, (label, times)) in layouts.into_iter().enumerate() {
        if options.skip.contains("ingest") {
            break;
        }
        let data = generate_bench_data_with(ingest.events, ingest.records_per_file, 0, times)?;
        let mut runs: Vec<(bool, f64, CpuPerEvent)> = Vec::new();
        for round in 0..options.ingest_rounds {
            for rollups in [false, true] {
                let tag = format!("{layout}_{round}");
                let (seconds, cpu) = ingest_run(
                    &bin_dir, &postgres, &work, &data, &ingest, &pki, rollups, &tag,
                )?;
                runs.push((rollups, seconds, cpu));
                check_interrupted(interrupted)?;
            }
        }
        print_ingest(label, &runs, &ingest, options.ingest_rounds);
    }
    if options.skip.contains("database") {
        return Ok(());
    }

    // 3. The summary over 10 M events.
    let database = "bench_summary";
    postgres.psql("postgres", &format!("CREATE DATABASE {database}"))?;
    let mut environment = QUIET_AGGREGATOR.to_vec();
    environment.push(("ORGTRAIL_RETENTION__DEFAULT_RETAIN_DAYS", "3650"));
    let (mut aggregator, address) = start_aggregator(
        &bin_dir,
        &postgres.url(database),
        &work.join("aggregator-summary.log"),
        &environment,
        security,
    )?;
    let endpoint = security.endpoint(address);
    let summary = SummaryBench {
        bin_dir: &bin_dir,
        postgres: &postgres,
        database,
        endpoint: &endpoint,
        pki: &pki,
    };
    // One database of `summary_events` events: the replayed account's month (with its week
    // of history), and before it the rest, spread over `summary_days` — the summary's events end
    // where the month's history begins, since a replay evaluates every API with calls in its
    // window, and that must be the one account's only.
    let expected = read_expected(&replay_dir.join("expected.txt"))?;
    let field = |key: &str| -> anyhow::Result<u64> {
        expected
            .get(key)
            .with_context(|| format!("no {key} in expected.txt"))?
            .parse()
            .with_context(|| format!("{key} in expected.txt"))
    };
    let account = expected.get("account").context("no account")?.clone();
    let replay_events = field("events")?;
    if replay_events >= options.summary_events {
        bail!("the replayed month holds {replay_events} events: give --summary-events more");
    }
    let summary_end_days_ago = model_history_days + i64::from(options.replay_days) + 1;
    let generation_seconds = summary.generate_events(
        &options,
        summary_end_days_ago,
        &replay_dir,
        replay_events,
        interrupted,
    )?;
    let windows = summary_windows(today - summary_end_days_ago);
    let mut timings = Vec::new();
    for (label, start, end) in &windows {
        check_interrupted(interrupted)?;
        timings.push(summary.time_window(label, start.as_deref(), end.as_deref())?);
    }
    println!(
        "events summary over {} events ({} over {} days, 100 accounts, 4 regions, and the replayed account's {replay_events} after them; generated in PostgreSQL, indexed and rolled up in {generation_seconds:.0} s), target under {SUMMARY_TARGET_MILLISECONDS:.0} ms:",
        options.summary_events, options.summary_events - replay_events, options.summary_days
    );
    println!(
        "  {:<62} {:>8} {:>10} {:>16} {:>20}",
        "window", "groups", "events", "one connection", "CLI (process start)"
    );
    for timing in &timings {
        println!(
            "  {:<62} {:>8} {:>10} {:>13.1} ms {:>17.1} ms",
            timing.label, timing.groups, timing.events, timing.in_connection, timing.cli
        );
    }
    let slowest = timings
        .iter()
        .map(|timing| timing.in_connection)
        .fold(0.0, f64::max);
    let slowest_cli = timings.iter().map(|timing| timing.cli).fold(0.0, f64::max);
    println!(
        "  (medians of {SUMMARY_RUNS} calls in one TLS connection and of {CLI_SUMMARY_RUNS} runs of `orgtrail events summary`; every window's total checked against a count of the events) target: slowest {slowest:.1} ms in one connection ({}), {slowest_cli:.1} ms through the CLI ({})",
        met(slowest <= SUMMARY_TARGET_MILLISECONDS),
        met(slowest_cli <= SUMMARY_TARGET_MILLISECONDS)
    );
    check_interrupted(interrupted)?;

    // 4. The replay of one account's month.
    let stored = count(
        &postgres,
        database,
        &format!("SELECT count(*) FROM events WHERE account_id = '{account}'"),
    )?;
    if stored != field("events")? {
        bail!(
            "{stored} events of {account} stored, {} generated",
            field("events")?
        );
    }
    let start = rfc3339_millis((replay_first_day + model_history_days) as u64 * 86_400_000);
    let end = rfc3339_millis(today as u64 * 86_400_000);
    let first = summary.replay(&start, &end)?;
    let again = summary.replay(&start, &end)?;
    aggregator.stop();
    println!(
        "Insights replay of a month of one account ({account}, the sample account with the most APIs: {} APIs in {} regions, {} series; {stored} events over {} days, a week of history before the month; part of the summary's events):",
        field("apis")?,
        field("regions")?,
        field("series")?,
        options.replay_days + model_history_days as u32,
    );
    println!(
        "  ReplayInsights {start} → {end}: {:.2} s, {} series evaluated, {} Insights found, {} written (the model in-process over the same counts: {} Insights; {} bursts injected in the month)",
        first.seconds, first.series, first.found, first.written, field("episodes")?, field("bursts")?
    );
    println!(
        "  the same replay again: {:.2} s, {} series evaluated, {} Insights found, {} written",
        again.seconds, again.series, again.found, again.written
    );
    if first.found != field("episodes")? {
        println!("  NOTE: the replay found another number of Insights than the model in-process");
    }
    println!("  (PostgreSQL 15 on loopback with fsync off; client, aggregator and server sharing this machine's 2 cores with whatever else runs)");
    Ok(())
}

/// One ingest run into a fresh database: seconds and CPU per event. Checks the rollups hold
/// every event, or none when off.
#[allow(clippy::too_many_arguments)]
fn ingest_run(
    bin_dir: &Path,
    postgres: &ThrowawayPostgres,
    work: &Path,
    data: &Path,
    options: &IngestBenchOptions,
    pki: &Pki,
    rollups: bool,
    tag: &str,
) -> anyhow::Result<(f64, CpuPerEvent)> {
    let database = format!("bench_rollups_{}_{tag}", if rollups { "on" } else { "off" });
    postgres.psql("postgres", &format!("CREATE DATABASE {database}"))?;
    let mut environment = QUIET_AGGREGATOR.to_vec();
    environment.push((
        "ORGTRAIL_INGEST__ROLLUPS",
        if rollups { "true" } else { "false" },
    ));
    let security = Security::Tls(pki);
    let (mut aggregator, address) = start_aggregator(
        bin_dir,
        &postgres.url(&database),
        &work.join(format!("aggregator-{database}.log")),
        &environment,
        security,
    )?;
    let cpu = CpuUse::start(&aggregator, postgres)?;
    let seconds = time_grpc_ingest(
        bin_dir,
        &security.endpoint(address),
        security,
        data,
        options,
    )?;
    let cpu = cpu.end(&aggregator, postgres, options.events)?;
    aggregator.stop();
    let rolled_up = count(
        postgres,
        &database,
        "SELECT coalesce(sum(events), 0) FROM minute_counts",
    )?;
    let want = if rollups { options.events as u64 } else { 0 };
    if rolled_up != want {
        bail!("{database}: the rollups count {rolled_up} events, {want} expected");
    }
    postgres.psql("postgres", &format!("DROP DATABASE {database}"))?;
    Ok((seconds, cpu))
}

fn print_ingest(
    label: &str,
    runs: &[(bool, f64, CpuPerEvent)],
    options: &IngestBenchOptions,
    rounds: usize,
) {
    let events = options.events as f64;
    println!(
        "rollups on ingest, {label}: {} events in files of {}, {} streams, secure (TLS, client certificate, sealed records), every detection and Insights off, each run into a fresh database:",
        options.events, options.records_per_file, options.streams
    );
    println!(
        "  {:<26} {:>9} {:>14}   CPU per event: aggregator  PostgreSQL    both",
        "", "time", "rate"
    );
    for (rollups, seconds, cpu) in runs {
        println!(
            "  {:<26} {seconds:7.1} s {:>9.0} events/s {:>22.1} µs {:8.1} µs {:6.1} µs",
            if *rollups {
                "rollups kept (default)"
            } else {
                "ingest.rollups = false"
            },
            events / seconds,
            cpu.aggregator_microseconds,
            cpu.postgres_microseconds,
            cpu.both_microseconds()
        );
    }
    let total = |kept: bool| -> (f64, f64) {
        let chosen: Vec<&(bool, f64, CpuPerEvent)> = runs
            .iter()
            .filter(|(rollups, ..)| *rollups == kept)
            .collect();
        let seconds: f64 = chosen.iter().map(|(_, seconds, _)| seconds).sum();
        let cpu: f64 = chosen
            .iter()
            .map(|(.., cpu)| cpu.both_microseconds())
            .sum::<f64>()
            / chosen.len().max(1) as f64;
        (events * chosen.len() as f64 / seconds, cpu)
    };
    let ((on_rate, on_cpu), (off_rate, off_cpu)) = (total(true), total(false));
    let slowdown = 1.0 - on_rate / off_rate;
    let cpu_slowdown = 1.0 - off_cpu / on_cpu;
    println!(
        "  rollups kept against not{}: {on_rate:.0} against {off_rate:.0} events/s, {} ({}); CPU per event {} — as a slowdown where the cores are the limit, {:.1} % ({}); target at most {:.0} % slower",
        if rounds > 1 { format!(" ({rounds} rounds, alternating)") } else { String::new() },
        signed_percent(on_rate / off_rate - 1.0),
        met(slowdown <= ROLLUP_SLOWDOWN_TARGET),
        signed_percent(on_cpu / off_cpu - 1.0),
        cpu_slowdown * 100.0,
        met(cpu_slowdown <= ROLLUP_SLOWDOWN_TARGET),
        ROLLUP_SLOWDOWN_TARGET * 100.0
    );
    println!("  (CPU time, user and system, from /proc; the rates swing with what else runs on the 2 cores, the CPU per event less so)");
}

/// The database the summary and the replay are measured on.
struct SummaryBench<'a> {
    bin_dir: &'a Path,
    postgres: &'a ThrowawayPostgres,
    database: &'a str,
    endpoint: &'a str,
    pki: &'a Pki,
}

struct SummaryTiming {
    label: String,
    groups: u64,
    events: u64,
    in_connection: f64,
    cli: f64,
}

struct ReplayAnswer {
    seconds: f64,
    series: u64,
    found: u64,
    written: u64,
}

impl SummaryBench<'_> {
    fn psql(&self, sql: &str) -> anyhow::Result<String> {
        self.postgres.psql(self.database, sql)
    }

    /// The sample records as templates (ingested, so sealed as the aggregator seals), then
    /// the events in the `summary_days` before `end_days_ago` days ago, then their rollups;
    /// returns the seconds.
    fn generate_events(
        &self,
        options: &Options,
        end_days_ago: i64,
        replay_dir: &Path,
        replay_events: u64,
        interrupted: &AtomicBool,
    ) -> anyhow::Result<f64> {
        let output = Security::Tls(self.pki)
            .orgtrail(self.bin_dir, self.endpoint)
            .args([
                "ingest",
                &workspace_root().join("data/cloudtrail").to_string_lossy(),
            ])
            .output()
            .context("cannot run orgtrail ingest")?;
        if !output.status.success() && output.status.code() != Some(2) {
            bail!(
                "orgtrail ingest of the samples failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        // The series stay: the aggregator has their ids cached.
        self.psql(
            "CREATE TABLE bench_templates AS SELECT (row_number() OVER (ORDER BY event_id) - 1)::bigint AS n, * FROM events;
             TRUNCATE events, event_ids, event_minutes, event_hours, event_days, event_hour_deltas, rollup_changes;",
        )?;
        let base = self
            .psql(&format!(
                "SELECT (now() - interval '{end_days_ago} days')::text"
            ))?
            .trim()
            .to_string();
        let days = options.summary_days;
        // Every day from the first generated to today: the replayed month comes later.
        self.psql(&format!(
            "SET TIME ZONE 'UTC';
             DO $$ DECLARE day date; name text; BEGIN
               FOR i IN 0..{} LOOP
                 day := (now() AT TIME ZONE 'UTC')::date - i;
                 name := 'events_p' || to_char(day, 'YYYYMMDD');
                 IF to_regclass(name) IS NULL THEN
                   EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
                   EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                                  name, day::text || ' 00:00:00+00', (day + 1)::text || ' 00:00:00+00');
                 END IF;
               END LOOP;
             END $$;",
            days + end_days_ago as u64 + 1
        ))?;
        let uniform_events = options.summary_events - replay_events;
        eprintln!(
            "bench: generating {uniform_events} events over {days} days and the replayed month in PostgreSQL"
        );
        let started = Instant::now();
        // Without the lookup indexes while loading (made again after, sorted): inserting 10 M
        // rows into nine indexes row by row takes half an hour on this machine.
        self.psql(
            "CREATE TABLE bench_dropped_indexes AS
               SELECT indexname, replace(indexdef, ' ON ONLY ', ' ON ') AS indexdef
               FROM pg_indexes
               WHERE schemaname = 'public' AND tablename = 'events'
                 AND indexname NOT IN (SELECT conname FROM pg_constraint);
             DO $$ DECLARE r record; BEGIN
               FOR r IN SELECT indexname FROM bench_dropped_indexes LOOP
                 EXECUTE format('DROP INDEX %I', r.indexname);
               END LOOP;
             END $$;",
        )?;
        self.load_replay_month(replay_dir)?;
        let mut first = 0;
        while first < uniform_events {
            check_interrupted(interrupted)?;
            let last = (first + CHUNK).min(uniform_events) - 1;
            let sql = slim_rows(&generate_sql(first, last, days, &base));
            if sql.contains("t.record") || sql.contains("t.resource_names") {
                bail!("bench retention's rows changed: slim_rows no longer applies");
            }
            self.psql(&sql)?;
            first = last + 1;
            eprintln!(
                "bench: {first} events ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
        eprintln!("bench: indexing ({:.0} s)", started.elapsed().as_secs_f64());
        self.psql(
            "DO $$ DECLARE r record; BEGIN
               FOR r IN SELECT indexdef FROM bench_dropped_indexes LOOP
                 EXECUTE r.indexdef;
               END LOOP;
             END $$;",
        )?;
        eprintln!(
            "bench: rolling up ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
        self.psql(FILL_ROLLUPS_SQL)?;
        self.psql("ANALYZE")?;
        let stored = count(self.postgres, self.database, "SELECT count(*) FROM events")?;
        let rolled_up = count(
            self.postgres,
            self.database,
            // The minutes, hours and days each count every event (0 when they differ).
            "SELECT CASE WHEN m = h AND h = d THEN m ELSE 0 END FROM (SELECT
                 (SELECT sum(events) FROM minute_counts) AS m,
                 (SELECT sum(events) FROM hour_counts) AS h,
                 (SELECT sum(events) FROM day_counts) AS d) AS sums",
        )?;
        if stored != options.summary_events || rolled_up != stored {
            bail!(
                "{stored} events stored and {rolled_up} rolled up, {} generated",
                options.summary_events
            );
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// Medians of the summary of `[start, end)` (RFC 3339, `None` open) in one connection and
    /// through the CLI; the total checked against a count of the events.
    fn time_window(
        &self,
        label: &str,
        start: Option<&str>,
        end: Option<&str>,
    ) -> anyhow::Result<SummaryTiming> {
        let output = self
            .bench_calls()
            .args([
                "summarize",
                &SUMMARY_RUNS.to_string(),
                start.unwrap_or("-"),
                end.unwrap_or("-"),
            ])
            .output()
            .context("cannot run orgtrail-bench-calls")?;
        if !output.status.success() {
            bail!(
                "summary {label} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let mut milliseconds = Vec::new();
        let (mut groups, mut events) = (0, 0);
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [time, line_groups, line_events] = fields[..] else {
                bail!("orgtrail-bench-calls printed {line:?}");
            };
            milliseconds.push(time.parse::<f64>()?);
            (groups, events) = (line_groups.parse()?, line_events.parse()?);
        }
        let condition = match (start, end) {
            (None, None) => "true".to_string(),
            (Some(start), None) => format!("event_time >= '{start}'"),
            (None, Some(end)) => format!("event_time < '{end}'"),
            (Some(start), Some(end)) => format!("event_time >= '{start}' AND event_time < '{end}'"),
        };
        let want = count(
            self.postgres,
            self.database,
            &format!("SELECT count(*) FROM events WHERE {condition}"),
        )?;
        if events != want {
            bail!("the summary of {label} counts {events} events, the events table {want}");
        }
        let mut cli = Vec::new();
        for _ in 0..CLI_SUMMARY_RUNS {
            let mut command = Security::Tls(self.pki).orgtrail(self.bin_dir, self.endpoint);
            command.args(["events", "summary"]);
            if let Some(start) = start {
                command.args(["--start", start]);
            }
            if let Some(end) = end {
                command.args(["--end", end]);
            }
            let started = Instant::now();
            let output = command
                .output()
                .context("cannot run orgtrail events summary")?;
            cli.push(started.elapsed().as_secs_f64() * 1000.0);
            if !output.status.success() {
                bail!(
                    "orgtrail events summary ({label}) failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
        Ok(SummaryTiming {
            label: label.to_string(),
            groups,
            events,
            in_connection: median(milliseconds),
            cli: median(cli),
        })
    }

    /// The month written by the release xtask, as events (rolled up with the rest).
    fn load_replay_month(&self, directory: &Path) -> anyhow::Result<()> {
        eprintln!("bench: the replayed account's month into PostgreSQL");
        let path = |name: &str| directory.join(name).to_string_lossy().into_owned();
        self.psql(
            "CREATE TABLE bench_replay_series (series integer, account_id text, aws_region text, event_source text, event_name text, kind text);
             CREATE TABLE bench_replay_counts (series integer, minute bigint, events integer);",
        )?;
        // A meta-command, alone in its psql call.
        self.psql(&format!(
            "\\copy bench_replay_series FROM '{}'",
            path("series.tsv")
        ))?;
        self.psql(&format!(
            "\\copy bench_replay_counts FROM '{}'",
            path("counts.tsv")
        ))?;
        // One event per count: a call-rate series' are write calls without an error, an
        // error series' are read-only calls with one — so that the rollups' series are exactly
        // the scenario's (a write call with an error would count in both).
        self.psql(
            "SET TIME ZONE 'UTC';
             INSERT INTO events (event_time, event_id, event_version, event_source, event_name, aws_region,
                 account_id, account_id_source, event_type, event_category, read_only, management_event,
                 user_type, user_arn, user_principal_id, user_account_id, access_key_id, invoked_by, username,
                 source_ip_address, user_agent, error_code, error_message, resource_types, resource_arns,
                 resource_account_ids, resource_names, shared_event_id, request_id, log_file_id, record, key_id)
             SELECT to_timestamp(c.minute * 60) + make_interval(secs => ((k * 7919) % 60000) / 1000.0),
                    gen_random_uuid(), t.event_version, s.event_source, s.event_name, s.aws_region,
                    s.account_id, 'recipientAccountId', 'AwsApiCall', 'Management', s.kind = 'e', true,
                    t.user_type, t.user_arn, t.user_principal_id, t.user_account_id, t.access_key_id,
                    t.invoked_by, t.username, t.source_ip_address, t.user_agent,
                    CASE WHEN s.kind = 'e' THEN 'AccessDenied' END, NULL, '{}', '{}', '{}', '{}', NULL,
                    t.request_id, t.log_file_id, convert_to('{}', 'UTF8'), NULL
             FROM bench_replay_counts AS c
             JOIN bench_replay_series AS s USING (series)
             CROSS JOIN generate_series(1, c.events) AS k
             JOIN bench_templates AS t ON t.n = (c.minute + k) % (SELECT count(*) FROM bench_templates);",
        )?;
        Ok(())
    }

    fn replay(&self, start: &str, end: &str) -> anyhow::Result<ReplayAnswer> {
        eprintln!("bench: ReplayInsights {start} → {end}");
        let output = self
            .bench_calls()
            .args(["replay", start, end])
            .output()
            .context("cannot run orgtrail-bench-calls")?;
        if !output.status.success() {
            bail!(
                "the replay failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [seconds, series, found, written] = fields[..] else {
            bail!("orgtrail-bench-calls printed {text:?}");
        };
        Ok(ReplayAnswer {
            seconds: seconds.parse()?,
            series: series.parse()?,
            found: found.parse()?,
            written: written.parse()?,
        })
    }

    fn bench_calls(&self) -> Command {
        let mut command = Command::new(self.bin_dir.join("orgtrail-bench-calls"));
        command
            .args(["--endpoint", self.endpoint])
            .args(self.pki.client_arguments("orgtrail-admin"));
        command
    }
}

/// `bench retention`'s generated rows without their records (an empty JSON object, in the
/// clear) or resources: 10 M sealed records do not fit on this machine's disk, and neither the
/// summary nor a replay reads them.
fn slim_rows(sql: &str) -> String {
    sql.replace(
        "t.resource_types, t.resource_arns, t.resource_account_ids,\n                t.resource_names,",
        "'{}', '{}', '{}', '{}',",
    )
    .replace("t.record, t.key_id", "convert_to('{}', 'UTF8'), NULL")
}

/// The migrations' statements that roll up the events stored before them
/// (`migrations/20261130000010_rollups.sql`, `…12_rollup_deltas.sql`, with the series of
/// `…13_rollup_minutes.sql`; the aggregator's `recount_rollups` over all time); the series the
/// aggregator made stay.
const FILL_ROLLUPS_SQL: &str = "INSERT INTO rollup_series (account_id, aws_region, event_category, event_source, event_name, access, error_code)
         SELECT DISTINCT coalesce(account_id, ''), coalesce(aws_region, ''), event_category,
                rollup_api(event_category, read_only, error_code, event_source),
                rollup_api(event_category, read_only, error_code, event_name),
                rollup_access(read_only), coalesce(error_code, '')
         FROM events
         ON CONFLICT DO NOTHING;
         INSERT INTO event_minutes (series_id, minute, events)
         SELECT s.series_id, date_trunc('minute', e.event_time, 'UTC'), count(*)
         FROM events AS e
         JOIN rollup_series AS s
           ON s.account_id = coalesce(e.account_id, '') AND s.aws_region = coalesce(e.aws_region, '')
          AND s.event_category = e.event_category
          AND s.event_source = rollup_api(e.event_category, e.read_only, e.error_code, e.event_source)
          AND s.event_name = rollup_api(e.event_category, e.read_only, e.error_code, e.event_name)
          AND s.access = rollup_access(e.read_only) AND s.error_code = coalesce(e.error_code, '')
         GROUP BY 1, 2;
         INSERT INTO event_hours (account_id, aws_region, event_category, hour, events)
         SELECT coalesce(account_id, ''), coalesce(aws_region, ''), event_category,
                date_trunc('hour', event_time, 'UTC'), count(*)
         FROM events
         GROUP BY 1, 2, 3, 4;
         INSERT INTO event_days (account_id, aws_region, event_category, day, events)
         SELECT account_id, aws_region, event_category, date_trunc('day', hour, 'UTC'), sum(events)
         FROM event_hours
         GROUP BY 1, 2, 3, 4;";

/// (label, start, end) of the windows timed, inside the generated days, which end in day
/// `today` (Unix days).
fn summary_windows(today: i64) -> Vec<(String, Option<String>, Option<String>)> {
    let day = |days_ago: i64| (today - days_ago) as u64 * 86_400_000;
    let at = |days_ago: i64, hours: u64, minutes: u64, milliseconds: u64| {
        Some(rfc3339_millis(
            day(days_ago) + (hours * 3600 + minutes * 60) * 1000 + milliseconds,
        ))
    };
    vec![
        ("everything (no start, no end)".to_string(), None, None),
        (
            "one day, midnight to midnight".to_string(),
            at(10, 0, 0, 0),
            at(9, 0, 0, 0),
        ),
        (
            "17 days, odd edges (07:13:27.250 to 16:41:09.500)".to_string(),
            at(20, 7, 13, 27_250),
            at(3, 16, 41, 9_500),
        ),
        (
            "45 minutes within one hour (10:02:03.500 to 10:47:59)".to_string(),
            at(5, 10, 2, 3_500),
            at(5, 10, 47, 59_000),
        ),
        (
            "open end, from 21:00 before the last day (and the month after)".to_string(),
            Some(rfc3339_millis(today as u64 * 86_400_000 - 3 * 3_600_000)),
            None,
        ),
    ]
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339_millis(unix_milliseconds: u64) -> String {
    let whole = format_time(unix_milliseconds / 1000);
    format!(
        "{}.{:03}Z",
        whole.trim_end_matches('Z'),
        unix_milliseconds % 1000
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn met(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "missed"
    }
}

fn parse_options(arguments: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        seeds: "300..305".to_string(),
        ingest_events: 300_000,
        ingest_rounds: 1,
        summary_events: 10_000_000,
        summary_days: 60,
        replay_days: 30,
        skip: String::new(),
    };
    let mut arguments = arguments.iter();
    while let Some(flag) = arguments.next() {
        let value = arguments
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let number = || -> anyhow::Result<u64> {
            value
                .parse()
                .with_context(|| format!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--seeds" => options.seeds = value.clone(),
            "--ingest-events" => options.ingest_events = number()? as usize,
            "--ingest-rounds" => options.ingest_rounds = number()? as usize,
            "--summary-events" => options.summary_events = number()?,
            "--summary-days" => options.summary_days = number()?,
            "--replay-days" => options.replay_days = number()? as u32,
            "--skip" => options.skip = value.clone(),
            _ => bail!("unknown option {flag}: use --seeds 300..305 (or 1,2,3), --ingest-events N, --ingest-rounds R, --summary-events N, --summary-days D, --replay-days D, --skip ingest,database"),
        }
    }
    if options.ingest_events == 0
        || options.ingest_rounds == 0
        || options.summary_events == 0
        || options.replay_days == 0
    {
        bail!(
            "--ingest-events, --ingest-rounds, --summary-events and --replay-days must be positive"
        );
    }
    // The replayed month and its week of history lie inside the generated days' partitions.
    if options.summary_days < 21 {
        bail!("--summary-days must be at least 21 (the windows timed lie in them)");
    }
    Ok(options)
}

fn parse_in_release(arguments: &[String]) -> anyhow::Result<InReleaseOptions> {
    let value = |flag: &str| -> anyhow::Result<&String> {
        let position = arguments
            .iter()
            .position(|argument| argument == flag)
            .with_context(|| format!("{flag} is required"))?;
        arguments
            .get(position + 1)
            .with_context(|| format!("{flag} needs a value"))
    };
    Ok(InReleaseOptions {
        seeds: parse_seeds(value("--seeds")?)?,
        replay_out: value("--replay-out")?.into(),
        replay_first_day: value("--replay-first-day")?.parse()?,
        replay_days: value("--replay-days")?.parse()?,
    })
}
