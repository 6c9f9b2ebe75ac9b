//! `orgtrail insights list|explain|replay` and `orgtrail insights settings list|set|delete`:
//! the client of `InsightService` — orgtrail's own CloudTrail Insights (docs/insights.md),
//! each a Start/End pair of Insight events; replays of stored history; the tuning per scope
//! (audited).

use std::process::ExitCode;

use anyhow::bail;
use chrono::Utc;
use clap::Subcommand;
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::insight_service_client::InsightServiceClient;
use orgtrail_client::{connect, AuthChannel, ClientSettings};

use crate::grpc_call::{status_error, with_actor};
use crate::insight_arguments::{
    delete_insight_setting_request, list_insights_request, replay_insights_request, scope_text,
    set_insight_setting_request, ExplainInsightArguments, InsightScopeArguments,
    ListInsightsArguments, ReplayInsightsArguments, SetInsightSettingArguments,
};
use crate::insight_output::{
    print_explanation, print_insights, print_replay, print_settings, setting_json, setting_text,
};
use crate::retention_command::OutputArguments;
use crate::SummaryFormat;

/// Insights asked for per call while paging (the API's maximum).
const INSIGHT_PAGE_SIZE: u32 = 1000;

#[derive(Subcommand)]
pub enum InsightsCommand {
    /// Insights newest first: account, region, API, type, start and end, duration, the
    /// baseline's and the Insight's averages, the peak minute and the finding raised.
    List(ListInsightsArguments),
    /// One Insight: its fields and attributions, then its minutes from an hour before to an
    /// hour after, each with its count, what the baseline expected and the threshold.
    Explain(ExplainInsightArguments),
    /// Finds the Insights of a window of event time in the stored history, as live evaluation
    /// would have, and writes those not written before (a second replay writes nothing).
    Replay(ReplayInsightsArguments),
    /// The tuning per scope: sensitivity and minimum rate per account, event source or API.
    #[command(subcommand)]
    Settings(InsightSettingsCommand),
}

#[derive(Subcommand)]
pub enum InsightSettingsCommand {
    /// Every scope's setting, and the configured defaults.
    List(OutputArguments),
    /// Sets a scope's tuning (replacing the scope's setting if it has one); audited.
    Set(SetInsightSettingArguments),
    /// Deletes a scope's setting (the next broader scope's applies again); audited.
    Delete(InsightScopeArguments),
}

pub async fn run_insights(
    settings: &ClientSettings,
    command: InsightsCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        InsightsCommand::List(arguments) => {
            let filter = list_insights_request(&arguments, Utc::now())?;
            let mut client = insight_client(settings).await?;
            let (insights, more) = read_insights(&mut client, filter, arguments.max).await?;
            print_insights(&insights, arguments.output)?;
            if more {
                eprintln!("(more Insights may match: raise --max, or narrow the filter)");
            }
        }
        InsightsCommand::Explain(arguments) => {
            let explanation = insight_client(settings)
                .await?
                .explain_insight(with_actor(pb::ExplainInsightRequest {
                    insight_id: arguments.insight_id.trim().to_string(),
                }))
                .await
                .map_err(status_error("cannot explain the Insight"))?
                .into_inner();
            print_explanation(&explanation, arguments.output.output)?;
        }
        InsightsCommand::Replay(arguments) => {
            let request = replay_insights_request(&arguments, Utc::now())?;
            let replay = insight_client(settings)
                .await?
                .replay_insights(with_actor(request))
                .await
                .map_err(status_error("cannot replay Insights"))?
                .into_inner();
            print_replay(&replay, arguments.output.output)?;
        }
        InsightsCommand::Settings(command) => run_settings(settings, command).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_settings(
    settings: &ClientSettings,
    command: InsightSettingsCommand,
) -> anyhow::Result<()> {
    match command {
        InsightSettingsCommand::List(output) => {
            let listed = insight_client(settings)
                .await?
                .list_insight_settings(with_actor(pb::ListInsightSettingsRequest {}))
                .await
                .map_err(status_error("cannot list Insight settings"))?
                .into_inner();
            print_settings(&listed, output.output)?;
        }
        InsightSettingsCommand::Set(arguments) => {
            let request = set_insight_setting_request(&arguments)?;
            let stored = insight_client(settings)
                .await?
                .set_insight_setting(with_actor(request))
                .await
                .map_err(status_error("cannot set the Insight setting"))?
                .into_inner();
            match arguments.output.output {
                SummaryFormat::Table => print!("{}", setting_text(&stored)),
                SummaryFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&setting_json(&stored))?)
                }
            }
        }
        InsightSettingsCommand::Delete(scope) => {
            let request = delete_insight_setting_request(&scope)?;
            let scope = scope_text(
                &request.account_id,
                &request.event_source,
                &request.event_name,
            );
            insight_client(settings)
                .await?
                .delete_insight_setting(with_actor(request))
                .await
                .map_err(status_error("cannot delete the Insight setting"))?;
            println!("Insight setting of {scope} deleted");
        }
    }
    Ok(())
}

async fn insight_client(
    settings: &ClientSettings,
) -> anyhow::Result<InsightServiceClient<AuthChannel>> {
    Ok(InsightServiceClient::new(connect(settings).await?))
}

/// Up to `max` Insights, newest first, following `next_token` across pages; and whether more
/// match.
async fn read_insights(
    client: &mut InsightServiceClient<AuthChannel>,
    filter: pb::ListInsightsRequest,
    max: u32,
) -> anyhow::Result<(Vec<pb::Insight>, bool)> {
    let mut insights = Vec::new();
    let mut next_token = String::new();
    while insights.len() < max as usize {
        let remaining = u32::try_from(max as usize - insights.len()).unwrap_or(u32::MAX);
        let request = pb::ListInsightsRequest {
            max_results: remaining.min(INSIGHT_PAGE_SIZE),
            next_token,
            ..filter.clone()
        };
        let page = client
            .list_insights(with_actor(request))
            .await
            .map_err(status_error("cannot list Insights"))?
            .into_inner();
        if page.insights.is_empty() && !page.next_token.is_empty() {
            bail!("the server answered an empty page of Insights with a next token");
        }
        insights.extend(page.insights);
        next_token = page.next_token;
        if next_token.is_empty() {
            break;
        }
    }
    let more = insights.len() > max as usize || !next_token.is_empty();
    insights.truncate(max as usize);
    Ok((insights, more))
}
