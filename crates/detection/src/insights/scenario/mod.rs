//! Generated scenarios for the Insights model: weeks of per-minute counts for many series, with
//! a daily and weekly shape and noise, and bursts of known start, length and size injected into
//! some of them — the truth an evaluation is scored against. Pure and seeded: the same shapes
//! and spec give the same scenario everywhere. Used by `tests/insights_scenarios.rs` and by
//! `cargo xtask bench insights`.
//!
//! `shapes` turns real records into series shapes (and says how the small samples are scaled);
//! `score` matches detected episodes to the injected bursts; `random` is the seeded generator.

mod random;
mod score;
mod shapes;

use std::collections::BTreeMap;
use std::ops::Range;

pub use random::Random;
pub use score::{
    detect_day_by_day, score_scenario, BurstOutcome, DetectedInsight, ScenarioScore, Tolerance,
};
pub use shapes::{shapes_from_records, BackgroundScaling};

use super::model::{InsightType, MINUTES_PER_DAY};
use super::record::InsightSeries;
use super::MinuteCounts;

/// How one series behaves in the background.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesShape {
    pub series: InsightSeries,
    /// The mean count of a weekday.
    pub per_day: f64,
    /// Relative activity by hour of the day (UTC); the rate follows it, interpolated minute by
    /// minute.
    pub hourly_profile: [f64; 24],
    /// A weekend day's level relative to a weekday's.
    pub weekend_factor: f64,
    /// The shape of the gamma-distributed level of each hour (mean 1): smaller is burstier;
    /// infinite for none.
    pub hour_level_shape: f64,
    /// The standard deviation of the logarithm of each day's level.
    pub day_level_sigma: f64,
}

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioSpec {
    pub seed: u64,
    /// The first day (Unix day); every series' scope has data from its start.
    pub first_day: i64,
    pub days: u32,
    /// No burst starts in the first days: the model raises nothing before its minimum
    /// history, and a burst there would test nothing.
    pub burst_free_days: u32,
    pub call_rate_bursts: usize,
    pub error_rate_bursts: usize,
    /// Burst lengths in minutes, drawn uniformly.
    pub burst_minutes: Range<i64>,
    /// The least extra count a minute a burst adds.
    pub burst_min_per_minute: f64,
    /// A burst adds this many times the series' busy rate (`busy_rate_per_minute`; drawn
    /// uniformly), when that is more than `burst_min_per_minute`.
    pub burst_times_busy_rate: Range<f64>,
}

impl Default for ScenarioSpec {
    fn default() -> ScenarioSpec {
        ScenarioSpec {
            seed: 1,
            first_day: 20_000,
            days: 28,
            burst_free_days: 8,
            call_rate_bursts: 20,
            error_rate_bursts: 20,
            burst_minutes: 5..121,
            burst_min_per_minute: 15.0,
            burst_times_busy_rate: 3.0..8.0,
        }
    }
}

/// A generated scenario: each series' counts (with the bursts in them) and the truth.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub series: Vec<InsightSeries>,
    /// `counts[i]` are the counts of `series[i]`.
    pub counts: Vec<MinuteCounts>,
    /// The counts without the bursts: the clean background.
    pub background: Vec<MinuteCounts>,
    /// The first minute of data of every scope.
    pub history_from: i64,
    /// Every generated minute.
    pub minutes: Range<i64>,
    pub bursts: Vec<InjectedBurst>,
}

/// A burst injected into a series.
#[derive(Clone, Debug, PartialEq)]
pub struct InjectedBurst {
    /// The index of the series it was injected into.
    pub series: usize,
    pub insight_type: InsightType,
    pub start_minute: i64,
    /// One after its last minute.
    pub end_minute: i64,
    /// The mean extra count of each of its minutes.
    pub extra_per_minute: f64,
    /// Other series it raised too: an error burst on a write API adds calls to the API's
    /// call-rate series. An Insight there is right, but not required.
    pub also_in: Vec<usize>,
}

