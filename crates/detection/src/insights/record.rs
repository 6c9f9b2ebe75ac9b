//! Insight events in CloudTrail's own format: a Start record when an episode begins and an End
//! record when it has closed, sharing a `sharedEventID`, with `insightDetails` as CloudTrail
//! writes them (reference §4.2).
//!
//! Identifiers are name-based UUIDs (version 5) in orgtrail's namespace
//! (`ORGTRAIL_INSIGHT_NAMESPACE`), from the series and the start minute: the same episode
//! always gets the same `sharedEventID` and `eventID`s, so a replay, a second replica or a
//! retry writes the same events and the eventID dedupe keeps one. That is also how a record
//! says it is orgtrail's and not CloudTrail's without leaving CloudTrail's format: CloudTrail's
//! eventIDs are random (version 4) GUIDs, and anyone can recompute an orgtrail Insight's ids from
//! its own fields (`is_orgtrail_insight`). No extra key is added, so a consumer that checks
//! records against CloudTrail's schema sees nothing unknown.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::attributions::{AttributedValue, Attribution};
use super::episodes::Episode;
use super::model::InsightType;

/// The namespace of orgtrail's Insight ids (a random UUID, fixed forever: changing it would
/// change every id).
pub const ORGTRAIL_INSIGHT_NAMESPACE: Uuid =
    Uuid::from_u128(0x58b4_508e_7a30_48b4_bde2_d9ea_5f96_cfb2);
/// The `eventVersion` of Insight records: the version Insights events have had since they
/// appeared.
pub const INSIGHT_EVENT_VERSION: &str = "1.07";

/// The series an Insight is about: an account's API in a region, and the Insight type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InsightSeries {
    pub recipient_account_id: String,
    pub aws_region: String,
    pub event_source: String,
    pub event_name: String,
    pub insight_type: InsightType,
}

/// `Start` or `End`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsightState {
    Start,
    End,
}

impl InsightState {
    pub fn as_str(self) -> &'static str {
        match self {
            InsightState::Start => "Start",
            InsightState::End => "End",
        }
    }
}

/// The overall Insight id of the episode of `series` that started at `start_minute`.
pub fn shared_event_id(series: &InsightSeries, start_minute: i64) -> Uuid {
    // A JSON array is an unambiguous name whatever the fields contain.
    let name = json!([
        "orgtrail-insight",
        series.recipient_account_id,
        series.aws_region,
        series.event_source,
        series.event_name,
        series.insight_type.as_str(),
        start_minute,
    ])
    .to_string();
    Uuid::new_v5(&ORGTRAIL_INSIGHT_NAMESPACE, name.as_bytes())
}

/// The `eventID` of the Start or End record of that Insight.
pub fn insight_event_id(series: &InsightSeries, start_minute: i64, state: InsightState) -> Uuid {
    let name = format!(
        "{}/{}",
        shared_event_id(series, start_minute),
        state.as_str()
    );
    Uuid::new_v5(&ORGTRAIL_INSIGHT_NAMESPACE, name.as_bytes())
}

/// The Start record of an episode. It describes the first minute only — `insight.average` is
/// its count and `insightDuration` 1 — so it is the same whenever it is written, live at the
/// first minute or by a replay that knows the whole episode. `attributions` should be counted
/// over that first minute.
pub fn start_record(
    series: &InsightSeries,
    episode: &Episode,
    attributions: &[Attribution],
) -> Value {
    insight_record(
        series,
        episode,
        InsightState::Start,
        episode.start_minute,
        episode.start_average,
        1,
        attributions,
    )
}

/// The End record of a closed episode (`None` while it is open): `eventTime` one minute after
/// its last unusual minute, `insight.average` over the whole episode. `attributions` should be
/// counted over the whole episode.
pub fn end_record(
    series: &InsightSeries,
    episode: &Episode,
    attributions: &[Attribution],
) -> Option<Value> {
    episode.closed.then(|| {
        insight_record(
            series,
            episode,
            InsightState::End,
            episode.end_minute,
            episode.insight_average,
            episode.duration_minutes(),
            attributions,
        )
    })
}

/// Both records of an episode: the Start, and the End once it has closed.
pub fn insight_records(
    series: &InsightSeries,
    episode: &Episode,
    start_attributions: &[Attribution],
    end_attributions: &[Attribution],
) -> (Value, Option<Value>) {
    (
        start_record(series, episode, start_attributions),
        end_record(series, episode, end_attributions),
    )
}

