//! The flags of `orgtrail alarms create|update` and `orgtrail filters test`, and how they
//! become requests: CloudWatch's defaults on create, only the given fields changed on update.
//! Nothing here parses a filter pattern; that is the server's.

use anyhow::bail;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use orgtrail_api::v1 as pb;

use crate::detection_arguments::FindingLevel;
use crate::retention_command::OutputArguments;
use crate::time_argument::{timestamp_argument, RangeEnd};

/// Length of a period when `alarms create` is not given `--period`.
const DEFAULT_PERIOD_SECONDS: u32 = 300;

#[derive(Args)]
pub struct CreateAlarmArguments {
    /// The alarm's name: letters, digits and - _ . (1 to 128).
    pub name: String,
    /// A CloudWatch Logs JSON filter pattern, e.g. '{ $.errorCode = "AccessDenied" }'; each
    /// matching event counts 1.
    #[arg(long)]
    pub pattern: String,
    #[command(flatten)]
    pub definition: AlarmDefinitionArguments,
    /// Created disabled: not evaluated until `alarms update NAME --enable`.
    #[arg(long)]
    pub disabled: bool,
    #[command(flatten)]
    pub output: OutputArguments,
}

#[derive(Args)]
pub struct UpdateAlarmArguments {
    /// The alarm's name.
    pub name: String,
    /// A new CloudWatch Logs JSON filter pattern.
    #[arg(long)]
    pub pattern: Option<String>,
    #[command(flatten)]
    pub definition: AlarmDefinitionArguments,
    /// Evaluate the alarm again.
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Stop evaluating the alarm (its state and history stay).
    #[arg(long)]
    pub disable: bool,
    /// Count events of every account again.
    #[arg(long, conflicts_with = "accounts")]
    pub clear_accounts: bool,
    /// Count events of every region again.
    #[arg(long, conflicts_with = "regions")]
    pub clear_regions: bool,
    /// Count events of every category again.
    #[arg(long, conflicts_with = "categories")]
    pub clear_categories: bool,
    /// Notify on entering ALARM only (the default).
    #[arg(long, conflicts_with = "notify_on")]
    pub clear_notify_on: bool,
    /// Notify only the destinations that take every alarm.
    #[arg(long, conflicts_with = "destinations")]
    pub clear_destinations: bool,
    /// Refused unless the alarm is at this version (default: the version read before the
    /// change).
    #[arg(long, value_name = "N")]
    pub expected_version: Option<i32>,
    #[command(flatten)]
    pub output: OutputArguments,
}

/// The parts of a definition `create` and `update` share; on `update` every one is optional
/// and only those given change.
#[derive(Args, Default)]
pub struct AlarmDefinitionArguments {
    /// What the alarm is for.
    #[arg(long)]
    pub description: Option<String>,
    /// Length of a period in seconds: a multiple of 60, at most 86400 (create: 300).
    #[arg(long, value_name = "SECONDS")]
    pub period: Option<u32>,
    /// Periods looked at in each evaluation, 1 to 100 (create: 1).
    #[arg(long, value_name = "N")]
    pub evaluation_periods: Option<u32>,
    /// Breaching periods among them that raise the alarm, 1 to N (create: N; update:
    /// unchanged unless given, so give both to keep "N of N").
    #[arg(long, value_name = "M")]
    pub datapoints_to_alarm: Option<u32>,
    /// The count a period is compared with (create: 1).
    #[arg(long, value_name = "X")]
    pub threshold: Option<f64>,
    /// How a period's count is compared with the threshold: >=, >, <, <=, or CloudWatch's
    /// GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold,
    /// LessThanOrEqualToThreshold (create: >=).
    #[arg(long, value_name = "OPERATOR", value_parser = ComparisonOperator::parse)]
    pub comparison: Option<ComparisonOperator>,
    /// How a period without a match counts, as CloudWatch's TreatMissingData (create:
    /// missing).
    #[arg(long, value_enum, value_name = "HOW")]
    pub treat_missing_data: Option<TreatMissingData>,
    #[command(flatten)]
    pub scope: AlarmScopeArguments,
    /// Entering this state notifies: ALARM, OK, INSUFFICIENT_DATA (repeatable; none: ALARM).
    #[arg(
        long = "notify-on",
        value_enum,
        ignore_case = true,
        value_name = "STATE"
    )]
    pub notify_on: Vec<NotifyState>,
    /// A destination notified besides those that take every alarm (repeatable).
    #[arg(long = "destination", value_name = "NAME")]
    pub destinations: Vec<String>,
    /// The level of the finding raised each time the alarm enters ALARM (create: medium).
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub finding_level: Option<FindingLevel>,
}

