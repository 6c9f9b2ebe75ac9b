//! Retention: scopes and policy content in; policies, holds, previews, explanations, run
//! reports and audit entries out.

use orgtrail_api::v1 as pb;
use orgtrail_domain::retention::RetentionScope;

use super::to_timestamp;
use crate::retention::{EnforcementReport, Explanation};
use crate::store::{AuditEntry, PolicyContent, RunCounts, StoredHold, StoredPolicy};

pub fn scope_from_proto(scope: Option<pb::RetentionScope>) -> RetentionScope {
    let scope = scope.unwrap_or_default();
    RetentionScope {
        accounts: scope.accounts,
        regions: scope.regions,
        event_categories: scope.event_categories,
        event_sources: scope.event_sources,
        event_names: scope.event_names,
        read_only: scope.read_only,
    }
}

pub fn scope_to_proto(scope: RetentionScope) -> pb::RetentionScope {
    pb::RetentionScope {
        accounts: scope.accounts,
        regions: scope.regions,
        event_categories: scope.event_categories,
        event_sources: scope.event_sources,
        event_names: scope.event_names,
        read_only: scope.read_only,
    }
}

pub fn policy_to_proto(stored: StoredPolicy) -> pb::RetentionPolicy {
    pb::RetentionPolicy {
        name: stored.policy.name,
        version: stored.policy.version,
        description: stored.policy.description,
        scope: Some(scope_to_proto(stored.policy.scope)),
        retain_days: stored.policy.retain_days,
        created_at: Some(to_timestamp(stored.created_at)),
        updated_at: Some(to_timestamp(stored.updated_at)),
        updated_by: stored.updated_by,
    }
}

pub fn hold_to_proto(stored: StoredHold) -> pb::LegalHold {
    pb::LegalHold {
        hold_id: stored.hold.hold_id,
        reason: stored.hold.reason,
        scope: Some(scope_to_proto(stored.hold.scope)),
        created_at: Some(to_timestamp(stored.created_at)),
        created_by: stored.created_by,
        expires_at: stored.hold.expires_at.map(to_timestamp),
        released_at: stored.hold.released_at.map(to_timestamp),
        released_by: stored.released_by.unwrap_or_default(),
        release_reason: stored.release_reason.unwrap_or_default(),
    }
}

pub fn tallies_to_proto(counts: RunCounts) -> Vec<pb::EventTally> {
    counts
        .into_iter()
        .map(|((account_id, aws_region), events)| pb::EventTally {
            account_id,
            aws_region,
            events: u64::try_from(events).unwrap_or(0),
        })
        .collect()
}

pub fn audit_entry_to_proto(entry: AuditEntry) -> pb::AuditEntry {
    let text =
        |value: Option<serde_json::Value>| value.map(|value| value.to_string()).unwrap_or_default();
    pb::AuditEntry {
        audit_id: entry.audit_id,
        occurred_at: Some(to_timestamp(entry.occurred_at)),
        actor: entry.actor,
        action: entry.action,
        subject: entry.subject,
        before: text(entry.before),
        after: text(entry.after),
        details: text(entry.details),
    }
}

pub fn policy_content_from_proto(
    description: String,
    scope: Option<pb::RetentionScope>,
    retain_days: u32,
) -> PolicyContent {
    PolicyContent {
        description,
        scope: scope_from_proto(scope),
        retain_days,
    }
}

pub fn explanation_to_proto(explanation: Explanation) -> pb::ExplainRetentionResponse {
    let decision = explanation.decision;
    pb::ExplainRetentionResponse {
        event_id: explanation.event_id.to_string(),
        event_time: Some(to_timestamp(explanation.event_time)),
        matched: decision
            .matched
            .into_iter()
            .map(|(name, version, retain_days)| pb::MatchedPolicy {
                name,
                version,
                retain_days,
            })
            .collect(),
        winning_policy: decision.winning.unwrap_or_default(),
        retain_days: decision.retain_days,
        expires_at: Some(to_timestamp(decision.expires_at)),
        holds: explanation.holds.into_iter().map(hold_to_proto).collect(),
        deleted_by_next_run: explanation.deleted_by_next_run,
    }
}

pub fn enforcement_report_to_proto(report: EnforcementReport) -> pb::EnforcementReport {
    pb::EnforcementReport {
        run_id: report.run_id,
        started_at: Some(to_timestamp(report.started_at)),
        finished_at: Some(to_timestamp(report.finished_at)),
        status: report.status,
        events_deleted: report
            .deletions
            .values()
            .map(|events| u64::try_from(*events).unwrap_or(0))
            .sum(),
        deletions: tallies_to_proto(report.deletions),
        partitions_dropped: report
            .partitions_dropped
            .iter()
            .map(ToString::to_string)
            .collect(),
        interrupted_runs: report.interrupted_runs,
    }
}
