//! CloudWatch-style metric alarms, evaluated by event time: the pure state machine.
//!
//! orgtrail counts, for each alarm, the events matching its filter pattern in each period of
//! event time (`eventTime`, not arrival), and evaluates the alarm on those counts, so a replay
//! of stored history gives exactly the transitions live ingest gave. This module has no I/O
//! and no clock: times and periods are arguments, and the counts are the caller's
//! ([`Datapoints`]).
//!
//! ```
//! use orgtrail_detection::alarm::{
//!     evaluate_alarm, period_of, AlarmRule, AlarmState, ComparisonOperator, Datapoints,
//!     TreatMissingData,
//! };
//!
//! // CIS's recipe: one matching event in a 5-minute period is enough.
//! let rule = AlarmRule {
//!     period_seconds: 300,
//!     evaluation_periods: 1,
//!     datapoints_to_alarm: 1,
//!     threshold: 1.0,
//!     comparison_operator: ComparisonOperator::GreaterThanOrEqualToThreshold,
//!     treat_missing_data: TreatMissingData::NotBreaching,
//! };
//! rule.validate()?;
//! let event_time = "2026-11-30T12:07:31Z".parse()?;
//! let period = period_of(event_time, rule.period_seconds);
//! let counts: Datapoints = [(period, 1.0)].into_iter().collect();
//!
//! let transitions = evaluate_alarm(&rule, AlarmState::Ok, &counts, period, period);
//! assert_eq!(transitions.len(), 1);
//! assert_eq!(transitions[0].new_state, AlarmState::Alarm);
//! assert_eq!(
//!     transitions[0].reason,
//!     "Threshold Crossed: 1 out of the last 1 datapoints [1.0 (30/11/26 12:05:00)] was greater \
//!      than or equal to the threshold (1.0) (minimum 1 datapoint for OK -> ALARM transition).",
//! );
//! assert_eq!(transitions[0].changed_at(300).to_rfc3339(), "2026-11-30T12:10:00+00:00");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Semantics
//!
//! The alarm is evaluated once per period, at the end of each period `p`, over the window of
//! the N = `evaluation_periods` periods ending with `p` (`p-N+1 ..= p`). A datapoint breaches
//! when `comparison_operator.breaches(value, threshold)`. With B breaching datapoints in the
//! window, M missing ones and D = `datapoints_to_alarm`:
//!
//! - `notBreaching`: ALARM if B ≥ D, else OK (missing counts as not breaching);
//! - `breaching`: ALARM if B + M ≥ D, else OK (missing counts as breaching);
//! - `missing`: INSUFFICIENT_DATA if M = N, else ALARM if B ≥ D, else OK;
//! - `ignore`: the state stays as it is if M = N, else ALARM if B ≥ D, else OK.
//!
//! A [`Transition`] is emitted only when the state changes; its `reason` is CloudWatch's form
//! of `StateReason` ([`state_reason`]).
//!
//! # Where orgtrail differs from CloudWatch: the window only
//!
//! CloudWatch, for `missing` and `ignore`, looks back beyond the N periods: it "attempts to
//! retrieve a higher number of data points than the number specified as Evaluation Periods"
//! (5 for N = 3 in its guide's example) to fill the missing ones, and moves to ALARM early when
//! the oldest breaching datapoint in that longer range is at least D periods old and every
//! later one is breaching or missing. orgtrail does neither: the window is exactly the N
//! periods. Two reasons. Determinism under replay: CloudWatch does not publish how far back it
//! looks (it varies with the period and the metric), so no replay could reproduce it, while a
//! window of exactly N periods is a plain function of the stored counts, and evaluating a
//! range in two parts gives what evaluating it at once does. And it would not help: a metric
//! filter has no datapoint for a period without a match, so the look-back would mostly find
//! more missing periods. `docs/alarms.md` has the sources and examples.
//!
//! # Speed
//!
//! A replay may span years of 5-minute periods (over a million) with a few hundred datapoints.
//! Only the periods whose window holds a datapoint — each datapoint's period and the N − 1
//! after it — are evaluated one by one; between them every window is all missing, so the state
//! is constant (OK for `notBreaching`, ALARM for `breaching`, INSUFFICIENT_DATA for `missing`,
//! unchanged for `ignore`), and the run is decided once, at its first period.
//!
//! Layout: `state` (the names: states, operators, treatments; `notify_for`), `rule`
//! (`AlarmRule` and its limits), `scope` (which events an alarm counts), `period` (period
//! arithmetic), `evaluate` (the state machine), `reason` (the `StateReason` text).

mod evaluate;
mod period;
mod reason;
mod rule;
mod scope;
mod state;

pub use evaluate::{evaluate_alarm, state_after, Datapoints, Transition, WindowPoint};
pub use period::{period_end, period_of, period_start, PeriodIndex};
pub use reason::{state_reason, MAX_LISTED_DATAPOINTS};
pub use rule::{
    max_evaluation_range_seconds, AlarmRule, AlarmRuleError, MAX_EVALUATION_PERIODS,
    MAX_EVALUATION_RANGE_SECONDS, MAX_EVALUATION_RANGE_SECONDS_UNDER_ONE_HOUR_PERIOD,
    MAX_PERIOD_SECONDS,
};
pub use scope::{AlarmScope, AlarmScopeError, EVENT_CATEGORIES};
pub use state::{notify_for, AlarmState, ComparisonOperator, TreatMissingData, UnknownAlarmName};

#[cfg(test)]
mod evaluate_tests;

#[cfg(test)]
mod reason_tests;
