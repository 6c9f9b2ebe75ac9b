//! The collector's loop over its sources: each source is leased through the aggregator (two
//! collectors never read one source at the same time), read, released, and its outcome
//! reported. A source that fails backs off on its own; the others go on.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::aggregator_client::AggregatorClient;
use crate::aws_access::AwsAccess;
use crate::config::{CollectorConfig, SourceConfig};
use crate::digest_validation::PublicKeySource;
use crate::source_error::SourceError;
use crate::source_pass::{read_source, PassContext, SourceOutcome};

/// Attempts per source in a `--once` pass for errors that may pass by themselves.
const ONCE_ATTEMPTS: u32 = 3;
/// Backoff after a failed source: from this, doubling…
const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// …up to this.
const BACKOFF_MAX: Duration = Duration::from_secs(600);

pub struct Collector {
    config: CollectorConfig,
    context: PassContext,
}

impl Collector {
    pub async fn new(config: CollectorConfig) -> Result<Collector, orgtrail_client::ConnectError> {
        let aggregator = AggregatorClient::new(&config.aggregator, &config.collector_id)?;
        let aws = Arc::new(AwsAccess::load(&config.aws, &config.collector_id).await);
        let context = PassContext {
            aws,
            aggregator,
            trailing_window_days: config.trailing_window_days,
            streams: config.streams,
            public_keys: config
                .integrity
                .validate_digests
                .then(|| Arc::new(PublicKeySource::new(config.integrity.public_keys.clone()))),
            hash_concurrency: config.integrity.hash_concurrency,
        };
        Ok(Collector { config, context })
    }

    /// One full pass over every source: a source leased by another collector is waited for
    /// (it is read once that collector lets it go, or its lease expires); errors that may pass
    /// are retried a few times. Returns each source's final outcome.
    pub async fn run_once(&self, cancel: &CancellationToken) -> BTreeMap<String, SourceOutcome> {
        let mut outcomes = BTreeMap::new();
        let mut attempts: HashMap<String, u32> = HashMap::new();
        let mut pending: Vec<SourceConfig> = self.config.sources.clone();
        // Long enough for another collector's pass over a source and for a dead one's lease
        // to expire.
        let deadline = Instant::now()
            + Duration::from_secs(u64::from(self.config.lease_seconds) * 20)
                .max(Duration::from_secs(600));
        while !pending.is_empty() {
            let round = self.visit_sources(pending, cancel).await;
            pending = Vec::new();
            for (source, outcome) in round {
                let retry = match &outcome {
                    SourceOutcome::Read(_) => false,
                    SourceOutcome::Failed(error) => {
                        let attempt = attempts.entry(source.name.clone()).or_default();
                        *attempt += 1;
                        error.is_retryable() && *attempt < ONCE_ATTEMPTS && !cancel.is_cancelled()
                    }
                    SourceOutcome::LeasedElsewhere(_) => {
                        Instant::now() < deadline && !cancel.is_cancelled()
                    }
                };
                if retry {
                    pending.push(source);
                } else {
                    outcomes.insert(source.name.clone(), outcome);
                }
            }
            if !pending.is_empty() {
                let wait = Duration::from_secs(u64::from(self.config.lease_seconds) / 4)
                    .clamp(Duration::from_millis(500), Duration::from_secs(5));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => {}
                }
            }
        }
        outcomes
    }

    /// Passes over the sources every poll interval until `cancel`; a failed source waits out
    /// its own backoff.
    pub async fn run(&self, cancel: &CancellationToken) {
        let mut next_attempt: HashMap<String, (Instant, u32)> = HashMap::new();
        while !cancel.is_cancelled() {
            let now = Instant::now();
            let due: Vec<SourceConfig> = self
                .config
                .sources
                .iter()
                .filter(|source| {
                    next_attempt
                        .get(&source.name)
                        .is_none_or(|(at, _)| *at <= now)
                })
                .cloned()
                .collect();
            for (source, outcome) in self.visit_sources(due, cancel).await {
                crate::metrics::source_visited(&source.name, &outcome);
                match outcome {
                    SourceOutcome::Failed(error) if !matches!(error, SourceError::Cancelled) => {
                        let failures = next_attempt
                            .get(&source.name)
                            .map_or(0, |(_, failures)| *failures)
                            + 1;
                        let delay = backoff(failures);
                        tracing::warn!(source = %source.name, %error, ?delay, "source failed; backing off");
                        next_attempt
                            .insert(source.name.clone(), (Instant::now() + delay, failures));
                    }
                    _ => {
                        next_attempt.remove(&source.name);
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.poll_interval) => {}
                () = cancel.cancelled() => {}
            }
        }
    }

    async fn visit_sources(
        &self,
        sources: Vec<SourceConfig>,
        cancel: &CancellationToken,
    ) -> Vec<(SourceConfig, SourceOutcome)> {
        futures::stream::iter(sources)
            .map(|source| async move {
                let outcome = self.visit_source(&source, cancel).await;
                (source, outcome)
            })
            .buffer_unordered(self.config.max_concurrent_sources)
            .collect()
            .await
    }

    /// Leases, reads, releases and reports one source.
    async fn visit_source(
        &self,
        source: &SourceConfig,
        cancel: &CancellationToken,
    ) -> SourceOutcome {
        if cancel.is_cancelled() {
            return SourceOutcome::Failed(SourceError::Cancelled);
        }
        let aggregator = &self.context.aggregator;
        let lease = match aggregator
            .acquire_lease(&source.name, self.config.lease_seconds)
            .await
        {
            Ok(lease) => lease,
            Err(error) => return SourceOutcome::Failed(error),
        };
        if !lease.granted {
            tracing::debug!(source = %source.name, holder = %lease.holder, "source leased by another collector");
            return SourceOutcome::LeasedElsewhere(lease.holder);
        }
        let pass_cancel = cancel.child_token();
        let lost_to = Arc::new(Mutex::new(None));
        let renewal = tokio::spawn(renew_lease(
            aggregator.clone(),
            source.name.clone(),
            self.config.lease_seconds,
            pass_cancel.clone(),
            Arc::clone(&lost_to),
        ));
        let result = read_source(&self.context, source, &pass_cancel).await;
        renewal.abort();
        let lost_to = lost_to
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if lost_to.is_none() {
            aggregator.release_lease(&source.name).await;
        }
        let result = match (result, lost_to) {
            (_, Some(holder)) => Err(SourceError::LeaseLost { holder }),
            (result, None) => result,
        };
        match &result {
            Ok(report) => {
                for ((account, region), outcome) in &report.regions {
                    let reported = if outcome.errors.is_empty() {
                        Ok((outcome.files_taken, outcome.newest_key.clone()))
                    } else {
                        Err(outcome.errors.join("; "))
                    };
                    aggregator
                        .report(&source.name, account, region, reported)
                        .await;
                }
                aggregator.report(&source.name, "", "", Ok((0, None))).await;
                tracing::info!(source = %source.name, counts = ?report.counts, "source read");
            }
            Err(SourceError::Cancelled) => {}
            Err(error) => {
                tracing::warn!(source = %source.name, %error, "cannot read source");
                aggregator
                    .report(&source.name, "", "", Err(error.to_string()))
                    .await;
            }
        }
        match result {
            Ok(report) => SourceOutcome::Read(report),
            Err(error) => SourceOutcome::Failed(error),
        }
    }
}

