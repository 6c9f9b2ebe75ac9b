//! The composition root: the clock, the store, migrations, partitions, the record keys, the
//! domain services and the background work (retention, key refresh, partitions ahead); then
//! the gRPC server (`grpc::serve_grpc`) until told to stop, and the drain.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orgtrail_service_runtime::{error_chain, SharedClock};
use tokio::net::TcpListener;

use crate::alarm_evaluation::AlarmEvaluator;
use crate::alarms::AlarmService;
use crate::archive::ArchiveService;
use crate::auth::Authenticator;
use crate::cloudtrail_api::{self, CloudTrailApi, CloudTrailApiError, LakeQueries};
use crate::config::{AggregatorConfig, RecordProtection};
use crate::crypto::{Keyring, MasterKeys};
use crate::detection::Detectors;
use crate::drain::Drain;
use crate::findings::Findings;
use crate::grpc::{load_tls, serve_grpc, DomainServices, GrpcServeError};
use crate::ingest::{IngestLimits, IngestService};
use crate::insights::evaluation::InsightEvaluator;
use crate::insights::InsightService;
use crate::kms::KmsMaster;
use crate::lookup::EventLookup;
use crate::notify::delivery::{Deliverer, DeliverySettings};
use crate::notify::dispatcher::Dispatcher;
use crate::notify::NotificationService;
use crate::query::QueryService;
use crate::retention::RetentionService;
use crate::sigma_rules::SigmaRules;
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
    #[error("cannot make the built-in alarms")]
    BuiltinAlarms(#[source] crate::alarms::AlarmServiceError),
    #[error("cannot prepare the Sigma rules")]
    Rules(#[source] crate::sigma_rules::RuleServiceError),
    #[error("cannot start the archive: {0}")]
    Archive(String),
    #[error("cannot open query.geoip_file")]
    GeoIp(#[source] orgtrail_sql::GeoIpError),
    #[error(transparent)]
    Grpc(#[from] GrpcServeError),
    #[error(transparent)]
    CloudTrailApi(#[from] CloudTrailApiError),
}

/// How often a replica looks for data keys made by another.
const DATA_KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// How often the partitions ahead of today are topped up.
const PARTITION_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(3600);

/// Prepares the store (migrations, partitions) and serves gRPC until `shutdown` resolves,
/// then drains: no new files, files in flight get the grace period, the rest is rolled back.
/// Every decision by the date reads `clock`.
pub async fn serve(
    config: AggregatorConfig,
    clock: SharedClock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // TLS material is read before anything else: a server that cannot serve securely does
    // not start.
    // So is the keyring: a missing or exposed one stops the start before the database.
    let tls = load_tls(&config.transport)?;
    let cloudtrail_api_tls = match config.cloudtrail_api_listen {
        Some(_) => cloudtrail_api::load_tls(&config.transport)?,
        None => None,
    };
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
    let store = PgStore::connect(&config.database_url, &config.database).await?;
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
            clock.now().date_naive(),
            config.ingest.partitions_ahead_days,
        )
        .await?;
    tracing::info!(partitions, "database ready");
    if !config.ingest.rollups {
        tracing::warn!("the rollups are not kept (ingest.rollups = false, for benchmarks only): the events summary is refused, Insights cannot run, and the rollups miss every event stored meanwhile");
    }

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

    let cloudtrail_api_listener = match config.cloudtrail_api_listen {
        Some(address) => Some(cloudtrail_api::bind(address).await?),
        None => None,
    };

    let drain = Drain::new(config.shutdown_grace());
    tokio::spawn(refresh_data_keys(store.clone(), drain.clone()));
    tokio::spawn(fold_rollups_periodically(
        store.clone(),
        Duration::from_secs(config.ingest.rollup_fold_interval_seconds),
        drain.clone(),
    ));
    tokio::spawn(maintain_partitions(
        store.clone(),
        clock.clone(),
        config.ingest.partitions_ahead_days,
        drain.clone(),
    ));
    tokio::spawn({
        let drain = drain.clone();
        async move {
            shutdown.await;
            drain.start();
            // Logged once draining has started: from this line on no new file is taken.
            tracing::info!(grace = ?drain.grace(), "shutting down: draining");
        }
    });

    let retention = RetentionService::new(
        store.clone(),
        config.retention.clone(),
        runner_name(),
        clock.clone(),
    );
    tokio::spawn(run_retention_periodically(retention.clone(), drain.clone()));

    let alarms = AlarmService::new(store.clone(), clock.clone());
    if config.alarms.cis_builtin {
        let made = alarms
            .ensure_builtin_alarms()
            .await
            .map_err(ServeError::BuiltinAlarms)?;
        if !made.is_empty() {
            tracing::info!(alarms = ?made, "CIS AWS Foundations Benchmark alarms made");
        }
    }
    let rules = SigmaRules::new(store.clone(), clock.clone(), config.detections.clone());
    rules.prepare().await.map_err(ServeError::Rules)?;
    tokio::spawn(
        AlarmEvaluator::new(store.clone(), clock.clone(), config.alarms.clone())
            .run_periodically(drain.clone()),
    );
    let deliverer = Deliverer::new(DeliverySettings {
        timeout: Duration::from_secs(config.notifications.delivery_timeout_seconds),
        sns_endpoint: config.notifications.sns_endpoint.clone(),
        sns_region: None,
    })
    .await;
    tokio::spawn(
        Dispatcher::new(store.clone(), deliverer, config.notifications.clone()).run(drain.clone()),
    );
    let ingest = IngestService::new(
        store.clone(),
        IngestLimits {
            max_request_bytes: config.ingest.max_request_bytes,
            max_record_bytes: config.ingest.max_record_bytes,
        },
        config.ingest.max_concurrent_files,
        Detectors::new(
            clock.clone(),
            chrono::TimeDelta::hours(
                i64::try_from(config.detections.notify_within_hours).unwrap_or(i64::MAX),
            ),
        ),
        config.ingest.rollups,
    );
    let insights = InsightService::new(
        store.clone(),
        clock.clone(),
        config.insights.clone(),
        ingest.clone(),
    );
    if config.insights.enabled {
        tokio::spawn(InsightEvaluator::new(insights.clone()).run_periodically(drain.clone()));
    }
    if let Some(archive) =
        ArchiveService::connect(store.clone(), clock.clone(), config.archive.clone())
            .await
            .map_err(ServeError::Archive)?
    {
        tokio::spawn(archive.run_periodically(drain.clone()));
    }
    let authenticator = Arc::new(Authenticator::new(
        store.clone(),
        config.certificate_roles.clone(),
        clock.clone(),
    ));
    let lookup = EventLookup::new(store.clone(), config.ingest.rollups);
    let query = QueryService::new(store.clone(), &config.query, &config.archive)
        .await
        .map_err(ServeError::GeoIp)?;
    if let Some(listener) = cloudtrail_api_listener {
        let api = CloudTrailApi::new(
            lookup.clone(),
            LakeQueries::new(
                store.clone(),
                query.clone(),
                config.cloudtrail_api.query_results_days,
            ),
            authenticator.clone(),
            config.caller_limits(),
        );
        let address = listener.local_addr().ok();
        tracing::info!(address = ?address, tls = cloudtrail_api_tls.is_some(), "CloudTrail-compatible endpoint listening");
        tokio::spawn(cloudtrail_api::serve_cloudtrail_api(
            listener,
            cloudtrail_api_tls,
            Arc::new(api),
            drain.clone(),
        ));
    }
    let services = DomainServices {
        ingest,
        lookup,
        query,
        sources: SourceRegistry::new(store.clone(), clock.clone()),
        retention,
        alarms,
        notifications: NotificationService::new(store.clone()),
        rules,
        findings: Findings::new(store.clone(), clock),
        insights,
        authenticator,
        store: store.clone(),
    };

    tracing::info!(%address, tls = !matches!(config.transport, crate::config::ServerTransport::Insecure), "listening");
    let outcome = serve_grpc(&config, tls, listener, services, drain).await;
    store.close().await;
    if outcome.is_ok() {
        tracing::info!("stopped");
    }
    Ok(outcome?)
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
                tracing::warn!(error = %error_chain(&error), "retention enforcement failed")
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
            tracing::warn!(error = %error_chain(&error), "cannot refresh the data keys");
        }
    }
}

/// Folds the rollups' deltas every `ingest.rollup_fold_interval_seconds`, until draining starts (what is left is folded by
/// the next replica to start, or by this one's next start).
async fn fold_rollups_periodically(store: PgStore, every: Duration, drain: Drain) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = drain.started() => return,
            _ = interval.tick() => {}
        }
        if let Err(error) = store.fold_rollups().await {
            tracing::warn!(error = %error_chain(&error), "cannot fold the rollups' deltas; the next round tries again");
        }
    }
}

/// Keeps the day partitions ahead of today ready, until draining starts.
async fn maintain_partitions(store: PgStore, clock: SharedClock, ahead_days: u32, drain: Drain) {
    let mut interval = tokio::time::interval(PARTITION_MAINTENANCE_INTERVAL);
    interval.tick().await;
    loop {
        tokio::select! {
            () = drain.started() => return,
            _ = interval.tick() => {}
        }
        let today = clock.now().date_naive();
        if let Err(error) = store.prepare_partitions_ahead(today, ahead_days).await {
            tracing::warn!(error = %error_chain(&error), "cannot prepare partitions ahead");
        }
    }
}