/// Which events count; each flag repeatable; none given: the whole organization.
#[derive(Args, Default)]
pub struct AlarmScopeArguments {
    /// Only events of this account (repeatable; any of them matches).
    #[arg(long = "account", value_name = "ACCOUNT_ID")]
    pub accounts: Vec<String>,
    /// Only events of this region, e.g. eu-west-1 (repeatable).
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,
    /// Only events of this category: Management, Data, Insight, NetworkActivity (repeatable).
    #[arg(long = "category", value_name = "CATEGORY")]
    pub categories: Vec<String>,
}

#[derive(Args)]
pub struct TestFilterArguments {
    /// A CloudWatch Logs JSON filter pattern, e.g. '{ $.eventName = "ConsoleLogin" }'.
    pub pattern: String,
    /// From (inclusive): RFC 3339, a date, or a span before now (7d, 12h).
    #[arg(long)]
    pub start: Option<String>,
    /// To (inclusive), in the same forms.
    #[arg(long)]
    pub end: Option<String>,
    #[command(flatten)]
    pub scope: AlarmScopeArguments,
    /// Length of a period in seconds (default 300).
    #[arg(long, value_name = "SECONDS")]
    pub period: Option<u32>,
    /// Matching events listed, oldest first, at most 100 (default 10).
    #[arg(long, value_name = "N")]
    pub events: Option<u32>,
    #[command(flatten)]
    pub output: OutputArguments,
}

/// CloudWatch's ComparisonOperator, also spelled as its symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComparisonOperator {
    GreaterThanOrEqual,
    GreaterThan,
    LessThan,
    LessThanOrEqual,
}

impl ComparisonOperator {
    const ALL: [ComparisonOperator; 4] = [
        ComparisonOperator::GreaterThanOrEqual,
        ComparisonOperator::GreaterThan,
        ComparisonOperator::LessThan,
        ComparisonOperator::LessThanOrEqual,
    ];

    /// A symbol (`>=`) or CloudWatch's name (`GreaterThanOrEqualToThreshold`).
    pub fn parse(text: &str) -> Result<ComparisonOperator, String> {
        ComparisonOperator::ALL
            .into_iter()
            .find(|operator| text == operator.symbol() || text == operator.cloudwatch_name())
            .ok_or_else(|| {
                format!(
                    "{text:?} is not a comparison: give >=, >, <, <= or GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold"
                )
            })
    }

    /// The name the API takes.
    pub fn cloudwatch_name(self) -> &'static str {
        match self {
            ComparisonOperator::GreaterThanOrEqual => "GreaterThanOrEqualToThreshold",
            ComparisonOperator::GreaterThan => "GreaterThanThreshold",
            ComparisonOperator::LessThan => "LessThanThreshold",
            ComparisonOperator::LessThanOrEqual => "LessThanOrEqualToThreshold",
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            ComparisonOperator::GreaterThanOrEqual => ">=",
            ComparisonOperator::GreaterThan => ">",
            ComparisonOperator::LessThan => "<",
            ComparisonOperator::LessThanOrEqual => "<=",
        }
    }
}

