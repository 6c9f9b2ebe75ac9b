//! orgtrail's own Insights: for each account's API in a region, unusual rates of write
//! management calls (`ApiCallRateInsight`) and of calls with errors (`ApiErrorRateInsight`),
//! found by `orgtrail_detection::insights` over the per-minute rollups by event time, written
//! as CloudTrail Insight events through ingest (so lookups, retention, detections and the
//! rollups treat them as any event) and raised as findings.
//!
//! `InsightService` answers the API (list, explain, replay, tuning); `evaluation` runs the
//! rounds of settled minutes. Both find episodes with [`InsightService::evaluate`]: a window
//! of minutes, evaluated the same way live and by a replay, and written idempotently (the
//! events' ids are derived from the series and the start, so a second writing stores
//! nothing).

pub mod evaluation;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use chrono::{DateTime, TimeDelta, Utc};
use orgtrail_detection::insights::{
    attributions, day_of, detect_episodes_with, end_record, explain_minutes, insight_event_id,
    lookback_minutes, shared_event_id, start_record, DayBaselines, Episode, InsightModel,
    InsightOverride, InsightOverrideScope, InsightSeries, InsightState, InsightTuning, InsightType,
    MinutePoint, MINUTES_PER_DAY,
};
use orgtrail_domain::LogFileOrigin;
use orgtrail_service_runtime::SharedClock;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::config::InsightSettings;
use crate::ingest::{IngestError, IngestService};
use crate::store::{
    minute_start, unix_minute, EpisodeFilter, EpisodeWrite, InsightApi, NewFinding, PgStore,
    StoreError, StoredEpisode, StoredInsightSetting,
};

/// The ledger's source and bucket of the Insight events orgtrail writes.
pub const INSIGHT_SOURCE: &str = "orgtrail-insights";
/// The actor of audit entries and findings of Insights.
pub const INSIGHTS_ACTOR: &str = "orgtrail (Insights)";
/// APIs whose counts are read in one statement, at most.
const APIS_PER_BATCH: usize = 200;
/// Minute rows one statement may read at most (a batch's APIs × the minutes it spans).
const MINUTES_PER_BATCH: i64 = 4_000_000;
/// The longest window a replay evaluates in one call.
pub const MAX_REPLAY_DAYS: i64 = 400;

#[derive(Debug, thiserror::Error)]
pub enum InsightError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write an Insight event")]
    Ingest(#[from] IngestError),
    /// Insights are read from the rollups, which this aggregator does not keep.
    #[error("Insights are found from the rollups, and this aggregator does not keep them (ingest.rollups = false, a setting for benchmarks only)")]
    RollupsOff,
}

/// What evaluating a window found and wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvaluationCounts {
    pub series_evaluated: u64,
    pub episodes_found: u64,
    /// Episodes recorded for the first time (their Start event written).
    pub episodes_new: u64,
    /// End events written.
    pub episodes_ended: u64,
    pub episodes_superseded: u64,
}

impl std::ops::AddAssign for EvaluationCounts {
    fn add_assign(&mut self, other: EvaluationCounts) {
        self.series_evaluated += other.series_evaluated;
        self.episodes_found += other.episodes_found;
        self.episodes_new += other.episodes_new;
        self.episodes_ended += other.episodes_ended;
        self.episodes_superseded += other.episodes_superseded;
    }
}

/// The day baselines kept per series between rounds.
pub type BaselineCache = HashMap<(InsightApi, InsightType), DayBaselines>;

/// The tuning in force: the operators' settings per scope over the configured model.
pub struct Tuning {
    tuning: InsightTuning,
    disabled: Vec<InsightOverrideScope>,
}

impl Tuning {
    /// The model for an API, or `None` where a setting turns Insights off.
    fn model_for(&self, base: &InsightModel, api: &InsightApi) -> Option<InsightModel> {
        let covered = |scope: &InsightOverrideScope| {
            scope.covers(&api.account_id, &api.event_source, &api.event_name)
        };
        if self.disabled.iter().any(covered) {
            return None;
        }
        Some(base.with_overrides(
            &self.tuning,
            &api.account_id,
            &api.event_source,
            &api.event_name,
        ))
    }
}

