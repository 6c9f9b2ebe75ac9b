//! Insights: episodes, their minutes, replays and the tuning, to and from the wire.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use orgtrail_api::v1 as pb;
use orgtrail_detection::insights::{Episode, InsightModel, InsightType, MinutePoint};
use tonic::Status;
use uuid::Uuid;

use super::{from_timestamp, to_timestamp};
use crate::insights::EvaluationCounts;
use crate::store::{minute_start, EpisodeFilter, StoredEpisode, StoredInsightSetting};

pub fn insight_to_proto(episode: StoredEpisode) -> pb::Insight {
    let statistics: Option<Episode> = episode
        .statistics
        .get("episode")
        .and_then(|value| serde_json::from_value(value.clone()).ok());
    let attributions = episode
        .statistics
        .get("endAttributions")
        .filter(|value| !value.is_null())
        .map(|value| value.to_string())
        .unwrap_or_default();
    let duration = (episode.end_minute - episode.start_minute).num_minutes();
    pb::Insight {
        insight_id: episode.shared_event_id.to_string(),
        account_id: episode.account_id,
        aws_region: episode.aws_region,
        event_source: episode.event_source,
        event_name: episode.event_name,
        insight_type: episode.insight_type,
        start_time: Some(to_timestamp(episode.start_minute)),
        end_time: episode.closed.then(|| to_timestamp(episode.end_minute)),
        insight_duration_minutes: duration,
        baseline_duration_minutes: statistics
            .as_ref()
            .map_or(0, |stats| stats.baseline_duration_minutes),
        baseline_average: statistics
            .as_ref()
            .map_or(0.0, |stats| stats.baseline_average),
        start_average: statistics.as_ref().map_or(0.0, |stats| stats.start_average),
        insight_average: statistics
            .as_ref()
            .map_or(0.0, |stats| stats.insight_average),
        peak: statistics.as_ref().map_or(0, |stats| stats.peak),
        start_event_id: episode.start_event_id.to_string(),
        end_event_id: episode
            .end_event_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        attributions_json: attributions,
        finding_id: episode
            .finding_id
            .and_then(|id| u64::try_from(id).ok())
            .unwrap_or(0),
        superseded_at: episode.superseded_at.map(to_timestamp),
    }
}

pub fn insight_filter_from_proto(
    request: &pb::ListInsightsRequest,
) -> Result<EpisodeFilter, Status> {
    let insight_type = match request.insight_type.as_str() {
        "" => None,
        text => Some(text.parse::<InsightType>().map_err(|_| {
            Status::invalid_argument(format!(
                "insight_type {text:?} is not ApiCallRateInsight or ApiErrorRateInsight"
            ))
        })?),
    };
    Ok(EpisodeFilter {
        accounts: request.accounts.clone(),
        insight_type,
        since: request
            .since
            .map(|since| from_timestamp("since", since))
            .transpose()?,
        include_superseded: request.include_superseded,
    })
}

pub fn insight_id_from_proto(text: &str) -> Result<Uuid, Status> {
    Uuid::try_parse(text.trim())
        .map_err(|_| Status::invalid_argument(format!("{text:?} is not an Insight id (a UUID)")))
}

/// The next token of the Insight list: the last one's start and id, opaque.
pub fn encode_insight_token(episode: &StoredEpisode) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}/{}",
        episode.start_minute.timestamp(),
        episode.episode_id
    ))
}

pub fn decode_insight_token(token: &str) -> Result<Option<(DateTime<Utc>, i64)>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Status::invalid_argument("the next token is not valid");
    let text = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(invalid)?;
    let (start, id) = text.split_once('/').ok_or_else(invalid)?;
    let start: i64 = start.parse().map_err(|_| invalid())?;
    let id: i64 = id.parse().map_err(|_| invalid())?;
    Ok(Some((minute_start(start.div_euclid(60)), id)))
}

pub fn explain_to_proto(
    episode: StoredEpisode,
    minutes: Vec<MinutePoint>,
    model: &InsightModel,
) -> pb::ExplainInsightResponse {
    pb::ExplainInsightResponse {
        insight: Some(insight_to_proto(episode)),
        minutes: minutes
            .into_iter()
            .map(|point| pb::InsightMinute {
                minute: Some(to_timestamp(minute_start(point.minute))),
                count: point.count,
                expected: point.expected,
                threshold: point.threshold.map_or(0.0, |threshold| threshold as f64),
                unusual: point.unusual,
            })
            .collect(),
        model_json: serde_json::to_string(model).unwrap_or_default(),
    }
}

pub fn replay_window_from_proto(
    request: &pb::ReplayInsightsRequest,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Status> {
    let start = request
        .start_time
        .map(|time| from_timestamp("start_time", time))
        .transpose()?
        .ok_or_else(|| Status::invalid_argument("start_time is required"))?;
    let end = request
        .end_time
        .map(|time| from_timestamp("end_time", time))
        .transpose()?
        .ok_or_else(|| Status::invalid_argument("end_time is required"))?;
    Ok((start, end))
}

pub fn replay_to_proto(counts: EvaluationCounts) -> pb::ReplayInsightsResponse {
    pb::ReplayInsightsResponse {
        series_evaluated: counts.series_evaluated,
        insights_found: counts.episodes_found,
        insights_written: counts.episodes_new,
    }
}

pub fn setting_to_proto(setting: StoredInsightSetting) -> pb::InsightSetting {
    pb::InsightSetting {
        account_id: setting.account_id,
        event_source: setting.event_source,
        event_name: setting.event_name,
        threshold_sigma: setting.threshold_sigma,
        min_rate_per_minute: setting.min_rate_per_minute,
        disabled: setting.disabled,
        updated_at: Some(to_timestamp(setting.updated_at)),
        updated_by: setting.updated_by,
    }
}

/// A scope's setting as asked (time and author are the store's).
pub fn setting_from_proto(
    setting: Option<pb::InsightSetting>,
) -> Result<StoredInsightSetting, Status> {
    let setting = setting.ok_or_else(|| Status::invalid_argument("setting is required"))?;
    if let Some(account) = Some(setting.account_id.as_str()).filter(|text| !text.is_empty()) {
        if account.len() != 12 || !account.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(Status::invalid_argument(format!(
                "account_id {account:?} is not a 12-digit AWS account id"
            )));
        }
    }
    Ok(StoredInsightSetting {
        account_id: setting.account_id,
        event_source: setting.event_source,
        event_name: setting.event_name,
        threshold_sigma: setting.threshold_sigma,
        min_rate_per_minute: setting.min_rate_per_minute,
        disabled: setting.disabled,
        updated_at: DateTime::<Utc>::default(),
        updated_by: String::new(),
    })
}

pub fn scope_from_proto(request: pb::DeleteInsightSettingRequest) -> StoredInsightSetting {
    StoredInsightSetting {
        account_id: request.account_id,
        event_source: request.event_source,
        event_name: request.event_name,
        threshold_sigma: None,
        min_rate_per_minute: None,
        disabled: false,
        updated_at: DateTime::<Utc>::default(),
        updated_by: String::new(),
    }
}
