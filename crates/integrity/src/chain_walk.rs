//! The chain walk, a pure state machine. The caller lists the digests of a scope, reads them
//! newest → oldest and hands each to [`ChainWalk::accept_digest`], which checks its signature,
//! where it says it was written, its link from the newer digest and the hours between them,
//! and answers the log files it lists; the caller hashes those (in any order, in parallel) and
//! hands each hash to [`ChainWalk::accept_log_file`]; at last [`ChainWalk::finish`] takes the
//! log files actually present, to find those no digest lists, and gives the report.
//!
//! Unlike `aws cloudtrail validate-logs`, any number of consecutive missing digests is found:
//! the chain names the first; the ones beyond are inferred from the hourly spacing between the
//! digest the chain lost and the next one that is there.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::digest::{Digest, PreviousDigest, S3Location};
use crate::digest_key::{DigestKey, KeyLayout};
use crate::hash_value::Sha256Hash;
use crate::problem::{DigestOutcome, LogFileOutcome, LogFileStatus, Problem};
use crate::public_keys::{PublicKeys, SignatureProblem};

/// CloudTrail delivers a digest every hour.
pub const DIGEST_INTERVAL: Duration = Duration::hours(1);

/// At most this many missing digests are inferred in one run (a year of hours).
const MAX_INFERRED_MISSING: i64 = 24 * 366;

/// A digest as read from its bucket.
#[derive(Clone, Debug)]
pub struct DigestRead {
    /// Where it was read.
    pub location: S3Location,
    /// Its uncompressed content; `None` when it was listed but is gone (NoSuchKey).
    pub content: Option<Vec<u8>>,
    /// Its `x-amz-meta-signature` metadata, hex.
    pub metadata_signature: Option<String>,
}

/// A log file a digest lists, as the caller found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFileRead {
    /// SHA-256 of its uncompressed content.
    Hashed(Sha256Hash),
    /// Not there (NoSuchKey).
    Missing,
}

/// The walk over one chain of digests (one trail, account and region).
pub struct ChainWalk<L: KeyLayout> {
    layout: L,
    public_keys: PublicKeys,
    /// The link the last digest on the chain holds to the one before it.
    expected: Option<ExpectedDigest>,
    digests: Vec<DigestOutcome>,
    log_files: BTreeMap<S3Location, ListedLogFile>,
    problems: Vec<Problem>,
    /// The oldest `digestStartTime` and the newest `digestEndTime` read.
    coverage: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The hours of missing digests: their log files cannot be verified (the missing digest
    /// is the problem, not they).
    uncovered: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// The newest digest read, by its key: where missing newer digests are named from.
    newest: Option<(S3Location, DigestKey)>,
}

struct ExpectedDigest {
    link: PreviousDigest,
    /// The digest that holds the link.
    newer: S3Location,
    newer_start_time: DateTime<Utc>,
}

struct ListedLogFile {
    digest: S3Location,
    expected: Sha256Hash,
    status: LogFileStatus,
}

/// What the walk found.
#[derive(Clone, Debug, Serialize)]
pub struct VerificationReport {
    /// Newest first, as read.
    pub digests: Vec<DigestOutcome>,
    pub log_files: Vec<LogFileOutcome>,
    pub problems: Vec<Problem>,
    /// The hours the digests read cover (oldest start, newest end).
    pub covered_from: Option<DateTime<Utc>>,
    pub covered_until: Option<DateTime<Utc>>,
}

impl VerificationReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn log_files_with(&self, status: LogFileStatus) -> usize {
        self.log_files
            .iter()
            .filter(|file| file.status == status)
            .count()
    }

    pub fn digests_verified(&self) -> usize {
        self.digests.iter().filter(|digest| digest.verified).count()
    }
}

impl<L: KeyLayout> ChainWalk<L> {
    pub fn new(layout: L, public_keys: PublicKeys) -> ChainWalk<L> {
        ChainWalk {
            layout,
            public_keys,
            expected: None,
            digests: Vec::new(),
            log_files: BTreeMap::new(),
            problems: Vec::new(),
            coverage: None,
            uncovered: Vec::new(),
            newest: None,
        }
    }

