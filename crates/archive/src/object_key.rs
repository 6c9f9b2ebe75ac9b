//! Where archive objects are kept:
//! `[<prefix>/]events/account=<account>/region=<region>/day=<YYYY-MM-DD>/<HH>-<NNNN>.parquet`.
//!
//! Hive-style `name=value` folders, so that Athena, Trino, Spark and DuckDB take `account`,
//! `region` and `day` from the path and skip every folder a query's conditions exclude. The
//! partition names differ from the data columns `account_id` and `aws_region` (Athena refuses a
//! partition key named as a column). A missing or malformed account or region goes to Hive's
//! default partition, [`DEFAULT_PARTITION_VALUE`], which those readers read as null.
//!
//! One object per account, region and hour ([`HourPartition`]); the hour is the file name's
//! first two digits, the object's sequence number in its hour the next four. An hour archived
//! once is `HH-0000.parquet`; events of that hour that arrive later (CloudTrail delivers up to
//! hours late, and collectors catch up after outages) go into `HH-0001.parquet`, then
//! `HH-0002.parquet`, …: an object, once written, is never rewritten, so a digest or checksum
//! taken of it stays true. Keys of one hour sort by sequence, and hours by time.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Timelike, Utc};

use crate::archive_error::ObjectKeyError;
use crate::archive_event::ArchiveEvent;

/// The folder every event object is under, below the prefix.
pub const EVENTS_FOLDER: &str = "events";

/// Hive's name for a null partition value (what Hive, Spark, Trino, pyarrow and DuckDB read as
/// null): for events without a well-formed account or region.
pub const DEFAULT_PARTITION_VALUE: &str = "__HIVE_DEFAULT_PARTITION__";

/// The largest sequence number: four digits keep keys sorted by it.
pub const MAX_SEQUENCE: u32 = 9999;

/// One account, region and hour: the events of one archive object (or of several, for an hour
/// that received events after it was first archived).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HourPartition {
    /// The account's folder value: a 12-digit account id, or [`DEFAULT_PARTITION_VALUE`].
    pub account: String,
    /// The region's folder value: a region name, or [`DEFAULT_PARTITION_VALUE`].
    pub region: String,
    /// The start of the hour (minutes, seconds and fractions zero).
    pub hour: DateTime<Utc>,
}

impl HourPartition {
    /// The partition of an event with this account, region and time. An account that is not a
    /// 12-digit id, or a region that is not lowercase letters, digits and hyphens, would make
    /// an unsafe or misleading path: it goes to [`DEFAULT_PARTITION_VALUE`].
    pub fn new(account: Option<&str>, region: Option<&str>, time: DateTime<Utc>) -> HourPartition {
        let account = account.filter(|account| is_account_value(account));
        let region = region.filter(|region| is_region_value(region));
        HourPartition {
            account: account.unwrap_or(DEFAULT_PARTITION_VALUE).to_string(),
            region: region.unwrap_or(DEFAULT_PARTITION_VALUE).to_string(),
            hour: start_of_hour(time),
        }
    }

    /// The partition of `event`: its `account_id`, `aws_region` and `event_time`.
    pub fn of(event: &ArchiveEvent) -> HourPartition {
        HourPartition::new(
            event.account_id.as_deref(),
            event.aws_region.as_deref(),
            event.event_time,
        )
    }

    /// The day folder's value, `YYYY-MM-DD`.
    pub fn day(&self) -> NaiveDate {
        self.hour.date_naive()
    }
}

/// The events grouped by their [`HourPartition`], each group in the order given; the map
/// iterates accounts, then regions, then hours in order.
pub fn partition_events(
    events: impl IntoIterator<Item = ArchiveEvent>,
) -> BTreeMap<HourPartition, Vec<ArchiveEvent>> {
    let mut partitions: BTreeMap<HourPartition, Vec<ArchiveEvent>> = BTreeMap::new();
    for event in events {
        partitions
            .entry(HourPartition::of(&event))
            .or_default()
            .push(event);
    }
    partitions
}

/// An archive object's key, taken apart.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The archive's key prefix, without slashes at its ends; empty for none.
    pub prefix: String,
    pub partition: HourPartition,
    /// 0 for an hour's first object, 1 for its first late one, and so on.
    pub sequence: u32,
}

impl ObjectKey {
    /// The key of `partition`'s object number `sequence` under `prefix`.
    pub fn new(
        prefix: &str,
        partition: HourPartition,
        sequence: u32,
    ) -> Result<ObjectKey, ObjectKeyError> {
        if sequence > MAX_SEQUENCE {
            return Err(ObjectKeyError::SequenceExhausted {
                sequence,
                max: MAX_SEQUENCE,
            });
        }
        Ok(ObjectKey {
            prefix: prefix.trim_matches('/').to_string(),
            partition,
            sequence,
        })
    }

