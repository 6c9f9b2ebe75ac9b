//! What orgtrail's long-running services (the aggregator, the collector) share: the `[log]`
//! settings and the logging they set up, the signals that stop them, and the plaintext probe
//! listeners (gRPC health for Kubernetes, Prometheus metrics); the clock a service is given
//! ([`Clock`]) and the one-line error chains of its logs.

pub mod clock;
mod error_chain;
pub mod metrics;

pub use clock::{Clock, FrozenClock, SharedClock, SystemClock};
pub use error_chain::error_chain;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// The `[log]` section of a service's configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// A tracing filter, e.g. `info` or `orgtrail_aggregator=debug,info`.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    /// One JSON object per line, fields flattened (for log pipelines).
    Json,
}

#[derive(Debug, thiserror::Error)]
#[error("log.level {level:?} is not a tracing filter")]
pub struct InvalidLogLevel {
    level: String,
    #[source]
    source: tracing_subscriber::filter::ParseError,
}

/// Installs the global subscriber: structured events on stderr.
pub fn init_logging(settings: &LogSettings) -> Result<(), InvalidLogLevel> {
    let filter = EnvFilter::try_new(&settings.level).map_err(|source| InvalidLogLevel {
        level: settings.level.clone(),
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

/// Resolves at SIGTERM (Kubernetes stopping the pod) or SIGINT.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// A probe listener's address that cannot be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {source}")]
pub struct ListenError {
    pub address: std::net::SocketAddr,
    pub source: std::io::Error,
}

/// Binds the probe listeners that are configured (so a taken port fails the start) and serves
/// them until the process ends, draining included: `health` alone, in plaintext, on
/// `health_listen` (Kubernetes' gRPC probes cannot speak TLS, and this port carries no data),
/// and the Prometheus metrics on `metrics_listen`.
pub async fn serve_probes(
    health_listen: Option<std::net::SocketAddr>,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    metrics_listen: Option<std::net::SocketAddr>,
) -> Result<(), ListenError> {
    let bind = |address| async move {
        tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| ListenError { address, source })
    };
    if let Some(address) = health_listen {
        let listener = bind(address).await?;
        tracing::info!(%address, "health listener (plaintext, grpc.health.v1 only)");
        tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the health listener stopped");
            }
        });
    }
    if let Some(address) = metrics_listen {
        let listener = bind(address).await?;
        tracing::info!(%address, "metrics listener (GET /metrics)");
        tokio::spawn(metrics::serve(listener));
    }
    Ok(())
}

/// An address in a service's configuration that is not `IP:port`.
#[derive(Debug, thiserror::Error)]
#[error("{field} {value:?} is not an IP address and port: {source}")]
pub struct InvalidAddress {
    pub field: &'static str,
    pub value: String,
    pub source: std::net::AddrParseError,
}

/// An optional listen address of a configuration (`field` names it in the error).
pub fn optional_address(
    field: &'static str,
    value: &Option<String>,
) -> Result<Option<std::net::SocketAddr>, InvalidAddress> {
    value
        .as_ref()
        .map(|value| {
            value.parse().map_err(|source| InvalidAddress {
                field,
                value: value.clone(),
                source,
            })
        })
        .transpose()
}
