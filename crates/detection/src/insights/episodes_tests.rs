//! Episodes and their statistics on small hand-made series.

use super::{
    detect_episodes, detect_episodes_with, explain_minutes, DayBaselines, InsightModel,
    MinuteCounts, Seasonality, MINUTES_PER_DAY,
};

/// A Monday (2024-11-04) as a Unix day: weekday baselines stay weekdays for a few days.
const MONDAY: i64 = 20_031;

fn steady(days: i64, per_minute: u64) -> MinuteCounts {
    let start = MONDAY * MINUTES_PER_DAY;
    (start..start + days * MINUTES_PER_DAY)
        .map(|minute| (minute, per_minute))
        .collect()
}

fn set(counts: &mut MinuteCounts, minutes: std::ops::Range<i64>, count: u64) {
    for minute in minutes {
        counts.insert(minute, count);
    }
}

fn day_start(offset: i64) -> i64 {
    (MONDAY + offset) * MINUTES_PER_DAY
}

fn short_model() -> InsightModel {
    InsightModel {
        baseline_days: 3,
        min_history_days: 3,
        recurring_peak_days: 2,
        seasonality: Seasonality::TimeOfDay,
        ..InsightModel::default()
    }
}

#[test]
fn a_burst_is_one_closed_episode_with_its_statistics() {
    let mut counts = steady(5, 10);
    let burst = day_start(4) + 600;
    set(&mut counts, burst..burst + 20, 100);
    counts.insert(burst, 80);
    let model = short_model();
    let episodes = detect_episodes(&counts, day_start(0), day_start(4)..day_start(5), &model);
    assert_eq!(episodes.len(), 1, "{episodes:?}");
    let episode = &episodes[0];
    assert_eq!(episode.start_minute, burst);
    assert_eq!(episode.end_minute, burst + 20);
    assert_eq!(episode.duration_minutes(), 20);
    assert!(episode.closed);
    assert_eq!(episode.baseline_duration_minutes, 3 * MINUTES_PER_DAY);
    assert_eq!(episode.baseline_average, 10.0);
    assert_eq!(episode.start_average, 80.0);
    assert_eq!(episode.insight_average, (80.0 + 19.0 * 100.0) / 20.0);
    assert_eq!(episode.peak, 100);
    assert_eq!(episode.total, 80 + 19 * 100);
    assert_eq!(episode.unusual_minutes, 20);
    assert!((episode.expected_average - 10.0).abs() < 1e-9);
}

#[test]
fn going_from_nothing_to_two_calls_is_not_an_insight() {
    let mut counts = MinuteCounts::new();
    // One call a day for a week, then 2 calls a minute for an hour: far above the baseline,
    // below the minimum rate.
    for day in 0..8 {
        counts.insert(day_start(day) + 300, 1);
    }
    set(&mut counts, day_start(8) + 600..day_start(8) + 660, 2);
    let model = InsightModel::default();
    let window = day_start(8)..day_start(9);
    assert_eq!(
        detect_episodes(&counts, day_start(0), window.clone(), &model),
        []
    );
    // At the minimum rate it is one.
    set(&mut counts, day_start(8) + 600..day_start(8) + 660, 5);
    let episodes = detect_episodes(&counts, day_start(0), window, &model);
    assert_eq!(episodes.len(), 1);
}

#[test]
fn too_little_history_raises_nothing() {
    let mut counts = steady(3, 10);
    set(&mut counts, day_start(2) + 600..day_start(2) + 630, 500);
    let model = short_model();
    // The scope's history starts with the series: 2 days before the burst, 3 needed.
    assert_eq!(
        detect_episodes(&counts, day_start(0), day_start(2)..day_start(3), &model),
        []
    );
    let points = explain_minutes(
        &counts,
        day_start(2) + 600..day_start(2) + 601,
        day_start(0),
        &model,
    );
    assert_eq!(points[0].threshold, None);
    assert!(!points[0].unusual);
    // With the scope older than the series, the same burst is raised.
    let older_scope = day_start(-3);
    assert_eq!(
        detect_episodes(&counts, older_scope, day_start(2)..day_start(3), &model).len(),
        1
    );
}

