//! `cargo xtask bench sql [--events N] [--metadata-cache-mb MB]`: SQL over the archive at
//! scale. `orgtrail-bench-sql` (release, with the binaries) writes N events (10 M by default,
//! from the sample records' shapes, over 10 accounts, 2 regions and 45 days: ~21,600 objects of
//! ~460 events) as the archive writes them — one zstd Parquet object per account, region and
//! hour, with the principals the archiver records for each — into `target/bench/sql-N` (kept
//! for the next run), then times queries through orgtrail's engine over those objects, as the
//! aggregator runs them once the objects are in its cache: a count by event name over
//! everything (target < 2 s), one principal over a month (target < 300 ms), and one account's
//! errors over a week, each with the bytes it read and the objects it opened.

use std::process::Command;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context};

use crate::check_interrupted;
use crate::processes::{build_binaries, Profile};
use crate::workspace_root;

const TARGETS_MILLISECONDS: [(&str, f64); 2] = [
    ("count by event name, everything", 2000.0),
    ("one principal over a month", 300.0),
];

pub fn bench_sql(arguments: &[String], interrupted: &AtomicBool) -> anyhow::Result<()> {
    let mut events: u64 = 10_000_000;
    let mut metadata_cache_mb: u64 = 0;
    let mut arguments = arguments.iter();
    while let Some(flag) = arguments.next() {
        match flag.as_str() {
            "--events" => {
                events = arguments
                    .next()
                    .context("--events needs a value")?
                    .parse()
                    .context("--events needs a number")?
            }
            "--metadata-cache-mb" => {
                metadata_cache_mb = arguments
                    .next()
                    .context("--metadata-cache-mb needs a value")?
                    .parse()
                    .context("--metadata-cache-mb needs a number")?
            }
            _ => bail!("unknown option {flag}: use --events N, --metadata-cache-mb MB"),
        }
    }
    let bin_dir = build_binaries(Profile::Release)?;
    check_interrupted(interrupted)?;
    let directory = workspace_root().join(format!("target/bench/sql-{events}"));
    eprintln!(
        "bench: {events} events as archive objects in {} (written once, kept)",
        directory.display()
    );
    let output = Command::new(bin_dir.join("orgtrail-bench-sql"))
        .arg("--directory")
        .arg(&directory)
        .args(["--events", &events.to_string()])
        .args(["--metadata-cache-mb", &metadata_cache_mb.to_string()])
        .output()
        .context("cannot run orgtrail-bench-sql")?;
    if !output.status.success() {
        bail!(
            "orgtrail-bench-sql failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("sql benchmark: orgtrail's engine (DataFusion) over archive objects on local disk");
    println!(
        "  footers kept between queries: {metadata_cache_mb} MiB (query.metadata_cache_mb); \
         first: the process's first run of the query; ms: the median of three more"
    );
    let mut missed = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields[..] {
            ["objects", count, bytes, events] => {
                let bytes: f64 = bytes.parse().unwrap_or(0.0);
                let events: f64 = events.parse().unwrap_or(1.0);
                println!(
                    "  {events:.0} events in {count} objects, {:.1} MB ({:.1} B/event)",
                    bytes / 1e6,
                    bytes / events
                );
                println!(
                    "  {:<40} {:>9} {:>9} {:>8} {:>12} {:>9}",
                    "query", "first ms", "ms", "rows", "bytes read", "objects"
                );
            }
            [label, first, milliseconds, rows, bytes, objects] => {
                println!(
                    "  {label:<40} {first:>9} {milliseconds:>9} {rows:>8} {bytes:>12} {objects:>9}"
                );
                if let Some((_, target)) =
                    TARGETS_MILLISECONDS.iter().find(|(name, _)| *name == label)
                {
                    if milliseconds.parse::<f64>().map_or(true, |ms| ms >= *target) {
                        missed.push(format!("{label} (target < {target} ms)"));
                    }
                }
            }
            _ => bail!("orgtrail-bench-sql printed {line:?}"),
        }
    }
    if missed.is_empty() {
        println!("  targets met");
    } else {
        println!("  targets missed: {}", missed.join("; "));
    }
    println!("  (Athena over raw trails: 40–90 s a query, as users report)");
    Ok(())
}
