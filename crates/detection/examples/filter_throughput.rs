//! How fast the CIS metric filters evaluate records: loads every sample record of
//! `data/cloudtrail/` once into a `serde_json::Value` (as the aggregator will), then evaluates
//! each of the 15 CIS filters alone, and all 15 together, over them again and again, printing
//! records per second.
//!
//! The ~9,400 records take tens of megabytes as `Value`s, so each pass finds them out of the
//! CPU's caches: these figures are the cold case. The last line repeats all 15 over the first
//! 256 records only, which stay cached — closer to the aggregator's case, where the filters
//! run on a record just parsed.
//!
//! `cargo run --release -p orgtrail-detection --example filter_throughput [SECONDS]` — SECONDS
//! (default 2) is the time spent on all 15 together; each filter alone gets a quarter of it.
//! The time is spent in 5 rounds and the fastest round is reported: on a shared machine the
//! slower rounds measure the neighbours.

#[path = "../tests/sample_records/mod.rs"]
#[allow(dead_code)]
mod sample_records;

use std::hint::black_box;
use std::time::{Duration, Instant};

use orgtrail_detection::{cis_metric_filters, FilterPattern};
use serde_json::Value;

struct Measurement {
    records_per_second: f64,
    nanoseconds_per_record: f64,
    matches_per_pass: usize,
}

const ROUNDS: u32 = 5;

/// The fastest of `ROUNDS` rounds of `measure_round`, sharing `budget`.
fn measure(filters: &[&FilterPattern], records: &[Value], budget: Duration) -> Measurement {
    let mut best: Option<Measurement> = None;
    for _ in 0..ROUNDS {
        let round = measure_round(filters, records, budget / ROUNDS);
        if best
            .as_ref()
            .is_none_or(|best| round.records_per_second > best.records_per_second)
        {
            best = Some(round);
        }
    }
    best.unwrap_or_else(|| measure_round(filters, records, budget))
}

/// Evaluates `filters` on every record, pass after pass, until `budget` has elapsed.
fn measure_round(filters: &[&FilterPattern], records: &[Value], budget: Duration) -> Measurement {
    let started = Instant::now();
    let mut passes = 0usize;
    let mut matches = 0usize;
    while passes == 0 || started.elapsed() < budget {
        for record in records {
            for filter in filters {
                if black_box(filter).matches(black_box(record)) {
                    matches += 1;
                }
            }
        }
        passes += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let evaluated = (passes * records.len()) as f64;
    Measurement {
        records_per_second: evaluated / seconds,
        nanoseconds_per_record: seconds * 1e9 / evaluated,
        matches_per_pass: matches / passes,
    }
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|argument| argument.parse().ok())
        .unwrap_or(2.0);
    let together_budget = Duration::from_secs_f64(seconds);
    let alone_budget = together_budget / 4;

    let loading = Instant::now();
    let data = sample_records::read_sample_data();
    let records: Vec<Value> = data
        .records
        .into_iter()
        .map(|sample| sample.record)
        .collect();
    println!(
        "{} records from {} files, read and parsed once in {:.2} s",
        records.len(),
        data.files,
        loading.elapsed().as_secs_f64()
    );

    let filters: Vec<(&str, FilterPattern)> = cis_metric_filters()
        .iter()
        .map(|filter| {
            let pattern = FilterPattern::parse(filter.pattern)
                .unwrap_or_else(|error| panic!("CIS {} does not parse: {error}", filter.id));
            (filter.id, pattern)
        })
        .collect();

    println!(
        "{:>6}  {:>14}  {:>10}  {:>7}",
        "filter", "records/s", "ns/record", "matches"
    );
    for (id, pattern) in &filters {
        let measurement = measure(&[pattern], &records, alone_budget);
        println!(
            "{id:>6}  {:>14.0}  {:>10.1}  {:>7}",
            measurement.records_per_second,
            measurement.nanoseconds_per_record,
            measurement.matches_per_pass
        );
    }
    let all: Vec<&FilterPattern> = filters.iter().map(|(_, pattern)| pattern).collect();
    let together = measure(&all, &records, together_budget);
    println!(
        "{:>6}  {:>14.0}  {:>10.1}  {:>7}   (all 15 on each record; {:.0} evaluations/s)",
        "all",
        together.records_per_second,
        together.nanoseconds_per_record,
        together.matches_per_pass,
        together.records_per_second * all.len() as f64
    );
    let cached = &records[..records.len().min(CACHED_RECORDS)];
    let warm = measure(&all, cached, alone_budget);
    println!(
        "{:>6}  {:>14.0}  {:>10.1}  {:>7}   (all 15, the first {} records, cached)",
        "warm",
        warm.records_per_second,
        warm.nanoseconds_per_record,
        warm.matches_per_pass,
        cached.len()
    );
}

/// Few enough records to stay in the CPU's caches between passes.
const CACHED_RECORDS: usize = 256;
