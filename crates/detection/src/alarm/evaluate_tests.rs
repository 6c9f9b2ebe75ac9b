//! Evaluation tests: each treatment of missing data on M-of-N windows (N = 3, D = 2: the table
//! of `docs/alarms.md`), the first evaluation, `ignore` through a gap, periods before 1970,
//! empty and extreme ranges, and a ten-year range of one-minute periods.

use chrono::{DateTime, Utc};

use super::{
    evaluate_alarm, period_of, state_after, AlarmRule, AlarmState, ComparisonOperator, Datapoints,
    PeriodIndex, Transition, TreatMissingData, WindowPoint,
};
use AlarmState::{Alarm, InsufficientData, Ok as Fine};

fn rule(evaluation_periods: u32, datapoints_to_alarm: u32, treat: TreatMissingData) -> AlarmRule {
    AlarmRule {
        period_seconds: 300,
        evaluation_periods,
        datapoints_to_alarm,
        threshold: 1.0,
        comparison_operator: ComparisonOperator::GreaterThanOrEqualToThreshold,
        treat_missing_data: treat,
    }
}

fn datapoints(points: &[(i64, f64)]) -> Datapoints {
    points
        .iter()
        .map(|&(period, value)| (PeriodIndex(period), value))
        .collect()
}

fn evaluate(
    rule: &AlarmRule,
    before: AlarmState,
    points: &[(i64, f64)],
    first: i64,
    last: i64,
) -> Vec<Transition> {
    evaluate_alarm(
        rule,
        before,
        &datapoints(points),
        PeriodIndex(first),
        PeriodIndex(last),
    )
}

/// Each transition as (period, new state), checking that each starts where the last ended.
fn changes(before: AlarmState, transitions: &[Transition]) -> Vec<(i64, AlarmState)> {
    let mut state = before;
    let mut changes = Vec::new();
    for transition in transitions {
        assert_eq!(transition.old_state, state, "{transition:?}");
        assert_ne!(transition.new_state, state, "{transition:?}");
        state = transition.new_state;
        changes.push((transition.period.0, transition.new_state));
    }
    changes
}

