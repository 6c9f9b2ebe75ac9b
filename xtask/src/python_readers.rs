//! The Parquet readers the archive's tests read orgtrail's objects with (pyarrow and DuckDB,
//! `crates/archive/tests/read_back.py`), from PyPI, in a venv of the project's own
//! (`target/xtask/readers`): created on first use and reused after.

use std::path::PathBuf;

use crate::python_venv::{ensure_venv, Requirements};

/// The versions the read-back test was written against.
const READER_REQUIREMENTS: [&str; 2] = ["pyarrow==26.0.1", "duckdb==2.0.1"];

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
