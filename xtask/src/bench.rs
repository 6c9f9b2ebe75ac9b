//! `cargo xtask bench` (written below).
use std::sync::atomic::AtomicBool;
pub fn bench_ingest(_arguments: &[String], _interrupted: &AtomicBool) -> anyhow::Result<()> { anyhow::bail!("not yet") }
