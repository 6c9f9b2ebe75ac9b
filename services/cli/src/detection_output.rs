//! How Sigma rules, rule backtests and replays print: tables an operator reads at a glance,
//! every field of a rule then its YAML, and JSON with the proto's fields in camelCase (times
//! RFC 3339, null when absent). A rule's author is shown wherever the rule is: the Detection
//! Rule License asks it of every view of SigmaHQ's rules and their matches.

use orgtrail_api::v1 as pb;
use orgtrail_client::table::render_table;
use serde_json::{json, Value};

use crate::alarm_output::yes_no;
use crate::events_command::{format_optional_time, format_time, or_dash};
use crate::SummaryFormat;

pub fn print_rules(rules: &[pb::SigmaRule], format: SummaryFormat) -> anyhow::Result<()> {
    match format {
        SummaryFormat::Table => print!("{}", rules_table(rules)),
        SummaryFormat::Json => {
            let rows: Vec<Value> = rules.iter().map(rule_json).collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
    }
    Ok(())
}

pub fn print_rule(rule: &pb::SigmaRule, format: SummaryFormat) -> anyhow::Result<()> {
    match format {
        SummaryFormat::Table => print!("{}", rule_details(rule)),
        SummaryFormat::Json => println!("{}", serde_json::to_string_pretty(&rule_json(rule))?),
    }
    Ok(())
}

pub fn print_rule_test(
    response: &pb::TestRuleResponse,
    format: SummaryFormat,
) -> anyhow::Result<()> {
    match format {
        SummaryFormat::Table => print!("{}", rule_test_text(response)),
        SummaryFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&rule_test_json(response))?
        ),
    }
    Ok(())
}

pub fn print_replay(
    report: &pb::ReplayDetectionsResponse,
    format: SummaryFormat,
) -> anyhow::Result<()> {
    match format {
        SummaryFormat::Table => print!("{}", replay_text(report)),
        SummaryFormat::Json => println!("{}", serde_json::to_string_pretty(&replay_json(report))?),
    }
    Ok(())
}

/// `rules list`: one line per rule.
pub fn rules_table(rules: &[pb::SigmaRule]) -> String {
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|rule| {
            vec![
                rule.rule_id.clone(),
                or_dash(&rule.title),
                or_dash(&rule.level),
                or_dash(&rule.author),
                or_dash(&rule.origin),
                yes_no(rule.enabled).into(),
                rule.version.to_string(),
                or_dash(&rule.attack_techniques.join(",")),
            ]
        })
        .collect();
    render_table(
        &[
            "RULE ID", "TITLE", "LEVEL", "AUTHOR", "ORIGIN", "ENABLED", "VERSION", "ATT&CK",
        ],
        &rows,
    )
}

/// One line per field, its value after its label padded to `width`; a value of several lines
/// (a Sigma description written as a YAML block) has its further lines indented under the
/// first and its trailing newlines dropped, so the next label starts its own line.
pub fn labelled_lines(lines: &[(&str, String)], width: usize) -> String {
    let mut text = String::new();
    for (label, value) in lines {
        let mut value_lines = value.trim_end().lines();
        text.push_str(&format!(
            "{label:<width$}{}\n",
            value_lines.next().unwrap_or_default()
        ));
        for line in value_lines {
            if line.trim().is_empty() {
                text.push('\n');
            } else {
                text.push_str(&format!("{:width$}{line}\n", ""));
            }
        }
    }
    text
}

