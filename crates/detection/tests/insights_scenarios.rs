//! The Insights model against generated scenarios built from the real sample records
//! (`data/cloudtrail/`): each account's APIs, their shares, error shares and hours, scaled to a
//! background of four weeks (`insights::scenario::shapes_from_records` says how), with call-rate
//! bursts on write APIs and error bursts injected at known minutes. Detection runs as the
//! aggregator runs it: day after day, each day a window of settled minutes, the series' day
//! baselines kept between windows. Every burst must be found with its Start within 2 minutes
//! and its End within 5 minutes of the truth, and the clean background must raise at most one
//! Insight per account per week — on several seeds, with the model's defaults (which were
//! chosen on principle in docs/insights.md, not fitted to these seeds).
//!
//! Then the edge cases: 0 → 2 calls is not an Insight, too little history raises nothing, an
//! Insight over midnight is one Insight, and evaluating live in chunks equals a replay.

// Shared with the CIS and Sigma tests; this one reads the records only, not their keys.
#[allow(dead_code)]
mod sample_records;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use orgtrail_detection::insights::scenario::{
    detect_day_by_day, generate_scenario, score_scenario, shapes_from_records, BackgroundScaling,
    Scenario, ScenarioSpec, SeriesShape, Tolerance,
};
use orgtrail_detection::insights::{
    detect_episodes_with, DayBaselines, Episode, InsightModel, InsightType, MinuteCounts,
    MINUTES_PER_DAY,
};

use sample_records::read_sample_data;

/// The seeds every scenario test runs on. None was used to choose the model's settings.
const SEEDS: [u64; 3] = [1, 2024, 0x5eed_cafe];
/// Issue 14's target for the clean background.
const MAX_FALSE_INSIGHTS_PER_ACCOUNT_WEEK: f64 = 1.0;

fn shapes() -> &'static [SeriesShape] {
    static SHAPES: OnceLock<Vec<SeriesShape>> = OnceLock::new();
    SHAPES.get_or_init(|| {
        let data = read_sample_data();
        shapes_from_records(
            data.records.iter().map(|sample| &sample.record),
            &BackgroundScaling::default(),
        )
    })
}

fn spec(seed: u64) -> ScenarioSpec {
    ScenarioSpec {
        seed,
        ..ScenarioSpec::default()
    }
}

/// Generates the scenario of `seed`, detects, scores, prints, and checks issue 14's targets.
fn every_burst_is_found_on_time_and_the_clean_background_stays_quiet(seed: u64) {
    let shapes = shapes();
    let model = InsightModel::default();
    let accounts: BTreeSet<&str> = shapes
        .iter()
        .map(|shape| shape.series.recipient_account_id.as_str())
        .collect();
    let spec = spec(seed);
    let scenario = generate_scenario(shapes, &spec);
    let detected = detect_day_by_day(&scenario, &scenario.counts, &model);
    let score = score_scenario(&scenario, &detected, Tolerance::default());
    let clean = detect_day_by_day(&scenario, &scenario.background, &model);
    let evaluated_weeks = f64::from(spec.days - model.min_history_days) / 7.0;
    let per_account_week = clean.len() as f64 / (accounts.len() as f64 * evaluated_weeks);
    let call_rate_series = shapes
        .iter()
        .filter(|shape| shape.series.insight_type == InsightType::ApiCallRate)
        .count();
    println!(
        "seed {seed}: {} series ({call_rate_series} call-rate) in {} accounts, {} days; \
         {} bursts: recall {:.3}, precision {:.3} ({} Insights, {} false); clean background: \
         {} Insights over {evaluated_weeks:.1} weeks = {per_account_week:.3} per account per week",
        shapes.len(),
        accounts.len(),
        spec.days,
        score.bursts.len(),
        score.recall(),
        score.precision(),
        score.insights,
        score.false_insights.len(),
        clean.len(),
    );
    let mut clean_by_account: BTreeMap<&str, usize> = BTreeMap::new();
    for insight in &clean {
        *clean_by_account
            .entry(
                scenario.series[insight.series]
                    .recipient_account_id
                    .as_str(),
            )
            .or_insert(0) += 1;
    }
    if let Some((account, most)) = clean_by_account.iter().max_by_key(|(_, count)| **count) {
        println!(
            "  the noisiest account, {account}: {most} Insights on the clean background = {:.2} a week",
            *most as f64 / evaluated_weeks
        );
    }
    let largest_error =
        |error: fn(&orgtrail_detection::insights::scenario::BurstOutcome) -> Option<i64>| {
            score
                .bursts
                .iter()
                .filter_map(error)
                .map(i64::abs)
                .max()
                .unwrap_or(0)
        };
    println!(
        "  largest |start error| {} min, largest |end error| {} min",
        largest_error(|outcome| outcome.start_error),
        largest_error(|outcome| outcome.end_error),
    );
    for outcome in score.missed() {
        let burst = &scenario.bursts[outcome.burst];
        println!(
            "  missed: {:?} from {} for {} min, {:.1} extra a minute: start error {:?}, end error {:?}",
            scenario.series[burst.series],
            burst.start_minute,
            burst.end_minute - burst.start_minute,
            burst.extra_per_minute,
            outcome.start_error,
            outcome.end_error
        );
    }
    for insight in &clean {
        println!(
            "  on the clean background: {:?} {:?}",
            scenario.series[insight.series], insight.episode
        );
    }
    assert_eq!(score.recall(), 1.0, "seed {seed}");
    assert!(
        per_account_week <= MAX_FALSE_INSIGHTS_PER_ACCOUNT_WEEK,
        "seed {seed}: {per_account_week} false Insights per account per week"
    );
}

