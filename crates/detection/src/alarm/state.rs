//! The words of a CloudWatch alarm: its three states, the four comparison operators and the
//! four treatments of missing data, each spelled exactly as CloudWatch spells it (in `FromStr`,
//! `as_str` and serde), so a rule written for CloudWatch reads the same here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The state of an alarm, as CloudWatch names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlarmState {
    /// The window is within the threshold.
    #[serde(rename = "OK")]
    Ok,
    /// At least `datapoints_to_alarm` datapoints of the window breach the threshold.
    #[serde(rename = "ALARM")]
    Alarm,
    /// Every datapoint of the window is missing (and missing data is treated as `missing`).
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// How a period's value is compared with the threshold, as CloudWatch names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ComparisonOperator {
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl ComparisonOperator {
    /// CloudWatch's name, e.g. `GreaterThanOrEqualToThreshold`.
    pub fn as_str(self) -> &'static str {
        match self {
            ComparisonOperator::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            ComparisonOperator::GreaterThanThreshold => "GreaterThanThreshold",
            ComparisonOperator::LessThanThreshold => "LessThanThreshold",
            ComparisonOperator::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }

    /// Whether `value` breaches `threshold`. A NaN value never breaches.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            ComparisonOperator::GreaterThanOrEqualToThreshold => value >= threshold,
            ComparisonOperator::GreaterThanThreshold => value > threshold,
            ComparisonOperator::LessThanThreshold => value < threshold,
            ComparisonOperator::LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    /// The words CloudWatch's state reasons use: `greater than or equal to`, `greater than`,
    /// `less than`, `less than or equal to` (as in "were greater than or equal to the threshold").
    pub fn phrase(self) -> &'static str {
        match self {
            ComparisonOperator::GreaterThanOrEqualToThreshold => "greater than or equal to",
            ComparisonOperator::GreaterThanThreshold => "greater than",
            ComparisonOperator::LessThanThreshold => "less than",
            ComparisonOperator::LessThanOrEqualToThreshold => "less than or equal to",
        }
    }
}

/// How an alarm treats a period without a datapoint, as CloudWatch names it
/// (`TreatMissingData`). The default, as in CloudWatch, is `missing`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TreatMissingData {
    /// A window with no datapoint at all is `INSUFFICIENT_DATA`; otherwise missing datapoints
    /// count for nothing.
    #[default]
    Missing,
    /// A missing datapoint counts as within the threshold.
    NotBreaching,
    /// A missing datapoint counts as breaching the threshold.
    Breaching,
    /// A window with no datapoint at all leaves the state as it is; otherwise missing
    /// datapoints count for nothing.
    Ignore,
}

impl TreatMissingData {
    /// `missing`, `notBreaching`, `breaching` or `ignore`.
    pub fn as_str(self) -> &'static str {
        match self {
            TreatMissingData::Missing => "missing",
            TreatMissingData::NotBreaching => "notBreaching",
            TreatMissingData::Breaching => "breaching",
            TreatMissingData::Ignore => "ignore",
        }
    }
}

/// A name that is not one of CloudWatch's spellings for an alarm state, comparison operator
/// or missing-data treatment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {found:?}, expected one of {expected}")]
pub struct UnknownAlarmName {
    /// What was being parsed, e.g. `alarm state`.
    pub what: &'static str,
    pub found: String,
    /// The accepted spellings, comma-separated.
    pub expected: &'static str,
}

impl FromStr for AlarmState {
    type Err = UnknownAlarmName;

    fn from_str(text: &str) -> Result<AlarmState, UnknownAlarmName> {
        match text {
            "OK" => Ok(AlarmState::Ok),
            "ALARM" => Ok(AlarmState::Alarm),
            "INSUFFICIENT_DATA" => Ok(AlarmState::InsufficientData),
            _ => Err(unknown("alarm state", text, "OK, ALARM, INSUFFICIENT_DATA")),
        }
    }
}

impl FromStr for ComparisonOperator {
    type Err = UnknownAlarmName;

    fn from_str(text: &str) -> Result<ComparisonOperator, UnknownAlarmName> {
        match text {
            "GreaterThanOrEqualToThreshold" => {
                Ok(ComparisonOperator::GreaterThanOrEqualToThreshold)
            }
            "GreaterThanThreshold" => Ok(ComparisonOperator::GreaterThanThreshold),
            "LessThanThreshold" => Ok(ComparisonOperator::LessThanThreshold),
            "LessThanOrEqualToThreshold" => Ok(ComparisonOperator::LessThanOrEqualToThreshold),
            _ => Err(unknown(
                "comparison operator",
                text,
                "GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, \
                 LessThanOrEqualToThreshold",
            )),
        }
    }
}

impl FromStr for TreatMissingData {
    type Err = UnknownAlarmName;