/// A window written oldest first, one character per period: `X` breaching (5.0), `0` not
/// breaching (0.0), `-` missing; the window ends at period 2.
fn window(pattern: &str) -> Vec<(i64, f64)> {
    pattern
        .split_whitespace()
        .zip(0..)
        .filter_map(|(point, period)| match point {
            "X" => Some((period, 5.0)),
            "0" => Some((period, 0.0)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_documented_table_for_three_periods_and_two_to_alarm_holds() {
    // Pattern, then the state for missing, ignore (None: unchanged), breaching, notBreaching.
    let table: [(&str, [Option<AlarmState>; 4]); 11] = [
        (
            "X X X",
            [Some(Alarm), Some(Alarm), Some(Alarm), Some(Alarm)],
        ),
        (
            "X 0 X",
            [Some(Alarm), Some(Alarm), Some(Alarm), Some(Alarm)],
        ),
        (
            "X - X",
            [Some(Alarm), Some(Alarm), Some(Alarm), Some(Alarm)],
        ),
        ("0 X -", [Some(Fine), Some(Fine), Some(Alarm), Some(Fine)]),
        ("X - -", [Some(Fine), Some(Fine), Some(Alarm), Some(Fine)]),
        ("- - X", [Some(Fine), Some(Fine), Some(Alarm), Some(Fine)]),
        ("0 - -", [Some(Fine), Some(Fine), Some(Alarm), Some(Fine)]),
        ("0 0 -", [Some(Fine), Some(Fine), Some(Fine), Some(Fine)]),
        ("0 0 0", [Some(Fine), Some(Fine), Some(Fine), Some(Fine)]),
        ("0 X 0", [Some(Fine), Some(Fine), Some(Fine), Some(Fine)]),
        (
            "- - -",
            [Some(InsufficientData), None, Some(Alarm), Some(Fine)],
        ),
    ];
    let treatments = [
        TreatMissingData::Missing,
        TreatMissingData::Ignore,
        TreatMissingData::Breaching,
        TreatMissingData::NotBreaching,
    ];
    for (pattern, expected) in table {
        for (treatment, expected) in treatments.into_iter().zip(expected) {
            for before in [Fine, Alarm, InsufficientData] {
                let transitions = evaluate(&rule(3, 2, treatment), before, &window(pattern), 2, 2);
                let after = state_after(before, &transitions);
                assert_eq!(
                    after,
                    expected.unwrap_or(before),
                    "{pattern:?} {treatment} from {before}"
                );
                assert_eq!(transitions.len(), usize::from(after != before));
            }
        }
    }
}

#[test]
fn not_breaching_needs_d_breaching_datapoints_in_the_window() {
    let rule = rule(3, 2, TreatMissingData::NotBreaching);
    let transitions = evaluate(&rule, Fine, &[(0, 5.0), (2, 3.0)], 0, 10);
    // At 2 the window 0..=2 holds two breaching; at 3 (1..=3) only one.
    assert_eq!(changes(Fine, &transitions), [(2, Alarm), (3, Fine)]);
    let alarm = &transitions[0];
    assert_eq!(
        alarm.window,
        [
            WindowPoint {
                period: PeriodIndex(0),
                value: Some(5.0),
                breaching: true
            },
            WindowPoint {
                period: PeriodIndex(1),
                value: None,
                breaching: false
            },
            WindowPoint {
                period: PeriodIndex(2),
                value: Some(3.0),
                breaching: true
            },
        ]
    );
    assert_eq!(
        alarm.changed_at(300),
        DateTime::<Utc>::from_timestamp(900, 0).unwrap()
    );
}

#[test]
fn breaching_counts_missing_datapoints_against_the_alarm() {
    let rule = rule(3, 2, TreatMissingData::Breaching);
    let points = [(0, 0.0), (1, 0.0), (2, 0.0), (3, 5.0)];
    let transitions = evaluate(&rule, InsufficientData, &points, 0, 20);
    // 0: two missing of -2..=0 → ALARM; 1: one missing, no breach → OK; 4: 5.0 and one
    // missing → ALARM; from 6 on every window is missing, which stays ALARM.
    assert_eq!(
        changes(InsufficientData, &transitions),
        [(0, Alarm), (1, Fine), (4, Alarm)]
    );
}

#[test]
fn missing_is_insufficient_data_only_when_the_whole_window_is_missing() {
    let rule = rule(3, 2, TreatMissingData::Missing);
    let points = [(0, 5.0), (6, 5.0), (7, 5.0)];
    let transitions = evaluate(&rule, Fine, &points, -1, 12);
    // -1: nothing yet; 0..=2: one breaching of three is not enough but is data → OK;
    // 3..=5: nothing; 7: two breaching → ALARM; 8: 6, 7 still in the window; 9: only 7 → OK;
    // 10: nothing.
    assert_eq!(
        changes(Fine, &transitions),
        [
            (-1, InsufficientData),
            (0, Fine),
            (3, InsufficientData),
            (6, Fine),
            (7, Alarm),
            (9, Fine),
            (10, InsufficientData),
        ]
    );
}

#[test]
fn ignore_keeps_alarm_through_a_gap_and_leaves_on_the_next_datapoint() {
    let rule = rule(2, 1, TreatMissingData::Ignore);
    let points = [(0, 5.0), (10, 0.0)];
    let transitions = evaluate(&rule, Fine, &points, 0, 20);
    // 2..=9 have empty windows: the state stays ALARM; at 10 a datapoint within the threshold.
    assert_eq!(changes(Fine, &transitions), [(0, Alarm), (10, Fine)]);
    // The same with missing goes to INSUFFICIENT_DATA in the gap.
    let missing = AlarmRule {
        treat_missing_data: TreatMissingData::Missing,
        ..rule
    };
    let transitions = evaluate(&missing, Fine, &points, 0, 20);
    assert_eq!(
        changes(Fine, &transitions),
        [
            (0, Alarm),
            (2, InsufficientData),
            (10, Fine),
            (12, InsufficientData)
        ]
    );
}

#[test]
fn the_first_evaluation_from_insufficient_data_takes_the_windows_state() {
    let empty: [(i64, f64); 0] = [];
    let cases = [
        (TreatMissingData::NotBreaching, vec![(5, Fine)]),
        (TreatMissingData::Breaching, vec![(5, Alarm)]),
        (TreatMissingData::Missing, vec![]),
        (TreatMissingData::Ignore, vec![]),
    ];
    for (treatment, expected) in cases {
        let transitions = evaluate(&rule(3, 2, treatment), InsufficientData, &empty, 5, 1_000);
        assert_eq!(
            changes(InsufficientData, &transitions),
            expected,
            "{treatment}"
        );
    }
    // With data in the first window, the first evaluation decides on it.
    let transitions = evaluate(
        &rule(3, 2, TreatMissingData::Missing),
        InsufficientData,
        &[(4, 5.0), (5, 5.0)],
        5,
        5,
    );
    assert_eq!(changes(InsufficientData, &transitions), [(5, Alarm)]);
    let transitions = evaluate(
        &rule(3, 2, TreatMissingData::Missing),
        InsufficientData,
        &[(4, 0.0)],
        5,
        5,
    );
    assert_eq!(changes(InsufficientData, &transitions), [(5, Fine)]);
}

#[test]
fn datapoints_before_the_range_count_in_its_first_windows() {
    let rule = rule(3, 2, TreatMissingData::NotBreaching);
    // 8 and 9 are before the range but in the window of 10.
    let transitions = evaluate(&rule, Fine, &[(8, 5.0), (9, 5.0), (30, 5.0)], 10, 40);
    assert_eq!(changes(Fine, &transitions), [(10, Alarm), (11, Fine)]);
    // And datapoints after the range are never looked at.
    assert!(evaluate(&rule, Fine, &[(41, 5.0), (42, 5.0)], 10, 40).is_empty());
}

#[test]
fn first_after_last_evaluates_nothing() {
    for treatment in [TreatMissingData::Breaching, TreatMissingData::NotBreaching] {
        let transitions = evaluate(&rule(1, 1, treatment), InsufficientData, &[(5, 5.0)], 6, 5);
        assert!(transitions.is_empty());
    }
    assert!(evaluate(
        &rule(1, 1, TreatMissingData::Missing),
        Fine,
        &[],
        i64::MAX,
        i64::MIN
    )
    .is_empty());
}

#[test]
fn periods_before_1970_have_negative_indexes_and_evaluate_like_any_other() {
    let rule = AlarmRule {
        period_seconds: 60,
        ..rule(2, 2, TreatMissingData::Missing)
    };
    let period = |text: &str| period_of(text.parse::<DateTime<Utc>>().unwrap(), 60).0;
    let first_match = period("1969-12-31T23:58:30Z");
    let second_match = period("1969-12-31T23:59:59Z");
    assert_eq!((first_match, second_match), (-2, -1));
    let points = [(first_match, 1.0), (second_match, 2.0)];
    let transitions = evaluate(&rule, InsufficientData, &points, -5, 5);
    assert_eq!(
        changes(InsufficientData, &transitions),
        [(-2, Fine), (-1, Alarm), (0, Fine), (1, InsufficientData)]
    );
    assert_eq!(
        transitions[1].reason,
        "Threshold Crossed: 2 out of the last 2 datapoints [2.0 (31/12/69 23:59:00), 1.0 \
         (31/12/69 23:58:00)] were greater than or equal to the threshold (1.0) (minimum 2 \
         datapoints for OK -> ALARM transition)."
    );
    assert_eq!(
        transitions[1].changed_at(60).to_rfc3339(),
        "1970-01-01T00:00:00+00:00"
    );
}

#[test]
fn extreme_period_indexes_neither_overflow_nor_panic() {
    let rule = rule(5, 2, TreatMissingData::NotBreaching);
    let points = [(i64::MIN, 5.0), (i64::MIN + 1, 5.0), (i64::MAX, 5.0)];
    let transitions = evaluate(&rule, InsufficientData, &points, i64::MIN, i64::MAX);
    assert_eq!(
        changes(InsufficientData, &transitions),
        [
            (i64::MIN, Fine),
            (i64::MIN + 1, Alarm),
            (i64::MIN + 5, Fine)
        ]
    );
    // The window of i64::MIN reaches below the representable periods: those are missing.
    let transitions = evaluate(&rule, Fine, &points, i64::MIN, i64::MIN);
    assert!(transitions.is_empty());
    let breaching = AlarmRule {
        treat_missing_data: TreatMissingData::Breaching,
        ..rule
    };
    let transitions = evaluate(&breaching, Fine, &points, i64::MIN, i64::MIN);
    assert_eq!(transitions[0].window.len(), 1);
    assert_eq!(transitions[0].new_state, Alarm);
    let transitions = evaluate(&rule, Fine, &points, i64::MAX - 1, i64::MAX);
    assert!(transitions.is_empty());
}

#[test]
fn an_invalid_rule_is_evaluated_without_panicking() {
    let zero = AlarmRule {
        evaluation_periods: 0,
        datapoints_to_alarm: 0,
        ..rule(1, 1, TreatMissingData::Missing)
    };
    let transitions = evaluate(&zero, Fine, &[(3, 5.0)], 0, 10);
    assert_eq!(
        changes(Fine, &transitions),
        [(0, InsufficientData), (3, Alarm), (4, InsufficientData)]
    );
    let more_than_n = rule(2, 3, TreatMissingData::Breaching);
    let transitions = evaluate(&more_than_n, Fine, &[(3, 5.0)], 0, 10);
    assert!(transitions.is_empty());
}

#[test]
fn counts_add_up_per_period_and_nan_is_a_datapoint_that_never_breaches() {
    let mut counts: Datapoints = [
        (PeriodIndex(7), 1.0),
        (PeriodIndex(7), 1.0),
        (PeriodIndex(9), 1.0),
    ]
    .into_iter()
    .collect();
    counts.add(PeriodIndex(9), 2.0);
    assert_eq!(counts.get(PeriodIndex(7)), Some(2.0));
    assert_eq!(counts.get(PeriodIndex(9)), Some(3.0));
    assert_eq!(counts.get(PeriodIndex(8)), None);
    assert_eq!(counts.insert(PeriodIndex(8), f64::NAN), None);
    assert_eq!(counts.len(), 3);
    let rule = rule(1, 1, TreatMissingData::Missing);
    let transitions = evaluate_alarm(
        &rule,
        InsufficientData,
        &counts,
        PeriodIndex(8),
        PeriodIndex(8),
    );
    assert_eq!(changes(InsufficientData, &transitions), [(8, Fine)]);
    assert!(!transitions[0].window[0].breaching);
}

/// A deterministic scatter of `count` periods over `span` periods from `start`, at least
/// `span / count / 2` apart.
fn scattered_periods(start: i64, span: i64, count: i64) -> Vec<i64> {
    let slot = span / count;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count)
        .map(|index| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let offset = i64::try_from((seed >> 33) % u64::try_from(slot / 2).unwrap()).unwrap();
            start + index * slot + offset
        })
        .collect()
}

#[test]
fn ten_years_of_one_minute_periods_with_a_thousand_datapoints_are_decided_run_by_run() {
    let first = period_of("2016-01-01T00:00:00Z".parse().unwrap(), 60).0;
    let last = period_of("2026-01-01T00:00:00Z".parse().unwrap(), 60).0;
    assert!(last - first > 5_000_000);
    let periods = scattered_periods(first + 10, last - first - 20, 1_000);
    let rule = AlarmRule {
        period_seconds: 60,
        ..rule(3, 1, TreatMissingData::Missing)
    };

    // Breaching counts: ALARM at each, INSUFFICIENT_DATA once it has left the window.
    let points: Vec<(i64, f64)> = periods
        .iter()
        .zip(1..)
        .map(|(&period, n)| (period, f64::from(n % 3 + 1)))
        .collect();
    let transitions = evaluate(&rule, Fine, &points, first, last);
    let mut expected = vec![(first, InsufficientData)];
    for &period in &periods {
        expected.push((period, Alarm));
        expected.push((period + 3, InsufficientData));
    }
    assert_eq!(changes(Fine, &transitions), expected);

    // Counts within the threshold, missing as breaching, all three needed: ALARM over the gaps,
    // OK while a datapoint is in the window.
    let within: Vec<(i64, f64)> = periods.iter().map(|&period| (period, 0.0)).collect();
    let breaching = AlarmRule {
        datapoints_to_alarm: 3,
        treat_missing_data: TreatMissingData::Breaching,
        ..rule
    };
    let transitions = evaluate(&breaching, InsufficientData, &within, first, last);
    let mut expected = vec![(first, Alarm)];
    for &period in &periods {
        expected.push((period, Fine));
        expected.push((period + 3, Alarm));
    }
    assert_eq!(changes(InsufficientData, &transitions), expected);
}
