//! The flags of `orgtrail rules …`, `detections replay`, `findings …` and `suppressions …`,
//! and how they become requests; rule files read from disk. Nothing here parses a Sigma rule:
//! that is the server's, which names the file it refuses and why.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use orgtrail_api::v1 as pb;

use crate::retention_command::OutputArguments;
use crate::time_argument::{expiry_argument, timestamp_argument, RangeEnd};

/// A finding's severity, as Sigma's `level`: informational < low < medium < high < critical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum FindingLevel {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl FindingLevel {
    /// The name the API takes.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingLevel::Informational => "informational",
            FindingLevel::Low => "low",
            FindingLevel::Medium => "medium",
            FindingLevel::High => "high",
            FindingLevel::Critical => "critical",
        }
    }
}

/// Where a finding is in triage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FindingState {
    /// Not looked at yet.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Dealt with.
    Resolved,
    /// Not what the rule meant to find.
    #[value(name = "false_positive", alias = "false-positive")]
    FalsePositive,
    /// Silenced by a suppression when raised (kept and counted, never notified).
    Suppressed,
}

impl FindingState {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingState::Open => "open",
            FindingState::Acknowledged => "acknowledged",
            FindingState::Resolved => "resolved",
            FindingState::FalsePositive => "false_positive",
            FindingState::Suppressed => "suppressed",
        }
    }
}

/// What raised a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FindingKind {
    /// A Sigma rule matched an event.
    Sigma,
    /// An alarm entered ALARM.
    Alarm,
    /// An Insight began (`orgtrail insights list`).
    Insight,
    /// Digest validation found a trail's log files or digests altered (`docs/integrity.md`).
    Integrity,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Sigma => "sigma",
            FindingKind::Alarm => "alarm",
            FindingKind::Insight => "insight",
            FindingKind::Integrity => "integrity",
        }
    }
}

#[derive(Args)]
pub struct AddRulesArguments {
    /// Sigma rule files (one rule each), or directories searched recursively for *.yml and
    /// *.yaml files. All are added or none: the first the server refuses is named, with why.
    #[arg(required = true, value_name = "FILE")]
    pub paths: Vec<PathBuf>,
    /// Added disabled: not evaluated until `orgtrail rules enable RULE_ID`.
    #[arg(long)]
    pub disabled: bool,
    #[command(flatten)]
    pub output: OutputArguments,
}

#[derive(Args)]
pub struct TestRuleArguments {
    /// A Sigma rule file, run over stored events and not stored; it raises nothing.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// From (inclusive): RFC 3339, a date, or a span before now (7d, 12h); default: the
    /// oldest stored event.
    #[arg(long)]
    pub start: Option<String>,
    /// To (inclusive), in the same forms; default: the newest stored event.
    #[arg(long)]
    pub end: Option<String>,
    /// Matching events listed, oldest first, at most 100 (default 10).
    #[arg(long, value_name = "N")]
    pub events: Option<u32>,
    #[command(flatten)]
    pub output: OutputArguments,
}

#[derive(Args)]
pub struct ReplayArguments {
    /// From (inclusive, event time): RFC 3339, a date, or a span before now (7d, 12h).
    #[arg(long)]
    pub start: String,
    /// To (inclusive, event time), in the same forms.
    #[arg(long)]
    pub end: String,
    #[command(flatten)]
    pub output: OutputArguments,
}

#[derive(Args)]
pub struct ListFindingsArguments {
    /// Only findings at or above this level.
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub level: Option<FindingLevel>,
    /// Only findings of this rule: a Sigma rule's id, or an alarm's name (repeatable).
    #[arg(long = "rule", value_name = "RULE_ID")]
    pub rules: Vec<String>,
    /// Only findings of this account (repeatable).
    #[arg(long = "account", value_name = "ACCOUNT_ID")]
    pub accounts: Vec<String>,
    /// Only findings in this state (repeatable).
    #[arg(long = "state", value_enum, value_name = "STATE")]
    pub states: Vec<FindingState>,
    /// Only findings raised at or after this: RFC 3339, a date, or a span before now (7d).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only Sigma matches, only alarm transitions, or only Insights.
    #[arg(long, value_enum)]
    pub kind: Option<FindingKind>,
    /// At most this many findings, newest first (fetched page by page).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub max: u32,
    #[command(flatten)]
    pub output: OutputArguments,
}

/// A triage change: which finding, and why.
#[derive(Args)]
pub struct TriageArguments {
    /// The finding's id, as `orgtrail findings list` shows it.
    #[arg(value_name = "ID")]
    pub finding_id: i64,
    /// Why (kept with the finding and in the audit log).
    #[arg(long)]
    pub reason: String,
}

