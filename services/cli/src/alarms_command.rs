//! `orgtrail alarms list|get|create|update|delete|history` and `orgtrail filters test`:
//! CloudWatch-style alarms on metric filters and backtests of a filter pattern over stored
//! events: the calls. `alarm_arguments.rs` turns flags into requests, `alarm_output.rs`
//! prints the answers. Patterns are the server's to parse: its INVALID_ARGUMENT, naming the
//! column, is printed as it is.

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use chrono::Utc;
use clap::Subcommand;
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::alarm_service_client::AlarmServiceClient;
use orgtrail_client::{connect, AuthChannel, ClientSettings};

use crate::alarm_arguments::{
    create_alarm_request, merge_alarm_update, test_filter_request, CreateAlarmArguments,
    TestFilterArguments, UpdateAlarmArguments,
};
use crate::alarm_output::{print_alarm, print_alarms, print_filter_test, print_transitions};
use crate::grpc_call::{status_error, with_actor};
use crate::retention_command::OutputArguments;

/// Transitions asked for per call while paging (the API's maximum).
const HISTORY_PAGE_SIZE: u32 = 1000;

#[derive(Subcommand)]
pub enum AlarmsCommand {
    /// Every alarm, built-in (CIS) ones included, with its state and rule.
    List(OutputArguments),
    /// One alarm, every field: the full pattern, scope, destinations, state and its reason.
    Get {
        /// The alarm's name.
        name: String,
        /// An earlier version of its definition.
        #[arg(long)]
        version: Option<i32>,
        #[command(flatten)]
        output: OutputArguments,
    },
    /// A new alarm: the events its pattern matches are counted per period, and the alarm
    /// enters ALARM when the count breaches the threshold in M of the last N periods.
    Create(CreateAlarmArguments),
    /// A new version of an alarm: what is given changes and the rest stays. The alarm is read,
    /// changed and written back whole, refused if another change came in between. A list flag
    /// (--account, --region, --category, --notify-on, --destination) replaces that list; its
    /// --clear-… flag empties it.
    Update(UpdateAlarmArguments),
    /// Removes an alarm (a built-in CIS alarm can be disabled, not deleted).
    Delete {
        /// The alarm's name.
        name: String,
    },
    /// The alarm's state transitions, newest first, each with its reason and events.
    History {
        /// The alarm's name.
        name: String,
        /// At most this many transitions (fetched page by page).
        #[arg(long, default_value_t = 50)]
        max: u32,
        #[command(flatten)]
        output: OutputArguments,
    },
}

#[derive(Subcommand)]
pub enum FiltersCommand {
    /// Runs a filter pattern over stored events, raising nothing: the matches per period,
    /// the first matching events, and the pattern as the server parsed it.
    Test(TestFilterArguments),
}

pub async fn run_alarms(
    settings: &ClientSettings,
    command: AlarmsCommand,
) -> anyhow::Result<ExitCode> {
    if let AlarmsCommand::Update(arguments) = &command {
        if !arguments.changes_anything() {
            bail!("nothing to change: give what the new version changes (see `orgtrail alarms update --help`)");
        }
    }
    let mut client = alarm_client(settings).await?;
    match command {
        AlarmsCommand::List(output) => {
            let alarms = client
                .list_alarms(with_actor(pb::ListAlarmsRequest {}))
                .await
                .map_err(status_error("cannot list alarms"))?
                .into_inner()
                .alarms;
            print_alarms(&alarms, output.output)?;
        }
        AlarmsCommand::Get {
            name,
            version,
            output,
        } => {
            let request = pb::GetAlarmRequest {
                name,
                version: version.unwrap_or(0),
            };
            let alarm = client
                .get_alarm(with_actor(request))
                .await
                .map_err(status_error("cannot read the alarm"))?
                .into_inner();
            print_alarm(&alarm, output.output)?;
        }
        AlarmsCommand::Create(arguments) => {
            let alarm = client
                .create_alarm(with_actor(create_alarm_request(&arguments)))
                .await
                .map_err(status_error("cannot create the alarm"))?
                .into_inner();
            print_alarm(&alarm, arguments.output.output)?;
        }
        AlarmsCommand::Update(arguments) => {
            let current = client
                .get_alarm(with_actor(pb::GetAlarmRequest {
                    name: arguments.name.clone(),
                    version: 0,
                }))
                .await
                .map_err(status_error("cannot read the alarm"))?
                .into_inner();
            let request = merge_alarm_update(current, &arguments)?;
            let alarm = client
                .update_alarm(with_actor(request))
                .await
                .map_err(status_error("cannot update the alarm"))?
                .into_inner();
            print_alarm(&alarm, arguments.output.output)?;
        }
        AlarmsCommand::Delete { name } => {
            client
                .delete_alarm(with_actor(pb::DeleteAlarmRequest { name: name.clone() }))
                .await
                .map_err(status_error("cannot delete the alarm"))?;
            println!("alarm {name} deleted");
        }
        AlarmsCommand::History { name, max, output } => {
            let transitions = read_history(&mut client, name, max).await?;
            print_transitions(&transitions, output.output)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_filters(
    settings: &ClientSettings,
    command: FiltersCommand,
) -> anyhow::Result<ExitCode> {
    let FiltersCommand::Test(arguments) = command;
    let request = test_filter_request(&arguments, Utc::now())?;
    let response = alarm_client(settings)
        .await?
        .test_filter(with_actor(request))
        .await
        .map_err(status_error("cannot test the filter"))?
        .into_inner();
    print_filter_test(&response, arguments.output.output)?;
    Ok(ExitCode::SUCCESS)
}

async fn alarm_client(
    settings: &ClientSettings,
) -> anyhow::Result<AlarmServiceClient<AuthChannel>> {
    Ok(AlarmServiceClient::new(connect(settings).await?))
}

/// Up to `max` transitions, newest first, following `next_token` across pages.
async fn read_history(
    client: &mut AlarmServiceClient<AuthChannel>,
    name: String,
    max: u32,
) -> anyhow::Result<Vec<pb::AlarmTransition>> {
    let mut transitions = Vec::new();
    let mut next_token = String::new();
    while transitions.len() < max as usize {
        let remaining = u32::try_from(max as usize - transitions.len()).unwrap_or(u32::MAX);
        let request = pb::GetAlarmHistoryRequest {
            name: name.clone(),
            max_results: remaining.min(HISTORY_PAGE_SIZE),
            next_token,
        };
        let page = client
            .get_alarm_history(with_actor(request))
            .await
            .map_err(status_error("cannot read the alarm's history"))?
            .into_inner();
        if page.transitions.is_empty() && !page.next_token.is_empty() {
            return Err(anyhow!(
                "the server answered an empty page of the alarm's history with a next token"
            ));
        }
        transitions.extend(page.transitions);
        if page.next_token.is_empty() {
            break;
        }
        next_token = page.next_token;
    }
    transitions.truncate(max as usize);
    Ok(transitions)
}

#[cfg(test)]
mod tests;