    pub fn layout(&self) -> &L {
        &self.layout
    }

    /// The next digest, newest → oldest; answers the log files it lists, to be hashed.
    pub fn accept_digest(&mut self, read: DigestRead) -> Vec<S3Location> {
        let problems_before = self.problems.len();
        if self.newest.is_none() {
            self.newest = self
                .layout
                .parse_digest_key(&read.location.key)
                .map(|key| (read.location.clone(), key));
        }
        let parsed = read.content.as_deref().map(Digest::parse);
        let linked = self.link_for(
            &read,
            parsed.as_ref().and_then(|parsed| parsed.as_ref().ok()),
        );
        let digest = match parsed {
            None => {
                self.problems.push(Problem::DigestMissing {
                    location: read.location.clone(),
                    newer_digest: linked
                        .map(|expected| expected.newer)
                        .unwrap_or_else(|| read.location.clone()),
                    inferred: false,
                });
                self.uncover_hour_before(&read.location.key);
                self.record_outcome(&read.location, None, problems_before);
                return Vec::new();
            }
            Some(Err(error)) => {
                self.problems.push(Problem::DigestMalformed {
                    location: read.location.clone(),
                    reason: error.to_string(),
                });
                // Its log files cannot be told: the hour its key names is not covered.
                self.uncover_hour_before(&read.location.key);
                self.record_outcome(&read.location, None, problems_before);
                return Vec::new();
            }
            Some(Ok(digest)) => digest,
        };
        if digest.location != read.location {
            self.problems.push(Problem::DigestMoved {
                location: read.location.clone(),
                claimed: digest.location.clone(),
            });
        }
        match &linked {
            Some(expected) => self.check_linked(&read, &digest, expected),
            None => match &read.metadata_signature {
                Some(signature) => self.check_signature(&read.location, &digest, signature, ""),
                None => self.problems.push(Problem::DigestBadSignature {
                    location: read.location.clone(),
                    reason:
                        "it has no x-amz-meta-signature metadata and no newer digest links to it"
                            .into(),
                }),
            },
        }
        self.expected = digest.previous.clone().map(|link| ExpectedDigest {
            link,
            newer: read.location.clone(),
            newer_start_time: digest.digest_start_time,
        });
        self.coverage = Some(match self.coverage {
            None => (digest.digest_start_time, digest.digest_end_time),
            Some((from, until)) => (
                from.min(digest.digest_start_time),
                until.max(digest.digest_end_time),
            ),
        });
        let mut to_check = Vec::with_capacity(digest.log_files.len());
        for log_file in &digest.log_files {
            self.log_files
                .entry(log_file.location.clone())
                .or_insert_with(|| ListedLogFile {
                    digest: read.location.clone(),
                    expected: log_file.hash_value,
                    status: LogFileStatus::Unchecked,
                });
            to_check.push(log_file.location.clone());
        }
        self.record_outcome(&read.location, Some(&digest), problems_before);
        to_check
    }

    /// A log file a digest listed, hashed (or found missing) by the caller.
    pub fn accept_log_file(&mut self, location: &S3Location, read: LogFileRead) {
        let Some(listed) = self.log_files.get_mut(location) else {
            return;
        };
        match read {
            LogFileRead::Hashed(actual) if actual == listed.expected => {
                listed.status = LogFileStatus::Verified;
            }
            LogFileRead::Hashed(actual) => {
                listed.status = LogFileStatus::Modified;
                self.problems.push(Problem::LogFileModified {
                    location: location.clone(),
                    digest: listed.digest.clone(),
                    expected: listed.expected,
                    actual,
                });
            }
            LogFileRead::Missing => {
                listed.status = LogFileStatus::Missing;
                self.problems.push(Problem::LogFileMissing {
                    location: location.clone(),
                    digest: listed.digest.clone(),
                });
            }
        }
    }

    /// The hours the digests read so far cover: the window in which every log file present
    /// must be listed.
    pub fn coverage(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.coverage
    }

