//! CloudTrail's S3 key layouts, recognised from a key (or a local path that ends like one):
//! - account trail: `[prefix/]AWSLogs/<account>/<kind>/<region>/YYYY/MM/DD/<file>`
//! - organization trail: `[prefix/]AWSLogs/<o-orgid>/<account>/<kind>/<region>/YYYY/MM/DD/<file>`
//!
//! where `<kind>` is `CloudTrail` (log files), `CloudTrail-Digest` or `CloudTrail-Insight`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// What a CloudTrail object holds, from the folder it was delivered to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogFileKind {
    /// `CloudTrail/`: management, data and network-activity events.
    Log,
    /// `CloudTrail-Digest/`: integrity digests; never ingested as events.
    Digest,
    /// `CloudTrail-Insight/`: Insights events.
    Insight,
}

impl LogFileKind {
    pub fn folder(&self) -> &'static str {
        match self {
            LogFileKind::Log => "CloudTrail",
            LogFileKind::Digest => "CloudTrail-Digest",
            LogFileKind::Insight => "CloudTrail-Insight",
        }
    }

    fn from_folder(folder: &str) -> Option<LogFileKind> {
        [LogFileKind::Log, LogFileKind::Digest, LogFileKind::Insight]
            .into_iter()
            .find(|kind| kind.folder() == folder)
    }
}

/// A key in one of CloudTrail's layouts, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudTrailKey {
    /// Everything before `AWSLogs/`, without its trailing `/` (the trail's prefix).
    pub prefix: String,
    /// `o-…` for an organization trail.
    pub organization_id: Option<String>,
    pub account_id: String,
    pub kind: LogFileKind,
    pub region: String,
    /// The delivery date (the folder), not the events' date.
    pub delivery_date: NaiveDate,
    pub file_name: String,
}

impl CloudTrailKey {
    /// When CloudTrail delivered the file: the `YYYYMMDDTHHMMZ` part of its name
    /// (`111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz`).
    pub fn delivery_time(&self) -> Option<DateTime<Utc>> {
        self.file_name.split('_').find_map(|part| {
            if part.len() != 14 || !part.ends_with('Z') {
                return None;
            }
            NaiveDateTime::parse_from_str(&part[..13], "%Y%m%dT%H%M")
                .ok()
                .map(|time| time.and_utc())
        })
    }

    /// The folder one CloudTrail kind of one account and region is delivered to:
    /// `[prefix/]AWSLogs/[o-id/]<account>/<kind>/<region>/`.
    pub fn region_prefix(&self) -> String {
        let mut prefix = String::new();
        if !self.prefix.is_empty() {
            prefix.push_str(&self.prefix);
            prefix.push('/');
        }
        prefix.push_str("AWSLogs/");
        if let Some(organization_id) = &self.organization_id {
            prefix.push_str(organization_id);
            prefix.push('/');
        }
        prefix.push_str(&format!(
            "{}/{}/{}/",
            self.account_id,
            self.kind.folder(),
            self.region
        ));
        prefix
    }
}

/// Recognises `key` as a CloudTrail key; `None` when it follows neither layout.
pub fn parse_cloudtrail_key(key: &str) -> Option<CloudTrailKey> {
    let segments: Vec<&str> = key.split('/').collect();
    (0..segments.len())
        .filter(|&position| segments[position] == "AWSLogs")
        .find_map(|position| parse_after_awslogs(&segments, position))
}

fn parse_after_awslogs(segments: &[&str], awslogs: usize) -> Option<CloudTrailKey> {
    let mut rest = segments.get(awslogs + 1..)?;
    let mut organization_id = None;
    if let Some(first) = rest.first() {
        if is_organization_id(first) {
            organization_id = Some(first.to_string());
            rest = &rest[1..];
        }
    }
    let [account, kind, region, year, month, day, file @ ..] = rest else {
        return None;
    };
    if !is_account_id(account) || region.is_empty() || file.is_empty() {
        return None;
    }
    let kind = LogFileKind::from_folder(kind)?;
    let delivery_date = NaiveDate::from_ymd_opt(
        parse_digits(year, 4)?,
        parse_digits(month, 2)?.try_into().ok()?,
        parse_digits(day, 2)?.try_into().ok()?,
    )?;
    let file_name = file.join("/");
    if file_name.is_empty() {
        return None;
    }
    Some(CloudTrailKey {
        prefix: segments[..awslogs].join("/"),
        organization_id,
        account_id: account.to_string(),
        kind,
        region: region.to_string(),
        delivery_date,
        file_name,
    })
}