#[test]
fn an_episode_over_midnight_is_one_episode_whatever_the_windows() {
    let mut counts = steady(6, 10);
    let burst = day_start(5) - 30;
    set(&mut counts, burst..burst + 60, 200);
    let model = short_model();
    let at_once = detect_episodes(&counts, day_start(0), day_start(4)..day_start(6), &model);
    assert_eq!(at_once.len(), 1);
    assert_eq!(
        (at_once[0].start_minute, at_once[0].end_minute),
        (burst, burst + 60)
    );
    // Day by day: the first day returns it open, the second closed, with the same start.
    let first_day = detect_episodes(&counts, day_start(0), day_start(4)..day_start(5), &model);
    assert_eq!(first_day.len(), 1);
    assert!(!first_day[0].closed);
    assert_eq!(first_day[0].start_minute, burst);
    assert_eq!(first_day[0].end_minute, day_start(5));
    assert_eq!(first_day[0].start_average, at_once[0].start_average);
    assert_eq!(first_day[0].baseline_average, at_once[0].baseline_average);
    let second_day = detect_episodes(&counts, day_start(0), day_start(5)..day_start(6), &model);
    assert_eq!(second_day, at_once);
}

#[test]
fn short_gaps_are_bridged_and_long_ones_split() {
    let mut counts = steady(5, 10);
    let start = day_start(4) + 300;
    set(&mut counts, start..start + 10, 200);
    // A gap of 9 quiet minutes (fewer than quiet_minutes = 10): one episode.
    set(&mut counts, start + 19..start + 25, 200);
    // A gap of 10 quiet minutes: a new one.
    set(&mut counts, start + 35..start + 40, 200);
    let model = short_model();
    let episodes = detect_episodes(&counts, day_start(0), day_start(4)..day_start(5), &model);
    let spans: Vec<(i64, i64)> = episodes
        .iter()
        .map(|episode| (episode.start_minute - start, episode.end_minute - start))
        .collect();
    assert_eq!(spans, [(0, 25), (35, 40)]);
    assert_eq!(episodes[0].unusual_minutes, 16);
}

#[test]
fn an_episode_is_open_until_its_quiet_minutes_have_passed() {
    let mut counts = steady(5, 10);
    let start = day_start(4) + 300;
    set(&mut counts, start..start + 5, 200);
    let model = short_model();
    let history = day_start(0);
    let open = detect_episodes(&counts, history, day_start(4)..start + 14, &model);
    assert!(!open[0].closed);
    let closed = detect_episodes(&counts, history, day_start(4)..start + 15, &model);
    assert!(closed[0].closed);
    assert_eq!(closed[0].end_minute, start + 5);
    // The next window still reports it while it was open at its start, then no more.
    let next = detect_episodes(&counts, history, start + 14..start + 20, &model);
    assert_eq!(next, closed);
    assert_eq!(
        detect_episodes(&counts, history, start + 15..start + 20, &model),
        []
    );
}

#[test]
fn a_run_longer_than_the_longest_insight_raises_one_insight() {
    let mut counts = steady(5, 10);
    let start = day_start(4) + 60;
    set(&mut counts, start..start + 300, 200);
    let model = InsightModel {
        max_insight_minutes: 120,
        ..short_model()
    };
    let history = day_start(0);
    let episodes = detect_episodes(&counts, history, day_start(4)..day_start(5), &model);
    assert_eq!(episodes.len(), 1);
    assert_eq!(
        (episodes[0].start_minute, episodes[0].end_minute),
        (start, start + 120)
    );
    assert!(episodes[0].closed);
    // A window inside the rest of the run raises nothing.
    assert_eq!(
        detect_episodes(&counts, history, start + 200..start + 260, &model),
        []
    );
}