/// CloudWatch's TreatMissingData: how a period without a match counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TreatMissingData {
    /// Not at all: the evaluation looks further back (INSUFFICIENT_DATA if nothing is there).
    #[value(name = "missing")]
    Missing,
    /// As a period within the threshold.
    #[value(name = "notBreaching")]
    NotBreaching,
    /// As a breaching period.
    #[value(name = "breaching")]
    Breaching,
    /// The alarm keeps its state.
    #[value(name = "ignore")]
    Ignore,
}

impl TreatMissingData {
    pub fn as_str(self) -> &'static str {
        match self {
            TreatMissingData::Missing => "missing",
            TreatMissingData::NotBreaching => "notBreaching",
            TreatMissingData::Breaching => "breaching",
            TreatMissingData::Ignore => "ignore",
        }
    }
}

/// An alarm state whose entry can notify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NotifyState {
    #[value(name = "ALARM")]
    Alarm,
    #[value(name = "OK")]
    Ok,
    #[value(name = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl NotifyState {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyState::Alarm => "ALARM",
            NotifyState::Ok => "OK",
            NotifyState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl AlarmScopeArguments {
    fn to_proto(&self) -> pb::AlarmScope {
        pb::AlarmScope {
            accounts: self.accounts.clone(),
            regions: self.regions.clone(),
            event_categories: self.categories.clone(),
        }
    }
}

impl AlarmDefinitionArguments {
    fn notify_on(&self) -> Vec<String> {
        self.notify_on
            .iter()
            .map(|state| state.as_str().to_string())
            .collect()
    }

    /// Whether any part of the definition is given.
    fn changes_anything(&self) -> bool {
        self.description.is_some()
            || self.period.is_some()
            || self.evaluation_periods.is_some()
            || self.datapoints_to_alarm.is_some()
            || self.threshold.is_some()
            || self.comparison.is_some()
            || self.treat_missing_data.is_some()
            || !self.scope.accounts.is_empty()
            || !self.scope.regions.is_empty()
            || !self.scope.categories.is_empty()
            || !self.notify_on.is_empty()
            || !self.destinations.is_empty()
            || self.finding_level.is_some()
    }
}

/// `alarms create`: CloudWatch's defaults for what is not given (`--datapoints-to-alarm`
/// defaults to `--evaluation-periods`, as DatapointsToAlarm does to EvaluationPeriods).
pub fn create_alarm_request(arguments: &CreateAlarmArguments) -> pb::CreateAlarmRequest {
    let given = &arguments.definition;
    let evaluation_periods = given.evaluation_periods.unwrap_or(1);
    pb::CreateAlarmRequest {
        name: arguments.name.clone(),
        definition: Some(pb::AlarmDefinition {
            description: given.description.clone().unwrap_or_default(),
            filter_pattern: arguments.pattern.clone(),
            scope: Some(given.scope.to_proto()),
            period_seconds: given.period.unwrap_or(DEFAULT_PERIOD_SECONDS),
            evaluation_periods,
            datapoints_to_alarm: given.datapoints_to_alarm.unwrap_or(evaluation_periods),
            threshold: given.threshold.unwrap_or(1.0),
            comparison_operator: given
                .comparison
                .unwrap_or(ComparisonOperator::GreaterThanOrEqual)
                .cloudwatch_name()
                .to_string(),
            treat_missing_data: given
                .treat_missing_data
                .unwrap_or(TreatMissingData::Missing)
                .as_str()
                .to_string(),
            notify_on: given.notify_on(),
            destinations: given.destinations.clone(),
            enabled: !arguments.disabled,
            finding_level: given
                .finding_level
                .unwrap_or(FindingLevel::Medium)
                .as_str()
                .to_string(),
        }),
    }
}

