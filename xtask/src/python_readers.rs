//! Python clients from PyPI the tests use, each in a venv of the project's own under
//! `target/xtask/` (created on first use and reused after): the Parquet readers the archive's
//! tests read orgtrail's objects with (pyarrow and DuckDB, `crates/archive/tests/read_back.py`),
//! and the AWS CLI and boto3 for the CloudTrail-compatible endpoint
//! (`tests/python/cloudtrail_client.py`).

use std::path::PathBuf;

use crate::python_venv::{ensure_venv, Requirements};

/// The versions the read-back test was written against.
/// maxminddb, MaxMind's own reader, places the IPs the SQL cookbook's `ip_country` is checked
/// against (a DuckDB function in Python, which needs numpy).
const READER_REQUIREMENTS: [&str; 4] = [
    "pyarrow==26.0.1",
    "duckdb==2.0.1",
    "maxminddb==3.2.0",
    "numpy==2.3.5",
];

/// The venv's Python, with the readers installed. Neither package installs a script, so the
/// interpreter is the proof of the venv, and `ensure_venv`'s marker (written only once pip
/// succeeded) the proof of the install.
pub fn ensure_readers_python() -> anyhow::Result<PathBuf> {
    let venv = ensure_venv(
        "readers",
        Requirements::Specifiers(&READER_REQUIREMENTS),
        "bin/python",
    )?;
    Ok(venv.join("bin/python"))
}

/// The AWS clients the CloudTrail-compatible endpoint is tested and benchmarked with: the AWS
/// CLI (v1, from PyPI) and boto3, at versions whose botocore agrees.
const AWS_CLIENT_REQUIREMENTS: [&str; 2] = ["awscli==1.46.3", "boto3==1.44.8"];

/// The Python of the AWS clients' venv (`python -m awscli` is the AWS CLI); `bin/aws` proves
/// the install.
pub fn ensure_aws_clients_python() -> anyhow::Result<PathBuf> {
    let venv = ensure_venv(
        "aws-clients",
        Requirements::Specifiers(&AWS_CLIENT_REQUIREMENTS),
        "bin/aws",
    )?;
    Ok(venv.join("bin/python"))
}
