//! The collector's configuration: a TOML file, then `ORGTRAIL_*` environment variables
//! (nested keys joined by `__`), validated into [`CollectorConfig`]; source templates over
//! member accounts are expanded here into one source per account.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use orgtrail_client::{ClientSettings, TlsFiles, Transport};
use orgtrail_domain::s3_key::is_account_id;
use orgtrail_service_runtime::LogSettings;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The file and environment as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCollectorConfig {
    /// Names this collector in leases, status and AssumeRole session names; unique among the
    /// running collectors. Default: host name and process id.
    pub collector_id: Option<String>,
    /// Seconds between passes over the sources.
    #[serde(default = "default_poll_interval_seconds")]
    pub poll_interval_seconds: u64,
    /// How long a source lease lasts unless renewed; a dead collector's sources are taken over
    /// within it.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u32,
    /// Days before the newest file already taken that each pass lists again, for files
    /// CloudTrail delivers late (their keys sort before newer ones).
    #[serde(default = "default_trailing_window_days")]
    pub trailing_window_days: u32,
    /// Sources read at the same time.
    #[serde(default = "default_max_concurrent_sources")]
    pub max_concurrent_sources: usize,
    /// A plaintext listener serving only gRPC health checking (for Kubernetes' probes):
    /// SERVING while passes run. Off unless given.
    pub health_listen: Option<String>,
    /// An HTTP listener serving Prometheus metrics at `/metrics`. Off unless given.
    pub metrics_listen: Option<String>,
    pub aggregator: RawAggregatorSettings,
    #[serde(default)]
    pub aws: AwsSettings,
    #[serde(default)]
    pub integrity: IntegritySettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub sources: Vec<RawSource>,
}

const TOP_LEVEL_KEYS: [&str; 12] = [
    "integrity",
    "collector_id",
    "health_listen",
    "metrics_listen",
    "poll_interval_seconds",
    "lease_seconds",
    "trailing_window_days",
    "max_concurrent_sources",
    "aggregator",
    "aws",
    "log",
    "sources",
];

fn default_poll_interval_seconds() -> u64 {
    60
}
fn default_lease_seconds() -> u32 {
    60
}
fn default_trailing_window_days() -> u32 {
    1
}
fn default_max_concurrent_sources() -> usize {
    4
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAggregatorSettings {
    /// `https://host:port` of the aggregator (`http://` only with `insecure`).
    pub endpoint: String,
    /// The CA of the aggregator's certificate (PEM); without it, the public web PKI.
    pub ca: Option<PathBuf>,
    /// This collector's client certificate and key (PEM): its identity for mutual TLS; the
    /// aggregator's `auth.certificate_roles` gives it the ingest role.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the aggregator's certificate must carry, when not the endpoint's host.
    pub tls_domain: Option<String>,
    /// A bearer token with the ingest role, instead of a client certificate (a secret: prefer
    /// ORGTRAIL_AGGREGATOR__TOKEN).
    pub token: Option<SecretString>,
    /// Plaintext gRPC to an aggregator started with --insecure (a warning at every start).
    #[serde(default)]
    pub insecure: bool,
    /// Ingest streams per source being read.
    #[serde(default = "default_streams")]
    pub streams: usize,
}

fn default_streams() -> usize {
    2
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// The region of STS calls and the default for sources (else the default chain's).
    pub region: Option<String>,
    /// An S3- and STS-compatible endpoint instead of AWS (path-style S3 addressing).
    pub endpoint_url: Option<String>,
}

/// Digest validation: every account and region whose trail writes digest files
/// (`CloudTrail-Digest/`) is validated after each pass.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegritySettings {
    /// Validate digests. On by default; a region without digests is left unchecked.
    #[serde(default = "default_true")]
    pub validate_digests: bool,
    /// CloudTrail's public keys, as `aws cloudtrail list-public-keys` prints them: for offline
    /// validation. Without it they are asked of CloudTrail (`ListPublicKeys`) per region.
    pub public_keys_file: Option<PathBuf>,
    /// Log files read from S3 and hashed at a time (those the ledger has no hash of).
    #[serde(default = "default_hash_concurrency")]
    pub hash_concurrency: usize,
}