#[derive(Args)]
pub struct CreateSuppressionArguments {
    /// The Sigma rule's id (or an alarm's name) whose matches it silences.
    #[arg(long = "rule", value_name = "RULE_ID")]
    pub rule_id: String,
    /// Only matches on events of this account (repeatable; any of them).
    #[arg(long = "account", value_name = "ACCOUNT_ID")]
    pub accounts: Vec<String>,
    /// Only matches on events by this principal, a userIdentity.arn (repeatable; any of them).
    #[arg(long = "principal", value_name = "ARN")]
    pub principals: Vec<String>,
    /// Only matches on events from this sourceIPAddress or CIDR range (repeatable; any of
    /// them).
    #[arg(long = "source-ip", value_name = "IP_OR_CIDR")]
    pub source_ips: Vec<String>,
    /// Why the activity is known-good (kept in the audit log).
    #[arg(long)]
    pub reason: String,
    /// When it ends: RFC 3339, a date (its end), or a span from now (+12h, +7d). Required: a
    /// suppression ends.
    #[arg(long, value_name = "T")]
    pub expires: String,
    #[command(flatten)]
    pub output: OutputArguments,
}

/// The rule files to send: each file given, and the `*.yml` and `*.yaml` files below each
/// directory given (in path order), named by their path. One that cannot be read stops
/// everything: the rules are added all or none.
pub fn read_rule_files(paths: &[PathBuf]) -> anyhow::Result<Vec<pb::RuleFile>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            collect_rule_files(path, &mut found)?;
            if found.is_empty() {
                bail!("{}: no *.yml or *.yaml files in it", path.display());
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files
        .iter()
        .map(|path| {
            let yaml = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok(pb::RuleFile {
                name: path.display().to_string(),
                yaml,
            })
        })
        .collect()
}

/// The request of `rules test`: the rule's text and the range; times relative to `now`.
pub fn test_rule_request(
    arguments: &TestRuleArguments,
    yaml: String,
    now: DateTime<Utc>,
) -> anyhow::Result<pb::TestRuleRequest> {
    Ok(pb::TestRuleRequest {
        yaml,
        start_time: timestamp_argument(arguments.start.as_deref(), RangeEnd::Start, now)?,
        end_time: timestamp_argument(arguments.end.as_deref(), RangeEnd::End, now)?,
        max_events: arguments.events.unwrap_or(0),
    })
}

/// The request of `detections replay`; times relative to `now`.
pub fn replay_request(
    arguments: &ReplayArguments,
    now: DateTime<Utc>,
) -> anyhow::Result<pb::ReplayDetectionsRequest> {
    Ok(pb::ReplayDetectionsRequest {
        start_time: timestamp_argument(Some(&arguments.start), RangeEnd::Start, now)?,
        end_time: timestamp_argument(Some(&arguments.end), RangeEnd::End, now)?,
    })
}

/// The filter of `findings list` (the page size and token are the pager's).
pub fn list_findings_request(
    arguments: &ListFindingsArguments,
    now: DateTime<Utc>,
) -> anyhow::Result<pb::ListFindingsRequest> {
    Ok(pb::ListFindingsRequest {
        min_level: arguments
            .level
            .map(|level| level.as_str().to_string())
            .unwrap_or_default(),
        rule_ids: arguments.rules.clone(),
        accounts: arguments.accounts.clone(),
        states: arguments
            .states
            .iter()
            .map(|state| state.as_str().to_string())
            .collect(),
        since: timestamp_argument(arguments.since.as_deref(), RangeEnd::Start, now)?,
        kind: arguments
            .kind
            .map(|kind| kind.as_str().to_string())
            .unwrap_or_default(),
        max_results: 0,
        next_token: String::new(),
    })
}

/// The request of `suppressions create`; the expiry relative to `now`.
pub fn create_suppression_request(
    arguments: &CreateSuppressionArguments,
    now: DateTime<Utc>,
) -> anyhow::Result<pb::CreateSuppressionRequest> {
    let expires_at = expiry_argument(&arguments.expires, now).context("--expires")?;
    Ok(pb::CreateSuppressionRequest {
        rule_id: arguments.rule_id.clone(),
        accounts: arguments.accounts.clone(),
        principals: arguments.principals.clone(),
        source_ips: arguments.source_ips.clone(),
        reason: arguments.reason.clone(),
        expires_at: Some(expires_at),
    })
}

/// The `*.yml` and `*.yaml` files below a directory, recursively.
fn collect_rule_files(directory: &Path, found: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(directory)
        .with_context(|| format!("cannot read {}", directory.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", directory.display()))?
            .path();
        if path.is_dir() {
            collect_rule_files(&path, found)?;
        } else if path
            .extension()
            .is_some_and(|extension| extension == "yml" || extension == "yaml")
        {
            found.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
