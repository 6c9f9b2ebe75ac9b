//! What `orgtrail verify` prints: a summary and the problems as a table (every digest and
//! log file with --verbose), or one JSON document.

use orgtrail_client::table::render_table;
use orgtrail_integrity::{LogFileStatus, VerificationReport};

use crate::verify_command::VerifyArguments;
use crate::SummaryFormat;

/// What was verified, for the report's head.
pub struct ReportScope<'a> {
    pub bucket: &'a str,
    pub digest_prefix: String,
    pub start: chrono::DateTime<chrono::Utc>,
    pub end: chrono::DateTime<chrono::Utc>,
}

pub fn print_report(
    report: &VerificationReport,
    arguments: &VerifyArguments,
    scope: &ReportScope<'_>,
) -> anyhow::Result<()> {
    let counts = [
        ("verified", LogFileStatus::Verified),
        ("modified", LogFileStatus::Modified),
        ("missing", LogFileStatus::Missing),
        ("unlisted", LogFileStatus::Unlisted),
        ("not_yet_covered", LogFileStatus::NotYetCovered),
        ("unverifiable", LogFileStatus::Unverifiable),
    ];
    match arguments.output {
        SummaryFormat::Json => {
            let mut log_files = serde_json::Map::new();
            for (name, status) in counts {
                log_files.insert(name.into(), report.log_files_with(status).into());
            }
            let document = serde_json::json!({
                "bucket": scope.bucket,
                "digest_prefix": scope.digest_prefix,
                "start": scope.start,
                "end": scope.end,
                "clean": report.is_clean(),
                "summary": {
                    "digests": report.digests.len(),
                    "digests_verified": report.digests_verified(),
                    "log_files": log_files,
                    "problems": report.problems.len(),
                },
                "problems": report.problems.iter().map(|problem| {
                    let mut value = serde_json::to_value(problem).unwrap_or_default();
                    value["message"] = problem.to_string().into();
                    value
                }).collect::<Vec<_>>(),
                "digests": report.digests,
                "log_files": report.log_files,
            });
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
        SummaryFormat::Table => {
            println!(
                "digests: {} read, {} verified, covering {} to {}",
                report.digests.len(),
                report.digests_verified(),
                report
                    .covered_from
                    .map(|time| time.to_rfc3339())
                    .unwrap_or_else(|| "-".into()),
                report
                    .covered_until
                    .map(|time| time.to_rfc3339())
                    .unwrap_or_else(|| "-".into()),
            );
            let log_files: Vec<String> = counts
                .iter()
                .map(|(name, status)| {
                    format!(
                        "{} {}",
                        report.log_files_with(*status),
                        name.replace('_', " ")
                    )
                })
                .collect();
            println!("log files: {}", log_files.join(", "));
            println!("problems: {}", report.problems.len());
            if !report.problems.is_empty() {
                let rows: Vec<Vec<String>> = report
                    .problems
                    .iter()
                    .map(|problem| {
                        vec![
                            problem.kind().to_string(),
                            problem.location().to_string(),
                            problem.to_string(),
                        ]
                    })
                    .collect();
                print!("{}", render_table(&["PROBLEM", "OBJECT", "DETAIL"], &rows));
            }
            if arguments.verbose {
                let rows: Vec<Vec<String>> = report
                    .digests
                    .iter()
                    .map(|digest| {
                        vec![
                            "digest".into(),
                            if digest.verified {
                                "verified"
                            } else {
                                "problem"
                            }
                            .into(),
                            digest.location.to_string(),
                        ]
                    })
                    .chain(report.log_files.iter().map(|file| {
                        vec![
                            "log file".into(),
                            serde_json::to_value(file.status)
                                .ok()
                                .and_then(|value| value.as_str().map(str::to_string))
                                .unwrap_or_default(),
                            file.location.to_string(),
                        ]
                    }))
                    .collect();
                print!("{}", render_table(&["OBJECT", "STATUS", "LOCATION"], &rows));
            }
        }
    }
    Ok(())
}
