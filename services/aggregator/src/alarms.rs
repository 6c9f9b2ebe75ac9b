//! `AlarmService`: alarms on metric filters — created, retuned, deleted (each change
//! versioned and audited), listed with their state, their transition history — the built-in
//! CIS AWS Foundations Benchmark set, and backtests of a filter pattern over stored history.
//! Their evaluation is `alarm_evaluation`.

use chrono::{DateTime, Utc};
use orgtrail_detection::alarm::{period_of, period_start, AlarmScope};
use orgtrail_detection::alarm_definition::{cis_alarms, AlarmDefinition, AlarmDefinitionError};
use orgtrail_detection::{FilterPattern, FilterPatternError};
use orgtrail_service_runtime::SharedClock;

use crate::store::{BuiltinAlarm, PgStore, StoreError, StoredAlarm, StoredTransition};

/// The actor of the built-in alarms' creation in the audit log.
pub const BUILTIN_ACTOR: &str = "orgtrail (built-in CIS AWS Foundations Benchmark alarms)";

/// Events a backtest reads at most: beyond it the caller narrows the range.
pub const MAX_BACKTEST_EVENTS: u64 = 5_000_000;

#[derive(Debug, thiserror::Error)]
pub enum AlarmServiceError {
    #[error("filter pattern: {0}")]
    Pattern(#[from] FilterPatternError),
    #[error(transparent)]
    Definition(#[from] AlarmDefinitionError),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} exists already")]
    AlreadyExists(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the backtest would read more than {MAX_BACKTEST_EVENTS} events: narrow the time range or the scope")]
    BacktestTooLarge,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AlarmServiceError {
    fn from(error: StoreError) -> AlarmServiceError {
        match error {
            StoreError::NotFound(what) => AlarmServiceError::NotFound(what),
            StoreError::AlreadyExists(what) => AlarmServiceError::AlreadyExists(what),
            StoreError::VersionConflict(what) => AlarmServiceError::Conflict(what),
            other => AlarmServiceError::Store(other),
        }
    }
}

/// A backtest's question.
pub struct Backtest {
    pub pattern: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub scope: AlarmScope,
    pub period_seconds: u32,
    pub max_events: usize,
}

/// A backtest's answer.
pub struct BacktestReport {
    pub canonical_pattern: String,
    /// Periods with matches, oldest first.
    pub periods: Vec<(DateTime<Utc>, u64)>,
    pub events_scanned: u64,
    pub events_matched: u64,
    /// The first matching events, oldest first.
    pub events: Vec<orgtrail_domain::CloudTrailEvent>,
}

#[derive(Clone)]
pub struct AlarmService {
    store: PgStore,
    clock: SharedClock,
}

impl AlarmService {
    pub fn new(store: PgStore, clock: SharedClock) -> AlarmService {
        AlarmService { store, clock }
    }

    /// Makes the CIS alarms that were never made (at every start: an upgrade that adds one
    /// makes it; one an operator retuned or disabled stays as it is).
    pub async fn ensure_builtin_alarms(&self) -> Result<Vec<String>, AlarmServiceError> {
        let builtins: Vec<BuiltinAlarm> = cis_alarms()
            .into_iter()
            .map(|alarm| BuiltinAlarm {
                name: alarm.name,
                cis_id: alarm.cis_id.to_string(),
                cis_title: alarm.title.to_string(),
                definition: alarm.definition,
            })
            .collect();
        Ok(self
            .store
            .ensure_builtin_alarms(BUILTIN_ACTOR, &builtins, self.clock.now())
            .await?)
    }

    pub async fn create(
        &self,
        actor: &str,
        name: &str,
        definition: AlarmDefinition,
    ) -> Result<StoredAlarm, AlarmServiceError> {
        validate_alarm_name(name)?;
        self.checked(&definition).await?;
        Ok(self
            .store
            .create_alarm(actor, name, &definition, self.clock.now())
            .await?)
    }

    pub async fn update(
        &self,
        actor: &str,
        name: &str,
        expected_version: Option<i32>,
        definition: AlarmDefinition,
    ) -> Result<StoredAlarm, AlarmServiceError> {
        self.checked(&definition).await?;
        Ok(self
            .store
            .update_alarm(actor, name, expected_version, &definition)
            .await?)
    }

    pub async fn delete(&self, actor: &str, name: &str) -> Result<StoredAlarm, AlarmServiceError> {
        Ok(self.store.delete_alarm(actor, name).await?)
    }

    pub async fn get(
        &self,
        name: &str,
        version: Option<i32>,
    ) -> Result<StoredAlarm, AlarmServiceError> {
        Ok(self.store.get_alarm(name, version).await?)
    }

    pub async fn list(&self) -> Result<Vec<StoredAlarm>, AlarmServiceError> {
        Ok(self.store.list_alarms().await?)
    }

    /// The alarm's transitions, newest period first, after transition `before_id`.
    pub async fn history(
        &self,
        name: &str,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredTransition>, AlarmServiceError> {
        let alarm = self.store.get_alarm(name, None).await?;
        Ok(self
            .store
            .alarm_history(alarm.alarm_id, before_id, limit)
            .await?)
    }

    /// Runs a filter pattern over stored history, raising nothing.
    pub async fn backtest(&self, question: Backtest) -> Result<BacktestReport, AlarmServiceError> {
        let filter = FilterPattern::parse(&question.pattern)?;
        question
            .scope
            .validate()
            .map_err(|error| AlarmServiceError::InvalidRequest(format!("scope: {error}")))?;
        if question.period_seconds == 0 || !question.period_seconds.is_multiple_of(60) {
            return Err(AlarmServiceError::InvalidRequest(format!(
                "period {} s is not a positive multiple of 60",
                question.period_seconds
            )));
        }
        if let (Some(start), Some(end)) = (question.start, question.end) {
            if start > end {
                return Err(AlarmServiceError::InvalidRequest(format!(
                    "the start time {start} is after the end time {end}"
                )));
            }
        }
        let mut periods: std::collections::BTreeMap<i64, u64> = Default::default();
        let mut events = Vec::new();
        let mut matched = 0u64;
        let scanned = self
            .store
            .scan_events(
                question.start,
                question.end,
                &question.scope,
                MAX_BACKTEST_EVENTS,
                |event| {
                    let Ok(record) = serde_json::from_str::<serde_json::Value>(&event.record_json)
                    else {
                        return;
                    };
                    if !filter.matches(&record) {
                        return;
                    }
                    matched += 1;
                    *periods
                        .entry(period_of(event.event_time, question.period_seconds).0)
                        .or_default() += 1;
                    if events.len() < question.max_events {
                        events.push(event);
                    }
                },
            )
            .await?
            .ok_or(AlarmServiceError::BacktestTooLarge)?;
        Ok(BacktestReport {
            canonical_pattern: filter.to_string(),
            periods: periods
                .into_iter()
                .map(|(index, count)| {
                    (
                        period_start(
                            orgtrail_detection::alarm::PeriodIndex(index),
                            question.period_seconds,
                        ),
                        count,
                    )
                })
                .collect(),
            events_scanned: scanned,
            events_matched: matched,
            events,
        })
    }

    /// Validates a definition and that the destinations it names exist.
    async fn checked(&self, definition: &AlarmDefinition) -> Result<(), AlarmServiceError> {
        definition.validate()?;
        let existing = self
            .store
            .existing_destinations(&definition.destinations)
            .await?;
        if let Some(missing) = definition
            .destinations
            .iter()
            .find(|name| !existing.contains(name))
        {
            return Err(AlarmServiceError::InvalidRequest(format!(
                "destination {missing} does not exist (orgtrail destinations create)"
            )));
        }
        Ok(())
    }
}

/// An alarm's name: 1–128 letters, digits, `-`, `_`, `.`.
fn validate_alarm_name(name: &str) -> Result<(), AlarmServiceError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(AlarmServiceError::InvalidRequest(format!(
            "alarm name {name:?} must have 1 to 128 letters, digits, '-', '_' or '.'"
        )))
    }
}