#[derive(Clone)]
pub struct InsightService {
    store: PgStore,
    clock: SharedClock,
    settings: InsightSettings,
    ingest: IngestService,
}

impl InsightService {
    pub fn new(
        store: PgStore,
        clock: SharedClock,
        settings: InsightSettings,
        ingest: IngestService,
    ) -> InsightService {
        InsightService {
            store,
            clock,
            settings,
            ingest,
        }
    }

    pub fn settings(&self) -> &InsightSettings {
        &self.settings
    }

    /// The operators' settings as the model's tuning.
    pub async fn tuning(&self) -> Result<Tuning, InsightError> {
        let mut tuning = InsightTuning::default();
        let mut disabled = Vec::new();
        for setting in self.store.list_insight_settings().await? {
            let scope = scope_of(&setting);
            if setting.disabled {
                disabled.push(scope.clone());
            }
            if setting.threshold_sigma.is_some() || setting.min_rate_per_minute.is_some() {
                tuning.overrides.push(InsightOverride {
                    scope,
                    threshold_sigma: setting.threshold_sigma,
                    min_rate_per_minute: setting.min_rate_per_minute,
                });
            }
        }
        Ok(Tuning { tuning, disabled })
    }

    /// Evaluates `apis` of one type over `window` (Unix minutes), writes the episodes found,
    /// and supersedes those recorded before in the window that are no longer found. With a
    /// cache, a series whose day baselines are all kept reads only its recent counts.
    pub async fn evaluate(
        &self,
        insight_type: InsightType,
        apis: &[InsightApi],
        window: Range<i64>,
        tuning: &Tuning,
        mut cache: Option<&mut BaselineCache>,
    ) -> Result<EvaluationCounts, InsightError> {
        let mut counts = EvaluationCounts::default();
        if window.start >= window.end || apis.is_empty() {
            return Ok(counts);
        }
        let history = self.store.history_starts().await?;
        let model = &self.settings.model;
        let full_lookback = lookback_minutes(model);
        // What a series with its baselines kept needs: an Insight open at the window's start
        // began at most max_insight_minutes before it, after quiet_minutes.
        let recent_lookback =
            i64::from(model.max_insight_minutes) + 2 * i64::from(model.quiet_minutes) + 1;
        let needed_days = day_of(window.start - recent_lookback)..=day_of(window.end - 1);
        // Long windows (a replay, a backfill) in fewer APIs at a time.
        let per_batch =
            usize::try_from(MINUTES_PER_BATCH / (window.end - window.start + full_lookback).max(1))
                .unwrap_or(1)
                .clamp(1, APIS_PER_BATCH);
        for batch in apis.chunks(per_batch) {
            // Each API with its model and the start of its scope's history; those whose day
            // baselines are all kept read only their recent counts.
            let mut kept = Vec::new();
            let mut uncached = Vec::new();
            for api in batch {
                let Some(model) = tuning.model_for(model, api) else {
                    continue;
                };
                let Some(history_from) = history
                    .get(&(api.account_id.clone(), api.aws_region.clone()))
                    .map(|first| unix_minute(*first))
                else {
                    continue;
                };
                let all_kept = cache.as_ref().is_some_and(|cache| {
                    cache
                        .get(&(api.clone(), insight_type))
                        .is_some_and(|baselines| {
                            needed_days
                                .clone()
                                .all(|day| baselines.has_day(day, history_from, &model))
                        })
                });
                let entry = (api.clone(), model, history_from);
                if all_kept {
                    kept.push(entry);
                } else {
                    uncached.push(entry);
                }
            }
            for (group, lookback) in [(kept, recent_lookback), (uncached, full_lookback)] {
                if group.is_empty() {
                    continue;
                }
                let group_apis: Vec<InsightApi> =
                    group.iter().map(|(api, ..)| api.clone()).collect();
                let series_counts = self
                    .store
                    .insight_counts(
                        insight_type,
                        &group_apis,
                        minute_start(window.start - lookback),
                        minute_start(window.end),
                    )
                    .await?;
                for (api, model, history_from) in &group {
                    let empty = BTreeMap::new();
                    let minutes = series_counts.get(api).unwrap_or(&empty);
                    let mut fresh = DayBaselines::new();
                    let baselines = match cache.as_deref_mut() {
                        Some(cache) => cache.entry((api.clone(), insight_type)).or_default(),
                        None => &mut fresh,
                    };
                    let episodes = detect_episodes_with(
                        minutes,
                        *history_from,
                        window.clone(),
                        model,
                        baselines,
                    );
                    baselines.forget_before(day_of(window.start - recent_lookback));
                    counts.series_evaluated += 1;
                    counts.episodes_found += episodes.len() as u64;
                    let mut found = Vec::with_capacity(episodes.len());
                    for episode in &episodes {
                        let written = self
                            .write_episode(api, insight_type, episode, model, *history_from)
                            .await?;
                        found.push(written.shared_event_id);
                        counts.episodes_new += u64::from(written.new);
                        counts.episodes_ended += u64::from(written.ended);
                    }
                    counts.episodes_superseded += self
                        .store
                        .supersede_episodes(
                            api,
                            insight_type,
                            minute_start(window.start),
                            minute_start(window.end),
                            &found,
                        )
                        .await?;
                }
            }
        }
        Ok(counts)
    }