#[test]
fn scenario_of_seed_1() {
    every_burst_is_found_on_time_and_the_clean_background_stays_quiet(SEEDS[0]);
}

#[test]
fn scenario_of_seed_2024() {
    every_burst_is_found_on_time_and_the_clean_background_stays_quiet(SEEDS[1]);
}

#[test]
fn scenario_of_seed_5eedcafe() {
    every_burst_is_found_on_time_and_the_clean_background_stays_quiet(SEEDS[2]);
}

/// Seeds 100–109, held out while the model was built (docs/insights.md gives their figures):
/// `cargo test --release -p orgtrail-detection --test insights_scenarios -- --ignored`.
#[test]
#[ignore = "ten more scenarios: a minute in release, several in debug"]
fn scenarios_of_ten_held_out_seeds() {
    for seed in 100..110 {
        every_burst_is_found_on_time_and_the_clean_background_stays_quiet(seed);
    }
}

/// A scenario over the shapes of the busiest account only (quick), with `spec`'s bursts.
fn busiest_account_scenario(spec: &ScenarioSpec) -> Scenario {
    let shapes = shapes();
    let mut records_by_account: BTreeMap<&str, f64> = BTreeMap::new();
    for shape in shapes {
        *records_by_account
            .entry(shape.series.recipient_account_id.as_str())
            .or_insert(0.0) += shape.per_day;
    }
    let busiest = records_by_account
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(account, _)| *account)
        .expect("the samples have accounts");
    let account_shapes: Vec<SeriesShape> = shapes
        .iter()
        .filter(|shape| shape.series.recipient_account_id == busiest)
        .cloned()
        .collect();
    generate_scenario(&account_shapes, spec)
}

/// The Insights of one series over the whole scenario, evaluated all at once.
fn episodes_at_once(
    scenario: &Scenario,
    counts: &MinuteCounts,
    model: &InsightModel,
) -> Vec<Episode> {
    detect_episodes_with(
        counts,
        scenario.history_from,
        scenario.minutes.clone(),
        model,
        &mut DayBaselines::new(),
    )
}

#[test]
fn a_quiet_api_going_to_two_calls_a_minute_is_not_an_insight() {
    let scenario = busiest_account_scenario(&ScenarioSpec {
        call_rate_bursts: 0,
        error_rate_bursts: 0,
        ..spec(7)
    });
    let model = InsightModel::default();
    // The quietest write API of the account: 2 calls every minute for an hour, ten days in.
    let (quietest, counts) = scenario
        .background
        .iter()
        .enumerate()
        .filter(|(index, _)| scenario.series[*index].insight_type == InsightType::ApiCallRate)
        .min_by_key(|(_, counts)| counts.values().sum::<u64>())
        .expect("the account has write APIs");
    let start = scenario.minutes.start + 10 * MINUTES_PER_DAY + 600;
    let mut raised = counts.clone();
    for minute in start..start + 60 {
        *raised.entry(minute).or_insert(0) += 2;
    }
    let overlapping: Vec<Episode> = episodes_at_once(&scenario, &raised, &model)
        .into_iter()
        .filter(|episode| episode.start_minute < start + 60 && episode.end_minute > start)
        .collect();
    assert_eq!(overlapping, [], "{:?}", scenario.series[quietest]);
}