/// `alarms update`: the alarm as read, with what is given changed, to be written back only if
/// it is still the version read (or the one `--expected-version` names).
pub fn merge_alarm_update(
    current: pb::Alarm,
    arguments: &UpdateAlarmArguments,
) -> anyhow::Result<pb::UpdateAlarmRequest> {
    let expected_version = arguments.expected_version.unwrap_or(current.version);
    if expected_version != current.version {
        bail!(
            "alarm {} is at version {}, not {expected_version}: nothing changed",
            current.name,
            current.version
        );
    }
    let Some(mut definition) = current.definition else {
        bail!(
            "the server answered alarm {} without its definition: nothing changed",
            current.name
        );
    };
    let given = &arguments.definition;
    if let Some(pattern) = &arguments.pattern {
        definition.filter_pattern = pattern.clone();
    }
    if let Some(description) = &given.description {
        definition.description = description.clone();
    }
    if let Some(period) = given.period {
        definition.period_seconds = period;
    }
    if let Some(evaluation_periods) = given.evaluation_periods {
        definition.evaluation_periods = evaluation_periods;
    }
    if let Some(datapoints_to_alarm) = given.datapoints_to_alarm {
        definition.datapoints_to_alarm = datapoints_to_alarm;
    }
    if let Some(threshold) = given.threshold {
        definition.threshold = threshold;
    }
    if let Some(comparison) = given.comparison {
        definition.comparison_operator = comparison.cloudwatch_name().to_string();
    }
    if let Some(treat_missing_data) = given.treat_missing_data {
        definition.treat_missing_data = treat_missing_data.as_str().to_string();
    }
    if let Some(finding_level) = given.finding_level {
        definition.finding_level = finding_level.as_str().to_string();
    }
    let mut scope = definition.scope.take().unwrap_or_default();
    replace_list(
        &mut scope.accounts,
        &given.scope.accounts,
        arguments.clear_accounts,
    );
    replace_list(
        &mut scope.regions,
        &given.scope.regions,
        arguments.clear_regions,
    );
    replace_list(
        &mut scope.event_categories,
        &given.scope.categories,
        arguments.clear_categories,
    );
    definition.scope = Some(scope);
    replace_list(
        &mut definition.notify_on,
        &given.notify_on(),
        arguments.clear_notify_on,
    );
    replace_list(
        &mut definition.destinations,
        &given.destinations,
        arguments.clear_destinations,
    );
    if arguments.enable {
        definition.enabled = true;
    }
    if arguments.disable {
        definition.enabled = false;
    }
    Ok(pb::UpdateAlarmRequest {
        name: current.name,
        definition: Some(definition),
        expected_version: Some(expected_version),
    })
}

/// The request of `filters test`; times relative to `now`.
pub fn test_filter_request(
    arguments: &TestFilterArguments,
    now: DateTime<Utc>,
) -> anyhow::Result<pb::TestFilterRequest> {
    Ok(pb::TestFilterRequest {
        filter_pattern: arguments.pattern.clone(),
        start_time: timestamp_argument(arguments.start.as_deref(), RangeEnd::Start, now)?,
        end_time: timestamp_argument(arguments.end.as_deref(), RangeEnd::End, now)?,
        scope: Some(arguments.scope.to_proto()),
        period_seconds: arguments.period.unwrap_or(0),
        max_events: arguments.events.unwrap_or(0),
    })
}

impl UpdateAlarmArguments {
    /// Whether anything is given to change (an update changing nothing is refused).
    pub fn changes_anything(&self) -> bool {
        self.pattern.is_some()
            || self.definition.changes_anything()
            || self.enable
            || self.disable
            || self.clear_accounts
            || self.clear_regions
            || self.clear_categories
            || self.clear_notify_on
            || self.clear_destinations
    }
}

/// A list flag given replaces the list; its `--clear-…` flag empties it; neither keeps it.
fn replace_list(list: &mut Vec<String>, given: &[String], clear: bool) {
    if clear {
        list.clear();
    } else if !given.is_empty() {
        *list = given.to_vec();
    }
}

#[cfg(test)]
mod tests;
