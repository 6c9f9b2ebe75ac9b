//! The project's own binaries as child processes: built once, started, stopped on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::{cargo, workspace_root};

/// Debug or release binaries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

/// Builds every binary of the workspace and returns the directory they are in.
pub fn build_binaries(profile: Profile) -> anyhow::Result<PathBuf> {
    let mut command = Command::new(cargo());
    command
        .current_dir(workspace_root())
        .args(["build", "--workspace", "--bins"]);
    if profile == Profile::Release {
        command.arg("--release");
    }
    let status = command.status().context("cannot run cargo build")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    Ok(target.join(match profile {
        Profile::Debug => "debug",
        Profile::Release => "release",
    }))
}

/// A child process, stopped (SIGTERM, then SIGKILL after a bound) when dropped.
pub struct ChildProcess {
    child: Child,
}

impl ChildProcess {
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `orgtrail-aggregator` on a free loopback port against `database_url`, its log in
/// `log_path`, and waits (at most a minute) until it listens.
pub fn start_aggregator(
    bin_dir: &Path,
    database_url: &str,
    log_path: &Path,
    extra_environment: &[(&str, &str)],
) -> anyhow::Result<(ChildProcess, SocketAddr)> {
    let log = std::fs::File::create(log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut command = Command::new(bin_dir.join("orgtrail-aggregator"));
    command
        .args(["--listen", "127.0.0.1:0", "--database-url", database_url])
        .env("ORGTRAIL_LOG__FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(log);
    for (name, value) in extra_environment {
        command.env(name, value);
    }
    let child = command
        .spawn()
        .context("cannot start orgtrail-aggregator")?;
    let mut process = ChildProcess { child };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log_path).unwrap_or_default();
        if let Some(address) = text.lines().find_map(listening_address) {
            return Ok((process, address));
        }
        if let Ok(Some(status)) = process.child.try_wait() {
            bail!("orgtrail-aggregator exited ({status}) before listening:\n{text}");
        }
        if Instant::now() > deadline {
            bail!("orgtrail-aggregator did not listen within a minute:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The address in the aggregator's `listening` log line (JSON format).
fn listening_address(line: &str) -> Option<SocketAddr> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value.get("message")?.as_str()? != "listening" {
        return None;
    }
    value.get("address")?.as_str()?.parse().ok()
}
