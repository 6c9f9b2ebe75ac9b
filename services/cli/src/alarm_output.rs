//! How alarms, their history and filter backtests print: tables an operator reads at a
//! glance, every field in a detail view, and JSON with the proto's fields in camelCase (times
//! RFC 3339, null when absent).

use orgtrail_api::v1 as pb;
use orgtrail_client::table::{render_table, truncate_cell};
use serde_json::{json, Value};

use crate::alarm_arguments::ComparisonOperator;
use crate::events_command::{format_optional_time, format_time, or_dash};
use crate::SummaryFormat;

/// Characters of a pattern shown in `alarms list`; `alarms get` shows all of it.
const PATTERN_COLUMN_CHARS: usize = 60;
/// Characters of a transition's reason shown in `alarms history`.
const REASON_COLUMN_CHARS: usize = 80;

pub fn print_alarms(alarms: &[pb::Alarm], format: SummaryFormat) -> anyhow::Result<()> {
    match format {
        SummaryFormat::Table => print!("{}", alarms_table(alarms)),
        SummaryFormat::Json => {
            let rows: Vec<Value> = alarms.iter().map(alarm_json).collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
    }
    Ok(())
}

pub fn print_alarm(alarm: &pb::Alarm, format: SummaryFormat) -> anyhow::Result<()> {
    match format {
        SummaryFormat::Table => print!("{}", alarm_details(alarm)),
        SummaryFormat::Json => println!("{}", serde_json::to_string_pretty(&alarm_json(alarm))?),
    }
    Ok(())
}

pub fn print_transitions(
    transitions: &[pb::AlarmTransition],
    format: SummaryFormat,
) -> anyhow::Result<()> {
    match format {
        SummaryFormat::Table => print!("{}", transitions_table(transitions)),
        SummaryFormat::Json => {
            let rows: Vec<Value> = transitions.iter().map(transition_json).collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
    }
    Ok(())
}

pub fn print_filter_test(
    response: &pb::TestFilterResponse,
    format: SummaryFormat,
) -> anyhow::Result<()> {
    match format {
        SummaryFormat::Table => print!("{}", filter_test_text(response)),
        SummaryFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&filter_test_json(response))?
        ),
    }
    Ok(())
}

/// `alarms list`: one line per alarm.
pub fn alarms_table(alarms: &[pb::Alarm]) -> String {
    let rows: Vec<Vec<String>> = alarms
        .iter()
        .map(|alarm| {
            let definition = alarm.definition.clone().unwrap_or_default();
            vec![
                alarm.name.clone(),
                or_dash(&alarm.state),
                format_time(alarm.state_since.as_ref()),
                or_dash(&truncate_cell(
                    &definition.filter_pattern,
                    PATTERN_COLUMN_CHARS,
                )),
                format!("{}s", definition.period_seconds),
                rule_text(&definition),
                or_dash(&definition.treat_missing_data),
                yes_no(definition.enabled).into(),
                or_dash(&alarm.cis_id),
            ]
        })
        .collect();
    render_table(
        &[
            "NAME", "STATE", "SINCE", "PATTERN", "PERIOD", "RULE", "MISSING", "ENABLED", "CIS",
        ],
        &rows,
    )
}

/// `alarms get`, `create`, `update`: every field, one per line.
pub fn alarm_details(alarm: &pb::Alarm) -> String {
    let definition = alarm.definition.clone().unwrap_or_default();
    let cis = if alarm.cis_id.is_empty() {
        "-".to_string()
    } else {
        format!("{} {}", alarm.cis_id, alarm.cis_title)
    };
    let notify_on = if definition.notify_on.is_empty() {
        "ALARM".to_string()
    } else {
        definition.notify_on.join(", ")
    };
    let destinations = if definition.destinations.is_empty() {
        "those taking every alarm".to_string()
    } else {
        format!(
            "{}, and those taking every alarm",
            definition.destinations.join(", ")
        )
    };
    let lines = [
        ("name", alarm.name.clone()),
        ("version", alarm.version.to_string()),
        ("state", or_dash(&alarm.state)),
        ("since", format_time(alarm.state_since.as_ref())),
        ("reason", or_dash(&alarm.state_reason)),
        (
            "evaluated through",
            format_time(alarm.evaluated_through.as_ref()),
        ),
        ("enabled", yes_no(definition.enabled).into()),
        ("description", or_dash(&definition.description)),
        ("pattern", definition.filter_pattern.clone()),
        ("scope", scope_text(definition.scope.as_ref())),
        ("period", format!("{}s", definition.period_seconds)),
        ("rule", rule_text(&definition)),
        ("missing data", or_dash(&definition.treat_missing_data)),
        ("notify on", notify_on),
        ("destinations", destinations),
        ("finding level", finding_level_text(&definition)),
        ("cis", cis),
        ("created", format_time(alarm.created_at.as_ref())),
        (
            "updated",
            format!(
                "{} by {}",
                format_time(alarm.updated_at.as_ref()),
                or_dash(&alarm.updated_by)
            ),
        ),
    ];
    lines
        .iter()
        .map(|(label, value)| format!("{label:<18}{value}\n"))
        .collect()
}