    /// The key of the object that follows the newest of `existing` (keys listed under
    /// [`ObjectKey::hour_listing_prefix`]): `HH-0000` when there is none. Keys of other hours,
    /// partitions or prefixes, and keys that are not archive objects, are ignored.
    pub fn next_for<'a>(
        prefix: &str,
        partition: HourPartition,
        existing: impl IntoIterator<Item = &'a str>,
    ) -> Result<ObjectKey, ObjectKeyError> {
        let prefix = prefix.trim_matches('/');
        let newest = existing
            .into_iter()
            .filter_map(ObjectKey::parse)
            .filter(|key| key.prefix == prefix && key.partition == partition)
            .map(|key| key.sequence)
            .max();
        let sequence = newest.map_or(0, |newest| newest + 1);
        ObjectKey::new(prefix, partition, sequence)
    }

    /// What every object key of `partition`'s hour starts with: the prefix to list before
    /// choosing the next sequence number.
    pub fn hour_listing_prefix(prefix: &str, partition: &HourPartition) -> String {
        format!(
            "{}{:02}-",
            day_folder(prefix.trim_matches('/'), partition),
            partition.hour.hour()
        )
    }

    /// Takes an archive object key apart; `None` for any other key. The prefix is whatever
    /// comes before the `events/account=…` folders.
    pub fn parse(key: &str) -> Option<ObjectKey> {
        let mut segments = key.rsplitn(6, '/');
        let file_name = segments.next()?;
        let day = segments.next()?.strip_prefix("day=")?;
        let region = segments.next()?.strip_prefix("region=")?;
        let account = segments.next()?.strip_prefix("account=")?;
        if segments.next()? != EVENTS_FOLDER {
            return None;
        }
        let prefix = match segments.next() {
            None => "",
            Some(prefix)
                if prefix.is_empty() || prefix.starts_with('/') || prefix.ends_with('/') =>
            {
                return None
            }
            Some(prefix) => prefix,
        };
        let (hour, sequence) = file_name.strip_suffix(".parquet")?.split_once('-')?;
        if !is_digits(hour, 2) || !is_digits(sequence, 4) {
            return None;
        }
        if !(account == DEFAULT_PARTITION_VALUE || is_account_value(account))
            || !(region == DEFAULT_PARTITION_VALUE || is_region_value(region))
        {
            return None;
        }
        if day.len() != 10 {
            return None;
        }
        let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
        let hour = day.and_hms_opt(hour.parse().ok()?, 0, 0)?.and_utc();
        Some(ObjectKey {
            prefix: prefix.to_string(),
            partition: HourPartition {
                account: account.to_string(),
                region: region.to_string(),
                hour,
            },
            sequence: sequence.parse().ok()?,
        })
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}{:02}-{:04}.parquet",
            day_folder(&self.prefix, &self.partition),
            self.partition.hour.hour(),
            self.sequence
        )
    }
}

/// `[<prefix>/]events/account=…/region=…/day=…/`.
fn day_folder(prefix: &str, partition: &HourPartition) -> String {
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    format!(
        "{prefix}{EVENTS_FOLDER}/account={}/region={}/day={}/",
        partition.account,
        partition.region,
        partition.day().format("%Y-%m-%d")
    )
}

fn start_of_hour(time: DateTime<Utc>) -> DateTime<Utc> {
    let date = time.date_naive();
    date.and_hms_opt(time.hour(), 0, 0)
        .map(|hour| hour.and_utc())
        .unwrap_or(time)
}

fn is_account_value(text: &str) -> bool {
    is_digits(text, 12)
}

