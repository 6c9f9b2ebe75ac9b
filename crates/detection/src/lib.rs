//! Detections over CloudTrail records, pure: CloudWatch Logs JSON filter patterns
//! (`filter_pattern`: parse once, evaluate against each record already parsed into a
//! `serde_json::Value`), the CIS AWS Foundations Benchmark's metric filters as data (`cis`),
//! CloudWatch-style metric alarms evaluated by event time (`alarm`: the rule, the period
//! arithmetic and the state machine that turns per-period counts into state transitions), and
//! Sigma detection rules (`sigma`: checked, compiled once into a rule set that says which rules
//! each record matches; SigmaHQ's AWS CloudTrail rules built in), and CloudTrail Insights
//! (`insights`: unusual call and error rates per account, region and API, from per-minute
//! counts of event time, as Start/End records in CloudTrail's format; `docs/insights.md`).
//!
//! No I/O, no clock, no database: the caller parses each record once and asks every filter and
//! the Sigma rule set, counts the matches per period of `eventTime`, and passes the counts and
//! the range of periods to evaluate. The built-in Sigma rules are embedded at build time
//! (`build.rs`), not read at run time.

pub mod alarm;
pub mod alarm_definition;
pub mod cis;
pub mod filter_pattern;
pub mod insights;
pub mod sigma;
pub mod suppression;

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
pub use sigma::{
    builtin_sigma_rules, parse_sigma_rule, BuiltinSigmaRule, SigmaLevel, SigmaRule, SigmaRuleError,
    SigmaRuleSet, BUILTIN_SIGMA_RULES_ATTRIBUTION, CLOUDTRAIL_RECORD_FIELDS,
    DETECTION_RULE_LICENSE,
};
