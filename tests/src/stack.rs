//! `TestStack`: a fresh database in the throwaway PostgreSQL that `cargo xtask test` started,
//! and the real `orgtrail-aggregator` binary serving it on a loopback port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orgtrail_api::v1::event_service_client::EventServiceClient;
use orgtrail_client::{AuthChannel, ClientSettings, IngestSender, SenderSettings, Transport};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::pki::{self, ClientIdentity};
use orgtrail_aggregator::crypto::{Keyring, RecordCipher};

/// Where the throwaway PostgreSQL is; set by `cargo xtask test`.
pub const DATABASE_URL_VARIABLE: &str = "ORGTRAIL_TEST_DATABASE_URL";
/// Where the binaries are; set by `cargo xtask test`, else found beside the test executable.
pub const BIN_DIR_VARIABLE: &str = "ORGTRAIL_BIN_DIR";

/// A bound on every wait of a test.
pub const WAIT: Duration = Duration::from_secs(60);

/// Options of the aggregator under test.
#[derive(Clone, Debug, Default)]
pub struct StackOptions {
    /// Extra `ORGTRAIL_*` environment for the aggregator.
    pub environment: Vec<(String, String)>,
    /// A fixed port; by default the aggregator picks a free one (and keeps it on restarts).
    pub port: Option<u16>,
    /// Plaintext gRPC (`--insecure`) instead of TLS with the test CA.
    pub insecure: bool,
    /// Records stored in the clear (`encryption.plaintext`) instead of sealed with a keyring
    /// of the stack's own.
    pub plaintext: bool,
    /// Records sealed under this AWS KMS key instead of a keyring of the stack's own.
    pub kms: Option<crate::sealing::KmsKey>,
}

pub struct TestStack {
    pub database_url: String,
    pub address: SocketAddr,
    /// The stack's keyring (none when records are stored in the clear).
    pub keyring: Option<PathBuf>,
    aggregator: Option<AggregatorProcess>,
    options: StackOptions,
}

impl TestStack {
    pub async fn start() -> TestStack {
        TestStack::start_with(StackOptions::default()).await
    }

    pub async fn start_with(mut options: StackOptions) -> TestStack {
        let database_url = create_test_database().await;
        let keyring = if let Some(kms) = &options.kms {
            let environment = kms.environment();
            options.environment.extend(environment);
            None
        } else if options.plaintext {
            options
                .environment
                .push(("ORGTRAIL_ENCRYPTION__PLAINTEXT".into(), "true".into()));
            None
        } else {
            let keyring = init_keyring();
            options.environment.push((
                "ORGTRAIL_ENCRYPTION__KEYRING".into(),
                keyring.display().to_string(),
            ));
            Some(keyring)
        };
        let aggregator =
            AggregatorProcess::start(&database_url, options.port.unwrap_or(0), &options);
        // A restart comes back on the same address.
        options.port = Some(aggregator.address.port());
        TestStack {
            database_url,
            keyring,
            address: aggregator.address,
            aggregator: Some(aggregator),
            options,
        }
    }

    pub fn endpoint(&self) -> String {
        endpoint(self.address, self.options.insecure)
    }

    /// The settings of an admin client (TLS with the admin's certificate).
    pub fn client_settings(&self) -> ClientSettings {
        self.client_settings_as(ClientIdentity::Admin)
    }

    pub fn client_settings_as(&self, identity: ClientIdentity) -> ClientSettings {
        let transport = if self.options.insecure {
            Transport::Insecure
        } else {
            pki::client_transport(identity)
        };
        ClientSettings::new(self.endpoint(), transport)
    }

    /// A client with the given transport and token.
    pub fn client_settings_with(
        &self,
        transport: Transport,
        token: Option<String>,
    ) -> ClientSettings {
        ClientSettings::new(self.endpoint(), transport).with_token(token)
    }

