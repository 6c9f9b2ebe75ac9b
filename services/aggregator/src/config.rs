//! The aggregator's configuration: a TOML file, then `ORGTRAIL_*` environment variables
//! (nested keys joined by `__`, e.g. `ORGTRAIL_INGEST__MAX_RECORD_BYTES`), then flags — each
//! overriding the one before — validated into [`AggregatorConfig`], the type the program runs on.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use orgtrail_service_runtime::LogSettings;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::role::{Role, UnknownRole};

/// The file and environment as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAggregatorConfig {
    /// Address of the gRPC server.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// PostgreSQL connection URL (a secret: it may hold a password).
    pub database_url: Option<SecretString>,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub ingest: IngestSettings,
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub retention: RetentionSettings,
    #[serde(default)]
    pub tls: TlsSettings,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub encryption: EncryptionSettings,
    #[serde(default)]
    pub alarms: AlarmSettings,
    #[serde(default)]
    pub notifications: NotificationSettings,
    #[serde(default)]
    pub detections: DetectionSettings,
    #[serde(default)]
    pub insights: InsightSettings,
    #[serde(default)]
    pub archive: ArchiveSettings,
    #[serde(default)]
    pub cloudtrail_api: CloudTrailApiSettings,
    #[serde(default)]
    pub query: QuerySettings,
    #[serde(default)]
    pub clock: ClockSettings,
    #[serde(default)]
    pub log: LogSettings,
}

/// The top-level keys, which are also the only `ORGTRAIL_*` variables the aggregator reads (the
/// CLI and the collector share the prefix).
const TOP_LEVEL_KEYS: [&str; 18] = [
    "listen",
    "archive",
    "cloudtrail_api",
    "query",
    "alarms",
    "notifications",
    "detections",
    "insights",
    "clock",
    "encryption",
    "tls",
    "auth",
    "database_url",
    "database",
    "ingest",
    "server",
    "retention",
    "log",
];

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// Connections in the pool; each file being ingested holds one for its transaction.
    pub max_connections: u32,
    pub connect_timeout_seconds: u64,
    /// TLS to PostgreSQL, as libpq names it: disable, prefer, require, verify-ca, verify-full
    /// (recommended wherever the server is not on the same host). An `sslmode` in the URL is
    /// overridden by this.
    pub sslmode: SslMode,
    /// The CA of the server's certificate (PEM), for verify-ca and verify-full.
    pub ssl_root_cert: Option<PathBuf>,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            max_connections: 24,
            connect_timeout_seconds: 10,
            sslmode: SslMode::Prefer,
            ssl_root_cert: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// The largest gRPC message decoded; a larger one fails its stream.
    pub max_request_bytes: usize,
    /// The largest record stored; a larger one is rejected (CloudTrail's own limit is 256 KB).
    pub max_record_bytes: usize,
    /// Files committed at the same time across all streams; more wait their turn.
    pub max_concurrent_files: usize,
    /// Day partitions kept ready ahead of today.
    pub partitions_ahead_days: u32,
    /// Keep the rollups (events per series per minute and per hour) in each file's
    /// transaction. For benchmarks only (`cargo xtask bench insights` measures what they cost):
    /// off, the summary is refused and Insights cannot run; a warning is logged at every start.
    pub rollups: bool,
    /// How often the rollups' hour deltas (each file's hour counts, inserted only) are folded
    /// into one row per hour and per day. Reads are exact whatever it is; it bounds how many
    /// deltas they add up.
    pub rollup_fold_interval_seconds: u64,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            max_request_bytes: 8 << 20,
            max_record_bytes: 1 << 20,
            max_concurrent_files: 16,
            partitions_ahead_days: 7,
            rollups: true,
            rollup_fold_interval_seconds: 1,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Requests and streams served at once; beyond it calls are shed with UNAVAILABLE.
    pub max_concurrent_requests: usize,
    /// Timeout of unary calls (lookups, summaries).
    pub request_timeout_seconds: u64,
    /// On SIGTERM, how long files in flight may take to finish before they are rolled back.
    pub shutdown_grace_seconds: u64,
    /// Per caller (certificate or token): calls per second sustained, the burst above it, and
    /// calls in progress at once; beyond them calls are refused with RESOURCE_EXHAUSTED.
    pub per_caller_requests_per_second: f64,
    pub per_caller_burst: u32,
    pub per_caller_concurrency: usize,
    /// A plaintext listener serving only gRPC health checking (`grpc.health.v1`), for probes
    /// that cannot speak TLS (Kubernetes' gRPC probes). Off unless given.
    pub health_listen: Option<String>,
    /// An HTTP listener serving Prometheus metrics at `/metrics`. Off unless given.
    pub metrics_listen: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_concurrent_requests: 256,
            request_timeout_seconds: 30,
            shutdown_grace_seconds: 30,
            per_caller_requests_per_second: 200.0,
            per_caller_burst: 400,
            per_caller_concurrency: 64,
            health_listen: None,
            metrics_listen: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Days kept for events that no policy matches.
    pub default_retain_days: u32,
    /// Seconds between enforcement runs (one replica runs at a time).
    pub interval_seconds: u64,
    /// Events deleted per batch on a day that cannot be dropped whole (each batch is one short
    /// transaction).
    pub batch_size: u32,
    /// How long a requested run waits for another replica's run to end.
    pub run_wait_seconds: u64,
    /// Per event category, the fewest days any policy may keep it.
    pub floors: BTreeMap<String, u32>,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            default_retain_days: 2557,
            interval_seconds: 3600,
            batch_size: 5000,
            run_wait_seconds: 600,
            floors: BTreeMap::from([("Management".to_string(), 90)]),
        }
    }
}

