//! PostgreSQL: the only code of the aggregator that knows SQL. Owns the schema (the one
//! [`MIGRATOR`] over `migrations/`), the file ledger, the events and their day partitions.

mod alarms;
mod archive;
mod enforcement;
mod events;
mod findings;
mod insights;
mod integrity;
mod keys;
mod lake_queries;
mod log_files;
mod notifications;
mod partitions;
mod quarantine;
mod query_snapshot;
mod retention;
mod rollups;
mod rules;
mod session_lock;
mod sources;
mod summary;
mod tokens;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{PgPool, Postgres, Transaction};

pub use alarms::{
    detection_generation, enabled_alarm_definitions, insert_alarm_matches, AlarmMatchRow,
    BuiltinAlarm, EvaluationOutcome, MinuteMatches, NewTransition, StoredAlarm, StoredTransition,
};
pub use archive::{
    ArchiveObject, ArchivePartition, StoredArchiveDigest, StoredArchiveObject,
    MAX_RECORDED_PRINCIPALS,
};
pub use enforcement::{BatchOutcome, PartitionDrop, RetentionRules, RunCounts};
pub use events::{insert_events, EventBatchInsert};
pub use findings::{
    level_rank, live_suppressions, raise_findings, FindingFilter, NewFinding, RaisedFindings,
    StoredFinding, StoredSuppression, FINDING_LEVELS,
};
pub use insights::{
    minute_start, unix_minute, EpisodeFilter, EpisodeWrite, InsightApi, InsightProgress,
    StoredEpisode, StoredInsightSetting,
};
pub use integrity::{
    IntegrityReport, IntegrityState, LogFileCheck, RecordedIntegrity, ReportedProblem,
};
pub use keys::{Encryption, EncryptionError, ReencryptBatch, StoredDataKey};
pub use lake_queries::{LakeOutcome, LakeQuery};
pub use log_files::{
    complete_log_file, take_log_file, FileCounts, LedgerEntry, NewLogFile, PreviousLogFile,
};
pub use notifications::{
    enqueue_notification, ClaimedNotification, DeliveryOutcome, DestinationSecrets,
    NewNotification, OpenedDestination, StoredDestination, StoredNotification,
};
pub use partitions::{lock_partitions, EventPartitions};
pub use quarantine::{quarantine_items, QuarantineEntry, QuarantineItem, QuarantineOrigin};
pub use query_snapshot::QuerySnapshot;
pub use retention::{AuditEntry, PolicyContent, StoredHold, StoredPolicy};
pub use rollups::{add_rollups, hour_of, minute_of, RollupDelta, SeriesIds, SeriesKey};
pub use rules::{enabled_rules, RuleContent, RuleWrite, StoredRule};
pub use session_lock::{
    SessionLock, ALARM_EVALUATION_LOCK, ARCHIVE_DIGEST_LOCK, ENFORCEMENT_LOCK,
    INSIGHT_EVALUATION_LOCK,
};
pub use sources::{ListedFile, SourceLease, SourceOutcome, SourceReport, SourceStatusRow};
pub use tokens::{AccessKeyCredential, NewAccessKey, StoredToken, TokenCredential};

use crate::config::{DatabaseSettings, SslMode};

/// The schema, applied at start under sqlx's advisory lock, so replicas starting together
/// migrate once.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// The store: a connection pool and what it knows of the partitions.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    partitions: std::sync::Arc<EventPartitions>,
    /// The rollup series' ids seen so far.
    series_ids: std::sync::Arc<SeriesIds>,
    /// Record encryption; `None` only when turned off on purpose.
    encryption: Option<std::sync::Arc<Encryption>>,
}

/// A transaction that spans one log file: its ledger row and its events.
pub type FileTransaction = Transaction<'static, Postgres>;

