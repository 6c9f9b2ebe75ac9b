//! `orgtrail verify`: proves a CloudTrail trail's log files against its digest files, offline
//! from the aggregator. Lists the digests of one account and region in the window (paginated,
//! from a start-after key, stopping past the window), reads them newest → oldest into the
//! `orgtrail_integrity` chain walk, hashes every log file they list (streamed gunzip and
//! SHA-256, a bounded number at a time), lists the log files actually present to find those no
//! digest lists, and reports every problem with the object it concerns.
//!
//! Exit status: 0 clean, 1 problems found, 2 nothing could be verified (an error, or no digest
//! in the window).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use futures::{StreamExt, TryStreamExt};
use orgtrail_client::table::render_table;
use orgtrail_integrity::{
    ChainWalk, CloudTrailLayout, ContentHasher, DigestKey, DigestRead, KeyLayout, LogFileRead,
    LogFileStatus, PublicKey, PublicKeys, S3Location, VerificationReport,
};

use crate::time_argument::{parse_time, RangeEnd};
use crate::SummaryFormat;

/// A digest names its log files; it is small. Anything this large is not a digest.
const MAX_DIGEST_BYTES: u64 = 64 << 20;
/// Digests read ahead of the walk.
const DIGESTS_IN_FLIGHT: usize = 8;

#[derive(Args)]
pub struct VerifyArguments {
    /// The trail's bucket.
    #[arg(long)]
    pub bucket: String,
    /// The trail's S3 key prefix, if it has one.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// The account whose log files to verify (12 digits).
    #[arg(long)]
    pub account: String,
    /// The region whose log files to verify.
    #[arg(long)]
    pub region: String,
    /// From (log files delivered at or after): RFC 3339, a date, or a span before now (7d).
    #[arg(long)]
    pub start: String,
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
struct VerifyScope {
    bucket: String,
    layout: CloudTrailLayout,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    trail: Option<String>,
}

impl VerifyScope {
    fn from_arguments(
        arguments: &VerifyArguments,
        now: DateTime<Utc>,
    ) -> anyhow::Result<VerifyScope> {
        if !orgtrail_domain::s3_key::is_account_id(&arguments.account) {
            bail!(
                "--account {:?} is not a 12-digit account id",
                arguments.account
            );
        }
        if let Some(organization_id) = &arguments.organization_id {
            if !orgtrail_domain::s3_key::is_organization_id(organization_id) {
                bail!("--organization-id {organization_id:?} is not an organization id (o-…)");
            }
        }
        if arguments.region.is_empty() || arguments.region.contains('/') {
            bail!("--region {:?} is not a region", arguments.region);
        }
        let start = parse_time(&arguments.start, RangeEnd::Start, now)
            .map_err(|message| anyhow!(message))?;
        let end = match &arguments.end {
            Some(text) => {
                parse_time(text, RangeEnd::End, now).map_err(|message| anyhow!(message))?
            }
            None => now,
        };
        if end < start {
            bail!("--end is before --start");
        }
        Ok(VerifyScope {
            bucket: arguments.bucket.clone(),
            layout: CloudTrailLayout {
                prefix: arguments.prefix.trim_matches('/').to_string(),
                organization_id: arguments.organization_id.clone(),
                account_id: arguments.account.clone(),
                region: arguments.region.clone(),
            },
            start,
            end,
            trail: arguments.trail.clone(),
        })
    }