/// TLS of the gRPC server. Required unless `insecure` says otherwise, on purpose.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// The server's certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// The server's private key (PEM).
    pub key: Option<PathBuf>,
    /// The CA whose client certificates are accepted (collectors, operators); without it
    /// callers authenticate with bearer tokens only.
    pub client_ca: Option<PathBuf>,
    /// Serve plaintext gRPC. Only for trials on one machine: a warning is logged at every start.
    pub insecure: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// A client certificate's name (subject common name or DNS subject alternative name,
    /// compared without case) → its role: "ingest", "reader" or "admin".
    pub certificate_roles: BTreeMap<String, String>,
}

/// Alarms on metric filters.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmSettings {
    /// Seconds after a period ends before it is evaluated (CloudTrail delivers late); a period
    /// evaluated and then changed by late events is evaluated again.
    pub settle_seconds: u64,
    /// Seconds between evaluation rounds (one replica evaluates at a time).
    pub evaluation_interval_seconds: u64,
    /// A transition whose period ended longer ago than this when it was evaluated (a backfill
    /// of old files) is recorded but not notified.
    pub notify_within_hours: u64,
    /// Make the CIS AWS Foundations Benchmark alarms at start if they were never made.
    pub cis_builtin: bool,
}

impl Default for AlarmSettings {
    fn default() -> Self {
        AlarmSettings {
            settle_seconds: 900,
            evaluation_interval_seconds: 60,
            notify_within_hours: 24,
            cis_builtin: true,
        }
    }
}

/// Sigma rules and the findings they raise.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionSettings {
    /// Make SigmaHQ's AWS CloudTrail rules at start when they were never made (one an operator
    /// disabled stays disabled).
    pub sigmahq_rules: bool,
    /// A folder of `*.yml` Sigma rules added (or replaced) at every start (Helm: a ConfigMap).
    pub rules_directory: Option<PathBuf>,
    /// Findings of events older than this when raised (a backfill) are kept but not notified.
    pub notify_within_hours: u64,
}

impl Default for DetectionSettings {
    fn default() -> Self {
        DetectionSettings {
            sigmahq_rules: true,
            rules_directory: None,
            notify_within_hours: 24,
        }
    }
}

/// orgtrail's own Insights (`docs/insights.md`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsightSettings {
    /// Compute Insights from the stored events (on one replica at a time).
    pub enabled: bool,
    /// Seconds after a minute ends before it is evaluated (CloudTrail delivers late); a
    /// minute a late file changes after that is evaluated again.
    pub settle_seconds: u64,
    /// Seconds between evaluation rounds.
    pub evaluation_interval_seconds: u64,
    /// Insights that started longer ago than this when found (a backfill) are kept and raised
    /// as findings, but not notified.
    pub notify_within_hours: u64,
    /// The level of the findings Insights raise (informational … critical).
    pub finding_level: orgtrail_detection::SigmaLevel,
    /// The model's settings: baseline, sensitivity, minimum rate, seasonality, …
    pub model: orgtrail_detection::insights::InsightModel,
}

impl Default for InsightSettings {
    fn default() -> Self {
        InsightSettings {
            enabled: true,
            settle_seconds: 900,
            evaluation_interval_seconds: 60,
            notify_within_hours: 24,
            finding_level: orgtrail_detection::SigmaLevel::Medium,
            model: Default::default(),
        }
    }
}

/// The consolidated archive (`docs/archive.md`): every stored event once, as Parquet objects in
/// an S3 bucket of the security account, partitioned by account, region and day. Off unless
/// a bucket is given.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveSettings {
    /// The archive bucket; none: no archive.
    pub bucket: Option<String>,
    /// The key prefix of every object, without a trailing `/`.
    pub prefix: String,
    /// The bucket's region; by default the AWS SDK's.
    pub region: Option<String>,
    /// An S3-compatible endpoint instead of AWS's (path-style; a test server).
    pub endpoint_url: Option<String>,
    /// Server-side encryption of each object: `aws:kms` (with `kms_key_id`, else the
    /// bucket's or S3's KMS key) or `AES256` (SSE-S3).
    pub server_side_encryption: String,
    /// The KMS key objects are encrypted with (`aws:kms` only).
    pub kms_key_id: Option<String>,
    /// Seconds after an hour of event time ends before it is archived (CloudTrail delivers
    /// late); events arriving later for an archived hour go into an additional object.
    pub settle_seconds: u64,
    /// Seconds between archive rounds (each replica; partitions are locked one at a time).
    pub interval_seconds: u64,
    /// Partitions (account, region, hour) archived per round at most.
    pub partitions_per_round: u32,
    /// The security account's id, named in the archive's digests (`awsAccountId`). From the
    /// environment it reads as a number: it is taken back to its 12 digits.
    #[serde(deserialize_with = "account_id_text")]
    pub account_id: Option<String>,
    /// Seconds of wall-clock time between two digests of the archive (CloudTrail's: an hour).
    pub digest_interval_seconds: u64,
    /// The RSA private key (PEM, PKCS#8 or PKCS#1, 2048 bits or more) that signs the digests…
    pub signing_key_file: Option<PathBuf>,
    /// …or an asymmetric AWS KMS key (RSA_2048 or larger, SIGN_VERIFY) that does, with
    /// `kms:Sign` (RSASSA_PKCS1_V1_5_SHA_256) and `kms:GetPublicKey`.
    pub signing_kms_key_id: Option<String>,
    /// The region of the signing KMS key; by default the archive's.
    pub signing_kms_region: Option<String>,
    /// A KMS endpoint instead of AWS's (a test server).
    pub signing_kms_endpoint: Option<String>,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        ArchiveSettings {
            bucket: None,
            prefix: "orgtrail".into(),
            region: None,
            endpoint_url: None,
            server_side_encryption: "aws:kms".into(),
            kms_key_id: None,
            settle_seconds: 3600,
            interval_seconds: 300,
            partitions_per_round: 500,
            account_id: None,
            digest_interval_seconds: 3600,
            signing_key_file: None,
            signing_kms_key_id: None,
            signing_kms_region: None,
            signing_kms_endpoint: None,
        }
    }
}

