//! Episodes: runs of unusual minutes, merged across short quiet gaps, with the statistics an
//! Insight's Start and End records carry; and `explain_minutes`, the per-minute view behind
//! them.
//!
//! Whether a minute is unusual depends only on its own count and its day's baseline (whole days
//! before it), so it does not depend on where evaluation started. An episode is then a plain
//! function of the unusual minutes: a run begins at an unusual minute with no unusual minute in
//! the `quiet_minutes` before it, takes every unusual minute within `quiet_minutes` of the
//! previous one, and its Insight is the part of the run in its first `max_insight_minutes`.
//! Evaluating a series minute by minute, in chunks, or all at once gives the same episodes.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::baseline::{day_of, DayBaselines};
use super::model::InsightModel;
use super::MinuteCounts;

/// One Insight of one series: its first unusual minute to one after its last.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Episode {
    /// The first unusual minute (Unix minute): the Start record's `eventTime`.
    pub start_minute: i64,
    /// One after the last unusual minute so far: the End record's `eventTime`.
    pub end_minute: i64,
    /// Whether the episode can no longer grow: `quiet_minutes` have passed since its last
    /// unusual minute, or it has lasted `max_insight_minutes`. An open episode has the start
    /// and the start statistics it will have when closed.
    pub closed: bool,
    /// The per-minute average of the start day's baseline (CloudTrail's `baseline.average`).
    pub baseline_average: f64,
    /// The minutes of that baseline (CloudTrail's `baselineDuration`).
    pub baseline_duration_minutes: i64,
    /// The count of the first minute (the Start record's `insight.average`).
    pub start_average: f64,
    /// The per-minute average over the whole episode (the End record's `insight.average`).
    pub insight_average: f64,
    /// The per-minute average the baselines expected over the episode.
    pub expected_average: f64,
    /// The highest count of a minute of the episode.
    pub peak: u64,
    /// Every count of the episode's minutes.
    pub total: u64,
    /// How many of its minutes were unusual.
    pub unusual_minutes: u32,
}

impl Episode {
    /// CloudTrail's `insightDuration`: minutes from the start to the end.
    pub fn duration_minutes(&self) -> i64 {
        self.end_minute - self.start_minute
    }
}

/// One minute as the model sees it (`orgtrail insights explain`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MinutePoint {
    pub minute: i64,
    pub count: u64,
    /// The count the baseline expects of this minute.
    pub expected: f64,
    /// The count at or above which the minute is unusual; `None` when nothing can be raised
    /// (an empty baseline, or before `history_from + min_history_days`).
    pub threshold: Option<u64>,
    pub unusual: bool,
}

/// The episodes of one series that matter to `window` (the settled minutes being evaluated):
/// every episode that began before `window.end` and was not yet closed at `window.start`.
/// `counts` must hold the series' counts of `[window.start − lookback_minutes(model),
/// window.end)` (more is harmless: later ones are not read); `history_from` is the first minute
/// its scope has any data. An episode still open at `window.end` has `closed: false`; evaluating
/// the next window returns it again, grown or closed, with the same start.
///
/// A deterministic function of the counts: see the module documentation.
pub fn detect_episodes(
    counts: &MinuteCounts,
    history_from: i64,
    window: Range<i64>,
    model: &InsightModel,
) -> Vec<Episode> {
    detect_episodes_with(
        counts,
        history_from,
        window,
        model,
        &mut DayBaselines::new(),
    )
}

