//! The in-process half of `cargo xtask bench insights`, run by the release xtask (the figures
//! must come from optimized code, and `cargo xtask` is a debug build):
//!
//! - precision and recall of `orgtrail_detection::insights` over the scenario generator's
//!   scenarios (`insights::scenario`: backgrounds shaped like the real samples, bursts injected
//!   at known minutes) on seeds that took no part in choosing the model (docs/insights.md lists
//!   1, 2024, 0x5eedcafe, 100–109 and 200–209 as seen), evaluated as the aggregator does — day
//!   after day, the day baselines kept — and scored with the scenario's own scoring: bursts
//!   found with Start and End on time, false Insights, and the clean background's false
//!   Insights per account-week;
//! - the month of one account for the replay: the scenario of the account with the most APIs,
//!   written as per-minute counts for PostgreSQL to turn into events, with the episodes the
//!   model finds in the replayed month in-process (what the aggregator's replay must find).
//!
//! `xtask bench insights --in-release --seeds 300,301 --replay-out DIR --replay-first-day N
//! --replay-days D`: prints the scenario table, writes `DIR/series.tsv`, `DIR/counts.tsv` and
//! `DIR/expected.txt`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use orgtrail_detection::insights::scenario::{
    detect_day_by_day, generate_scenario, score_scenario, shapes_from_records, BackgroundScaling,
    ScenarioSpec, SeriesShape, Tolerance,
};
use orgtrail_detection::insights::{
    detect_episodes_with, DayBaselines, InsightModel, InsightType, MINUTES_PER_DAY,
};
use serde_json::Value;

use crate::bench_data::collect_gz;
use crate::workspace_root;

/// The seed of the replayed account's month (not one of the scored seeds).
pub const REPLAY_SEED: u64 = 0x0e91_a7ed;

/// What the release xtask is asked.
pub struct InReleaseOptions {
    pub seeds: Vec<u64>,
    pub replay_out: std::path::PathBuf,
    pub replay_first_day: i64,
    pub replay_days: u32,
}

pub fn run_in_release(options: &InReleaseOptions) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        bail!("bench insights --in-release measures this very process: run the release xtask");
    }
    let shapes = sample_shapes()?;
    print_scenario_scores(&shapes, &options.seeds);
    write_replay_month(&shapes, options)
}

/// The series shapes of the real samples, as `tests/insights_scenarios.rs` makes them: every
/// record of every file under `data/cloudtrail/`.
fn sample_shapes() -> anyhow::Result<Vec<SeriesShape>> {
    let mut paths = Vec::new();
    collect_gz(&workspace_root().join("data/cloudtrail"), &mut paths)?;
    paths.sort();
    let mut records = Vec::new();
    for path in paths {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&path)?).read_to_string(&mut text)?;
        let file: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        if let Some(Value::Array(file_records)) = file.get("Records") {
            records.extend(file_records.iter().cloned());
        }
    }
    Ok(shapes_from_records(
        records.iter(),
        &BackgroundScaling::default(),
    ))
}