/// Generates the background of every shape over `spec.days` days, then injects the bursts:
/// each into a different series, drawn among the call-rate series for call-rate bursts and the
/// error-rate series for error bursts, starting after `burst_free_days` and ending before the
/// last hour.
pub fn generate_scenario(shapes: &[SeriesShape], spec: &ScenarioSpec) -> Scenario {
    let first_minute = spec.first_day.saturating_mul(MINUTES_PER_DAY);
    let minutes = first_minute..first_minute + i64::from(spec.days) * MINUTES_PER_DAY;
    let background: Vec<MinuteCounts> = shapes
        .iter()
        .enumerate()
        .map(|(index, shape)| {
            let mut random = Random::derived(spec.seed, index as u64);
            generate_background(shape, minutes.clone(), &mut random)
        })
        .collect();
    let mut counts = background.clone();
    let bursts = inject_bursts(shapes, spec, minutes.clone(), &mut counts);
    Scenario {
        series: shapes.iter().map(|shape| shape.series.clone()).collect(),
        counts,
        background,
        history_from: first_minute,
        minutes,
        bursts,
    }
}

/// One series' counts over `minutes`.
pub fn generate_background(
    shape: &SeriesShape,
    minutes: Range<i64>,
    random: &mut Random,
) -> MinuteCounts {
    let mut counts = MinuteCounts::new();
    let profile = normalised_profile(&shape.hourly_profile);
    let base_per_minute = shape.per_day.max(0.0) / MINUTES_PER_DAY as f64;
    let sigma = shape.day_level_sigma.max(0.0);
    let mut minute = minutes.start;
    while minute < minutes.end {
        let day = minute.div_euclid(MINUTES_PER_DAY);
        let weekend = (day + 3).rem_euclid(7) >= 5;
        let mut day_level = (sigma * random.normal() - sigma * sigma / 2.0).exp();
        if weekend {
            day_level *= shape.weekend_factor.max(0.0);
        }
        let day_end = ((day + 1) * MINUTES_PER_DAY).min(minutes.end);
        while minute < day_end {
            let hour_end = ((minute.div_euclid(60) + 1) * 60).min(day_end);
            let hour_level = if shape.hour_level_shape.is_finite() {
                random.gamma_mean_one(shape.hour_level_shape)
            } else {
                1.0
            };
            let level = base_per_minute * day_level * hour_level;
            let hour_start = minute;
            let rates: Vec<f64> = (hour_start..hour_end)
                .map(|minute| level * profile_at(&profile, minute))
                .collect();
            draw_hour(&rates, hour_start, random, &mut counts);
            minute = hour_end;
        }
    }
    counts
}

/// Draws the counts of the minutes of one hour, each Poisson with its rate. A quiet hour (less
/// than one call a minute on average) is drawn as a Poisson process: the hour's total, then each
/// call's minute with probability proportional to its rate (by rejection) — the same
/// distribution for a fraction of the draws.
fn draw_hour(rates: &[f64], hour_start: i64, random: &mut Random, counts: &mut MinuteCounts) {
    let total_rate: f64 = rates.iter().sum();
    if total_rate >= rates.len() as f64 {
        for (offset, &rate) in rates.iter().enumerate() {
            let count = random.poisson(rate);
            if count > 0 {
                counts.insert(hour_start + offset as i64, count);
            }
        }
        return;
    }
    let highest = rates.iter().copied().fold(0.0, f64::max);
    if highest <= 0.0 {
        return;
    }
    let calls = random.poisson(total_rate);
    for _ in 0..calls {
        loop {
            let offset = random.integer_in(0, rates.len() as i64) as usize;
            if random.uniform() * highest < rates[offset] {
                *counts.entry(hour_start + offset as i64).or_insert(0) += 1;
                break;
            }
        }
    }
}

/// The rate a series reaches on its own about one hour in a hundred at its busiest time of a
/// weekday: its peak mean rate times the 99th percentile of its hour's level (gamma, by
/// Wilson and Hilferty's approximation) and of its day's. A burst is sized against this, not
/// against the mean, so that it is unusual for a bursty series as much as for a steady one.
pub fn busy_rate_per_minute(shape: &SeriesShape) -> f64 {
    const Z_99: f64 = 2.326;
    let hour_level = if shape.hour_level_shape.is_finite() && shape.hour_level_shape > 0.0 {
        let ninth = 1.0 / (9.0 * shape.hour_level_shape);
        (1.0 - ninth + Z_99 * ninth.sqrt()).max(0.0).powi(3)
    } else {
        1.0
    };
    let day_level = (Z_99 * shape.day_level_sigma.max(0.0)).exp();
    peak_rate_per_minute(shape) * hour_level * day_level
}

