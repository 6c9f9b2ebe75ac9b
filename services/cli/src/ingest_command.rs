//! `orgtrail ingest`: a backfill of local log files through the same ingest streams the
//! collector uses, with a progress bar on a terminal and every problem named on stderr.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use orgtrail_client::{
    error_chain, ClientSettings, FileOutcome, FileResult, IngestSender, LocalLogFile,
    LogFileReader, SenderSettings,
};
use orgtrail_domain::{parse_cloudtrail_key, LogFileKind};

use crate::IngestArguments;

/// Exit status when some input was bad (records rejected, files with faults) but every file
/// was delivered.
const EXIT_BAD_INPUT: u8 = 2;

pub async fn run_ingest(
    settings: &ClientSettings,
    arguments: IngestArguments,
) -> anyhow::Result<ExitCode> {
    let paths = collect_log_files(&arguments.paths)?;
    let mut totals = Totals::default();
    let mut files: Vec<Arc<dyn LogFileReader>> = Vec::with_capacity(paths.len());
    for path in paths {
        if parse_cloudtrail_key(&path.to_string_lossy())
            .is_some_and(|key| key.kind == LogFileKind::Digest)
        {
            totals.digests_skipped += 1;
            continue;
        }
        match LocalLogFile::new(&path, &arguments.source) {
            Ok(file) => files.push(Arc::new(file)),
            Err(error) => {
                eprintln!("failed: {}: cannot read the file: {error}", path.display());
                totals.failed += 1;
            }
        }
    }
    let sender = IngestSender::connect(
        settings,
        SenderSettings {
            streams: arguments.streams.max(1),
            ..SenderSettings::default()
        },
    )
    .await?;

    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(files.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} files  {msg}  [{elapsed_precise}, {eta} left]",
            )
            .context("invalid progress template")?,
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    sender
        .send_files(files, |result| {
            for line in totals.add(&result) {
                progress.suspend(|| eprintln!("{line}"));
            }
            progress.set_message(format!("{} events stored", totals.accepted));
            progress.inc(1);
        })
        .await;
    progress.finish_and_clear();
    println!("{}", totals.summary());
    Ok(if totals.failed > 0 {
        ExitCode::FAILURE
    } else if totals.rejected > 0 || totals.faulted > 0 {
        ExitCode::from(EXIT_BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    })
}

/// The files named, and every `*.json.gz` file (CloudTrail's delivery format) under the
/// directories named, sorted.
fn collect_log_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if metadata.is_dir() {
            walk_directory(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn walk_directory(directory: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(directory)
        .with_context(|| format!("cannot read {}", directory.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", directory.display()))?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            walk_directory(&path, files)?;
        } else {
            if entry.file_name().to_string_lossy().ends_with(".json.gz") {
                files.push(path);
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Totals {
    committed: u64,
    already_ingested: u64,
    failed: u64,
    faulted: u64,
    digests_skipped: u64,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
}

impl Totals {
    /// Counts the result; returns the lines to report for it.
    fn add(&mut self, result: &FileResult) -> Vec<String> {
        let file = &result.origin.object_key;
        let report = match &result.result {
            Ok(report) => report,
            Err(error) => {
                self.failed += 1;
                return vec![format!("failed: {file}: {}", error_chain(error))];
            }
        };
        match report.outcome {
            FileOutcome::Committed => self.committed += 1,
            FileOutcome::AlreadyIngested => self.already_ingested += 1,
        }
        self.accepted += u64::from(report.accepted);
        self.duplicates += u64::from(report.duplicates);
        self.rejected += u64::from(report.rejected);
        let mut lines: Vec<String> = report
            .rejections
            .iter()
            .map(|(index, reason)| format!("rejected: {file}: record {index}: {reason}"))
            .collect();
        let unlisted = u64::from(report.rejected).saturating_sub(report.rejections.len() as u64);
        if unlisted > 0 {
            lines.push(format!("rejected: {file}: {unlisted} more records"));
        }
        if let Some(fault) = &report.fault {
            self.faulted += 1;
            lines.push(format!(
                "fault: {file}: {fault} (the records before it were stored)"
            ));
        }
        lines
    }

    fn summary(&self) -> String {
        let mut summary = format!(
            "files: {} committed, {} already ingested, {} failed, {} with faults",
            self.committed, self.already_ingested, self.failed, self.faulted
        );
        if self.digests_skipped > 0 {
            summary.push_str(&format!(", {} digest files skipped", self.digests_skipped));
        }
        summary.push_str(&format!(
            "\nevents: {} stored, {} duplicates, {} rejected",
            self.accepted, self.duplicates, self.rejected
        ));
        summary
    }
}
