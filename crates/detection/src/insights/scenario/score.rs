//! Scoring detected Insights against a scenario's truth: which bursts were found, how far their
//! Start and End were from the truth, and which Insights no burst explains (false ones).

use std::collections::BTreeMap;

use super::Scenario;
use crate::insights::episodes::Episode;
use crate::insights::{
    detect_episodes_with, DayBaselines, InsightModel, MinuteCounts, MINUTES_PER_DAY,
};

/// An Insight found in a scenario: the index of its series and its episode.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectedInsight {
    pub series: usize,
    pub episode: Episode,
}

/// Evaluates every series of `scenario` (`counts` or its clean `background`) as the aggregator
/// does: one window per UTC day, the day baselines kept per series; each Insight kept in the
/// form the last window that returned it gave.
pub fn detect_day_by_day(
    scenario: &Scenario,
    all_counts: &[MinuteCounts],
    model: &InsightModel,
) -> Vec<DetectedInsight> {
    let mut detected = Vec::new();
    for (series, counts) in all_counts.iter().enumerate() {
        let mut baselines = DayBaselines::new();
        let mut by_start: BTreeMap<i64, Episode> = BTreeMap::new();
        let mut window_start = scenario.minutes.start;
        while window_start < scenario.minutes.end {
            let window = window_start..window_start + MINUTES_PER_DAY;
            for episode in detect_episodes_with(
                counts,
                scenario.history_from,
                window.clone(),
                model,
                &mut baselines,
            ) {
                by_start.insert(episode.start_minute, episode);
            }
            window_start = window.end;
        }
        detected.extend(
            by_start
                .into_values()
                .map(|episode| DetectedInsight { series, episode }),
        );
    }
    detected
}

/// How close to the truth an Insight's Start and End must be for a burst to count as found on
/// time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tolerance {
    pub start_minutes: i64,
    pub end_minutes: i64,
}

impl Default for Tolerance {
    /// Issue 14's: Start within 2 minutes of the true start, End within 5 of the true end.
    fn default() -> Tolerance {
        Tolerance {
            start_minutes: 2,
            end_minutes: 5,
        }
    }
}

/// What became of one injected burst.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BurstOutcome {
    /// Its index in `Scenario::bursts`.
    pub burst: usize,
    /// The Insight's start minus the burst's (the first Insight overlapping it on its series).
    pub start_error: Option<i64>,
    /// The Insight's end minus the burst's.
    pub end_error: Option<i64>,
    /// Found, with Start and End within the tolerance.
    pub on_time: bool,
}

/// A scenario's score.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioScore {
    pub bursts: Vec<BurstOutcome>,
    /// Every Insight detected.
    pub insights: usize,
    /// The detected Insights (indices into the detected list) that overlap no burst of their
    /// series.
    pub false_insights: Vec<usize>,
    /// False Insights per account.
    pub false_insights_by_account: BTreeMap<String, usize>,
}

impl ScenarioScore {
    /// Bursts found on time over bursts injected (1 when none were).
    pub fn recall(&self) -> f64 {
        if self.bursts.is_empty() {
            return 1.0;
        }
        let on_time = self.bursts.iter().filter(|outcome| outcome.on_time).count();
        on_time as f64 / self.bursts.len() as f64
    }

    /// Insights that overlap a burst over all Insights (1 when there are none).
    pub fn precision(&self) -> f64 {
        if self.insights == 0 {
            return 1.0;
        }
        (self.insights - self.false_insights.len()) as f64 / self.insights as f64
    }

    /// The bursts not found on time.
    pub fn missed(&self) -> impl Iterator<Item = &BurstOutcome> {
        self.bursts.iter().filter(|outcome| !outcome.on_time)
    }
}

/// Scores `detected` (each Insight once, in its final form) against `scenario`'s bursts.
pub fn score_scenario(
    scenario: &Scenario,
    detected: &[DetectedInsight],
    tolerance: Tolerance,
) -> ScenarioScore {
    let overlaps = |insight: &DetectedInsight, start: i64, end: i64| {
        insight.episode.start_minute < end + tolerance.end_minutes
            && insight.episode.end_minute > start - tolerance.start_minutes
    };
    let bursts = scenario
        .bursts
        .iter()
        .enumerate()
        .map(|(index, burst)| {
            let first = detected
                .iter()
                .filter(|insight| insight.series == burst.series)
                .filter(|insight| overlaps(insight, burst.start_minute, burst.end_minute))
                .min_by_key(|insight| insight.episode.start_minute);
            let start_error =
                first.map(|insight| insight.episode.start_minute - burst.start_minute);
            let end_error = first.map(|insight| insight.episode.end_minute - burst.end_minute);
            let on_time = matches!(
                (start_error, end_error),
                (Some(start), Some(end))
                    if start.abs() <= tolerance.start_minutes && end.abs() <= tolerance.end_minutes
            );
            BurstOutcome {
                burst: index,
                start_error,
                end_error,
                on_time,
            }
        })
        .collect();
    let mut false_insights = Vec::new();
    let mut false_insights_by_account = BTreeMap::new();
    for (index, insight) in detected.iter().enumerate() {
        let explained = scenario.bursts.iter().any(|burst| {
            (burst.series == insight.series || burst.also_in.contains(&insight.series))
                && overlaps(insight, burst.start_minute, burst.end_minute)
        });
        if !explained {
            false_insights.push(index);
            if let Some(series) = scenario.series.get(insight.series) {
                *false_insights_by_account
                    .entry(series.recipient_account_id.clone())
                    .or_insert(0) += 1;
            }
        }
    }
    ScenarioScore {
        bursts,
        insights: detected.len(),
        false_insights,
        false_insights_by_account,
    }
}
