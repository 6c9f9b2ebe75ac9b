//! How Insights print: the list as a table (Start/End pairs with their statistics), one
//! Insight explained (its fields, attributions, then the minute series against its baseline),
//! the tuning per scope and what a replay did; JSON with the proto's fields in camelCase.

use anyhow::Context;
use orgtrail_api::v1 as pb;
use orgtrail_client::table::render_table;
use serde_json::{json, Value};

use crate::detection_output::labelled_lines;
use crate::events_command::{format_optional_time, format_time, or_dash};
use crate::insight_arguments::{scope_text, InsightListFormat};
use crate::SummaryFormat;

/// The width of the labels of `insights explain`.
const LABEL_WIDTH: usize = 20;

pub fn print_insights(insights: &[pb::Insight], format: InsightListFormat) -> anyhow::Result<()> {
    match format {
        InsightListFormat::Table => print!("{}", insights_table(insights)),
        InsightListFormat::Json => {
            let rows: Vec<Value> = insights.iter().map(insight_json).collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        InsightListFormat::Jsonl => {
            for insight in insights {
                println!("{}", serde_json::to_string(&insight_json(insight))?);
            }
        }
    }
    Ok(())
}

pub fn print_explanation(
    explanation: &pb::ExplainInsightResponse,
    format: SummaryFormat,
) -> anyhow::Result<()> {
    print_text_or_json(
        format,
        || explanation_text(explanation),
        || explanation_json(explanation),
    )
}

pub fn print_settings(
    settings: &pb::ListInsightSettingsResponse,
    format: SummaryFormat,
) -> anyhow::Result<()> {
    print_text_or_json(
        format,
        || settings_text(settings),
        || settings_json(settings),
    )
}

pub fn print_replay(
    replay: &pb::ReplayInsightsResponse,
    format: SummaryFormat,
) -> anyhow::Result<()> {
    print_text_or_json(
        format,
        || replay_text(replay),
        || {
            Ok(json!({
                "seriesEvaluated": replay.series_evaluated,
                "insightsFound": replay.insights_found,
                "insightsWritten": replay.insights_written,
            }))
        },
    )
}

/// Prints `text()` as it is, or `json()` pretty-printed.
fn print_text_or_json(
    format: SummaryFormat,
    text: impl FnOnce() -> String,
    json: impl FnOnce() -> anyhow::Result<Value>,
) -> anyhow::Result<()> {
    match format {
        SummaryFormat::Table => print!("{}", text()),
        SummaryFormat::Json => println!("{}", serde_json::to_string_pretty(&json()?)?),
    }
    Ok(())
}

/// `insights list`: one line per Insight, newest first as the server answers.
pub fn insights_table(insights: &[pb::Insight]) -> String {
    let rows: Vec<Vec<String>> = insights
        .iter()
        .map(|insight| {
            vec![
                insight.insight_id.clone(),
                or_dash(&insight.account_id),
                or_dash(&insight.aws_region),
                api_text(&insight.event_source, &insight.event_name),
                or_dash(&insight.insight_type),
                format_time(insight.start_time.as_ref()),
                format_time(insight.end_time.as_ref()),
                duration_text(insight.insight_duration_minutes),
                format!("{:.2}", insight.baseline_average),
                format!("{:.2}", insight.insight_average),
                insight.peak.to_string(),
                finding_text(insight.finding_id),
                state_text(insight).into(),
            ]
        })
        .collect();
    render_table(
        &[
            "ID",
            "ACCOUNT",
            "REGION",
            "API",
            "TYPE",
            "START",
            "END",
            "DURATION",
            "BASELINE AVG",
            "INSIGHT AVG",
            "PEAK",
            "FINDING",
            "STATE",
        ],
        &rows,
    )
}

/// `insights explain`: the Insight's fields, its attributions, then its minutes.
pub fn explanation_text(explanation: &pb::ExplainInsightResponse) -> String {
    let insight = explanation.insight.clone().unwrap_or_default();
    let mut text = insight_details(&insight);
    text.push_str("\nattributions\n");
    text.push_str(&attributions_text(&insight.attributions_json));
    text.push_str("\nminutes (event time)\n");
    text.push_str(&minutes_table(&explanation.minutes));
    text
}

/// Every field of an Insight, one per line.
pub fn insight_details(insight: &pb::Insight) -> String {
    let end = if insight.end_time.is_some() {
        format_time(insight.end_time.as_ref())
    } else {
        "- (still unusual)".into()
    };
    let lines = [
        ("insight", insight.insight_id.clone()),
        ("type", or_dash(&insight.insight_type)),
        ("account", or_dash(&insight.account_id)),
        ("region", or_dash(&insight.aws_region)),
        ("event source", or_dash(&insight.event_source)),
        ("event name", or_dash(&insight.event_name)),
        ("start", format_time(insight.start_time.as_ref())),
        ("end", end),
        ("duration", duration_text(insight.insight_duration_minutes)),
        (
            "baseline",
            format!(
                "{:.4} a minute over {}",
                insight.baseline_average,
                duration_text(insight.baseline_duration_minutes)
            ),
        ),
        (
            "first minute",
            format!("{:.4} a minute", insight.start_average),
        ),
        (
            "insight average",
            format!("{:.4} a minute", insight.insight_average),
        ),
        ("peak", format!("{} in a minute", insight.peak)),
        ("start event", or_dash(&insight.start_event_id)),
        ("end event", or_dash(&insight.end_event_id)),
        ("finding", finding_text(insight.finding_id)),
        (
            "superseded",
            if insight.superseded_at.is_some() {
                format!(
                    "{} (later events showed it was not unusual)",
                    format_time(insight.superseded_at.as_ref())
                )
            } else {
                "-".into()
            },
        ),
    ];
    labelled_lines(&lines, LABEL_WIDTH)
}

/// The attributions of the End event (CloudTrail's `insightContext.attributions`): per
/// attribute, its top values in the Insight and in the baseline with their averages.
pub fn attributions_text(attributions_json: &str) -> String {
    let blocks = match serde_json::from_str::<Value>(attributions_json) {
        Ok(Value::Array(blocks)) if !blocks.is_empty() => blocks,
        Ok(_) => return "  - (known once the Insight has ended)\n".into(),
        Err(_) if attributions_json.trim().is_empty() => {
            return "  - (known once the Insight has ended)\n".into()
        }
        Err(_) => return format!("  {attributions_json}\n"),
    };
    let mut text = String::new();
    for block in &blocks {
        let attribute = block["attribute"].as_str().unwrap_or("-");
        text.push_str(&format!("  {attribute}\n"));
        for side in ["insight", "baseline"] {
            let values: Vec<String> = block[side]
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .map(|value| {
                            format!(
                                "{} ({:.2}/min)",
                                value["value"].as_str().unwrap_or("-"),
                                value["average"].as_f64().unwrap_or(0.0)
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let shown = if values.is_empty() {
                "-".to_string()
            } else {
                values.join(", ")
            };
            text.push_str(&format!("    {side:<10}{shown}\n"));
        }
    }
    text
}

/// The minute series: count, what the baseline expected, the threshold a minute had to reach,
/// and `*` on the unusual ones.
pub fn minutes_table(minutes: &[pb::InsightMinute]) -> String {
    let rows: Vec<Vec<String>> = minutes
        .iter()
        .map(|minute| {
            vec![
                format_time(minute.minute.as_ref()),
                minute.count.to_string(),
                format!("{:.2}", minute.expected),
                threshold_text(minute.threshold),
                if minute.unusual { "*" } else { "" }.into(),
            ]
        })
        .collect();
    render_table(
        &["MINUTE", "COUNT", "EXPECTED", "THRESHOLD", "UNUSUAL"],
        &rows,
    )
}

/// `insights settings list`: one line per scope, then the configured defaults.
pub fn settings_text(settings: &pb::ListInsightSettingsResponse) -> String {
    let rows: Vec<Vec<String>> = settings.settings.iter().map(setting_row).collect();
    let mut text = render_table(
        &[
            "SCOPE",
            "THRESHOLD SIGMA",
            "MIN RATE",
            "DISABLED",
            "UPDATED",
            "BY",
        ],
        &rows,
    );
    if !settings.defaults_json.is_empty() {
        text.push_str(&format!(
            "\ndefaults (insights.model): {}\n",
            settings.defaults_json
        ));
    }
    text
}

/// One setting as `settings set` answers it.
pub fn setting_text(setting: &pb::InsightSetting) -> String {
    render_table(
        &[
            "SCOPE",
            "THRESHOLD SIGMA",
            "MIN RATE",
            "DISABLED",
            "UPDATED",
            "BY",
        ],
        &[setting_row(setting)],
    )
}

pub fn replay_text(replay: &pb::ReplayInsightsResponse) -> String {
    labelled_lines(
        &[
            ("series evaluated", replay.series_evaluated.to_string()),
            ("insights found", replay.insights_found.to_string()),
            (
                "insights written",
                format!("{} (the rest were written before)", replay.insights_written),
            ),
        ],
        LABEL_WIDTH,
    )
}

pub fn insight_json(insight: &pb::Insight) -> Value {
    json!({
        "insightId": insight.insight_id,
        "accountId": insight.account_id,
        "awsRegion": insight.aws_region,
        "eventSource": insight.event_source,
        "eventName": insight.event_name,
        "insightType": insight.insight_type,
        "startTime": format_optional_time(insight.start_time.as_ref()),
        "endTime": format_optional_time(insight.end_time.as_ref()),
        "insightDurationMinutes": insight.insight_duration_minutes,
        "baselineDurationMinutes": insight.baseline_duration_minutes,
        "baselineAverage": insight.baseline_average,
        "startAverage": insight.start_average,
        "insightAverage": insight.insight_average,
        "peak": insight.peak,
        "startEventId": insight.start_event_id,
        "endEventId": Some(&insight.end_event_id).filter(|id| !id.is_empty()),
        "attributions": serde_json::from_str::<Value>(&insight.attributions_json).ok(),
        "findingId": (insight.finding_id > 0).then_some(insight.finding_id),
        "supersededAt": format_optional_time(insight.superseded_at.as_ref()),
    })
}

/// `insights explain --output json`: the Insight, its minutes, and the model's settings it
/// was found with.
pub fn explanation_json(explanation: &pb::ExplainInsightResponse) -> anyhow::Result<Value> {
    let insight = explanation.insight.clone().unwrap_or_default();
    let model = if explanation.model_json.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&explanation.model_json)
            .with_context(|| format!("the model of Insight {} is not JSON", insight.insight_id))?
    };
    let minutes: Vec<Value> = explanation
        .minutes
        .iter()
        .map(|minute| {
            json!({
                "minute": format_optional_time(minute.minute.as_ref()),
                "count": minute.count,
                "expected": minute.expected,
                "threshold": (minute.threshold > 0.0).then_some(minute.threshold),
                "unusual": minute.unusual,
            })
        })
        .collect();
    Ok(json!({
        "insight": insight_json(&insight),
        "minutes": minutes,
        "model": model,
    }))
}

pub fn setting_json(setting: &pb::InsightSetting) -> Value {
    json!({
        "accountId": setting.account_id,
        "eventSource": setting.event_source,
        "eventName": setting.event_name,
        "thresholdSigma": setting.threshold_sigma,
        "minRatePerMinute": setting.min_rate_per_minute,
        "disabled": setting.disabled,
        "updatedAt": format_optional_time(setting.updated_at.as_ref()),
        "updatedBy": setting.updated_by,
    })
}

pub fn settings_json(settings: &pb::ListInsightSettingsResponse) -> anyhow::Result<Value> {
    let defaults = if settings.defaults_json.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&settings.defaults_json)
            .context("the server's default Insight settings are not JSON")?
    };
    Ok(json!({
        "settings": settings.settings.iter().map(setting_json).collect::<Vec<Value>>(),
        "defaults": defaults,
    }))
}

