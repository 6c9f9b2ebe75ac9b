//! How a day's baseline is estimated from the counts of the days before it: one pass gathers
//! each baseline day's sums by hour, then the levels of weekdays and weekends, the time-of-day
//! profile, the spread of counts (per hour, and the series' hour-to-hour variation), the
//! recurring peaks, and so each hour's count threshold. Every estimate leaves out the one day
//! that stands out, so a past Insight does not blind the model to the next.

use super::baseline::{day_of, day_type, hour_of_day, HourBaseline, HOURS, MINUTES_PER_HOUR};
use super::model::{InsightModel, Seasonality, MINUTES_PER_DAY};
use super::tail::{count_threshold, normal_upper_tail};

/// The share of the expected rate that is the baseline's flat average rather than its
/// time-of-day profile: activity can happen at any hour, and a quiet hour's few minutes would
/// otherwise promise nothing ever happens in it.
const FLAT_SHARE_OF_PROFILE: f64 = 0.1;
/// Pseudo-events that pull a day type's level towards the overall level, so a weekend of two
/// nearly empty days does not make every weekend call look unusual.
const DAY_TYPE_PSEUDO_EVENTS: f64 = 10.0;

/// The sums one pass over the baseline's counts gathers, per baseline day and hour of the day.
pub(super) struct BaselineSums {
    first_day: i64,
    days: usize,
    /// Per baseline day (by day − first_day) and hour: minutes, counts, squared counts, and
    /// the highest count.
    days_by_hour: Vec<DayByHour>,
    /// Every count of the baseline.
    pub(super) total: u64,
}

impl BaselineSums {
    pub(super) fn new(from: i64, to: i64) -> BaselineSums {
        let first_day = day_of(from);
        let days = if from < to {
            (day_of(to - 1) - first_day + 1).max(0) as usize
        } else {
            0
        };
        let mut days_by_hour = vec![DayByHour::default(); days];
        for (offset, by_hour) in days_by_hour.iter_mut().enumerate() {
            let day = first_day + offset as i64;
            let day_start = day * MINUTES_PER_DAY;
            for (hour, day_minutes) in by_hour.minutes.iter_mut().enumerate() {
                let hour_start = day_start + hour as i64 * MINUTES_PER_HOUR;
                let covered_from = hour_start.max(from);
                let covered_to = (hour_start + MINUTES_PER_HOUR).min(to);
                *day_minutes = (covered_to - covered_from).max(0) as f64;
            }
        }
        BaselineSums {
            first_day,
            days,
            days_by_hour,
            total: 0,
        }
    }

    pub(super) fn add(&mut self, minute: i64, count: u64) {
        let day = day_of(minute);
        let hour = hour_of_day(minute);
        let value = count as f64;
        self.total = self.total.saturating_add(count);
        if let Some(by_hour) = usize::try_from(day - self.first_day)
            .ok()
            .and_then(|offset| self.days_by_hour.get_mut(offset))
        {
            by_hour.sums[hour] += value;
            by_hour.squares[hour] += value * value;
            by_hour.peaks[hour] = by_hour.peaks[hour].max(count);
        }
    }