    /// Writes an episode: its Start event (once), its End event once it has closed, its row,
    /// and its finding when it is new.
    async fn write_episode(
        &self,
        api: &InsightApi,
        insight_type: InsightType,
        episode: &Episode,
        model: &InsightModel,
        history_from: i64,
    ) -> Result<WrittenEpisode, InsightError> {
        let series = InsightSeries {
            recipient_account_id: api.account_id.clone(),
            aws_region: api.aws_region.clone(),
            event_source: api.event_source.clone(),
            event_name: api.event_name.clone(),
            insight_type,
        };
        let shared = shared_event_id(&series, episode.start_minute);
        let existing = self.store.get_episode(shared).await?;
        let unchanged = existing.as_ref().is_some_and(|stored| {
            stored.superseded_at.is_none()
                && stored.closed == episode.closed
                && stored.end_minute == minute_start(episode.end_minute)
        });
        if unchanged {
            return Ok(WrittenEpisode {
                shared_event_id: shared,
                new: false,
                ended: false,
            });
        }
        // The baseline the Start's day was judged against (whole days before it).
        let day_start = day_of(episode.start_minute) * MINUTES_PER_DAY;
        let baseline = (
            minute_start(
                (day_start - i64::from(model.baseline_days) * MINUTES_PER_DAY).max(history_from),
            ),
            minute_start(day_start),
        );
        let baseline_minutes = (day_start
            - (day_start - i64::from(model.baseline_days) * MINUTES_PER_DAY).max(history_from))
        .max(1);
        let start_minute = minute_start(episode.start_minute);
        let start_counts = self
            .store
            .attribution_counts(
                api,
                insight_type,
                (start_minute, start_minute + TimeDelta::minutes(1)),
                baseline,
            )
            .await?;
        let start = start_record(
            &series,
            episode,
            &attributions(insight_type, &start_counts, 1, baseline_minutes),
        );
        let mut records = Vec::new();
        if existing.is_none() {
            records.push((InsightState::Start, start));
        }
        let mut end_attributions = Value::Null;
        if episode.closed {
            let end_counts = self
                .store
                .attribution_counts(
                    api,
                    insight_type,
                    (start_minute, minute_start(episode.end_minute)),
                    baseline,
                )
                .await?;
            let end_blocks = attributions(
                insight_type,
                &end_counts,
                episode.duration_minutes(),
                baseline_minutes,
            );
            end_attributions = serde_json::to_value(&end_blocks).unwrap_or(Value::Null);
            if let Some(end) = end_record(&series, episode, &end_blocks) {
                records.push((InsightState::End, end));
            }
        }
        for (state, record) in records {
            let origin = LogFileOrigin {
                source: INSIGHT_SOURCE.into(),
                bucket: INSIGHT_SOURCE.into(),
                object_key: format!(
                    "{}/{}/{}/{}",
                    api.account_id,
                    api.aws_region,
                    shared,
                    state.as_str()
                ),
                etag: "v1".into(),
                last_modified: None,
            };
            self.ingest
                .ingest_records(origin, vec![record.to_string().into_bytes()])
                .await?;
        }
        let start_event_id = insight_event_id(&series, episode.start_minute, InsightState::Start);
        let end_event_id = episode
            .closed
            .then(|| insight_event_id(&series, episode.start_minute, InsightState::End));
        let statistics = json!({
            "episode": episode,
            "endAttributions": end_attributions,
        });
        let before = self
            .store
            .record_episode(&EpisodeWrite {
                api: api.clone(),
                insight_type,
                start_minute,
                end_minute: minute_start(episode.end_minute),
                closed: episode.closed,
                shared_event_id: shared,
                start_event_id,
                end_event_id,
                statistics,
                model: serde_json::to_value(model).unwrap_or(Value::Null),
            })
            .await?;
        let new = before
            .as_ref()
            .is_none_or(|before| before.superseded_at.is_some());
        if before.is_none() {
            self.raise_finding(api, insight_type, episode, shared, start_event_id)
                .await?;
        }
        Ok(WrittenEpisode {
            shared_event_id: shared,
            new,
            ended: episode.closed && before.as_ref().is_none_or(|before| !before.closed),
        })
    }

