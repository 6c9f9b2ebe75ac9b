//! `cargo xtask bench filters [--events N] [--records-per-file R]`: what the detections cost per
//! event on their own, over the ingest benchmark's generated events (the same N and R read the
//! very same records, `bench_data`): the one JSON parse an event pays whatever the number of
//! detectors (`serde_json::from_str::<Value>`, as `detection::FileDetections::observe` in the
//! aggregator does); the CIS alarms' metric filters, each of the 15 alone and all 15 together on
//! each event; then the built-in Sigma rules on the same parsed `Value`s (`bench_rules`), all in
//! one set and each alone; on one thread.
//!
//! The figures must come from optimized code, and `cargo xtask` is a debug build: this builds
//! the release xtask and hands it the measurement (`bench filters --data DIR --counts FILE`,
//! which measures in its own process, prints the tables and writes what the detectors matched
//! to FILE). `bench ingest` does the same with the binaries it builds anyway, prints the tables
//! after its own figures, and checks what the aggregator stored against FILE's counts.
//!
//! The events go through in batches of [`BATCH_RECORDS`], and each batch is measured
//! [`ROUNDS`] times per filter with the fastest round counted: on a shared machine the slower
//! rounds measure the neighbours. A batch's `Value`s stay in the CPU's caches between rounds,
//! as in the aggregator, where the detectors run on a record parsed just before.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use orgtrail_detection::{cis_metric_filters, CisMetricFilter, FilterPattern};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::bench_data::{collect_gz, generate_bench_data};
use crate::bench_rules::{SigmaCosts, SigmaCounts};
use crate::processes::build_release_xtask;

/// Events measured together.
const BATCH_RECORDS: usize = 256;
/// Rounds per batch and filter; the fastest counts.
pub const ROUNDS: usize = 3;

pub fn bench_filters(arguments: &[String], interrupted: &AtomicBool) -> anyhow::Result<()> {
    if let [data_flag, data, counts_flag, counts] = arguments {
        if data_flag == "--data" && counts_flag == "--counts" {
            return print_measurement(Path::new(data), Path::new(counts), interrupted);
        }
    }
    let mut events = 1_000_000;
    let mut records_per_file = 100;
    let mut arguments = arguments.iter();
    while let Some(flag) = arguments.next() {
        let value: usize = arguments
            .next()
            .with_context(|| format!("{flag} needs a value"))?
            .parse()
            .with_context(|| format!("{flag} needs a number"))?;
        match flag.as_str() {
            "--events" => events = value,
            "--records-per-file" => records_per_file = value,
            _ => bail!("unknown option {flag}: use --events N, --records-per-file R"),
        }
    }
    if events == 0 || records_per_file == 0 {
        bail!("--events and --records-per-file must be positive");
    }
    let bin_dir = build_release_xtask()?;
    let data = generate_bench_data(events, records_per_file, 0)?;
    let report = measure_detections_in_release(&bin_dir, &data)?;
    print!("{}", report.tables);
    Ok(())
}

/// The printed tables, and what the detectors matched: what the aggregator must have stored
/// after ingesting the same events.
pub struct DetectionBenchReport {
    pub tables: String,
    /// Matches of the 15 CIS filters together: the sum of the aggregator's `alarm_matches`.
    pub cis_matches: u64,
    /// The Sigma rules' matching events per rule: the aggregator's Sigma findings.
    pub sigma: SigmaCounts,
}

/// Measures the CIS filters and the Sigma rules over `data` in the release xtask of `bin_dir`.
pub fn measure_detections_in_release(
    bin_dir: &Path,
    data: &Path,
) -> anyhow::Result<DetectionBenchReport> {
    eprintln!(
        "bench: the CIS filters and the Sigma rules alone, one thread, over {}",
        data.display()
    );
    let counts_path = data.with_file_name("detection-counts.json");
    let _ = std::fs::remove_file(&counts_path);
    let output = Command::new(bin_dir.join("xtask"))
        .args(["bench", "filters", "--data"])
        .arg(data)
        .arg("--counts")
        .arg(&counts_path)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run the release xtask")?;
    if !output.status.success() {
        bail!("the detection benchmark failed ({})", output.status);
    }
    let tables = String::from_utf8(output.stdout).context("the detection tables are not UTF-8")?;
    let counts_text = std::fs::read_to_string(&counts_path)
        .with_context(|| format!("cannot read {}", counts_path.display()))?;
    let counts: Value = serde_json::from_str(&counts_text)
        .with_context(|| format!("{} is not JSON", counts_path.display()))?;
    let cis_matches = counts
        .get("cis_matches")
        .and_then(Value::as_u64)
        .with_context(|| format!("no cis_matches in {}", counts_path.display()))?;
    let sigma = SigmaCounts::from_json(counts.get("sigma").unwrap_or(&Value::Null))
        .with_context(|| format!("in {}", counts_path.display()))?;
    Ok(DetectionBenchReport {
        tables,
        cis_matches,
        sigma,
    })
}

/// One filter's share of the measurement.
struct FilterCost {
    filter: &'static CisMetricFilter,
    pattern: FilterPattern,
    time: Duration,
    matches: u64,
}

/// The whole measurement.
struct FilterCosts {
    records: u64,
    /// Parsing each record into a `Value` and dropping it.
    parse: Duration,
    alone: Vec<FilterCost>,
    /// Every filter on each record.
    together: Duration,
    together_matches: u64,
}