/// An account id written as text, or as a number (an environment variable, leading zeros lost).
fn account_id_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Text(String),
        Number(u64),
    }
    Ok(match Option::<Text>::deserialize(deserializer)? {
        Some(Text::Text(text)) => Some(text),
        Some(Text::Number(number)) => Some(format!("{number:012}")),
        None => None,
    })
}

impl ArchiveSettings {
    fn check(&self, rollups: bool) -> Result<(), ConfigError> {
        let invalid = |reason: String| Err(ConfigError::Archive(reason));
        let Some(bucket) = &self.bucket else {
            return Ok(());
        };
        if bucket.is_empty() {
            return invalid("bucket is empty".into());
        }
        if !rollups {
            return invalid(
                "the archive finds its work in the rollups, and ingest.rollups is false".into(),
            );
        }
        match (self.server_side_encryption.as_str(), &self.kms_key_id) {
            ("aws:kms", _) | ("AES256", None) => {}
            ("AES256", Some(_)) => {
                return invalid(
                    "kms_key_id is given with server_side_encryption = \"AES256\"".into(),
                )
            }
            (other, _) => {
                return invalid(format!(
                    "server_side_encryption {other:?} is not \"aws:kms\" or \"AES256\""
                ))
            }
        }
        if self.prefix.starts_with('/') || self.prefix.ends_with('/') {
            return invalid(format!(
                "prefix {:?} must not start or end with /",
                self.prefix
            ));
        }
        match &self.account_id {
            Some(account) if orgtrail_domain::s3_key::is_account_id(account) => {}
            Some(account) => {
                return invalid(format!("account_id {account:?} is not a 12-digit account id"))
            }
            None => {
                return invalid(
                    "account_id is not set: the security account's id, which the archive's digests name"
                        .into(),
                )
            }
        }
        match (&self.signing_key_file, &self.signing_kms_key_id) {
            (Some(_), Some(_)) => {
                return invalid(
                    "signing_key_file and signing_kms_key_id are both given: choose one".into(),
                )
            }
            (None, None) => {
                return invalid(
                    "the archive's digests are signed: give signing_kms_key_id (an asymmetric KMS key) or signing_key_file (an RSA private key, PEM)"
                        .into(),
                )
            }
            _ => {}
        }
        for (field, value) in [
            ("interval_seconds", self.interval_seconds),
            ("partitions_per_round", u64::from(self.partitions_per_round)),
            ("digest_interval_seconds", self.digest_interval_seconds),
        ] {
            if value == 0 {
                return invalid(format!("{field} must be greater than zero"));
            }
        }
        Ok(())
    }
}

/// Delivery of the outbox's notifications.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationSettings {
    /// Attempts before a notification is marked failed (it stays listed, never dropped).
    pub max_attempts: u32,
    /// The first retry waits about this long; each next one twice as long (with jitter)…
    pub backoff_base_seconds: f64,
    /// …up to this.
    pub backoff_max_seconds: f64,
    /// One delivery attempt, connection to answer.
    pub delivery_timeout_seconds: u64,
    /// How often the outbox is looked at for due notifications.
    pub poll_interval_milliseconds: u64,
    /// Deliveries in progress at once on this replica.
    pub concurrency: usize,
    /// Another SNS endpoint (a VPC endpoint, a test server).
    pub sns_endpoint: Option<String>,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            max_attempts: 10,
            backoff_base_seconds: 5.0,
            backoff_max_seconds: 900.0,
            delivery_timeout_seconds: 10,
            poll_interval_milliseconds: 1000,
            concurrency: 4,
            sns_endpoint: None,
        }
    }
}

/// The clock the aggregator decides by (retention cutoffs, expiries, partitions ahead, settle
/// delays). The system's unless frozen — for tests and drills that replay a known moment; a
/// warning is logged at every start when it is.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockSettings {
    /// Read this instant (RFC 3339) as "now", always.
    pub frozen_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Encryption of stored records. Required unless `plaintext` says otherwise, on purpose.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptionSettings {
    /// The keyring file of master keys (0600; `orgtrail-aggregator keys init --keyring PATH`).
    pub keyring: Option<PathBuf>,
    /// An AWS KMS key (id, ARN, alias name or alias ARN) that wraps the data keys (envelope
    /// encryption: `GenerateDataKey` for a new data key, `Decrypt` at start). With a keyring
    /// too, new data keys are wrapped by KMS and the keyring unwraps the older ones.
    pub kms_key_id: Option<String>,
    /// The region of the KMS key; by default the AWS SDK's (AWS_REGION, the profile).
    pub kms_region: Option<String>,
    /// A KMS endpoint instead of AWS's public one (a VPC endpoint, a test server).
    pub kms_endpoint: Option<String>,
    /// Store records in the clear. Only for trials: a warning is logged at every start.
    pub plaintext: bool,
    /// Rows rewritten per transaction when re-encrypting under a new data key.
    pub reencrypt_batch_size: Option<u32>,
}

/// Where records' master keys come from.
#[derive(Clone, Debug)]
pub enum RecordProtection {
    /// Data keys wrapped by the keyring's primary master key.
    Keyring(PathBuf),
    /// Data keys wrapped by KMS; a keyring beside it opens the data keys it wrapped (while
    /// moving from the keyring to KMS).
    Kms {
        kms: KmsSettings,
        keyring: Option<PathBuf>,
    },
    /// In the clear, chosen on purpose.
    Plaintext,
}

/// The AWS KMS key that wraps data keys.
#[derive(Clone, Debug)]
pub struct KmsSettings {
    pub key_id: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
}

