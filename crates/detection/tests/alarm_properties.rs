//! Properties of the alarm state machine, with proptest, on random small cases (rules with 1–6
//! evaluation periods, every operator and missing-data treatment, sparse datapoints around
//! period 0, ranges crossing into negative periods):
//!
//! - `evaluate_alarm`, which jumps over runs of empty windows, gives exactly the transitions of
//!   a naive evaluation that visits every period and rebuilds its window (`naive_evaluation`,
//!   written from the rules in `docs/alarms.md`, not from the implementation);
//! - evaluating `first..=k` and then `k+1..=last` from the state the first part ended in gives
//!   the same transitions as `first..=last` at once — what lets orgtrail evaluate as events
//!   arrive and replay stored history with the same result.
//!
//! `PROPTEST_CASES=N cargo test -p orgtrail-detection --test alarm_properties` runs N inputs per
//! property (256 by default).

use orgtrail_detection::alarm::{
    evaluate_alarm, state_after, state_reason, AlarmRule, AlarmState, ComparisonOperator,
    Datapoints, PeriodIndex, Transition, TreatMissingData, WindowPoint,
};
use proptest::prelude::*;

/// The reference: every period of `first..=last`, its window rebuilt from scratch, the state
/// decided by the four rules as `docs/alarms.md` states them.
fn naive_evaluation(
    rule: &AlarmRule,
    state_before: AlarmState,
    datapoints: &Datapoints,
    first: i64,
    last: i64,
) -> Vec<Transition> {
    let n = i64::from(rule.evaluation_periods);
    let d = rule.datapoints_to_alarm;
    let mut state = state_before;
    let mut transitions = Vec::new();
    for period in first..=last {
        let window: Vec<WindowPoint> = (period - n + 1..=period)
            .map(|period| {
                let value = datapoints.get(PeriodIndex(period));
                WindowPoint {
                    period: PeriodIndex(period),
                    value,
                    breaching: value.is_some_and(|value| {
                        rule.comparison_operator.breaches(value, rule.threshold)
                    }),
                }
            })
            .collect();
        let breaching = window.iter().filter(|point| point.breaching).count() as u32;
        let missing = window.iter().filter(|point| point.value.is_none()).count() as u32;
        let all_missing = missing == rule.evaluation_periods;
        let alarm_if = |count: u32| {
            if count >= d {
                AlarmState::Alarm
            } else {
                AlarmState::Ok
            }
        };
        let new_state = match rule.treat_missing_data {
            TreatMissingData::NotBreaching => alarm_if(breaching),
            TreatMissingData::Breaching => alarm_if(breaching + missing),
            TreatMissingData::Missing if all_missing => AlarmState::InsufficientData,
            TreatMissingData::Ignore if all_missing => state,
            TreatMissingData::Missing | TreatMissingData::Ignore => alarm_if(breaching),
        };
        if new_state != state {
            transitions.push(Transition {
                period: PeriodIndex(period),
                old_state: state,
                new_state,
                reason: state_reason(rule, new_state, &window),
                window,
            });
            state = new_state;
        }
    }
    transitions
}

fn rule() -> impl Strategy<Value = AlarmRule> {
    let operator = prop::sample::select(vec![
        ComparisonOperator::GreaterThanOrEqualToThreshold,
        ComparisonOperator::GreaterThanThreshold,
        ComparisonOperator::LessThanThreshold,
        ComparisonOperator::LessThanOrEqualToThreshold,
    ]);
    let treatment = prop::sample::select(vec![
        TreatMissingData::Missing,
        TreatMissingData::NotBreaching,
        TreatMissingData::Breaching,
        TreatMissingData::Ignore,
    ]);
    (1u32..=6)
        .prop_flat_map(|evaluation_periods| (Just(evaluation_periods), 1..=evaluation_periods))
        .prop_flat_map(move |(evaluation_periods, datapoints_to_alarm)| {
            (
                prop::sample::select(vec![60u32, 300, 3_600]),
                prop::sample::select(vec![0.0, 1.0, 2.0, 2.5]),
                operator.clone(),
                treatment.clone(),
            )
                .prop_map(
                    move |(period_seconds, threshold, comparison_operator, treat_missing_data)| {
                        AlarmRule {
                            period_seconds,
                            evaluation_periods,
                            datapoints_to_alarm,
                            threshold,
                            comparison_operator,
                            treat_missing_data,
                        }
                    },
                )
        })
        .prop_filter("a valid rule", |rule| rule.validate().is_ok())
}

fn state() -> impl Strategy<Value = AlarmState> {
    prop::sample::select(vec![
        AlarmState::Ok,
        AlarmState::Alarm,
        AlarmState::InsufficientData,
    ])
}

/// Up to 24 datapoints in periods -40..40, clustered or scattered, with values on and around
/// the thresholds.
fn datapoints() -> impl Strategy<Value = Datapoints> {
    let value = prop::sample::select(vec![0.0, 1.0, 2.0, 2.5, 3.0, 7.0]);
    prop::collection::btree_map(-40i64..40, value, 0..24).prop_map(|points| {
        points
            .into_iter()
            .map(|(period, value)| (PeriodIndex(period), value))
            .collect()
    })
}

proptest! {
    #[test]
    fn evaluation_jumping_over_empty_windows_equals_visiting_every_period(
        rule in rule(),
        state_before in state(),
        datapoints in datapoints(),
        first in -50i64..50,
        last in -50i64..50,
    ) {
        let sparse = evaluate_alarm(&rule, state_before, &datapoints, PeriodIndex(first), PeriodIndex(last));
        let naive = naive_evaluation(&rule, state_before, &datapoints, first, last);
        prop_assert_eq!(sparse, naive);
    }

    #[test]
    fn evaluating_in_two_parts_gives_the_transitions_of_one_evaluation(
        rule in rule(),
        state_before in state(),
        datapoints in datapoints(),
        first in -50i64..50,
        length in 1i64..100,
        split in 0.0f64..1.0,
    ) {
        let last = first + length;
        // first <= k < last.
        let k = first + ((length as f64 * split) as i64).min(length - 1);
        let whole = evaluate_alarm(&rule, state_before, &datapoints, PeriodIndex(first), PeriodIndex(last));
        let mut parts = evaluate_alarm(&rule, state_before, &datapoints, PeriodIndex(first), PeriodIndex(k));
        let state_at_k = state_after(state_before, &parts);
        parts.extend(evaluate_alarm(&rule, state_at_k, &datapoints, PeriodIndex(k + 1), PeriodIndex(last)));
        prop_assert_eq!(&whole, &parts);
        // And each transition starts in the state the previous one ended in.
        let mut state = state_before;
        for transition in &whole {
            prop_assert_eq!(transition.old_state, state);
            prop_assert_ne!(transition.new_state, state);
            prop_assert_eq!(transition.window.len(), rule.evaluation_periods as usize);
            state = transition.new_state;
        }
    }
}
