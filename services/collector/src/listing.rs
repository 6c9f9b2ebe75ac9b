//! Listing a source's bucket: the accounts, kinds and regions under `AWSLogs/` (both the
//! account-trail and the organization-trail layout), then, per region folder, the keys from a
//! start point — never the whole history again once something was taken.

use chrono::{DateTime, Days, NaiveDate, Utc};
use orgtrail_domain::s3_key::{is_account_id, is_organization_id};
use orgtrail_domain::{parse_cloudtrail_key, LogFileKind};

use crate::aws_access::{s3_error, SourceS3};
use crate::config::SourceConfig;
use crate::source_error::SourceError;

/// One region folder of one kind (log files or Insights) of one account: listed as a unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingUnit {
    pub account_id: String,
    pub region: String,
    pub kind: LogFileKind,
    /// The organization id of an organization trail's keys (`AWSLogs/o-…/`).
    pub organization_id: Option<String>,
    /// `[prefix/]AWSLogs/[o-id/]<account>/<kind>/<region>/`.
    pub prefix: String,
}

/// An object found by listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    /// Without S3's quotes.
    pub etag: String,
    pub size: i64,
    /// When S3 created the object (`LastModified`).
    pub last_modified: Option<DateTime<Utc>>,
}

/// Finds the units of a source: its accounts (both layouts) and regions, narrowed by its filters.
pub async fn discover_units(
    s3: &SourceS3,
    source: &SourceConfig,
) -> Result<Vec<ListingUnit>, SourceError> {
    let awslogs = if source.prefix.is_empty() {
        "AWSLogs/".to_string()
    } else {
        format!("{}/AWSLogs/", source.prefix)
    };
    let mut account_prefixes = Vec::new();
    for first in list_folders(s3, &source.bucket, &awslogs).await? {
        let name = folder_name(&first);
        if is_organization_id(name) {
            for account in list_folders(s3, &source.bucket, &first).await? {
                if is_account_id(folder_name(&account)) {
                    account_prefixes.push((account, Some(name.to_string())));
                }
            }
        } else if is_account_id(name) {
            account_prefixes.push((first, None));
        }
    }
    let mut units = Vec::new();
    for (account_prefix, organization_id) in account_prefixes {
        let account_id = folder_name(&account_prefix).to_string();
        if !source.accounts.is_empty() && !source.accounts.contains(&account_id) {
            continue;
        }
        for kind_prefix in list_folders(s3, &source.bucket, &account_prefix).await? {
            let kind = match folder_name(&kind_prefix) {
                "CloudTrail" => LogFileKind::Log,
                "CloudTrail-Insight" => LogFileKind::Insight,
                // Digests verify files; they hold no events.
                _ => continue,
            };
            for region_prefix in list_folders(s3, &source.bucket, &kind_prefix).await? {
                let region = folder_name(&region_prefix).to_string();
                if !source.regions.is_empty() && !source.regions.contains(&region) {
                    continue;
                }
                units.push(ListingUnit {
                    account_id: account_id.clone(),
                    region,
                    kind,
                    organization_id: organization_id.clone(),
                    prefix: region_prefix,
                });
            }
        }
    }
    Ok(units)
}

/// Where listing of a unit starts: the folder of `trailing_window_days` before the day of the
/// newest key taken (late files sort before it), else the `since` day, else the beginning.
/// S3 lists the keys after `start_after`, and every key of a day folder `…/YYYY/MM/DD/…`
/// sorts after `…/YYYY/MM/DD`.
pub fn start_after(
    unit: &ListingUnit,
    checkpoint: Option<&str>,
    trailing_window_days: u32,
    since: Option<NaiveDate>,
) -> Option<String> {
    let day = match checkpoint.and_then(parse_cloudtrail_key) {
        Some(key) => Some(
            key.delivery_date
                .checked_sub_days(Days::new(u64::from(trailing_window_days)))
                .unwrap_or(key.delivery_date),
        ),
        None => since,
    }?;
    Some(format!("{}{}", unit.prefix, day.format("%Y/%m/%d")))
}

/// The CloudTrail files of a unit after `start_after`, in key order.
pub async fn list_unit(
    s3: &SourceS3,
    bucket: &str,
    unit: &ListingUnit,
    start_after: Option<&str>,
) -> Result<Vec<ListedObject>, SourceError> {
    let mut request = s3
        .client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&unit.prefix);
    if let Some(start_after) = start_after {
        request = request.start_after(start_after);
    }
    let mut pages = request.into_paginator().send();
    let mut objects = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| s3_error(error, bucket, &unit.prefix, "ListObjectsV2"))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            let is_log_file = key.ends_with(".json.gz")
                && parse_cloudtrail_key(key).is_some_and(|parsed| parsed.kind == unit.kind);
            if !is_log_file {
                continue;
            }
            objects.push(ListedObject {
                key: key.to_string(),
                etag: object
                    .e_tag()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string(),
                size: object.size().unwrap_or_default(),
                last_modified: object
                    .last_modified()
                    .and_then(|time| DateTime::from_timestamp(time.secs(), time.subsec_nanos())),
            });
        }
    }
    Ok(objects)
}

/// The folders (common prefixes) directly under `prefix`.
async fn list_folders(
    s3: &SourceS3,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, SourceError> {
    let mut pages = s3
        .client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .delimiter("/")
        .into_paginator()
        .send();
    let mut folders = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| s3_error(error, bucket, prefix, "ListObjectsV2"))?;
        folders.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|common| common.prefix().map(str::to_string)),
        );
    }
    Ok(folders)
}

/// `a/b/c/` → `c`.
fn folder_name(folder: &str) -> &str {
    folder
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit() -> ListingUnit {
        ListingUnit {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            kind: LogFileKind::Log,
            organization_id: None,
            prefix: "AWSLogs/111111111111/CloudTrail/us-east-1/".into(),
        }
    }

    #[test]
    fn listing_resumes_a_trailing_window_before_the_newest_file_taken() {
        let newest = "AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/01/111111111111_CloudTrail_us-east-1_20240301T0010Z_abc.json.gz";
        assert_eq!(
            start_after(&unit(), Some(newest), 1, None).as_deref(),
            Some("AWSLogs/111111111111/CloudTrail/us-east-1/2024/02/29")
        );
        // A late file of the day before sorts after the start point.
        let late = "AWSLogs/111111111111/CloudTrail/us-east-1/2024/02/29/111111111111_CloudTrail_us-east-1_20240229T2355Z_x.json.gz";
        assert!(
            late > start_after(&unit(), Some(newest), 1, None)
                .unwrap()
                .as_str()
        );
        let since = NaiveDate::from_ymd_opt(2023, 1, 2);
        assert_eq!(
            start_after(&unit(), None, 1, since).as_deref(),
            Some("AWSLogs/111111111111/CloudTrail/us-east-1/2023/01/02")
        );
        assert_eq!(start_after(&unit(), None, 1, None), None);
    }

    #[test]
    fn folder_names_are_the_last_segment() {
        assert_eq!(
            folder_name("AWSLogs/o-abcdefghij/111111111111/"),
            "111111111111"
        );
        assert_eq!(folder_name("AWSLogs/"), "AWSLogs");
    }
}
