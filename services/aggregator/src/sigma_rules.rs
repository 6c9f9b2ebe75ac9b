//! `SigmaRules`: the Sigma rules ingest evaluates — SigmaHQ's AWS CloudTrail rules made at
//! start, rules added through the API or loaded from a folder at start — each change
//! versioned and audited; backtests of a rule over stored history (raising nothing); and
//! replays, which raise over a window of event time what live ingest would have raised.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use orgtrail_detection::alarm::AlarmScope;
use orgtrail_detection::sigma::{builtin_sigma_rules, parse_sigma_rule, SigmaRule, SigmaRuleSet};
use orgtrail_domain::CloudTrailEvent;
use orgtrail_service_runtime::SharedClock;
use serde_json::json;

use crate::config::DetectionSettings;
use crate::detection::SigmaDetectors;
use crate::store::{NewFinding, PgStore, RuleContent, RuleWrite, StoreError, StoredRule};

/// The actor of the built-in rules' creation in the audit log.
pub const BUILTIN_ACTOR: &str = "orgtrail (built-in SigmaHQ AWS CloudTrail rules)";
/// The actor of rules loaded from `detections.rules_directory`.
pub const DIRECTORY_ACTOR: &str = "orgtrail (detections.rules_directory)";

/// Events a backtest or a replay reads at most in one call.
pub const MAX_SCANNED_EVENTS: u64 = 5_000_000;
/// Findings a replay writes per transaction.
const REPLAY_BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum RuleServiceError {
    #[error("{file}: {reason}")]
    InvalidRule { file: String, reason: String },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("more than {MAX_SCANNED_EVENTS} events in the window: narrow it")]
    TooManyEvents,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RuleServiceError {
    fn from(error: StoreError) -> RuleServiceError {
        match error {
            StoreError::NotFound(what) => RuleServiceError::NotFound(what),
            StoreError::VersionConflict(what) => RuleServiceError::Conflict(what),
            other => RuleServiceError::Store(other),
        }
    }
}

/// A stored rule with what its text says.
pub struct RuleView {
    pub stored: StoredRule,
    pub rule: SigmaRule,
}

/// A backtest's answer.
pub struct RuleTest {
    pub rule: SigmaRule,
    pub events_scanned: u64,
    pub events_matched: u64,
    pub events: Vec<CloudTrailEvent>,
    /// Matches per UTC day.
    pub days: BTreeMap<chrono::NaiveDate, u64>,
}

/// A replay's answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    pub events_scanned: u64,
    pub matches: u64,
    pub findings_raised: u64,
    pub suppressed: u64,
}

#[derive(Clone)]
pub struct SigmaRules {
    store: PgStore,
    clock: SharedClock,
    settings: DetectionSettings,
}

fn content(rule: &SigmaRule) -> RuleContent {
    RuleContent {
        rule_id: rule.rule_id.clone(),
        yaml: rule.yaml.clone(),
        title: rule.title.clone(),
        level: rule.level.as_str().to_string(),
        author: rule.author.clone(),
    }
}

impl SigmaRules {
    pub fn new(store: PgStore, clock: SharedClock, settings: DetectionSettings) -> SigmaRules {
        SigmaRules {
            store,
            clock,
            settings,
        }
    }