    pub(super) fn hour_baselines(&self, day: i64, model: &InsightModel) -> [HourBaseline; HOURS] {
        let all_minutes: f64 = self.days_by_hour.iter().map(DayByHour::total_minutes).sum();
        let empty = HourBaseline {
            expected: 0.0,
            dispersion: 1.0,
            recurring_peak: 0,
            threshold: None,
        };
        if all_minutes <= 0.0 {
            return [empty; HOURS];
        }
        let busiest_day = self.busiest_day();
        let overall_rate = self.rate_without(busiest_day);
        let levels = self.day_type_levels(busiest_day, overall_rate, model.seasonality);
        let profile = self.time_of_day_profile(&levels, overall_rate, model.seasonality);
        // The expected count of a minute, by [day type][hour].
        let mut expected = [[0.0; HOURS]; 2];
        for kind in 0..2 {
            for hour in 0..HOURS {
                expected[kind][hour] = profile[hour] * levels[kind];
            }
        }
        // A minute's spread: what its hour showed, but at least what the series' hour-to-hour
        // variation implies at this rate (1 + rate × CV²): a quiet hour's few minutes say
        // little about how far the series can stray.
        let level_variation = self.level_variation(&expected);
        let kind = day_type(day);
        let mut dispersion = self.dispersion(&expected);
        for (hour, value) in dispersion.iter_mut().enumerate() {
            *value = value.max(1.0 + expected[kind][hour] * level_variation);
        }
        let tail = normal_upper_tail(model.threshold_sigma);
        // At least one call over the whole baseline: an API never seen is not certain never to
        // be called.
        let floor_rate = 1.0 / all_minutes;
        let mut hours = [empty; HOURS];
        for (hour, baseline) in hours.iter_mut().enumerate() {
            let expected = expected[kind][hour];
            let recurring_peak = self.recurring_peak(hour, model.recurring_peak_days);
            let statistical = count_threshold(expected.max(floor_rate), dispersion[hour], tail);
            let threshold = statistical
                .max(ceil_count(model.min_rate_per_minute))
                .max(ceil_count(model.min_increase_factor * expected))
                .max(recurring_peak.saturating_add(1));
            *baseline = HourBaseline {
                expected,
                dispersion: dispersion[hour],
                recurring_peak,
                threshold: Some(threshold),
            };
        }
        hours
    }

    /// The baseline day with the highest rate, when there are three days or more: left out of
    /// the averages, so that one unusual day — a past Insight, or the start of one still going
    /// on past midnight — does not raise what is expected of the days after it.
    fn busiest_day(&self) -> Option<usize> {
        if self.days_by_hour.len() < 3 {
            return None;
        }
        self.days_by_hour
            .iter()
            .enumerate()
            .filter(|(_, day)| day.total_minutes() > 0.0)
            .max_by(|(_, a), (_, b)| {
                (a.total_count() / a.total_minutes())
                    .total_cmp(&(b.total_count() / b.total_minutes()))
            })
            .map(|(offset, _)| offset)
    }

    /// The per-minute rate over the baseline days but `left_out`; 0 when they have no minutes.
    fn rate_without(&self, left_out: Option<usize>) -> f64 {
        let (count, minutes) = self
            .days_by_hour
            .iter()
            .enumerate()
            .filter(|(offset, _)| Some(*offset) != left_out)
            .fold((0.0, 0.0), |(count, minutes), (_, day)| {
                (count + day.total_count(), minutes + day.total_minutes())
            });
        if minutes > 0.0 {
            count / minutes
        } else {
            0.0
        }
    }

    /// Each day type's level relative to the overall one (1 and 1 unless seasonality follows
    /// the weekday), pulled towards 1 by `DAY_TYPE_PSEUDO_EVENTS`; the busiest day left out.
    fn day_type_levels(
        &self,
        left_out: Option<usize>,
        overall_rate: f64,
        seasonality: Seasonality,
    ) -> [f64; 2] {
        if seasonality != Seasonality::TimeOfDayAndWeekday {
            return [1.0, 1.0];
        }
        let mut levels = [1.0, 1.0];
        for (kind, level) in levels.iter_mut().enumerate() {
            let (count, minutes) = self
                .days_by_hour
                .iter()
                .enumerate()
                .filter(|(offset, _)| Some(*offset) != left_out)
                .filter(|(offset, _)| day_type(self.first_day + *offset as i64) == kind)
                .fold((0.0, 0.0), |(count, minutes), (_, day)| {
                    (count + day.total_count(), minutes + day.total_minutes())
                });
            if minutes > 0.0 {
                *level = (count + DAY_TYPE_PSEUDO_EVENTS)
                    / (overall_rate * minutes + DAY_TYPE_PSEUDO_EVENTS);
            }
        }
        levels
    }

