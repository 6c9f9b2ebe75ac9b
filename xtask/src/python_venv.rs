//! Python tools from PyPI in venvs of the project's own under `target/xtask/`: created on first
//! use, reused after, made again when their pinned requirements change.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

use crate::prerequisites::{command_exists, is_root};
use crate::workspace_root;

/// A pip requirement set: what `pip install` gets, and the text that marks a venv as holding it.
pub enum Requirements<'a> {
    /// Requirement specifiers, e.g. `moto[server]==5.2.5`.
    Specifiers(&'a [&'a str]),
    /// A requirements file (`pip install -r`), relative to the workspace's root.
    File(&'a str),
}

/// The venv `target/xtask/<name>` holding `requirements`, with `entry_point` (a file under the
/// venv, e.g. `bin/moto_server`) as proof of the install; installs it when missing or when the
/// requirements changed.
pub fn ensure_venv(
    name: &str,
    requirements: Requirements<'_>,
    entry_point: &str,
) -> anyhow::Result<PathBuf> {
    let venv = workspace_root().join("target/xtask").join(name);
    let marker = venv.join("installed");
    let (wanted, description) = match &requirements {
        Requirements::Specifiers(specifiers) => (specifiers.join("\n"), specifiers.join(" ")),
        Requirements::File(file) => (
            std::fs::read_to_string(workspace_root().join(file))
                .with_context(|| format!("cannot read {file}"))?,
            format!("the requirements of {file}"),
        ),
    };
    if venv.join(entry_point).is_file()
        && marker.is_file()
        && std::fs::read_to_string(&marker).unwrap_or_default() == wanted
    {
        return Ok(venv);
    }
    let python = ["python3", "python"]
        .into_iter()
        .find(|python| command_exists(python))
        .context("Python 3 not found: install it with `apt-get install -y python3 python3-venv`")?;
    eprintln!("xtask: installing {description} into {}", venv.display());
    let create_venv = || {
        let _ = std::fs::remove_dir_all(&venv);
        Command::new(python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|status| status.success())
    };
    if !create_venv() {
        if is_root() && command_exists("apt-get") {
            let _ = Command::new("apt-get")
                .args(["install", "-y", "python3-venv"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status();
        }
        if !create_venv() {
            bail!("cannot create a Python venv: install it with `apt-get install -y python3-venv`");
        }
    }
    let mut pip = Command::new(venv.join("bin/pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check"]);
    match &requirements {
        Requirements::Specifiers(specifiers) => pip.args(*specifiers),
        Requirements::File(file) => pip.arg("-r").arg(workspace_root().join(file)),
    };
    let installed = pip.status().context("cannot run pip")?;
    if !installed.success() || !venv.join(entry_point).is_file() {
        bail!("pip could not install {description} (PyPI must be reachable)");
    }
    std::fs::write(&marker, wanted)?;
    Ok(venv)
}