fn print_measurement(data: &Path, counts: &Path, interrupted: &AtomicBool) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        bail!("bench filters --data measures this very process: run the release xtask");
    }
    let (costs, sigma) = measure(data, interrupted)?;
    if costs.records == 0 {
        bail!("no records under {}", data.display());
    }
    let records = costs.records as f64;
    let rate = |time: Duration| records / time.as_secs_f64();
    let nanoseconds = |time: Duration| time.as_secs_f64() * 1e9 / records;
    println!(
        "CIS filters on their own: {} generated events, one thread, release; each event parsed once into a serde_json::Value",
        costs.records
    );
    println!(
        "  {:<10} {:>12} {:>10} {:>9}  title",
        "filter", "events/s", "ns/event", "matches"
    );
    for cost in &costs.alone {
        println!(
            "  {:<10} {:>12.0} {:>10.1} {:>9}  {}",
            cost.filter.id,
            rate(cost.time),
            nanoseconds(cost.time),
            cost.matches,
            cost.filter.title
        );
    }
    let filters = costs.alone.len();
    println!(
        "  {:<10} {:>12.0} {:>10.1} {:>9}  every event through all {filters}, as ingest does ({:.0} evaluations/s)",
        format!("all {filters}"),
        rate(costs.together),
        nanoseconds(costs.together),
        costs.together_matches,
        rate(costs.together) * filters as f64
    );
    println!(
        "  {:<10} {:>12.0} {:>10.1} {:>9}  serde_json::from_str::<Value> and drop: once per event, whatever the detectors",
        "JSON parse",
        rate(costs.parse),
        nanoseconds(costs.parse),
        ""
    );
    let per_event = costs.parse + costs.together;
    println!(
        "  per event with the CIS set on: parse {:.2} µs + {filters} filters {:.2} µs = {:.2} µs, {:.0} events/s on one core",
        nanoseconds(costs.parse) / 1000.0,
        nanoseconds(costs.together) / 1000.0,
        nanoseconds(per_event) / 1000.0,
        rate(per_event)
    );
    sigma.print();
    let everything = nanoseconds(per_event) + sigma.nanoseconds_per_record();
    println!(
        "  per event with everything on: parse {:.2} µs + {filters} filters {:.2} µs + {} Sigma rules {:.2} µs = {:.2} µs, {:.0} events/s on one core",
        nanoseconds(costs.parse) / 1000.0,
        nanoseconds(costs.together) / 1000.0,
        sigma.rules(),
        sigma.nanoseconds_per_record() / 1000.0,
        everything / 1000.0,
        1e9 / everything
    );
    let counts_json = serde_json::json!({
        "cis_matches": costs.together_matches,
        "sigma": sigma.counts().to_json(),
    });
    std::fs::write(counts, counts_json.to_string())
        .with_context(|| format!("cannot write {}", counts.display()))?;
    Ok(())
}

fn measure(data: &Path, interrupted: &AtomicBool) -> anyhow::Result<(FilterCosts, SigmaCosts)> {
    let mut costs = FilterCosts {
        records: 0,
        parse: Duration::ZERO,
        alone: Vec::new(),
        together: Duration::ZERO,
        together_matches: 0,
    };
    for filter in cis_metric_filters() {
        let pattern = FilterPattern::parse(filter.pattern)
            .with_context(|| format!("CIS {} does not parse", filter.id))?;
        costs.alone.push(FilterCost {
            filter,
            pattern,
            time: Duration::ZERO,
            matches: 0,
        });
    }
    let mut sigma = SigmaCosts::compile()?;
    let mut paths = Vec::new();
    collect_gz(data, &mut paths)?;
    paths.sort();
    let mut batch: Vec<String> = Vec::with_capacity(BATCH_RECORDS);
    for path in paths {
        if interrupted.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&path)?)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: HashMap<String, Vec<&RawValue>> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a CloudTrail log file", path.display()))?;
        for record in file.get("Records").into_iter().flatten() {
            batch.push(record.get().to_string());
            if batch.len() == BATCH_RECORDS {
                let records = costs.measure_batch(&batch)?;
                sigma.measure_batch(&records);
                batch.clear();
            }
        }
    }
    if !batch.is_empty() {
        let records = costs.measure_batch(&batch)?;
        sigma.measure_batch(&records);
    }
    Ok((costs, sigma))
}

impl FilterCosts {
    /// Measures one batch; returns its records parsed, for the Sigma rules.
    fn measure_batch(&mut self, texts: &[String]) -> anyhow::Result<Vec<Value>> {
        self.parse += fastest_round(|| {
            for text in texts {
                let _ = black_box(serde_json::from_str::<Value>(black_box(text)));
            }
        });
        let records = texts
            .iter()
            .map(|text| serde_json::from_str::<Value>(text))
            .collect::<Result<Vec<_>, _>>()
            .context("a generated record is not JSON")?;
        for cost in &mut self.alone {
            let mut matches = 0;
            cost.time += fastest_round(|| {
                matches = records
                    .iter()
                    .filter(|record| black_box(&cost.pattern).matches(black_box(record)))
                    .count();
            });
            cost.matches += matches as u64;
        }
        let patterns: Vec<&FilterPattern> = self.alone.iter().map(|cost| &cost.pattern).collect();
        let mut matches = 0;
        self.together += fastest_round(|| {
            matches = records
                .iter()
                .map(|record| {
                    patterns
                        .iter()
                        .filter(|pattern| black_box(pattern).matches(black_box(record)))
                        .count()
                })
                .sum();
        });
        self.together_matches += matches as u64;
        self.records += texts.len() as u64;
        Ok(records)
    }
}

/// The fastest of [`ROUNDS`] runs of `work`.
pub fn fastest_round(mut work: impl FnMut()) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}
