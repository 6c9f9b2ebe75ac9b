//! Evaluating alarms by event time. Every round (one replica at a time, under a session lock)
//! each enabled alarm is evaluated over the periods that have settled — ended
//! `alarms.settle_seconds` before the clock's now, since CloudTrail delivers late — and over
//! any earlier period late events have changed since the last round: those are evaluated
//! again, and the transitions that no longer hold as recorded (reasons, datapoints and events
//! included) are superseded (kept, marked), the new ones recorded. Transitions are a function
//! of the stored matches only, so a replay or a backfill of the same events gives the same
//! transitions as live ingest. A transition's notifications are queued in the outbox in the
//! transaction that records it, once per period and state.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use orgtrail_detection::alarm::{
    evaluate_alarm, period_end, period_of, period_start, AlarmState, Datapoints, PeriodIndex,
    Transition,
};
use orgtrail_service_runtime::{error_chain, SharedClock};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::config::AlarmSettings;
use crate::drain::Drain;
use crate::store::{
    EvaluationOutcome, MinuteMatches, NewFinding, NewNotification, NewTransition, PgStore,
    StoreError, StoredAlarm, ALARM_EVALUATION_LOCK,
};

/// Events shown behind a transition at most.
const EVENT_IDS_PER_TRANSITION: usize = 20;

/// What a round did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EvaluationRound {
    /// False when another replica held the evaluation lock.
    pub ran: bool,
    pub alarms_evaluated: usize,
    pub transitions_recorded: usize,
}

#[derive(Clone)]
pub struct AlarmEvaluator {
    store: PgStore,
    clock: SharedClock,
    settings: AlarmSettings,
}

impl AlarmEvaluator {
    pub fn new(store: PgStore, clock: SharedClock, settings: AlarmSettings) -> AlarmEvaluator {
        AlarmEvaluator {
            store,
            clock,
            settings,
        }
    }