impl Default for IntegritySettings {
    fn default() -> IntegritySettings {
        IntegritySettings {
            validate_digests: true,
            public_keys_file: None,
            hash_concurrency: default_hash_concurrency(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_hash_concurrency() -> usize {
    8
}

/// A source as written: `{account}` in its name, bucket, prefix or role makes it a template
/// expanded once per account of `accounts`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub name: String,
    pub bucket: String,
    pub bucket_region: Option<String>,
    #[serde(default)]
    pub prefix: String,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    /// Files delivered before this day are not read on a first pass.
    pub since: Option<NaiveDate>,
    /// The trail whose digests validate the source, when several trails deliver digests to
    /// the same account and region folder.
    pub trail: Option<String>,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct CollectorConfig {
    pub collector_id: String,
    pub poll_interval: Duration,
    pub lease_seconds: u32,
    pub trailing_window_days: u32,
    pub max_concurrent_sources: usize,
    pub health_listen: Option<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub aggregator: ClientSettings,
    pub streams: usize,
    pub aws: AwsSettings,
    pub integrity: IntegrityConfig,
    pub log: LogSettings,
    pub sources: Vec<SourceConfig>,
}

/// Digest validation, validated: the public keys file read.
#[derive(Clone, Debug)]
pub struct IntegrityConfig {
    pub validate_digests: bool,
    /// From `public_keys_file`; `None`: ask CloudTrail.
    pub public_keys: Option<orgtrail_integrity::PublicKeys>,
    pub hash_concurrency: usize,
}

/// One place CloudTrail log files arrive, after template expansion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceConfig {
    pub name: String,
    pub bucket: String,
    pub bucket_region: Option<String>,
    /// Without a trailing `/`; empty when the trail has no prefix.
    pub prefix: String,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    /// Only these accounts; all found in the listing when empty.
    pub accounts: BTreeSet<String>,
    /// Only these regions; all found in the listing when empty.
    pub regions: BTreeSet<String>,
    pub since: Option<NaiveDate>,
    pub trail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("source {name:?}: {reason}")]
    InvalidSource { name: String, reason: String },
    #[error("two sources are named {0:?}")]
    DuplicateSource(String),
    #[error("{field} must be greater than zero")]
    Zero { field: &'static str },
    #[error("lease_seconds {0} is outside 5 to 3600")]
    LeaseSeconds(u32),
    #[error("collector_id {0:?} must be 1 to 48 characters of letters, digits and . _ @ = , + -")]
    CollectorId(String),
    #[error("aggregator.endpoint {0:?} is not an http:// or https:// URL")]
    Endpoint(String),
    #[error("aggregator: {0}")]
    Transport(String),
    #[error("integrity.public_keys_file {path}: {reason}")]
    PublicKeys { path: PathBuf, reason: String },
    #[error(transparent)]
    InvalidAddress(#[from] orgtrail_service_runtime::InvalidAddress),
}

/// Reads the file and the environment and validates the result.
/// `insecure` (the `--insecure` flag) sets `aggregator.insecure`.
pub fn load_config(file: Option<&Path>, insecure: bool) -> Result<CollectorConfig, ConfigError> {
    let mut figment = Figment::new();
    if let Some(file) = file {
        figment = figment.merge(Toml::file_exact(file));
    }
    figment = figment.merge(Env::prefixed("ORGTRAIL_").split("__").filter(|key| {
        let key = key.as_str().to_ascii_lowercase().replace("__", ".");
        let top = key.split('.').next().unwrap_or_default();
        TOP_LEVEL_KEYS.contains(&top)
    }));
    if insecure {
        figment = figment.merge(Serialized::default("aggregator.insecure", true));
    }
    let raw: RawCollectorConfig = figment.extract().map_err(Box::new)?;
    raw.validate()
}

impl RawCollectorConfig {
    pub fn validate(self) -> Result<CollectorConfig, ConfigError> {
        let collector_id = match self.collector_id {
            Some(id) => id,
            None => default_collector_id(),
        };
        let valid_id = (1..=48).contains(&collector_id.len())
            && collector_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._@=,+-".contains(c));
        if !valid_id {
            return Err(ConfigError::CollectorId(collector_id));
        }
        if !(5..=3600).contains(&self.lease_seconds) {
            return Err(ConfigError::LeaseSeconds(self.lease_seconds));
        }
        for (field, value) in [
            ("poll_interval_seconds", self.poll_interval_seconds as usize),
            ("max_concurrent_sources", self.max_concurrent_sources),
            ("aggregator.streams", self.aggregator.streams),
            (
                "integrity.hash_concurrency",
                self.integrity.hash_concurrency,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        let raw_aggregator = self.aggregator;
        let endpoint = raw_aggregator.endpoint;
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(ConfigError::Endpoint(endpoint));
        }
        let transport = if raw_aggregator.insecure {
            Transport::Insecure
        } else {
            if raw_aggregator.cert.is_some() != raw_aggregator.key.is_some() {
                return Err(ConfigError::Transport(
                    "cert and key go together: give both or neither".into(),
                ));
            }
            Transport::Tls(TlsFiles {
                ca: raw_aggregator.ca,
                cert: raw_aggregator.cert,
                key: raw_aggregator.key,
                domain: raw_aggregator.tls_domain,
            })
        };
        let aggregator = ClientSettings::new(endpoint, transport).with_token(
            raw_aggregator
                .token
                .map(|token| token.expose_secret().to_string()),
        );
        aggregator
            .url()
            .map_err(|error| ConfigError::Transport(error.to_string()))?;
        let mut sources = Vec::new();
        for raw in self.sources {
            sources.extend(expand_source(raw)?);
        }
        let mut names = BTreeSet::new();
        for source in &sources {
            if !names.insert(source.name.clone()) {
                return Err(ConfigError::DuplicateSource(source.name.clone()));
            }
        }
        Ok(CollectorConfig {
            collector_id,
            poll_interval: Duration::from_secs(self.poll_interval_seconds),
            lease_seconds: self.lease_seconds,
            trailing_window_days: self.trailing_window_days,
            max_concurrent_sources: self.max_concurrent_sources,
            health_listen: orgtrail_service_runtime::optional_address(
                "health_listen",
                &self.health_listen,
            )?,
            metrics_listen: orgtrail_service_runtime::optional_address(
                "metrics_listen",
                &self.metrics_listen,
            )?,
            aggregator,
            streams: raw_aggregator.streams,
            aws: self.aws,
            integrity: IntegrityConfig {
                validate_digests: self.integrity.validate_digests,
                public_keys: self
                    .integrity
                    .public_keys_file
                    .as_deref()
                    .map(read_public_keys)
                    .transpose()?,
                hash_concurrency: self.integrity.hash_concurrency,
            },
            log: self.log,
            sources,
        })
    }
}

/// A file of public keys as `aws cloudtrail list-public-keys` prints it.
fn read_public_keys(path: &Path) -> Result<orgtrail_integrity::PublicKeys, ConfigError> {
    let invalid = |reason: String| ConfigError::PublicKeys {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read(path).map_err(|error| invalid(error.to_string()))?;
    let keys = orgtrail_integrity::PublicKeys::from_list_public_keys_json(&text)
        .map_err(|error| invalid(error.to_string()))?;
    if keys.is_empty() {
        return Err(invalid("it holds no key".into()));
    }
    Ok(keys)
}

const ACCOUNT_PLACEHOLDER: &str = "{account}";

/// One source, or one per account when the source is a template.
fn expand_source(raw: RawSource) -> Result<Vec<SourceConfig>, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidSource {
        name: raw.name.clone(),
        reason,
    };
    if raw.name.is_empty() || raw.name.len() > 128 {
        return Err(invalid("the name must be 1 to 128 characters".into()));
    }
    if raw.bucket.is_empty() {
        return Err(invalid("the bucket is empty".into()));
    }
    if let Some(account) = raw.accounts.iter().find(|account| !is_account_id(account)) {
        return Err(invalid(format!("{account:?} is not a 12-digit account id")));
    }
    if let Some(external_id) = &raw.external_id {
        let valid = (2..=1224).contains(&external_id.len())
            && external_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
        if !valid {
            return Err(invalid(
                "external_id must be 2 to 1224 characters of letters, digits and _+=,.@:/-".into(),
            ));
        }
    }
    let templated = [
        Some(raw.name.as_str()),
        Some(raw.bucket.as_str()),
        Some(raw.prefix.as_str()),
        raw.role_arn.as_deref(),
    ]
    .into_iter()
    .flatten()
    .any(|text| text.contains(ACCOUNT_PLACEHOLDER));
    let prefix = raw.prefix.trim_matches('/').to_string();
    let regions: BTreeSet<String> = raw.regions.iter().cloned().collect();
    if !templated {
        return Ok(vec![SourceConfig {
            name: raw.name,
            bucket: raw.bucket,
            bucket_region: raw.bucket_region,
            prefix,
            role_arn: raw.role_arn,
            external_id: raw.external_id,
            accounts: raw.accounts.into_iter().collect(),
            regions,
            since: raw.since,
            trail: raw.trail,
        }]);
    }
    if raw.accounts.is_empty() {
        return Err(invalid(
            "a template ({account} in its name, bucket, prefix or role) needs accounts".into(),
        ));
    }
    let accounts: BTreeSet<String> = raw.accounts.iter().cloned().collect();
    Ok(accounts
        .into_iter()
        .map(|account| {
            let fill = |text: &str| text.replace(ACCOUNT_PLACEHOLDER, &account);
            let name = if raw.name.contains(ACCOUNT_PLACEHOLDER) {
                fill(&raw.name)
            } else {
                format!("{}-{account}", raw.name)
            };
            SourceConfig {
                name,
                bucket: fill(&raw.bucket),
                bucket_region: raw.bucket_region.clone(),
                prefix: fill(&prefix),
                role_arn: raw.role_arn.as_deref().map(fill),
                external_id: raw.external_id.clone(),
                accounts: BTreeSet::from([account.clone()]),
                regions: regions.clone(),
                since: raw.since,
                trail: raw.trail.clone(),
            }
        })
        .collect())
}

/// `<host name>-<process id>`: unique among collectors on one host and across pods.
fn default_collector_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "collector".into());
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(36)
        .collect();
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
// figment's error type is large, and its test API (Jail) returns it.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CollectorConfig, ConfigError> {
        let raw: RawCollectorConfig = Figment::new()
            .merge(Toml::string(text))
            .extract()
            .map_err(Box::new)?;
        raw.validate()
    }

    #[test]
    fn the_example_configuration_loads() {
        let example =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/collector.example.toml");
        let config = load_config(Some(&example), false).unwrap();
        assert!(config.sources.len() >= 3);
    }

    #[test]
    fn a_template_expands_to_one_source_per_account() {
        let config = parse(
            r#"
            collector_id = "c1"
            [aggregator]
            endpoint = "https://aggregator:50051"
            [[sources]]
            name = "member-{account}"
            bucket = "cloudtrail-{account}"
            role_arn = "arn:aws:iam::{account}:role/OrgtrailReader"
            external_id = "orgtrail-external"
            accounts = ["222222222222", "111111111111"]
            regions = ["us-east-1"]
            [[sources]]
            name = "organization"
            bucket = "org-trail"
            prefix = "/trails/"
            "#,
        )
        .unwrap();
        let names: Vec<&str> = config
            .sources
            .iter()
            .map(|source| source.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["member-111111111111", "member-222222222222", "organization"]
        );
        let first = &config.sources[0];
        assert_eq!(first.bucket, "cloudtrail-111111111111");
        assert_eq!(
            first.role_arn.as_deref(),
            Some("arn:aws:iam::111111111111:role/OrgtrailReader")
        );
        assert_eq!(first.accounts, BTreeSet::from(["111111111111".to_string()]));
        assert_eq!(config.sources[2].prefix, "trails");
        assert!(config.sources[2].accounts.is_empty());
    }

    #[test]
    fn invalid_settings_are_refused_with_the_reason() {
        let base = "collector_id = \"c1\"\n[aggregator]\nendpoint = \"https://a:1\"\n";
        let cases = [
            (format!("{base}[[sources]]\nname = \"x-{{account}}\"\nbucket = \"b\"\n"), "needs accounts"),
            (format!("{base}[[sources]]\nname = \"x\"\nbucket = \"b\"\naccounts = [\"12\"]\n"), "is not a 12-digit account id"),
            (format!("{base}[[sources]]\nname = \"x\"\nbucket = \"b\"\n[[sources]]\nname = \"x\"\nbucket = \"c\"\n"), "two sources are named"),
            (format!("lease_seconds = 1\n{base}"), "lease_seconds 1 is outside"),
            ("collector_id = \"c1\"\n[aggregator]\nendpoint = \"aggregator:1\"\n".to_string(), "is not an http"),
            (format!("{base}[[sources]]\nname = \"x\"\nbucket = \"b\"\nunknown = 1\n"), "unknown"),
            (format!("{base}[integrity]\npublic_keys_file = \"/nonexistent/keys.json\"\n"), "integrity.public_keys_file /nonexistent/keys.json"),
            (format!("{base}[integrity]\nhash_concurrency = 0\n"), "integrity.hash_concurrency must be greater than zero"),
        ];
        for (text, message) in cases {
            let error = parse(&text).unwrap_err().to_string();
            assert!(
                error.contains(message),
                "{error:?} does not say {message:?}"
            );
        }
    }

    #[test]
    fn digest_validation_is_on_by_default_and_reads_its_key_file() {
        let base = "collector_id = \"c1\"\n[aggregator]\nendpoint = \"https://a:1\"\n";
        let config = parse(base).unwrap();
        assert!(config.integrity.validate_digests);
        assert!(config.integrity.public_keys.is_none());

        let file = std::env::temp_dir().join(format!("orgtrail-keys-{}.json", std::process::id()));
        let key = "MIIBCgKCAQEAvvGhTqE="; // base64 bytes: the file's shape is what is read here
        std::fs::write(
            &file,
            format!(r#"{{"PublicKeyList":[{{"Value":"{key}","Fingerprint":"00ff","ValidityStartTime":"2024-01-01T00:00:00Z","ValidityEndTime":"2025-01-01T00:00:00Z"}}]}}"#),
        )
        .unwrap();
        let config = parse(&format!(
            "{base}[integrity]\nvalidate_digests = true\npublic_keys_file = \"{}\"\n",
            file.display()
        ));
        let _ = std::fs::remove_file(&file);
        let keys = config.unwrap().integrity.public_keys.unwrap();
        assert!(keys.contains("00ff"));

        let off = parse(&format!("{base}[integrity]\nvalidate_digests = false\n")).unwrap();
        assert!(!off.integrity.validate_digests);
    }
}