/// `alarms history`: one line per transition, newest first as the server answers.
pub fn transitions_table(transitions: &[pb::AlarmTransition]) -> String {
    let rows: Vec<Vec<String>> = transitions
        .iter()
        .map(|transition| {
            vec![
                format_time(transition.period_end.as_ref()),
                format!(
                    "{} → {}",
                    or_dash(&transition.old_state),
                    or_dash(&transition.new_state)
                ),
                or_dash(&truncate_cell(&transition.reason, REASON_COLUMN_CHARS)),
                events_behind(transition),
                format_time(transition.superseded_at.as_ref()),
                or_dash(&transition.not_notified_reason),
            ]
        })
        .collect();
    render_table(
        &[
            "PERIOD END",
            "OLD → NEW",
            "REASON",
            "EVENTS",
            "SUPERSEDED",
            "NOT NOTIFIED",
        ],
        &rows,
    )
}

/// `filters test`: the periods with matches, the first matching events, and a summary.
pub fn filter_test_text(response: &pb::TestFilterResponse) -> String {
    let periods: Vec<Vec<String>> = response
        .periods
        .iter()
        .map(|period| {
            vec![
                format_time(period.period_start.as_ref()),
                period.matches.to_string(),
            ]
        })
        .collect();
    let events: Vec<Vec<String>> = response
        .events
        .iter()
        .map(|event| {
            vec![
                format_time(event.event_time.as_ref()),
                or_dash(&event.account_id),
                or_dash(&event.aws_region),
                or_dash(&event.event_source),
                or_dash(&event.event_name),
                or_dash(&event.username),
                event.event_id.clone(),
            ]
        })
        .collect();
    let mut text = render_table(&["PERIOD START", "MATCHES"], &periods);
    text.push('\n');
    text.push_str(&render_table(
        &[
            "EVENT TIME",
            "ACCOUNT",
            "REGION",
            "SOURCE",
            "NAME",
            "USER",
            "EVENT ID",
        ],
        &events,
    ));
    text.push('\n');
    text.push_str(&format!(
        "{} events scanned, {} matched\npattern: {}\n",
        response.events_scanned, response.events_matched, response.canonical_pattern
    ));
    text
}

pub fn alarm_json(alarm: &pb::Alarm) -> Value {
    let definition = alarm.definition.clone().unwrap_or_default();
    json!({
        "name": alarm.name,
        "version": alarm.version,
        "definition": {
            "description": definition.description,
            "filterPattern": definition.filter_pattern,
            "scope": scope_json(definition.scope.as_ref()),
            "periodSeconds": definition.period_seconds,
            "evaluationPeriods": definition.evaluation_periods,
            "datapointsToAlarm": definition.datapoints_to_alarm,
            "threshold": definition.threshold,
            "comparisonOperator": definition.comparison_operator,
            "treatMissingData": definition.treat_missing_data,
            "notifyOn": definition.notify_on,
            "destinations": definition.destinations,
            "enabled": definition.enabled,
            "findingLevel": definition.finding_level,
        },
        "cisId": alarm.cis_id,
        "cisTitle": alarm.cis_title,
        "state": alarm.state,
        "stateSince": format_optional_time(alarm.state_since.as_ref()),
        "stateReason": alarm.state_reason,
        "evaluatedThrough": format_optional_time(alarm.evaluated_through.as_ref()),
        "createdAt": format_optional_time(alarm.created_at.as_ref()),
        "updatedAt": format_optional_time(alarm.updated_at.as_ref()),
        "updatedBy": alarm.updated_by,
    })
}

