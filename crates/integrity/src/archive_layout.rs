//! orgtrail's archive as a verifier finds it: digests under `<prefix>/digests/YYYY/MM/DD/
//! orgtrail-archive-digest_<YYYYMMDDTHHMMSSZ>.json.gz` (the end time), the objects they list
//! under `<prefix>/events/` (Hive folders by account, region and day, so their keys carry no
//! write time: the listing's `LastModified` stands in for CloudTrail's delivery time), one
//! digest every `interval`.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use crate::digest_key::{DigestKey, KeyLayout};

/// The file name's start of every archive digest.
pub const ARCHIVE_DIGEST_NAME: &str = "orgtrail-archive-digest_";
/// The name archive digests go by as a "trail".
pub const ARCHIVE_TRAIL: &str = "orgtrail-archive";

#[derive(Clone, Debug)]
pub struct ArchiveLayout {
    /// The archive's key prefix, without slashes at its ends; empty for none.
    pub prefix: String,
    /// Between two digests.
    pub interval: Duration,
    /// When each object present was written (S3's `LastModified`), from the listing.
    pub written: HashMap<String, DateTime<Utc>>,
}

impl ArchiveLayout {
    pub fn new(prefix: &str, interval: Duration) -> ArchiveLayout {
        ArchiveLayout {
            prefix: prefix.trim_matches('/').to_string(),
            interval,
            written: HashMap::new(),
        }
    }

    fn root(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }

    /// The key of the digest ending at `end_time`.
    pub fn digest_key(&self, end_time: DateTime<Utc>) -> String {
        format!(
            "{}{}/{ARCHIVE_DIGEST_NAME}{}.json.gz",
            self.digest_prefix(),
            end_time.format("%Y/%m/%d"),
            end_time.format("%Y%m%dT%H%M%SZ")
        )
    }

    /// The key of the public keys published beside the archive (`list-public-keys`' JSON).
    pub fn public_keys_key(&self) -> String {
        format!("{}public-keys.json", self.root())
    }
}

impl KeyLayout for ArchiveLayout {
    fn digest_prefix(&self) -> String {
        format!("{}digests/", self.root())
    }

    fn log_file_prefix(&self) -> String {
        format!("{}events/", self.root())
    }

    fn digest_start_after(&self, time: DateTime<Utc>) -> String {
        format!(
            "{}{}",
            self.digest_prefix(),
            (time - Duration::days(1)).format("%Y/%m/%d/~")
        )
    }

    /// Objects are foldered by account before time: all of them are listed.
    fn log_file_start_after(&self, _time: DateTime<Utc>) -> String {
        self.log_file_prefix()
    }

    fn is_listed_after(&self, key: &str, time: DateTime<Utc>) -> bool {
        self.parse_digest_key(key)
            .is_some_and(|digest| digest.end_time.date_naive() > time.date_naive())
    }

    fn parse_digest_key(&self, key: &str) -> Option<DigestKey> {
        let rest = key.strip_prefix(&self.digest_prefix())?;
        let (_, name) = rest.rsplit_once('/')?;
        let time = name
            .strip_prefix(ARCHIVE_DIGEST_NAME)?
            .strip_suffix(".json.gz")?;
        let end_time = NaiveDateTime::parse_from_str(time, "%Y%m%dT%H%M%SZ")
            .ok()?
            .and_utc();
        (self.digest_key(end_time) == key).then(|| DigestKey {
            key: key.to_string(),
            trail_name: ARCHIVE_TRAIL.to_string(),
            home_region: String::new(),
            end_time,
        })
    }

    fn log_file_delivery_time(&self, key: &str) -> Option<DateTime<Utc>> {
        if !key.starts_with(&self.log_file_prefix()) || !key.ends_with(".parquet") {
            return None;
        }
        self.written.get(key).copied()
    }

    fn digest_key_at(&self, _like: &DigestKey, end_time: DateTime<Utc>) -> String {
        self.digest_key(end_time)
    }

    fn digest_interval(&self) -> Duration {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_keys_are_made_and_taken_apart_alike() {
        let layout = ArchiveLayout::new("/consolidated/", Duration::hours(1));
        let end = DateTime::parse_from_rfc3339("2026-11-30T13:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let key = layout.digest_key(end);
        assert_eq!(
            key,
            "consolidated/digests/2026/11/30/orgtrail-archive-digest_20261130T130000Z.json.gz"
        );
        let parsed = layout.parse_digest_key(&key).unwrap();
        assert_eq!(parsed.end_time, end);
        assert_eq!(
            layout.digest_key_at(&parsed, end + layout.interval),
            layout.digest_key(end + Duration::hours(1))
        );
        assert!(layout
            .parse_digest_key(
                "consolidated/digests/2026/11/29/orgtrail-archive-digest_20261130T130000Z.json.gz"
            )
            .is_none());
        assert!(layout
            .parse_digest_key("consolidated/events/x.parquet")
            .is_none());
        assert!(layout.is_listed_after(&layout.digest_key(end + Duration::days(1)), end));
        assert!(!layout.is_listed_after(&key, end));
        assert_eq!(layout.public_keys_key(), "consolidated/public-keys.json");
    }

    #[test]
    fn objects_are_delivered_when_the_listing_says_they_were_written() {
        let mut layout = ArchiveLayout::new("", Duration::hours(1));
        let key = "events/account=111111111111/region=us-east-1/day=2024-05-01/10-0000.parquet";
        assert_eq!(layout.log_file_delivery_time(key), None);
        let written = DateTime::parse_from_rfc3339("2024-05-01T10:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        layout.written.insert(key.to_string(), written);
        assert_eq!(layout.log_file_delivery_time(key), Some(written));
        assert_eq!(layout.log_file_delivery_time("digests/x.parquet"), None);
    }
}
