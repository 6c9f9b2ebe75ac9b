//! A series' baseline for one UTC day: from the `baseline_days` whole days before it (never
//! the day itself, so a minute's judgement does not depend on the minutes around it), the
//! expected count of each hour of the day, how widely counts spread around it, the peak the
//! series reaches at that time on several days, and so the count threshold of each hour.
//! Computed once per series and day (`DayBaselines` keeps them), then each minute is one
//! comparison.

use std::collections::BTreeMap;

use super::baseline_estimates::BaselineSums;
use super::model::{InsightModel, MINUTES_PER_DAY};
use super::MinuteCounts;

pub(super) const HOURS: usize = 24;
pub(super) const MINUTES_PER_HOUR: i64 = 60;

/// What one series' baseline says about each hour of one UTC day.
#[derive(Clone, Debug, PartialEq)]
pub struct DayBaseline {
    /// The day: Unix minute / 1440 (floored).
    pub day: i64,
    /// The baseline's minutes: from `max(day start − baseline_days, history_from)` to the
    /// day's start.
    pub baseline_minutes: i64,
    /// The counts in those minutes.
    pub baseline_total: u64,
    /// Minutes before this one are never unusual: `history_from + min_history_days`.
    pub raising_from: i64,
    pub hours: [HourBaseline; HOURS],
}

/// What the baseline says about one hour of the day.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HourBaseline {
    /// The expected count in a minute of this hour.
    pub expected: f64,
    /// Variance over mean of the baseline's counts around what the model expected of them
    /// (1 for a Poisson process; more for bursty series).
    pub dispersion: f64,
    /// The highest count seen within an hour of this time on `recurring_peak_days` days of the
    /// baseline (0 with fewer baseline days).
    pub recurring_peak: u64,
    /// A minute of this hour is unusual when its count is at least this; `None` when the
    /// baseline is empty.
    pub threshold: Option<u64>,
}

impl DayBaseline {
    /// The baseline of `day` for `counts`, whose scope has data from `history_from` on. Reads
    /// only counts before the day's start.
    pub fn compute(
        counts: &MinuteCounts,
        day: i64,
        history_from: i64,
        model: &InsightModel,
    ) -> DayBaseline {
        let day_start = day.saturating_mul(MINUTES_PER_DAY);
        let baseline_span = i64::from(model.baseline_days) * MINUTES_PER_DAY;
        let from = day_start.saturating_sub(baseline_span).max(history_from);
        let raising_from =
            history_from.saturating_add(i64::from(model.min_history_days) * MINUTES_PER_DAY);
        let mut sums = BaselineSums::new(from, day_start);
        if from < day_start {
            for (&minute, &count) in counts.range(from..day_start) {
                sums.add(minute, count);
            }
        }
        let hours = sums.hour_baselines(day, model);
        DayBaseline {
            day,
            baseline_minutes: (day_start - from).max(0),
            baseline_total: sums.total,
            raising_from,
            hours,
        }
    }

    /// The per-minute average over the whole baseline (CloudTrail's `baseline.average`).
    pub fn average(&self) -> f64 {
        if self.baseline_minutes == 0 {
            0.0
        } else {
            self.baseline_total as f64 / self.baseline_minutes as f64
        }
    }

    /// What the baseline says about `minute` (which must be of this day).
    pub fn hour_of(&self, minute: i64) -> &HourBaseline {
        &self.hours[hour_of_day(minute)]
    }

    /// Whether a minute of this day with `count` is unusual.
    pub fn is_unusual(&self, minute: i64, count: u64) -> bool {
        minute >= self.raising_from
            && self
                .hour_of(minute)
                .threshold
                .is_some_and(|threshold| count >= threshold)
    }
}

/// The day baselines of one series, each computed on first use: the cache the aggregator keeps
/// per series between settled minutes. It is valid for one model and one `history_from`, and
/// forgets everything when asked with others; the caller must `clear` it when counts of
/// minutes already settled change (late events beyond the settle).
#[derive(Clone, Debug, Default)]
pub struct DayBaselines {
    built_for: Option<(InsightModel, i64)>,
    days: BTreeMap<i64, DayBaseline>,
}

impl DayBaselines {
    pub fn new() -> DayBaselines {
        DayBaselines::default()
    }

    pub fn clear(&mut self) {
        self.days.clear();
    }

    /// Forgets the days before `day` (those no later window needs).
    pub fn forget_before(&mut self, day: i64) {
        self.days = self.days.split_off(&day);
    }

    /// Whether the baseline of `day` is kept for this model and `history_from` (a caller may
    /// then pass only the counts the window itself needs).
    pub fn has_day(&self, day: i64, history_from: i64, model: &InsightModel) -> bool {
        self.built_for
            .as_ref()
            .is_some_and(|(built_model, built_history)| {
                built_model == model && *built_history == history_from
            })
            && self.days.contains_key(&day)
    }

    /// How many days are kept.
    pub fn len(&self) -> usize {
        self.days.len()
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// The baseline of `day`, computed now if it is not kept yet.
    pub fn day(
        &mut self,
        counts: &MinuteCounts,
        day: i64,
        history_from: i64,
        model: &InsightModel,
    ) -> &DayBaseline {
        let same = self
            .built_for
            .as_ref()
            .is_some_and(|(built_model, built_history)| {
                built_model == model && *built_history == history_from
            });
        if !same {
            self.days.clear();
            self.built_for = Some((model.clone(), history_from));
        }
        self.days
            .entry(day)
            .or_insert_with(|| DayBaseline::compute(counts, day, history_from, model))
    }
}

/// The UTC day of a Unix minute.
pub fn day_of(minute: i64) -> i64 {
    minute.div_euclid(MINUTES_PER_DAY)
}

pub(super) fn hour_of_day(minute: i64) -> usize {
    // In 0..24 by construction.
    (minute.rem_euclid(MINUTES_PER_DAY) / MINUTES_PER_HOUR) as usize
}

/// Whether a UTC day is a Saturday or a Sunday (day 0, 1970-01-01, was a Thursday).
fn is_weekend(day: i64) -> bool {
    (day + 3).rem_euclid(7) >= 5
}

/// Index 0: weekdays, 1: weekend days.
pub(super) fn day_type(day: i64) -> usize {
    usize::from(is_weekend(day))
}
