//! Detections over CloudTrail records, pure: CloudWatch Logs JSON filter patterns
//! (`filter_pattern`: parse once, evaluate against each record already parsed into a
//! `serde_json::Value`), the CIS AWS Foundations Benchmark's metric filters as data (`cis`), and
//! CloudWatch-style metric alarms evaluated by event time (`alarm`: the rule, the period
//! arithmetic and the state machine that turns per-period counts into state transitions).
//!
//! No I/O, no clock, no database: the caller parses each record once and asks every filter,
//! counts the matches per period of `eventTime`, and passes the counts and the range of periods
//! to evaluate.

pub mod alarm;
pub mod alarm_definition;
pub mod cis;
pub mod filter_pattern;

pub use alarm::{
    evaluate_alarm, notify_for, period_end, period_of, period_start, state_after, AlarmRule,
    AlarmRuleError, AlarmScope, AlarmScopeError, AlarmState, ComparisonOperator, Datapoints,
    PeriodIndex, Transition, TreatMissingData, WindowPoint,
};
pub use cis::{
    cis_metric_filter_variants, cis_metric_filters, CisAlarmRecipe, CisMetricFilter,
    CIS_ALARM_RECIPE,
};
pub use filter_pattern::{FilterPattern, FilterPatternError, FilterPatternProblem};
