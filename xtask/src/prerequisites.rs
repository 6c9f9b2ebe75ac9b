//! What the test environment needs from the machine, installed when it can be (as root, with
//! apt-get), otherwise named in one line saying what to install.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::bail;

pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|metadata| metadata.uid() == 0)
}

/// The directory of `initdb`, `pg_ctl` and `postgres`, installing PostgreSQL 15 with apt-get
/// when none is found and this runs as root.
pub fn find_postgres_bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = installed_postgres_bin_dir() {
        return Ok(dir);
    }
    if is_root() && command_exists("apt-get") {
        eprintln!(
            "xtask: PostgreSQL server binaries not found; installing postgresql-15 with apt-get"
        );
        apt_install("postgresql-15");
        if let Some(dir) = installed_postgres_bin_dir() {
            return Ok(dir);
        }
    }
    bail!("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install them with `apt-get install -y postgresql-15`")
}

fn installed_postgres_bin_dir() -> Option<PathBuf> {
    let has_server = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres", "psql"]
            .iter()
            .all(|binary| dir.join(binary).exists())
    };
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    candidates.reverse();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        if output.status.success() {
            candidates.push(PathBuf::from(
                String::from_utf8_lossy(&output.stdout).trim(),
            ));
        }
    }
    candidates.into_iter().find(|dir| has_server(dir))
}

/// The `openssl` command, which `tests/verify.rs` signs its digests with (so the signing is not
/// orgtrail's own code), installed with apt-get when missing and this runs as root.
pub fn ensure_openssl() -> anyhow::Result<()> {
    if command_exists("openssl") {
        return Ok(());
    }
    if is_root() && command_exists("apt-get") {
        eprintln!("xtask: the openssl command not found; installing openssl with apt-get");
        apt_install("openssl");
        if command_exists("openssl") {
            return Ok(());
        }
    }
    bail!("the openssl command (tests/verify.rs signs digests with it) not found: install it with `apt-get install -y openssl`")
}

/// `apt-get install` of one package, after an `apt-get update` if the first try fails.
fn apt_install(package: &str) {
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|status| status.success())
    };
    if !install() {
        let _ = Command::new("apt-get").arg("update").status();
        install();
    }
}

pub fn command_exists(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