/// Renews the lease a third of its length before it runs out; when it is lost (taken by
/// another collector after it expired, or not renewed in time), stops the pass.
async fn renew_lease(
    aggregator: AggregatorClient,
    source: String,
    lease_seconds: u32,
    pass_cancel: CancellationToken,
    lost_to: Arc<Mutex<Option<String>>>,
) {
    let lease = Duration::from_secs(u64::from(lease_seconds));
    let mut renewed_at = Instant::now();
    loop {
        tokio::time::sleep(lease / 3).await;
        match aggregator.acquire_lease(&source, lease_seconds).await {
            Ok(renewal) if renewal.granted => renewed_at = Instant::now(),
            Ok(renewal) => {
                tracing::warn!(%source, holder = %renewal.holder, "lease lost; stopping the pass");
                *lost_to
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(renewal.holder);
                pass_cancel.cancel();
                return;
            }
            Err(error) if renewed_at.elapsed() >= lease => {
                tracing::warn!(%source, %error, "lease not renewed in time; stopping the pass");
                *lost_to
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some("(expired)".into());
                pass_cancel.cancel();
                return;
            }
            Err(error) => tracing::warn!(%source, %error, "cannot renew the lease yet"),
        }
    }
}

/// Exponential backoff with jitter: between half and all of `BACKOFF_BASE × 2^(failures-1)`,
/// at most `BACKOFF_MAX`.
fn backoff(failures: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let millis = ceiling.as_millis().max(2) as u64;
    Duration::from_millis(millis / 2 + random % (millis / 2 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_to_a_ceiling() {
        for _ in 0..50 {
            let first = backoff(1);
            assert!(first >= BACKOFF_BASE / 2 && first <= BACKOFF_BASE);
            let third = backoff(3);
            assert!(third >= BACKOFF_BASE * 2 && third <= BACKOFF_BASE * 4);
            assert!(backoff(40) <= BACKOFF_MAX);
        }
    }
}
