//! `Findings`: the team's queue — Sigma matches and alarms entering ALARM — listed, shown with
//! the event behind them, moved through their triage states (audited), and suppressions of
//! known-good activity.

use chrono::{DateTime, Utc};
use orgtrail_detection::suppression::{SourceIpRange, SuppressionScope};
use orgtrail_domain::lookup::{LookupAttribute, LookupParameters, LookupQuery};
use orgtrail_domain::{CloudTrailEvent, EventId};
use orgtrail_service_runtime::SharedClock;

use crate::store::{FindingFilter, PgStore, StoreError, StoredFinding, StoredSuppression};

/// The states an operator may move a finding to.
pub const TRIAGE_STATES: [&str; 4] = ["open", "acknowledged", "resolved", "false_positive"];

#[derive(Debug, thiserror::Error)]
pub enum FindingServiceError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for FindingServiceError {
    fn from(error: StoreError) -> FindingServiceError {
        match error {
            StoreError::NotFound(what) => FindingServiceError::NotFound(what),
            other => FindingServiceError::Store(other),
        }
    }
}

/// A suppression as asked for.
pub struct SuppressionRequest {
    pub rule_id: String,
    pub accounts: Vec<String>,
    pub principals: Vec<String>,
    pub source_ips: Vec<String>,
    pub reason: String,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct Findings {
    store: PgStore,
    clock: SharedClock,
}

impl Findings {
    pub fn new(store: PgStore, clock: SharedClock) -> Findings {
        Findings { store, clock }
    }

    pub async fn list(
        &self,
        filter: &FindingFilter,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredFinding>, FindingServiceError> {
        if let Some(level) = &filter.min_level {
            if crate::store::level_rank(level).is_none() {
                return Err(FindingServiceError::InvalidRequest(format!(
                    "level {level:?} is not one of {}",
                    crate::store::FINDING_LEVELS.join(", ")
                )));
            }
        }
        Ok(self.store.list_findings(filter, before_id, limit).await?)
    }

    /// A finding and the event behind it (the first, for an alarm's), when it is still stored.
    pub async fn get(
        &self,
        finding_id: i64,
    ) -> Result<(StoredFinding, Option<CloudTrailEvent>), FindingServiceError> {
        let finding = self.store.get_finding(finding_id).await?;
        let event = match finding.event_ids.first() {
            Some(event_id) => {
                let query = LookupQuery::new(LookupParameters {
                    attributes: vec![LookupAttribute::EventId(EventId::from_uuid(*event_id))],
                    max_results: 1,
                    ..LookupParameters::default()
                })
                .map_err(|error| FindingServiceError::InvalidRequest(error.to_string()))?;
                self.store.lookup_events(&query, None, 1).await?.pop()
            }
            None => None,
        };
        Ok((finding, event))
    }

    pub async fn update_state(
        &self,
        actor: &str,
        finding_id: i64,
        state: &str,
        reason: &str,
    ) -> Result<StoredFinding, FindingServiceError> {
        if !TRIAGE_STATES.contains(&state) {
            return Err(FindingServiceError::InvalidRequest(format!(
                "state {state:?} is not one of {}",
                TRIAGE_STATES.join(", ")
            )));
        }
        if reason.trim().is_empty() || reason.len() > 4096 {
            return Err(FindingServiceError::InvalidRequest(
                "a triage change needs a reason of at most 4096 bytes".into(),
            ));
        }
        Ok(self
            .store
            .update_finding_state(actor, finding_id, state, reason)
            .await?)
    }

    pub async fn create_suppression(
        &self,
        actor: &str,
        request: SuppressionRequest,
    ) -> Result<StoredSuppression, FindingServiceError> {
        let source_ips = request
            .source_ips
            .iter()
            .map(|text| SourceIpRange::parse(text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| FindingServiceError::InvalidRequest(error.to_string()))?;
        let expires_at = request.expires_at.ok_or_else(|| {
            FindingServiceError::InvalidRequest("a suppression needs an expiry".into())
        })?;
        let scope = SuppressionScope {
            rule_id: request.rule_id.clone(),
            accounts: request.accounts.clone(),
            principals: request.principals.clone(),
            source_ips,
        };
        scope
            .validate(&request.reason, expires_at, self.clock.now())
            .map_err(|error| FindingServiceError::InvalidRequest(error.to_string()))?;
        Ok(self
            .store
            .create_suppression(
                actor,
                &request.rule_id,
                &request.accounts,
                &request.principals,
                &request.source_ips,
                &request.reason,
                expires_at,
            )
            .await?)
    }

    pub async fn list_suppressions(
        &self,
        all: bool,
    ) -> Result<Vec<StoredSuppression>, FindingServiceError> {
        Ok(self.store.list_suppressions(all, self.clock.now()).await?)
    }

    pub async fn delete_suppression(
        &self,
        actor: &str,
        suppression_id: i64,
        reason: &str,
    ) -> Result<(), FindingServiceError> {
        if reason.trim().is_empty() {
            return Err(FindingServiceError::InvalidRequest(
                "deleting a suppression needs a reason".into(),
            ));
        }
        self.store
            .delete_suppression(actor, suppression_id, reason)
            .await?;
        Ok(())
    }
}
