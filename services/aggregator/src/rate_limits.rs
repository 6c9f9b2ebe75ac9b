//! Rates and slots, as plain logic: per-caller admission (a token bucket and calls in progress
//! per caller), and how many refused calls reach the audit log. The tower layer that applies
//! the first to every call is `grpc::limit_layer`; `auth` applies the second to refusals.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits of each caller.
#[derive(Clone, Debug)]
pub struct CallerLimits {
    /// Calls per second, sustained.
    pub requests_per_second: f64,
    /// Calls allowed at once above the rate.
    pub burst: f64,
    /// Calls in progress at once (a stream counts until its response starts).
    pub concurrency: usize,
    /// Unary calls end by then.
    pub request_timeout: Duration,
}

/// A token bucket: `rate` per second sustained, `burst` at once.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.updated = now;
    }
}

struct CallerState {
    bucket: Bucket,
    in_progress: Arc<Semaphore>,
}

/// Admits each caller's calls within its rate and its calls in progress.
pub struct CallerAdmission {
    limits: CallerLimits,
    callers: Mutex<HashMap<String, CallerState>>,
}

impl CallerAdmission {
    pub fn new(limits: CallerLimits) -> CallerAdmission {
        CallerAdmission {
            limits,
            callers: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> &CallerLimits {
        &self.limits
    }

    /// Takes a token and a slot for `caller`, or says which limit it is over. The slot is
    /// held until the permit is dropped.
    pub fn admit(&self, caller: &str) -> Result<OwnedSemaphorePermit, String> {
        let Ok(mut callers) = self.callers.lock() else {
            return Err("the limiter is unavailable".into());
        };
        let now = Instant::now();
        let state = callers
            .entry(caller.to_string())
            .or_insert_with(|| CallerState {
                bucket: Bucket::full(self.limits.burst, now),
                in_progress: Arc::new(Semaphore::new(self.limits.concurrency)),
            });
        state
            .bucket
            .refill(now, self.limits.requests_per_second, self.limits.burst);
        if state.bucket.tokens < 1.0 {
            return Err(format!(
                "{caller} is over its rate of {} calls per second (burst {}); retry later",
                self.limits.requests_per_second, self.limits.burst
            ));
        }
        let permit = state.in_progress.clone().try_acquire_owned().map_err(|_| {
            format!(
                "{caller} has {} calls in progress, its limit; retry when one ends",
                self.limits.concurrency
            )
        })?;
        state.bucket.tokens -= 1.0;
        Ok(permit)
    }
}

/// How many refused calls are written to the audit log: every one, up to a rate per remote
/// address and overall, so that a flood of unauthenticated calls cannot flood the audit log
/// (or the database's disk). What is not written is counted, and the count goes into the next
/// entry written (`suppressedBefore`); the metrics count every refusal.
pub struct RefusalAuditLimit {
    state: Mutex<RefusalBuckets>,
}

struct RefusalBuckets {
    overall: Bucket,
    per_address: HashMap<IpAddr, Bucket>,
    suppressed: u64,
}

/// Per remote address, and overall.
const REFUSAL_AUDIT_RATE: f64 = 5.0;
const REFUSAL_AUDIT_BURST: f64 = 50.0;
const REFUSAL_AUDIT_OVERALL_RATE: f64 = 50.0;
const REFUSAL_AUDIT_OVERALL_BURST: f64 = 500.0;
/// Addresses remembered at most; beyond it, those whose bucket is full again are forgotten.
const REFUSAL_AUDIT_ADDRESSES: usize = 10_000;

impl Default for RefusalAuditLimit {
    fn default() -> Self {
        RefusalAuditLimit {
            state: Mutex::new(RefusalBuckets {
                overall: Bucket::full(REFUSAL_AUDIT_OVERALL_BURST, Instant::now()),
                per_address: HashMap::new(),
                suppressed: 0,
            }),
        }
    }
}

impl RefusalAuditLimit {
    /// Whether a refusal from `address` is written now; if so, how many were not written
    /// since the last one that was.
    pub fn admit(&self, address: Option<IpAddr>) -> Option<u64> {
        self.admit_at(address, Instant::now())
    }

    fn admit_at(&self, address: Option<IpAddr>, now: Instant) -> Option<u64> {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let state = &mut *state;
        state
            .overall
            .refill(now, REFUSAL_AUDIT_OVERALL_RATE, REFUSAL_AUDIT_OVERALL_BURST);
        if state.per_address.len() >= REFUSAL_AUDIT_ADDRESSES {
            state.per_address.retain(|_, bucket| {
                bucket.refill(now, REFUSAL_AUDIT_RATE, REFUSAL_AUDIT_BURST);
                bucket.tokens < REFUSAL_AUDIT_BURST
            });
        }
        let per_address = match address {
            Some(address)
                if state.per_address.len() < REFUSAL_AUDIT_ADDRESSES
                    || state.per_address.contains_key(&address) =>
            {
                let bucket = state
                    .per_address
                    .entry(address)
                    .or_insert_with(|| Bucket::full(REFUSAL_AUDIT_BURST, now));
                bucket.refill(now, REFUSAL_AUDIT_RATE, REFUSAL_AUDIT_BURST);
                Some(bucket)
            }
            // Unknown address, or too many addresses still busy: the overall bucket decides.
            _ => None,
        };
        let admitted = state.overall.tokens >= 1.0
            && per_address
                .as_ref()
                .is_none_or(|bucket| bucket.tokens >= 1.0);
        if !admitted {
            state.suppressed += 1;
            return None;
        }
        state.overall.tokens -= 1.0;
        if let Some(bucket) = per_address {
            bucket.tokens -= 1.0;
        }
        Some(std::mem::take(&mut state.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_audited_up_to_a_rate_per_address_and_the_rest_counted() {
        let limit = RefusalAuditLimit::default();
        let start = Instant::now();
        let flood: IpAddr = [10, 0, 0, 1].into();
        let written = (0..1000)
            .filter(|_| limit.admit_at(Some(flood), start).is_some())
            .count();
        assert_eq!(written, REFUSAL_AUDIT_BURST as usize);
        // Another address is not silenced by the first one's flood.
        assert_eq!(limit.admit_at(Some([10, 0, 0, 2].into()), start), Some(950));
        // A second later the flooding address gets its rate back, and the next entry carries
        // the count of what was not written.
        let later = start + Duration::from_secs(1);
        assert_eq!(limit.admit_at(Some(flood), later), Some(0));
        let written = (0..100)
            .filter(|_| limit.admit_at(Some(flood), later).is_some())
            .count();
        assert_eq!(written, REFUSAL_AUDIT_RATE as usize - 1);
        // Many addresses at once: the overall rate bounds them together.
        let many = (0..5000u32)
            .filter(|index| {
                let address = IpAddr::from(index.to_be_bytes());
                limit.admit_at(Some(address), later).is_some()
            })
            .count();
        assert!(many < REFUSAL_AUDIT_OVERALL_BURST as usize, "{many}");
    }

    fn state(rate: f64, burst: f64, concurrency: usize) -> CallerAdmission {
        CallerAdmission::new(CallerLimits {
            requests_per_second: rate,
            burst,
            concurrency,
            request_timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn each_caller_has_its_own_bucket_and_slots() {
        let limits = state(0.001, 3.0, 10);
        let mut permits = Vec::new();
        for _ in 0..3 {
            permits.push(limits.admit("token:a").unwrap());
        }
        let refused = limits.admit("token:a").unwrap_err();
        assert!(refused.contains("over its rate"), "{refused}");
        // Another caller is not affected.
        assert!(limits.admit("token:b").is_ok());

        let limits = state(1000.0, 1000.0, 2);
        let first = limits.admit("cert:c").unwrap();
        let _second = limits.admit("cert:c").unwrap();
        let refused = limits.admit("cert:c").unwrap_err();
        assert!(refused.contains("2 calls in progress"), "{refused}");
        drop(first);
        assert!(limits.admit("cert:c").is_ok());
    }
}
