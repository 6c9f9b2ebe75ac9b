//! Rules and findings: rule files, finding filters, triage changes and suppressions in; rules,
//! backtests, replays, findings and suppressions out.

use orgtrail_api::v1 as pb;
use orgtrail_detection::sigma::attack_techniques;
use orgtrail_domain::CloudTrailEvent;
use tonic::Status;

use super::{from_timestamp, to_timestamp};
use crate::findings::SuppressionRequest;
use crate::sigma_rules::{ReplayReport, RuleTest, RuleView};
use crate::store::{FindingFilter, StoredFinding, StoredSuppression};

/// Events a backtest returns by default, and at most.
const DEFAULT_TEST_EVENTS: u32 = 10;
const MAX_TEST_EVENTS: u32 = 100;

pub fn rule_to_proto(view: RuleView, with_text: bool) -> pb::SigmaRule {
    let RuleView { stored, rule } = view;
    pb::SigmaRule {
        attack_techniques: rule.attack_techniques(),
        rule_id: stored.rule_id,
        title: stored.title,
        level: stored.level,
        author: stored.author.unwrap_or_default(),
        status: rule.status.unwrap_or_default(),
        description: rule.description.unwrap_or_default(),
        tags: rule.tags,
        origin: stored.origin,
        enabled: stored.enabled,
        version: stored.version,
        fields: rule.fields,
        yaml: if with_text {
            stored.yaml
        } else {
            String::new()
        },
        updated_at: Some(to_timestamp(stored.updated_at)),
        updated_by: stored.updated_by,
    }
}

pub fn rule_files_from_proto(files: Vec<pb::RuleFile>) -> Vec<(String, String)> {
    files
        .into_iter()
        .enumerate()
        .map(|(index, file)| {
            let name = if file.name.is_empty() {
                format!("rule {}", index + 1)
            } else {
                file.name
            };
            (name, file.yaml)
        })
        .collect()
}

pub fn test_size_from_proto(max_events: u32) -> Result<usize, Status> {
    match max_events {
        0 => Ok(DEFAULT_TEST_EVENTS as usize),
        value if value > MAX_TEST_EVENTS => Err(Status::invalid_argument(format!(
            "max_events is over the limit of {MAX_TEST_EVENTS}"
        ))),
        value => Ok(value as usize),
    }
}

pub fn finding_event_to_proto(event: &CloudTrailEvent) -> pb::FindingEvent {
    pb::FindingEvent {
        event_id: event.event_id.to_string(),
        event_time: Some(to_timestamp(event.event_time)),
        account_id: event.account_id.clone().unwrap_or_default(),
        aws_region: event.aws_region.clone().unwrap_or_default(),
        event_source: event.event_source.clone().unwrap_or_default(),
        event_name: event.event_name.clone().unwrap_or_default(),
        username: event.user_identity.username.clone().unwrap_or_default(),
        source_ip_address: event.source_ip_address.clone().unwrap_or_default(),
    }
}

pub fn rule_test_to_proto(test: RuleTest) -> pb::TestRuleResponse {
    pb::TestRuleResponse {
        events_scanned: test.events_scanned,
        events_matched: test.events_matched,
        events: test.events.iter().map(finding_event_to_proto).collect(),
        days: test
            .days
            .into_iter()
            .map(|(day, matches)| pb::DayCount {
                day: day.to_string(),
                matches,
            })
            .collect(),
        rule: Some(pb::SigmaRule {
            attack_techniques: test.rule.attack_techniques(),
            rule_id: test.rule.rule_id,
            title: test.rule.title,
            level: test.rule.level.as_str().to_string(),
            author: test.rule.author.unwrap_or_default(),
            status: test.rule.status.unwrap_or_default(),
            description: test.rule.description.unwrap_or_default(),
            tags: test.rule.tags,
            fields: test.rule.fields,
            ..Default::default()
        }),
    }
}

pub fn replay_to_proto(report: ReplayReport) -> pb::ReplayDetectionsResponse {
    pb::ReplayDetectionsResponse {
        events_scanned: report.events_scanned,
        matches: report.matches,
        findings_raised: report.findings_raised,
        suppressed: report.suppressed,
    }
}

pub fn finding_filter_from_proto(
    request: &pb::ListFindingsRequest,
) -> Result<FindingFilter, Status> {
    Ok(FindingFilter {
        min_level: (!request.min_level.is_empty()).then(|| request.min_level.clone()),
        rule_ids: request.rule_ids.clone(),
        accounts: request.accounts.clone(),
        states: request.states.clone(),
        since: request
            .since
            .map(|time| from_timestamp("since", time))
            .transpose()?,
        kind: (!request.kind.is_empty()).then(|| request.kind.clone()),
    })
}

pub fn finding_to_proto(finding: StoredFinding) -> pb::Finding {
    pb::Finding {
        attack_techniques: attack_techniques(&finding.tags),
        finding_id: finding.finding_id,
        kind: finding.kind,
        rule_id: finding.rule_id,
        rule_version: finding.rule_version,
        title: finding.title,
        level: finding.level,
        author: finding.author.unwrap_or_default(),
        tags: finding.tags,
        account_id: finding.account_id.unwrap_or_default(),
        aws_region: finding.aws_region.unwrap_or_default(),
        event_time: Some(to_timestamp(finding.event_time)),
        event_ids: finding.event_ids.iter().map(ToString::to_string).collect(),
        state: finding.state,
        state_changed_at: finding.state_changed_at.map(to_timestamp),
        state_changed_by: finding.state_changed_by.unwrap_or_default(),
        state_reason: finding.state_reason.unwrap_or_default(),
        created_at: Some(to_timestamp(finding.created_at)),
        suppression_id: finding.suppression_id.unwrap_or(0),
        summary: finding.summary,
    }
}

pub fn finding_detail_to_proto(
    finding: StoredFinding,
    event: Option<CloudTrailEvent>,
) -> pb::FindingDetail {
    pb::FindingDetail {
        finding: Some(finding_to_proto(finding)),
        event: event.as_ref().map(finding_event_to_proto),
        cloud_trail_event: event.map(|event| event.record_json).unwrap_or_default(),
    }
}

pub fn suppression_from_proto(
    request: pb::CreateSuppressionRequest,
) -> Result<SuppressionRequest, Status> {
    Ok(SuppressionRequest {
        rule_id: request.rule_id,
        accounts: request.accounts,
        principals: request.principals,
        source_ips: request.source_ips,
        reason: request.reason,
        expires_at: request
            .expires_at
            .map(|time| from_timestamp("expires_at", time))
            .transpose()?,
    })
}

pub fn suppression_to_proto(suppression: StoredSuppression) -> pb::Suppression {
    pb::Suppression {
        suppression_id: suppression.suppression_id,
        rule_id: suppression.rule_id,
        accounts: suppression.accounts,
        principals: suppression.principals,
        source_ips: suppression.source_ips,
        reason: suppression.reason,
        expires_at: Some(to_timestamp(suppression.expires_at)),
        created_at: Some(to_timestamp(suppression.created_at)),
        created_by: suppression.created_by,
        suppressed: suppression.suppressed.unsigned_abs(),
    }
}
