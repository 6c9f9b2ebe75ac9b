//! Connecting to the aggregator: every client setting in one struct.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// How a client reaches the aggregator.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// `http://host:port`.
    pub endpoint: String,
    pub connect_timeout: Duration,
    /// Applies to unary calls (lookups); ingest streams are bounded per file instead.
    pub request_timeout: Duration,
}

impl ClientSettings {
    pub fn new(endpoint: impl Into<String>) -> ClientSettings {
        ClientSettings {
            endpoint: endpoint.into(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{endpoint:?} is not a valid endpoint URL")]
    InvalidEndpoint {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("cannot connect to the aggregator at {endpoint}")]
    Unreachable {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
}

fn endpoint(settings: &ClientSettings) -> Result<Endpoint, ConnectError> {
    Ok(Endpoint::from_shared(settings.endpoint.clone())
        .map_err(|source| ConnectError::InvalidEndpoint {
            endpoint: settings.endpoint.clone(),
            source,
        })?
        .connect_timeout(settings.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20)))
}

/// A channel for unary calls: each call bounded by the request timeout.
pub async fn connect(settings: &ClientSettings) -> Result<Channel, ConnectError> {
    endpoint(settings)?
        .timeout(settings.request_timeout)
        .connect()
        .await
        .map_err(|source| ConnectError::Unreachable {
            endpoint: settings.endpoint.clone(),
            source,
        })
}

/// The endpoint of ingest streams (no overall timeout: a stream lasts as long as its files
/// take). Each stream gets a connection of its own from it: HTTP/2 streams sharing one
/// connection share its flow-control window, and a stream whose file waits in the aggregator
/// (for another file's uncommitted events) must not starve the stream it waits for.
pub fn stream_endpoint(settings: &ClientSettings) -> Result<Endpoint, ConnectError> {
    endpoint(settings)
}

/// `error: source: source…`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !chain.ends_with(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        source = cause.source();
    }
    chain
}
