//! Where digests and the log files they cover are kept: a [`KeyLayout`] says which prefixes to
//! list, from which key to start listing for a time, and when a key's object was delivered.
//! [`CloudTrailLayout`] is CloudTrail's (`[prefix/]AWSLogs/[o-id/]<account>/CloudTrail-Digest/
//! <region>/YYYY/MM/DD/<account>_CloudTrail-Digest_<region>_<trail>_<home region>_<YYYYMMDDTHHMMSSZ>.json.gz`);
//! [`crate::ArchiveLayout`] is orgtrail's archive's.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use orgtrail_domain::s3_key::{parse_cloudtrail_key, CloudTrailKey, LogFileKind};

/// How a verifier finds digests and log files in a bucket.
pub trait KeyLayout {
    /// The prefix every digest of the scope is under.
    fn digest_prefix(&self) -> String;
    /// The prefix every log file of the scope is under.
    fn log_file_prefix(&self) -> String;
    /// A key that sorts before every digest ending at or after `time` and after the older
    /// ones (S3's `start-after`).
    fn digest_start_after(&self, time: DateTime<Utc>) -> String;
    /// The same for log files delivered at or after `time`.
    fn log_file_start_after(&self, time: DateTime<Utc>) -> String;
    /// Whether `key` comes, in S3's listing order, after every object (digest or log file) of
    /// `time` and earlier: where a listing up to `time` may stop.
    fn is_listed_after(&self, key: &str, time: DateTime<Utc>) -> bool;
    /// A digest key of the scope, taken apart; `None` for any other key.
    fn parse_digest_key(&self, key: &str) -> Option<DigestKey>;
    /// When a log file of the scope was delivered (from its key); `None` for any other key.
    fn log_file_delivery_time(&self, key: &str) -> Option<DateTime<Utc>>;
    /// The key a digest of `like`'s trail ending at `end_time` would have: how missing digests
    /// beyond the one the chain names are named.
    fn digest_key_at(&self, like: &DigestKey, end_time: DateTime<Utc>) -> String;
    /// The time between two digests: CloudTrail's hour.
    fn digest_interval(&self) -> Duration {
        crate::chain_walk::DIGEST_INTERVAL
    }
}

/// A digest key, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestKey {
    pub key: String,
    pub trail_name: String,
    pub home_region: String,
    /// The digest's end time, to the second, from the file name.
    pub end_time: DateTime<Utc>,
}

/// One account and region of a CloudTrail trail's bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudTrailLayout {
    /// The trail's S3 key prefix, without slashes at its ends; empty for none.
    pub prefix: String,
    /// Set for an organization trail.
    pub organization_id: Option<String>,
    pub account_id: String,
    pub region: String,
}

impl CloudTrailLayout {
    fn folder(&self, kind: LogFileKind) -> String {
        CloudTrailKey {
            prefix: self.prefix.trim_matches('/').to_string(),
            organization_id: self.organization_id.clone(),
            account_id: self.account_id.clone(),
            kind,
            region: self.region.clone(),
            delivery_date: chrono::NaiveDate::MIN,
            file_name: String::new(),
        }
        .region_prefix()
    }

    fn of_scope(&self, key: &CloudTrailKey, kind: LogFileKind) -> bool {
        key.kind == kind
            && key.account_id == self.account_id
            && key.region == self.region
            && key.organization_id == self.organization_id
            && key.prefix == self.prefix.trim_matches('/')
    }
}

impl KeyLayout for CloudTrailLayout {
    fn digest_prefix(&self) -> String {
        self.folder(LogFileKind::Digest)
    }

    fn log_file_prefix(&self) -> String {
        self.folder(LogFileKind::Log)
    }

    fn digest_start_after(&self, time: DateTime<Utc>) -> String {
        // Keys of one day sort by their time: `<day>/<account>_CloudTrail-Digest_<region>_` then
        // the trail name, so the day folder alone is the safe bound.
        format!(
            "{}{}",
            self.digest_prefix(),
            (time - Duration::days(1)).format("%Y/%m/%d/~")
        )
    }

    fn log_file_start_after(&self, time: DateTime<Utc>) -> String {
        format!(
            "{}{}/{}_CloudTrail_{}_{}",
            self.log_file_prefix(),
            time.format("%Y/%m/%d"),
            self.account_id,
            self.region,
            time.format("%Y%m%dT%H%M")
        )
    }

    fn is_listed_after(&self, key: &str, time: DateTime<Utc>) -> bool {
        // Within a day folder, digests sort by trail name before time: only the day is safe.
        parse_cloudtrail_key(key).is_some_and(|parsed| parsed.delivery_date > time.date_naive())
    }

    fn parse_digest_key(&self, key: &str) -> Option<DigestKey> {
        let parsed = parse_cloudtrail_key(key)?;
        if !self.of_scope(&parsed, LogFileKind::Digest) {
            return None;
        }
        let stem = parsed
            .file_name
            .strip_prefix(&format!(
                "{}_CloudTrail-Digest_{}_",
                self.account_id, self.region
            ))?
            .strip_suffix(".json.gz")?;
        let (rest, time) = stem.rsplit_once('_')?;
        let (trail_name, home_region) = rest.rsplit_once('_')?;
        let end_time = NaiveDateTime::parse_from_str(time, "%Y%m%dT%H%M%SZ")
            .ok()?
            .and_utc();
        if trail_name.is_empty() || home_region.is_empty() {
            return None;
        }
        Some(DigestKey {
            key: key.to_string(),
            trail_name: trail_name.to_string(),
            home_region: home_region.to_string(),
            end_time,
        })
    }

    fn log_file_delivery_time(&self, key: &str) -> Option<DateTime<Utc>> {
        let parsed = parse_cloudtrail_key(key)?;
        if !self.of_scope(&parsed, LogFileKind::Log) {
            return None;
        }
        parsed.delivery_time()
    }

    fn digest_key_at(&self, like: &DigestKey, end_time: DateTime<Utc>) -> String {
        format!(
            "{}{}/{}_CloudTrail-Digest_{}_{}_{}_{}.json.gz",
            self.digest_prefix(),
            end_time.format("%Y/%m/%d"),
            self.account_id,
            self.region,
            like.trail_name,
            like.home_region,
            end_time.format("%Y%m%dT%H%M%SZ")
        )
    }
}
