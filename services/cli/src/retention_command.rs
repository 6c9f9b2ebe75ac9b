//! `orgtrail retention …`, `orgtrail holds …` and `orgtrail audit list`: retention policies,
//! legal holds, enforcement and the audit log, in tables or JSON.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use chrono::Utc;
use clap::{Args, Subcommand};
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::audit_service_client::AuditServiceClient;
use orgtrail_api::v1::retention_service_client::RetentionServiceClient;
use orgtrail_client::table::render_table;
use orgtrail_client::AuthChannel;
use orgtrail_client::{connect, ClientSettings};
use serde_json::{json, Value};

use crate::events_command::format_time;
use crate::grpc_call::{status_error, with_actor};
use crate::time_argument::{parse_time, RangeEnd};
use crate::SummaryFormat;

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// The policies in force.
    List(OutputArguments),
    /// One policy (its current version, an earlier one, or its whole history).
    Get {
        name: String,
        /// An earlier version.
        #[arg(long)]
        version: Option<i32>,
        /// Every version, oldest first.
        #[arg(long)]
        history: bool,
        #[command(flatten)]
        output: OutputArguments,
    },
    /// A new policy: events its scope covers are kept at least --retain-days.
    Create(PolicyArguments),
    /// A new version of a policy: what is given replaces the current version's (scope flags
    /// replace the whole scope).
    Update {
        name: String,
        /// Days an event in scope is kept after its eventTime.
        #[arg(long)]
        retain_days: Option<u32>,
        /// What the policy is for.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        scope: ScopeArguments,
        /// Refused unless the policy is at this version.
        #[arg(long)]
        expected_version: Option<i32>,
        #[command(flatten)]
        output: OutputArguments,
    },
    /// Removes a policy (its versions stay in its history and the audit log).
    Delete { name: String },
    /// How many stored events enforcement would delete now with this policy (new, or
    /// replacing the one of its name), per account and region.
    Preview(PolicyArguments),
    /// Why an event is kept as long as it is: matching policies, the winner, expiry, holds.
    Explain {
        /// The event's eventID.
        #[arg(long)]
        event_id: String,
        #[command(flatten)]
        output: OutputArguments,
    },
    /// Runs enforcement now and waits for its report.
    Run(OutputArguments),
}

#[derive(Subcommand)]
pub enum HoldsCommand {
    /// Active holds (with --all, released and expired ones too).
    List {
        /// Released and expired holds too.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        output: OutputArguments,
    },
    /// A legal hold: nothing in its scope is deleted while it is active.
    Create {
        /// Why the hold exists, e.g. the legal matter (kept in the audit log).
        #[arg(long)]
        reason: String,
        /// When the hold ends by itself: RFC 3339 or a date.
        #[arg(long)]
        expires: Option<String>,
        #[command(flatten)]
        scope: ScopeArguments,
        #[command(flatten)]
        output: OutputArguments,
    },
    /// Releases a hold.
    Release {
        /// The hold's id, as `holds list` shows it.
        hold_id: i64,
        /// Why it is released (kept in the audit log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        output: OutputArguments,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Audit entries, newest first.
    List {
        /// Only actions starting with this: policy., hold., retention.run, rule., finding.,
        /// suppression., detections.replay
        #[arg(long)]
        action: Option<String>,
        /// From: RFC 3339, a date, or a span before now (7d).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 50)]
        max: u32,
        #[command(flatten)]
        output: OutputArguments,
    },
}

#[derive(Args)]
pub struct OutputArguments {
    /// How to print: a table (or text) to read, or JSON with the API's fields in camelCase.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub output: SummaryFormat,
}

/// What a policy or hold covers; each flag repeatable; none given: every event.
#[derive(Args, Default)]
pub struct ScopeArguments {
    /// An account id (repeatable; any of them matches).
    #[arg(long = "account")]
    pub accounts: Vec<String>,
    /// A region, e.g. eu-west-1 (repeatable).
    #[arg(long = "region")]
    pub regions: Vec<String>,
    /// Management, Data, Insight, NetworkActivity.
    #[arg(long = "category")]
    pub categories: Vec<String>,
    /// An event source, e.g. iam.amazonaws.com.
    #[arg(long = "source")]
    pub sources: Vec<String>,
    /// An API name, e.g. ConsoleLogin (repeatable).
    #[arg(long = "event-name")]
    pub event_names: Vec<String>,
    /// true: read-only events only; false: write events only.
    #[arg(long)]
    pub read_only: Option<bool>,
}

impl ScopeArguments {
    fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.regions.is_empty()
            && self.categories.is_empty()
            && self.sources.is_empty()
            && self.event_names.is_empty()
            && self.read_only.is_none()
    }

