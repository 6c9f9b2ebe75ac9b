//! Retention: versioned policies checked against the operator's floors, legal holds,
//! previews and explanations, and enforcement — whole day partitions dropped where every event
//! has expired, bounded batches elsewhere, one replica at a time, every change and every run
//! in the audit log.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use orgtrail_domain::lookup::{LookupAttribute, LookupParameters, LookupQuery};
use orgtrail_domain::retention::{
    decide, validate_policy_fields, RetentionDecision, RetentionError, RetentionFacts,
    RetentionFloors, RetentionPolicy, RetentionScope,
};
use orgtrail_domain::EventId;
use orgtrail_service_runtime::SharedClock;
use serde_json::json;

use crate::config::RetentionSettings;
use crate::store::{
    AuditEntry, PartitionDrop, PgStore, PolicyContent, RetentionRules, RunCounts, StoreError,
    StoredHold, StoredPolicy, ENFORCEMENT_LOCK,
};

#[derive(Debug, thiserror::Error)]
pub enum RetentionServiceError {
    #[error(transparent)]
    Invalid(#[from] RetentionError),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} exists already")]
    AlreadyExists(String),
    #[error("{0}")]
    Conflict(String),
    #[error("another enforcement run did not end within {0:?}")]
    Busy(Duration),
    #[error("retention state is unavailable")]
    Store(#[source] StoreError),
}

impl From<StoreError> for RetentionServiceError {
    fn from(error: StoreError) -> RetentionServiceError {
        match error {
            StoreError::NotFound(what) => RetentionServiceError::NotFound(what),
            StoreError::AlreadyExists(what) => RetentionServiceError::AlreadyExists(what),
            StoreError::VersionConflict(message) => RetentionServiceError::Conflict(message),
            other => RetentionServiceError::Store(other),
        }
    }
}

/// A change to a policy: what is set replaces the current version's.
#[derive(Clone, Debug, Default)]
pub struct PolicyChange {
    pub description: Option<String>,
    pub scope: Option<RetentionScope>,
    pub retain_days: Option<u32>,
}

/// What a preview found.
#[derive(Clone, Debug)]
pub struct PreviewReport {
    pub deletions: RunCounts,
    pub replaces_existing: bool,
}

/// Why an event is kept as long as it is.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub event_id: EventId,
    pub event_time: DateTime<Utc>,
    pub decision: RetentionDecision,
    pub holds: Vec<StoredHold>,
    pub deleted_by_next_run: bool,
}

/// What an enforcement run did.
#[derive(Clone, Debug)]
pub struct EnforcementReport {
    pub run_id: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub status: String,
    pub deletions: RunCounts,
    pub partitions_dropped: Vec<NaiveDate>,
    pub interrupted_runs: Vec<i64>,
}

#[derive(Clone)]
pub struct RetentionService {
    store: PgStore,
    settings: RetentionSettings,
    floors: RetentionFloors,
    /// Names this replica in run records.
    runner: String,
    clock: SharedClock,
}

impl RetentionService {
    pub fn new(
        store: PgStore,
        settings: RetentionSettings,
        runner: String,
        clock: SharedClock,
    ) -> RetentionService {
        RetentionService {
            floors: RetentionFloors(settings.floors.clone()),
            store,
            settings,
            runner,
            clock,
        }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.settings.interval_seconds)
    }

    fn checked_content(
        &self,
        name: &str,
        content: PolicyContent,
    ) -> Result<PolicyContent, RetentionServiceError> {
        validate_policy_fields(name, &content.description, content.retain_days)?;
        let scope = content.scope.validated()?;
        self.floors.check(&scope, content.retain_days)?;
        Ok(PolicyContent { scope, ..content })
    }

    pub async fn create_policy(
        &self,
        actor: &str,
        name: &str,
        content: PolicyContent,
    ) -> Result<StoredPolicy, RetentionServiceError> {
        let content = self.checked_content(name, content)?;
        Ok(self.store.create_policy(actor, name, &content).await?)
    }