/// Region names: `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, ….
fn is_region_value(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 32
        && text
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

fn is_digits(text: &str, count: usize) -> bool {
    text.len() == count && text.bytes().all(|byte| byte.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn partition() -> HourPartition {
        HourPartition::new(
            Some("111122223333"),
            Some("eu-west-1"),
            Utc.with_ymd_and_hms(2026, 3, 4, 7, 59, 58).unwrap(),
        )
    }

    #[test]
    fn keys_are_hive_partitioned_by_account_region_and_day_with_hourly_objects() {
        let key = ObjectKey::new("/archive/org/", partition(), 0).unwrap();
        assert_eq!(
            key.to_string(),
            "archive/org/events/account=111122223333/region=eu-west-1/day=2026-03-04/07-0000.parquet"
        );
        let key = ObjectKey::new("", partition(), 12).unwrap();
        assert_eq!(
            key.to_string(),
            "events/account=111122223333/region=eu-west-1/day=2026-03-04/07-0012.parquet"
        );
    }

    #[test]
    fn a_formatted_key_parses_back_to_itself() {
        for prefix in ["", "archive", "a/b/c"] {
            for sequence in [0, 1, 42, MAX_SEQUENCE] {
                let key = ObjectKey::new(prefix, partition(), sequence).unwrap();
                assert_eq!(ObjectKey::parse(&key.to_string()), Some(key));
            }
        }
        let unknown = HourPartition::new(None, Some("../x"), Utc.timestamp_opt(0, 0).unwrap());
        let key = ObjectKey::new("p", unknown, 3).unwrap();
        assert_eq!(
            key.to_string(),
            "p/events/account=__HIVE_DEFAULT_PARTITION__/region=__HIVE_DEFAULT_PARTITION__/day=1970-01-01/00-0003.parquet"
        );
        assert_eq!(ObjectKey::parse(&key.to_string()), Some(key));
    }

    #[test]
    fn other_keys_do_not_parse() {
        let good = "p/events/account=111122223333/region=eu-west-1/day=2026-03-04/07-0000.parquet";
        assert!(ObjectKey::parse(good).is_some());
        for bad in [
            "p/events/account=111122223333/region=eu-west-1/day=2026-03-04/07-0000.json",
            "p/events/account=11112222333/region=eu-west-1/day=2026-03-04/07-0000.parquet",
            "p/events/account=111122223333/region=EU/day=2026-03-04/07-0000.parquet",
            "p/events/account=111122223333/region=eu-west-1/day=2026-3-4/07-0000.parquet",
            "p/events/account=111122223333/region=eu-west-1/day=2026-03-04/24-0000.parquet",
            "p/events/account=111122223333/region=eu-west-1/day=2026-03-04/07-000.parquet",
            "p/logs/account=111122223333/region=eu-west-1/day=2026-03-04/07-0000.parquet",
            "p/events/region=eu-west-1/account=111122223333/day=2026-03-04/07-0000.parquet",
            "account=111122223333/region=eu-west-1/day=2026-03-04/07-0000.parquet",
            "/events/account=111122223333/region=eu-west-1/day=2026-03-04/07-0000.parquet",
        ] {
            assert_eq!(ObjectKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn late_events_of_an_archived_hour_get_the_next_object_never_the_same_one() {
        let first = ObjectKey::next_for("p", partition(), []).unwrap();
        assert_eq!(first.sequence, 0);
        let first_key = first.to_string();
        assert!(first_key.starts_with(&ObjectKey::hour_listing_prefix("p", &partition())));
        let other_hour = ObjectKey::new(
            "p",
            HourPartition {
                hour: partition().hour + chrono::Duration::hours(1),
                ..partition()
            },
            7,
        )
        .unwrap()
        .to_string();
        let second =
            ObjectKey::next_for("p", partition(), [first_key.as_str(), &other_hour]).unwrap();
        assert_eq!(second.sequence, 1);
        let second_key = second.to_string();
        assert!(first_key < second_key);
        let last = ObjectKey::new("p", partition(), MAX_SEQUENCE)
            .unwrap()
            .to_string();
        assert_eq!(
            ObjectKey::next_for("p", partition(), [last.as_str()]),
            Err(ObjectKeyError::SequenceExhausted {
                sequence: MAX_SEQUENCE + 1,
                max: MAX_SEQUENCE
            })
        );
    }

    #[test]
    fn events_are_grouped_by_account_region_and_hour() {
        let event = |account: &str, region: &str, minute: u32| ArchiveEvent {
            event_time: Utc.with_ymd_and_hms(2026, 3, 4, 7, minute, 0).unwrap()
                + chrono::Duration::minutes(30),
            event_id: format!("{account}-{region}-{minute}"),
            event_version: None,
            event_source: None,
            event_name: None,
            aws_region: Some(region.to_string()),
            account_id: Some(account.to_string()),
            event_type: None,
            event_category: "Management".to_string(),
            read_only: None,
            management_event: None,
            user_type: None,
            user_arn: None,
            user_principal_id: None,
            user_account_id: None,
            access_key_id: None,
            username: None,
            source_ip_address: None,
            user_agent: None,
            error_code: None,
            error_message: None,
            resource_arns: Vec::new(),
            record: "{}".to_string(),
        };
        let events = vec![
            event("111122223333", "us-east-1", 10),
            event("111122223333", "us-east-1", 40),
            event("111122223333", "us-east-1", 20),
            event("111122223333", "eu-west-1", 10),
            event("444455556666", "us-east-1", 10),
        ];
        let partitions = partition_events(events);
        let summary: Vec<(String, String, u32, Vec<String>)> = partitions
            .iter()
            .map(|(partition, events)| {
                (
                    partition.account.clone(),
                    partition.region.clone(),
                    partition.hour.hour(),
                    events.iter().map(|event| event.event_id.clone()).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "111122223333".into(),
                    "eu-west-1".into(),
                    7,
                    vec!["111122223333-eu-west-1-10".into()]
                ),
                (
                    "111122223333".into(),
                    "us-east-1".into(),
                    7,
                    vec![
                        "111122223333-us-east-1-10".into(),
                        "111122223333-us-east-1-20".into()
                    ]
                ),
                (
                    "111122223333".into(),
                    "us-east-1".into(),
                    8,
                    vec!["111122223333-us-east-1-40".into()]
                ),
                (
                    "444455556666".into(),
                    "us-east-1".into(),
                    7,
                    vec!["444455556666-us-east-1-10".into()]
                ),
            ]
        );
    }
}