#[test]
fn bursts_before_the_minimum_history_raise_nothing() {
    let model = InsightModel::default();
    let scenario = busiest_account_scenario(&ScenarioSpec {
        days: model.min_history_days,
        burst_free_days: 0,
        call_rate_bursts: 5,
        error_rate_bursts: 5,
        ..spec(11)
    });
    assert_eq!(scenario.bursts.len(), 10);
    let detected = detect_day_by_day(&scenario, &scenario.counts, &model);
    assert_eq!(detected, []);
}

#[test]
fn a_burst_over_midnight_is_one_insight_on_time() {
    let model = InsightModel::default();
    let scenario = busiest_account_scenario(&ScenarioSpec {
        call_rate_bursts: 0,
        error_rate_bursts: 0,
        ..spec(13)
    });
    // The busiest write API: 40 minutes from 23:40 on day 12, at four times its busiest rate.
    let (busiest, background) = scenario
        .background
        .iter()
        .enumerate()
        .filter(|(index, _)| scenario.series[*index].insight_type == InsightType::ApiCallRate)
        .max_by_key(|(_, counts)| counts.values().sum::<u64>())
        .expect("the account has write APIs");
    let peak_per_minute = background.values().copied().max().unwrap_or(0);
    let start = scenario.minutes.start + 13 * MINUTES_PER_DAY - 20;
    let mut counts = background.clone();
    for minute in start..start + 40 {
        *counts.entry(minute).or_insert(0) += 4 * peak_per_minute.max(10);
    }
    let mut with_burst = scenario.clone();
    with_burst.counts[busiest] = counts;
    let found: Vec<Episode> = detect_day_by_day(&with_burst, &with_burst.counts, &model)
        .into_iter()
        .filter(|insight| insight.series == busiest)
        .map(|insight| insight.episode)
        .filter(|episode| episode.start_minute < start + 40 && episode.end_minute > start)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!((found[0].start_minute - start).abs() <= 2, "{found:?}");
    assert!((found[0].end_minute - (start + 40)).abs() <= 5, "{found:?}");
    assert!(found[0].closed);
}

#[test]
fn evaluating_live_in_chunks_equals_evaluating_at_once() {
    let model = InsightModel::default();
    let scenario = busiest_account_scenario(&spec(17));
    let burst_series: BTreeSet<usize> = scenario.bursts.iter().map(|burst| burst.series).collect();
    // Day by day, as in the scenario tests.
    let day_by_day = detect_day_by_day(&scenario, &scenario.counts, &model);
    for &series in &burst_series {
        let counts = &scenario.counts[series];
        let at_once = episodes_at_once(&scenario, counts, &model);
        let of_series: Vec<Episode> = day_by_day
            .iter()
            .filter(|insight| insight.series == series)
            .map(|insight| insight.episode.clone())
            .collect();
        assert_eq!(of_series, at_once);
        // In uneven chunks of 7 to 97 minutes, settled one after the other.
        let mut by_start: BTreeMap<i64, Episode> = BTreeMap::new();
        let mut baselines = DayBaselines::new();
        let mut start = scenario.minutes.start;
        let mut length = 7;
        while start < scenario.minutes.end {
            let end = (start + length).min(scenario.minutes.end);
            for episode in detect_episodes_with(
                counts,
                scenario.history_from,
                start..end,
                &model,
                &mut baselines,
            ) {
                by_start.insert(episode.start_minute, episode);
            }
            start = end;
            length = length * 7 % 97 + 7;
        }
        assert_eq!(by_start.into_values().collect::<Vec<_>>(), at_once);
    }
}
