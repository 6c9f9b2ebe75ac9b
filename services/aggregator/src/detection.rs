//! The detectors every newly stored event passes, in the transaction that stores it: the
//! alarms' metric filters, counted per minute of event time, and the enabled Sigma rules,
//! whose matches are findings (suppressed ones kept as such). A duplicate delivery stores no
//! event, so it counts and raises nothing; a late file adds to its own minutes.
//!
//! The detectors are compiled once per detection generation (a number every alarm, rule and
//! suppression change moves on, in its own transaction) and shared by the files of this replica. A file reads the
//! generation in its transaction when it opens, so an event stored after an alarm change has
//! committed is counted under the new definitions, on every replica. A record is parsed into a
//! `serde_json::Value` once, and every filter is evaluated on that value.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use orgtrail_detection::alarm::AlarmScope;
use orgtrail_detection::sigma::{parse_sigma_rule, SigmaRule, SigmaRuleSet};
use orgtrail_detection::suppression::{SourceIpRange, SuppressionScope};
use orgtrail_detection::FilterPattern;
use orgtrail_domain::CloudTrailEvent;
use orgtrail_service_runtime::SharedClock;
use uuid::Uuid;

use crate::store::{
    self, AlarmMatchRow, FileTransaction, NewFinding, StoreError, StoredSuppression,
};

/// Matching events of one minute kept per file to show behind a transition.
const EVENT_IDS_PER_MINUTE: usize = 5;

/// One alarm's compiled metric filter.
pub struct AlarmFilter {
    pub alarm_id: i64,
    pub name: String,
    filter: FilterPattern,
    scope: AlarmScope,
}

/// The enabled Sigma rules, compiled, and the suppressions of their matches.
#[derive(Default)]
pub struct SigmaDetectors {
    rules: Option<SigmaRuleSet>,
    /// The version of each rule compiled.
    versions: HashMap<String, i32>,
    suppressions: Vec<ActiveSuppression>,
}

struct ActiveSuppression {
    suppression_id: i64,
    scope: SuppressionScope,
    expires_at: DateTime<Utc>,
}