impl PgStore {
    /// Connects (bounded by the configured timeout) without touching the schema.
    pub async fn connect(
        database_url: &SecretString,
        settings: &DatabaseSettings,
    ) -> Result<PgStore, StoreError> {
        let options: PgConnectOptions = database_url
            .expose_secret()
            .parse()
            .map_err(StoreError::InvalidUrl)?;
        // A file's transaction stays open while its sender streams it; a sender gone silent
        // must not hold the file's rows (and whoever waits on them) forever.
        let mut options = options.ssl_mode(pg_ssl_mode(settings.sslmode));
        if let Some(root_cert) = &settings.ssl_root_cert {
            options = options.ssl_root_cert(root_cert);
        }
        let options = options
            .application_name("orgtrail-aggregator")
            .options([("idle_in_transaction_session_timeout", "300s")]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(Duration::from_secs(settings.connect_timeout_seconds))
            .connect_with(options)
            .await
            .map_err(StoreError::Connect)?;
        Ok(PgStore::from_pool(pool))
    }

    pub fn from_pool(pool: PgPool) -> PgStore {
        PgStore {
            pool,
            partitions: std::sync::Arc::new(EventPartitions::default()),
            series_ids: std::sync::Arc::default(),
            encryption: None,
        }
    }

    /// Applies the migrations that are not applied yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(StoreError::Migrate)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The rollup series' ids this replica has seen (for [`add_rollups`]).
    pub fn series_ids(&self) -> &SeriesIds {
        &self.series_ids
    }

    pub async fn begin_file_transaction(&self) -> Result<FileTransaction, StoreError> {
        self.pool.begin().await.map_err(convert_sqlx_error)
    }

    /// Commits a file's transaction: its ledger row and its events become durable together.
    pub async fn commit_file_transaction(transaction: FileTransaction) -> Result<(), StoreError> {
        transaction.commit().await.map_err(convert_sqlx_error)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// libpq's `sslmode`, as the configuration names it.
fn pg_ssl_mode(mode: SslMode) -> PgSslMode {
    match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require => PgSslMode::Require,
        SslMode::VerifyCa => PgSslMode::VerifyCa,
        SslMode::VerifyFull => PgSslMode::VerifyFull,
    }
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database URL is not valid")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("cannot connect to PostgreSQL")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply the schema migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("PostgreSQL is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("the transaction conflicted with another one")]
    Conflict(#[source] sqlx::Error),
    #[error("no partition holds an event of this batch (a partition was dropped meanwhile)")]
    MissingPartition(#[source] sqlx::Error),
    #[error("record encryption: {0}")]
    Encryption(String),
    #[error("a stored row is not what this version expects: {0}")]
    CorruptRow(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} exists already")]
    AlreadyExists(String),
    #[error("{0}")]
    VersionConflict(String),
    #[error("a unique constraint was violated")]
    UniqueViolation(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    /// Whether the same work may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Connect(_)
                | StoreError::Unavailable(_)
                | StoreError::Conflict(_)
                | StoreError::MissingPartition(_)
        )
    }
}

/// SQLSTATEs the store tells apart.
mod sqlstate {
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const DEADLOCK_DETECTED: &str = "40P01";
    /// `no partition of relation "events" found for row`.
    pub const CHECK_VIOLATION: &str = "23514";
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    pub const CRASH_SHUTDOWN: &str = "57P02";
    pub const CANNOT_CONNECT_NOW: &str = "57P03";
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    pub const UNIQUE_VIOLATION: &str = "23505";
}

/// The one place driver errors become store errors.
pub fn convert_sqlx_error(error: sqlx::Error) -> StoreError {
    let code = error
        .as_database_error()
        .and_then(|database_error| database_error.code())
        .map(|code| code.into_owned());
    match (code.as_deref(), &error) {
        (Some(sqlstate::SERIALIZATION_FAILURE | sqlstate::DEADLOCK_DETECTED), _) => {
            StoreError::Conflict(error)
        }
        (Some(sqlstate::UNIQUE_VIOLATION), _) => StoreError::UniqueViolation(error),
        (Some(sqlstate::CHECK_VIOLATION), _) if error.to_string().contains("no partition") => {
            StoreError::MissingPartition(error)
        }
        (
            Some(
                sqlstate::ADMIN_SHUTDOWN
                | sqlstate::CRASH_SHUTDOWN
                | sqlstate::CANNOT_CONNECT_NOW
                | sqlstate::TOO_MANY_CONNECTIONS,
            ),
            _,
        ) => StoreError::Unavailable(error),
        (
            _,
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_),
        ) => StoreError::Unavailable(error),
        _ => StoreError::Database(error),
    }
}
