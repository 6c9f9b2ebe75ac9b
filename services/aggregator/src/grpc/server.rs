//! The gRPC server: TLS, the tower stack in front of every service (`server_stack`), the
//! services and their adapters, health checking (also on the plaintext probe listener) and
//! reflection, and serving until draining starts. The composition root (`crate::server`)
//! builds the domain services and hands them over in [`DomainServices`].

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

use super::auth_layer::AuthLayer;
use super::limit_layer::LimitLayer;
use super::{
    AlarmsAdapter, AuditAdapter, EventsAdapter, FindingsAdapter, IngestAdapter, InsightsAdapter,
    KeysAdapter, NotificationsAdapter, QuarantineAdapter, QueryAdapter, RetentionAdapter,
    RulesAdapter, SourcesAdapter, TokensAdapter,
};
use crate::alarms::AlarmService;
use crate::auth::Authenticator;
use crate::config::{AggregatorConfig, ServerTransport};
use crate::drain::Drain;
use crate::findings::Findings;
use crate::ingest::IngestService;
use crate::insights::InsightService;
use crate::lookup::EventLookup;
use crate::notify::NotificationService;
use crate::query::QueryService;
use crate::retention::RetentionService;
use crate::sigma_rules::SigmaRules;
use crate::sources::SourceRegistry;
use crate::store::PgStore;