/// The highest mean rate a minute of a weekday of `shape` has.
pub fn peak_rate_per_minute(shape: &SeriesShape) -> f64 {
    let profile = normalised_profile(&shape.hourly_profile);
    let peak = profile.iter().copied().fold(0.0, f64::max);
    shape.per_day.max(0.0) / MINUTES_PER_DAY as f64 * peak
}

fn inject_bursts(
    shapes: &[SeriesShape],
    spec: &ScenarioSpec,
    minutes: Range<i64>,
    counts: &mut [MinuteCounts],
) -> Vec<InjectedBurst> {
    // The bursts draw from a stream of their own, so the background does not change with them.
    let mut random = Random::derived(spec.seed, u64::MAX);
    let call_rate_partner: BTreeMap<(&str, &str, &str, &str), usize> = shapes
        .iter()
        .enumerate()
        .filter(|(_, shape)| shape.series.insight_type == InsightType::ApiCallRate)
        .map(|(index, shape)| (api_key(&shape.series), index))
        .collect();
    let mut bursts = Vec::new();
    for (insight_type, how_many) in [
        (InsightType::ApiCallRate, spec.call_rate_bursts),
        (InsightType::ApiErrorRate, spec.error_rate_bursts),
    ] {
        let mut eligible: Vec<usize> = (0..shapes.len())
            .filter(|&index| shapes[index].series.insight_type == insight_type)
            .collect();
        shuffle(&mut eligible, &mut random);
        for &series in eligible.iter().take(how_many) {
            let shape = &shapes[series];
            let length = random.integer_in(spec.burst_minutes.start, spec.burst_minutes.end);
            let earliest = minutes.start + i64::from(spec.burst_free_days) * MINUTES_PER_DAY;
            let latest = minutes.end - length - 60;
            let start_minute = random.integer_in(earliest, latest.max(earliest + 1));
            let times_busy = random.uniform_in(
                spec.burst_times_busy_rate.start,
                spec.burst_times_busy_rate.end,
            );
            let extra_per_minute =
                (times_busy * busy_rate_per_minute(shape)).max(spec.burst_min_per_minute);
            let also_in: Vec<usize> = match insight_type {
                InsightType::ApiErrorRate => call_rate_partner
                    .get(&api_key(&shape.series))
                    .copied()
                    .into_iter()
                    .collect(),
                InsightType::ApiCallRate => Vec::new(),
            };
            for minute in start_minute..start_minute + length {
                let extra = random.poisson(extra_per_minute);
                if extra == 0 {
                    continue;
                }
                for &target in std::iter::once(&series).chain(&also_in) {
                    *counts[target].entry(minute).or_insert(0) += extra;
                }
            }
            bursts.push(InjectedBurst {
                series,
                insight_type,
                start_minute,
                end_minute: start_minute + length,
                extra_per_minute,
                also_in,
            });
        }
    }
    bursts
}

fn api_key(series: &InsightSeries) -> (&str, &str, &str, &str) {
    (
        &series.recipient_account_id,
        &series.aws_region,
        &series.event_source,
        &series.event_name,
    )
}

fn shuffle(items: &mut [usize], random: &mut Random) {
    for index in (1..items.len()).rev() {
        let other = random.integer_in(0, index as i64 + 1) as usize;
        items.swap(index, other);
    }
}

/// The profile scaled to a mean of 1 (flat when it sums to nothing).
fn normalised_profile(profile: &[f64; 24]) -> [f64; 24] {
    let clean = profile.map(|weight| {
        if weight.is_finite() {
            weight.max(0.0)
        } else {
            0.0
        }
    });
    let mean = clean.iter().sum::<f64>() / 24.0;
    if mean <= 0.0 {
        return [1.0; 24];
    }
    clean.map(|weight| weight / mean)
}

/// The profile at a minute: linear between the middles of the hours, around the clock.
fn profile_at(profile: &[f64; 24], minute: i64) -> f64 {
    let minute_of_day = minute.rem_euclid(MINUTES_PER_DAY) as f64;
    let position = (minute_of_day + 0.5) / 60.0 - 0.5;
    let below = position.floor();
    let fraction = position - below;
    let index = |hour: f64| (hour as i64).rem_euclid(24) as usize;
    profile[index(below)] * (1.0 - fraction) + profile[index(below + 1.0)] * fraction
}
