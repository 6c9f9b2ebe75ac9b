//! An alarm's rule — period, M out of N, threshold, operator, missing-data treatment — and its
//! validation against CloudWatch's limits (PutMetricAlarm's), so a rule orgtrail accepts is one
//! CloudWatch would accept too.

use serde::{Deserialize, Serialize};

use super::state::{ComparisonOperator, TreatMissingData};

/// The longest period, one day (PutMetricAlarm's `Period` for a metric alarm).
pub const MAX_PERIOD_SECONDS: u32 = 86_400;
/// The most evaluation periods CloudWatch allows (`EvaluationPeriods`).
pub const MAX_EVALUATION_PERIODS: u32 = 100;
/// How long the evaluation range (`period_seconds × evaluation_periods`) may be when the period
/// is one hour or longer: seven days.
pub const MAX_EVALUATION_RANGE_SECONDS: u64 = 7 * 86_400;
/// How long the evaluation range may be when the period is shorter than one hour: one day.
pub const MAX_EVALUATION_RANGE_SECONDS_UNDER_ONE_HOUR_PERIOD: u64 = 86_400;

/// How an alarm is evaluated on its metric: the metric's value per period (orgtrail: the number
/// of events matching the alarm's filter in each period of event time) is compared with the
/// threshold, and the alarm is in ALARM when `datapoints_to_alarm` of the last
/// `evaluation_periods` periods breach it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlarmRule {
    /// The length of one period in seconds: a multiple of 60, at most 86,400.
    pub period_seconds: u32,
    /// N: how many periods, ending with the one evaluated, make up the window (1–100).
    pub evaluation_periods: u32,
    /// M: how many breaching datapoints in the window put the alarm in ALARM (1–N).
    pub datapoints_to_alarm: u32,
    pub threshold: f64,
    pub comparison_operator: ComparisonOperator,
    /// `missing` when absent, as in CloudWatch.
    #[serde(default)]
    pub treat_missing_data: TreatMissingData,
}

/// Why a rule was refused. Each message names the field and the range it must be in.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AlarmRuleError {
    #[error("period_seconds must be a positive multiple of 60 up to 86400, found {0}")]
    Period(u32),
    #[error("evaluation_periods must be between 1 and 100, found {0}")]
    EvaluationPeriods(u32),
    #[error(
        "datapoints_to_alarm must be between 1 and evaluation_periods ({evaluation_periods}), \
         found {datapoints_to_alarm}"
    )]
    DatapointsToAlarm {
        datapoints_to_alarm: u32,
        evaluation_periods: u32,
    },
    #[error("threshold must be a finite number, found {0}")]
    Threshold(f64),
    #[error(
        "evaluation_periods × period_seconds must be at most {limit_seconds} seconds for a \
         period of {period_seconds} seconds, found {evaluation_periods} × {period_seconds} = \
         {range_seconds}"
    )]
    EvaluationRange {
        evaluation_periods: u32,
        period_seconds: u32,
        range_seconds: u64,
        limit_seconds: u64,
    },
}

impl AlarmRule {
    /// Checks the rule against CloudWatch's limits for a metric alarm with a period of at least
    /// 60 seconds: the period a positive multiple of 60 up to one day; 1–100 evaluation
    /// periods; 1–N datapoints to alarm; a finite threshold; and an evaluation range
    /// (N × period) of at most seven days, or one day when the period is under one hour.
    pub fn validate(&self) -> Result<(), AlarmRuleError> {
        let period = self.period_seconds;
        let whole_minutes = period.is_multiple_of(60);
        if period == 0 || !whole_minutes || period > MAX_PERIOD_SECONDS {
            return Err(AlarmRuleError::Period(period));
        }
        let evaluation_periods = self.evaluation_periods;
        if !(1..=MAX_EVALUATION_PERIODS).contains(&evaluation_periods) {
            return Err(AlarmRuleError::EvaluationPeriods(evaluation_periods));
        }
        if !(1..=evaluation_periods).contains(&self.datapoints_to_alarm) {
            return Err(AlarmRuleError::DatapointsToAlarm {
                datapoints_to_alarm: self.datapoints_to_alarm,
                evaluation_periods,
            });
        }
        if !self.threshold.is_finite() {
            return Err(AlarmRuleError::Threshold(self.threshold));
        }
        let range_seconds = u64::from(evaluation_periods) * u64::from(period);
        let limit_seconds = max_evaluation_range_seconds(period);
        if range_seconds > limit_seconds {
            return Err(AlarmRuleError::EvaluationRange {
                evaluation_periods,
                period_seconds: period,
                range_seconds,
                limit_seconds,
            });
        }
        Ok(())
    }
}

/// The longest evaluation range CloudWatch allows for a period: seven days, or one day when
/// the period is shorter than one hour.
pub fn max_evaluation_range_seconds(period_seconds: u32) -> u64 {
    if period_seconds < 3_600 {
        MAX_EVALUATION_RANGE_SECONDS_UNDER_ONE_HOUR_PERIOD
    } else {
        MAX_EVALUATION_RANGE_SECONDS
    }
}

#[cfg(test)]
mod tests {
    use super::{AlarmRule, AlarmRuleError};
    use crate::alarm::{ComparisonOperator, TreatMissingData};

    fn cis_rule() -> AlarmRule {
        AlarmRule {
            period_seconds: 300,
            evaluation_periods: 1,
            datapoints_to_alarm: 1,
            threshold: 1.0,
            comparison_operator: ComparisonOperator::GreaterThanOrEqualToThreshold,
            treat_missing_data: TreatMissingData::Missing,
        }
    }