fn setting_row(setting: &pb::InsightSetting) -> Vec<String> {
    let optional = |value: Option<f64>| value.map_or_else(|| "-".into(), |value| value.to_string());
    vec![
        scope_text(
            &setting.account_id,
            &setting.event_source,
            &setting.event_name,
        ),
        optional(setting.threshold_sigma),
        optional(setting.min_rate_per_minute),
        if setting.disabled { "yes" } else { "no" }.into(),
        format_time(setting.updated_at.as_ref()),
        or_dash(&setting.updated_by),
    ]
}

/// An API as IAM names its actions: `ec2:RunInstances`.
fn api_text(event_source: &str, event_name: &str) -> String {
    let service = event_source
        .strip_suffix(".amazonaws.com")
        .unwrap_or(event_source);
    match (service.is_empty(), event_name.is_empty()) {
        (true, true) => "-".into(),
        (true, false) => event_name.to_string(),
        (false, true) => service.to_string(),
        (false, false) => format!("{service}:{event_name}"),
    }
}

/// `45m`, `2h05m`, `7d` (whole days), or `-` for none.
fn duration_text(minutes: i64) -> String {
    if minutes <= 0 {
        return "-".into();
    }
    let (days, hours, rest) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    match (days, hours, rest) {
        (0, 0, rest) => format!("{rest}m"),
        (0, hours, rest) => format!("{hours}h{rest:02}m"),
        (days, 0, 0) => format!("{days}d"),
        (days, hours, rest) => format!("{days}d{hours:02}h{rest:02}m"),
    }
}

fn threshold_text(threshold: f64) -> String {
    if threshold > 0.0 {
        format!("{threshold:.0}")
    } else {
        "-".into()
    }
}

fn finding_text(finding_id: u64) -> String {
    if finding_id > 0 {
        finding_id.to_string()
    } else {
        "-".into()
    }
}

/// Open while it goes on, ended, or superseded by later events.
fn state_text(insight: &pb::Insight) -> &'static str {
    if insight.superseded_at.is_some() {
        "superseded"
    } else if insight.end_time.is_some() {
        "ended"
    } else {
        "open"
    }
}

#[cfg(test)]
mod tests;