    /// Evaluates at start and then every interval, until draining starts.
    pub async fn run_periodically(self, drain: Drain) {
        let mut interval = tokio::time::interval(Duration::from_secs(
            self.settings.evaluation_interval_seconds,
        ));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = drain.started() => return,
                _ = interval.tick() => {}
            }
            if let Err(error) = self.evaluate_all().await {
                tracing::warn!(error = %error_chain(&error), "alarm evaluation failed; the next round tries again");
            }
        }
    }

    /// One round over every enabled alarm, if no other replica is evaluating.
    pub async fn evaluate_all(&self) -> Result<EvaluationRound, StoreError> {
        let Some(lock) = self.store.try_session_lock(ALARM_EVALUATION_LOCK).await? else {
            return Ok(EvaluationRound::default());
        };
        let outcome = self.evaluate_all_locked().await;
        lock.release().await;
        outcome
    }

    async fn evaluate_all_locked(&self) -> Result<EvaluationRound, StoreError> {
        let now = self.clock.now();
        let settled_until = now
            - chrono::Duration::seconds(
                i64::try_from(self.settings.settle_seconds).unwrap_or(i64::MAX),
            );
        let mut round = EvaluationRound {
            ran: true,
            ..EvaluationRound::default()
        };
        for alarm in self.store.list_alarms().await? {
            if !alarm.definition.enabled {
                continue;
            }
            round.transitions_recorded += self.evaluate(&alarm, now, settled_until).await?;
            round.alarms_evaluated += 1;
        }
        // The gauge reads what is stored, after every recorded change.
        for alarm in self.store.list_alarms().await? {
            crate::metrics::alarm_state(&alarm.name, alarm.state.as_str());
        }
        Ok(round)
    }

    /// Evaluates one alarm; returns the transitions recorded.
    async fn evaluate(
        &self,
        alarm: &StoredAlarm,
        now: DateTime<Utc>,
        settled_until: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let rule = &alarm.definition.rule;
        let period = rule.period_seconds;
        // Taken before the matches are read: every transaction below it has ended, so its
        // rows are seen now; those from it on are looked at again next round.
        let xmin = self.store.snapshot_xmin().await?;
        // The newest period whose end has settled.
        let last = PeriodIndex(period_of(settled_until, period).0 - 1);
        let evaluated_through = alarm
            .evaluated_through
            .map(|end| PeriodIndex(period_of(end, period).0 - 1));
        let changed = self
            .store
            .earliest_changed_minute(alarm.alarm_id, alarm.evaluated_xmin)
            .await?
            .map(|minute| period_of(minute, period));
        let created = period_of(alarm.created_at, period);
        let first = match (evaluated_through, changed) {
            (None, None) => created,
            (None, Some(changed)) => changed.min(created),
            (Some(through), None) => PeriodIndex(through.0 + 1),
            (Some(through), Some(changed)) => PeriodIndex((through.0 + 1).min(changed.0)),
        };
        if first > last {
            // Nothing settled to evaluate; keep the bookkeeping moving only when nothing is
            // pending before the evaluated range.
            return Ok(0);
        }
        let window = i64::from(rule.evaluation_periods.max(1));
        let minutes = self
            .store
            .alarm_minute_matches(
                alarm.alarm_id,
                period_start(PeriodIndex(first.0 - window + 1), period),
                period_end(last, period),
            )
            .await?;
        let datapoints: Datapoints = minutes
            .iter()
            .map(|(minute, (matches, _))| (period_of(*minute, period), *matches as f64))
            .collect();
        let state_before = self
            .store
            .alarm_state_before(alarm.alarm_id, period_start(first, period))
            .await?;
        let transitions = evaluate_alarm(rule, state_before, &datapoints, first, last);
        let destinations = self
            .store
            .alarm_destinations(&alarm.definition.destinations)
            .await?;
        let new_transitions: Vec<NewTransition> = transitions
            .iter()
            .map(|transition| self.new_transition(alarm, transition, &minutes, &destinations, now))
            .collect();
        let recorded = self
            .store
            .record_evaluation(
                alarm.alarm_id,
                alarm.version,
                EvaluationOutcome {
                    recomputed_from: period_end(first, period),
                    transitions: new_transitions,
                    evaluated_through: period_end(last, period),
                    evaluated_xmin: xmin,
                },
            )
            .await?;
        if !recorded.is_empty() {
            tracing::info!(alarm = %alarm.name, transitions = recorded.len(), "alarm transitions recorded");
        }
        Ok(recorded.len())
    }

    fn new_transition(
        &self,
        alarm: &StoredAlarm,
        transition: &Transition,
        minutes: &MinuteMatches,
        destinations: &[i64],
        now: DateTime<Utc>,
    ) -> NewTransition {
        let period = alarm.definition.rule.period_seconds;
        let period_end_time = transition.changed_at(period);
        let datapoints: Vec<Value> = transition
            .window
            .iter()
            .map(|point| {
                json!({
                    "periodStart": period_start(point.period, period),
                    "value": point.value,
                    "breaching": point.breaching,
                })
            })
            .collect();
        let event_ids = events_behind(transition, minutes, period);
        let notify_within = chrono::Duration::hours(
            i64::try_from(self.settings.notify_within_hours).unwrap_or(i64::MAX),
        );
        let (notifications, not_notified_reason) = if !alarm
            .definition
            .notifies_on(transition.new_state)
        {
            (
                Vec::new(),
                Some(format!(
                    "the alarm notifies on {} only",
                    notify_states(&alarm.definition.notify_on)
                )),
            )
        } else if period_end_time < now - notify_within {
            (
                Vec::new(),
                Some(format!(
                    "the period ended more than {} h before it was evaluated (alarms.notify_within_hours)",
                    self.settings.notify_within_hours
                )),
            )
        } else if destinations.is_empty() {
            (Vec::new(), Some("no destination takes this alarm".into()))
        } else {
            let body = json!({
                "alarm": {
                    "name": alarm.name,
                    "version": alarm.version,
                    "cisId": alarm.cis_id,
                    "title": alarm.cis_title.clone().unwrap_or_else(|| alarm.definition.description.clone()),
                    "filterPattern": alarm.definition.filter_pattern,
                },
                "oldState": transition.old_state.as_str(),
                "newState": transition.new_state.as_str(),
                "reason": transition.reason,
                "periodStart": period_start(transition.period, period),
                "periodEnd": period_end_time,
                "datapoints": datapoints,
                "eventIds": event_ids,
            });
            let notifications = destinations
                .iter()
                .map(|destination_id| NewNotification {
                    destination_id: *destination_id,
                    kind: "alarm.state_change".into(),
                    subject: alarm.name.clone(),
                    // Filled in by the store with the transition's identity.
                    dedupe_key: String::new(),
                    body: body.clone(),
                })
                .collect();
            (notifications, None)
        };
        let finding = (transition.new_state == AlarmState::Alarm).then(|| NewFinding {
            kind: "alarm",
            rule_id: alarm.name.clone(),
            rule_version: alarm.version,
            title: alarm
                .cis_title
                .clone()
                .map(|title| format!("CIS {}: {title}", alarm.cis_id.clone().unwrap_or_default()))
                .unwrap_or_else(|| {
                    if alarm.definition.description.is_empty() {
                        format!("alarm {}", alarm.name)
                    } else {
                        alarm.definition.description.clone()
                    }
                }),
            level: alarm.definition.finding_level.clone(),
            author: None,
            tags: alarm
                .cis_id
                .iter()
                .map(|cis_id| format!("cis.{cis_id}"))
                .collect(),
            account_id: None,
            aws_region: None,
            event_time: period_end_time,
            event_ids: event_ids.clone(),
            summary: transition.reason.clone(),
            dedupe_key: format!("alarm:{}:{}", alarm.alarm_id, period_end_time.timestamp()),
            suppression_id: None,
        });
        NewTransition {
            period_end: period_end_time,
            old_state: transition.old_state,
            new_state: transition.new_state,
            reason: transition.reason.clone(),
            datapoints: Value::Array(datapoints),
            event_ids,
            notifications,
            not_notified_reason,
            finding,
        }
    }
}

/// The first matching events of the window's breaching periods, newest period first.
fn events_behind(transition: &Transition, minutes: &MinuteMatches, period: u32) -> Vec<Uuid> {
    let breaching: Vec<PeriodIndex> = transition
        .window
        .iter()
        .rev()
        .filter(|point| point.breaching && point.value.is_some())
        .map(|point| point.period)
        .collect();
    let mut by_period: BTreeMap<i64, Vec<Uuid>> = BTreeMap::new();
    for (minute, (_, ids)) in minutes {
        let index = period_of(*minute, period);
        if breaching.contains(&index) {
            by_period.entry(index.0).or_default().extend(ids);
        }
    }
    breaching
        .iter()
        .flat_map(|index| by_period.remove(&index.0).unwrap_or_default())
        .take(EVENT_IDS_PER_TRANSITION)
        .collect()
}

fn notify_states(states: &[orgtrail_detection::alarm::AlarmState]) -> String {
    if states.is_empty() {
        return "ALARM".into();
    }
    states
        .iter()
        .map(|state| state.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