/// `detect_episodes` with the series' day baselines kept in `baselines` between calls: the
/// form for evaluating a series minute after minute, where each day's baseline is computed
/// once.
pub fn detect_episodes_with(
    counts: &MinuteCounts,
    history_from: i64,
    window: Range<i64>,
    model: &InsightModel,
    baselines: &mut DayBaselines,
) -> Vec<Episode> {
    if window.start >= window.end {
        return Vec::new();
    }
    let quiet = i64::from(model.quiet_minutes.max(1));
    let longest = i64::from(model.max_insight_minutes.max(1));
    let mut judge = Judge {
        counts,
        history_from,
        model,
        baselines,
    };
    // Only an episode with an unusual minute in the `quiet` minutes before the window can
    // still be open at its start; without one every earlier run is over, and the window
    // starts afresh.
    let carried_over = !judge
        .unusual_minutes(window.start.saturating_sub(quiet)..window.start, 1)
        .is_empty();
    let scan_from = if carried_over {
        window.start.saturating_sub(longest + quiet)
    } else {
        window.start
    };
    // A run found in the first `quiet` minutes of a scan that starts early may have begun
    // before the scan: its Insight ended before the window anyway (it began over
    // `max_insight_minutes` before it), so it raises nothing here but still absorbs the
    // unusual minutes that continue it.
    let certain_run_starts_from = if carried_over {
        scan_from.saturating_add(quiet)
    } else {
        scan_from
    };
    let unusual = judge.unusual_minutes(scan_from..window.end, usize::MAX);

    let mut episodes = Vec::new();
    let mut index = 0;
    while index < unusual.len() {
        let run_start = unusual[index];
        let mut last_in_insight = run_start;
        let mut unusual_in_insight = 1u32;
        let mut next = index + 1;
        while next < unusual.len() && unusual[next] - unusual[next - 1] <= quiet {
            if unusual[next] < run_start.saturating_add(longest) {
                last_in_insight = unusual[next];
                unusual_in_insight += 1;
            }
            next += 1;
        }
        index = next;
        if run_start < certain_run_starts_from {
            continue;
        }
        let end_minute = last_in_insight + 1;
        let closes_at = end_minute
            .saturating_add(quiet)
            .min(run_start.saturating_add(longest));
        if closes_at <= window.start {
            continue;
        }
        let closed = window.end >= closes_at;
        episodes.push(judge.episode(run_start, end_minute, closed, unusual_in_insight));
    }
    episodes
}

/// Every minute of `range` as the model sees it, zero counts included.
pub fn explain_minutes(
    counts: &MinuteCounts,
    range: Range<i64>,
    history_from: i64,
    model: &InsightModel,
) -> Vec<MinutePoint> {
    let mut baselines = DayBaselines::new();
    range
        .map(|minute| {
            let count = counts.get(&minute).copied().unwrap_or(0);
            let baseline = baselines.day(counts, day_of(minute), history_from, model);
            let hour = baseline.hour_of(minute);
            let raising = minute >= baseline.raising_from;
            MinutePoint {
                minute,
                count,
                expected: hour.expected,
                threshold: if raising { hour.threshold } else { None },
                unusual: baseline.is_unusual(minute, count),
            }
        })
        .collect()
}

/// Judges minutes of one series against its day baselines.
struct Judge<'a> {
    counts: &'a MinuteCounts,
    history_from: i64,
    model: &'a InsightModel,
    baselines: &'a mut DayBaselines,
}

impl Judge<'_> {
    fn is_unusual(&mut self, minute: i64, count: u64) -> bool {
        count > 0
            && self
                .baselines
                .day(self.counts, day_of(minute), self.history_from, self.model)
                .is_unusual(minute, count)
    }

    /// The unusual minutes of `range` in order, at most `limit` of them. A minute without a
    /// count is never unusual, so only the minutes with one are judged.
    fn unusual_minutes(&mut self, range: Range<i64>, limit: usize) -> Vec<i64> {
        let mut unusual = Vec::new();
        if range.start >= range.end {
            return unusual;
        }
        for (&minute, &count) in self.counts.range(range) {
            if unusual.len() >= limit {
                break;
            }
            if self.is_unusual(minute, count) {
                unusual.push(minute);
            }
        }
        unusual
    }

    fn episode(
        &mut self,
        start_minute: i64,
        end_minute: i64,
        closed: bool,
        unusual_minutes: u32,
    ) -> Episode {
        let (baseline_average, baseline_duration_minutes) = {
            let baseline = self.baselines.day(
                self.counts,
                day_of(start_minute),
                self.history_from,
                self.model,
            );
            (baseline.average(), baseline.baseline_minutes)
        };
        let mut total = 0u64;
        let mut peak = 0u64;
        for (_, &count) in self.counts.range(start_minute..end_minute) {
            total = total.saturating_add(count);
            peak = peak.max(count);
        }
        let mut expected_total = 0.0;
        for minute in start_minute..end_minute {
            let baseline =
                self.baselines
                    .day(self.counts, day_of(minute), self.history_from, self.model);
            expected_total += baseline.hour_of(minute).expected;
        }
        let duration = (end_minute - start_minute).max(1) as f64;
        Episode {
            start_minute,
            end_minute,
            closed,
            baseline_average,
            baseline_duration_minutes,
            start_average: self.counts.get(&start_minute).copied().unwrap_or(0) as f64,
            insight_average: total as f64 / duration,
            expected_average: expected_total / duration,
            peak,
            total,
            unusual_minutes,
        }
    }
}