    fn from_str(text: &str) -> Result<TreatMissingData, UnknownAlarmName> {
        match text {
            "missing" => Ok(TreatMissingData::Missing),
            "notBreaching" => Ok(TreatMissingData::NotBreaching),
            "breaching" => Ok(TreatMissingData::Breaching),
            "ignore" => Ok(TreatMissingData::Ignore),
            _ => Err(unknown(
                "missing-data treatment",
                text,
                "missing, notBreaching, breaching, ignore",
            )),
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ComparisonOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for TreatMissingData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a transition into `new_state` notifies, given the states an alarm notifies on
/// (CloudWatch's `AlarmActions`, `OKActions`, `InsufficientDataActions` as one list). An empty
/// list means ALARM only, the usual case.
pub fn notify_for(new_state: AlarmState, notify_on: &[AlarmState]) -> bool {
    if notify_on.is_empty() {
        new_state == AlarmState::Alarm
    } else {
        notify_on.contains(&new_state)
    }
}

fn unknown(what: &'static str, found: &str, expected: &'static str) -> UnknownAlarmName {
    UnknownAlarmName {
        what,
        found: found.to_owned(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::{notify_for, AlarmState, ComparisonOperator, TreatMissingData};

    const STATES: [AlarmState; 3] = [
        AlarmState::Ok,
        AlarmState::Alarm,
        AlarmState::InsufficientData,
    ];
    const OPERATORS: [ComparisonOperator; 4] = [
        ComparisonOperator::GreaterThanOrEqualToThreshold,
        ComparisonOperator::GreaterThanThreshold,
        ComparisonOperator::LessThanThreshold,
        ComparisonOperator::LessThanOrEqualToThreshold,
    ];
    const TREATMENTS: [TreatMissingData; 4] = [
        TreatMissingData::Missing,
        TreatMissingData::NotBreaching,
        TreatMissingData::Breaching,
        TreatMissingData::Ignore,
    ];

    #[test]
    fn names_are_cloudwatchs_spellings_in_from_str_as_str_and_serde() {
        let states: Vec<&str> = STATES.iter().map(|state| state.as_str()).collect();
        assert_eq!(states, ["OK", "ALARM", "INSUFFICIENT_DATA"]);
        let treatments: Vec<&str> = TREATMENTS.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            treatments,
            ["missing", "notBreaching", "breaching", "ignore"]
        );
        for state in STATES {
            assert_eq!(state.as_str().parse::<AlarmState>(), Ok(state));
            assert_eq!(state.to_string(), state.as_str());
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<AlarmState>(&json).unwrap(), state);
        }
        for operator in OPERATORS {
            assert_eq!(
                operator.as_str().parse::<ComparisonOperator>(),
                Ok(operator)
            );
            let json = serde_json::to_string(&operator).unwrap();
            assert_eq!(json, format!("\"{}\"", operator.as_str()));
            assert_eq!(
                serde_json::from_str::<ComparisonOperator>(&json).unwrap(),
                operator
            );
        }
        for treatment in TREATMENTS {
            assert_eq!(
                treatment.as_str().parse::<TreatMissingData>(),
                Ok(treatment)
            );
            let json = serde_json::to_string(&treatment).unwrap();
            assert_eq!(json, format!("\"{}\"", treatment.as_str()));
            assert_eq!(
                serde_json::from_str::<TreatMissingData>(&json).unwrap(),
                treatment
            );
        }
        assert_eq!(TreatMissingData::default(), TreatMissingData::Missing);
    }

    #[test]
    fn names_are_case_sensitive_and_errors_list_the_spellings() {
        for wrong in ["ok", "Alarm", "INSUFFICIENT DATA", ""] {
            assert!(wrong.parse::<AlarmState>().is_err(), "{wrong}");
            assert!(serde_json::from_str::<AlarmState>(&format!("\"{wrong}\"")).is_err());
        }
        for wrong in ["notbreaching", "NotBreaching", "Missing", "not_breaching"] {
            assert!(wrong.parse::<TreatMissingData>().is_err(), "{wrong}");
        }
        assert!("GreaterThanOrEqualTo"
            .parse::<ComparisonOperator>()
            .is_err());
        let error = "Ignore".parse::<TreatMissingData>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown missing-data treatment \"Ignore\", expected one of missing, notBreaching, \
             breaching, ignore"
        );
    }

    #[test]
    fn each_operator_breaches_as_its_name_says_and_nan_never_breaches() {
        use ComparisonOperator::*;
        let cases = [
            (GreaterThanOrEqualToThreshold, [false, true, true]),
            (GreaterThanThreshold, [false, false, true]),
            (LessThanThreshold, [true, false, false]),
            (LessThanOrEqualToThreshold, [true, true, false]),
        ];
        for (operator, expected) in cases {
            let got = [0.0, 1.0, 2.0].map(|value| operator.breaches(value, 1.0));
            assert_eq!(got, expected, "{operator}");
            assert!(!operator.breaches(f64::NAN, 1.0));
        }
        let phrases: Vec<&str> = OPERATORS.iter().map(|operator| operator.phrase()).collect();
        assert_eq!(
            phrases,
            [
                "greater than or equal to",
                "greater than",
                "less than",
                "less than or equal to"
            ]
        );
    }

    #[test]
    fn an_empty_notify_list_notifies_on_alarm_only() {
        assert!(notify_for(AlarmState::Alarm, &[]));
        assert!(!notify_for(AlarmState::Ok, &[]));
        assert!(!notify_for(AlarmState::InsufficientData, &[]));
        let on_alarm_and_ok = [AlarmState::Alarm, AlarmState::Ok];
        assert!(notify_for(AlarmState::Alarm, &on_alarm_and_ok));
        assert!(notify_for(AlarmState::Ok, &on_alarm_and_ok));
        assert!(!notify_for(AlarmState::InsufficientData, &on_alarm_and_ok));
        assert!(!notify_for(AlarmState::Alarm, &[AlarmState::Ok]));
    }
}
