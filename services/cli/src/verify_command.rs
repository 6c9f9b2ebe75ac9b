//! `orgtrail verify`: proves a CloudTrail trail's log files against its digest files, offline
//! from the aggregator. Lists the digests of one account and region in the window (paginated,
//! from a start-after key, stopping past the window), reads them newest → oldest into the
//! `orgtrail_integrity` chain walk, hashes every log file they list (streamed gunzip and
//! SHA-256, a bounded number at a time), lists the log files actually present to find those no
//! digest lists, and reports every problem with the object it concerns.
//!
//! Exit status: 0 clean, 1 problems found, 2 nothing could be verified (an error, or no digest
//! in the window).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use orgtrail_integrity::{
    ArchiveLayout, ChainWalk, CloudTrailLayout, KeyLayout, LogFileStatus, PublicKeys, S3Location,
    VerificationReport,
};
use orgtrail_trail_s3::{hash_log_files, read_chain};

use crate::time_argument::{parse_time, RangeEnd};
use crate::verify_aws::VerifyAws;
use crate::verify_output::{print_report, ReportScope};
use crate::SummaryFormat;

#[derive(Args)]
pub struct VerifyArguments {
    /// The trail's bucket.
    #[arg(long)]
    pub bucket: String,
    /// The trail's S3 key prefix, if it has one.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// The account whose log files to verify (12 digits); not with --archive.
    #[arg(long, required_unless_present = "archive")]
    pub account: Option<String>,
    /// The region whose log files to verify; not with --archive.
    #[arg(long, required_unless_present = "archive")]
    pub region: Option<String>,
    /// From (log files delivered at or after): RFC 3339, a date, or a span before now (7d);
    /// with --archive, by default the archive's beginning.
    #[arg(long, required_unless_present = "archive")]
    pub start: Option<String>,
    /// To (delivered at or before), in the same forms; default now.
    #[arg(long)]
    pub end: Option<String>,
    /// The public keys, as `aws cloudtrail list-public-keys` prints them; without it they are
    /// asked of CloudTrail (ListPublicKeys) in --region.
    #[arg(long)]
    pub public_keys: Option<PathBuf>,
    /// For an organization trail: its organization id (o-…), which its keys carry.
    #[arg(long)]
    pub organization_id: Option<String>,
    /// The trail's name, when several trails deliver digests to the same place.
    #[arg(long)]
    pub trail: Option<String>,
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    pub output: SummaryFormat,
    /// An S3 (and CloudTrail) endpoint other than AWS's, e.g. a local test server.
    #[arg(long, env = "ORGTRAIL_AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Log files read and hashed at a time.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Table output lists every digest and log file, not only the problems.
    #[arg(long)]
    pub verbose: bool,
    /// Verify orgtrail's own archive in --bucket under --prefix (its digests and Parquet
    /// objects) instead of a CloudTrail trail. Without --public-keys, the keys published
    /// beside the archive are used (pin them with --public-keys: whoever can write the bucket
    /// can replace those).
    #[arg(long, conflicts_with_all = ["account", "region", "organization_id", "trail"])]
    pub archive: bool,
    /// With --archive: the seconds between two of its digests (the aggregator's
    /// archive.digest_interval_seconds).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub digest_interval_seconds: u64,
}

pub async fn run_verify(arguments: VerifyArguments) -> anyhow::Result<ExitCode> {
    match verify(&arguments).await {
        Ok(code) => Ok(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            Ok(ExitCode::from(2))
        }
    }
}

/// What the command verifies: one account and region of a trail, over a window.
pub struct VerifyScope {
    pub bucket: String,
    pub layout: CloudTrailLayout,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub trail: Option<String>,
}

impl VerifyScope {
    fn from_arguments(
        arguments: &VerifyArguments,
        now: DateTime<Utc>,
    ) -> anyhow::Result<VerifyScope> {
        let account = arguments.account.clone().unwrap_or_default();
        let region = arguments.region.clone().unwrap_or_default();
        if !orgtrail_domain::s3_key::is_account_id(&account) {
            bail!("--account {account:?} is not a 12-digit account id");
        }
        if let Some(organization_id) = &arguments.organization_id {
            if !orgtrail_domain::s3_key::is_organization_id(organization_id) {
                bail!("--organization-id {organization_id:?} is not an organization id (o-…)");
            }
        }
        if region.is_empty() || region.contains('/') {
            bail!("--region {region:?} is not a region");
        }
        let (start, end) = window(arguments, now)?;
        Ok(VerifyScope {
            bucket: arguments.bucket.clone(),
            layout: CloudTrailLayout {
                prefix: arguments.prefix.trim_matches('/').to_string(),
                organization_id: arguments.organization_id.clone(),
                account_id: account,
                region,
            },
            start,
            end,
            trail: arguments.trail.clone(),
        })
    }

