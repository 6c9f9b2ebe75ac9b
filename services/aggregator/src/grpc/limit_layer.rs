//! Per-caller limits, one tower layer behind authentication: a rate (a token bucket per
//! caller), calls in progress per caller, and a timeout on every unary call. A call over a
//! limit is refused at once with RESOURCE_EXHAUSTED naming the limit; one over its time gets
//! DEADLINE_EXCEEDED. One noisy caller cannot take the service from the others. The
//! admission itself is `rate_limits::CallerAdmission`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use crate::auth::Caller;
use crate::rate_limits::{CallerAdmission, CallerLimits};

/// Methods that run long by design and keep their own bounds: the ingest stream (per file)
/// and a requested enforcement run (the run's own wait).
const LONG_METHODS: [&str; 2] = [
    "/orgtrail.v1.IngestService/Ingest",
    "/orgtrail.v1.RetentionService/RunEnforcement",
];

#[derive(Clone)]
pub struct LimitLayer {
    admission: Arc<CallerAdmission>,
}

impl LimitLayer {
    pub fn new(limits: CallerLimits) -> LimitLayer {
        LimitLayer {
            admission: Arc::new(CallerAdmission::new(limits)),
        }
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = LimitService<S>;
    fn layer(&self, inner: S) -> LimitService<S> {
        LimitService {
            inner,
            admission: self.admission.clone(),
        }
    }
}

#[derive(Clone)]
pub struct LimitService<S> {
    inner: S,
    admission: Arc<CallerAdmission>,
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
        let admission = self.admission.clone();
        Box::pin(async move {
            let Some(caller) = caller else {
                return inner.call(request).await;
            };
            let permit = match admission.admit(&caller) {
                Ok(permit) => permit,
                Err(reason) => {
                    tracing::warn!(%caller, method, %reason, "call over a limit");
                    return Ok(tonic::Status::resource_exhausted(reason).into_http());
                }
            };
            let response = if LONG_METHODS.contains(&method.as_str()) {
                inner.call(request).await
            } else {
                let timeout = admission.limits().request_timeout;
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