    pub async fn channel(&self) -> AuthChannel {
        orgtrail_client::connect(&self.client_settings())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "cannot connect to the aggregator at {}: {error}",
                    self.endpoint()
                )
            })
    }

    pub async fn events_client(&self) -> EventServiceClient<AuthChannel> {
        EventServiceClient::new(self.channel().await).max_decoding_message_size(256 << 20)
    }

    pub async fn ingest_sender(&self, settings: SenderSettings) -> IngestSender {
        IngestSender::connect(&self.client_settings(), settings)
            .await
            .unwrap_or_else(|error| panic!("cannot start sending to the aggregator: {error}"))
    }

    /// A pool on the stack's database, for checking SQL state after the fact.
    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(WAIT)
            .connect(&self.database_url)
            .await
            .unwrap_or_else(|error| panic!("cannot connect to the test database: {error}"))
    }

    /// Every stored record, opened with the stack's keyring straight from the database (the
    /// aggregator need not run), as (event id, record).
    pub async fn stored_records(&self) -> Vec<(uuid::Uuid, Vec<u8>)> {
        let pool = self.pool().await;
        let rows: Vec<(uuid::Uuid, Option<i32>, Vec<u8>)> =
            sqlx::query_as("SELECT event_id, key_id, record FROM events")
                .fetch_all(&pool)
                .await
                .unwrap_or_else(|error| panic!("cannot read the events: {error}"));
        let cipher = RecordCipher::new();
        if let Some(path) = &self.keyring {
            let keyring = Keyring::load(path)
                .unwrap_or_else(|error| panic!("cannot load the stack's keyring: {error}"));
            let keys: Vec<(i32, Vec<u8>, String)> =
                sqlx::query_as("SELECT key_id, wrapped_key, wrapped_by FROM data_keys")
                    .fetch_all(&pool)
                    .await
                    .unwrap_or_else(|error| panic!("cannot read the data keys: {error}"));
            for (key_id, wrapped, master) in keys {
                let key = keyring
                    .unwrap(key_id, &wrapped, &master)
                    .unwrap_or_else(|error| panic!("{error}"));
                cipher.install(key_id, &key);
            }
        }
        pool.close().await;
        rows.into_iter()
            .map(|(event_id, key_id, record)| match key_id {
                None => (event_id, record),
                Some(key_id) => (
                    event_id,
                    cipher
                        .open(key_id, event_id, &record)
                        .unwrap_or_else(|error| panic!("{error}")),
                ),
            })
            .collect()
    }

    /// The eventID (as written in the record) of every stored event; panics if one is stored
    /// twice.
    pub async fn stored_event_ids(&self) -> std::collections::HashSet<String> {
        let records: Vec<Vec<u8>> = self
            .stored_records()
            .await
            .into_iter()
            .map(|(_, record)| record)
            .collect();
        let ids: Vec<String> = records
            .iter()
            .map(|record| crate::samples::record_event_id(&String::from_utf8_lossy(record)))
            .collect();
        let distinct: std::collections::HashSet<String> = ids.iter().cloned().collect();
        assert_eq!(distinct.len(), ids.len(), "an eventID is stored twice");
        distinct
    }

    /// Waits (bounded) until the aggregator holds a file's transaction open: a file's ledger
    /// row is written, and locked, from its first message to its commit.
    pub async fn wait_for_file_in_flight(&self) {
        let pool = self.pool().await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid)
                 WHERE pg_stat_activity.datname = current_database()
                   AND pg_stat_activity.application_name = 'orgtrail-aggregator'
                   AND pg_locks.relation = 'log_files'::regclass
                   AND pg_locks.mode = 'RowExclusiveLock'",
            )
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|error| panic!("cannot read pg_locks: {error}"));
            if open > 0 {
                pool.close().await;
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no file was ever in flight within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub fn aggregator_log(&self) -> String {
        self.aggregator
            .as_ref()
            .map(AggregatorProcess::log)
            .unwrap_or_default()
    }

    /// Sends SIGTERM to the aggregator.
    pub fn terminate_aggregator(&self) {
        if let Some(aggregator) = &self.aggregator {
            aggregator.signal("TERM");
        }
    }

    /// Sends SIGTERM to the aggregator and waits (bounded) until it has started draining:
    /// from then on no new file is taken.
    pub async fn terminate_aggregator_and_wait_for_drain(&self) {
        self.terminate_aggregator();
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self
            .aggregator_log()
            .contains("\"shutting down: draining\"")
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the aggregator did not start draining within {WAIT:?}:\n{}",
                self.aggregator_log()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits (bounded) for the aggregator to exit and returns its exit code.
    pub fn wait_for_aggregator_exit(&mut self, bound: Duration) -> Option<i32> {
        let aggregator = self.aggregator.as_mut()?;
        let deadline = Instant::now() + bound;
        loop {
            if let Ok(Some(status)) = aggregator.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                panic!(
                    "the aggregator did not exit within {bound:?}:\n{}",
                    aggregator.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Another aggregator replica on the same database (a port of its own).
    pub fn start_replica(&self) -> AggregatorProcess {
        AggregatorProcess::start(&self.database_url, 0, &self.options)
    }

    /// Sends a signal (`KILL`, `TERM`) to the aggregator.
    pub fn signal_aggregator(&self, signal: &str) {
        if let Some(aggregator) = &self.aggregator {
            aggregator.signal(signal);
        }
    }

    /// Stops the aggregator, starts it again with `overrides` added to its environment, and
    /// expects it to exit before listening; returns what it logged. Panics if it serves.
    pub fn start_aggregator_expecting_failure(&mut self, overrides: &[(String, String)]) -> String {
        if let Some(mut old) = self.aggregator.take() {
            old.stop();
        }
        let mut options = self.options.clone();
        options.environment.extend(overrides.iter().cloned());
        let log_path = std::env::temp_dir().join(format!(
            "orgtrail-test-aggregator-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let mut child = aggregator_command(&self.database_url, 0, &options, &log_path)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start orgtrail-aggregator: {error}"));
        let deadline = Instant::now() + WAIT;
        let log = loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if log.lines().any(|line| listening_address(line).is_some()) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the aggregator started listening:\n{log}");
            }
            if let Ok(Some(_)) = child.try_wait() {
                break std::fs::read_to_string(&log_path).unwrap_or_default();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the aggregator neither served nor exited within {WAIT:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = std::fs::remove_file(&log_path);
        log
    }

    /// Sets (or with `None` removes) a variable of the aggregator's environment from its next
    /// start on.
    pub fn set_aggregator_environment(&mut self, name: &str, value: Option<&str>) {
        self.options
            .environment
            .retain(|(existing, _)| existing != name);
        if let Some(value) = value {
            self.options
                .environment
                .push((name.to_string(), value.to_string()));
        }
    }

    /// Starts the aggregator again on the same address and database.
    /// Restarts the aggregator with `set` added to its environment and the variables named in
    /// `remove` taken out (for this and every later restart).
    pub fn restart_aggregator_with(&mut self, set: &[(&str, &str)], remove: &[&str]) {
        self.options.environment.retain(|(name, _)| {
            !remove.contains(&name.as_str()) && !set.iter().any(|(new, _)| new == name)
        });
        self.options.environment.extend(
            set.iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        self.restart_aggregator();
    }

    pub fn restart_aggregator(&mut self) {
        if let Some(mut old) = self.aggregator.take() {
            old.stop();
        }
        let port = self.options.port.unwrap_or(0);
        let aggregator = AggregatorProcess::start(&self.database_url, port, &self.options);
        self.address = aggregator.address;
        self.aggregator = Some(aggregator);
    }
}

/// A keyring of the stack's own, made by `orgtrail-aggregator keys init`.
fn init_keyring() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "orgtrail-test-keys-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
    let keyring = dir.join("keyring.json");
    let output = Command::new(binary("orgtrail-aggregator"))
        .args(["keys", "init", "--keyring"])
        .arg(&keyring)
        .output()
        .unwrap_or_else(|error| panic!("cannot run orgtrail-aggregator keys init: {error}"));
    assert!(
        output.status.success(),
        "orgtrail-aggregator keys init failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    keyring
}

/// Creates a database of its own for one test.
async fn create_test_database() -> String {
    let admin_url = std::env::var(DATABASE_URL_VARIABLE).unwrap_or_else(|_| {
        panic!("{DATABASE_URL_VARIABLE} is not set: run the tests with `cargo xtask test`, which starts the throwaway PostgreSQL they need")
    });
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(WAIT)
        .connect(&admin_url)
        .await
        .unwrap_or_else(|error| panic!("cannot reach the test PostgreSQL at {admin_url}: {error}"));
    let name = format!("orgtrail_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap_or_else(|error| panic!("cannot create the test database: {error}"));
    admin.close().await;
    match admin_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("{DATABASE_URL_VARIABLE} {admin_url:?} has no database part"),
    }
}

/// The directory of the workspace's binaries.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(BIN_DIR_VARIABLE) {
        return PathBuf::from(dir);
    }
    // target/debug/deps/<test> → target/debug
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.parent()
                .and_then(|deps| deps.parent())
                .map(PathBuf::from)
        })
        .unwrap_or_default()
}

pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    if !path.is_file() {
        panic!(
            "{} does not exist: run the tests with `cargo xtask test`, which builds the binaries first",
            path.display()
        );
    }
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|error| panic!("cannot find a free port: {error}"))
}