pub fn transition_json(transition: &pb::AlarmTransition) -> Value {
    json!({
        "transitionId": transition.transition_id,
        "periodEnd": format_optional_time(transition.period_end.as_ref()),
        "oldState": transition.old_state,
        "newState": transition.new_state,
        "reason": transition.reason,
        "datapoints": transition.datapoints.iter().map(|datapoint| json!({
            "periodStart": format_optional_time(datapoint.period_start.as_ref()),
            "value": datapoint.value,
            "breaching": datapoint.breaching,
        })).collect::<Vec<_>>(),
        "eventIds": transition.event_ids,
        "alarmVersion": transition.alarm_version,
        "evaluatedAt": format_optional_time(transition.evaluated_at.as_ref()),
        "supersededAt": format_optional_time(transition.superseded_at.as_ref()),
        "notNotifiedReason": transition.not_notified_reason,
    })
}

fn filter_test_json(response: &pb::TestFilterResponse) -> Value {
    json!({
        "periods": response.periods.iter().map(|period| json!({
            "periodStart": format_optional_time(period.period_start.as_ref()),
            "matches": period.matches,
        })).collect::<Vec<_>>(),
        "eventsScanned": response.events_scanned,
        "eventsMatched": response.events_matched,
        "events": response.events.iter().map(|event| json!({
            "eventId": event.event_id,
            "eventTime": format_optional_time(event.event_time.as_ref()),
            "accountId": event.account_id,
            "awsRegion": event.aws_region,
            "eventSource": event.event_source,
            "eventName": event.event_name,
            "username": event.username,
        })).collect::<Vec<_>>(),
        "canonicalPattern": response.canonical_pattern,
    })
}

/// The events behind a transition: the matches of the breaching periods of its window (the
/// datapoints its reason quotes), whose first ids `--output json` lists. Not the ids' count:
/// the server keeps only the first few of each minute.
fn events_behind(transition: &pb::AlarmTransition) -> String {
    let events: f64 = transition
        .datapoints
        .iter()
        .filter(|datapoint| datapoint.breaching)
        .filter_map(|datapoint| datapoint.value)
        // Not `sum`: an empty sum of floats is -0.
        .fold(0.0, |total, value| total + value);
    format!("{events}")
}

/// `>= 1 for 1/1 of 300s`: CloudWatch's rule, read as a sentence.
fn rule_text(definition: &pb::AlarmDefinition) -> String {
    let comparison = ComparisonOperator::parse(&definition.comparison_operator)
        .map(|operator| operator.symbol().to_string())
        .unwrap_or_else(|_| or_dash(&definition.comparison_operator));
    format!(
        "{comparison} {} for {}/{} of {}s",
        definition.threshold,
        definition.datapoints_to_alarm,
        definition.evaluation_periods,
        definition.period_seconds
    )
}

/// The level of the finding raised on entering ALARM; the API's empty means medium.
fn finding_level_text(definition: &pb::AlarmDefinition) -> String {
    if definition.finding_level.is_empty() {
        "medium".into()
    } else {
        definition.finding_level.clone()
    }
}

fn scope_text(scope: Option<&pb::AlarmScope>) -> String {
    let scope = scope.cloned().unwrap_or_default();
    let parts: Vec<String> = [
        ("accounts", &scope.accounts),
        ("regions", &scope.regions),
        ("categories", &scope.event_categories),
    ]
    .into_iter()
    .filter(|(_, values)| !values.is_empty())
    .map(|(name, values)| format!("{name}={}", values.join(",")))
    .collect();
    if parts.is_empty() {
        "the whole organization".into()
    } else {
        parts.join(" ")
    }
}

fn scope_json(scope: Option<&pb::AlarmScope>) -> Value {
    let scope = scope.cloned().unwrap_or_default();
    json!({
        "accounts": scope.accounts,
        "regions": scope.regions,
        "eventCategories": scope.event_categories,
    })
}

