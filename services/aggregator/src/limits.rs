//! Per-caller limits, one tower layer behind authentication: a rate (a token bucket per
//! caller), calls in progress per caller, and a timeout on every unary call. A call over a
//! limit is refused at once with RESOURCE_EXHAUSTED naming the limit; one over its time gets
//! DEADLINE_EXCEEDED. One noisy caller cannot take the service from the others.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::auth::Caller;

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

/// Methods that run long by design and keep their own bounds: the ingest stream (per file)
/// and a requested enforcement run (the run's own wait).
const LONG_METHODS: [&str; 2] = [
    "/orgtrail.v1.IngestService/Ingest",
    "/orgtrail.v1.RetentionService/RunEnforcement",
];

struct CallerState {
    tokens: f64,
    updated: Instant,
    in_progress: Arc<Semaphore>,
}

struct LimitState {
    limits: CallerLimits,
    callers: Mutex<HashMap<String, CallerState>>,
}

impl LimitState {
    /// Takes a token and a slot for `caller`, or says which limit it is over.
    fn admit(&self, caller: &str) -> Result<tokio::sync::OwnedSemaphorePermit, String> {
        let Ok(mut callers) = self.callers.lock() else {
            return Err("the limiter is unavailable".into());
        };
        let now = Instant::now();
        let state = callers
            .entry(caller.to_string())
            .or_insert_with(|| CallerState {
                tokens: self.limits.burst,
                updated: now,
                in_progress: Arc::new(Semaphore::new(self.limits.concurrency)),
            });
        let elapsed = now.duration_since(state.updated).as_secs_f64();
        state.tokens =
            (state.tokens + elapsed * self.limits.requests_per_second).min(self.limits.burst);
        state.updated = now;
        if state.tokens < 1.0 {
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
        state.tokens -= 1.0;
        Ok(permit)
    }
}

#[derive(Clone)]
pub struct LimitLayer {
    state: Arc<LimitState>,
}

impl LimitLayer {
    pub fn new(limits: CallerLimits) -> LimitLayer {
        LimitLayer {
            state: Arc::new(LimitState {
                limits,
                callers: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = LimitService<S>;
    fn layer(&self, inner: S) -> LimitService<S> {
        LimitService {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct LimitService<S> {
    inner: S,
    state: Arc<LimitState>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for LimitService<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    RequestBody: Send + 'static,
    ResponseBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        // Public calls (health checking) carry no caller and are not limited here.
        let caller = request
            .extensions()
            .get::<Caller>()
            .map(|caller| caller.identity.clone());
        let method = request.uri().path().to_string();
        let state = self.state.clone();
        Box::pin(async move {
            let Some(caller) = caller else {
                return inner.call(request).await;
            };
            let permit = match state.admit(&caller) {
                Ok(permit) => permit,
                Err(reason) => {
                    tracing::warn!(%caller, method, %reason, "call over a limit");
                    return Ok(tonic::Status::resource_exhausted(reason).into_http());
                }
            };
            let response = if LONG_METHODS.contains(&method.as_str()) {
                inner.call(request).await
            } else {
                let timeout = state.limits.request_timeout;
                match tokio::time::timeout(timeout, inner.call(request)).await {
                    Ok(response) => response,
                    Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                        "{method} took longer than {timeout:?}"
                    ))
                    .into_http()),
                }
            };
            drop(permit);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(rate: f64, burst: f64, concurrency: usize) -> LimitState {
        LimitState {
            limits: CallerLimits {
                requests_per_second: rate,
                burst,
                concurrency,
                request_timeout: Duration::from_secs(1),
            },
            callers: Mutex::new(HashMap::new()),
        }
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