/// How the server speaks to its callers.
/// The CloudTrail-compatible endpoint (`docs/cloudtrail-api.md`): AWS JSON 1.1 over HTTPS with
/// SigV4, served with the gRPC server's TLS on a port of its own. Off unless `listen` is given.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudTrailApiSettings {
    /// e.g. `0.0.0.0:8443`.
    pub listen: Option<String>,
    /// Days the results of Lake's queries (`StartQuery`) are kept, as Lake keeps them 7.
    pub query_results_days: u32,
}

impl Default for CloudTrailApiSettings {
    fn default() -> Self {
        CloudTrailApiSettings {
            listen: None,
            query_results_days: 7,
        }
    }
}

/// SQL over the whole history (`docs/sql.md`): the limits of each query, and where the
/// archive's objects are kept once fetched.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuerySettings {
    /// Result rows of one query; more is an error, not a silent cut.
    pub max_rows: usize,
    /// Memory of one query's sorts, joins and aggregates, in MiB.
    pub max_memory_mb: usize,
    /// Wall time of one query.
    pub timeout_seconds: u64,
    /// Events not archived yet that one query may read (they are held in memory).
    pub max_recent_events: u64,
    /// Where archived objects are kept once fetched (immutable: fetched again only once
    /// evicted); by default `orgtrail-archive-cache` in the system's temporary directory.
    pub cache_directory: Option<PathBuf>,
    /// The most the cache holds, in MiB; past it the least recently used objects no running
    /// query reads are removed.
    pub cache_max_mb: u64,
    /// Parsed footers of archive objects kept in memory between queries, in MiB; 0: none. Pays
    /// only when it holds the footers of every object repeated queries read (under 24 KiB
    /// each, measured): a smaller cache costs more than it saves (docs/sql.md).
    pub metadata_cache_mb: usize,
    /// A GeoIP country database in MaxMind's format (GeoLite2-Country, GeoIP2-Country, or
    /// DB-IP's IP-to-Country Lite) for SQL's `ip_country(sourceipaddress)`; none: the function
    /// fails, saying so.
    pub geoip_file: Option<PathBuf>,
}

impl Default for QuerySettings {
    fn default() -> Self {
        QuerySettings {
            max_rows: 100_000,
            max_memory_mb: 512,
            // Under the server's request timeout (30 s), so the query's own error comes first.
            timeout_seconds: 25,
            max_recent_events: 2_000_000,
            cache_directory: None,
            cache_max_mb: 4096,
            metadata_cache_mb: 0,
            geoip_file: None,
        }
    }
}

impl QuerySettings {
    pub fn cache_directory(&self) -> PathBuf {
        self.cache_directory
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("orgtrail-archive-cache"))
    }
}

#[derive(Clone, Debug)]
pub enum ServerTransport {
    Tls {
        cert: PathBuf,
        key: PathBuf,
        client_ca: Option<PathBuf>,
    },
    /// Plaintext, chosen on purpose.
    Insecure,
}

fn default_listen() -> String {
    "0.0.0.0:50051".into()
}

/// Values given as flags; they win over the file and the environment.
#[derive(Clone, Debug, Default)]
pub struct ConfigOverrides {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    /// `--insecure`: plaintext gRPC.
    pub insecure: bool,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct AggregatorConfig {
    pub listen: SocketAddr,
    /// The CloudTrail-compatible endpoint's address; `None`: not served.
    pub cloudtrail_api_listen: Option<SocketAddr>,
    pub cloudtrail_api: CloudTrailApiSettings,
    pub health_listen: Option<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub database_url: SecretString,
    pub database: DatabaseSettings,
    pub ingest: IngestSettings,
    pub server: ServerSettings,
    pub retention: RetentionSettings,
    pub transport: ServerTransport,
    pub protection: RecordProtection,
    pub reencrypt_batch_size: u32,
    /// Certificate names (lower case) → roles.
    pub certificate_roles: BTreeMap<String, Role>,
    pub alarms: AlarmSettings,
    pub notifications: NotificationSettings,
    pub detections: DetectionSettings,
    pub insights: InsightSettings,
    pub archive: ArchiveSettings,
    pub query: QuerySettings,
    /// `Some` only when frozen on purpose (`clock.frozen_at`).
    pub clock_frozen_at: Option<chrono::DateTime<chrono::Utc>>,
    pub log: LogSettings,
}

impl AggregatorConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.server.request_timeout_seconds)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_grace_seconds)
    }

    /// What each caller may do: gRPC callers and CloudTrail-API access keys alike.
    pub fn caller_limits(&self) -> crate::rate_limits::CallerLimits {
        crate::rate_limits::CallerLimits {
            requests_per_second: self.server.per_caller_requests_per_second,
            burst: f64::from(self.server.per_caller_burst),
            concurrency: self.server.per_caller_concurrency,
            request_timeout: self.request_timeout(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("insights: {0}")]
    Insights(String),
    #[error("archive: {0}")]
    Archive(String),
    #[error("insights.enabled needs the rollups, and ingest.rollups is false (a setting for benchmarks only): set insights.enabled = false, or keep ingest.rollups = true")]
    InsightsWithoutRollups,
    #[error("database_url is not set: give --database-url, ORGTRAIL_DATABASE_URL or database_url in the configuration file")]
    MissingDatabaseUrl,
    #[error(transparent)]
    InvalidAddress(#[from] orgtrail_service_runtime::InvalidAddress),
    #[error("listen address {value:?} is not an IP address and port: {source}")]
    InvalidListen {
        value: String,
        source: std::net::AddrParseError,
    },
    #[error("{field} must be greater than zero")]
    Zero { field: &'static str },
    #[error(
        "ingest.max_record_bytes ({record}) must not exceed ingest.max_request_bytes ({request})"
    )]
    RecordOverRequest { record: usize, request: usize },
    #[error("retention.default_retain_days ({days}) is under the floor of {floor} days for {category} events")]
    DefaultUnderFloor {
        days: u32,
        floor: u32,
        category: String,
    },
    #[error(
        "retention floor category {0:?} is not one of Management, Data, Insight, NetworkActivity"
    )]
    UnknownFloorCategory(String),
    #[error("TLS is required: give tls.cert and tls.key (the server's certificate and key, PEM; tls.client_ca for client certificates), or serve plaintext on purpose with --insecure or tls.insecure = true")]
    MissingTls,
    #[error("records must be encrypted at rest: give encryption.keyring (make one with `orgtrail-aggregator keys init --keyring PATH`) or encryption.kms_key_id (an AWS KMS key), or store them in the clear on purpose with encryption.plaintext = true")]
    MissingEncryption,
    #[error("encryption.plaintext is set and a keyring or KMS key is given too: choose one")]
    PlaintextWithKeyring,
    #[error("encryption.{0} is given without encryption.kms_key_id")]
    KmsSettingWithoutKey(&'static str),
    #[error("plaintext is asked for (--insecure or tls.insecure) and TLS files are given too: choose one")]
    InsecureWithTls,
    #[error("tls.{0} is given without tls.{1}")]
    HalfTls(&'static str, &'static str),
    #[error("auth.certificate_roles[{name:?}]: {source}")]
    InvalidRole { name: String, source: UnknownRole },
    #[error("database.max_connections ({connections}) must exceed ingest.max_concurrent_files ({files}): each file in flight holds a connection")]
    PoolTooSmall { connections: u32, files: usize },
}