    /// Digests ending up to an hour after the window cover the log files delivered in it.
    fn digests_until(&self) -> DateTime<Utc> {
        self.end + Duration::hours(1)
    }
}

async fn verify(arguments: &VerifyArguments) -> anyhow::Result<ExitCode> {
    let began = Instant::now();
    let scope = VerifyScope::from_arguments(arguments, Utc::now())?;
    let aws = VerifyAws::load(arguments.endpoint_url.as_deref(), &arguments.region).await;
    let public_keys = match &arguments.public_keys {
        Some(path) => {
            let text =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            PublicKeys::from_list_public_keys_json(&text)
                .with_context(|| path.display().to_string())?
        }
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
    let mut to_hash: Vec<S3Location> = Vec::new();
    let mut digests = futures::stream::iter(digest_keys.iter().rev())
        .map(|key| aws.read_digest(&scope.bucket, &key.key))
        .buffered(DIGESTS_IN_FLIGHT);
    while let Some(read) = digests.next().await {
        to_hash.extend(walk.accept_digest(read?));
    }
    drop(digests);

    // The log files the digests list, hashed a bounded number at a time, while the ones
    // present are listed.
    let (covered_from, covered_until) = walk
        .coverage()
        .unwrap_or((scope.start, scope.digests_until()));
    let hashes = futures::stream::iter(to_hash)
        .map(|location| async {
            let read = aws.hash_log_file(&location).await;
            read.map(|read| (location, read))
        })
        .buffer_unordered(usize::from(arguments.concurrency))
        .try_collect::<Vec<_>>();
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
    print_report(&report, arguments, &scope)?;
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

/// S3 and CloudTrail as the command reaches them: credentials the standard way (environment,
/// profile, web identity), path-style addressing with --endpoint-url.
struct VerifyAws {
    s3: aws_sdk_s3::Client,
    cloudtrail: aws_sdk_cloudtrail::Client,
}

impl VerifyAws {
    async fn load(endpoint_url: Option<&str>, trail_region: &str) -> VerifyAws {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
        if let Some(endpoint_url) = endpoint_url {
            loader = loader.endpoint_url(endpoint_url);
        }
        let base = loader.load().await;
        let mut s3 =
            aws_sdk_s3::config::Builder::from(&base).force_path_style(endpoint_url.is_some());
        if base.region().is_none() {
            s3 = s3.region(Region::new(trail_region.to_string()));
        }
        // Public keys are per region: the trail region's.
        let cloudtrail = aws_sdk_cloudtrail::config::Builder::from(&base)
            .region(Region::new(trail_region.to_string()))
            .build();
        VerifyAws {
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            cloudtrail: aws_sdk_cloudtrail::Client::from_conf(cloudtrail),
        }
    }

    /// CloudTrail's public keys valid over the window (ListPublicKeys, every page), keyed by
    /// fingerprint.
    async fn list_public_keys(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<PublicKeys> {
        let mut keys = PublicKeys::new();
        let mut next_token = None;
        loop {
            let answer = self
                .cloudtrail
                .list_public_keys()
                .start_time(smithy_time(from))
                .end_time(smithy_time(until))
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|error| anyhow!("cloudtrail:ListPublicKeys failed (give --public-keys FILE to verify offline): {}", DisplayErrorContext(&error)))?;
            for key in answer.public_key_list() {
                let (Some(value), Some(fingerprint)) = (key.value(), key.fingerprint()) else {
                    continue;
                };
                keys.insert(PublicKey {
                    fingerprint: fingerprint.to_string(),
                    der: value.as_ref().to_vec(),
                    validity_start: key.validity_start_time().and_then(chrono_time),
                    validity_end: key.validity_end_time().and_then(chrono_time),
                });
            }
            next_token = answer.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(keys);
            }
        }
    }

    /// The digest keys of the scope ending in the window, oldest first; one trail's.
    async fn list_digest_keys(&self, scope: &VerifyScope) -> anyhow::Result<Vec<DigestKey>> {
        let layout = &scope.layout;
        let until = scope.digests_until();
        let keys = self
            .list_keys(
                &scope.bucket,
                &layout.digest_prefix(),
                &layout.digest_start_after(scope.start),
                |key| layout.is_listed_after(key, until),
            )
            .await?;
        let mut digests: Vec<DigestKey> = keys
            .iter()
            .filter_map(|key| layout.parse_digest_key(key))
            .filter(|key| key.end_time >= scope.start && key.end_time <= until)
            .collect();
        let mut trails: Vec<&str> = digests.iter().map(|key| key.trail_name.as_str()).collect();
        trails.sort_unstable();
        trails.dedup();
        match &scope.trail {
            Some(trail) => digests.retain(|key| &key.trail_name == trail),
            None if trails.len() > 1 => bail!(
                "digests of several trails are delivered here ({}): name one with --trail",
                trails.join(", ")
            ),
            None => {}
        }
        digests.sort_by_key(|key| key.end_time);
        Ok(digests)
    }

    /// The log files present, delivered from `from` to `until`.
    async fn list_log_files(
        &self,
        scope: &VerifyScope,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<S3Location>> {
        let layout = &scope.layout;
        let from = from - Duration::minutes(1);
        let keys = self
            .list_keys(
                &scope.bucket,
                &layout.log_file_prefix(),
                &layout.log_file_start_after(from),
                |key| layout.is_listed_after(key, until),
            )
            .await?;
        Ok(keys
            .into_iter()
            .filter(|key| {
                layout
                    .log_file_delivery_time(key)
                    .is_some_and(|delivered| delivered >= from && delivered <= until)
            })
            .map(|key| S3Location::new(scope.bucket.clone(), key))
            .collect())
    }

    /// Keys under `prefix` after `start_after`, page by page, until `past_the_end` says a key is
    /// beyond what is wanted.
    async fn list_keys(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        past_the_end: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut continuation = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .start_after(start_after)
                .set_continuation_token(continuation)
                .send()
                .await
                .map_err(|error| {
                    anyhow!(
                        "cannot list s3://{bucket}/{prefix}: {}",
                        DisplayErrorContext(&error)
                    )
                })?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                if past_the_end(key) {
                    return Ok(keys);
                }
                keys.push(key.to_string());
            }
            continuation = page.next_continuation_token().map(str::to_string);
            if continuation.is_none() || page.is_truncated() != Some(true) {
                return Ok(keys);
            }
        }
    }

    /// A digest object: its content gunzipped and its `x-amz-meta-signature`; no content when
    /// it is gone.
    async fn read_digest(&self, bucket: &str, key: &str) -> anyhow::Result<DigestRead> {
        let location = S3Location::new(bucket, key);
        let output = match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(output) => output,
            Err(error) if is_no_such_key(&error) => {
                return Ok(DigestRead {
                    location,
                    content: None,
                    metadata_signature: None,
                })
            }
            Err(error) => bail!(
                "cannot read digest {location}: {}",
                DisplayErrorContext(&error)
            ),
        };
        let metadata_signature = output
            .metadata()
            .and_then(|metadata| metadata.get("signature"))
            .cloned();
        let bytes = output
            .body
            .collect()
            .await
            .with_context(|| format!("cannot read digest {location}"))?
            .into_bytes();
        let mut content = Vec::new();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            flate2::read::MultiGzDecoder::new(bytes.as_ref())
                .take(MAX_DIGEST_BYTES)
                .read_to_end(&mut content)
                .with_context(|| format!("digest {location} is not valid gzip"))?;
        } else {
            content = bytes.to_vec();
        }
        Ok(DigestRead {
            location,
            content: Some(content),
            metadata_signature,
        })
    }

    /// SHA-256 of a log file's uncompressed content, streamed: each piece of the body is
    /// gunzipped into the hasher as it arrives.
    async fn hash_log_file(&self, location: &S3Location) -> anyhow::Result<LogFileRead> {
        let output = match self
            .s3
            .get_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) if is_no_such_key(&error) => return Ok(LogFileRead::Missing),
            Err(error) => bail!(
                "cannot read log file {location}: {}",
                DisplayErrorContext(&error)
            ),
        };
        let mut body = output.body;
        let mut sink = HashSink::Undecided;
        while let Some(piece) = body
            .try_next()
            .await
            .with_context(|| format!("cannot read log file {location}"))?
        {
            sink.write(&piece)
                .with_context(|| format!("log file {location} is not valid gzip"))?;
        }
        let hash = sink
            .finish()
            .with_context(|| format!("log file {location} is not valid gzip"))?;
        Ok(LogFileRead::Hashed(hash))
    }
}

