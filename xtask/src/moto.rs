//! moto's S3/STS/IAM server, from PyPI, in a venv of the project's own (`target/xtask/moto`):
//! created on first use and reused after.

use std::path::PathBuf;

use crate::python_venv::{ensure_venv, Requirements};

/// The version the tests were written against.
const MOTO_REQUIREMENT: &str = "moto[server]==5.2.5";

/// The path of `moto_server`, installing it into the project's venv if needed.
pub fn ensure_moto_server() -> anyhow::Result<PathBuf> {
    let venv = ensure_venv(
        "moto",
        Requirements::Specifiers(&[MOTO_REQUIREMENT]),
        "bin/moto_server",
    )?;
    Ok(venv.join("bin/moto_server"))
}