/// Reads the file (if any), the environment and the flags, and validates the result.
pub fn load_config(
    file: Option<&Path>,
    overrides: &ConfigOverrides,
) -> Result<AggregatorConfig, ConfigError> {
    let mut figment = Figment::new();
    if let Some(file) = file {
        figment = figment.merge(Toml::file_exact(file));
    }
    figment = figment.merge(Env::prefixed("ORGTRAIL_").split("__").filter(|key| {
        // The key may already be split ("log.format") or not ("log__format").
        let key = key.as_str().to_ascii_lowercase().replace("__", ".");
        let top = key.split('.').next().unwrap_or_default();
        TOP_LEVEL_KEYS.contains(&top)
    }));
    if let Some(listen) = &overrides.listen {
        figment = figment.merge(Serialized::default("listen", listen));
    }
    if let Some(database_url) = &overrides.database_url {
        figment = figment.merge(Serialized::default("database_url", database_url));
    }
    if overrides.insecure {
        figment = figment.merge(Serialized::default("tls.insecure", true));
    }
    let raw: RawAggregatorConfig = figment.extract().map_err(Box::new)?;
    raw.validate()
}

impl RawAggregatorConfig {
    pub fn validate(mut self) -> Result<AggregatorConfig, ConfigError> {
        let listen = self
            .listen
            .parse()
            .map_err(|source| ConfigError::InvalidListen {
                value: self.listen.clone(),
                source,
            })?;
        let database_url = self.database_url.ok_or(ConfigError::MissingDatabaseUrl)?;
        let health_listen = orgtrail_service_runtime::optional_address(
            "server.health_listen",
            &self.server.health_listen,
        )?;
        let metrics_listen = orgtrail_service_runtime::optional_address(
            "server.metrics_listen",
            &self.server.metrics_listen,
        )?;
        let cloudtrail_api_listen = orgtrail_service_runtime::optional_address(
            "cloudtrail_api.listen",
            &self.cloudtrail_api.listen,
        )?;
        let positive = [
            ("ingest.max_request_bytes", self.ingest.max_request_bytes),
            ("ingest.max_record_bytes", self.ingest.max_record_bytes),
            (
                "ingest.max_concurrent_files",
                self.ingest.max_concurrent_files,
            ),
            (
                "server.max_concurrent_requests",
                self.server.max_concurrent_requests,
            ),
            (
                "server.request_timeout_seconds",
                self.server.request_timeout_seconds as usize,
            ),
            (
                "database.max_connections",
                self.database.max_connections as usize,
            ),
            (
                "server.per_caller_burst",
                self.server.per_caller_burst as usize,
            ),
            (
                "server.per_caller_concurrency",
                self.server.per_caller_concurrency,
            ),
            (
                "alarms.evaluation_interval_seconds",
                self.alarms.evaluation_interval_seconds as usize,
            ),
            (
                "notifications.max_attempts",
                self.notifications.max_attempts as usize,
            ),
            (
                "notifications.delivery_timeout_seconds",
                self.notifications.delivery_timeout_seconds as usize,
            ),
            (
                "notifications.poll_interval_milliseconds",
                self.notifications.poll_interval_milliseconds as usize,
            ),
            ("notifications.concurrency", self.notifications.concurrency),
            ("query.max_rows", self.query.max_rows),
            ("query.max_memory_mb", self.query.max_memory_mb),
            ("query.timeout_seconds", self.query.timeout_seconds as usize),
            (
                "insights.evaluation_interval_seconds",
                self.insights.evaluation_interval_seconds as usize,
            ),
            (
                "ingest.rollup_fold_interval_seconds",
                self.ingest.rollup_fold_interval_seconds as usize,
            ),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Zero { field });
        }
        self.insights
            .model
            .validate()
            .map_err(|error| ConfigError::Insights(error.to_string()))?;
        if self.insights.enabled && !self.ingest.rollups {
            return Err(ConfigError::InsightsWithoutRollups);
        }
        self.archive.check(self.ingest.rollups)?;
        if self.ingest.max_record_bytes > self.ingest.max_request_bytes {
            return Err(ConfigError::RecordOverRequest {
                record: self.ingest.max_record_bytes,
                request: self.ingest.max_request_bytes,
            });
        }
        if self.database.max_connections as usize <= self.ingest.max_concurrent_files {
            return Err(ConfigError::PoolTooSmall {
                connections: self.database.max_connections,
                files: self.ingest.max_concurrent_files,
            });
        }
        // Categories by their CloudTrail names. Environment keys arrive lower-cased and come
        // from the last layer, so a key spelled otherwise than the name wins over the name.
        let mut given_floors: Vec<(String, u32)> = std::mem::take(&mut self.retention.floors)
            .into_iter()
            .collect();
        given_floors.sort_by_key(|(given, _)| {
            !["Management", "Data", "Insight", "NetworkActivity"].contains(&given.as_str())
        });
        let mut floors = BTreeMap::new();
        for (given, floor) in given_floors {
            let category = ["Management", "Data", "Insight", "NetworkActivity"]
                .into_iter()
                .find(|name| name.eq_ignore_ascii_case(&given))
                .ok_or_else(|| ConfigError::UnknownFloorCategory(given.clone()))?;
            if self.retention.default_retain_days < floor {
                return Err(ConfigError::DefaultUnderFloor {
                    days: self.retention.default_retain_days,
                    floor,
                    category: category.to_string(),
                });
            }
            floors.insert(category.to_string(), floor);
        }
        self.retention.floors = floors;
        let transport = match (self.tls.cert, self.tls.key, self.tls.insecure) {
            (Some(_), _, true) | (_, Some(_), true) => return Err(ConfigError::InsecureWithTls),
            (Some(cert), Some(key), false) => ServerTransport::Tls {
                cert,
                key,
                client_ca: self.tls.client_ca,
            },
            (Some(_), None, false) => return Err(ConfigError::HalfTls("cert", "key")),
            (None, Some(_), false) => return Err(ConfigError::HalfTls("key", "cert")),
            (None, None, true) => ServerTransport::Insecure,
            (None, None, false) => return Err(ConfigError::MissingTls),
        };
        for (field, seconds) in [
            (
                "notifications.backoff_base_seconds",
                self.notifications.backoff_base_seconds,
            ),
            (
                "notifications.backoff_max_seconds",
                self.notifications.backoff_max_seconds,
            ),
        ] {
            if !(seconds.is_finite() && seconds > 0.0) {
                return Err(ConfigError::Zero { field });
            }
        }
        let rate = self.server.per_caller_requests_per_second;
        if rate.is_nan() || rate <= 0.0 {
            return Err(ConfigError::Zero {
                field: "server.per_caller_requests_per_second",
            });
        }
        let encryption = self.encryption;
        let kms = match encryption.kms_key_id.filter(|id| !id.trim().is_empty()) {
            Some(key_id) => Some(KmsSettings {
                key_id: key_id.trim().to_string(),
                region: encryption.kms_region,
                endpoint: encryption.kms_endpoint,
            }),
            None if encryption.kms_region.is_some() => {
                return Err(ConfigError::KmsSettingWithoutKey("kms_region"))
            }
            None if encryption.kms_endpoint.is_some() => {
                return Err(ConfigError::KmsSettingWithoutKey("kms_endpoint"))
            }
            None => None,
        };
        let protection = match (encryption.keyring, kms, encryption.plaintext) {
            (None, None, true) => RecordProtection::Plaintext,
            (_, _, true) => return Err(ConfigError::PlaintextWithKeyring),
            (None, None, false) => return Err(ConfigError::MissingEncryption),
            (keyring, Some(kms), false) => RecordProtection::Kms { kms, keyring },
            (Some(keyring), None, false) => RecordProtection::Keyring(keyring),
        };
        let reencrypt_batch_size = encryption.reencrypt_batch_size.unwrap_or(1000);
        if reencrypt_batch_size == 0 {
            return Err(ConfigError::Zero {
                field: "encryption.reencrypt_batch_size",
            });
        }
        let mut certificate_roles = BTreeMap::new();
        for (name, role) in self.auth.certificate_roles {
            let role = role.parse().map_err(|source| ConfigError::InvalidRole {
                name: name.clone(),
                source,
            })?;
            certificate_roles.insert(name.to_ascii_lowercase(), role);
        }
        Ok(AggregatorConfig {
            listen,
            cloudtrail_api_listen,
            cloudtrail_api: self.cloudtrail_api.clone(),
            health_listen,
            metrics_listen,
            database_url,
            database: self.database,
            ingest: self.ingest,
            server: self.server,
            retention: self.retention,
            transport,
            protection,
            reencrypt_batch_size,
            certificate_roles,
            alarms: self.alarms,
            notifications: self.notifications,
            detections: self.detections,
            insights: self.insights,
            archive: self.archive,
            query: self.query,
            clock_frozen_at: self.clock.frozen_at,
            log: self.log,
        })
    }
}