    /// The expected rate of each hour at level 1: the hour's average (over it and its
    /// neighbours, weighted 1-2-1, each day's counts divided by its day type's level) on the
    /// baseline days but the one busiest at that hour (with three days or more), mixed with the
    /// flat average; the flat average alone without seasonality.
    fn time_of_day_profile(
        &self,
        levels: &[f64; 2],
        overall_rate: f64,
        seasonality: Seasonality,
    ) -> [f64; HOURS] {
        if seasonality == Seasonality::None {
            return [overall_rate; HOURS];
        }
        let mut profile = [overall_rate; HOURS];
        for (hour, rate) in profile.iter_mut().enumerate() {
            // (counts, minutes × level) of each day around this hour.
            let days: Vec<(f64, f64)> = self
                .days_by_hour
                .iter()
                .enumerate()
                .map(|(offset, day)| {
                    let level = levels[day_type(self.first_day + offset as i64)];
                    neighbours(hour).iter().fold(
                        (0.0, 0.0),
                        |(count, weighted), &(neighbour, weight)| {
                            (
                                count + weight * day.sums[neighbour],
                                weighted + weight * day.minutes[neighbour] * level,
                            )
                        },
                    )
                })
                .filter(|(_, weighted)| *weighted > 0.0)
                .collect();
            let busiest = if days.len() >= 3 {
                days.iter()
                    .enumerate()
                    .max_by(|(_, a), (_, b)| (a.0 / a.1).total_cmp(&(b.0 / b.1)))
                    .map(|(index, _)| index)
            } else {
                None
            };
            let (count, weighted) = days
                .iter()
                .enumerate()
                .filter(|(index, _)| Some(*index) != busiest)
                .fold((0.0, 0.0), |(count, weighted), (_, day)| {
                    (count + day.0, weighted + day.1)
                });
            if weighted > 0.0 {
                *rate = (1.0 - FLAT_SHARE_OF_PROFILE) * (count / weighted)
                    + FLAT_SHARE_OF_PROFILE * overall_rate;
            }
        }
        profile
    }

    /// Per hour: how widely counts spread around what the model expected of them, over what a
    /// Poisson process would give (at least 1), taking the hour with its neighbours (1-2-1) and
    /// pooling the baseline days — all but the one that spread most, when there are three or
    /// more, so that one day's burst (a past Insight) does not make the whole baseline look
    /// noisy. (A median day would be more robust still, but it understates a bursty series:
    /// most days are calmer than the average day.)
    fn dispersion(&self, expected: &[[f64; HOURS]; 2]) -> [f64; HOURS] {
        // (squared deviation, Poisson variance) per day and hour, neighbours included.
        let per_day: Vec<[(f64, f64); HOURS]> = self
            .days_by_hour
            .iter()
            .enumerate()
            .map(|(offset, by_hour)| {
                let expected = &expected[day_type(self.first_day + offset as i64)];
                let mut squared_deviation = [0.0; HOURS];
                let mut poisson_variance = [0.0; HOURS];
                for hour in 0..HOURS {
                    let mean = expected[hour];
                    let (sum, squares, minutes) = (
                        by_hour.sums[hour],
                        by_hour.squares[hour],
                        by_hour.minutes[hour],
                    );
                    squared_deviation[hour] =
                        (squares - 2.0 * mean * sum + minutes * mean * mean).max(0.0);
                    poisson_variance[hour] = minutes * mean;
                }
                let mut pooled = [(0.0, 0.0); HOURS];
                for (hour, value) in pooled.iter_mut().enumerate() {
                    for (neighbour, weight) in neighbours(hour) {
                        value.0 += weight * squared_deviation[neighbour];
                        value.1 += weight * poisson_variance[neighbour];
                    }
                }
                pooled
            })
            .collect();
        let mut dispersion = [1.0; HOURS];
        for (hour, value) in dispersion.iter_mut().enumerate() {
            let days = per_day
                .iter()
                .map(|day| day[hour])
                .filter(|(_, variance)| *variance > 0.0);
            let mut deviation: f64 = 0.0;
            let mut variance: f64 = 0.0;
            let mut noisiest: Option<(f64, f64)> = None;
            let mut counted = 0usize;
            for (day_deviation, day_variance) in days {
                deviation += day_deviation;
                variance += day_variance;
                counted += 1;
                let ratio = day_deviation / day_variance;
                if noisiest.is_none_or(|(noisiest_deviation, noisiest_variance)| {
                    ratio > noisiest_deviation / noisiest_variance
                }) {
                    noisiest = Some((day_deviation, day_variance));
                }
            }
            if counted >= 3 {
                if let Some((noisiest_deviation, noisiest_variance)) = noisiest {
                    deviation -= noisiest_deviation;
                    variance -= noisiest_variance;
                }
            }
            if variance > 0.0 {
                *value = (deviation / variance).max(1.0);
            }
        }
        dispersion
    }

