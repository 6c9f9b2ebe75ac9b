//! How findings and suppressions print: the queue as a table, one finding with the event
//! behind it and its original record, suppressions with what they silenced; JSON with the
//! proto's fields in camelCase. Every view of a finding shows the rule's author (the Detection
//! Rule License requires it with every match of SigmaHQ's rules).

use anyhow::Context;
use orgtrail_api::v1 as pb;
use orgtrail_client::table::{render_table, truncate_cell};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::detection_output::{finding_event_json, labelled_lines};
use crate::events_command::{format_optional_time, format_time, or_dash};
use crate::SummaryFormat;

/// Characters of a finding's title shown in `findings list`; `findings show` shows all of it.
const TITLE_COLUMN_CHARS: usize = 70;
/// Characters of a suppression's reason shown in `suppressions list`.
const REASON_COLUMN_CHARS: usize = 60;

pub fn print_findings(findings: &[pb::Finding], format: SummaryFormat) -> anyhow::Result<()> {
    match format {
        SummaryFormat::Table => print!("{}", findings_table(findings)),
        SummaryFormat::Json => {
            let rows: Vec<Value> = findings.iter().map(finding_json).collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
    }
    Ok(())
}

pub fn print_finding_detail(
    detail: &pb::FindingDetail,
    format: SummaryFormat,
) -> anyhow::Result<()> {
    match format {
        SummaryFormat::Table => print!("{}", finding_detail_text(detail)),
        SummaryFormat::Json => println!("{}", finding_detail_json(detail)?),
    }
    Ok(())
}

pub fn print_suppressions(
    suppressions: &[pb::Suppression],
    format: SummaryFormat,
) -> anyhow::Result<()> {
    match format {
        SummaryFormat::Table => print!("{}", suppressions_table(suppressions)),
        SummaryFormat::Json => {
            let rows: Vec<Value> = suppressions.iter().map(suppression_json).collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
    }
    Ok(())
}

/// `findings list`: one line per finding, newest first as the server answers.
pub fn findings_table(findings: &[pb::Finding]) -> String {
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|finding| {
            vec![
                finding.finding_id.to_string(),
                format_time(finding.created_at.as_ref()),
                or_dash(&finding.level),
                or_dash(&truncate_cell(&finding.title, TITLE_COLUMN_CHARS)),
                or_dash(&finding.author),
                or_dash(&finding.account_id),
                or_dash(&finding.aws_region),
                format_time(finding.event_time.as_ref()),
                or_dash(&finding.state),
            ]
        })
        .collect();
    render_table(
        &[
            "ID",
            "CREATED",
            "LEVEL",
            "TITLE",
            "AUTHOR",
            "ACCOUNT",
            "REGION",
            "EVENT TIME",
            "STATE",
        ],
        &rows,
    )
}

/// `findings show`: every field of the finding, the event behind it, and its original record
/// as stored.
pub fn finding_detail_text(detail: &pb::FindingDetail) -> String {
    let finding = detail.finding.clone().unwrap_or_default();
    let mut text = finding_details(&finding);
    text.push_str("\nevent\n");
    match &detail.event {
        Some(event) => {
            let lines = [
                ("event id", event.event_id.clone()),
                ("event time", format_time(event.event_time.as_ref())),
                ("account", or_dash(&event.account_id)),
                ("region", or_dash(&event.aws_region)),
                ("source", or_dash(&event.event_source)),
                ("name", or_dash(&event.event_name)),
                ("user", or_dash(&event.username)),
                ("source ip", or_dash(&event.source_ip_address)),
            ];
            text.extend(
                lines
                    .iter()
                    .map(|(label, value)| format!("  {label:<16}{value}\n")),
            );
        }
        None => text.push_str("  no longer stored (retention), or none behind it\n"),
    }
    if !detail.cloud_trail_event.is_empty() {
        text.push_str("\noriginal record\n");
        text.push_str(&detail.cloud_trail_event);
        if !detail.cloud_trail_event.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

/// Every field of a finding, one per line (also what a triage change answers).
pub fn finding_details(finding: &pb::Finding) -> String {
    let rule = if finding.rule_version > 0 {
        format!("{} (version {})", finding.rule_id, finding.rule_version)
    } else {
        or_dash(&finding.rule_id)
    };
    let state_changed = if finding.state_changed_at.is_some() {
        format!(
            "{} by {}: {}",
            format_time(finding.state_changed_at.as_ref()),
            or_dash(&finding.state_changed_by),
            or_dash(&finding.state_reason)
        )
    } else {
        "-".into()
    };
    let suppression = if finding.suppression_id > 0 {
        finding.suppression_id.to_string()
    } else {
        "-".into()
    };
    let lines = [
        ("finding", finding.finding_id.to_string()),
        ("kind", or_dash(&finding.kind)),
        ("rule", rule),
        ("title", or_dash(&finding.title)),
        ("level", or_dash(&finding.level)),
        ("author", or_dash(&finding.author)),
        ("att&ck", or_dash(&finding.attack_techniques.join(", "))),
        ("tags", or_dash(&finding.tags.join(", "))),
        ("summary", or_dash(&finding.summary)),
        ("account", or_dash(&finding.account_id)),
        ("region", or_dash(&finding.aws_region)),
        ("event time", format_time(finding.event_time.as_ref())),
        ("event ids", or_dash(&finding.event_ids.join(", "))),
        ("state", or_dash(&finding.state)),
        ("state changed", state_changed),
        ("suppression", suppression),
        ("created", format_time(finding.created_at.as_ref())),
    ];
    labelled_lines(&lines, 18)
}

/// `suppressions list` and `create`: one line per suppression.
pub fn suppressions_table(suppressions: &[pb::Suppression]) -> String {
    let rows: Vec<Vec<String>> = suppressions
        .iter()
        .map(|suppression| {
            vec![
                suppression.suppression_id.to_string(),
                suppression.rule_id.clone(),
                or_dash(&suppression.accounts.join(",")),
                or_dash(&suppression.principals.join(",")),
                or_dash(&suppression.source_ips.join(",")),
                format_time(suppression.expires_at.as_ref()),
                suppression.suppressed.to_string(),
                format_time(suppression.created_at.as_ref()),
                or_dash(&suppression.created_by),
                or_dash(&truncate_cell(&suppression.reason, REASON_COLUMN_CHARS)),
            ]
        })
        .collect();
    render_table(
        &[
            "ID",
            "RULE",
            "ACCOUNTS",
            "PRINCIPALS",
            "SOURCE IPS",
            "EXPIRES",
            "SUPPRESSED",
            "CREATED",
            "BY",
            "REASON",
        ],
        &rows,
    )
}

pub fn finding_json(finding: &pb::Finding) -> Value {
    json!({
        "findingId": finding.finding_id,
        "kind": finding.kind,
        "ruleId": finding.rule_id,
        "ruleVersion": finding.rule_version,
        "title": finding.title,
        "level": finding.level,
        "author": finding.author,
        "tags": finding.tags,
        "attackTechniques": finding.attack_techniques,
        "accountId": finding.account_id,
        "awsRegion": finding.aws_region,
        "eventTime": format_optional_time(finding.event_time.as_ref()),
        "eventIds": finding.event_ids,
        "state": finding.state,
        "stateChangedAt": format_optional_time(finding.state_changed_at.as_ref()),
        "stateChangedBy": finding.state_changed_by,
        "stateReason": finding.state_reason,
        "createdAt": format_optional_time(finding.created_at.as_ref()),
        "suppressionId": (finding.suppression_id > 0).then_some(finding.suppression_id),
        "summary": finding.summary,
    })
}

/// `findings show --output json`: the finding, the event, and the original record embedded as
/// the JSON it is (byte for byte, not re-ordered); null when the event is not stored.
pub fn finding_detail_json(detail: &pb::FindingDetail) -> anyhow::Result<String> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct FindingDetailJson {
        finding: Value,
        event: Option<Value>,
        cloud_trail_event: Option<Box<RawValue>>,
    }
    let finding = detail.finding.clone().unwrap_or_default();
    let cloud_trail_event = if detail.cloud_trail_event.is_empty() {
        None
    } else {
        Some(
            RawValue::from_string(detail.cloud_trail_event.clone()).with_context(|| {
                format!(
                    "finding {} carries a record that is not JSON",
                    finding.finding_id
                )
            })?,
        )
    };
    Ok(serde_json::to_string_pretty(&FindingDetailJson {
        finding: finding_json(&finding),
        event: detail.event.as_ref().map(finding_event_json),
        cloud_trail_event,
    })?)
}

pub fn suppression_json(suppression: &pb::Suppression) -> Value {
    json!({
        "suppressionId": suppression.suppression_id,
        "ruleId": suppression.rule_id,
        "accounts": suppression.accounts,
        "principals": suppression.principals,
        "sourceIps": suppression.source_ips,
        "reason": suppression.reason,
        "expiresAt": format_optional_time(suppression.expires_at.as_ref()),
        "createdAt": format_optional_time(suppression.created_at.as_ref()),
        "createdBy": suppression.created_by,
        "suppressed": suppression.suppressed,
    })
}

#[cfg(test)]
mod tests;