impl SigmaDetectors {
    /// Compiles rules (id, version, text) and suppressions; a stored rule that no longer
    /// parses is skipped with an error in the log, not fatal.
    pub fn compile(
        rules: &[(String, i32, String)],
        suppressions: &[StoredSuppression],
    ) -> SigmaDetectors {
        let mut parsed = Vec::with_capacity(rules.len());
        let mut versions = HashMap::new();
        for (rule_id, version, yaml) in rules {
            match parse_sigma_rule(yaml) {
                Ok(rule) => {
                    versions.insert(rule.rule_id.clone(), *version);
                    parsed.push(rule);
                }
                Err(error) => {
                    tracing::error!(rule = %rule_id, %error, "a stored Sigma rule does not parse: it raises nothing")
                }
            }
        }
        let rules = match SigmaRuleSet::compile(&parsed) {
            Ok(set) if !set.is_empty() => Some(set),
            Ok(_) => None,
            Err(error) => {
                tracing::error!(%error, "the Sigma rules do not compile together: none raises anything");
                None
            }
        };
        let suppressions = suppressions
            .iter()
            .filter_map(|stored| {
                let source_ips = stored
                    .source_ips
                    .iter()
                    .map(|text| SourceIpRange::parse(text))
                    .collect::<Result<Vec<_>, _>>()
                    .ok()?;
                Some(ActiveSuppression {
                    suppression_id: stored.suppression_id,
                    scope: SuppressionScope {
                        rule_id: stored.rule_id.clone(),
                        accounts: stored.accounts.clone(),
                        principals: stored.principals.clone(),
                        source_ips,
                    },
                    expires_at: stored.expires_at,
                })
            })
            .collect();
        SigmaDetectors {
            rules,
            versions,
            suppressions,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_none()
    }

    /// The findings an event raises, `record` its record parsed once; suppressed ones carry
    /// their suppression (at `now`).
    pub fn findings(
        &self,
        event: &CloudTrailEvent,
        record: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Vec<NewFinding> {
        let Some(rules) = &self.rules else {
            return Vec::new();
        };
        rules
            .matches(record)
            .into_iter()
            .map(|rule| {
                let suppression_id = self
                    .suppressions
                    .iter()
                    .find(|suppression| {
                        suppression.expires_at > now
                            && suppression.scope.covers(
                                &rule.rule_id,
                                event.account_id.as_deref(),
                                event.user_identity.arn.as_deref(),
                                event.source_ip_address.as_deref(),
                            )
                    })
                    .map(|suppression| suppression.suppression_id);
                sigma_finding(
                    rule,
                    self.versions.get(&rule.rule_id).copied().unwrap_or(1),
                    event,
                    suppression_id,
                )
            })
            .collect()
    }
}

/// The finding of a Sigma rule's match on an event: once per rule and event, however often
/// the event is delivered or replayed.
pub fn sigma_finding(
    rule: &SigmaRule,
    version: i32,
    event: &CloudTrailEvent,
    suppression_id: Option<i64>,
) -> NewFinding {
    NewFinding {
        kind: "sigma",
        rule_id: rule.rule_id.clone(),
        rule_version: version,
        title: rule.title.clone(),
        level: rule.level.as_str().to_string(),
        author: rule.author.clone(),
        tags: rule.tags.clone(),
        account_id: event.account_id.clone(),
        aws_region: event.aws_region.clone(),
        event_time: event.event_time,
        event_ids: vec![event.event_id.as_uuid()],
        summary: rule.description.clone().unwrap_or_default(),
        dedupe_key: format!("sigma:{}:{}", rule.rule_id, event.event_id.as_uuid()),
        suppression_id,
    }
}

/// The detectors of one generation.
#[derive(Default)]
pub struct DetectionSet {
    generation: i64,
    alarm_filters: Vec<AlarmFilter>,
    sigma: SigmaDetectors,
}

impl DetectionSet {
    pub fn is_empty(&self) -> bool {
        self.alarm_filters.is_empty() && self.sigma.is_empty()
    }
}

/// The current detectors of this replica, and the clock suppressions and notification windows
/// go by.
pub struct Detectors {
    current: RwLock<Arc<DetectionSet>>,
    clock: SharedClock,
    /// Findings of events older than this when raised are not notified.
    notify_within: TimeDelta,
}

impl Detectors {
    pub fn new(clock: SharedClock, notify_within: TimeDelta) -> Detectors {
        Detectors {
            current: RwLock::new(Arc::new(DetectionSet::default())),
            clock,
            notify_within,
        }
    }

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
        let rules = store::enabled_rules(transaction).await?;
        let suppressions = store::live_suppressions(transaction).await?;
        let sigma = SigmaDetectors::compile(&rules, &suppressions);
        let set = Arc::new(DetectionSet {
            generation,
            alarm_filters,
            sigma,
        });
        if let Ok(mut current) = self.current.write() {
            *current = set.clone();
        }
        tracing::info!(
            generation,
            alarm_filters = set.alarm_filters.len(),
            sigma_rules = rules.len(),
            "detectors loaded"
        );
        Ok(set)
    }

    /// What a new file's events are checked with.
    pub fn file_detections(&self, set: Arc<DetectionSet>) -> FileDetections {
        let now = self.clock.now();
        FileDetections {
            set,
            minutes: HashMap::new(),
            findings: Vec::new(),
            now,
            notify_since: now - self.notify_within,
        }
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
    findings: Vec<NewFinding>,
    now: DateTime<Utc>,
    notify_since: DateTime<Utc>,
}

/// What a file's detections write with it.
pub struct FileDetectionRows {
    pub alarm_matches: Vec<AlarmMatchRow>,
    /// Matches per alarm name (for metrics).
    pub matches_per_alarm: Vec<(String, u64)>,
    pub findings: Vec<NewFinding>,
    /// Findings of events before this notify no one.
    pub notify_since: DateTime<Utc>,
}

impl FileDetections {
    /// Passes one newly stored event through every detector.
    pub fn observe(&mut self, event: &CloudTrailEvent) {
        if self.set.is_empty() {
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
        if in_scope.is_empty() && self.set.sigma.is_empty() {
            return;
        }
        // Parsed once for every detector; a stored record is JSON (the parser checked it).
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&event.record_json) else {
            return;
        };
        self.findings
            .extend(self.set.sigma.findings(event, &record, self.now));
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

    /// What to write with the file.
    pub fn into_rows(self) -> FileDetectionRows {
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
        FileDetectionRows {
            alarm_matches: rows,
            matches_per_alarm: named,
            findings: self.findings,
            notify_since: self.notify_since,
        }
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
