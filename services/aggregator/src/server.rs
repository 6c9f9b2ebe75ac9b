//! The composition root: connects the store, builds the domain services and their gRPC
//! adapters, stacks the server layers, serves until told to stop, then drains.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orgtrail_api::v1 as pb;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tower::layer::util::{Identity as IdentityLayer, Stack};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::ServiceBuilder;

use crate::auth::{AuthLayer, Authenticator};
use crate::config::{AggregatorConfig, RecordProtection, ServerTransport};
use crate::crypto::{Keyring, MasterKeys};
use crate::drain::Drain;
use crate::grpc::{
    AuditAdapter, EventsAdapter, IngestAdapter, KeysAdapter, QuarantineAdapter, RetentionAdapter,
    SourcesAdapter, TokensAdapter,
};
use crate::ingest::{IngestLimits, IngestService};
use crate::kms::KmsMaster;
use crate::limits::{CallerLimits, LimitLayer};
use crate::lookup::EventLookup;
use crate::retention::RetentionService;
use crate::sources::SourceRegistry;
use crate::store::{EncryptionError, PgStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot prepare the database")]
    Store(#[from] StoreError),
    #[error("cannot open the record encryption keys")]
    Encryption(#[from] EncryptionError),
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
    #[error("cannot read {what} {path}")]
    TlsMaterial {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the TLS material is not usable")]
    Tls(#[source] tonic::transport::Error),
    #[error("the server did not stop within {0:?} of the shutdown signal")]
    ShutdownTimeout(Duration),
}

/// HTTP/2 flow-control windows of each stream and of each connection.
const STREAM_WINDOW_BYTES: u32 = 2 << 20;
const CONNECTION_WINDOW_BYTES: u32 = 32 << 20;

/// A TLS handshake longer than this is abandoned.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a replica looks for data keys made by another.
const DATA_KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

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
    // TLS material is read before anything else: a server that cannot serve securely does
    // not start.
    // So is the keyring: a missing or exposed one stops the start before the database.
    let tls = server_tls(&config.transport)?;
    let master = match &config.protection {
        RecordProtection::Keyring(path) => Some(MasterKeys::Keyring(
            Keyring::load(path).map_err(EncryptionError::from)?,
        )),
        RecordProtection::Kms { kms, keyring } => Some(MasterKeys::Kms {
            keyring: keyring
                .as_deref()
                .map(Keyring::load)
                .transpose()
                .map_err(EncryptionError::from)?,
            kms: KmsMaster::connect(kms).await,
        }),
        RecordProtection::Plaintext => {
            tracing::warn!("storing records in the clear (encryption.plaintext = true): anyone who can read the database can read the events");
            None
        }
    };
    let store = PgStore::connect(&config).await?;
    store.migrate().await?;
    let store = match master {
        Some(master) => {
            let masters = master.describe();
            let store = store.with_encryption(master, &runner_name()).await?;
            tracing::info!(master_keys = %masters, "records are encrypted at rest");
            store
        }
        None => store,
    };
    let partitions = store.load_partitions().await?;
    store
        .prepare_partitions_ahead(
            chrono::Utc::now().date_naive(),
            config.ingest.partitions_ahead_days,
        )
        .await?;
    tracing::info!(partitions, "database ready");

    let listener = bind(config.listen).await?;
    let address = listener.local_addr().map_err(|source| ServeError::Bind {
        address: config.listen,
        source,
    })?;

    let drain = Drain::new(config.shutdown_grace());
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    set_health(&health_reporter, ServingStatus::Serving).await;
    orgtrail_service_runtime::serve_probes(
        config.health_listen,
        health_service.clone(),
        config.metrics_listen,
    )
    .await
    .map_err(|error| ServeError::Bind {
        address: error.address,
        source: error.source,
    })?;

    tokio::spawn(refresh_data_keys(store.clone(), drain.clone()));
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
    ));
    let sources_server = pb::source_service_server::SourceServiceServer::new(SourcesAdapter::new(
        SourceRegistry::new(store.clone()),
    ));
    let retention = RetentionService::new(store.clone(), config.retention.clone(), runner_name());
    let retention_server = pb::retention_service_server::RetentionServiceServer::new(
        RetentionAdapter::new(retention.clone()),
    );
    let audit_server =
        pb::audit_service_server::AuditServiceServer::new(AuditAdapter::new(retention.clone()));
    tokio::spawn(run_retention_periodically(retention, drain.clone()));
    let authenticator = Arc::new(Authenticator::new(
        store.clone(),
        config.certificate_roles.clone(),
    ));
    let quarantine_server = pb::quarantine_service_server::QuarantineServiceServer::new(
        QuarantineAdapter::new(store.clone()),
    );
    let keys_server = pb::key_service_server::KeyServiceServer::new(KeysAdapter::new(
        store.clone(),
        config.reencrypt_batch_size,
    ));
    let tokens_server = pb::token_service_server::TokenServiceServer::new(TokensAdapter::new(
        authenticator.clone(),
        store.clone(),
    ));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(orgtrail_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    tracing::info!(%address, tls = tls.is_some(), "listening");
    let mut builder = server_stack(&config, authenticator);
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).map_err(ServeError::Tls)?;
    }
    let server = builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(ingest_server)
        .add_service(events_server)
        .add_service(sources_server)
        .add_service(retention_server)
        .add_service(audit_server)
        .add_service(tokens_server)
        .add_service(keys_server)
        .add_service(quarantine_server)
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

/// The TLS of the server: its identity, and the CA of client certificates when one is given
/// (a client certificate is then checked when presented, and optional: token callers have
/// none).
fn server_tls(transport: &ServerTransport) -> Result<Option<ServerTlsConfig>, ServeError> {
    let ServerTransport::Tls {
        cert,
        key,
        client_ca,
    } = transport
    else {
        tracing::warn!("serving plaintext gRPC (--insecure): callers' credentials and the events cross the network in the clear");
        return Ok(None);
    };
    let read = |what: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| ServeError::TlsMaterial {
            what,
            path: path.to_path_buf(),
            source,
        })
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(
        read("the server certificate", cert)?,
        read("the server key", key)?,
    ));
    if let Some(client_ca) = client_ca {
        tls = tls
            .client_ca_root(Certificate::from_pem(read("the client CA", client_ca)?))
            .client_auth_optional(true);
    }
    Ok(Some(tls.timeout(TLS_HANDSHAKE_TIMEOUT)))
}

