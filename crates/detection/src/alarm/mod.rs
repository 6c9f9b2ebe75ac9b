//! CloudWatch-style metric alarms, evaluated by event time: the words (states, comparison
//! operators, missing-data treatments), the rule and its limits, the scope of events an alarm
//! counts, and periods of event time.
//!
//! Layout: `state` (the names; `notify_for`), `rule` (`AlarmRule` and its limits), `scope`
//! (which events an alarm counts), `period` (period arithmetic).

mod period;
mod rule;
mod scope;
mod state;

pub use period::{period_end, period_of, period_start, PeriodIndex};
pub use rule::{
    max_evaluation_range_seconds, AlarmRule, AlarmRuleError, MAX_EVALUATION_PERIODS,
    MAX_EVALUATION_RANGE_SECONDS, MAX_EVALUATION_RANGE_SECONDS_UNDER_ONE_HOUR_PERIOD,
    MAX_PERIOD_SECONDS,
};
pub use scope::{AlarmScope, AlarmScopeError, EVENT_CATEGORIES};
pub use state::{notify_for, AlarmState, ComparisonOperator, TreatMissingData, UnknownAlarmName};
