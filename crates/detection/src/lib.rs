//! Detections over CloudTrail records, pure: CloudWatch Logs JSON filter patterns
//! (`filter_pattern`: parse once, evaluate against each record already parsed into a
//! `serde_json::Value`) and the CIS AWS Foundations Benchmark's metric filters as data (`cis`).
//!
//! No I/O, no clock, no database: the caller parses each record once and asks every filter.

pub mod cis;
pub mod filter_pattern;

pub use cis::{
    cis_metric_filter_variants, cis_metric_filters, CisAlarmRecipe, CisMetricFilter,
    CIS_ALARM_RECIPE,
};
pub use filter_pattern::{FilterPattern, FilterPatternError, FilterPatternProblem};
