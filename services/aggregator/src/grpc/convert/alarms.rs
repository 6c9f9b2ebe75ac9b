//! Alarms and notifications: definitions and backtests in (names and enums checked), alarms,
//! transitions, backtest reports, destinations and notifications out.

use orgtrail_api::v1 as pb;
use orgtrail_detection::alarm::{
    AlarmRule, AlarmScope, AlarmState, ComparisonOperator, TreatMissingData,
};
use orgtrail_detection::alarm_definition::AlarmDefinition;
use tonic::Status;

use super::{from_timestamp, to_timestamp};
use crate::alarms::{Backtest, BacktestReport};
use crate::store::{StoredAlarm, StoredDestination, StoredNotification, StoredTransition};

/// Events a backtest returns by default, and at most.
const DEFAULT_BACKTEST_EVENTS: u32 = 10;
const MAX_BACKTEST_EVENTS: u32 = 100;

pub fn scope_from_proto(scope: Option<pb::AlarmScope>) -> AlarmScope {
    let scope = scope.unwrap_or_default();
    AlarmScope {
        accounts: scope.accounts,
        regions: scope.regions,
        event_categories: scope.event_categories,
    }
}

fn scope_to_proto(scope: AlarmScope) -> pb::AlarmScope {
    pb::AlarmScope {
        accounts: scope.accounts,
        regions: scope.regions,
        event_categories: scope.event_categories,
    }
}

fn parsed<T: std::str::FromStr>(field: &str, text: &str, allowed: &str) -> Result<T, Status> {
    text.parse()
        .map_err(|_| Status::invalid_argument(format!("{field} {text:?} is not one of {allowed}")))
}

