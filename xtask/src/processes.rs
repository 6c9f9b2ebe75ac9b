//! The project's own binaries as child processes: built once, started, stopped on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::pki::Pki;
use crate::{cargo, workspace_root};

/// Debug or release binaries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

/// Builds every binary of the workspace and returns the directory they are in.
pub fn build_binaries(profile: Profile) -> anyhow::Result<PathBuf> {
    build(profile, &["--workspace", "--bins"])
}

/// Builds every target of the workspace — the binaries with the features the tests resolve
/// (dev-dependencies unify features), so that `cargo test --workspace` afterwards builds
/// nothing twice — and returns the directory of the binaries.
pub fn build_binaries_and_tests() -> anyhow::Result<PathBuf> {
    build(Profile::Debug, &["--workspace", "--all-targets"])
}

/// Builds the release xtask alone (what measures in its own process, since `cargo xtask` is a
/// debug build) and returns the directory it is in.
pub fn build_release_xtask() -> anyhow::Result<PathBuf> {
    build(Profile::Release, &["--package", "xtask", "--bin", "xtask"])
}

fn build(profile: Profile, targets: &[&str]) -> anyhow::Result<PathBuf> {
    let mut command = Command::new(cargo());
    command
        .current_dir(workspace_root())
        .arg("build")
        .args(targets);
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
    /// CPU seconds the process has used so far (see [`cpu_seconds`]).
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.child.id())
    }

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
/// How the project's processes run: secure (TLS with the local CA, records sealed with a
/// keyring of the aggregator's own; the default), or in the clear on purpose (plaintext gRPC,
/// records unencrypted), for comparison.
#[derive(Clone, Copy)]
pub enum Security<'a> {
    Tls(&'a Pki),
    /// Plaintext, the CLI authenticating with this admin token (see [`create_admin_token`]).
    Insecure(&'a str),
}

impl Security<'_> {
    /// The aggregator's endpoint at `address`.
    pub fn endpoint(&self, address: SocketAddr) -> String {
        match self {
            Security::Tls(_) => format!("https://{address}"),
            Security::Insecure(_) => format!("http://{address}"),
        }
    }

    /// An `orgtrail` command speaking to `endpoint` as the local admin.
    pub fn orgtrail(&self, bin_dir: &Path, endpoint: &str) -> Command {
        let mut command = Command::new(bin_dir.join("orgtrail"));
        command.arg("--endpoint").arg(endpoint);
        match self {
            Security::Tls(pki) => {
                command.args(pki.client_arguments("orgtrail-admin"));
            }
            Security::Insecure(token) => {
                command.arg("--insecure").env("ORGTRAIL_TOKEN", token);
            }
        }
        command
    }
}

/// An admin token made straight in the database (which it migrates): what a plaintext
/// aggregator's callers authenticate with, having no certificates.
pub fn create_admin_token(bin_dir: &Path, database_url: &str) -> anyhow::Result<String> {
    let output = Command::new(bin_dir.join("orgtrail-aggregator"))
        .args(["--insecure", "--database-url", database_url])
        .args(["create-token", "--name", "xtask", "--role", "admin"])
        .env("ORGTRAIL_ENCRYPTION__PLAINTEXT", "true")
        .output()
        .context("cannot run orgtrail-aggregator create-token")?;
    if !output.status.success() {
        bail!(
            "orgtrail-aggregator create-token failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

pub fn start_aggregator(
    bin_dir: &Path,
    database_url: &str,
    log_path: &Path,
    extra_environment: &[(&str, &str)],
    security: Security<'_>,
) -> anyhow::Result<(ChildProcess, SocketAddr)> {
    let log = std::fs::File::create(log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut command = Command::new(bin_dir.join("orgtrail-aggregator"));
    command
        .args(["--listen", "127.0.0.1:0", "--database-url", database_url])
        .env("ORGTRAIL_LOG__FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(log);
    match security {
        Security::Tls(pki) => {
            let keyring = log_path.with_extension("keyring.json");
            let _ = std::fs::remove_file(&keyring);
            let status = Command::new(bin_dir.join("orgtrail-aggregator"))
                .args(["keys", "init", "--keyring"])
                .arg(&keyring)
                .stderr(Stdio::null())
                .status()
                .context("cannot run orgtrail-aggregator keys init")?;
            if !status.success() {
                bail!("orgtrail-aggregator keys init failed ({status})");
            }
            command
                .envs(pki.aggregator_environment())
                .env("ORGTRAIL_ENCRYPTION__KEYRING", &keyring);
        }
        Security::Insecure(_) => {
            command
                .arg("--insecure")
                .env("ORGTRAIL_ENCRYPTION__PLAINTEXT", "true");
        }
    }
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

/// Starts moto's server on a free loopback port; waits (at most a minute) until it answers.
pub fn start_moto(moto_server: &Path, log_path: &Path) -> anyhow::Result<(ChildProcess, String)> {
    let port = crate::free_port()?;
    let log = std::fs::File::create(log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let child = Command::new(moto_server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("cannot start moto_server")?;
    let mut process = ChildProcess { child };
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http_get_status(address, "/moto-api/") == Some(200) {
            return Ok((process, format!("http://{address}")));
        }
        if let Ok(Some(status)) = process.child.try_wait() {
            bail!(
                "moto_server exited ({status}):\n{}",
                std::fs::read_to_string(log_path).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!("moto_server did not answer within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn http_get_status(address: SocketAddr, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The environment of a collector reading moto: moto's test credentials as the base
/// credentials (the default chain's first link), nothing from the host's AWS setup.
pub const COLLECTOR_ENVIRONMENT: [(&str, &str); 6] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/nonexistent/orgtrail"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/orgtrail"),
];

/// The address in the aggregator's `listening` log line (JSON format).
fn listening_address(line: &str) -> Option<SocketAddr> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value.get("message")?.as_str()? != "listening" {
        return None;
    }
    value.get("address")?.as_str()?.parse().ok()
}

/// CPU seconds (user and system) process `pid` has used, with those of its children — the
/// living ones and those it has waited for — from `/proc`: what a run cost the machine,
/// whatever else shared its cores meanwhile (a PostgreSQL server's work is in its backends).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let ticks_per_second = clock_ticks_per_second();
    let own = process_ticks(pid).with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    let mut ticks = own.used + own.children_waited_for;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        // A process gone since the listing is skipped.
        if let Some(child) = process_ticks(child).filter(|child| child.parent == pid) {
            ticks += child.used + child.children_waited_for;
        }
    }
    Ok(ticks as f64 / ticks_per_second)
}

/// CPU seconds of this process's children that have been waited for (a child's whole life,
/// once it has exited and been reaped).
pub fn waited_children_cpu_seconds() -> anyhow::Result<f64> {
    let pid = std::process::id();
    let own = process_ticks(pid).with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    Ok(own.children_waited_for as f64 / clock_ticks_per_second())
}

struct ProcessTicks {
    parent: u32,
    /// utime + stime.
    used: u64,
    /// cutime + cstime.
    children_waited_for: u64,
}

/// Fields 4 and 14–17 of `/proc/PID/stat` (proc(5)); the name, field 2, may hold spaces, so
/// the fields are counted after its closing parenthesis.
fn process_ticks(pid: u32) -> Option<ProcessTicks> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
    Some(ProcessTicks {
        parent: u32::try_from(field(4)?).ok()?,
        used: field(14)? + field(15)?,
        children_waited_for: field(16)? + field(17)?,
    })
}

/// USER_HZ: 100 on every Linux of note; `getconf` says if not.
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