    pub async fn update_policy(
        &self,
        actor: &str,
        name: &str,
        change: PolicyChange,
        expected_version: Option<i32>,
    ) -> Result<StoredPolicy, RetentionServiceError> {
        let mut refusal = None;
        let updated = self
            .store
            .update_policy(actor, name, expected_version, |current| {
                let merged = PolicyContent {
                    description: change
                        .description
                        .clone()
                        .unwrap_or_else(|| current.policy.description.clone()),
                    scope: change
                        .scope
                        .clone()
                        .unwrap_or_else(|| current.policy.scope.clone()),
                    retain_days: change.retain_days.unwrap_or(current.policy.retain_days),
                };
                self.checked_content(name, merged).map_err(|error| {
                    let message = error.to_string();
                    refusal = Some(error);
                    StoreError::VersionConflict(message)
                })
            })
            .await;
        match (updated, refusal) {
            (_, Some(refusal)) => Err(refusal),
            (updated, None) => Ok(updated?),
        }
    }

    pub async fn delete_policy(
        &self,
        actor: &str,
        name: &str,
    ) -> Result<StoredPolicy, RetentionServiceError> {
        Ok(self.store.delete_policy(actor, name).await?)
    }

    pub async fn get_policy(
        &self,
        name: &str,
        version: Option<i32>,
    ) -> Result<StoredPolicy, RetentionServiceError> {
        Ok(self.store.get_policy(name, version).await?)
    }

    pub async fn policy_history(
        &self,
        name: &str,
    ) -> Result<Vec<StoredPolicy>, RetentionServiceError> {
        Ok(self.store.policy_history(name).await?)
    }

    pub async fn list_policies(&self) -> Result<Vec<StoredPolicy>, RetentionServiceError> {
        Ok(self.store.list_policies().await?)
    }

    /// The rules now, with `policy` added or replacing the one of its name.
    async fn rules_with(
        &self,
        policy: Option<RetentionPolicy>,
    ) -> Result<(RetentionRules, String, bool), RetentionServiceError> {
        let now = self.clock.now();
        let loaded = self.store.load_rules(now).await?;
        let mut policies = loaded.policies;
        let mut replaces_existing = false;
        if let Some(policy) = policy {
            replaces_existing = policies.iter().any(|existing| existing.name == policy.name);
            policies.retain(|existing| existing.name != policy.name);
            policies.push(policy);
        }
        let rules = RetentionRules {
            policies,
            holds: loaded.holds,
            default_retain_days: self.settings.default_retain_days,
            now,
        };
        Ok((rules, loaded.fingerprint, replaces_existing))
    }

    /// How many stored events enforcement would delete now with `content` as policy `name`.
    pub async fn preview(
        &self,
        name: &str,
        content: PolicyContent,
    ) -> Result<PreviewReport, RetentionServiceError> {
        let content = self.checked_content(name, content)?;
        let policy = RetentionPolicy {
            name: name.to_string(),
            version: 0,
            description: content.description,
            scope: content.scope,
            retain_days: content.retain_days,
        };
        let (rules, _, replaces_existing) = self.rules_with(Some(policy)).await?;
        Ok(PreviewReport {
            deletions: self.store.count_deletable(&rules).await?,
            replaces_existing,
        })
    }

