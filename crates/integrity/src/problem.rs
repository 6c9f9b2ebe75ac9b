//! What can be wrong with a trail, each problem naming the object it concerns, and what became
//! of each digest and log file.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::digest::S3Location;
use crate::hash_value::Sha256Hash;

/// One thing wrong, with the object it concerns (`location`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// The log file's SHA-256 is not the one its digest lists.
    LogFileModified {
        location: S3Location,
        digest: S3Location,
        expected: Sha256Hash,
        actual: Sha256Hash,
    },
    /// A digest lists the log file; it is not there.
    LogFileMissing {
        location: S3Location,
        digest: S3Location,
    },
    /// The log file is there, delivered within the digests' hours, and no digest lists it.
    LogFileUnlisted { location: S3Location },
    /// A digest that should be there is not. `inferred`: the chain's link to it went with
    /// another missing digest, so its key is inferred from the hourly spacing of digests.
    DigestMissing {
        location: S3Location,
        /// The digest whose chain led here (for an inferred key: the digest read next to it).
        newer_digest: S3Location,
        inferred: bool,
    },
    /// The digest cannot be read as a digest.
    DigestMalformed {
        location: S3Location,
        reason: String,
    },
    /// The signature does not verify (or there is none).
    DigestBadSignature {
        location: S3Location,
        reason: String,
    },
    /// No public key with the digest's fingerprint (valid at its time).
    DigestUnknownKey {
        location: S3Location,
        reason: String,
    },
    /// The digest says it was written elsewhere (`digestS3Bucket`/`digestS3Object`).
    DigestMoved {
        location: S3Location,
        claimed: S3Location,
    },
    /// The newer digest's `previousDigestHashValue` is not the SHA-256 of this digest.
    ChainBroken {
        location: S3Location,
        newer_digest: S3Location,
        expected: Sha256Hash,
        actual: Sha256Hash,
    },
    /// Two linked digests are not contiguous: the older one's `digestEndTime` is not the newer
    /// one's `digestStartTime`.
    Gap {
        location: S3Location,
        newer_digest: S3Location,
        older_end_time: DateTime<Utc>,
        newer_start_time: DateTime<Utc>,
    },
}

impl Problem {
    /// The kind in snake_case, as JSON output names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::LogFileModified { .. } => "log_file_modified",
            Problem::LogFileMissing { .. } => "log_file_missing",
            Problem::LogFileUnlisted { .. } => "log_file_unlisted",
            Problem::DigestMissing { .. } => "digest_missing",
            Problem::DigestMalformed { .. } => "digest_malformed",
            Problem::DigestBadSignature { .. } => "digest_bad_signature",
            Problem::DigestUnknownKey { .. } => "digest_unknown_key",
            Problem::DigestMoved { .. } => "digest_moved",
            Problem::ChainBroken { .. } => "chain_broken",
            Problem::Gap { .. } => "gap",
        }
    }

    /// The object the problem concerns.
    pub fn location(&self) -> &S3Location {
        match self {
            Problem::LogFileModified { location, .. }
            | Problem::LogFileMissing { location, .. }
            | Problem::LogFileUnlisted { location }
            | Problem::DigestMissing { location, .. }
            | Problem::DigestMalformed { location, .. }
            | Problem::DigestBadSignature { location, .. }
            | Problem::DigestUnknownKey { location, .. }
            | Problem::DigestMoved { location, .. }
            | Problem::ChainBroken { location, .. }
            | Problem::Gap { location, .. } => location,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::LogFileModified {
                location,
                digest,
                expected,
                actual,
            } => write!(
                formatter,
                "log file {location} was modified: its SHA-256 is {actual}, digest {digest} lists {expected}"
            ),
            Problem::LogFileMissing { location, digest } => write!(
                formatter,
                "log file {location} is missing: digest {digest} lists it"
            ),
            Problem::LogFileUnlisted { location } => write!(
                formatter,
                "log file {location} is listed in no digest covering its delivery time"
            ),
            Problem::DigestMissing {
                location,
                newer_digest,
                inferred: false,
            } => write!(
                formatter,
                "digest {location} is missing: digest {newer_digest} links to it"
            ),
            Problem::DigestMissing {
                location,
                newer_digest,
                inferred: true,
            } => write!(
                formatter,
                "digest {location} (key inferred from the hourly digests) is missing: no digest read covers its hour, next to {newer_digest}"
            ),
            Problem::DigestMalformed { location, reason } => {
                write!(formatter, "digest {location} is malformed: {reason}")
            }
            Problem::DigestBadSignature { location, reason } => {
                write!(formatter, "digest {location} has a bad signature: {reason}")
            }
            Problem::DigestUnknownKey { location, reason } => write!(
                formatter,
                "digest {location} cannot be verified: {reason}"
            ),
            Problem::DigestMoved { location, claimed } => write!(
                formatter,
                "digest {location} was moved: it was written to {claimed}"
            ),
            Problem::ChainBroken {
                location,
                newer_digest,
                expected,
                actual,
            } => write!(
                formatter,
                "chain broken at digest {location}: its SHA-256 is {actual}, digest {newer_digest} holds {expected}"
            ),
            Problem::Gap {
                location,
                newer_digest,
                older_end_time,
                newer_start_time,
            } => write!(
                formatter,
                "gap after digest {location}: it ends at {older_end_time}, the next digest {newer_digest} starts at {newer_start_time}"
            ),
        }
    }
}

impl Serialize for Sha256Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

/// What became of one digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DigestOutcome {
    pub location: S3Location,
    pub digest_start_time: Option<DateTime<Utc>>,
    pub digest_end_time: Option<DateTime<Utc>>,
    /// A starting digest (its `previousDigest*` fields are null).
    pub starting: bool,
    pub log_files: usize,
    /// No problem concerns it.
    pub verified: bool,
}

/// What became of one log file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFileStatus {
    Verified,
    Modified,
    Missing,
    Unlisted,
    /// Delivered after the newest digest read: its digest is not delivered yet (normal for
    /// about an hour).
    NotYetCovered,
    /// Delivered in the hours of a missing digest: nothing left to verify it against.
    Unverifiable,
    /// Listed in a digest, but its hash was never given to the walk.
    Unchecked,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogFileOutcome {
    pub location: S3Location,
    /// The digest that lists it.
    pub digest: Option<S3Location>,
    pub status: LogFileStatus,
}
