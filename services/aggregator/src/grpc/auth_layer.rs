//! [`AuthLayer`]: the tower layer in front of every service. It reads what a call presents
//! (the `authorization` header, the TLS client certificate, the remote address), asks
//! `auth::Authenticator` for the caller and the table for the role the method needs, hands
//! the [`Caller`] to the handler in the request's extensions, and answers the rest with
//! UNAUTHENTICATED or PERMISSION_DENIED (`status::refusal_status`), each refusal audited.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

use super::status::refusal_status;
use crate::auth::{required_access, Access, Authenticator, Authorization, Caller, Presented};

/// The layer of [`AuthService`].
#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
}

impl AuthLayer {
    pub fn new(authenticator: Arc<Authenticator>) -> AuthLayer {
        AuthLayer { authenticator }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

/// Authenticates and authorises every call before it reaches a service.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for AuthService<S>
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

    fn call(&mut self, mut request: http::Request<RequestBody>) -> Self::Future {
        // The service that was polled ready serves this call; its clone waits for the next.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let authenticator = self.authenticator.clone();
        Box::pin(async move {
            let method = request.uri().path().to_string();
            let required = match required_access(&method) {
                Access::Public => return inner.call(request).await,
                Access::Needs(role) => role,
            };
            let presented = presented(&request);
            let address = presented.address;
            match authenticator.authorize(&method, required, presented).await {
                Ok(caller) => {
                    request.extensions_mut().insert::<Caller>(caller);
                    inner.call(request).await
                }
                Err(refusal) => {
                    tracing::warn!(method, reason = %refusal, "call refused");
                    let status = refusal_status(&refusal);
                    crate::metrics::call_refused(&format!("{:?}", status.code()));
                    authenticator
                        .record_refusal(&refusal, &method, address)
                        .await;
                    Ok(status.into_http())
                }
            }
        })
    }
}

/// What a request presents.
fn presented<B>(request: &http::Request<B>) -> Presented {
    Presented {
        authorization: request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|value| match value.to_str() {
                Ok(text) => Authorization::Text(text.to_string()),
                Err(_) => Authorization::NotText,
            }),
        certificate: request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|info| info.peer_certs())
            .and_then(|chain| chain.first().map(|leaf| leaf.to_vec())),
        address: remote_address(request),
    }
}

fn remote_address<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|info| info.get_ref().remote_addr())
        .or_else(|| {
            extensions
                .get::<TcpConnectInfo>()
                .and_then(TcpConnectInfo::remote_addr)
        })
}