/// `rules show`: every field, one per line, then the rule as written.
pub fn rule_details(rule: &pb::SigmaRule) -> String {
    let lines = [
        ("rule id", rule.rule_id.clone()),
        ("title", or_dash(&rule.title)),
        ("level", or_dash(&rule.level)),
        ("author", or_dash(&rule.author)),
        ("status", or_dash(&rule.status)),
        ("description", or_dash(&rule.description)),
        ("tags", or_dash(&rule.tags.join(", "))),
        ("att&ck", or_dash(&rule.attack_techniques.join(", "))),
        ("fields", or_dash(&rule.fields.join(", "))),
        ("origin", or_dash(&rule.origin)),
        ("enabled", yes_no(rule.enabled).into()),
        ("version", rule.version.to_string()),
        (
            "updated",
            format!(
                "{} by {}",
                format_time(rule.updated_at.as_ref()),
                or_dash(&rule.updated_by)
            ),
        ),
    ];
    let mut text = labelled_lines(&lines, 13);
    if !rule.yaml.is_empty() {
        text.push('\n');
        text.push_str(&rule.yaml);
        if !rule.yaml.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

/// `rules add`: the rules written (new, or a new version), then those whose text did not
/// change, then the counts.
pub fn added_rules_text(response: &pb::AddRulesResponse) -> String {
    let mut text = String::new();
    if !response.added.is_empty() {
        let rows: Vec<Vec<String>> = response
            .added
            .iter()
            .map(|rule| {
                vec![
                    rule.rule_id.clone(),
                    or_dash(&rule.title),
                    or_dash(&rule.level),
                    or_dash(&rule.author),
                    rule.version.to_string(),
                    yes_no(rule.enabled).into(),
                ]
            })
            .collect();
        text.push_str(&render_table(
            &["ADDED", "TITLE", "LEVEL", "AUTHOR", "VERSION", "ENABLED"],
            &rows,
        ));
    }
    for rule_id in &response.unchanged {
        text.push_str(&format!("unchanged: {rule_id}\n"));
    }
    text.push_str(&format!(
        "{} added, {} unchanged\n",
        response.added.len(),
        response.unchanged.len()
    ));
    text
}

/// `rules test`: the rule, the matches per day, the first matching events, and the counts.
pub fn rule_test_text(response: &pb::TestRuleResponse) -> String {
    let mut text = String::new();
    if let Some(rule) = &response.rule {
        text.push_str(&format!(
            "rule: {} ({}), level {}, by {}\n\n",
            or_dash(&rule.title),
            or_dash(&rule.rule_id),
            or_dash(&rule.level),
            or_dash(&rule.author)
        ));
    }
    let days: Vec<Vec<String>> = response
        .days
        .iter()
        .map(|day| vec![day.day.clone(), day.matches.to_string()])
        .collect();
    text.push_str(&render_table(&["DAY", "MATCHES"], &days));
    text.push('\n');
    text.push_str(&finding_events_table(&response.events));
    text.push('\n');
    text.push_str(&format!(
        "{} events scanned, {} matched\n",
        response.events_scanned, response.events_matched
    ));
    text
}

/// `detections replay`: what the replay read and raised.
pub fn replay_text(report: &pb::ReplayDetectionsResponse) -> String {
    format!(
        "{} events scanned, {} matches, {} findings raised, {} suppressed\n",
        report.events_scanned, report.matches, report.findings_raised, report.suppressed
    )
}

/// Events behind matches, oldest first as the server answers.
pub fn finding_events_table(events: &[pb::FindingEvent]) -> String {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|event| {
            vec![
                format_time(event.event_time.as_ref()),
                or_dash(&event.account_id),
                or_dash(&event.aws_region),
                or_dash(&event.event_source),
                or_dash(&event.event_name),
                or_dash(&event.username),
                or_dash(&event.source_ip_address),
                event.event_id.clone(),
            ]
        })
        .collect();
    render_table(
        &[
            "EVENT TIME",
            "ACCOUNT",
            "REGION",
            "SOURCE",
            "NAME",
            "USER",
            "SOURCE IP",
            "EVENT ID",
        ],
        &rows,
    )
}

pub fn rule_json(rule: &pb::SigmaRule) -> Value {
    json!({
        "ruleId": rule.rule_id,
        "title": rule.title,
        "level": rule.level,
        "author": rule.author,
        "status": rule.status,
        "description": rule.description,
        "tags": rule.tags,
        "attackTechniques": rule.attack_techniques,
        "origin": rule.origin,
        "enabled": rule.enabled,
        "version": rule.version,
        "fields": rule.fields,
        "yaml": rule.yaml,
        "updatedAt": format_optional_time(rule.updated_at.as_ref()),
        "updatedBy": rule.updated_by,
    })
}

pub fn added_rules_json(response: &pb::AddRulesResponse) -> Value {
    json!({
        "added": response.added.iter().map(rule_json).collect::<Vec<_>>(),
        "unchanged": response.unchanged,
    })
}

pub fn finding_event_json(event: &pb::FindingEvent) -> Value {
    json!({
        "eventId": event.event_id,
        "eventTime": format_optional_time(event.event_time.as_ref()),
        "accountId": event.account_id,
        "awsRegion": event.aws_region,
        "eventSource": event.event_source,
        "eventName": event.event_name,
        "username": event.username,
        "sourceIpAddress": event.source_ip_address,
    })
}

fn rule_test_json(response: &pb::TestRuleResponse) -> Value {
    json!({
        "rule": response.rule.as_ref().map(rule_json),
        "eventsScanned": response.events_scanned,
        "eventsMatched": response.events_matched,
        "events": response.events.iter().map(finding_event_json).collect::<Vec<_>>(),
        "days": response.days.iter().map(|day| json!({
            "day": day.day,
            "matches": day.matches,
        })).collect::<Vec<_>>(),
    })
}

fn replay_json(report: &pb::ReplayDetectionsResponse) -> Value {
    json!({
        "eventsScanned": report.events_scanned,
        "matches": report.matches,
        "findingsRaised": report.findings_raised,
        "suppressed": report.suppressed,
    })
}

#[cfg(test)]
mod tests;