/// The server's tower stack, outermost first:
/// - trace: a span per call, so everything below logs with the method;
/// - auth: the caller and its role (see `auth`); a refused call goes no further;
/// - per-caller limits: rate, calls in progress, and the timeout of unary calls (`limits`);
/// - load shed: a call that finds the concurrency limit full is refused at once
///   (RESOURCE_EXHAUSTED) instead of queueing without bound; it must sit above the limit;
/// - global concurrency limit: bounds calls in progress across all connections (an ingest
///   stream counts until its response starts; files in flight are bounded in `ingest`).
///
/// The limit layer's timeout spares the ingest stream and requested enforcement runs, which
/// are bounded per file and by the run's own wait.
fn server_stack(
    config: &AggregatorConfig,
    authenticator: Arc<Authenticator>,
) -> Server<ServerLayers> {
    Server::builder()
        // Per-stream flow control, and a connection window well above it: a stream whose
        // handler waits (for a lock, for the database) must not take the whole connection's
        // window from the other streams of the same client.
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .trace_fn(|request| tracing::info_span!("grpc", method = %request.uri().path()))
        .layer(
            ServiceBuilder::new()
                .layer(AuthLayer::new(authenticator))
                .layer(LimitLayer::new(CallerLimits {
                    requests_per_second: config.server.per_caller_requests_per_second,
                    burst: f64::from(config.server.per_caller_burst),
                    concurrency: config.server.per_caller_concurrency,
                    request_timeout: config.request_timeout(),
                }))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(
                    config.server.max_concurrent_requests,
                ))
                .into_inner(),
        )
}

type ServerLayers = Stack<
    Stack<
        GlobalConcurrencyLimitLayer,
        Stack<LoadShedLayer, Stack<LimitLayer, Stack<AuthLayer, IdentityLayer>>>,
    >,
    IdentityLayer,
>;

/// The API's services, as health checking names them.
const SERVICE_NAMES: [&str; 8] = [
    <pb::ingest_service_server::IngestServiceServer<IngestAdapter> as NamedService>::NAME,
    <pb::event_service_server::EventServiceServer<EventsAdapter> as NamedService>::NAME,
    <pb::source_service_server::SourceServiceServer<SourcesAdapter> as NamedService>::NAME,
    <pb::retention_service_server::RetentionServiceServer<RetentionAdapter> as NamedService>::NAME,
    <pb::audit_service_server::AuditServiceServer<AuditAdapter> as NamedService>::NAME,
    <pb::token_service_server::TokenServiceServer<TokensAdapter> as NamedService>::NAME,
    <pb::key_service_server::KeyServiceServer<KeysAdapter> as NamedService>::NAME,
    <pb::quarantine_service_server::QuarantineServiceServer<QuarantineAdapter> as NamedService>::NAME,
];

async fn bind(address: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind { address, source })
}

async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    // "" is the server as a whole: what Kubernetes' probes ask.
    reporter.set_service_status("", status).await;
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

/// Picks up data keys other replicas made (a rotation), until draining starts: new records
/// are sealed with the newest key within this interval on every replica.
async fn refresh_data_keys(store: PgStore, drain: Drain) {
    if store.encryption().is_none() {
        return;
    }
    let mut interval = tokio::time::interval(DATA_KEY_REFRESH_INTERVAL);
    interval.tick().await;
    loop {
        tokio::select! {
            () = drain.started() => return,
            _ = interval.tick() => {}
        }
        if let Err(error) = store.refresh_data_keys().await {
            tracing::warn!(error = %crate::grpc::status::error_chain(&error), "cannot refresh the data keys");
        }
    }
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