    pub async fn explain(&self, event_id: EventId) -> Result<Explanation, RetentionServiceError> {
        let query = LookupQuery::new(LookupParameters {
            attributes: vec![LookupAttribute::EventId(event_id)],
            max_results: 1,
            ..LookupParameters::default()
        })
        .map_err(|error| RetentionServiceError::InvalidRequest(error.to_string()))?;
        let event = self
            .store
            .lookup_events(&query, None, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| RetentionServiceError::NotFound(format!("event {event_id}")))?;
        let (rules, _, _) = self.rules_with(None).await?;
        let facts = RetentionFacts {
            event_time: event.event_time,
            account_id: event.account_id.clone(),
            aws_region: event.aws_region.clone(),
            event_category: event.event_category.to_string(),
            event_source: event.event_source.clone(),
            event_name: event.event_name.clone(),
            read_only: event.read_only,
        };
        let decision = decide(
            &facts,
            &rules.policies,
            &rules.holds,
            rules.default_retain_days,
            rules.now,
        );
        let holds = self
            .store
            .list_holds(false, rules.now)
            .await?
            .into_iter()
            .filter(|stored| decision.held_by.contains(&stored.hold.hold_id))
            .collect();
        Ok(Explanation {
            event_id,
            event_time: event.event_time,
            deleted_by_next_run: decision.is_deleted_at(rules.now),
            decision,
            holds,
        })
    }