/// An `orgtrail-aggregator` process, stopped when dropped.
pub struct AggregatorProcess {
    child: Child,
    address: SocketAddr,
    log_path: PathBuf,
    insecure: bool,
}

fn endpoint(address: SocketAddr, insecure: bool) -> String {
    if insecure {
        format!("http://{address}")
    } else {
        format!("https://{address}")
    }
}

impl AggregatorProcess {
    pub fn endpoint(&self) -> String {
        endpoint(self.address, self.insecure)
    }

    fn start(database_url: &str, port: u16, options: &StackOptions) -> AggregatorProcess {
        let log_path = std::env::temp_dir().join(format!(
            "orgtrail-test-aggregator-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let child = aggregator_command(database_url, port, options, &log_path)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start orgtrail-aggregator: {error}"));
        let mut process = AggregatorProcess {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            log_path,
            insecure: options.insecure,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(address) = process.log().lines().find_map(listening_address) {
                process.address = address;
                return process;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!(
                    "orgtrail-aggregator exited ({status}) before listening:\n{}",
                    process.log()
                );
            }
            if Instant::now() > deadline {
                process.stop();
                panic!(
                    "orgtrail-aggregator did not listen within {WAIT:?}:\n{}",
                    process.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AggregatorProcess {
    fn drop(&mut self) {
        self.stop();
        // A failing test shows what the aggregator said last (its warnings and errors).
        if std::thread::panicking() {
            let log = self.log();
            let said: Vec<&str> = log
                .lines()
                .filter(|line| line.contains("\"WARN\"") || line.contains("\"ERROR\""))
                .collect();
            eprintln!(
                "orgtrail-aggregator's last warnings and errors ({}):\n{}",
                self.log_path.display(),
                said[said.len().saturating_sub(40)..].join("\n")
            );
        }
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// The aggregator's command line: loopback, the test database, JSON logs to `log_path`, TLS
/// with the test CA unless insecure, and the options' environment.
fn aggregator_command(
    database_url: &str,
    port: u16,
    options: &StackOptions,
    log_path: &std::path::Path,
) -> Command {
    let log = std::fs::File::create(log_path)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", log_path.display()));
    let mut command = Command::new(binary("orgtrail-aggregator"));
    command
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            database_url,
        ])
        .env("ORGTRAIL_LOG__FORMAT", "json")
        .env("ORGTRAIL_LOG__LEVEL", "info")
        // Every test runs at the same moment, whatever the day (a test may set another).
        .env("ORGTRAIL_CLOCK__FROZEN_AT", crate::TEST_NOW)
        // Insights write events of their own (Insight events for the bursts a test's data
        // makes), which tests comparing the stored events with their input do not expect; the
        // tests of Insights turn them on (`ORGTRAIL_INSIGHTS__ENABLED=true` in the options).
        .env("ORGTRAIL_INSIGHTS__ENABLED", "false")
        .stdout(Stdio::null())
        .stderr(log);
    if options.insecure {
        command.arg("--insecure");
    } else {
        command.envs(pki::aggregator_environment());
    }
    for (name, value) in &options.environment {
        command.env(name, value);
    }
    command
}

/// The address of the aggregator's `listening` log line.
fn listening_address(line: &str) -> Option<SocketAddr> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value.get("message")?.as_str()? != "listening" {
        return None;
    }
    value.get("address")?.as_str()?.parse().ok()
}