#[test]
fn a_peak_the_series_reaches_daily_is_not_unusual() {
    // A daily job: 300 calls at 02:00 every day on a background of 1 a minute.
    let mut counts = steady(5, 1);
    for day in 0..5 {
        counts.insert(day_start(day) + 120, 300);
    }
    let model = short_model();
    assert_eq!(
        detect_episodes(&counts, day_start(0), day_start(4)..day_start(5), &model),
        []
    );
    // The same peak at another hour is.
    counts.insert(day_start(4) + 720, 300);
    let episodes = detect_episodes(&counts, day_start(0), day_start(4)..day_start(5), &model);
    assert_eq!(episodes.len(), 1);
    assert_eq!(episodes[0].start_minute, day_start(4) + 720);
}

#[test]
fn the_time_of_day_sets_what_is_expected() {
    // Busy 12:00–18:00 (60 a minute), quiet otherwise (2 a minute).
    let mut counts = MinuteCounts::new();
    for day in 0..5 {
        for minute in 0..MINUTES_PER_DAY {
            let busy = (720..1080).contains(&minute);
            counts.insert(day_start(day) + minute, if busy { 60 } else { 2 });
        }
    }
    let seasonal = short_model();
    let flat = InsightModel {
        seasonality: Seasonality::None,
        ..short_model()
    };
    let busy_minute = day_start(4) + 800;
    let quiet_minute = day_start(4) + 200;
    let point = |model: &InsightModel, minute: i64| {
        explain_minutes(&counts, minute..minute + 1, day_start(0), model)[0]
    };
    assert!(point(&seasonal, busy_minute).expected > 50.0);
    assert!(point(&seasonal, quiet_minute).expected < 10.0);
    let flat_expected = point(&flat, busy_minute).expected;
    assert!((flat_expected - point(&flat, quiet_minute).expected).abs() < 1e-9);
    // 40 a minute at night is unusual with seasonality, not without.
    set(&mut counts, quiet_minute..quiet_minute + 5, 40);
    let window = day_start(4)..day_start(5);
    assert_eq!(
        detect_episodes(&counts, day_start(0), window.clone(), &seasonal).len(),
        1
    );
    assert_eq!(detect_episodes(&counts, day_start(0), window, &flat), []);
}

#[test]
fn weekends_are_expected_to_be_quieter_than_weekdays() {
    // Weekdays 20 a minute, weekends 2, for two weeks; then a weekend day at weekday level.
    let mut counts = MinuteCounts::new();
    for day in 0..19 {
        let weekend = matches!(day % 7, 5 | 6);
        for minute in 0..MINUTES_PER_DAY {
            counts.insert(day_start(day) + minute, if weekend { 2 } else { 20 });
        }
    }
    let model = InsightModel::default();
    let saturday = day_start(19);
    let weekday_points = explain_minutes(
        &counts,
        day_start(18)..day_start(18) + 1,
        day_start(0),
        &model,
    );
    let weekend_points = explain_minutes(&counts, saturday..saturday + 1, day_start(0), &model);
    assert!(weekday_points[0].expected > 15.0, "{weekday_points:?}");
    assert!(weekend_points[0].expected < 5.0, "{weekend_points:?}");
}

#[test]
fn the_cache_gives_what_fresh_baselines_give() {
    let mut counts = steady(6, 10);
    set(&mut counts, day_start(5) + 100..day_start(5) + 110, 300);
    let model = short_model();
    let mut baselines = DayBaselines::new();
    for start in (day_start(4)..day_start(6)).step_by(37) {
        let window = start..start + 37;
        assert_eq!(
            detect_episodes_with(
                &counts,
                day_start(0),
                window.clone(),
                &model,
                &mut baselines
            ),
            detect_episodes(&counts, day_start(0), window, &model)
        );
    }
    // Another model empties the cache rather than reuse it.
    let other = InsightModel {
        threshold_sigma: 8.0,
        ..short_model()
    };
    let window = day_start(5)..day_start(6);
    assert_eq!(
        detect_episodes_with(
            &counts,
            day_start(0),
            window.clone(),
            &other,
            &mut baselines
        ),
        detect_episodes(&counts, day_start(0), window, &other)
    );
    assert!(baselines.len() <= 3);
}