    #[test]
    fn the_cis_recipe_and_the_edges_of_each_range_are_valid() {
        assert_eq!(cis_rule().validate(), Ok(()));
        let valid = [
            AlarmRule {
                period_seconds: 60,
                ..cis_rule()
            },
            AlarmRule {
                period_seconds: 86_400,
                ..cis_rule()
            },
            AlarmRule {
                period_seconds: 60,
                evaluation_periods: 100,
                datapoints_to_alarm: 100,
                ..cis_rule()
            },
            // One-hour periods may reach past a day (100 hours); seven days of a day each.
            AlarmRule {
                period_seconds: 3_600,
                evaluation_periods: 100,
                datapoints_to_alarm: 1,
                ..cis_rule()
            },
            AlarmRule {
                period_seconds: 86_400,
                evaluation_periods: 7,
                datapoints_to_alarm: 3,
                ..cis_rule()
            },
            // Under one hour: one day exactly (288 × 300 s would be too many periods anyway).
            AlarmRule {
                period_seconds: 1_800,
                evaluation_periods: 48,
                datapoints_to_alarm: 48,
                ..cis_rule()
            },
            AlarmRule {
                threshold: -1e300,
                ..cis_rule()
            },
        ];
        for rule in valid {
            assert_eq!(rule.validate(), Ok(()), "{rule:?}");
        }
    }

    #[test]
    fn each_field_out_of_range_is_named_with_its_range() {
        let cases = [
            (
                AlarmRule {
                    period_seconds: 0,
                    ..cis_rule()
                },
                "period_seconds must be a positive multiple of 60 up to 86400, found 0",
            ),
            (
                AlarmRule {
                    period_seconds: 30,
                    ..cis_rule()
                },
                "period_seconds must be a positive multiple of 60 up to 86400, found 30",
            ),
            (
                AlarmRule {
                    period_seconds: 90,
                    ..cis_rule()
                },
                "period_seconds must be a positive multiple of 60 up to 86400, found 90",
            ),
            (
                AlarmRule {
                    period_seconds: 86_460,
                    ..cis_rule()
                },
                "period_seconds must be a positive multiple of 60 up to 86400, found 86460",
            ),
            (
                AlarmRule {
                    evaluation_periods: 0,
                    ..cis_rule()
                },
                "evaluation_periods must be between 1 and 100, found 0",
            ),
            (
                AlarmRule {
                    evaluation_periods: 101,
                    ..cis_rule()
                },
                "evaluation_periods must be between 1 and 100, found 101",
            ),
            (
                AlarmRule {
                    datapoints_to_alarm: 0,
                    ..cis_rule()
                },
                "datapoints_to_alarm must be between 1 and evaluation_periods (1), found 0",
            ),
            (
                AlarmRule {
                    evaluation_periods: 3,
                    datapoints_to_alarm: 4,
                    ..cis_rule()
                },
                "datapoints_to_alarm must be between 1 and evaluation_periods (3), found 4",
            ),
            (
                AlarmRule {
                    threshold: f64::NAN,
                    ..cis_rule()
                },
                "threshold must be a finite number, found NaN",
            ),
            (
                AlarmRule {
                    threshold: f64::INFINITY,
                    ..cis_rule()
                },
                "threshold must be a finite number, found inf",
            ),
            (
                AlarmRule {
                    period_seconds: 86_400,
                    evaluation_periods: 8,
                    ..cis_rule()
                },
                "evaluation_periods × period_seconds must be at most 604800 seconds for a period \
                 of 86400 seconds, found 8 × 86400 = 691200",
            ),
            (
                AlarmRule {
                    period_seconds: 3_540,
                    evaluation_periods: 25,
                    ..cis_rule()
                },
                "evaluation_periods × period_seconds must be at most 86400 seconds for a period \
                 of 3540 seconds, found 25 × 3540 = 88500",
            ),
        ];
        for (rule, message) in cases {
            let error = rule.validate().unwrap_err();
            assert_eq!(error.to_string(), message, "{rule:?}");
        }
        assert!(matches!(
            AlarmRule {
                period_seconds: 300,
                evaluation_periods: 289,
                ..cis_rule()
            }
            .validate(),
            Err(AlarmRuleError::EvaluationPeriods(289))
        ));
    }

    #[test]
    fn rules_read_and_write_cloudwatchs_camel_case_with_missing_as_the_default() {
        let rule: AlarmRule = serde_json::from_str(
            r#"{"periodSeconds":300,"evaluationPeriods":3,"datapointsToAlarm":2,"threshold":1,
                "comparisonOperator":"GreaterThanThreshold"}"#,
        )
        .unwrap();
        assert_eq!(rule.treat_missing_data, TreatMissingData::Missing);
        assert_eq!(
            rule.comparison_operator,
            ComparisonOperator::GreaterThanThreshold
        );
        assert_eq!((rule.evaluation_periods, rule.datapoints_to_alarm), (3, 2));
        let json = serde_json::to_value(rule).unwrap();
        assert_eq!(json["treatMissingData"], "missing");
        assert_eq!(json["periodSeconds"], 300);
        assert_eq!(serde_json::from_value::<AlarmRule>(json).unwrap(), rule);
        let unknown_field = r#"{"periodSeconds":300,"evaluationPeriods":1,"datapointsToAlarm":1,
            "threshold":1,"comparisonOperator":"LessThanThreshold","statistic":"Sum"}"#;
        assert!(serde_json::from_str::<AlarmRule>(unknown_field).is_err());
    }
}
