//! The composition root: connects the store, builds the domain services and their gRPC
//! adapters, stacks the server layers, serves until told to stop, then drains.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use orgtrail_api::v1 as pb;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tower::layer::util::{Identity, Stack};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::ServiceBuilder;

use crate::config::AggregatorConfig;
use crate::drain::Drain;
use crate::grpc::{AuditAdapter, EventsAdapter, IngestAdapter, RetentionAdapter, SourcesAdapter};
use crate::ingest::{IngestLimits, IngestService};
use crate::lookup::EventLookup;
use crate::retention::RetentionService;
use crate::sources::SourceRegistry;
use crate::store::{PgStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot prepare the database")]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build the reflection service")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed")]
    Transport(#[from] tonic::transport::Error),
    #[error("the server did not stop within {0:?} of the shutdown signal")]
    ShutdownTimeout(Duration),
}

/// HTTP/2 flow-control windows of each stream and of each connection.
const STREAM_WINDOW_BYTES: u32 = 2 << 20;
const CONNECTION_WINDOW_BYTES: u32 = 32 << 20;

/// How often the partitions ahead of today are topped up.
const PARTITION_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(3600);
/// Time allowed after the grace period for connections to close.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(10);

/// Prepares the store (migrations, partitions) and serves gRPC until `shutdown` resolves,
/// then drains: no new files, files in flight get the grace period, the rest is rolled back.
pub async fn serve(
    config: AggregatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store = PgStore::connect(&config).await?;
    store.migrate().await?;
    let partitions = store.load_partitions().await?;
    store
        .prepare_partitions_ahead(
            chrono::Utc::now().date_naive(),
            config.ingest.partitions_ahead_days,
        )
        .await?;
    tracing::info!(partitions, "database ready");

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            address: config.listen,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| ServeError::Bind {
        address: config.listen,
        source,
    })?;

    let drain = Drain::new(config.shutdown_grace());
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    set_health(&health_reporter, ServingStatus::Serving).await;

    tokio::spawn(maintain_partitions(
        store.clone(),
        config.ingest.partitions_ahead_days,
        drain.clone(),
    ));
    tokio::spawn({
        let drain = drain.clone();
        let health_reporter = health_reporter.clone();
        async move {
            shutdown.await;
            tracing::info!(grace = ?drain.grace(), "shutting down: draining");
            drain.start();
            set_health(&health_reporter, ServingStatus::NotServing).await;
        }
    });

    let ingest = IngestService::new(
        store.clone(),
        IngestLimits {
            max_request_bytes: config.ingest.max_request_bytes,
            max_record_bytes: config.ingest.max_record_bytes,
        },
        config.ingest.max_concurrent_files,
    );
    let ingest_server = pb::ingest_service_server::IngestServiceServer::new(IngestAdapter::new(
        ingest,
        drain.clone(),
    ))
    .max_decoding_message_size(config.ingest.max_request_bytes);
    let events_server = pb::event_service_server::EventServiceServer::new(EventsAdapter::new(
        EventLookup::new(store.clone()),
        config.request_timeout(),
    ));
    let sources_server = pb::source_service_server::SourceServiceServer::new(SourcesAdapter::new(
        SourceRegistry::new(store.clone()),
    ));
    let retention = RetentionService::new(store.clone(), config.retention.clone(), runner_name());
    let retention_server = pb::retention_service_server::RetentionServiceServer::new(
        RetentionAdapter::new(retention.clone(), config.request_timeout()),
    );
    let audit_server =
        pb::audit_service_server::AuditServiceServer::new(AuditAdapter::new(retention.clone()));
    tokio::spawn(run_retention_periodically(retention, drain.clone()));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(orgtrail_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    tracing::info!(%address, "listening");
    let server = server_stack(&config)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(ingest_server)
        .add_service(events_server)
        .add_service(sources_server)
        .add_service(retention_server)
        .add_service(audit_server)
        .serve_with_incoming_shutdown(incoming(listener), {
            let drain = drain.clone();
            async move { drain.started().await }
        });

    let limit = drain.grace() + SHUTDOWN_SLACK;
    let outcome = tokio::select! {
        outcome = server => outcome.map_err(ServeError::from),
        () = async { drain.started().await; tokio::time::sleep(limit).await } => Err(ServeError::ShutdownTimeout(limit)),
    };
    store.close().await;
    if outcome.is_ok() {
        tracing::info!("stopped");
    }
    outcome
}