#[cfg(test)]
// figment's error type is large, and its test API (Jail) returns it.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_loads() {
        // In a jail: another test's ORGTRAIL_* variables must not leak in.
        figment::Jail::expect_with(|_jail| {
            let example =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/aggregator.example.toml");
            let config = load_config(Some(&example), &ConfigOverrides::default())
                .map_err(|error| error.to_string())?;
            assert_eq!(config.listen.port(), 50051);
            Ok(())
        });
    }

    #[test]
    fn tls_is_required_unless_refused_on_purpose() {
        let base = "database_url = \"postgres://h/db\"\n[encryption]\nplaintext = true\n";
        let error = toml_like(base).unwrap().validate().unwrap_err();
        assert!(matches!(error, ConfigError::MissingTls), "{error}");
        assert!(error.to_string().contains("--insecure"), "{error}");
        let error = toml_like(&format!("{base}[tls]\ncert = \"c.pem\""))
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            matches!(error, ConfigError::HalfTls("cert", "key")),
            "{error}"
        );
        let config = toml_like(&format!(
            "{base}[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\n[auth.certificate_roles]\nCollector-1 = \"ingest\""
        ))
        .unwrap()
        .validate()
        .unwrap();
        assert!(matches!(
            config.transport,
            ServerTransport::Tls {
                client_ca: Some(_),
                ..
            }
        ));
        assert_eq!(
            config.certificate_roles.get("collector-1"),
            Some(&Role::Ingest)
        );
        let error = toml_like(&format!(
            "{base}[tls]\ninsecure = true\n[auth.certificate_roles]\nx = \"root\""
        ))
        .unwrap()
        .validate()
        .unwrap_err();
        assert!(
            error.to_string().contains("\"root\" is not a role"),
            "{error}"
        );
    }

    #[test]
    fn the_clock_is_the_systems_unless_frozen_in_the_file_or_the_environment() {
        let base = "database_url = \"postgres://h/db\"\n[encryption]\nplaintext = true\n[tls]\ninsecure = true\n";
        let config = toml_like(base).unwrap().validate().unwrap();
        assert_eq!(config.clock_frozen_at, None);
        let config = toml_like(&format!(
            "{base}[clock]\nfrozen_at = \"2026-11-30T12:00:00Z\""
        ))
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(
            config.clock_frozen_at.map(|time| time.to_rfc3339()),
            Some("2026-11-30T12:00:00+00:00".to_string())
        );
        let refused: Result<RawAggregatorConfig, _> =
            toml_like(&format!("{base}[clock]\nfrozen_at = \"yesterday\""));
        assert!(refused.is_err());
        figment::Jail::expect_with(|jail| {
            jail.set_env("ORGTRAIL_DATABASE_URL", "postgres://env/db");
            jail.set_env("ORGTRAIL_TLS__INSECURE", "true");
            jail.set_env("ORGTRAIL_ENCRYPTION__PLAINTEXT", "true");
            jail.set_env("ORGTRAIL_CLOCK__FROZEN_AT", "2027-01-22T08:30:00Z");
            let config = load_config(None, &ConfigOverrides::default())
                .map_err(|error| error.to_string())?;
            assert_eq!(
                config.clock_frozen_at.map(|time| time.to_rfc3339()),
                Some("2027-01-22T08:30:00+00:00".to_string())
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_the_reason() {
        let raw: Result<RawAggregatorConfig, _> = toml_like("listen = \"x\"\nlisten_port = 1");
        let message = raw.unwrap_err().to_string();
        assert!(message.contains("listen_port"), "{message}");
        let error = toml_like("listen = \"nowhere\"\ndatabase_url = \"postgres://h/db\"")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(error
            .to_string()
            .starts_with("listen address \"nowhere\" is not an IP address and port"));
        let error = toml_like("listen = \"127.0.0.1:1\"")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(matches!(error, ConfigError::MissingDatabaseUrl));
        let error =
            toml_like("database_url = \"postgres://h/db\"\n[ingest]\nmax_record_bytes = 99999999")
                .unwrap()
                .validate()
                .unwrap_err();
        assert!(matches!(error, ConfigError::RecordOverRequest { .. }));
    }

    #[test]
    fn nested_settings_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ORGTRAIL_LOG__FORMAT", "json");
            jail.set_env("ORGTRAIL_INGEST__MAX_RECORD_BYTES", "1000");
            jail.set_env("ORGTRAIL_RETENTION__DEFAULT_RETAIN_DAYS", "3650");
            jail.set_env("ORGTRAIL_RETENTION__FLOORS__DATA", "30");
            jail.set_env("ORGTRAIL_DATABASE_URL", "postgres://env/db");
            jail.set_env("ORGTRAIL_ENDPOINT", "http://the-cli-setting");
            jail.set_env("ORGTRAIL_TLS__INSECURE", "true");
            jail.set_env("ORGTRAIL_ENCRYPTION__PLAINTEXT", "true");
            jail.set_env(
                "ORGTRAIL_AUTH__CERTIFICATE_ROLES__ORGTRAIL-COLLECTOR",
                "ingest",
            );
            let config = load_config(None, &ConfigOverrides::default())
                .map_err(|error| error.to_string())?;
            assert_eq!(config.log.format, orgtrail_service_runtime::LogFormat::Json);
            assert_eq!(config.ingest.max_record_bytes, 1000);
            assert_eq!(config.retention.default_retain_days, 3650);
            assert_eq!(
                config.retention.floors,
                // Floors that are given replace the default set as a whole.
                BTreeMap::from([("Data".to_string(), 30)])
            );
            assert!(matches!(config.transport, ServerTransport::Insecure));
            assert_eq!(
                config.certificate_roles,
                BTreeMap::from([("orgtrail-collector".to_string(), Role::Ingest)])
            );
            Ok(())
        });
    }

    #[test]
    fn flags_win_over_the_file() {
        // In a jail: another test's ORGTRAIL_* variables must not leak in.
        figment::Jail::expect_with(|_jail| {
            let overrides = ConfigOverrides {
                listen: Some("127.0.0.1:7".into()),
                database_url: Some("postgres://flag/db".into()),
                insecure: false,
            };
            let example =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/aggregator.example.toml");
            let config = load_config(Some(&example), &overrides).unwrap();
            assert_eq!(config.listen.to_string(), "127.0.0.1:7");
            use secrecy::ExposeSecret;
            assert_eq!(config.database_url.expose_secret(), "postgres://flag/db");
            // Plaintext and TLS files at once is a contradiction, refused.
            let error = load_config(
                Some(&example),
                &ConfigOverrides {
                    insecure: true,
                    ..ConfigOverrides::default()
                },
            )
            .unwrap_err();
            assert!(matches!(error, ConfigError::InsecureWithTls), "{error}");
            Ok(())
        });
    }

    #[test]
    fn records_are_sealed_by_a_keyring_kms_or_both_and_never_silently_in_the_clear() {
        let base = "database_url = \"postgres://h/db\"\n[tls]\ninsecure = true\n[encryption]\n";
        let config = |extra: &str| toml_like(&format!("{base}{extra}")).unwrap().validate();
        match config("kms_key_id = \"alias/a\"\nkms_region = \"eu-west-1\"")
            .unwrap()
            .protection
        {
            RecordProtection::Kms { kms, keyring: None } => {
                assert_eq!(kms.key_id, "alias/a");
                assert_eq!(kms.region.as_deref(), Some("eu-west-1"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            config("keyring = \"/k\"\nkms_key_id = \"k\"")
                .unwrap()
                .protection,
            RecordProtection::Kms {
                keyring: Some(_),
                ..
            }
        ));
        for (extra, wanted) in [
            ("", "records must be encrypted at rest"),
            ("kms_key_id = \"  \"", "records must be encrypted at rest"),
            ("kms_key_id = \"k\"\nplaintext = true", "choose one"),
            (
                "kms_region = \"eu-west-1\"",
                "encryption.kms_region is given without encryption.kms_key_id",
            ),
            (
                "keyring = \"/k\"\nkms_endpoint = \"http://x\"",
                "encryption.kms_endpoint is given without",
            ),
        ] {
            let error = config(extra).unwrap_err().to_string();
            assert!(error.contains(wanted), "{extra:?}: {error}");
        }
    }

    #[test]
    fn rollups_off_is_refused_while_insights_are_on() {
        let base = "database_url = \"postgres://h/db\"\n[tls]\ninsecure = true\n[encryption]\nplaintext = true\n";
        let config = toml_like(base).unwrap().validate().unwrap();
        assert!(config.ingest.rollups, "the rollups are on by default");
        let error = toml_like(&format!("{base}[ingest]\nrollups = false"))
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            matches!(error, ConfigError::InsightsWithoutRollups),
            "{error}"
        );
        assert!(
            error.to_string().contains("set insights.enabled = false"),
            "{error}"
        );
        let config = toml_like(&format!(
            "{base}[ingest]\nrollups = false\n[insights]\nenabled = false"
        ))
        .unwrap()
        .validate()
        .unwrap();
        assert!(!config.ingest.rollups);
        assert!(!config.insights.enabled);
    }

    #[test]
    fn probe_listeners_are_addresses() {
        let base = "database_url = \"postgres://h/db\"\n[tls]\ninsecure = true\n[encryption]\nplaintext = true\n[server]\n";
        let config = toml_like(&format!(
            "{base}health_listen = \"0.0.0.0:8081\"\nmetrics_listen = \"127.0.0.1:9090\""
        ))
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(
            config.health_listen.map(|address| address.port()),
            Some(8081)
        );
        assert_eq!(
            config.metrics_listen.map(|address| address.port()),
            Some(9090)
        );
        let error = toml_like(&format!("{base}health_listen = \"8081\""))
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("server.health_listen \"8081\" is not an IP address and port"),
            "{error}"
        );
    }

    #[test]
    fn an_archive_needs_its_account_and_one_signing_key() {
        let base = "database_url = \"postgres://h/db\"\n[encryption]\nplaintext = true\n[tls]\ninsecure = true\n[archive]\nbucket = \"archive\"\n";
        let signed = "account_id = \"012345678901\"\nsigning_kms_key_id = \"alias/sign\"\n";
        let config = toml_like(&format!("{base}{signed}"))
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(config.archive.account_id.as_deref(), Some("012345678901"));
        let cases = [
            (String::new(), "account_id is not set"),
            (
                "account_id = \"12\"\nsigning_kms_key_id = \"k\"\n".into(),
                "not a 12-digit",
            ),
            (
                "account_id = \"012345678901\"\n".into(),
                "signing_kms_key_id",
            ),
            (
                format!("{signed}signing_key_file = \"k.pem\"\n"),
                "choose one",
            ),
            (
                format!("{signed}server_side_encryption = \"AES256\"\nkms_key_id = \"k\"\n"),
                "AES256",
            ),
            (
                format!("{signed}server_side_encryption = \"none\"\n"),
                "is not",
            ),
            (
                format!("{signed}prefix = \"a/\"\n"),
                "must not start or end with /",
            ),
            (
                format!("{signed}digest_interval_seconds = 0\n"),
                "greater than zero",
            ),
        ];
        for (extra, message) in cases {
            let error = toml_like(&format!("{base}{extra}"))
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(error.contains(message), "{extra:?}: {error}");
        }
        // From the environment the account id reads as a number; its leading zero comes back.
        figment::Jail::expect_with(|jail| {
            jail.set_env("ORGTRAIL_ARCHIVE__ACCOUNT_ID", "012345678901");
            let raw: RawAggregatorConfig = Figment::new()
                .merge(Toml::string(&format!("{base}signing_kms_key_id = \"k\"\n")))
                .merge(
                    Env::prefixed("ORGTRAIL_ARCHIVE__")
                        .map(|key| format!("archive.{}", key.as_str()).into()),
                )
                .extract()?;
            let config = raw.validate().map_err(|error| error.to_string())?;
            assert_eq!(config.archive.account_id.as_deref(), Some("012345678901"));
            Ok(())
        });
        // Without a bucket, none of it is asked for.
        let plain = "database_url = \"postgres://h/db\"\n[encryption]\nplaintext = true\n[tls]\ninsecure = true\n";
        assert!(toml_like(plain)
            .unwrap()
            .validate()
            .unwrap()
            .archive
            .bucket
            .is_none());
    }

    fn toml_like(text: &str) -> Result<RawAggregatorConfig, figment::Error> {
        Figment::new().merge(Toml::string(text)).extract()
    }
}
