//! The alarm state machine: the datapoints of one alarm's metric, and `evaluate_alarm`, which
//! walks the periods of a range and returns the state transitions — jumping over the runs of
//! periods whose window holds no datapoint, so its cost does not depend on the range's length.

use std::collections::BTreeMap;
use std::ops::Bound;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::period::{period_end, PeriodIndex};
use super::reason::state_reason;
use super::rule::AlarmRule;
use super::state::{AlarmState, TreatMissingData};

/// One alarm's metric: a value for each period that had one (orgtrail: the number of matching
/// events in the period). A period that is absent is a missing datapoint — which is what a
/// metric filter gives for a period without a match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Datapoints {
    values: BTreeMap<i64, f64>,
}

/// A state change: the alarm, evaluated at the end of `period`, went from `old_state` to
/// `new_state`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// The period evaluated; the state changed at its end (`changed_at`).
    pub period: PeriodIndex,
    pub old_state: AlarmState,
    pub new_state: AlarmState,
    /// CloudWatch's form of `StateReason`, e.g. `Threshold Crossed: 2 out of the last 3
    /// datapoints [...] were greater than or equal to the threshold (1.0) (minimum 2 datapoints
    /// for OK -> ALARM transition).`
    pub reason: String,
    /// The evaluation window, oldest period first, ending with `period`.
    pub window: Vec<WindowPoint>,
}

/// One period of an evaluation window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowPoint {
    pub period: PeriodIndex,
    /// The datapoint, or `None` when the period has none.
    pub value: Option<f64>,
    /// Whether the datapoint breaches the threshold; `false` for a missing one, whatever the
    /// rule's `treat_missing_data` makes of it.
    pub breaching: bool,
}

impl Datapoints {
    pub fn new() -> Datapoints {
        Datapoints::default()
    }

    /// Sets the value of a period, returning the one it replaces.
    pub fn insert(&mut self, period: PeriodIndex, value: f64) -> Option<f64> {
        self.values.insert(period.0, value)
    }

    /// Adds `amount` to the value of a period (which starts at 0): counting one more matching
    /// event is `add(period, 1.0)`.
    pub fn add(&mut self, period: PeriodIndex, amount: f64) {
        *self.values.entry(period.0).or_insert(0.0) += amount;
    }

    /// The value of a period, `None` when it has none.
    pub fn get(&self, period: PeriodIndex) -> Option<f64> {
        self.values.get(&period.0).copied()
    }

    /// How many periods have a value.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The periods with a value and their values, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (PeriodIndex, f64)> + '_ {
        self.values
            .iter()
            .map(|(&period, &value)| (PeriodIndex(period), value))
    }

    /// The first period after `period` that has a value.
    fn next_after(&self, period: i64) -> Option<i64> {
        self.values
            .range((Bound::Excluded(period), Bound::Unbounded))
            .next()
            .map(|(&next, _)| next)
    }
}

/// Collects `(period, value)` pairs, adding the values of a period that comes more than once
/// (so an iterator of `(period, 1.0)`, one per matching event, gives the counts).
impl FromIterator<(PeriodIndex, f64)> for Datapoints {
    fn from_iter<I: IntoIterator<Item = (PeriodIndex, f64)>>(pairs: I) -> Datapoints {
        let mut datapoints = Datapoints::new();
        for (period, value) in pairs {
            datapoints.add(period, value);
        }
        datapoints
    }
}

impl Transition {
    /// When the state changed: the end of the period evaluated.
    pub fn changed_at(&self, period_seconds: u32) -> DateTime<Utc> {
        period_end(self.period, period_seconds)
    }
}

/// Evaluates the alarm at the end of each period `p` of `first..=last`, over the window of the
/// `evaluation_periods` periods ending with `p`, starting in `state_before`, and returns each
/// change of state in order (nothing when `first > last`). See the module documentation for the
/// rules; `docs/alarms.md` has examples.
///
/// Evaluating `first..=k` and then `k+1..=last` from the state the first part ended in gives
/// the same transitions as evaluating `first..=last` at once, so live evaluation and a replay of
/// stored history agree.
///
/// Cost: O((datapoints near the range) × N × log + transitions × N), whatever the length of the
/// range — a run of periods whose windows hold no datapoint is decided once, at its first
/// period. The rule should be validated; an invalid one does not panic (an
/// `evaluation_periods` of 0 is taken as 1).
pub fn evaluate_alarm(
    rule: &AlarmRule,
    state_before: AlarmState,
    datapoints: &Datapoints,
    first: PeriodIndex,
    last: PeriodIndex,
) -> Vec<Transition> {
    let mut evaluation = Evaluation {
        rule,
        datapoints,
        state: state_before,
        transitions: Vec::new(),
    };
    if first > last {
        return evaluation.transitions;
    }
    let earlier_periods_in_window = i64::from(window_length(rule)) - 1;
    let mut period = first.0;
    let mut counts = WindowCounts::of(rule, datapoints, period, earlier_periods_in_window);
    loop {
        evaluation.evaluate_at(period, counts);
        if counts.present == 0 {
            // Every window from here to the period before the next datapoint is empty, so the
            // state just decided holds through them all: jump to that datapoint.
            match datapoints.next_after(period) {
                Some(next) if next <= last.0 => {
                    period = next;
                    counts = WindowCounts::of(rule, datapoints, period, earlier_periods_in_window);
                }
                _ => break,
            }
        } else {
            if period >= last.0 {
                break;
            }
            // Slide the window one period: the oldest leaves (unless the window reaches below
            // the first representable period), the next one enters.
            if let Some(leaving) = period.checked_sub(earlier_periods_in_window) {
                counts.remove(rule, datapoints.values.get(&leaving).copied());
            }
            period += 1;
            counts.add(rule, datapoints.values.get(&period).copied());
        }
    }
    evaluation.transitions
}