    pub async fn create_hold(
        &self,
        actor: &str,
        reason: &str,
        scope: RetentionScope,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<StoredHold, RetentionServiceError> {
        if reason.trim().is_empty() || reason.len() > 4096 {
            return Err(RetentionServiceError::InvalidRequest(
                "a hold needs a reason of at most 4096 bytes".into(),
            ));
        }
        if expires_at.is_some_and(|expiry| expiry <= self.clock.now()) {
            return Err(RetentionServiceError::InvalidRequest(
                "the hold's expiry is in the past".into(),
            ));
        }
        let scope = scope.validated()?;
        Ok(self
            .store
            .create_hold(actor, reason, &scope, expires_at)
            .await?)
    }

    pub async fn release_hold(
        &self,
        actor: &str,
        hold_id: i64,
        reason: &str,
    ) -> Result<StoredHold, RetentionServiceError> {
        if reason.trim().is_empty() {
            return Err(RetentionServiceError::InvalidRequest(
                "releasing a hold needs a reason".into(),
            ));
        }
        Ok(self.store.release_hold(actor, hold_id, reason).await?)
    }

    pub async fn list_holds(
        &self,
        include_inactive: bool,
    ) -> Result<Vec<StoredHold>, RetentionServiceError> {
        Ok(self
            .store
            .list_holds(include_inactive, self.clock.now())
            .await?)
    }

    pub async fn list_audit(
        &self,
        before_id: Option<i64>,
        action_prefix: Option<&str>,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, RetentionServiceError> {
        Ok(self
            .store
            .list_audit(before_id, action_prefix, since, limit)
            .await?)
    }

    /// Runs enforcement now, after another replica's run if one is going (waiting at most
    /// `retention.run_wait_seconds`).
    pub async fn run_now(&self, actor: &str) -> Result<EnforcementReport, RetentionServiceError> {
        let wait = Duration::from_secs(self.settings.run_wait_seconds);
        let lock = self
            .store
            .session_lock(ENFORCEMENT_LOCK, wait)
            .await?
            .ok_or(RetentionServiceError::Busy(wait))?;
        let report = self.enforce(actor).await;
        lock.release().await;
        report
    }

    /// Runs enforcement if no other replica is running it; `None` when one is.
    pub async fn run_if_free(
        &self,
        actor: &str,
    ) -> Result<Option<EnforcementReport>, RetentionServiceError> {
        let Some(lock) = self.store.try_session_lock(ENFORCEMENT_LOCK).await? else {
            return Ok(None);
        };
        let report = self.enforce(actor).await;
        lock.release().await;
        report.map(Some)
    }

    /// One run, under the enforcement lock.
    async fn enforce(&self, actor: &str) -> Result<EnforcementReport, RetentionServiceError> {
        let (rules, fingerprint, _) = self.rules_with(None).await?;
        let started_at = rules.now;

        // Runs that crashed: what they deleted is accounted for before anything else.
        let interrupted = self.store.close_interrupted_runs().await?;
        for (run_id, plan, counts) in &interrupted {
            self.store
                .audit(
                    &self.runner,
                    "retention.run.interrupted",
                    &format!("run {run_id}"),
                    &json!({ "runId": run_id, "plan": plan, "deleted": counts_json(counts) }),
                )
                .await?;
        }

        let plan = json!({
            "policies": rules.policies.iter().map(|policy| json!({
                "name": policy.name, "version": policy.version, "retainDays": policy.retain_days, "scope": policy.scope,
            })).collect::<Vec<_>>(),
            "holds": rules.holds.iter().map(|hold| hold.hold_id).collect::<Vec<_>>(),
            "defaultRetainDays": rules.default_retain_days,
            "now": rules.now,
            "scanBound": rules.scan_bound(),
            "requestedBy": actor,
        });
        let run_id = self.store.begin_run(&self.runner, &plan).await?;
        let mut partitions_dropped = Vec::new();
        let mut status = "completed";
        for (day, outcome) in self
            .store
            .finish_pending_partition_drops(run_id, &rules)
            .await?
        {
            if matches!(outcome, PartitionDrop::Dropped { .. }) {
                partitions_dropped.push(day);
            }
        }

        // Day by day, oldest first: a day whose every event may go is dropped whole (that
        // costs the same for one event or a million); a mixed day goes in bounded batches.
        'days: for (day, all, deletable) in self.store.partitions_to_consider(&rules).await? {
            if all == deletable {
                match self
                    .store
                    .drop_partition(run_id, day, &rules, &fingerprint)
                    .await?
                {
                    PartitionDrop::Dropped { .. } => {
                        partitions_dropped.push(day);
                        continue;
                    }
                    PartitionDrop::Kept => {}
                    PartitionDrop::RulesChanged => {
                        status = "stopped";
                        break 'days;
                    }
                }
            }
            if deletable == 0 {
                continue;
            }
            loop {
                match self
                    .store
                    .delete_expired_batch(
                        run_id,
                        &rules,
                        &fingerprint,
                        day,
                        self.settings.batch_size,
                    )
                    .await?
                {
                    None => {
                        status = "stopped";
                        break 'days;
                    }
                    Some(batch) if batch.deleted < i64::from(self.settings.batch_size) => break,
                    Some(_) => {}
                }
            }
        }

        let deletions = self.store.finish_run(run_id, status).await?;
        let finished_at = self.clock.now();
        let report = EnforcementReport {
            run_id,
            started_at,
            finished_at,
            status: status.to_string(),
            deletions,
            partitions_dropped,
            interrupted_runs: interrupted.iter().map(|(run_id, _, _)| *run_id).collect(),
        };
        self.store
            .audit(
                actor,
                "retention.run",
                &format!("run {run_id}"),
                &json!({
                    "runId": run_id,
                    "status": status,
                    "plan": plan,
                    "deleted": counts_json(&report.deletions),
                    "eventsDeleted": report.deletions.values().sum::<i64>(),
                    "partitionsDropped": report.partitions_dropped.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "interruptedRuns": report.interrupted_runs,
                    "startedAt": started_at,
                    "finishedAt": finished_at,
                }),
            )
            .await?;
        crate::metrics::retention_run(
            status,
            u64::try_from(report.deletions.values().sum::<i64>()).unwrap_or(0),
            report.partitions_dropped.len() as u64,
        );
        tracing::info!(
            run_id,
            status,
            events_deleted = report.deletions.values().sum::<i64>(),
            partitions_dropped = report.partitions_dropped.len(),
            "retention enforcement run"
        );
        Ok(report)
    }
}

fn counts_json(counts: &RunCounts) -> serde_json::Value {
    let by_account: BTreeMap<String, i64> = counts
        .iter()
        .map(|((account, region), events)| (format!("{account}/{region}"), *events))
        .collect();
    json!(by_account)
}
