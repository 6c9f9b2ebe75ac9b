//! What an alarm is, as an operator writes it and orgtrail stores it: a metric filter (a JSON
//! filter pattern and the scope of events it counts), the alarm's rule, and where its state
//! changes are notified. Validated as a whole before it is stored; the CIS AWS Foundations
//! Benchmark alarms are definitions like any other.

use serde::{Deserialize, Serialize};

use crate::alarm::{AlarmRule, AlarmScope, AlarmState, ComparisonOperator, TreatMissingData};
use crate::cis::{cis_metric_filters, CIS_ALARM_RECIPE};
use crate::filter_pattern::{FilterPattern, FilterPatternError};

/// The longest description kept.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;
/// Destinations one alarm may name.
pub const MAX_ALARM_DESTINATIONS: usize = 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmDefinition {
    #[serde(default)]
    pub description: String,
    /// A CloudWatch Logs JSON filter pattern; each matching event counts 1.
    pub filter_pattern: String,
    #[serde(default)]
    pub scope: AlarmScope,
    pub rule: AlarmRule,
    /// States whose entry notifies; empty: ALARM.
    #[serde(default)]
    pub notify_on: Vec<AlarmState>,
    /// Destinations notified besides those that take every alarm.
    #[serde(default)]
    pub destinations: Vec<String>,
    pub enabled: bool,
    /// The level of the finding raised each time the alarm enters ALARM: informational, low,
    /// medium, high, critical.
    #[serde(default = "default_finding_level")]
    pub finding_level: String,
}

/// The levels of findings, lowest first (Sigma's).
pub const FINDING_LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

fn default_finding_level() -> String {
    "medium".into()
}

/// Why a definition cannot be stored.
#[derive(Debug, thiserror::Error)]
pub enum AlarmDefinitionError {
    #[error("filter pattern: {0}")]
    Pattern(#[from] FilterPatternError),
    #[error(transparent)]
    Rule(#[from] crate::alarm::AlarmRuleError),
    #[error("scope: {0}")]
    Scope(String),
    #[error("description is {0} bytes, over the limit of {MAX_DESCRIPTION_BYTES}")]
    DescriptionTooLong(usize),
    #[error("{0} destinations named, over the limit of {MAX_ALARM_DESTINATIONS}")]
    TooManyDestinations(usize),
    #[error("destination name {0:?} is empty or not a name")]
    DestinationName(String),
    #[error("finding level {0:?} is not one of informational, low, medium, high, critical")]
    FindingLevel(String),
}

impl AlarmDefinition {
    /// Checks every part and returns the compiled filter.
    pub fn validate(&self) -> Result<FilterPattern, AlarmDefinitionError> {
        let filter = FilterPattern::parse(&self.filter_pattern)?;
        self.rule.validate()?;
        self.scope
            .validate()
            .map_err(|error| AlarmDefinitionError::Scope(error.to_string()))?;
        if self.description.len() > MAX_DESCRIPTION_BYTES {
            return Err(AlarmDefinitionError::DescriptionTooLong(
                self.description.len(),
            ));
        }
        if self.destinations.len() > MAX_ALARM_DESTINATIONS {
            return Err(AlarmDefinitionError::TooManyDestinations(
                self.destinations.len(),
            ));
        }
        if let Some(bad) = self
            .destinations
            .iter()
            .find(|name| !is_destination_name(name))
        {
            return Err(AlarmDefinitionError::DestinationName(bad.clone()));
        }
        if !FINDING_LEVELS.contains(&self.finding_level.as_str()) {
            return Err(AlarmDefinitionError::FindingLevel(
                self.finding_level.clone(),
            ));
        }
        Ok(filter)
    }

    /// Whether entering `state` notifies.
    pub fn notifies_on(&self, state: AlarmState) -> bool {
        crate::alarm::notify_for(state, &self.notify_on)
    }
}

/// A destination's name: 1–64 letters, digits, `-`, `_`, `.`.
pub fn is_destination_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A built-in alarm of the CIS AWS Foundations Benchmark.
#[derive(Clone, Debug)]
pub struct CisAlarm {
    /// `cis-4.3`.
    pub name: String,
    pub cis_id: &'static str,
    pub title: &'static str,
    pub definition: AlarmDefinition,
}

/// The 15 CIS alarms (4.1–4.15) as CIS prescribes them: the exact filter pattern, one
/// 300-second period, ≥ 1 match. CIS leaves missing data to the default; orgtrail treats it as
/// not breaching, so an alarm rests in OK between matches instead of INSUFFICIENT_DATA (a
/// metric filter has no datapoint for a period without a match).
pub fn cis_alarms() -> Vec<CisAlarm> {
    cis_metric_filters()
        .iter()
        .map(|filter| CisAlarm {
            name: format!("cis-{}", filter.id),
            cis_id: filter.id,
            title: filter.title,
            definition: AlarmDefinition {
                description: format!(
                    "CIS AWS Foundations Benchmark {}: {}",
                    filter.id, filter.title
                ),
                filter_pattern: filter.pattern.to_string(),
                scope: AlarmScope::default(),
                rule: AlarmRule {
                    period_seconds: CIS_ALARM_RECIPE.period_seconds,
                    evaluation_periods: CIS_ALARM_RECIPE.evaluation_periods,
                    datapoints_to_alarm: CIS_ALARM_RECIPE.evaluation_periods,
                    threshold: CIS_ALARM_RECIPE.threshold,
                    comparison_operator: ComparisonOperator::GreaterThanOrEqualToThreshold,
                    treat_missing_data: TreatMissingData::NotBreaching,
                },
                notify_on: vec![AlarmState::Alarm],
                destinations: Vec::new(),
                enabled: true,
                finding_level: "medium".into(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cis_alarms_are_valid_definitions_of_the_exact_patterns() {
        let alarms = cis_alarms();
        assert_eq!(alarms.len(), 15);
        for alarm in &alarms {
            alarm.definition.validate().unwrap();
            assert!(cis_metric_filters()
                .iter()
                .any(|filter| filter.pattern == alarm.definition.filter_pattern));
        }
        assert_eq!(alarms[2].name, "cis-4.3");
    }

    #[test]
    fn a_definition_round_trips_through_json_and_refuses_what_is_wrong() {
        let mut definition = cis_alarms()[0].definition.clone();
        let json = serde_json::to_value(&definition).unwrap();
        assert_eq!(
            serde_json::from_value::<AlarmDefinition>(json).unwrap(),
            definition
        );
        definition.filter_pattern = "{ $.eventName = }".into();
        let error = definition.validate().unwrap_err().to_string();
        assert!(error.starts_with("filter pattern: column"), "{error}");
        definition = cis_alarms()[0].definition.clone();
        definition.destinations = vec!["no spaces".into()];
        assert!(matches!(
            definition.validate(),
            Err(AlarmDefinitionError::DestinationName(_))
        ));
        definition.destinations.clear();
        definition.rule.evaluation_periods = 0;
        assert!(definition.validate().is_err());
    }
}