/// The state an alarm is in after `transitions`, starting from `state_before`: the state to
/// start the next evaluation from.
pub fn state_after(state_before: AlarmState, transitions: &[Transition]) -> AlarmState {
    transitions
        .last()
        .map_or(state_before, |transition| transition.new_state)
}

/// The state the alarm goes to from `current` for a window of `N` periods holding `breaching`
/// breaching and `present - breaching` non-breaching datapoints (the rest missing).
fn next_state(rule: &AlarmRule, current: AlarmState, breaching: u32, present: u32) -> AlarmState {
    let window = window_length(rule);
    let missing = window.saturating_sub(present);
    let alarm_if = |breaching: u32| {
        if breaching >= rule.datapoints_to_alarm {
            AlarmState::Alarm
        } else {
            AlarmState::Ok
        }
    };
    match rule.treat_missing_data {
        TreatMissingData::NotBreaching => alarm_if(breaching),
        TreatMissingData::Breaching => alarm_if(breaching.saturating_add(missing)),
        TreatMissingData::Missing if missing == window => AlarmState::InsufficientData,
        TreatMissingData::Ignore if missing == window => current,
        TreatMissingData::Missing | TreatMissingData::Ignore => alarm_if(breaching),
    }
}

/// N, the number of periods in a window.
fn window_length(rule: &AlarmRule) -> u32 {
    rule.evaluation_periods.max(1)
}

struct Evaluation<'a> {
    rule: &'a AlarmRule,
    datapoints: &'a Datapoints,
    state: AlarmState,
    transitions: Vec<Transition>,
}

impl Evaluation<'_> {
    fn evaluate_at(&mut self, period: i64, counts: WindowCounts) {
        let new_state = next_state(self.rule, self.state, counts.breaching, counts.present);
        if new_state == self.state {
            return;
        }
        let window = self.window_ending_at(period);
        self.transitions.push(Transition {
            period: PeriodIndex(period),
            old_state: self.state,
            new_state,
            reason: state_reason(self.rule, new_state, &window),
            window,
        });
        self.state = new_state;
    }

    fn window_ending_at(&self, period: i64) -> Vec<WindowPoint> {
        let rule = self.rule;
        let earlier_periods = i64::from(window_length(rule)) - 1;
        (0..=earlier_periods)
            .rev()
            .filter_map(|periods_before| period.checked_sub(periods_before))
            .map(|period| {
                let value = self.datapoints.values.get(&period).copied();
                WindowPoint {
                    period: PeriodIndex(period),
                    value,
                    breaching: value.is_some_and(|value| breaches(rule, value)),
                }
            })
            .collect()
    }
}

/// How many datapoints a window holds, and how many of them breach.
#[derive(Clone, Copy, Debug)]
struct WindowCounts {
    breaching: u32,
    present: u32,
}

impl WindowCounts {
    fn of(
        rule: &AlarmRule,
        datapoints: &Datapoints,
        period: i64,
        earlier_periods: i64,
    ) -> WindowCounts {
        let mut counts = WindowCounts {
            breaching: 0,
            present: 0,
        };
        let oldest = period.saturating_sub(earlier_periods);
        for (_, &value) in datapoints.values.range(oldest..=period) {
            counts.add(rule, Some(value));
        }
        counts
    }

    fn add(&mut self, rule: &AlarmRule, value: Option<f64>) {
        if let Some(value) = value {
            self.present += 1;
            self.breaching += u32::from(breaches(rule, value));
        }
    }

    fn remove(&mut self, rule: &AlarmRule, value: Option<f64>) {
        if let Some(value) = value {
            self.present = self.present.saturating_sub(1);
            self.breaching = self
                .breaching
                .saturating_sub(u32::from(breaches(rule, value)));
        }
    }
}

fn breaches(rule: &AlarmRule, value: f64) -> bool {
    rule.comparison_operator.breaches(value, rule.threshold)
}
