//! `orgtrail-bench-sql`: the archive side of `cargo xtask bench sql`. Writes N events, made
//! from the sample records' shapes, as the archive writes them (one zstd Parquet object per
//! account, region and hour, in the archive's layout) into a directory, then times queries over
//! them through `orgtrail-sql`'s engine — what the aggregator runs once the objects are in its
//! cache — and prints each query's time, rows and bytes read from the objects.
//!
//! ```text
//! orgtrail-bench-sql --directory DIR --events N [--metadata-cache-mb MB]
//! ```
//!
//! Prints `<label>\t<first ms>\t<second ms>\t<rows>\t<bytes read>\t<objects opened>` per
//! query (run twice: the second finds the objects' footers in the engine's cache), after
//! `objects\t<count>\t<bytes>\t<events>`.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Duration, TimeZone, Utc};
use orgtrail_archive::{encode_parquet, partition_events, ArchiveEvent, ObjectKey};
use orgtrail_sql::{
    archive_files_under, ArchiveFile, EventSources, QueryScope, SqlEngine, SqlLimits,
};

/// The aggregator's allocator, so the engine is timed as it runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The accounts, regions and days the events spread over.
const ACCOUNTS: u64 = 10;
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const DAYS: i64 = 45;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| orgtrail_tests::flag_value(&arguments, flag);
    let directory = PathBuf::from(value("--directory")?);
    let events: u64 = value("--events")?.parse().context("--events is a number")?;
    // Version 2 of the layout: with each object's principals beside the objects.
    let marker = directory.join(format!("complete-v2-{events}"));
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&directory);
        write_archive(&directory, events)?;
        std::fs::write(&marker, b"")?;
    }
    let principals = read_principals(&directory)?;
    let files: Vec<ArchiveFile> = archive_files_under(&directory)?
        .into_iter()
        .map(|file| match principals.get(&file.path) {
            Some(arns) => file.with_principals(arns.iter().cloned()),
            None => file,
        })
        .collect();
    let bytes: u64 = files
        .iter()
        .map(|file| {
            std::fs::metadata(&file.path)
                .map(|metadata| metadata.len())
                .unwrap_or(0)
        })
        .sum();
    println!("objects\t{}\t{bytes}\t{events}", files.len());

    let metadata_cache_mb: usize =
        match orgtrail_tests::flag_value(&arguments, "--metadata-cache-mb") {
            Ok(value) => value.parse().context("--metadata-cache-mb is a number")?,
            Err(_) => orgtrail_sql::engine::DEFAULT_METADATA_CACHE_BYTES >> 20,
        };
    let engine = SqlEngine::with_metadata_cache(
        SqlLimits {
            max_rows: 1_000_000,
            max_memory_bytes: 2 << 30,
            timeout: std::time::Duration::from_secs(600),
            ..SqlLimits::default()
        },
        metadata_cache_mb << 20,
    );
    let sources = EventSources {
        archive_files: files,
        recent: Vec::new(),
        fetcher: None,
    };
    let first_day = start();
    let month_start = first_day + Duration::days(DAYS - 31);
    let principal = format!(
        "arn:aws:iam::{:012}:user/bench-user-7",
        100_000_000_000u64 + 7
    );
    let queries = [
        (
            "count by event name, everything",
            "SELECT eventname, count(*) FROM events GROUP BY eventname".to_string(),
        ),
        (
            "one principal over a month",
            format!(
                "SELECT eventtime, eventname, sourceipaddress FROM events \
                 WHERE useridentity.arn = '{principal}' \
                 AND eventtime >= TIMESTAMP '{}' AND eventtime < TIMESTAMP '{}'",
                month_start.format("%Y-%m-%d %H:%M:%S"),
                (month_start + Duration::days(30)).format("%Y-%m-%d %H:%M:%S")
            ),
        ),
        (
            "one account's errors by code, one week",
            format!(
                "SELECT errorcode, count(*) FROM events WHERE recipientaccountid = '{:012}' \
                 AND errorcode IS NOT NULL AND eventtime >= TIMESTAMP '{}' \
                 AND eventtime < TIMESTAMP '{}' GROUP BY errorcode",
                100_000_000_000u64 + 3,
                month_start.format("%Y-%m-%d %H:%M:%S"),
                (month_start + Duration::days(7)).format("%Y-%m-%d %H:%M:%S")
            ),
        ),
    ];
    // Each query twice: first with no footer in the engine's cache (as after a restart), then
    // as a running aggregator answers it. The objects are in the page cache both times.
    for (label, sql) in queries {
        let mut milliseconds = Vec::new();
        let mut last = None;
        for _ in 0..2 {
            let started = Instant::now();
            let result = engine
                .query(&sql, &sources, &QueryScope::default())
                .await
                .with_context(|| format!("{label}: {sql}"))?;
            milliseconds.push(started.elapsed().as_secs_f64() * 1000.0);
            last = Some(result);
        }
        let result = last.context("ran twice")?;
        println!(
            "{label}\t{:.0}\t{:.0}\t{}\t{}\t{}",
            milliseconds[0],
            milliseconds[1],
            result.rows,
            result.bytes_scanned,
            result.objects_scanned
        );
    }
    Ok(())
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// The sample events, each made into `events / samples` copies spread over accounts, regions
/// and days, written hour by hour.
/// Beside the objects: each object's path and its principals, tab-separated, a line each.
const PRINCIPALS_FILE: &str = "principals.tsv";