/// Whether `record` is an Insight orgtrail wrote: its `sharedEventID` and `eventID` are the
/// ones orgtrail derives from its own account, region, API, type and start.
pub fn is_orgtrail_insight(record: &Value) -> bool {
    let text = |pointer: &str| record.pointer(pointer).and_then(Value::as_str);
    let (
        Some(account),
        Some(region),
        Some(source),
        Some(name),
        Some(insight_type),
        Some(state),
        Some(event_time),
    ) = (
        text("/recipientAccountId"),
        text("/awsRegion"),
        text("/insightDetails/eventSource"),
        text("/insightDetails/eventName"),
        text("/insightDetails/insightType"),
        text("/insightDetails/state"),
        text("/eventTime"),
    )
    else {
        return false;
    };
    let Ok(insight_type) = insight_type.parse::<InsightType>() else {
        return false;
    };
    let Ok(event_time) = DateTime::parse_from_rfc3339(event_time) else {
        return false;
    };
    let event_minute = event_time.timestamp().div_euclid(60);
    let (state, start_minute) = match state {
        "Start" => (InsightState::Start, event_minute),
        "End" => {
            let Some(duration) = record
                .pointer("/insightDetails/insightContext/statistics/insightDuration")
                .and_then(Value::as_i64)
            else {
                return false;
            };
            (InsightState::End, event_minute - duration)
        }
        _ => return false,
    };
    let series = InsightSeries {
        recipient_account_id: account.to_string(),
        aws_region: region.to_string(),
        event_source: source.to_string(),
        event_name: name.to_string(),
        insight_type,
    };
    text("/sharedEventID") == Some(shared_event_id(&series, start_minute).to_string().as_str())
        && text("/eventID")
            == Some(
                insight_event_id(&series, start_minute, state)
                    .to_string()
                    .as_str(),
            )
}

/// The time of a Unix minute as CloudTrail writes `eventTime` (`2019-11-14T00:51:00Z`).
pub fn event_time_of_minute(minute: i64) -> String {
    let time = minute
        .checked_mul(60)
        .and_then(|seconds| Utc.timestamp_opt(seconds, 0).single())
        .unwrap_or(if minute < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        });
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn insight_record(
    series: &InsightSeries,
    episode: &Episode,
    state: InsightState,
    event_minute: i64,
    insight_average: f64,
    insight_duration: i64,
    attributions: &[Attribution],
) -> Value {
    let mut insight_context = json!({
        "statistics": {
            "baseline": { "average": rounded(episode.baseline_average) },
            "insight": { "average": rounded(insight_average) },
            "insightDuration": insight_duration,
            "baselineDuration": episode.baseline_duration_minutes,
        }
    });
    if !attributions.is_empty() {
        let blocks: Vec<Value> = attributions
            .iter()
            .map(|attribution| {
                let values = |values: &[AttributedValue]| {
                    values
                        .iter()
                        .map(|value| json!({ "value": value.value, "average": rounded(value.average) }))
                        .collect::<Vec<Value>>()
                };
                json!({
                    "attribute": attribution.attribute,
                    "insight": values(&attribution.insight),
                    "baseline": values(&attribution.baseline),
                })
            })
            .collect();
        insight_context["attributions"] = Value::Array(blocks);
    }
    json!({
        "eventVersion": INSIGHT_EVENT_VERSION,
        "eventTime": event_time_of_minute(event_minute),
        "awsRegion": series.aws_region,
        "eventID": insight_event_id(series, episode.start_minute, state).to_string(),
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": series.recipient_account_id,
        "sharedEventID": shared_event_id(series, episode.start_minute).to_string(),
        "insightDetails": {
            "state": state.as_str(),
            "eventSource": series.event_source,
            "eventName": series.event_name,
            "insightType": series.insight_type.as_str(),
            "insightContext": insight_context,
        },
        "eventCategory": "Insight",
    })
}

/// Ten decimal places, as CloudTrail writes its averages (`0.0000882145`).
fn rounded(value: f64) -> f64 {
    if value.is_finite() && value.abs() < 1e8 {
        (value * 1e10).round() / 1e10
    } else {
        value
    }
}
