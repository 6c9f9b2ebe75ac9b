//! The detectors every newly stored event passes, in the transaction that stores it: the
//! alarms' metric filters, counted per minute of event time. A duplicate delivery stores no
//! event, so it counts nothing; a late file adds to its own minutes.
//!
//! The filters are compiled once per detection generation (a number every alarm change moves
//! on, in its own transaction) and shared by the files of this replica. A file reads the
//! generation in its transaction when it opens, so an event stored after an alarm change has
//! committed is counted under the new definitions, on every replica. A record is parsed into a
//! `serde_json::Value` once, and every filter is evaluated on that value.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use orgtrail_detection::alarm::AlarmScope;
use orgtrail_detection::FilterPattern;
use orgtrail_domain::CloudTrailEvent;
use uuid::Uuid;

use crate::store::{self, AlarmMatchRow, FileTransaction, StoreError};

/// Matching events of one minute kept per file to show behind a transition.
const EVENT_IDS_PER_MINUTE: usize = 5;

/// One alarm's compiled metric filter.
pub struct AlarmFilter {
    pub alarm_id: i64,
    pub name: String,
    filter: FilterPattern,
    scope: AlarmScope,
}

/// The detectors of one generation.
#[derive(Default)]
pub struct DetectionSet {
    generation: i64,
    alarm_filters: Vec<AlarmFilter>,
}

impl DetectionSet {
    pub fn is_empty(&self) -> bool {
        self.alarm_filters.is_empty()
    }
}

/// The current detectors of this replica.
#[derive(Default)]
pub struct Detectors {
    current: RwLock<Arc<DetectionSet>>,
}

impl Detectors {
    /// The detectors a file's events pass: those of the generation the file's transaction
    /// sees, compiled again when it moved on.
    pub async fn for_file(
        &self,
        transaction: &mut FileTransaction,
    ) -> Result<Arc<DetectionSet>, StoreError> {
        let generation = store::detection_generation(transaction).await?;
        if let Some(current) = self.current() {
            if current.generation == generation {
                return Ok(current);
            }
        }
        let mut alarm_filters = Vec::new();
        for (alarm_id, name, definition) in store::enabled_alarm_definitions(transaction).await? {
            // Stored definitions were validated when written; one that no longer compiles
            // (a stricter parser after an upgrade) is skipped, not fatal to ingest.
            match FilterPattern::parse(&definition.filter_pattern) {
                Ok(filter) => alarm_filters.push(AlarmFilter {
                    alarm_id,
                    name,
                    filter,
                    scope: definition.scope,
                }),
                Err(error) => {
                    tracing::error!(alarm = %name, %error, "the alarm's filter pattern does not parse: it counts nothing")
                }
            }
        }
        let set = Arc::new(DetectionSet {
            generation,
            alarm_filters,
        });
        if let Ok(mut current) = self.current.write() {
            *current = set.clone();
        }
        tracing::info!(
            generation,
            alarm_filters = set.alarm_filters.len(),
            "detectors loaded"
        );
        Ok(set)
    }

    fn current(&self) -> Option<Arc<DetectionSet>> {
        self.current.read().ok().map(|current| current.clone())
    }
}

/// What one file's new events matched.
pub struct FileDetections {
    set: Arc<DetectionSet>,
    /// (alarm, minute) → (matches, the smallest event ids).
    minutes: HashMap<(i64, DateTime<Utc>), (i64, Vec<Uuid>)>,
}

impl FileDetections {
    pub fn new(set: Arc<DetectionSet>) -> FileDetections {
        FileDetections {
            set,
            minutes: HashMap::new(),
        }
    }

    /// Passes one newly stored event through every detector.
    pub fn observe(&mut self, event: &CloudTrailEvent) {
        if self.set.alarm_filters.is_empty() {
            return;
        }
        let category = event.event_category.to_string();
        let in_scope: Vec<&AlarmFilter> = self
            .set
            .alarm_filters
            .iter()
            .filter(|alarm| {
                alarm.scope.covers(
                    event.account_id.as_deref(),
                    event.aws_region.as_deref(),
                    &category,
                )
            })
            .collect();
        if in_scope.is_empty() {
            return;
        }
        // Parsed once for every filter; a stored record is JSON (the parser checked it).
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&event.record_json) else {
            return;
        };
        let minute = event
            .event_time
            .duration_trunc(TimeDelta::minutes(1))
            .unwrap_or(event.event_time);
        let event_id = event.event_id.as_uuid();
        for alarm in in_scope {
            if alarm.filter.matches(&record) {
                let (matches, ids) = self
                    .minutes
                    .entry((alarm.alarm_id, minute))
                    .or_insert((0, Vec::new()));
                *matches += 1;
                keep_smallest(ids, event_id);
            }
        }
    }

    /// The match rows to write with the file, and the matches per alarm name (for metrics).
    pub fn into_rows(self) -> (Vec<AlarmMatchRow>, Vec<(String, u64)>) {
        let mut per_alarm: HashMap<i64, u64> = HashMap::new();
        let rows = self
            .minutes
            .into_iter()
            .map(|((alarm_id, minute_start), (matches, mut event_ids))| {
                *per_alarm.entry(alarm_id).or_default() += matches.unsigned_abs();
                event_ids.sort();
                AlarmMatchRow {
                    alarm_id,
                    minute_start,
                    matches,
                    event_ids,
                }
            })
            .collect();
        let named = self
            .set
            .alarm_filters
            .iter()
            .filter_map(|alarm| {
                per_alarm
                    .get(&alarm.alarm_id)
                    .map(|count| (alarm.name.clone(), *count))
            })
            .collect();
        (rows, named)
    }
}

/// Keeps the smallest ids seen (the same whatever order the events come in, so a replay shows
/// the same events as live ingest).
fn keep_smallest(ids: &mut Vec<Uuid>, id: Uuid) {
    if ids.len() < EVENT_IDS_PER_MINUTE {
        ids.push(id);
        return;
    }
    if let Some((largest_at, largest)) = ids.iter().enumerate().max_by_key(|(_, id)| **id) {
        if id < *largest {
            ids[largest_at] = id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_ids_are_kept_whatever_their_order() {
        let ids: Vec<Uuid> = (1..=9u128).map(Uuid::from_u128).collect();
        let mut forward = Vec::new();
        let mut backward = Vec::new();
        for id in &ids {
            keep_smallest(&mut forward, *id);
        }
        for id in ids.iter().rev() {
            keep_smallest(&mut backward, *id);
        }
        forward.sort();
        backward.sort();
        assert_eq!(forward, ids[..5].to_vec());
        assert_eq!(backward, forward);
    }
}
