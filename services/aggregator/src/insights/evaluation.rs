//! Insights evaluated live, by event time. Every round (one replica at a time, under a session
//! lock) evaluates the minutes that have settled since the last round — ended
//! `insights.settle_seconds` before the clock's now — for the APIs with calls in them or an
//! Insight still open, and again, from the earliest minute changed, every API whose counts a
//! late file changed since the last round's snapshot (a backfill of last month finds last
//! month's Insights this way). The first round of a database sees all its history as changed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use orgtrail_detection::insights::InsightType;
use orgtrail_service_runtime::error_chain;

use super::{BaselineCache, EvaluationCounts, InsightError, InsightService};
use crate::drain::Drain;
use crate::store::{minute_start, unix_minute, InsightApi, INSIGHT_EVALUATION_LOCK};

/// What a round did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct InsightRound {
    /// False when another replica held the evaluation lock.
    pub ran: bool,
    pub counts: EvaluationCounts,
}

pub struct InsightEvaluator {
    service: InsightService,
    /// Day baselines per series, kept between rounds (this replica's; cleared for a series
    /// whose settled counts changed).
    cache: BaselineCache,
}

impl InsightEvaluator {
    pub fn new(service: InsightService) -> InsightEvaluator {
        InsightEvaluator {
            service,
            cache: BaselineCache::new(),
        }
    }

    /// Evaluates at start and then every interval, until draining starts.
    pub async fn run_periodically(mut self, drain: Drain) {
        let mut interval = tokio::time::interval(Duration::from_secs(
            self.service.settings.evaluation_interval_seconds,
        ));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = drain.started() => return,
                _ = interval.tick() => {}
            }
            if let Err(error) = self.round().await {
                tracing::warn!(error = %error_chain(&error), "Insight evaluation failed; the next round tries again");
            }
        }
    }

    /// One round, if no other replica is evaluating.
    pub async fn round(&mut self) -> Result<InsightRound, InsightError> {
        let store = self.service.store.clone();
        let Some(lock) = store.try_session_lock(INSIGHT_EVALUATION_LOCK).await? else {
            return Ok(InsightRound::default());
        };
        let outcome = self.round_locked().await;
        lock.release().await;
        outcome.map(|counts| InsightRound { ran: true, counts })
    }

    async fn round_locked(&mut self) -> Result<EvaluationCounts, InsightError> {
        let store = self.service.store.clone();
        let settings = &self.service.settings;
        let settled = self.service.clock.now()
            - chrono::TimeDelta::seconds(i64::try_from(settings.settle_seconds).unwrap_or(900));
        // Minutes before this one have settled.
        let settled_through = unix_minute(settled);
        // Taken before anything is read: changes of transactions from here on are looked at
        // again next round.
        let xmin = store.snapshot_xmin().await?;
        let progress = store.insight_progress().await?;
        let window_start = progress
            .evaluated_through
            .map(unix_minute)
            .unwrap_or(settled_through);
        let tuning = self.service.tuning().await?;
        let quiet = i64::from(settings.model.quiet_minutes);
        let mut counts = EvaluationCounts::default();
        for insight_type in [InsightType::ApiCallRate, InsightType::ApiErrorRate] {
            // Late changes: each API from the earliest minute a late file changed.
            let late = store
                .late_insight_changes(
                    insight_type,
                    progress.evaluated_xmin.unwrap_or(0),
                    minute_start(window_start),
                )
                .await?;
            let mut by_start: BTreeMap<i64, Vec<InsightApi>> = BTreeMap::new();
            let mut late_apis = BTreeSet::new();
            for (api, first_minute) in late {
                self.cache.remove(&(api.clone(), insight_type));
                late_apis.insert(api.clone());
                by_start
                    .entry(unix_minute(first_minute))
                    .or_default()
                    .push(api);
            }
            for (start, apis) in by_start {
                counts += self
                    .service
                    .evaluate(insight_type, &apis, start..settled_through, &tuning, None)
                    .await?;
            }
            if window_start < settled_through {
                // The settled minutes: APIs with calls in them (or just before, where an
                // Insight may be ending), and those with an Insight still open.
                let mut apis: BTreeSet<InsightApi> = store
                    .insight_apis(
                        insight_type,
                        minute_start(window_start - quiet),
                        minute_start(settled_through),
                    )
                    .await?
                    .into_iter()
                    .collect();
                for episode in store.open_episodes().await? {
                    if episode.insight_type == insight_type.as_str() {
                        apis.insert(episode.api());
                    }
                }
                let apis: Vec<InsightApi> = apis
                    .into_iter()
                    .filter(|api| !late_apis.contains(api))
                    .collect();
                counts += self
                    .service
                    .evaluate(
                        insight_type,
                        &apis,
                        window_start..settled_through,
                        &tuning,
                        Some(&mut self.cache),
                    )
                    .await?;
            }
        }
        store
            .set_insight_progress(minute_start(settled_through.max(window_start)), xmin)
            .await?;
        store.forget_rollup_changes(xmin).await?;
        if counts.episodes_new > 0 || counts.episodes_ended > 0 || counts.episodes_superseded > 0 {
            tracing::info!(
                series = counts.series_evaluated,
                new = counts.episodes_new,
                ended = counts.episodes_ended,
                superseded = counts.episodes_superseded,
                "Insights evaluated"
            );
        }
        Ok(counts)
    }
}
