//! CloudTrail Insights, computed by orgtrail: unusual rates of write management calls
//! (`ApiCallRateInsight`) and of management calls that fail (`ApiErrorRateInsight`), per
//! account, region and API, by event time. The pure model: the caller counts calls (or errors)
//! per minute of `eventTime` for each series and asks, for the settled minutes, which episodes
//! there are; the model answers the same whether asked minute by minute or by a replay of the
//! stored history.
//!
//! ```
//! use std::collections::BTreeMap;
//! use orgtrail_detection::insights::{detect_episodes, lookback_minutes, InsightModel};
//!
//! let model = InsightModel::default();
//! model.validate()?;
//! // Three weeks of 10 calls every minute, then 200 a minute for 30 minutes.
//! let day = 20_000 * 1_440;
//! let mut counts: BTreeMap<i64, u64> = (day..day + 21 * 1_440).map(|m| (m, 10)).collect();
//! let burst = day + 20 * 1_440 + 600;
//! for minute in burst..burst + 30 {
//!     counts.insert(minute, 200);
//! }
//! let window = day + 20 * 1_440..day + 21 * 1_440;
//! assert!(lookback_minutes(&model) <= window.start - day);
//! let episodes = detect_episodes(&counts, day, window, &model);
//! assert_eq!(episodes.len(), 1);
//! assert_eq!((episodes[0].start_minute, episodes[0].end_minute), (burst, burst + 30));
//! assert!(episodes[0].closed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The model, in short
//!
//! For each UTC day, a series' baseline is the `baseline_days` whole days before it (7, as
//! CloudTrail's), never the day itself, leaving out the one day that stands out (a past
//! Insight). From it: the expected count of each hour of the day (the hour's average over the
//! baseline, smoothed with its neighbours, 10 % flat; scaled by the level of weekdays or
//! weekends), how much counts spread around that (variance over mean, at least what the
//! series' hour-to-hour variation implies), and the peak the series reaches at that time on at
//! least two baseline days. A minute is unusual when its count is at least every one of: the
//! least count a negative binomial with that mean and spread reaches with probability ≤ the
//! normal tail of `threshold_sigma` (5σ: 2.9 × 10⁻⁷), `min_rate_per_minute` (5),
//! `min_increase_factor` × expected (2×), and one more than the recurring peak. An Insight
//! starts at an unusual minute and ends after `quiet_minutes` (10) without one, lasting at most
//! `max_insight_minutes`. Nothing is raised before `history_from + min_history_days`.
//! `docs/insights.md` has the reasons, what CloudTrail documents, and the measured results.
//!
//! Layout: `model` (the settings and overrides), `baseline` (a day's baseline per series,
//! `DayBaselines` the cache of them), `baseline_estimates` (how it is estimated), `tail` (the threshold's numbers), `episodes`
//! (`detect_episodes`, `explain_minutes`), `attributions`, `record` (the Start/End records),
//! `scenario` (generated backgrounds with injected bursts, and their scoring).

mod attributions;
mod baseline;
mod baseline_estimates;
mod episodes;
mod model;
mod record;
pub mod scenario;
mod tail;

use std::collections::BTreeMap;

pub use attributions::{
    attributions, error_code_value, AttributeName, AttributedValue, Attribution, AttributionCounts,
    ValueCounts, MAX_ATTRIBUTION_VALUES, NO_ERROR_CODE,
};
pub use baseline::{day_of, DayBaseline, DayBaselines, HourBaseline};
pub use episodes::{detect_episodes, detect_episodes_with, explain_minutes, Episode, MinutePoint};
pub use model::{
    lookback_minutes, InsightModel, InsightModelError, InsightOverride, InsightOverrideScope,
    InsightTuning, InsightType, Seasonality, UnknownInsightType, MAX_BASELINE_DAYS,
    MINUTES_PER_DAY,
};
pub use record::{
    end_record, event_time_of_minute, insight_event_id, insight_records, is_orgtrail_insight,
    shared_event_id, start_record, InsightSeries, InsightState, INSIGHT_EVENT_VERSION,
    ORGTRAIL_INSIGHT_NAMESPACE,
};

/// The per-minute counts of one series (account, region, event source, event name, Insight
/// type): Unix minute (`unix seconds / 60`, floored) → calls (or errors) in it. Minutes without
/// one have none.
pub type MinuteCounts = BTreeMap<i64, u64>;

#[cfg(test)]
mod episodes_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod record_tests;