/// One line per seed and the pooled figures.
fn print_scenario_scores(shapes: &[SeriesShape], seeds: &[u64]) {
    let model = InsightModel::default();
    let accounts: BTreeSet<&str> = shapes
        .iter()
        .map(|shape| shape.series.recipient_account_id.as_str())
        .collect();
    let call_rate = shapes
        .iter()
        .filter(|shape| shape.series.insight_type == InsightType::ApiCallRate)
        .count();
    let spec = ScenarioSpec::default();
    let weeks = f64::from(spec.days - model.min_history_days) / 7.0;
    println!(
        "Insights model over generated scenarios ({} series, {call_rate} call-rate, in {} accounts; {} days each; {} call-rate and {} error bursts of {}–{} minutes; the model's defaults; seeds never used to choose it):",
        shapes.len(),
        accounts.len(),
        spec.days,
        spec.call_rate_bursts,
        spec.error_rate_bursts,
        spec.burst_minutes.start,
        spec.burst_minutes.end - 1
    );
    println!(
        "  {:>6} {:>14} {:>17} {:>9} {:>7} {:>10} {:>22} {:>18}",
        "seed",
        "recall on time",
        "max |Start|/|End|",
        "Insights",
        "false",
        "precision",
        "clean: per acct-week",
        "noisiest account"
    );
    let (mut bursts, mut on_time, mut insights, mut false_insights, mut clean_insights) =
        (0, 0, 0, 0, 0);
    let (mut worst_start, mut worst_end) = (0, 0);
    let started = Instant::now();
    for &seed in seeds {
        let spec = ScenarioSpec {
            seed,
            ..ScenarioSpec::default()
        };
        let scenario = generate_scenario(shapes, &spec);
        let detected = detect_day_by_day(&scenario, &scenario.counts, &model);
        let score = score_scenario(&scenario, &detected, Tolerance::default());
        let clean = detect_day_by_day(&scenario, &scenario.background, &model);
        let mut clean_by_account: BTreeMap<&str, usize> = BTreeMap::new();
        for insight in &clean {
            *clean_by_account
                .entry(
                    scenario.series[insight.series]
                        .recipient_account_id
                        .as_str(),
                )
                .or_default() += 1;
        }
        let noisiest = clean_by_account.values().max().copied().unwrap_or(0);
        let largest =
            |error: fn(&orgtrail_detection::insights::scenario::BurstOutcome) -> Option<i64>| {
                score
                    .bursts
                    .iter()
                    .filter_map(error)
                    .map(i64::abs)
                    .max()
                    .unwrap_or(0)
            };
        let (start_error, end_error) = (
            largest(|outcome| outcome.start_error),
            largest(|outcome| outcome.end_error),
        );
        println!(
            "  {seed:>6} {:>8.3} ({:>2}/{:>2}) {:>11} / {:<3} {:>9} {:>7} {:>10.3} {:>22.3} {:>11.1} / week",
            score.recall(),
            score.bursts.iter().filter(|outcome| outcome.on_time).count(),
            score.bursts.len(),
            format!("{start_error} min"),
            format!("{end_error}"),
            score.insights,
            score.false_insights.len(),
            score.precision(),
            clean.len() as f64 / (accounts.len() as f64 * weeks),
            noisiest as f64 / weeks,
        );
        for outcome in score.missed() {
            let burst = &scenario.bursts[outcome.burst];
            println!(
                "         missed: {:?} of {} min from minute {}: Start off by {:?}, End by {:?}",
                burst.insight_type,
                burst.end_minute - burst.start_minute,
                burst.start_minute,
                outcome.start_error,
                outcome.end_error
            );
        }
        bursts += score.bursts.len();
        on_time += score
            .bursts
            .iter()
            .filter(|outcome| outcome.on_time)
            .count();
        insights += score.insights;
        false_insights += score.false_insights.len();
        clean_insights += clean.len();
        worst_start = worst_start.max(start_error);
        worst_end = worst_end.max(end_error);
    }
    let seed_count = seeds.len().max(1) as f64;
    println!(
        "  {:>6} {:>8.3} ({on_time:>2}/{bursts:>2}) {:>11} / {:<3} {insights:>9} {false_insights:>7} {:>10.3} {:>22.3}",
        "all",
        on_time as f64 / bursts.max(1) as f64,
        format!("{worst_start} min"),
        format!("{worst_end}"),
        (insights - false_insights) as f64 / insights.max(1) as f64,
        clean_insights as f64 / (accounts.len() as f64 * weeks * seed_count),
    );
    println!(
        "  (recall: bursts whose Insight started within 2 min and ended within 5 min of the truth; precision counts the Insights overlapping no burst of their series; the clean background is the same series without bursts, over the {weeks:.0} weeks after the minimum history; target at most 1 false Insight per account-week; {:.1} s on one core)",
        started.elapsed().as_secs_f64()
    );
}