/// The server's tower stack, outermost first:
/// - trace: a span per call, so everything below logs with the method;
/// - load shed: a call that finds the concurrency limit full is refused at once
///   (RESOURCE_EXHAUSTED) instead of queueing without bound; it must sit above the limit;
/// - global concurrency limit: bounds calls in progress across all connections (an ingest
///   stream counts until its response starts; files in flight are bounded in `ingest`).
///
/// Timeouts are per handler (lookups), not a layer: a layer timeout would cut long ingest
/// streams. Authentication joins this stack between trace and load shed.
fn server_stack(config: &AggregatorConfig) -> Server<ServerLayers> {
    Server::builder()
        // Per-stream flow control, and a connection window well above it: a stream whose
        // handler waits (for a lock, for the database) must not take the whole connection's
        // window from the other streams of the same client.
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .trace_fn(|request| tracing::info_span!("grpc", method = %request.uri().path()))
        .layer(
            ServiceBuilder::new()
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(
                    config.server.max_concurrent_requests,
                ))
                .into_inner(),
        )
}

type ServerLayers =
    Stack<Stack<GlobalConcurrencyLimitLayer, Stack<LoadShedLayer, Identity>>, Identity>;

/// The API's services, as health checking names them.
const SERVICE_NAMES: [&str; 5] = [
    <pb::ingest_service_server::IngestServiceServer<IngestAdapter> as NamedService>::NAME,
    <pb::event_service_server::EventServiceServer<EventsAdapter> as NamedService>::NAME,
    <pb::source_service_server::SourceServiceServer<SourcesAdapter> as NamedService>::NAME,
    <pb::retention_service_server::RetentionServiceServer<RetentionAdapter> as NamedService>::NAME,
    <pb::audit_service_server::AuditServiceServer<AuditAdapter> as NamedService>::NAME,
];

async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    for name in SERVICE_NAMES {
        reporter.set_service_status(name, status).await;
    }
}

/// Accepted connections, with Nagle's algorithm off: answers are written in several frames,
/// and Nagle with delayed ACKs would hold the last one back ~40 ms. TCP keepalive finds peers
/// that vanished.
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)))
}

/// Runs retention enforcement every interval, when no other replica is running it, until
/// draining starts.
async fn run_retention_periodically(retention: RetentionService, drain: Drain) {
    let mut interval = tokio::time::interval(retention.interval());
    interval.tick().await;
    loop {
        tokio::select! {
            () = drain.started() => return,
            _ = interval.tick() => {}
        }
        match retention.run_if_free("retention schedule").await {
            Ok(Some(_)) | Ok(None) => {}
            Err(error) => {
                tracing::warn!(error = %crate::grpc::status::error_chain(&error), "retention enforcement failed")
            }
        }
    }
}

/// `<host name>-<process id>`: names this replica in enforcement runs.
fn runner_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}

/// Keeps the day partitions ahead of today ready, until draining starts.
async fn maintain_partitions(store: PgStore, ahead_days: u32, drain: Drain) {
    let mut interval = tokio::time::interval(PARTITION_MAINTENANCE_INTERVAL);
    interval.tick().await;
    loop {
        tokio::select! {
            () = drain.started() => return,
            _ = interval.tick() => {}
        }
        let today = chrono::Utc::now().date_naive();
        if let Err(error) = store.prepare_partitions_ahead(today, ahead_days).await {
            tracing::warn!(error = %crate::grpc::status::error_chain(&error), "cannot prepare partitions ahead");
        }
    }
}