    /// At start: SigmaHQ's rules made if they never were, then the rules of the folder added
    /// or replaced. A file of the folder that is not a rule orgtrail can evaluate is skipped,
    /// and said in the log (the aggregator still starts).
    pub async fn prepare(&self) -> Result<(), RuleServiceError> {
        if self.settings.sigmahq_rules {
            let mut builtin = Vec::new();
            for file in builtin_sigma_rules() {
                match parse_sigma_rule(file.yaml) {
                    Ok(rule) => builtin.push(content(&rule)),
                    // A SigmaHQ rule orgtrail cannot evaluate (it reads a field CloudTrail
                    // records never have) is left out, said at every start.
                    Err(error) => {
                        tracing::info!(file = file.file_name, %error, "a SigmaHQ rule is not used")
                    }
                }
            }
            let made = self
                .store
                .ensure_builtin_rules(BUILTIN_ACTOR, &builtin)
                .await?;
            if !made.is_empty() {
                tracing::info!(rules = made.len(), "SigmaHQ AWS CloudTrail rules made");
            }
        }
        if let Some(directory) = &self.settings.rules_directory {
            let loaded = load_rules_directory(directory);
            for problem in &loaded.problems {
                tracing::error!(%problem, "a file of detections.rules_directory is not used");
            }
            let contents: Vec<RuleContent> =
                loaded.rules.iter().map(|(_, rule)| content(rule)).collect();
            let written = self
                .store
                .write_rules(DIRECTORY_ACTOR, "directory", &contents, true)
                .await?;
            let changed = written
                .iter()
                .filter(|write| matches!(write, RuleWrite::Written(_)))
                .count();
            // The folder is the source of truth for its rules: one whose file is gone is deleted
            // (audited) — unless a file could not be read or parsed, which may be that rule.
            let mut removed = 0;
            if loaded.problems.is_empty() {
                for stored in self.store.list_rules().await? {
                    let in_folder = contents.iter().any(|rule| rule.rule_id == stored.rule_id);
                    if stored.origin == "directory" && !in_folder {
                        match self
                            .store
                            .delete_rule(DIRECTORY_ACTOR, &stored.rule_id)
                            .await
                        {
                            Ok(_) => removed += 1,
                            // Another replica starting at the same time deleted it.
                            Err(StoreError::NotFound(_)) => {}
                            Err(error) => return Err(error.into()),
                        }
                    }
                }
            } else {
                tracing::warn!("rules of detections.rules_directory whose files are gone are kept while a file of it is not used");
            }
            tracing::info!(directory = %directory.display(), rules = contents.len(), changed, removed, "Sigma rules loaded");
        }
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<RuleView>, RuleServiceError> {
        self.store
            .list_rules()
            .await?
            .into_iter()
            .map(view)
            .collect()
    }

    pub async fn get(
        &self,
        rule_id: &str,
        version: Option<i32>,
    ) -> Result<RuleView, RuleServiceError> {
        view(self.store.get_rule(rule_id, version).await?)
    }

    /// Adds or replaces rules, all or nothing; returns those written and the ids unchanged.
    pub async fn add(
        &self,
        actor: &str,
        files: &[(String, String)],
        enabled: bool,
    ) -> Result<(Vec<RuleView>, Vec<String>), RuleServiceError> {
        if files.is_empty() {
            return Err(RuleServiceError::InvalidRequest("no rule given".into()));
        }
        let mut contents = Vec::with_capacity(files.len());
        for (name, yaml) in files {
            let rule = parse_sigma_rule(yaml).map_err(|error| RuleServiceError::InvalidRule {
                file: name.clone(),
                reason: error.to_string(),
            })?;
            if contents
                .iter()
                .any(|existing: &RuleContent| existing.rule_id == rule.rule_id)
            {
                return Err(RuleServiceError::InvalidRule {
                    file: name.clone(),
                    reason: format!("rule id {} is given twice", rule.rule_id),
                });
            }
            contents.push(content(&rule));
        }
        let mut written = Vec::new();
        let mut unchanged = Vec::new();
        for outcome in self
            .store
            .write_rules(actor, "operator", &contents, enabled)
            .await?
        {
            match outcome {
                RuleWrite::Written(stored) => written.push(view(stored)?),
                RuleWrite::Unchanged(rule_id) => unchanged.push(rule_id),
            }
        }
        Ok((written, unchanged))
    }

    pub async fn set_enabled(
        &self,
        actor: &str,
        rule_id: &str,
        enabled: bool,
    ) -> Result<RuleView, RuleServiceError> {
        view(self.store.set_rule_enabled(actor, rule_id, enabled).await?)
    }

    pub async fn delete(&self, actor: &str, rule_id: &str) -> Result<(), RuleServiceError> {
        self.store.delete_rule(actor, rule_id).await?;
        Ok(())
    }

    /// Runs a rule (not stored) over stored history, raising nothing.
    pub async fn test(
        &self,
        yaml: &str,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
        max_events: usize,
    ) -> Result<RuleTest, RuleServiceError> {
        let rule = parse_sigma_rule(yaml).map_err(|error| RuleServiceError::InvalidRule {
            file: "the rule".into(),
            reason: error.to_string(),
        })?;
        check_window(start, end)?;
        let set = SigmaRuleSet::compile(std::slice::from_ref(&rule)).map_err(|error| {
            RuleServiceError::InvalidRule {
                file: "the rule".into(),
                reason: error.to_string(),
            }
        })?;
        let mut events = Vec::new();
        let mut matched = 0u64;
        let mut days: BTreeMap<chrono::NaiveDate, u64> = BTreeMap::new();
        let scanned = self
            .store
            .scan_events(
                start,
                end,
                &AlarmScope::default(),
                MAX_SCANNED_EVENTS,
                |event| {
                    let Ok(record) = serde_json::from_str::<serde_json::Value>(&event.record_json)
                    else {
                        return;
                    };
                    if set.matches(&record).is_empty() {
                        return;
                    }
                    matched += 1;
                    *days.entry(event.event_time.date_naive()).or_default() += 1;
                    if events.len() < max_events {
                        events.push(event);
                    }
                },
            )
            .await?
            .ok_or(RuleServiceError::TooManyEvents)?;
        Ok(RuleTest {
            rule,
            events_scanned: scanned,
            events_matched: matched,
            events,
            days,
        })
    }

    /// Raises what live ingest would have raised over `[start, end]` of event time with the
    /// rules and suppressions as they are now: findings not raised before (and their
    /// notifications, for events within `detections.notify_within_hours`). Running it twice
    /// raises nothing the second time.
    pub async fn replay(
        &self,
        actor: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<ReplayReport, RuleServiceError> {
        check_window(Some(start), Some(end))?;
        let rules = self.store.enabled_rule_texts().await?;
        let suppressions = self.store.live_suppressions().await?;
        let detectors = SigmaDetectors::compile(&rules, &suppressions);
        let now = self.clock.now();
        let notify_since = now
            - TimeDelta::hours(
                i64::try_from(self.settings.notify_within_hours).unwrap_or(i64::MAX),
            );
        let mut report = ReplayReport::default();
        let mut pending: Vec<NewFinding> = Vec::new();
        let mut store_error = None;
        let scanned = self
            .store
            .scan_events(
                Some(start),
                Some(end),
                &AlarmScope::default(),
                MAX_SCANNED_EVENTS,
                |event| {
                    let Ok(record) = serde_json::from_str::<serde_json::Value>(&event.record_json)
                    else {
                        return;
                    };
                    let findings = detectors.findings(&event, &record, now);
                    report.matches += findings.len() as u64;
                    pending.extend(findings);
                },
            )
            .await?
            .ok_or(RuleServiceError::TooManyEvents)?;
        report.events_scanned = scanned;
        for batch in pending.chunks(REPLAY_BATCH) {
            match self.store.raise_findings(batch, notify_since).await {
                Ok(raised) => {
                    report.findings_raised += raised.raised;
                    report.suppressed += raised.suppressed;
                }
                Err(error) => {
                    store_error = Some(error);
                    break;
                }
            }
        }
        self.store
            .audit(
                actor,
                "detections.replay",
                &format!("{start} to {end}"),
                &json!({
                    "eventsScanned": report.events_scanned,
                    "matches": report.matches,
                    "findingsRaised": report.findings_raised,
                    "suppressed": report.suppressed,
                    "rules": rules.len(),
                    "failed": store_error.as_ref().map(|error| error.to_string()),
                }),
            )
            .await?;
        match store_error {
            Some(error) => Err(error.into()),
            None => Ok(report),
        }
    }
}

fn check_window(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Result<(), RuleServiceError> {
    match (start, end) {
        (Some(start), Some(end)) if start > end => Err(RuleServiceError::InvalidRequest(format!(
            "the start time {start} is after the end time {end}"
        ))),
        _ => Ok(()),
    }
}

fn view(stored: StoredRule) -> Result<RuleView, RuleServiceError> {
    let rule = parse_sigma_rule(&stored.yaml).map_err(|error| {
        RuleServiceError::Store(StoreError::CorruptRow(format!(
            "rule {}: {error}",
            stored.rule_id
        )))
    })?;
    Ok(RuleView { stored, rule })
}

/// The Sigma rules of `detections.rules_directory`, and what was wrong with the files that are
/// not among them.
pub struct RulesDirectory {
    /// File name and rule, by file name.
    pub rules: Vec<(String, SigmaRule)>,
    /// One line per file that cannot be read or is not a rule orgtrail evaluates (or the
    /// folder itself, when it cannot be read).
    pub problems: Vec<String>,
}

/// The `*.yml` and `*.yaml` files of a folder, parsed (a ConfigMap's `..data` links and other
/// dot files are passed over). The aggregator loads them at start and `check-config` checks
/// them: the same reading, so what check-config accepts is what serve loads.
pub fn load_rules_directory(directory: &Path) -> RulesDirectory {
    let mut loaded = RulesDirectory {
        rules: Vec::new(),
        problems: Vec::new(),
    };
    let entries = match std::fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) => {
            loaded.problems.push(format!(
                "cannot read detections.rules_directory {}: {error}",
                directory.display()
            ));
            return loaded;
        }
    };
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().map(|name| name.to_string_lossy());
            !name.is_some_and(|name| name.starts_with('.'))
                && path
                    .extension()
                    .is_some_and(|extension| extension == "yml" || extension == "yaml")
        })
        .collect();
    paths.sort();
    for path in paths {
        let name = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(yaml) => match parse_sigma_rule(&yaml) {
                Ok(rule) => loaded.rules.push((name, rule)),
                Err(error) => loaded.problems.push(format!("{name}: {error}")),
            },
            Err(error) => loaded
                .problems
                .push(format!("{name}: cannot read: {error}")),
        }
    }
    loaded
}