    /// The squared coefficient of variation of the series' level from hour to hour: how far
    /// each baseline hour's total strayed from what the model expected of it, beyond Poisson
    /// noise, over the expected totals squared (a gamma-mixed Poisson's moments). Pooled over
    /// every hour of the baseline — a figure of the series, steadier than any one hour's — less
    /// the 2 % of hours that strayed most (past bursts).
    fn level_variation(&self, expected: &[[f64; HOURS]; 2]) -> f64 {
        let mut hours: Vec<(f64, f64)> = Vec::with_capacity(self.days_by_hour.len() * HOURS);
        for (offset, by_hour) in self.days_by_hour.iter().enumerate() {
            let expected = &expected[day_type(self.first_day + offset as i64)];
            let by_hour_of_day = expected
                .iter()
                .zip(by_hour.minutes.iter().zip(&by_hour.sums));
            for (rate, (minutes, count)) in by_hour_of_day {
                let expected_total = rate * minutes;
                if expected_total > 0.0 {
                    let deviation = count - expected_total;
                    hours.push((
                        deviation * deviation - expected_total,
                        expected_total * expected_total,
                    ));
                }
            }
        }
        hours.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let trimmed = hours.len().div_ceil(50);
        let (excess, squares) = hours.iter().skip(trimmed).fold(
            (0.0, 0.0),
            |(excess, squares), (hour_excess, hour_square)| {
                (excess + hour_excess, squares + hour_square)
            },
        );
        if squares > 0.0 {
            (excess / squares).max(0.0)
        } else {
            0.0
        }
    }

    /// The `days_needed`-th highest of the baseline days' peaks within an hour of `hour`.
    fn recurring_peak(&self, hour: usize, days_needed: u32) -> u64 {
        let mut peaks: Vec<u64> = self
            .days_by_hour
            .iter()
            .map(|day| {
                neighbours(hour)
                    .iter()
                    .map(|&(neighbour, _)| day.peaks[neighbour])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        peaks.sort_unstable_by(|a, b| b.cmp(a));
        let index = (days_needed as usize).saturating_sub(1);
        if self.days < days_needed as usize {
            0
        } else {
            peaks.get(index).copied().unwrap_or(0)
        }
    }
}

/// One baseline day's sums by hour of the day.
#[derive(Clone, Debug, Default)]
struct DayByHour {
    minutes: [f64; HOURS],
    sums: [f64; HOURS],
    squares: [f64; HOURS],
    peaks: [u64; HOURS],
}

impl DayByHour {
    fn total_count(&self) -> f64 {
        self.sums.iter().sum()
    }

    fn total_minutes(&self) -> f64 {
        self.minutes.iter().sum()
    }
}

/// An hour and its two neighbours around the clock, weighted 1-2-1.
fn neighbours(hour: usize) -> [(usize, f64); 3] {
    [
        ((hour + HOURS - 1) % HOURS, 1.0),
        (hour, 2.0),
        ((hour + 1) % HOURS, 1.0),
    ]
}

/// The least whole count at or above `value` (saturating).
fn ceil_count(value: f64) -> u64 {
    if value.is_nan() || value <= 0.0 {
        0
    } else if value >= u64::MAX as f64 {
        u64::MAX
    } else {
        value.ceil() as u64
    }
}