pub fn definition_from_proto(
    definition: Option<pb::AlarmDefinition>,
) -> Result<AlarmDefinition, Status> {
    let definition =
        definition.ok_or_else(|| Status::invalid_argument("the alarm's definition is missing"))?;
    let comparison_operator: ComparisonOperator = if definition.comparison_operator.is_empty() {
        ComparisonOperator::GreaterThanOrEqualToThreshold
    } else {
        parsed(
            "comparison_operator",
            &definition.comparison_operator,
            "GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold",
        )?
    };
    let treat_missing_data: TreatMissingData = if definition.treat_missing_data.is_empty() {
        TreatMissingData::default()
    } else {
        parsed(
            "treat_missing_data",
            &definition.treat_missing_data,
            "missing, notBreaching, breaching, ignore",
        )?
    };
    let notify_on = definition
        .notify_on
        .iter()
        .map(|state| parsed::<AlarmState>("notify_on", state, "ALARM, OK, INSUFFICIENT_DATA"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AlarmDefinition {
        description: definition.description,
        filter_pattern: definition.filter_pattern,
        scope: scope_from_proto(definition.scope),
        rule: AlarmRule {
            period_seconds: definition.period_seconds,
            evaluation_periods: definition.evaluation_periods,
            datapoints_to_alarm: definition.datapoints_to_alarm,
            threshold: definition.threshold,
            comparison_operator,
            treat_missing_data,
        },
        notify_on,
        destinations: definition.destinations,
        enabled: definition.enabled,
        finding_level: if definition.finding_level.is_empty() {
            "medium".into()
        } else {
            definition.finding_level
        },
    })
}

fn definition_to_proto(definition: AlarmDefinition) -> pb::AlarmDefinition {
    pb::AlarmDefinition {
        description: definition.description,
        filter_pattern: definition.filter_pattern,
        scope: Some(scope_to_proto(definition.scope)),
        period_seconds: definition.rule.period_seconds,
        evaluation_periods: definition.rule.evaluation_periods,
        datapoints_to_alarm: definition.rule.datapoints_to_alarm,
        threshold: definition.rule.threshold,
        comparison_operator: definition.rule.comparison_operator.as_str().to_string(),
        treat_missing_data: definition.rule.treat_missing_data.as_str().to_string(),
        notify_on: definition
            .notify_on
            .iter()
            .map(|state| state.as_str().to_string())
            .collect(),
        destinations: definition.destinations,
        enabled: definition.enabled,
        finding_level: definition.finding_level,
    }
}

pub fn alarm_to_proto(alarm: StoredAlarm) -> pb::Alarm {
    pb::Alarm {
        name: alarm.name,
        version: alarm.version,
        definition: Some(definition_to_proto(alarm.definition)),
        cis_id: alarm.cis_id.unwrap_or_default(),
        cis_title: alarm.cis_title.unwrap_or_default(),
        state: alarm.state.as_str().to_string(),
        state_since: alarm.state_since.map(to_timestamp),
        state_reason: alarm.state_reason,
        evaluated_through: alarm.evaluated_through.map(to_timestamp),
        created_at: Some(to_timestamp(alarm.created_at)),
        updated_at: Some(to_timestamp(alarm.updated_at)),
        updated_by: alarm.updated_by,
    }
}

pub fn transition_to_proto(transition: StoredTransition) -> pb::AlarmTransition {
    let datapoints = transition
        .datapoints
        .as_array()
        .map(|points| {
            points
                .iter()
                .map(|point| pb::Datapoint {
                    period_start: point
                        .get("periodStart")
                        .and_then(|time| time.as_str())
                        .and_then(|time| chrono::DateTime::parse_from_rfc3339(time).ok())
                        .map(|time| to_timestamp(time.with_timezone(&chrono::Utc))),
                    value: point.get("value").and_then(|value| value.as_f64()),
                    breaching: point
                        .get("breaching")
                        .and_then(|breaching| breaching.as_bool())
                        .unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    pb::AlarmTransition {
        transition_id: transition.transition_id,
        period_end: Some(to_timestamp(transition.period_end)),
        old_state: transition.old_state.as_str().to_string(),
        new_state: transition.new_state.as_str().to_string(),
        reason: transition.reason,
        datapoints,
        event_ids: transition
            .event_ids
            .iter()
            .map(ToString::to_string)
            .collect(),
        alarm_version: transition.alarm_version,
        evaluated_at: Some(to_timestamp(transition.evaluated_at)),
        superseded_at: transition.superseded_at.map(to_timestamp),
        not_notified_reason: transition.not_notified_reason.unwrap_or_default(),
    }
}

pub fn backtest_from_proto(request: pb::TestFilterRequest) -> Result<Backtest, Status> {
    let max_events = match request.max_events {
        0 => DEFAULT_BACKTEST_EVENTS,
        value if value > MAX_BACKTEST_EVENTS => {
            return Err(Status::invalid_argument(format!(
                "max_events is over the limit of {MAX_BACKTEST_EVENTS}"
            )))
        }
        value => value,
    };
    Ok(Backtest {
        pattern: request.filter_pattern,
        start: request
            .start_time
            .map(|time| from_timestamp("start_time", time))
            .transpose()?,
        end: request
            .end_time
            .map(|time| from_timestamp("end_time", time))
            .transpose()?,
        scope: scope_from_proto(request.scope),
        period_seconds: if request.period_seconds == 0 {
            300
        } else {
            request.period_seconds
        },
        max_events: usize::try_from(max_events).unwrap_or(usize::MAX),
    })
}

pub fn backtest_report_to_proto(report: BacktestReport) -> pb::TestFilterResponse {
    pb::TestFilterResponse {
        periods: report
            .periods
            .into_iter()
            .map(|(start, matches)| pb::PeriodCount {
                period_start: Some(to_timestamp(start)),
                matches,
            })
            .collect(),
        events_scanned: report.events_scanned,
        events_matched: report.events_matched,
        events: report
            .events
            .into_iter()
            .map(|event| pb::MatchedEvent {
                event_id: event.event_id.to_string(),
                event_time: Some(to_timestamp(event.event_time)),
                account_id: event.account_id.unwrap_or_default(),
                aws_region: event.aws_region.unwrap_or_default(),
                event_source: event.event_source.unwrap_or_default(),
                event_name: event.event_name.unwrap_or_default(),
                username: event.user_identity.username.unwrap_or_default(),
            })
            .collect(),
        canonical_pattern: report.canonical_pattern,
    }
}

pub fn destination_to_proto(destination: StoredDestination) -> pb::Destination {
    pb::Destination {
        name: destination.name,
        kind: destination.kind,
        target: destination.target_display,
        every_alarm: destination.every_alarm,
        finding_level: destination.finding_level.unwrap_or_default().to_string(),
        created_at: Some(to_timestamp(destination.created_at)),
        created_by: destination.created_by,
    }
}

pub fn notification_to_proto(notification: StoredNotification) -> pb::Notification {
    pb::Notification {
        notification_id: notification.notification_id,
        destination: notification.destination,
        kind: notification.kind,
        subject: notification.subject,
        state: notification.state,
        attempts: u32::try_from(notification.attempts).unwrap_or(0),
        last_error: notification.last_error.unwrap_or_default(),
        created_at: Some(to_timestamp(notification.created_at)),
        next_attempt_at: Some(to_timestamp(notification.next_attempt_at)),
        delivered_at: notification.delivered_at.map(to_timestamp),
        body: notification.body.to_string(),
    }
}