/// Where a log file's bytes go: gunzipped into the hasher when they start as gzip, else
/// straight in (CloudTrail's are always gzip'd; plain JSON is hashed as it is).
enum HashSink {
    Undecided,
    Gzip(Box<flate2::write::MultiGzDecoder<ContentHasher>>),
    Plain(ContentHasher),
}

impl HashSink {
    fn write(&mut self, piece: &[u8]) -> std::io::Result<()> {
        if let HashSink::Undecided = self {
            *self = if piece.starts_with(&[0x1f, 0x8b]) {
                HashSink::Gzip(Box::new(flate2::write::MultiGzDecoder::new(
                    ContentHasher::new(),
                )))
            } else {
                HashSink::Plain(ContentHasher::new())
            };
        }
        match self {
            HashSink::Gzip(decoder) => decoder.write_all(piece),
            HashSink::Plain(hasher) => {
                hasher.update(piece);
                Ok(())
            }
            HashSink::Undecided => Ok(()),
        }
    }

    fn finish(self) -> std::io::Result<orgtrail_integrity::Sha256Hash> {
        Ok(match self {
            HashSink::Gzip(decoder) => decoder.finish()?.finish(),
            HashSink::Plain(hasher) => hasher.finish(),
            HashSink::Undecided => ContentHasher::new().finish(),
        })
    }
}

fn is_no_such_key(
    error: &aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::get_object::GetObjectError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
) -> bool {
    error
        .as_service_error()
        .is_some_and(|service| service.is_no_such_key())
        || error
            .raw_response()
            .is_some_and(|response| response.status().as_u16() == 404)
}

fn smithy_time(time: DateTime<Utc>) -> aws_sdk_cloudtrail::primitives::DateTime {
    aws_sdk_cloudtrail::primitives::DateTime::from_secs(time.timestamp())
}

fn chrono_time(time: &aws_sdk_cloudtrail::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

fn print_report(
    report: &VerificationReport,
    arguments: &VerifyArguments,
    scope: &VerifyScope,
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
                "digest_prefix": scope.layout.digest_prefix(),
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
