//! How fast the built-in Sigma rules evaluate records: loads every sample record of
//! `data/cloudtrail/` once into a `serde_json::Value` (as the aggregator will), compiles the
//! built-in rules that pass `parse_sigma_rule` (56 of SigmaHQ's 57: AWS SAML Provider Deletion
//! Activity reads a field CloudTrail does not have) into one `SigmaRuleSet`, and asks it about
//! every record again and again, printing records per second. Then each rule alone, as a set of
//! one, and the 5 slowest with their time per record.
//!
//! The ~9,400 records take tens of megabytes as `Value`s, so each pass over all of them finds
//! them out of the CPU's caches, and a record's first lookups cost more than the matching: that
//! is the cold case. The warm figures repeat the work over the first 256 records only, which
//! stay cached — closer to the aggregator's case, where the rules run on a record just parsed;
//! the rules one by one are timed warm, since cold they all measure mostly the cache misses.
//!
//! `cargo run --release -p orgtrail-detection --example sigma_throughput [SECONDS]` — SECONDS
//! (default 2) is the time spent on the whole set (half cold, half warm), and again on the rules
//! one by one. The time
//! is spent in 5 rounds and the fastest round is reported: on a shared machine the slower rounds
//! measure the neighbours.

#[path = "../tests/sample_records/mod.rs"]
#[allow(dead_code)]
mod sample_records;

use std::hint::black_box;
use std::time::{Duration, Instant};

use orgtrail_detection::{builtin_sigma_rules, parse_sigma_rule, SigmaRule, SigmaRuleSet};
use serde_json::Value;

struct Measurement {
    records_per_second: f64,
    nanoseconds_per_record: f64,
    matches_per_pass: usize,
}

const ROUNDS: u32 = 5;
/// How many of the slowest rules to show.
const SLOWEST: usize = 5;

/// The fastest of `ROUNDS` rounds of `measure_round`, sharing `budget`.
fn measure(rule_set: &SigmaRuleSet, records: &[Value], budget: Duration) -> Measurement {
    let mut best: Option<Measurement> = None;
    for _ in 0..ROUNDS {
        let round = measure_round(rule_set, records, budget / ROUNDS);
        if best
            .as_ref()
            .is_none_or(|best| round.records_per_second > best.records_per_second)
        {
            best = Some(round);
        }
    }
    best.unwrap_or_else(|| measure_round(rule_set, records, budget))
}

/// Asks `rule_set` about every record, pass after pass, until `budget` has elapsed.
fn measure_round(rule_set: &SigmaRuleSet, records: &[Value], budget: Duration) -> Measurement {
    let started = Instant::now();
    let mut passes = 0usize;
    let mut matches = 0usize;
    while passes == 0 || started.elapsed() < budget {
        for record in records {
            matches += black_box(rule_set).matches(black_box(record)).len();
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
    let budget = Duration::from_secs_f64(seconds);

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

    let mut rules: Vec<SigmaRule> = Vec::new();
    for builtin in builtin_sigma_rules() {
        match parse_sigma_rule(builtin.yaml) {
            Ok(rule) => rules.push(rule),
            Err(error) => println!("not evaluated: {}: {error}", builtin.file_name),
        }
    }
    let compiling = Instant::now();
    let rule_set = SigmaRuleSet::compile(&rules)
        .unwrap_or_else(|error| panic!("the built-in rules do not compile: {error}"));
    println!(
        "{} of {} built-in rules compiled into one set in {:.1} ms",
        rule_set.len(),
        builtin_sigma_rules().len(),
        compiling.elapsed().as_secs_f64() * 1e3
    );

    let together = measure(&rule_set, &records, budget / 2);
    println!(
        "all {} rules, all records (cold): {:.0} records/s, {:.0} ns/record, {} matches per pass",
        rule_set.len(),
        together.records_per_second,
        together.nanoseconds_per_record,
        together.matches_per_pass
    );
    let cached = &records[..records.len().min(CACHED_RECORDS)];
    let warm = measure(&rule_set, cached, budget / 2);
    println!(
        "all {} rules, the first {} records (warm): {:.0} records/s, {:.0} ns/record, {} matches per pass",
        rule_set.len(),
        cached.len(),
        warm.records_per_second,
        warm.nanoseconds_per_record,
        warm.matches_per_pass
    );

    let alone_budget = budget / rules.len().max(1) as u32;
    let mut alone: Vec<(&SigmaRule, Measurement)> = rules
        .iter()
        .map(|rule| {
            let set = SigmaRuleSet::compile(std::slice::from_ref(rule))
                .unwrap_or_else(|error| panic!("{}: {error}", rule.title));
            (rule, measure(&set, cached, alone_budget))
        })
        .collect();
    alone.sort_by(|(_, a), (_, b)| {
        b.nanoseconds_per_record
            .total_cmp(&a.nanoseconds_per_record)
    });
    let sum: f64 = alone
        .iter()
        .map(|(_, measurement)| measurement.nanoseconds_per_record)
        .sum();
    println!(
        "each rule alone (a set of one), warm: {sum:.0} ns/record summed over the {} rules; the {SLOWEST} slowest:",
        alone.len()
    );
    println!(
        "{:>10}  {:>12}  {:>7}  rule",
        "ns/record", "records/s", "matches"
    );
    for (rule, measurement) in alone.iter().take(SLOWEST) {
        println!(
            "{:>10.1}  {:>12.0}  {:>7}  {} ({})",
            measurement.nanoseconds_per_record,
            measurement.records_per_second,
            measurement.matches_per_pass,
            rule.title,
            rule.level
        );
    }
}

/// Few enough records to stay in the CPU's caches between passes.
const CACHED_RECORDS: usize = 256;