fn read_principals(directory: &Path) -> anyhow::Result<HashMap<PathBuf, Vec<String>>> {
    let text = std::fs::read_to_string(directory.join(PRINCIPALS_FILE))
        .context("the principals beside the objects")?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let path = PathBuf::from(fields.next()?);
            Some((path, fields.map(str::to_string).collect()))
        })
        .collect())
}

fn write_archive(directory: &Path, events: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(directory)?;
    let mut principals =
        std::io::BufWriter::new(std::fs::File::create(directory.join(PRINCIPALS_FILE))?);
    let samples = sample_events()?;
    anyhow::ensure!(!samples.is_empty(), "no sample events");
    let hours = (DAYS * 24) as u64;
    let per_hour = events.div_ceil(hours);
    let mut written = 0u64;
    for hour in 0..hours {
        let hour_start = start() + Duration::hours(hour as i64);
        let mut batch = Vec::with_capacity(per_hour as usize);
        for index in 0..per_hour.min(events - written) {
            let number = written + index;
            let sample = &samples[(number as usize) % samples.len()];
            let mut event = sample.clone();
            event.event_id = format!(
                "{:08x}-0000-4000-8000-{:012x}",
                number >> 48,
                number & 0xffff_ffff_ffff
            );
            event.event_time =
                hour_start + Duration::milliseconds(((number * 7919) % 3_600_000) as i64);
            let account = 100_000_000_000u64 + (number * 31) % ACCOUNTS;
            event.account_id = Some(format!("{account:012}"));
            event.aws_region = Some(REGIONS[(number as usize / 7) % REGIONS.len()].to_string());
            event.user_arn = Some(format!(
                "arn:aws:iam::{account:012}:user/bench-user-{}",
                number % 13
            ));
            batch.push(event);
        }
        written += batch.len() as u64;
        for (partition, events) in partition_events(batch) {
            let key = ObjectKey::next_for("orgtrail", partition, std::iter::empty())
                .context("an object key")?
                .to_string();
            let path = directory.join(key);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, encode_parquet(&events)?)?;
            // The principals, as the archiver records them with each object.
            let arns: BTreeSet<&str> = events
                .iter()
                .filter_map(|event| event.user_arn.as_deref())
                .collect();
            writeln!(
                principals,
                "{}\t{}",
                path.display(),
                arns.into_iter().collect::<Vec<_>>().join("\t")
            )?;
        }
        if written >= events {
            break;
        }
    }
    principals.flush()?;
    Ok(())
}

/// The sample records as archive events.
fn sample_events() -> anyhow::Result<Vec<ArchiveEvent>> {
    let mut events = Vec::new();
    for file in orgtrail_tests::samples::sample_files() {
        for record in &file.records {
            let Ok(event) = orgtrail_domain::parse_record(record.clone(), None) else {
                continue;
            };
            if let Ok(event) = ArchiveEvent::from_cloudtrail_event(&event) {
                events.push(event);
            }
        }
    }
    Ok(events)
}