    /// Digests ending up to an hour after the window cover the log files delivered in it.
    pub fn digests_until(&self) -> DateTime<Utc> {
        self.end + Duration::hours(1)
    }
}

/// The public keys of `--public-keys`, as `aws cloudtrail list-public-keys` prints them.
fn read_public_keys_file(path: &std::path::Path) -> anyhow::Result<PublicKeys> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    PublicKeys::from_list_public_keys_json(&text).with_context(|| path.display().to_string())
}

/// `--start` (by default the beginning) to `--end` (by default now).
fn window(
    arguments: &VerifyArguments,
    now: DateTime<Utc>,
) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
    let start = match &arguments.start {
        Some(text) => parse_time(text, RangeEnd::Start, now).map_err(|message| anyhow!(message))?,
        None => DateTime::UNIX_EPOCH,
    };
    let end = match &arguments.end {
        Some(text) => parse_time(text, RangeEnd::End, now).map_err(|message| anyhow!(message))?,
        None => now,
    };
    if end < start {
        bail!("--end is before --start");
    }
    Ok((start, end))
}

async fn verify(arguments: &VerifyArguments) -> anyhow::Result<ExitCode> {
    if arguments.archive {
        return verify_archive(arguments).await;
    }
    let began = Instant::now();
    let scope = VerifyScope::from_arguments(arguments, Utc::now())?;
    let region = scope.layout.region.clone();
    let aws = VerifyAws::load(arguments.endpoint_url.as_deref(), &region).await;
    let public_keys = match &arguments.public_keys {
        Some(path) => read_public_keys_file(path)?,
        None => {
            aws.list_public_keys(scope.start, scope.digests_until())
                .await?
        }
    };
    let digest_keys = aws.list_digest_keys(&scope).await?;
    if digest_keys.is_empty() {
        eprintln!(
            "no digest files in s3://{}/{} for {} to {}: is log file validation on for this trail?",
            scope.bucket,
            scope.layout.digest_prefix(),
            scope.start,
            scope.digests_until()
        );
        return Ok(ExitCode::from(2));
    }

    // Newest → oldest, read a few ahead, walked in order.
    let mut walk = ChainWalk::new(scope.layout.clone(), public_keys);
    let to_hash = read_chain(&aws.s3, &mut walk, &scope.bucket, &digest_keys).await?;

    // The log files the digests list, hashed a bounded number at a time, while the ones
    // present are listed.
    let (covered_from, covered_until) = walk
        .coverage()
        .unwrap_or((scope.start, scope.digests_until()));
    let hashes = hash_log_files(
        to_hash,
        usize::from(arguments.concurrency),
        |location| async {
            let read = aws.s3.hash_log_file(&location).await;
            read.map(|read| (location, read))
        },
    );
    let present = aws.list_log_files(
        &scope,
        covered_from.min(scope.start),
        covered_until.max(scope.end),
    );
    let (hashes, present) = tokio::join!(hashes, present);
    for (location, read) in hashes? {
        walk.accept_log_file(&location, read);
    }
    // Digests ending by the window's end should be there, if an hour has passed since.
    let due_until = scope.end.min(Utc::now() - Duration::hours(1));
    let report = walk.finish(present?, scope.start, due_until);
    let printed = ReportScope {
        bucket: &scope.bucket,
        digest_prefix: scope.layout.digest_prefix(),
        start: scope.start,
        end: scope.end,
    };
    print_report(&report, arguments, &printed)?;
    finish(&report, began)
}