/// The month of the account with the most APIs, for the replay: its series, its per-minute
/// counts, and the episodes the model finds in the replayed days.
fn write_replay_month(shapes: &[SeriesShape], options: &InReleaseOptions) -> anyhow::Result<()> {
    let mut per_account: BTreeMap<&str, usize> = BTreeMap::new();
    for shape in shapes {
        *per_account
            .entry(shape.series.recipient_account_id.as_str())
            .or_default() += 1;
    }
    let account = per_account
        .iter()
        .max_by_key(|(_, series)| **series)
        .map(|(account, _)| account.to_string())
        .context("no shapes")?;
    let account_shapes: Vec<SeriesShape> = shapes
        .iter()
        .filter(|shape| shape.series.recipient_account_id == account)
        .cloned()
        .collect();
    let model = InsightModel::default();
    let spec = ScenarioSpec {
        seed: REPLAY_SEED,
        first_day: options.replay_first_day,
        days: model.min_history_days + options.replay_days,
        ..ScenarioSpec::default()
    };
    let scenario = generate_scenario(&account_shapes, &spec);
    let window_start =
        (options.replay_first_day + i64::from(model.min_history_days)) * MINUTES_PER_DAY;
    let window = window_start..scenario.minutes.end;
    let mut episodes = 0;
    for counts in &scenario.counts {
        let mut baselines = DayBaselines::new();
        episodes += detect_episodes_with(
            counts,
            scenario.history_from,
            window.clone(),
            &model,
            &mut baselines,
        )
        .len();
    }
    std::fs::create_dir_all(&options.replay_out)?;
    let mut series = BufWriter::new(std::fs::File::create(
        options.replay_out.join("series.tsv"),
    )?);
    for (index, shape) in account_shapes.iter().enumerate() {
        let kind = match shape.series.insight_type {
            InsightType::ApiCallRate => "c",
            InsightType::ApiErrorRate => "e",
        };
        writeln!(
            series,
            "{index}\t{}\t{}\t{}\t{}\t{kind}",
            shape.series.recipient_account_id,
            shape.series.aws_region,
            shape.series.event_source,
            shape.series.event_name
        )?;
    }
    series.flush()?;
    let mut counts_file = BufWriter::new(std::fs::File::create(
        options.replay_out.join("counts.tsv"),
    )?);
    let mut events: u64 = 0;
    for (index, counts) in scenario.counts.iter().enumerate() {
        for (minute, count) in counts {
            if *count > 0 {
                writeln!(counts_file, "{index}\t{minute}\t{count}")?;
                events += *count;
            }
        }
    }
    counts_file.flush()?;
    let regions: BTreeSet<&str> = account_shapes
        .iter()
        .map(|shape| shape.series.aws_region.as_str())
        .collect();
    let apis: BTreeSet<(&str, &str, &str)> = account_shapes
        .iter()
        .map(|shape| {
            (
                shape.series.aws_region.as_str(),
                shape.series.event_source.as_str(),
                shape.series.event_name.as_str(),
            )
        })
        .collect();
    let bursts_in_window = scenario
        .bursts
        .iter()
        .filter(|burst| burst.start_minute >= window.start)
        .count();
    std::fs::write(
        options.replay_out.join("expected.txt"),
        format!(
            "account {account}\nregions {}\napis {}\nseries {}\nevents {events}\nepisodes {episodes}\nbursts {bursts_in_window}\n",
            regions.len(),
            apis.len(),
            account_shapes.len(),
        ),
    )?;
    Ok(())
}

/// `300,301` or `300..305`.
pub fn parse_seeds(text: &str) -> anyhow::Result<Vec<u64>> {
    if let Some((from, to)) = text.split_once("..") {
        let (from, to): (u64, u64) = (from.parse()?, to.parse()?);
        return Ok((from..to).collect());
    }
    text.split(',')
        .map(|seed| {
            seed.trim()
                .parse()
                .with_context(|| format!("{seed:?} is not a seed"))
        })
        .collect()
}

/// Reads `key value` lines written by [`write_replay_month`].
pub fn read_expected(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect())
}
