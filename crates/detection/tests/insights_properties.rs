//! Insights computed live equal Insights computed by replay: on random series, evaluating the
//! settled minutes in random chunks (as the aggregator does minute after minute, or after a
//! pause) gives exactly the episodes that evaluating them all at once gives — same starts, same
//! ends, same statistics — with or without the day baselines kept between chunks; an episode
//! open at the end of a chunk already has the start and start statistics it ends with; and the
//! counts before `lookback_minutes` change nothing.

use std::collections::BTreeMap;
use std::ops::Range;

use orgtrail_detection::insights::scenario::Random;
use orgtrail_detection::insights::{
    detect_episodes, detect_episodes_with, lookback_minutes, DayBaselines, Episode, InsightModel,
    MinuteCounts, Seasonality, MINUTES_PER_DAY,
};
use proptest::prelude::*;

const FIRST_DAY: i64 = 20_000;
const DAYS: i64 = 6;

/// A small model, so that short random series reach its history, caps and gaps.
fn model(quiet_minutes: u32, max_insight_minutes: u32, seasonality: Seasonality) -> InsightModel {
    InsightModel {
        baseline_days: 2,
        min_history_days: 2,
        recurring_peak_days: 1,
        quiet_minutes,
        max_insight_minutes,
        seasonality,
        ..InsightModel::default()
    }
}

/// A background of a few calls a minute with random spikes of random lengths and heights.
fn random_series(seed: u64, spikes: usize) -> MinuteCounts {
    let mut random = Random::new(seed);
    let start = FIRST_DAY * MINUTES_PER_DAY;
    let end = start + DAYS * MINUTES_PER_DAY;
    let mut counts = MinuteCounts::new();
    for minute in start..end {
        let count = random.poisson(2.0);
        if count > 0 {
            counts.insert(minute, count);
        }
    }
    for _ in 0..spikes {
        let spike_start = random.integer_in(start + MINUTES_PER_DAY, end);
        let length = random.integer_in(1, 90);
        let height = random.integer_in(5, 60) as u64;
        // Spikes with holes, so runs merge and split.
        for minute in spike_start..(spike_start + length).min(end) {
            if random.uniform() < 0.8 {
                counts.insert(minute, height);
            }
        }
    }
    counts
}

/// Each episode in its last reported form, by start; checks on the way that a start once seen
/// keeps its start statistics and that a closed episode is not reported again.
fn evaluate_in_chunks(
    counts: &MinuteCounts,
    history_from: i64,
    cuts: &[i64],
    model: &InsightModel,
    keep_baselines: bool,
) -> Vec<Episode> {
    let mut by_start: BTreeMap<i64, Episode> = BTreeMap::new();
    let mut baselines = DayBaselines::new();
    for window in cuts.windows(2) {
        let window: Range<i64> = window[0]..window[1];
        let episodes = if keep_baselines {
            detect_episodes_with(counts, history_from, window, model, &mut baselines)
        } else {
            detect_episodes(counts, history_from, window, model)
        };
        for episode in episodes {
            if let Some(earlier) = by_start.get(&episode.start_minute) {
                assert!(!earlier.closed, "{earlier:?} reported again as {episode:?}");
                assert_eq!(earlier.start_average, episode.start_average);
                assert_eq!(earlier.baseline_average, episode.baseline_average);
                assert_eq!(
                    earlier.baseline_duration_minutes,
                    episode.baseline_duration_minutes
                );
                assert!(earlier.end_minute <= episode.end_minute);
            }
            by_start.insert(episode.start_minute, episode);
        }
    }
    by_start.into_values().collect()
}

fn cut_points(range: Range<i64>, fractions: &[f64]) -> Vec<i64> {
    let length = (range.end - range.start) as f64;
    let mut cuts: Vec<i64> = fractions
        .iter()
        .map(|fraction| range.start + (fraction * length) as i64)
        .collect();
    cuts.push(range.start);
    cuts.push(range.end);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn evaluating_in_chunks_gives_the_episodes_of_evaluating_at_once(
        seed in any::<u64>(),
        spikes in 0usize..25,
        quiet in 1u32..15,
        longest in 15u32..200,
        seasonality in prop::sample::select(vec![
            Seasonality::None,
            Seasonality::TimeOfDay,
            Seasonality::TimeOfDayAndWeekday,
        ]),
        history_offset in 0i64..2_000,
        fractions in prop::collection::vec(0.0f64..1.0, 0..40),
        keep_baselines in any::<bool>(),
    ) {
        let model = model(quiet, longest.max(quiet), seasonality);
        prop_assert_eq!(model.validate(), Ok(()));
        let counts = random_series(seed, spikes);
        let history_from = FIRST_DAY * MINUTES_PER_DAY + history_offset;
        let evaluated = (FIRST_DAY + 2) * MINUTES_PER_DAY..(FIRST_DAY + DAYS) * MINUTES_PER_DAY;
        let at_once = detect_episodes(&counts, history_from, evaluated.clone(), &model);
        let cuts = cut_points(evaluated, &fractions);
        let chunked = evaluate_in_chunks(&counts, history_from, &cuts, &model, keep_baselines);
        prop_assert_eq!(&chunked, &at_once);
        // The last chunk's open episodes are the all-at-once open ones: both end at the same
        // minute.
        prop_assert!(at_once.iter().all(|episode| episode.start_minute < episode.end_minute));
    }

    #[test]
    fn minute_by_minute_gives_the_episodes_of_a_replay(
        seed in any::<u64>(),
        spikes in 1usize..10,
    ) {
        let model = model(5, 60, Seasonality::TimeOfDayAndWeekday);
        let counts = random_series(seed, spikes);
        let history_from = FIRST_DAY * MINUTES_PER_DAY;
        // The last day, settled one minute at a time.
        let evaluated = (FIRST_DAY + DAYS - 1) * MINUTES_PER_DAY..(FIRST_DAY + DAYS) * MINUTES_PER_DAY;
        let cuts: Vec<i64> = evaluated.clone().chain([evaluated.end]).collect();
        let live = evaluate_in_chunks(&counts, history_from, &cuts, &model, true);
        let replay = detect_episodes(&counts, history_from, evaluated, &model);
        prop_assert_eq!(live, replay);
    }

    #[test]
    fn counts_before_the_lookback_change_nothing(
        seed in any::<u64>(),
        spikes in 0usize..25,
        window_start_offset in 0i64..MINUTES_PER_DAY,
        window_length in 1i64..600,
    ) {
        let model = model(10, 180, Seasonality::TimeOfDayAndWeekday);
        let counts = random_series(seed, spikes);
        let history_from = FIRST_DAY * MINUTES_PER_DAY;
        let start = (FIRST_DAY + DAYS - 2) * MINUTES_PER_DAY + window_start_offset;
        let window = start..start + window_length;
        let supplied: MinuteCounts = counts
            .range(window.start - lookback_minutes(&model)..window.end)
            .map(|(&minute, &count)| (minute, count))
            .collect();
        prop_assert_eq!(
            detect_episodes(&supplied, history_from, window.clone(), &model),
            detect_episodes(&counts, history_from, window, &model)
        );
    }
}
