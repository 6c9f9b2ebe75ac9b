//! The flags of `orgtrail insights …` and how they become requests. Nothing here judges a
//! setting (the server checks a scope and its values as the model does, and names what it
//! refuses); this only refuses what cannot be sent.

use anyhow::bail;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use orgtrail_api::v1 as pb;

use crate::retention_command::OutputArguments;
use crate::time_argument::{timestamp_argument, RangeEnd};

/// The two kinds of Insight, as CloudTrail names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InsightTypeArgument {
    /// An unusual number of calls to a write management API.
    #[value(name = "ApiCallRateInsight")]
    ApiCallRate,
    /// An unusual number of management calls that returned an error.
    #[value(name = "ApiErrorRateInsight")]
    ApiErrorRate,
}

impl InsightTypeArgument {
    pub fn as_str(self) -> &'static str {
        match self {
            InsightTypeArgument::ApiCallRate => "ApiCallRateInsight",
            InsightTypeArgument::ApiErrorRate => "ApiErrorRateInsight",
        }
    }
}

/// How `insights list` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InsightListFormat {
    /// One line per Insight.
    Table,
    /// A JSON array of Insights, the API's fields in camelCase.
    Json,
    /// One Insight per line (JSON), across all pages.
    Jsonl,
}

#[derive(Args)]
pub struct ListInsightsArguments {
    /// Only Insights of this account (repeatable).
    #[arg(long = "account", value_name = "ACCOUNT_ID")]
    pub accounts: Vec<String>,
    /// Only Insights of this type.
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub insight_type: Option<InsightTypeArgument>,
    /// Only Insights that started at or after this: RFC 3339, a date, or a span before now
    /// (7d, 12h).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Insights superseded by later events (not unusual after all) too.
    #[arg(long)]
    pub include_superseded: bool,
    /// At most this many Insights, newest first (fetched page by page).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max: u32,
    #[arg(long, value_enum, default_value_t = InsightListFormat::Table)]
    pub output: InsightListFormat,
}

#[derive(Args)]
pub struct ExplainInsightArguments {
    /// The Insight's id (its events' sharedEventID), as `orgtrail insights list` shows it.
    #[arg(value_name = "ID")]
    pub insight_id: String,
    #[command(flatten)]
    pub output: OutputArguments,
}

#[derive(Args)]
pub struct ReplayInsightsArguments {
    /// From (inclusive, event time): RFC 3339, a date, or a span before now (7d, 12h).
    #[arg(long, value_name = "T")]
    pub start: String,
    /// To (inclusive, event time), in the same forms.
    #[arg(long, value_name = "T")]
    pub end: String,
    #[command(flatten)]
    pub output: OutputArguments,
}

/// The scope a setting applies to: an account, an event source, an API (an event source and
/// event name), or a combination; none given: everything.
#[derive(Args, Clone, Debug, Default)]
pub struct InsightScopeArguments {
    /// Only this account (12 digits).
    #[arg(long = "account", value_name = "ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// Only this event source (e.g. ec2.amazonaws.com).
    #[arg(long, value_name = "SOURCE")]
    pub event_source: Option<String>,
    /// Only this API of the event source (e.g. RunInstances); needs --event-source.
    #[arg(long, value_name = "NAME")]
    pub event_name: Option<String>,
}

#[derive(Args)]
pub struct SetInsightSettingArguments {
    #[command(flatten)]
    pub scope: InsightScopeArguments,
    /// The sensitivity in standard deviations (default 5): larger raises fewer Insights.
    #[arg(long, value_name = "SIGMA")]
    pub threshold_sigma: Option<f64>,
    /// The least calls (or errors) a minute must have to be unusual (default 5).
    #[arg(long, value_name = "PER_MINUTE")]
    pub min_rate: Option<f64>,
    /// No Insights in this scope.
    #[arg(long)]
    pub disabled: bool,
    #[command(flatten)]
    pub output: OutputArguments,
}

/// The filter of `insights list` (the page size and token are the pager's).
pub fn list_insights_request(
    arguments: &ListInsightsArguments,
    now: DateTime<Utc>,
) -> anyhow::Result<pb::ListInsightsRequest> {
    Ok(pb::ListInsightsRequest {
        accounts: arguments.accounts.clone(),
        insight_type: arguments
            .insight_type
            .map(|insight_type| insight_type.as_str().to_string())
            .unwrap_or_default(),
        since: timestamp_argument(arguments.since.as_deref(), RangeEnd::Start, now)?,
        max_results: 0,
        next_token: String::new(),
        include_superseded: arguments.include_superseded,
    })
}

/// The request of `insights replay`; times relative to `now`.
pub fn replay_insights_request(
    arguments: &ReplayInsightsArguments,
    now: DateTime<Utc>,
) -> anyhow::Result<pb::ReplayInsightsRequest> {
    Ok(pb::ReplayInsightsRequest {
        start_time: timestamp_argument(Some(&arguments.start), RangeEnd::Start, now)?,
        end_time: timestamp_argument(Some(&arguments.end), RangeEnd::End, now)?,
    })
}

/// The request of `insights settings set`. A setting that changes nothing is refused here,
/// before a connection is made.
pub fn set_insight_setting_request(
    arguments: &SetInsightSettingArguments,
) -> anyhow::Result<pb::SetInsightSettingRequest> {
    if arguments.threshold_sigma.is_none() && arguments.min_rate.is_none() && !arguments.disabled {
        bail!("give --threshold-sigma, --min-rate or --disabled: the setting would change nothing");
    }
    let scope = scope_parts(&arguments.scope)?;
    Ok(pb::SetInsightSettingRequest {
        setting: Some(pb::InsightSetting {
            account_id: scope.account_id,
            event_source: scope.event_source,
            event_name: scope.event_name,
            threshold_sigma: arguments.threshold_sigma,
            min_rate_per_minute: arguments.min_rate,
            disabled: arguments.disabled,
            updated_at: None,
            updated_by: String::new(),
        }),
    })
}

/// The request of `insights settings delete`.
pub fn delete_insight_setting_request(
    scope: &InsightScopeArguments,
) -> anyhow::Result<pb::DeleteInsightSettingRequest> {
    scope_parts(scope)
}

/// A scope as the API spells it (empty: any); an event name needs its event source.
fn scope_parts(scope: &InsightScopeArguments) -> anyhow::Result<pb::DeleteInsightSettingRequest> {
    let part = |text: &Option<String>| text.as_deref().unwrap_or_default().trim().to_string();
    let request = pb::DeleteInsightSettingRequest {
        account_id: part(&scope.account_id),
        event_source: part(&scope.event_source),
        event_name: part(&scope.event_name),
    };
    if !request.event_name.is_empty() && request.event_source.is_empty() {
        bail!("--event-name needs --event-source: an API is the pair");
    }
    Ok(request)
}

/// How a scope reads: `account 123456789012, ec2.amazonaws.com RunInstances`, or `everything`.
pub fn scope_text(account_id: &str, event_source: &str, event_name: &str) -> String {
    let mut parts = Vec::new();
    if !account_id.is_empty() {
        parts.push(format!("account {account_id}"));
    }
    match (event_source.is_empty(), event_name.is_empty()) {
        (false, false) => parts.push(format!("{event_source} {event_name}")),
        (false, true) => parts.push(event_source.to_string()),
        (true, false) => parts.push(format!("API {event_name}")),
        (true, true) => {}
    }
    if parts.is_empty() {
        "everything".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests;