#[derive(Debug, thiserror::Error)]
pub enum GrpcServeError {
    #[error("cannot read {what} {path}")]
    TlsMaterial {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the TLS material is not usable")]
    Tls(#[source] tonic::transport::Error),
    #[error("cannot listen on {address}")]
    ProbeBind {
        address: std::net::SocketAddr,
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

/// A TLS handshake longer than this is abandoned.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed after the grace period for connections to close.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(10);

/// The server's TLS, read from its files; `None` inner when plaintext was chosen on purpose.
pub struct GrpcTls(Option<ServerTlsConfig>);

/// The domain services the API serves.
pub struct DomainServices {
    pub ingest: IngestService,
    pub lookup: EventLookup,
    pub sources: SourceRegistry,
    pub retention: RetentionService,
    pub alarms: AlarmService,
    pub notifications: NotificationService,
    pub rules: SigmaRules,
    pub findings: Findings,
    pub insights: InsightService,
    pub query: QueryService,
    pub authenticator: Arc<Authenticator>,
    /// Keys, quarantine and tokens are served straight from the store.
    pub store: PgStore,
}

/// The TLS of the server: its identity, and the CA of client certificates when one is given
/// (a client certificate is then checked when presented, and optional: token callers have
/// none). Read before anything else: a server that cannot serve securely does not start.
pub fn load_tls(transport: &ServerTransport) -> Result<GrpcTls, GrpcServeError> {
    let ServerTransport::Tls {
        cert,
        key,
        client_ca,
    } = transport
    else {
        tracing::warn!("serving plaintext gRPC (--insecure): callers' credentials and the events cross the network in the clear");
        return Ok(GrpcTls(None));
    };
    let read = |what: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| GrpcServeError::TlsMaterial {
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
    Ok(GrpcTls(Some(tls.timeout(TLS_HANDSHAKE_TIMEOUT))))
}

/// Serves the API on `listener` (and health on the probe listeners) until draining starts,
/// then lets calls in flight finish within the grace period.
pub async fn serve_grpc(
    config: &AggregatorConfig,
    tls: GrpcTls,
    listener: TcpListener,
    services: DomainServices,
    drain: Drain,
) -> Result<(), GrpcServeError> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    set_health(&health_reporter, ServingStatus::Serving).await;
    orgtrail_service_runtime::serve_probes(
        config.health_listen,
        health_service.clone(),
        config.metrics_listen,
    )
    .await
    .map_err(|error| GrpcServeError::ProbeBind {
        address: error.address,
        source: error.source,
    })?;
    tokio::spawn({
        let drain = drain.clone();
        async move {
            drain.started().await;
            set_health(&health_reporter, ServingStatus::NotServing).await;
        }
    });

    let DomainServices {
        ingest,
        lookup,
        sources,
        retention,
        alarms,
        notifications,
        rules,
        findings,
        insights,
        query,
        authenticator,
        store,
    } = services;
    let ingest_server = pb::ingest_service_server::IngestServiceServer::new(IngestAdapter::new(
        ingest,
        drain.clone(),
    ))
    .max_decoding_message_size(config.ingest.max_request_bytes);
    let events_server =
        pb::event_service_server::EventServiceServer::new(EventsAdapter::new(lookup));
    let sources_server =
        pb::source_service_server::SourceServiceServer::new(SourcesAdapter::new(sources));
    let retention_server = pb::retention_service_server::RetentionServiceServer::new(
        RetentionAdapter::new(retention.clone()),
    );
    let audit_server =
        pb::audit_service_server::AuditServiceServer::new(AuditAdapter::new(retention));
    let alarms_server =
        pb::alarm_service_server::AlarmServiceServer::new(AlarmsAdapter::new(alarms));
    let notifications_server = pb::notification_service_server::NotificationServiceServer::new(
        NotificationsAdapter::new(notifications),
    );
    let rules_server = pb::rule_service_server::RuleServiceServer::new(RulesAdapter::new(rules));
    let findings_server =
        pb::finding_service_server::FindingServiceServer::new(FindingsAdapter::new(findings));
    let insights_server =
        pb::insight_service_server::InsightServiceServer::new(InsightsAdapter::new(insights));
    let query_server = pb::query_service_server::QueryServiceServer::new(QueryAdapter::new(query));
    let quarantine_server = pb::quarantine_service_server::QuarantineServiceServer::new(
        QuarantineAdapter::new(store.clone()),
    );
    let keys_server = pb::key_service_server::KeyServiceServer::new(KeysAdapter::new(
        store.clone(),
        config.reencrypt_batch_size,
    ));
    let tokens_server = pb::token_service_server::TokenServiceServer::new(TokensAdapter::new(
        authenticator.clone(),
        store,
    ));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(orgtrail_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let mut builder = server_stack(config, authenticator);
    if let GrpcTls(Some(tls)) = tls {
        builder = builder.tls_config(tls).map_err(GrpcServeError::Tls)?;
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
        .add_service(alarms_server)
        .add_service(notifications_server)
        .add_service(rules_server)
        .add_service(findings_server)
        .add_service(insights_server)
        .add_service(query_server)
        .serve_with_incoming_shutdown(incoming(listener), {
            let drain = drain.clone();
            async move { drain.started().await }
        });

    let limit = drain.grace() + SHUTDOWN_SLACK;
    tokio::select! {
        outcome = server => outcome.map_err(GrpcServeError::from),
        () = async { drain.started().await; tokio::time::sleep(limit).await } => Err(GrpcServeError::ShutdownTimeout(limit)),
    }
}

/// The server's tower stack, outermost first:
/// - trace: a span per call, so everything below logs with the method;
/// - auth: the caller and its role (`auth_layer`); a refused call goes no further;
/// - per-caller limits: rate, calls in progress, and the timeout of unary calls (`limit_layer`);
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
                .layer(LimitLayer::new(config.caller_limits()))
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
const SERVICE_NAMES: [&str; 14] = [
    <pb::ingest_service_server::IngestServiceServer<IngestAdapter> as NamedService>::NAME,
    <pb::event_service_server::EventServiceServer<EventsAdapter> as NamedService>::NAME,
    <pb::source_service_server::SourceServiceServer<SourcesAdapter> as NamedService>::NAME,
    <pb::retention_service_server::RetentionServiceServer<RetentionAdapter> as NamedService>::NAME,
    <pb::audit_service_server::AuditServiceServer<AuditAdapter> as NamedService>::NAME,
    <pb::token_service_server::TokenServiceServer<TokensAdapter> as NamedService>::NAME,
    <pb::key_service_server::KeyServiceServer<KeysAdapter> as NamedService>::NAME,
    <pb::quarantine_service_server::QuarantineServiceServer<QuarantineAdapter> as NamedService>::NAME,
    <pb::alarm_service_server::AlarmServiceServer<AlarmsAdapter> as NamedService>::NAME,
    <pb::notification_service_server::NotificationServiceServer<NotificationsAdapter> as NamedService>::NAME,
    <pb::rule_service_server::RuleServiceServer<RulesAdapter> as NamedService>::NAME,
    <pb::finding_service_server::FindingServiceServer<FindingsAdapter> as NamedService>::NAME,
    <pb::insight_service_server::InsightServiceServer<InsightsAdapter> as NamedService>::NAME,
    <pb::query_service_server::QueryServiceServer<QueryAdapter> as NamedService>::NAME,
];

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