    /// Ends the walk. `present_log_files`: the log files in the bucket delivered within
    /// [`ChainWalk::coverage`] (more does no harm); `listed_from`: the oldest digest end time
    /// the listing looked for, so that a link to an older digest is not taken for a missing one;
    /// `digests_due_until`: every digest ending by then should be there (the end of the window,
    /// or an hour before now), so that the newest digests deleted are found too.
    pub fn finish(
        mut self,
        present_log_files: impl IntoIterator<Item = S3Location>,
        listed_from: DateTime<Utc>,
        digests_due_until: DateTime<Utc>,
    ) -> VerificationReport {
        if let Some((newest_location, newest_key)) = self.newest.take() {
            let interval = self.layout.digest_interval();
            let mut end_time = newest_key.end_time + interval;
            let mut inferred = 0;
            while end_time <= digests_due_until && inferred < MAX_INFERRED_MISSING {
                self.problems.push(Problem::DigestMissing {
                    location: S3Location::new(
                        newest_location.bucket.clone(),
                        self.layout.digest_key_at(&newest_key, end_time),
                    ),
                    newer_digest: newest_location.clone(),
                    inferred: true,
                });
                self.uncovered.push((end_time - interval, end_time));
                end_time += interval;
                inferred += 1;
            }
        }
        if let Some(expected) = self.expected.take() {
            let end_time = self
                .layout
                .parse_digest_key(&expected.link.location.key)
                .map(|key| key.end_time);
            if end_time.is_none_or(|end_time| end_time >= listed_from) {
                self.uncover_hour_before(&expected.link.location.key);
                self.problems.push(Problem::DigestMissing {
                    location: expected.link.location,
                    newer_digest: expected.newer,
                    inferred: false,
                });
            }
        }
        let mut log_files: Vec<LogFileOutcome> = Vec::new();
        for location in present_log_files {
            if self.log_files.contains_key(&location) {
                continue;
            }
            let Some(delivered) = self.layout.log_file_delivery_time(&location.key) else {
                continue;
            };
            let in_missing_hour = self.uncovered.iter().any(|(from, until)| {
                delivered + Duration::minutes(1) > *from && delivered <= *until
            });
            let status = match self.coverage {
                _ if in_missing_hour => LogFileStatus::Unverifiable,
                // The name has the minute of delivery: a file of the newest digest's last minute
                // may belong to the next digest.
                Some((from, until))
                    if delivered >= from && delivered + Duration::minutes(1) <= until =>
                {
                    LogFileStatus::Unlisted
                }
                Some((from, _)) if delivered < from => continue,
                _ => LogFileStatus::NotYetCovered,
            };
            if status == LogFileStatus::Unlisted {
                self.problems.push(Problem::LogFileUnlisted {
                    location: location.clone(),
                });
            }
            log_files.push(LogFileOutcome {
                location,
                digest: None,
                status,
            });
        }
        log_files.extend(
            self.log_files
                .into_iter()
                .map(|(location, listed)| LogFileOutcome {
                    location,
                    digest: Some(listed.digest),
                    status: listed.status,
                }),
        );
        log_files.sort_by(|a, b| a.location.cmp(&b.location));
        VerificationReport {
            digests: self.digests,
            log_files,
            problems: self.problems,
            covered_from: self.coverage.map(|(from, _)| from),
            covered_until: self.coverage.map(|(_, until)| until),
        }
    }