    fn to_proto(&self) -> pb::RetentionScope {
        pb::RetentionScope {
            accounts: self.accounts.clone(),
            regions: self.regions.clone(),
            event_categories: self.categories.clone(),
            event_sources: self.sources.clone(),
            event_names: self.event_names.clone(),
            read_only: self.read_only,
        }
    }
}

#[derive(Args)]
pub struct PolicyArguments {
    /// The policy's name (unique among policies in force).
    pub name: String,
    /// Days an event in scope is kept after its eventTime.
    #[arg(long)]
    pub retain_days: u32,
    /// What the policy is for, e.g. the rule it implements.
    #[arg(long, default_value = "")]
    pub description: String,
    #[command(flatten)]
    pub scope: ScopeArguments,
    #[command(flatten)]
    pub output: OutputArguments,
}

async fn retention_client(
    settings: &ClientSettings,
) -> anyhow::Result<RetentionServiceClient<AuthChannel>> {
    Ok(RetentionServiceClient::new(connect(settings).await?))
}

pub async fn run_retention(
    settings: &ClientSettings,
    command: RetentionCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        RetentionCommand::List(output) => {
            let policies = retention_client(settings)
                .await?
                .list_policies(with_actor(pb::ListPoliciesRequest {}))
                .await
                .map_err(status_error("cannot list policies"))?
                .into_inner()
                .policies;
            print_policies(&policies, output.output);
        }
        RetentionCommand::Get {
            name,
            version,
            history,
            output,
        } => {
            let mut client = retention_client(settings).await?;
            let policies = if history {
                client
                    .get_policy_history(with_actor(pb::GetPolicyHistoryRequest { name }))
                    .await
                    .map_err(status_error("cannot read the policy's history"))?
                    .into_inner()
                    .versions
            } else {
                let request = pb::GetPolicyRequest {
                    name,
                    version: version.unwrap_or(0),
                };
                vec![client
                    .get_policy(with_actor(request))
                    .await
                    .map_err(status_error("cannot read the policy"))?
                    .into_inner()]
            };
            print_policies(&policies, output.output);
        }
        RetentionCommand::Create(arguments) => {
            let request = pb::CreatePolicyRequest {
                name: arguments.name,
                description: arguments.description,
                scope: Some(arguments.scope.to_proto()),
                retain_days: arguments.retain_days,
            };
            let policy = retention_client(settings)
                .await?
                .create_policy(with_actor(request))
                .await
                .map_err(status_error("cannot create the policy"))?
                .into_inner();
            print_policies(&[policy], arguments.output.output);
        }
        RetentionCommand::Update {
            name,
            retain_days,
            description,
            scope,
            expected_version,
            output,
        } => {
            let request = pb::UpdatePolicyRequest {
                name,
                description,
                scope: (!scope.is_empty()).then(|| scope.to_proto()),
                retain_days,
                expected_version: expected_version.unwrap_or(0),
            };
            let policy = retention_client(settings)
                .await?
                .update_policy(with_actor(request))
                .await
                .map_err(status_error("cannot update the policy"))?
                .into_inner();
            print_policies(&[policy], output.output);
        }
        RetentionCommand::Delete { name } => {
            retention_client(settings)
                .await?
                .delete_policy(with_actor(pb::DeletePolicyRequest { name: name.clone() }))
                .await
                .map_err(status_error("cannot delete the policy"))?;
            println!("policy {name} deleted");
        }
        RetentionCommand::Preview(arguments) => {
            let request = pb::PreviewPolicyRequest {
                name: arguments.name,
                description: arguments.description,
                scope: Some(arguments.scope.to_proto()),
                retain_days: arguments.retain_days,
            };
            let preview = retention_client(settings)
                .await?
                .preview_policy(with_actor(request))
                .await
                .map_err(status_error("cannot preview the policy"))?
                .into_inner();
            match arguments.output.output {
                SummaryFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "total": preview.total,
                        "replacesExisting": preview.replaces_existing,
                        "deletions": tallies_json(&preview.deletions),
                    }))?
                ),
                SummaryFormat::Table => {
                    print!("{}", tallies_table(&preview.deletions));
                    println!("{} events would be deleted now", preview.total);
                }
            }
        }
        RetentionCommand::Explain { event_id, output } => {
            let explanation = retention_client(settings)
                .await?
                .explain_retention(with_actor(pb::ExplainRetentionRequest { event_id }))
                .await
                .map_err(status_error("cannot explain the event's retention"))?
                .into_inner();
            print_explanation(&explanation, output.output)?;
        }
        RetentionCommand::Run(output) => {
            // A run takes as long as its deletions take.
            let mut long = settings.clone();
            long.request_timeout = Duration::from_secs(24 * 3600);
            let report = RetentionServiceClient::new(connect(&long).await?)
                .run_enforcement(with_actor(pb::RunEnforcementRequest {}))
                .await
                .map_err(status_error("enforcement failed"))?
                .into_inner();
            print_report(&report, output.output)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_holds(
    settings: &ClientSettings,
    command: HoldsCommand,
) -> anyhow::Result<ExitCode> {
    let mut client = retention_client(settings).await?;
    match command {
        HoldsCommand::List { all, output } => {
            let holds = client
                .list_legal_holds(with_actor(pb::ListLegalHoldsRequest {
                    include_inactive: all,
                }))
                .await
                .map_err(status_error("cannot list holds"))?
                .into_inner()
                .holds;
            print_holds(&holds, output.output);
        }
        HoldsCommand::Create {
            reason,
            expires,
            scope,
            output,
        } => {
            let expires_at = expires
                .map(|text| {
                    parse_time(&text, RangeEnd::End, Utc::now()).map_err(|message| anyhow!(message))
                })
                .transpose()?
                .map(|time| prost_types::Timestamp {
                    seconds: time.timestamp(),
                    nanos: 0,
                });
            let request = pb::CreateLegalHoldRequest {
                reason,
                scope: Some(scope.to_proto()),
                expires_at,
            };
            let hold = client
                .create_legal_hold(with_actor(request))
                .await
                .map_err(status_error("cannot create the hold"))?
                .into_inner();
            print_holds(&[hold], output.output);
        }
        HoldsCommand::Release {
            hold_id,
            reason,
            output,
        } => {
            let hold = client
                .release_legal_hold(with_actor(pb::ReleaseLegalHoldRequest { hold_id, reason }))
                .await
                .map_err(status_error("cannot release the hold"))?
                .into_inner();
            print_holds(&[hold], output.output);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_audit(
    settings: &ClientSettings,
    command: AuditCommand,
) -> anyhow::Result<ExitCode> {
    let AuditCommand::List {
        action,
        since,
        max,
        output,
    } = command;
    let since = since
        .map(|text| {
            parse_time(&text, RangeEnd::Start, Utc::now()).map_err(|message| anyhow!(message))
        })
        .transpose()?
        .map(|time| prost_types::Timestamp {
            seconds: time.timestamp(),
            nanos: 0,
        });
    let mut client = AuditServiceClient::new(connect(settings).await?);
    let mut entries = Vec::new();
    let mut next_token = String::new();
    while entries.len() < max as usize {
        let request = pb::ListAuditEntriesRequest {
            action_prefix: action.clone().unwrap_or_default(),
            since,
            max_results: (max as usize - entries.len()).min(1000) as u32,
            next_token,
        };
        let page = client
            .list_audit_entries(with_actor(request))
            .await
            .map_err(status_error("cannot read the audit log"))?
            .into_inner();
        entries.extend(page.entries);
        if page.next_token.is_empty() {
            break;
        }
        next_token = page.next_token;
    }
    match output.output {
        SummaryFormat::Json => {
            let rows: Vec<Value> = entries
                .iter()
                .map(|entry| {
                    let parsed =
                        |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
                    json!({
                        "auditId": entry.audit_id,
                        "occurredAt": format_time(entry.occurred_at.as_ref()),
                        "actor": entry.actor,
                        "action": entry.action,
                        "subject": entry.subject,
                        "before": parsed(&entry.before),
                        "after": parsed(&entry.after),
                        "details": parsed(&entry.details),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        SummaryFormat::Table => {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|entry| {
                    let change = if entry.details.is_empty() {
                        entry.after.clone()
                    } else {
                        entry.details.clone()
                    };
                    vec![
                        entry.audit_id.to_string(),
                        format_time(entry.occurred_at.as_ref()),
                        entry.actor.clone(),
                        entry.action.clone(),
                        entry.subject.clone(),
                        change.chars().take(120).collect(),
                    ]
                })
                .collect();
            print!(
                "{}",
                render_table(
                    &["ID", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAIL"],
                    &rows
                )
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn scope_text(scope: Option<&pb::RetentionScope>) -> String {
    let Some(scope) = scope else {
        return "all events".into();
    };
    let mut parts = Vec::new();
    for (name, values) in [
        ("accounts", &scope.accounts),
        ("regions", &scope.regions),
        ("categories", &scope.event_categories),
        ("sources", &scope.event_sources),
        ("names", &scope.event_names),
    ] {
        if !values.is_empty() {
            parts.push(format!("{name}={}", values.join(",")));
        }
    }
    if let Some(read_only) = scope.read_only {
        parts.push(format!("readOnly={read_only}"));
    }
    if parts.is_empty() {
        "all events".into()
    } else {
        parts.join(" ")
    }
}

fn scope_json(scope: Option<&pb::RetentionScope>) -> Value {
    let scope = scope.cloned().unwrap_or_default();
    json!({
        "accounts": scope.accounts,
        "regions": scope.regions,
        "eventCategories": scope.event_categories,
        "eventSources": scope.event_sources,
        "eventNames": scope.event_names,
        "readOnly": scope.read_only,
    })
}

fn print_policies(policies: &[pb::RetentionPolicy], format: SummaryFormat) {
    match format {
        SummaryFormat::Json => {
            let rows: Vec<Value> = policies
                .iter()
                .map(|policy| {
                    json!({
                        "name": policy.name,
                        "version": policy.version,
                        "description": policy.description,
                        "scope": scope_json(policy.scope.as_ref()),
                        "retainDays": policy.retain_days,
                        "createdAt": format_time(policy.created_at.as_ref()),
                        "updatedAt": format_time(policy.updated_at.as_ref()),
                        "updatedBy": policy.updated_by,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&rows).unwrap_or_default()
            );
        }
        SummaryFormat::Table => {
            let rows: Vec<Vec<String>> = policies
                .iter()
                .map(|policy| {
                    vec![
                        policy.name.clone(),
                        policy.version.to_string(),
                        policy.retain_days.to_string(),
                        scope_text(policy.scope.as_ref()),
                        format_time(policy.updated_at.as_ref()),
                        policy.updated_by.clone(),
                        policy.description.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                render_table(
                    &[
                        "NAME",
                        "VERSION",
                        "RETAIN DAYS",
                        "SCOPE",
                        "UPDATED",
                        "BY",
                        "DESCRIPTION"
                    ],
                    &rows
                )
            );
        }
    }
}

fn print_holds(holds: &[pb::LegalHold], format: SummaryFormat) {
    match format {
        SummaryFormat::Json => {
            let rows: Vec<Value> = holds
                .iter()
                .map(|hold| {
                    json!({
                        "holdId": hold.hold_id,
                        "reason": hold.reason,
                        "scope": scope_json(hold.scope.as_ref()),
                        "createdAt": format_time(hold.created_at.as_ref()),
                        "createdBy": hold.created_by,
                        "expiresAt": hold.expires_at.as_ref().map(|time| format_time(Some(time))),
                        "releasedAt": hold.released_at.as_ref().map(|time| format_time(Some(time))),
                        "releasedBy": hold.released_by,
                        "releaseReason": hold.release_reason,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&rows).unwrap_or_default()
            );
        }
        SummaryFormat::Table => {
            let rows: Vec<Vec<String>> = holds
                .iter()
                .map(|hold| {
                    vec![
                        hold.hold_id.to_string(),
                        scope_text(hold.scope.as_ref()),
                        format_time(hold.created_at.as_ref()),
                        hold.created_by.clone(),
                        format_time(hold.expires_at.as_ref()),
                        format_time(hold.released_at.as_ref()),
                        hold.reason.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                render_table(
                    &["ID", "SCOPE", "CREATED", "BY", "EXPIRES", "RELEASED", "REASON"],
                    &rows
                )
            );
        }
    }
}

fn tallies_json(tallies: &[pb::EventTally]) -> Vec<Value> {
    tallies
        .iter()
        .map(|tally| json!({ "accountId": tally.account_id, "awsRegion": tally.aws_region, "events": tally.events }))
        .collect()
}

fn tallies_table(tallies: &[pb::EventTally]) -> String {
    let rows: Vec<Vec<String>> = tallies
        .iter()
        .map(|tally| {
            vec![
                tally.account_id.clone(),
                tally.aws_region.clone(),
                tally.events.to_string(),
            ]
        })
        .collect();
    render_table(&["ACCOUNT", "REGION", "EVENTS"], &rows)
}

fn print_explanation(
    explanation: &pb::ExplainRetentionResponse,
    format: SummaryFormat,
) -> anyhow::Result<()> {
    let holds: Vec<String> = explanation
        .holds
        .iter()
        .map(|hold| format!("{} ({})", hold.hold_id, hold.reason))
        .collect();
    match format {
        SummaryFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "eventId": explanation.event_id,
                "eventTime": format_time(explanation.event_time.as_ref()),
                "matched": explanation.matched.iter().map(|policy| json!({
                    "name": policy.name, "version": policy.version, "retainDays": policy.retain_days,
                })).collect::<Vec<_>>(),
                "winningPolicy": explanation.winning_policy,
                "retainDays": explanation.retain_days,
                "expiresAt": format_time(explanation.expires_at.as_ref()),
                "holds": explanation.holds.iter().map(|hold| hold.hold_id).collect::<Vec<_>>(),
                "deletedByNextRun": explanation.deleted_by_next_run,
            }))?
        ),
        SummaryFormat::Table => {
            println!("event       {}", explanation.event_id);
            println!(
                "event time  {}",
                format_time(explanation.event_time.as_ref())
            );
            let matched: Vec<String> = explanation
                .matched
                .iter()
                .map(|policy| {
                    format!(
                        "{} v{} ({} days)",
                        policy.name, policy.version, policy.retain_days
                    )
                })
                .collect();
            println!(
                "matched     {}",
                if matched.is_empty() {
                    "none".into()
                } else {
                    matched.join(", ")
                }
            );
            let winner = if explanation.winning_policy.is_empty() {
                "the default".to_string()
            } else {
                explanation.winning_policy.clone()
            };
            println!("kept for    {} days ({winner})", explanation.retain_days);
            println!(
                "expires     {}",
                format_time(explanation.expires_at.as_ref())
            );
            println!(
                "holds       {}",
                if holds.is_empty() {
                    "none".into()
                } else {
                    holds.join(", ")
                }
            );
            println!(
                "next run    {}",
                if explanation.deleted_by_next_run {
                    "deletes it"
                } else {
                    "keeps it"
                }
            );
        }
    }
    Ok(())
}

fn print_report(report: &pb::EnforcementReport, format: SummaryFormat) -> anyhow::Result<()> {
    match format {
        SummaryFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "runId": report.run_id,
                "status": report.status,
                "startedAt": format_time(report.started_at.as_ref()),
                "finishedAt": format_time(report.finished_at.as_ref()),
                "eventsDeleted": report.events_deleted,
                "deletions": tallies_json(&report.deletions),
                "partitionsDropped": report.partitions_dropped,
                "interruptedRuns": report.interrupted_runs,
            }))?
        ),
        SummaryFormat::Table => {
            println!(
                "run {} {}: {} events deleted, {} day partitions dropped",
                report.run_id,
                report.status,
                report.events_deleted,
                report.partitions_dropped.len()
            );
            if !report.interrupted_runs.is_empty() {
                println!(
                    "accounted for interrupted runs: {:?}",
                    report.interrupted_runs
                );
            }
            print!("{}", tallies_table(&report.deletions));
        }
    }
    Ok(())
}