/// The time taken and the exit status of a report.
fn finish(report: &VerificationReport, began: Instant) -> anyhow::Result<ExitCode> {
    let seconds = began.elapsed().as_secs_f64();
    let verified = report.log_files_with(LogFileStatus::Verified);
    eprintln!(
        "{} digests and {} log files read in {seconds:.1} s ({:.0} log files/s)",
        report.digests.len(),
        verified,
        verified as f64 / seconds.max(0.001)
    );
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `orgtrail verify --archive`: orgtrail's archive in --bucket under --prefix, its digests
/// newest first through the same chain walk, every object they list hashed, every object
/// present listed (its `LastModified` standing for its delivery) to find those no digest lists.
async fn verify_archive(arguments: &VerifyArguments) -> anyhow::Result<ExitCode> {
    let began = Instant::now();
    let now = Utc::now();
    let (start, end) = window(arguments, now)?;
    let interval = Duration::seconds(i64::try_from(arguments.digest_interval_seconds)?);
    let mut layout = ArchiveLayout::new(&arguments.prefix, interval);
    let aws = VerifyAws::load(arguments.endpoint_url.as_deref(), "us-east-1").await;
    let public_keys = match &arguments.public_keys {
        Some(path) => read_public_keys_file(path)?,
        None => {
            let key = layout.public_keys_key();
            eprintln!(
                "using the public keys published at s3://{}/{key} (pin them with --public-keys)",
                arguments.bucket
            );
            let text = aws.s3.read_object(&arguments.bucket, &key).await?;
            PublicKeys::from_list_public_keys_json(&text)
                .with_context(|| format!("s3://{}/{key}", arguments.bucket))?
        }
    };
    let until = end + interval;
    let digest_keys = aws
        .s3
        .list_digest_keys(&arguments.bucket, &layout, start, until)
        .await?;
    if digest_keys.is_empty() {
        eprintln!(
            "no archive digests in s3://{}/{} for {start} to {until}",
            arguments.bucket,
            layout.digest_prefix()
        );
        return Ok(ExitCode::from(2));
    }
    let objects = aws
        .s3
        .list_log_files(&arguments.bucket, &layout, start, until)
        .await?;
    for object in &objects {
        if let Some(written) = object.last_modified {
            layout.written.insert(object.key.clone(), written);
        }
    }
    let mut walk = ChainWalk::new(layout, public_keys);
    let to_hash = read_chain(&aws.s3, &mut walk, &arguments.bucket, &digest_keys).await?;
    let hashes = hash_log_files(
        to_hash,
        usize::from(arguments.concurrency),
        |location| async {
            let read = aws.s3.hash_log_file(&location).await;
            read.map(|read| (location, read))
        },
    )
    .await?;
    for (location, read) in hashes {
        walk.accept_log_file(&location, read);
    }
    let digest_prefix = walk.layout().digest_prefix();
    let present = objects
        .into_iter()
        .map(|object| S3Location::new(arguments.bucket.clone(), object.key));
    // A digest is written a round after its interval ends.
    let due_until = end.min(now - interval * 2);
    let report = walk.finish(present, start, due_until);
    let printed = ReportScope {
        bucket: &arguments.bucket,
        digest_prefix,
        start,
        end,
    };
    print_report(&report, arguments, &printed)?;
    finish(&report, began)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        verify: VerifyArguments,
    }

    fn scope(arguments: &[&str]) -> anyhow::Result<VerifyScope> {
        let mut words = vec!["verify", "--bucket", "b"];
        words.extend_from_slice(arguments);
        let command = Command::try_parse_from(words)?;
        let now = DateTime::parse_from_rfc3339("2024-05-02T00:00:00Z")?.with_timezone(&Utc);
        VerifyScope::from_arguments(&command.verify, now)
    }

    #[test]
    fn the_scope_is_the_accounts_region_folder_over_the_window() {
        let scope = scope(&[
            "--prefix",
            "/trails/",
            "--account",
            "123456789012",
            "--region",
            "eu-west-1",
            "--organization-id",
            "o-abcdefghij",
            "--start",
            "2024-05-01",
        ])
        .unwrap();
        assert_eq!(
            scope.layout.digest_prefix(),
            "trails/AWSLogs/o-abcdefghij/123456789012/CloudTrail-Digest/eu-west-1/"
        );
        assert_eq!(scope.end.to_rfc3339(), "2024-05-02T00:00:00+00:00");
        assert_eq!(
            scope.digests_until().to_rfc3339(),
            "2024-05-02T01:00:00+00:00"
        );
    }

    #[test]
    fn arguments_that_name_no_scope_are_refused_with_the_reason() {
        let cases = [
            (
                vec!["--account", "1234", "--region", "r", "--start", "1d"],
                "12-digit",
            ),
            (
                vec![
                    "--account",
                    "123456789012",
                    "--region",
                    "r",
                    "--start",
                    "1d",
                    "--organization-id",
                    "org",
                ],
                "organization id",
            ),
            (
                vec![
                    "--account",
                    "123456789012",
                    "--region",
                    "r",
                    "--start",
                    "2024-05-01",
                    "--end",
                    "2024-04-01",
                ],
                "before --start",
            ),
            (
                vec![
                    "--account",
                    "123456789012",
                    "--region",
                    "r",
                    "--start",
                    "then",
                ],
                "not a time",
            ),
        ];
        for (arguments, reason) in cases {
            let error = scope(&arguments).err().unwrap().to_string();
            assert!(error.contains(reason), "{arguments:?}: {error}");
        }
    }
}