/// `^\d{12}$`, an AWS account id.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// `^o-[a-z0-9]{10,32}$`, an AWS Organizations id.
pub fn is_organization_id(text: &str) -> bool {
    text.strip_prefix("o-").is_some_and(|id| {
        (10..=32).contains(&id.len())
            && id
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
    })
}

fn parse_digits(text: &str, width: usize) -> Option<i32> {
    if text.len() != width || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_trail_keys_are_recognised() {
        let key = parse_cloudtrail_key(
            "AWSLogs/974349055189/CloudTrail/us-east-1/2014/09/27/974349055189_CloudTrail_us-east-1_20140927T0645Z_QhPwm0nVuUpxXUAJ.json.gz",
        )
        .unwrap();
        assert_eq!(key.prefix, "");
        assert_eq!(key.organization_id, None);
        assert_eq!(key.account_id, "974349055189");
        assert_eq!(key.kind, LogFileKind::Log);
        assert_eq!(key.region, "us-east-1");
        assert_eq!(
            key.delivery_date,
            NaiveDate::from_ymd_opt(2014, 9, 27).unwrap()
        );
    }

    #[test]
    fn organization_trail_keys_with_a_prefix_are_recognised() {
        let key = parse_cloudtrail_key(
            "o-fxozgwu6rc/AWSLogs/o-fxozgwu6rc/123456789015/CloudTrail-Insight/ca-central-1/2020/09/23/123456789015_CloudTrail-Insight_ca-central-1_20200923T0516Z_KL5e9VCV2SS7IqzB.json.gz",
        )
        .unwrap();
        assert_eq!(key.prefix, "o-fxozgwu6rc");
        assert_eq!(key.organization_id.as_deref(), Some("o-fxozgwu6rc"));
        assert_eq!(key.account_id, "123456789015");
        assert_eq!(key.kind, LogFileKind::Insight);
    }

    #[test]
    fn local_paths_ending_in_the_layout_are_recognised() {
        let key = parse_cloudtrail_key(
            "/data/x/AWSLogs/123456789012/CloudTrail-Digest/eu-west-1/2024/01/02/d.json.gz",
        )
        .unwrap();
        assert_eq!(key.kind, LogFileKind::Digest);
        assert_eq!(key.prefix, "/data/x");
    }

    #[test]
    fn delivery_times_and_region_prefixes_come_from_the_key() {
        let key = parse_cloudtrail_key(
            "trails/AWSLogs/o-exampleorg1/111122223333/CloudTrail/us-east-2/2015/08/01/111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz",
        )
        .unwrap();
        assert_eq!(
            key.delivery_time().map(|time| time.to_rfc3339()).as_deref(),
            Some("2015-08-01T02:10:00+00:00")
        );
        assert_eq!(
            key.region_prefix(),
            "trails/AWSLogs/o-exampleorg1/111122223333/CloudTrail/us-east-2/"
        );
        let unnamed =
            parse_cloudtrail_key("AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/01/f.json.gz")
                .unwrap();
        assert_eq!(unnamed.delivery_time(), None);
        assert_eq!(
            unnamed.region_prefix(),
            "AWSLogs/111122223333/CloudTrail/us-east-2/"
        );
    }

    #[test]
    fn keys_off_the_layout_are_not_recognised() {
        for key in [
            "",
            "AWSLogs/",
            "AWSLogs/12345/CloudTrail/us-east-1/2014/09/27/f.json.gz",
            "AWSLogs/974349055189/CloudTrail/us-east-1/2014/13/27/f.json.gz",
            "AWSLogs/974349055189/Other/us-east-1/2014/09/27/f.json.gz",
            "AWSLogs/974349055189/CloudTrail/us-east-1/2014/09/27",
            "aws-docs-example-01-StartInstances.json.gz",
        ] {
            assert_eq!(parse_cloudtrail_key(key), None, "{key}");
        }
    }
}