    /// Whether `read` is the digest the chain expects next, taking the link if so. A digest
    /// older than the one expected means that one is missing (and, by the hours between, any
    /// before it); a newer one is off the chain and leaves the link in place.
    fn link_for(&mut self, read: &DigestRead, digest: Option<&Digest>) -> Option<ExpectedDigest> {
        let expected = self.expected.as_ref()?;
        let wanted = expected.link.location.clone();
        if read.location == wanted || digest.is_some_and(|digest| digest.location == wanted) {
            return self.expected.take();
        }
        let expected_end = self.layout.parse_digest_key(&wanted.key);
        let read_end = digest.map(|digest| digest.digest_end_time).or_else(|| {
            self.layout
                .parse_digest_key(&read.location.key)
                .map(|key| key.end_time)
        });
        let older = match (&expected_end, read_end) {
            (Some(expected_end), Some(read_end)) => read_end < expected_end.end_time,
            _ => read.location.key < wanted.key,
        };
        if !older {
            return None;
        }
        let expected = self.expected.take()?;
        self.problems.push(Problem::DigestMissing {
            location: expected.link.location.clone(),
            newer_digest: expected.newer.clone(),
            inferred: false,
        });
        if let (Some(missing_key), Some(read_end)) = (expected_end, read_end) {
            self.uncovered.push((read_end, missing_key.end_time));
            // Hourly digests: the missing digest ended at `missing_key.end_time`; the one read
            // ends `n` hours before it, so `n - 1` more are missing between.
            let interval = self.layout.digest_interval();
            let mut end_time = read_end + interval;
            let mut inferred = 0;
            while end_time + interval / 2 < missing_key.end_time && inferred < MAX_INFERRED_MISSING
            {
                self.problems.push(Problem::DigestMissing {
                    location: S3Location::new(
                        wanted.bucket.clone(),
                        self.layout.digest_key_at(&missing_key, end_time),
                    ),
                    newer_digest: expected.link.location.clone(),
                    inferred: true,
                });
                end_time += interval;
                inferred += 1;
            }
        }
        None
    }

    /// The hour before a missing digest's end time (from its key) is not covered.
    fn uncover_hour_before(&mut self, key: &str) {
        if let Some(key) = self.layout.parse_digest_key(key) {
            self.uncovered
                .push((key.end_time - self.layout.digest_interval(), key.end_time));
        }
    }

    fn check_linked(&mut self, read: &DigestRead, digest: &Digest, expected: &ExpectedDigest) {
        if digest.content_hash != expected.link.hash_value {
            self.problems.push(Problem::ChainBroken {
                location: read.location.clone(),
                newer_digest: expected.newer.clone(),
                expected: expected.link.hash_value,
                actual: digest.content_hash,
            });
        }
        self.check_signature(
            &read.location,
            digest,
            &expected.link.signature,
            " (the signature the newer digest holds)",
        );
        // The object's own signature too: a digest re-signed in place shows here even when
        // its content is intact.
        if let Some(metadata_signature) = &read.metadata_signature {
            if !metadata_signature
                .trim()
                .eq_ignore_ascii_case(&expected.link.signature)
            {
                self.check_signature(
                    &read.location,
                    digest,
                    metadata_signature,
                    " (its x-amz-meta-signature, which differs from the one the newer digest holds)",
                );
            }
        }
        if digest.digest_end_time != expected.newer_start_time {
            self.problems.push(Problem::Gap {
                location: read.location.clone(),
                newer_digest: expected.newer.clone(),
                older_end_time: digest.digest_end_time,
                newer_start_time: expected.newer_start_time,
            });
        }
    }

    fn check_signature(
        &mut self,
        location: &S3Location,
        digest: &Digest,
        signature: &str,
        which: &str,
    ) {
        match self.public_keys.verify_digest(digest, signature) {
            Ok(()) => {}
            Err(
                problem @ (SignatureProblem::UnknownKey { .. }
                | SignatureProblem::KeyNotValidAt { .. }),
            ) => self.problems.push(Problem::DigestUnknownKey {
                location: location.clone(),
                reason: problem.to_string(),
            }),
            Err(problem) => self.problems.push(Problem::DigestBadSignature {
                location: location.clone(),
                reason: format!("{problem}{which}"),
            }),
        }
    }

    fn record_outcome(
        &mut self,
        location: &S3Location,
        digest: Option<&Digest>,
        problems_before: usize,
    ) {
        let verified = digest.is_some()
            && !self.problems[problems_before..]
                .iter()
                .any(|problem| problem.location() == location);
        self.digests.push(DigestOutcome {
            location: location.clone(),
            digest_start_time: digest.map(|digest| digest.digest_start_time),
            digest_end_time: digest.map(|digest| digest.digest_end_time),
            starting: digest.is_some_and(Digest::is_starting_digest),
            log_files: digest.map_or(0, |digest| digest.log_files.len()),
            verified,
        });
    }
}