    async fn raise_finding(
        &self,
        api: &InsightApi,
        insight_type: InsightType,
        episode: &Episode,
        shared: Uuid,
        start_event_id: Uuid,
    ) -> Result<(), InsightError> {
        let what = match insight_type {
            InsightType::ApiCallRate => "calls",
            InsightType::ApiErrorRate => "errors",
        };
        let finding = NewFinding {
            kind: "insight",
            rule_id: insight_type.as_str().into(),
            rule_version: 1,
            title: format!("Unusual rate of {} {what}", api.event_name),
            level: self.settings.finding_level.as_str().into(),
            author: Some(INSIGHTS_ACTOR.into()),
            tags: Vec::new(),
            account_id: Some(api.account_id.clone()).filter(|text| !text.is_empty()),
            aws_region: Some(api.aws_region.clone()).filter(|text| !text.is_empty()),
            event_time: minute_start(episode.start_minute),
            event_ids: vec![start_event_id],
            summary: format!(
                "{} {} {what}: {} in the first minute against a baseline of {:.2} a minute (Insight {shared})",
                api.event_source, api.event_name, episode.start_average, episode.baseline_average
            ),
            dedupe_key: format!("insight:{shared}"),
            suppression_id: None,
        };
        let notify_since = self.clock.now()
            - TimeDelta::hours(i64::try_from(self.settings.notify_within_hours).unwrap_or(24));
        let raised = self
            .store
            .raise_findings(std::slice::from_ref(&finding), notify_since)
            .await?;
        if let Some(finding_id) = raised.finding_ids.first() {
            self.store.set_episode_finding(shared, *finding_id).await?;
        }
        Ok(())
    }

