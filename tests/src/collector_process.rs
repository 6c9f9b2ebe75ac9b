//! The real `orgtrail-collector` binary, with its configuration in a file of its own and base
//! credentials in its environment (the default chain's first link), bounded in time.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::cli_process::drain;
use crate::stack::binary;

pub struct CollectorProcess {
    pub child: Child,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
}

/// Base credentials for the collector: the access key of an IAM user, or moto's defaults.
#[derive(Clone, Debug)]
pub struct BaseCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Default for BaseCredentials {
    fn default() -> Self {
        BaseCredentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
        }
    }
}

fn command(config: &str, credentials: &BaseCredentials, arguments: &[&str]) -> (Command, PathBuf) {
    let config_path = std::env::temp_dir().join(format!(
        "orgtrail-test-collector-{}.toml",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&config_path, config)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", config_path.display()));
    let mut command = Command::new(binary("orgtrail-collector"));
    command
        .arg("--config")
        .arg(&config_path)
        .args(arguments)
        .env("AWS_ACCESS_KEY_ID", &credentials.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &credentials.secret_access_key)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/orgtrail-test")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/orgtrail-test");
    (command, config_path)
}

/// Runs `orgtrail-collector --once` to its end; `Err` with what it wrote when it took longer
/// than `bound` (it is killed then).
pub fn run_collector_once(
    config: &str,
    credentials: &BaseCredentials,
    bound: Duration,
) -> Result<Output, Output> {
    let (mut command, config_path) = command(config, credentials, &["--once"]);
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run orgtrail-collector: {error}"));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + bound;
    let (status, timed_out) = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break (status, false);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            match child.wait() {
                Ok(status) => break (status, true),
                Err(error) => panic!("cannot wait for the killed collector: {error}"),
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = std::fs::remove_file(&config_path);
    let output = Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if timed_out {
        Err(output)
    } else {
        Ok(output)
    }
}

impl CollectorProcess {
    /// Starts the collector (`arguments` e.g. `["--once"]`), its log in a file.
    pub fn spawn(
        config: &str,
        credentials: &BaseCredentials,
        arguments: &[&str],
    ) -> CollectorProcess {
        let (mut command, config_path) = command(config, credentials, arguments);
        let log_path = config_path.with_extension("log");
        let log = std::fs::File::create(&log_path)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", log_path.display()));
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run orgtrail-collector: {error}"));
        CollectorProcess {
            child,
            config_path,
            log_path,
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

    /// Waits (bounded) for the collector to exit; its exit code.
    pub fn wait(&mut self, bound: Duration) -> Option<i32> {
        let deadline = Instant::now() + bound;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                panic!(
                    "orgtrail-collector did not exit within {bound:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for CollectorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config_path);
        let _ = std::fs::remove_file(&self.log_path);
    }
}
