//! moto's S3/STS/IAM server, from PyPI, in a venv of the project's own (`target/xtask/moto`):
//! created on first use and reused after.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

use crate::prerequisites::{command_exists, is_root};
use crate::workspace_root;

/// The version the tests were written against.
const MOTO_REQUIREMENT: &str = "moto[server]==5.2.5";

/// The path of `moto_server`, installing it into the project's venv if needed.
pub fn ensure_moto_server() -> anyhow::Result<PathBuf> {
    let venv = workspace_root().join("target/xtask/moto");
    let server = venv.join("bin/moto_server");
    let marker = venv.join("installed");
    if server.is_file()
        && marker.is_file()
        && std::fs::read_to_string(&marker).unwrap_or_default() == MOTO_REQUIREMENT
    {
        return Ok(server);
    }
    let python = ["python3", "python"]
        .into_iter()
        .find(|python| command_exists(python))
        .context("Python 3 not found: install it with `apt-get install -y python3 python3-venv`")?;
    eprintln!(
        "xtask: installing {MOTO_REQUIREMENT} into {}",
        venv.display()
    );
    let _ = std::fs::remove_dir_all(&venv);
    let created = Command::new(python)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|status| status.success());
    if !created {
        if is_root() && command_exists("apt-get") {
            let _ = Command::new("apt-get")
                .args(["install", "-y", "python3-venv"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status();
        }
        let _ = std::fs::remove_dir_all(&venv);
        let retried = Command::new(python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|status| status.success());
        if !retried {
            bail!("cannot create a Python venv: install it with `apt-get install -y python3-venv`");
        }
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            MOTO_REQUIREMENT,
        ])
        .status()
        .context("cannot run pip")?;
    if !installed.success() || !server.is_file() {
        bail!("pip could not install {MOTO_REQUIREMENT} (PyPI must be reachable)");
    }
    std::fs::write(&marker, MOTO_REQUIREMENT)?;
    Ok(server)
}