    /// Finds and writes the Insights of `[start, end)` from the stored history, as live
    /// evaluation would have; audited with what it found and wrote.
    pub async fn replay(
        &self,
        actor: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<EvaluationCounts, InsightError> {
        if !self.ingest.keeps_rollups() {
            return Err(InsightError::RollupsOff);
        }
        if start >= end {
            return Err(InsightError::InvalidRequest(format!(
                "the start {start} is not before the end {end}"
            )));
        }
        if end - start > TimeDelta::days(MAX_REPLAY_DAYS) {
            return Err(InsightError::InvalidRequest(format!(
                "a replay covers at most {MAX_REPLAY_DAYS} days: split the window"
            )));
        }
        let window = unix_minute(start)..unix_minute(end - TimeDelta::microseconds(1)) + 1;
        let tuning = self.tuning().await?;
        let mut counts = EvaluationCounts::default();
        for insight_type in [InsightType::ApiCallRate, InsightType::ApiErrorRate] {
            let apis = self
                .store
                .insight_apis(
                    insight_type,
                    minute_start(window.start),
                    minute_start(window.end),
                )
                .await?;
            counts += self
                .evaluate(insight_type, &apis, window.clone(), &tuning, None)
                .await?;
        }
        self.store
            .audit(
                actor,
                "insights.replay",
                &format!("{start} to {end}"),
                &json!({
                    "seriesEvaluated": counts.series_evaluated,
                    "insightsFound": counts.episodes_found,
                    "insightsWritten": counts.episodes_new,
                    "ended": counts.episodes_ended,
                    "superseded": counts.episodes_superseded,
                }),
            )
            .await?;
        Ok(counts)
    }

    pub async fn list(
        &self,
        filter: &EpisodeFilter,
        before: Option<(DateTime<Utc>, i64)>,
        limit: u32,
    ) -> Result<Vec<StoredEpisode>, InsightError> {
        Ok(self.store.list_episodes(filter, before, limit).await?)
    }

    /// An Insight with its minutes from an hour before it to an hour after (or now).
    pub async fn explain(
        &self,
        insight_id: Uuid,
    ) -> Result<(StoredEpisode, Vec<MinutePoint>, InsightModel), InsightError> {
        let episode = self
            .store
            .get_episode(insight_id)
            .await?
            .ok_or_else(|| InsightError::NotFound(format!("Insight {insight_id}")))?;
        let insight_type: InsightType = episode.insight_type.parse().map_err(|_| {
            StoreError::CorruptRow(format!("insight type {}", episode.insight_type))
        })?;
        let model: InsightModel = serde_json::from_value(episode.model.clone())
            .unwrap_or_else(|_| self.settings.model.clone());
        let api = episode.api();
        let now = unix_minute(self.clock.now());
        let range = unix_minute(episode.start_minute) - 60
            ..(unix_minute(episode.end_minute) + 60)
                .min(now)
                .max(unix_minute(episode.start_minute) + 1);
        let history_from = self
            .store
            .history_starts()
            .await?
            .get(&(api.account_id.clone(), api.aws_region.clone()))
            .map(|first| unix_minute(*first))
            .unwrap_or(range.start);
        let counts = self
            .store
            .insight_counts(
                insight_type,
                std::slice::from_ref(&api),
                minute_start(range.start - lookback_minutes(&model)),
                minute_start(range.end),
            )
            .await?;
        let empty = BTreeMap::new();
        let minutes = explain_minutes(
            counts.get(&api).unwrap_or(&empty),
            range,
            history_from,
            &model,
        );
        Ok((episode, minutes, model))
    }

    pub async fn list_settings(&self) -> Result<Vec<StoredInsightSetting>, InsightError> {
        Ok(self.store.list_insight_settings().await?)
    }

    /// Sets a scope's tuning, checked as the model checks it.
    pub async fn set_setting(
        &self,
        actor: &str,
        setting: StoredInsightSetting,
    ) -> Result<StoredInsightSetting, InsightError> {
        if !setting.event_name.is_empty() && setting.event_source.is_empty() {
            return Err(InsightError::InvalidRequest(
                "an event name needs its event source (an API is the pair)".into(),
            ));
        }
        if setting.threshold_sigma.is_none()
            && setting.min_rate_per_minute.is_none()
            && !setting.disabled
        {
            return Err(InsightError::InvalidRequest(
                "the setting changes nothing: give a threshold sigma, a minimum rate, or disable"
                    .into(),
            ));
        }
        let tuning = InsightTuning {
            overrides: vec![InsightOverride {
                scope: scope_of(&setting),
                threshold_sigma: setting.threshold_sigma,
                min_rate_per_minute: setting.min_rate_per_minute,
            }],
        };
        if setting.threshold_sigma.is_some() || setting.min_rate_per_minute.is_some() {
            tuning
                .validate()
                .map_err(|error| InsightError::InvalidRequest(error.to_string()))?;
        }
        Ok(self.store.set_insight_setting(actor, &setting).await?)
    }

    pub async fn delete_setting(
        &self,
        actor: &str,
        scope: StoredInsightSetting,
    ) -> Result<(), InsightError> {
        self.store.delete_insight_setting(actor, &scope).await?;
        Ok(())
    }
}

struct WrittenEpisode {
    shared_event_id: Uuid,
    new: bool,
    ended: bool,
}

fn scope_of(setting: &StoredInsightSetting) -> InsightOverrideScope {
    let part = |text: &str| Some(text.to_string()).filter(|text| !text.is_empty());
    InsightOverrideScope {
        account_id: part(&setting.account_id),
        event_source: part(&setting.event_source),
        event_name: part(&setting.event_name),
    }
}
