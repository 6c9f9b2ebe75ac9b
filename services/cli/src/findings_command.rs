//! `orgtrail findings list|show|ack|resolve|false-positive|reopen` and `orgtrail suppressions
//! list|create|delete`: the client of `FindingService` — one queue of Sigma matches and alarm
//! transitions, triaged with a reason (audited), and suppressions of known-good activity.

use std::process::ExitCode;

use anyhow::bail;
use chrono::Utc;
use clap::Subcommand;
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::finding_service_client::FindingServiceClient;
use orgtrail_client::{connect, AuthChannel, ClientSettings};

use crate::detection_arguments::{
    create_suppression_request, list_findings_request, CreateSuppressionArguments,
    ListFindingsArguments, TriageArguments,
};
use crate::finding_output::{
    finding_details, print_finding_detail, print_findings, print_suppressions,
};
use crate::grpc_call::{status_error, with_actor};
use crate::retention_command::OutputArguments;

/// Findings asked for per call while paging (the API's maximum).
const FINDING_PAGE_SIZE: u32 = 1000;

#[derive(Subcommand)]
pub enum FindingsCommand {
    /// Findings newest first: Sigma matches and alarm transitions, with level, title, the
    /// rule's author, account, region, event time and triage state.
    List(ListFindingsArguments),
    /// One finding (with its author, ATT&CK techniques and summary), the event behind it and
    /// its original record.
    Show {
        /// The finding's id, as `orgtrail findings list` shows it.
        #[arg(value_name = "ID")]
        finding_id: i64,
        #[command(flatten)]
        output: OutputArguments,
    },
    /// Marks a finding acknowledged: someone is on it.
    Ack(TriageArguments),
    /// Marks a finding resolved.
    Resolve(TriageArguments),
    /// Marks a finding a false positive.
    FalsePositive(TriageArguments),
    /// Opens a finding again.
    Reopen(TriageArguments),
}

#[derive(Subcommand)]
pub enum SuppressionsCommand {
    /// Live suppressions: rule, scope, expiry and the matches each has silenced.
    List {
        /// Expired and deleted ones too.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        output: OutputArguments,
    },
    /// Silences a rule's matches on known-good activity until it expires: those of the given
    /// accounts, principals and source addresses (each list, when given, must match). They
    /// are kept as suppressed findings and counted, never notified.
    Create(CreateSuppressionArguments),
    /// Ends a suppression now.
    Delete {
        /// The suppression's id, as `orgtrail suppressions list` shows it.
        #[arg(value_name = "ID")]
        suppression_id: i64,
        /// Why it ends (kept in the audit log).
        #[arg(long)]
        reason: String,
    },
}

impl FindingsCommand {
    /// The triage change a command asks for; none for `list` and `show`.
    pub fn triage_request(&self) -> Option<pb::UpdateFindingStateRequest> {
        let (state, arguments) = match self {
            FindingsCommand::Ack(arguments) => ("acknowledged", arguments),
            FindingsCommand::Resolve(arguments) => ("resolved", arguments),
            FindingsCommand::FalsePositive(arguments) => ("false_positive", arguments),
            FindingsCommand::Reopen(arguments) => ("open", arguments),
            FindingsCommand::List(_) | FindingsCommand::Show { .. } => return None,
        };
        Some(pb::UpdateFindingStateRequest {
            finding_id: arguments.finding_id,
            state: state.to_string(),
            reason: arguments.reason.clone(),
        })
    }
}

pub async fn run_findings(
    settings: &ClientSettings,
    command: FindingsCommand,
) -> anyhow::Result<ExitCode> {
    if let Some(request) = command.triage_request() {
        let finding = finding_client(settings)
            .await?
            .update_finding_state(with_actor(request))
            .await
            .map_err(status_error("cannot change the finding's state"))?
            .into_inner();
        print!("{}", finding_details(&finding));
        return Ok(ExitCode::SUCCESS);
    }
    match command {
        FindingsCommand::List(arguments) => {
            let filter = list_findings_request(&arguments, Utc::now())?;
            let mut client = finding_client(settings).await?;
            let (findings, more) = read_findings(&mut client, filter, arguments.max).await?;
            print_findings(&findings, arguments.output.output)?;
            if more {
                eprintln!("(more findings may match: raise --max, or narrow the filter)");
            }
        }
        FindingsCommand::Show { finding_id, output } => {
            let detail = finding_client(settings)
                .await?
                .get_finding(with_actor(pb::GetFindingRequest { finding_id }))
                .await
                .map_err(status_error("cannot read the finding"))?
                .into_inner();
            print_finding_detail(&detail, output.output)?;
        }
        // Triage changes are answered above.
        FindingsCommand::Ack(_)
        | FindingsCommand::Resolve(_)
        | FindingsCommand::FalsePositive(_)
        | FindingsCommand::Reopen(_) => {}
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_suppressions(
    settings: &ClientSettings,
    command: SuppressionsCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        SuppressionsCommand::List { all, output } => {
            let suppressions = finding_client(settings)
                .await?
                .list_suppressions(with_actor(pb::ListSuppressionsRequest { all }))
                .await
                .map_err(status_error("cannot list suppressions"))?
                .into_inner()
                .suppressions;
            print_suppressions(&suppressions, output.output)?;
        }
        SuppressionsCommand::Create(arguments) => {
            let request = create_suppression_request(&arguments, Utc::now())?;
            let suppression = finding_client(settings)
                .await?
                .create_suppression(with_actor(request))
                .await
                .map_err(status_error("cannot create the suppression"))?
                .into_inner();
            print_suppressions(&[suppression], arguments.output.output)?;
        }
        SuppressionsCommand::Delete {
            suppression_id,
            reason,
        } => {
            finding_client(settings)
                .await?
                .delete_suppression(with_actor(pb::DeleteSuppressionRequest {
                    suppression_id,
                    reason,
                }))
                .await
                .map_err(status_error("cannot delete the suppression"))?;
            println!("suppression {suppression_id} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn finding_client(
    settings: &ClientSettings,
) -> anyhow::Result<FindingServiceClient<AuthChannel>> {
    Ok(FindingServiceClient::new(connect(settings).await?))
}

/// Up to `max` findings, newest first, following `next_token` across pages; and whether more
/// match.
async fn read_findings(
    client: &mut FindingServiceClient<AuthChannel>,
    filter: pb::ListFindingsRequest,
    max: u32,
) -> anyhow::Result<(Vec<pb::Finding>, bool)> {
    let mut findings = Vec::new();
    let mut next_token = String::new();
    while findings.len() < max as usize {
        let remaining = u32::try_from(max as usize - findings.len()).unwrap_or(u32::MAX);
        let request = pb::ListFindingsRequest {
            max_results: remaining.min(FINDING_PAGE_SIZE),
            next_token,
            ..filter.clone()
        };
        let page = client
            .list_findings(with_actor(request))
            .await
            .map_err(status_error("cannot list findings"))?
            .into_inner();
        if page.findings.is_empty() && !page.next_token.is_empty() {
            bail!("the server answered an empty page of findings with a next token");
        }
        findings.extend(page.findings);
        next_token = page.next_token;
        if next_token.is_empty() {
            break;
        }
    }
    let more = findings.len() > max as usize || !next_token.is_empty();
    findings.truncate(max as usize);
    Ok((findings, more))
}

#[cfg(test)]
mod tests;