pub fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output_tests::{at, cells};

    fn cis_alarm() -> pb::Alarm {
        pb::Alarm {
            name: "cis-4.3-root-account-usage".into(),
            version: 1,
            definition: Some(pb::AlarmDefinition {
                filter_pattern: r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }"#.into(),
                period_seconds: 300,
                evaluation_periods: 1,
                datapoints_to_alarm: 1,
                threshold: 1.0,
                comparison_operator: "GreaterThanOrEqualToThreshold".into(),
                treat_missing_data: "notBreaching".into(),
                enabled: true,
                finding_level: String::new(),
                ..Default::default()
            }),
            cis_id: "4.3".into(),
            cis_title: "Ensure usage of the root account is monitored".into(),
            state: "ALARM".into(),
            state_since: at(1_411_800_311),
            state_reason: "1 datapoint [1.0] was >= the threshold 1.0".into(),
            ..Default::default()
        }
    }

    fn custom_alarm() -> pb::Alarm {
        pb::Alarm {
            name: "access-denied".into(),
            version: 4,
            definition: Some(pb::AlarmDefinition {
                description: "too many denials".into(),
                filter_pattern: r#"{ $.errorCode = "AccessDenied" }"#.into(),
                scope: Some(pb::AlarmScope {
                    accounts: vec!["111111111111".into()],
                    regions: vec![],
                    event_categories: vec!["Management".into(), "Data".into()],
                }),
                period_seconds: 3600,
                evaluation_periods: 3,
                datapoints_to_alarm: 2,
                threshold: 20.0,
                comparison_operator: "GreaterThanThreshold".into(),
                treat_missing_data: "missing".into(),
                notify_on: vec!["ALARM".into(), "OK".into()],
                destinations: vec!["ops-webhook".into()],
                enabled: false,
                finding_level: "high".into(),
            }),
            state: "INSUFFICIENT_DATA".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_alarm_list_shows_state_rule_and_a_cut_pattern_per_alarm() {
        let alarms = [cis_alarm(), custom_alarm()];
        let rows = cells(&alarms_table(&alarms));
        assert_eq!(
            rows[0],
            ["NAME", "STATE", "SINCE", "PATTERN", "PERIOD", "RULE", "MISSING", "ENABLED", "CIS"]
        );
        let cis_definition = alarms[0].definition.clone().unwrap_or_default();
        let cut_pattern: String = cis_definition
            .filter_pattern
            .chars()
            .take(PATTERN_COLUMN_CHARS - 1)
            .chain(['…'])
            .collect();
        assert_eq!(
            rows[1],
            [
                alarms[0].name.as_str(),
                "ALARM",
                "2014-09-27T06:45:11Z",
                cut_pattern.as_str(),
                "300s",
                ">= 1 for 1/1 of 300s",
                "notBreaching",
                "yes",
                "4.3",
            ]
        );
        assert_eq!(rows[1][3].chars().count(), PATTERN_COLUMN_CHARS);
        assert_eq!(
            rows[2],
            [
                "access-denied",
                "INSUFFICIENT_DATA",
                "-",
                r#"{ $.errorCode = "AccessDenied" }"#,
                "3600s",
                "> 20 for 2/3 of 3600s",
                "missing",
                "no",
                "-",
            ]
        );
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn the_detail_view_shows_every_field_and_the_whole_pattern() {
        let alarm = cis_alarm();
        let text = alarm_details(&alarm);
        let definition = alarm.definition.clone().unwrap_or_default();
        assert!(text.contains(&format!(
            "pattern           {}\n",
            definition.filter_pattern
        )));
        assert!(text.contains("reason            1 datapoint [1.0] was >= the threshold 1.0\n"));
        assert!(
            text.contains("cis               4.3 Ensure usage of the root account is monitored\n")
        );
        assert!(text.contains("scope             the whole organization\n"));
        assert!(text.contains("notify on         ALARM\n"));
        assert!(
            text.contains("finding level     medium\n"),
            "an empty finding level is the API's medium"
        );
        let text = alarm_details(&custom_alarm());
        assert!(text.contains("finding level     high\n"));
        assert!(
            text.contains("scope             accounts=111111111111 categories=Management,Data\n")
        );
        assert!(text.contains("notify on         ALARM, OK\n"));
        assert!(text.contains("destinations      ops-webhook, and those taking every alarm\n"));
        assert!(text.contains("enabled           no\n"));
        assert!(text.contains("evaluated through -\n"));
    }

    #[test]
    fn a_history_page_shows_each_transition_with_its_events_and_notification() {
        let transitions = [
            pb::AlarmTransition {
                transition_id: 7,
                period_end: at(1_411_800_600),
                old_state: "OK".into(),
                new_state: "ALARM".into(),
                reason: "Threshold Crossed: 1 out of the last 1 datapoints [2.0 (27/09/14 06:45:00)] was greater than or equal to the threshold (1.0)".into(),
                // Three events in the breaching period; the server listed the first two.
                datapoints: vec![pb::Datapoint {
                    period_start: at(1_411_800_300),
                    value: Some(3.0),
                    breaching: true,
                }],
                event_ids: vec!["a".into(), "b".into()],
                superseded_at: at(1_411_801_000),
                not_notified_reason: "the period ended long before it was evaluated".into(),
                ..Default::default()
            },
            pb::AlarmTransition {
                transition_id: 6,
                period_end: at(1_411_800_300),
                old_state: "INSUFFICIENT_DATA".into(),
                new_state: "OK".into(),
                reason: "no datapoint breached".into(),
                ..Default::default()
            },
        ];
        let rows = cells(&transitions_table(&transitions));
        assert_eq!(
            rows[0],
            [
                "PERIOD END",
                "OLD → NEW",
                "REASON",
                "EVENTS",
                "SUPERSEDED",
                "NOT NOTIFIED"
            ]
        );
        let cut_reason: String = transitions[0]
            .reason
            .chars()
            .take(REASON_COLUMN_CHARS - 1)
            .chain(['…'])
            .collect();
        assert_eq!(
            rows[1],
            [
                "2014-09-27T06:50:00Z",
                "OK → ALARM",
                cut_reason.as_str(),
                "3",
                "2014-09-27T06:56:40Z",
                transitions[0].not_notified_reason.as_str(),
            ]
        );
        assert_eq!(
            rows[2],
            [
                "2014-09-27T06:45:00Z",
                "INSUFFICIENT_DATA → OK",
                "no datapoint breached",
                "0",
                "-",
                "-",
            ]
        );
    }

    #[test]
    fn json_mirrors_the_proto_in_camel_case_with_rfc_3339_times() {
        let value = alarm_json(&cis_alarm());
        assert_eq!(
            value["definition"]["filterPattern"],
            cis_alarm().definition.unwrap_or_default().filter_pattern
        );
        assert_eq!(value["definition"]["datapointsToAlarm"], 1);
        assert_eq!(value["definition"]["scope"]["eventCategories"], json!([]));
        assert_eq!(value["stateSince"], "2014-09-27T06:45:11Z");
        assert_eq!(value["evaluatedThrough"], Value::Null);
        assert_eq!(value["cisId"], "4.3");
        assert_eq!(
            alarm_json(&custom_alarm())["definition"]["findingLevel"],
            "high"
        );
        let transition = transition_json(&pb::AlarmTransition {
            datapoints: vec![
                pb::Datapoint {
                    period_start: at(0),
                    value: None,
                    breaching: false,
                },
                pb::Datapoint {
                    period_start: at(300),
                    value: Some(3.0),
                    breaching: true,
                },
            ],
            ..Default::default()
        });
        assert_eq!(
            transition["datapoints"],
            json!([
                { "periodStart": "1970-01-01T00:00:00Z", "value": null, "breaching": false },
                { "periodStart": "1970-01-01T00:05:00Z", "value": 3.0, "breaching": true },
            ])
        );
    }

    #[test]
    fn a_filter_test_prints_periods_events_and_the_summary() {
        let response = pb::TestFilterResponse {
            periods: vec![pb::PeriodCount {
                period_start: at(1_411_800_300),
                matches: 2,
            }],
            events_scanned: 775,
            events_matched: 2,
            events: vec![pb::MatchedEvent {
                event_id: "e1".into(),
                event_time: at(1_411_800_311),
                account_id: "111111111111".into(),
                aws_region: "us-east-1".into(),
                event_source: "signin.amazonaws.com".into(),
                event_name: "ConsoleLogin".into(),
                username: "root".into(),
            }],
            canonical_pattern: r#"{ $.eventName = "ConsoleLogin" }"#.into(),
        };
        let text = filter_test_text(&response);
        let rows = cells(&text);
        assert_eq!(rows[0], ["PERIOD START", "MATCHES"]);
        assert_eq!(rows[1], ["2014-09-27T06:45:00Z", "2"]);
        assert_eq!(
            rows[4],
            [
                "2014-09-27T06:45:11Z",
                "111111111111",
                "us-east-1",
                "signin.amazonaws.com",
                "ConsoleLogin",
                "root",
                "e1"
            ]
        );
        assert!(text.ends_with(
            "775 events scanned, 2 matched\npattern: { $.eventName = \"ConsoleLogin\" }\n"
        ));
    }
}
