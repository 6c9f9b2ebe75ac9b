//! Series shapes from real CloudTrail records: which APIs each account calls in each region,
//! in what proportions, whether they write, how often they fail, who calls them (people or
//! automation) and at what hours — scaled up to a realistic daily volume.
//!
//! The project's samples are small (about 9,400 records, most accounts seen for seconds or an
//! hour), so their counts cannot be baselines as they are. What is kept from them is relative:
//! each API's share of its account's calls, its error share, whether it writes, and the hours of
//! day of accounts seen over several days. What is chosen is stated in `BackgroundScaling` and
//! the constants below, and in `docs/insights.md`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::SeriesShape;
use crate::insights::model::InsightType;
use crate::insights::record::InsightSeries;

/// How the samples are scaled to a background.
#[derive(Clone, Debug, PartialEq)]
pub struct BackgroundScaling {
    /// An account-region's daily management calls: its sample records times this …
    pub events_per_sample_record: f64,
    /// … but at least this …
    pub min_events_per_day: f64,
    /// … and at most this.
    pub max_events_per_day: f64,
}

impl Default for BackgroundScaling {
    /// Between 2,000 and 200,000 management calls a day per account and region, more for
    /// accounts the samples saw more of (a larger sample came from a busier account).
    fn default() -> BackgroundScaling {
        BackgroundScaling {
            events_per_sample_record: 200.0,
            min_events_per_day: 2_000.0,
            max_events_per_day: 200_000.0,
        }
    }
}

/// An account-region seen on fewer days, or with fewer records, than this gets the default
/// office-hours profile instead of its own hours.
const MIN_DAYS_FOR_OWN_PROFILE: usize = 3;
const MIN_RECORDS_FOR_OWN_PROFILE: u64 = 200;
/// The share of every profile that is flat: some activity at every hour.
const FLAT_SHARE: f64 = 0.2;
/// Automation follows the account's hours only this much; the rest of its profile is flat.
const AUTOMATION_PROFILE_SHARE: f64 = 0.3;
const HUMAN_WEEKEND_FACTOR: f64 = 0.3;
const AUTOMATION_WEEKEND_FACTOR: f64 = 0.85;
/// Hour-to-hour burstiness (the gamma shape of the hour's level): people more than machines.
const HUMAN_HOUR_LEVEL_SHAPE: f64 = 2.0;
const AUTOMATION_HOUR_LEVEL_SHAPE: f64 = 8.0;
const DAY_LEVEL_SIGMA: f64 = 0.15;
/// An API's error share is (errors + 0.5) / (records + 50): a 1 % prior worth 50 records, so an
/// API seen failing never is not assumed never to fail.
const ERROR_PRIOR_ERRORS: f64 = 0.5;
const ERROR_PRIOR_RECORDS: f64 = 50.0;

/// The shapes of the management API calls in `records`: for each account, region and API, a
/// call-rate shape when the API writes and an error-rate shape always. Records that are not
/// management API calls (Insights, service events, console sign-ins, data events) or that lack
/// an account, region, event source, name or time are skipped. Ordered by account, region,
/// event source, event name, type.
pub fn shapes_from_records<'a>(
    records: impl IntoIterator<Item = &'a Value>,
    scaling: &BackgroundScaling,
) -> Vec<SeriesShape> {
    let mut scopes: BTreeMap<(String, String), ScopeSample> = BTreeMap::new();
    let mut apis: BTreeMap<ApiKey, ApiSample> = BTreeMap::new();
    for record in records {
        let Some(call) = ManagementCall::of(record) else {
            continue;
        };
        let scope = scopes
            .entry((call.account.clone(), call.region.clone()))
            .or_default();
        scope.records += 1;
        scope.hours[call.hour] += 1;
        scope.days.insert(call.day);
        let api = apis
            .entry((
                call.account,
                call.region,
                call.event_source,
                call.event_name,
            ))
            .or_default();
        api.records += 1;
        api.errors += u64::from(call.failed);
        api.write_votes += u64::from(call.writes);
        api.human_votes += u64::from(call.by_a_person);
    }
    let mut shapes = Vec::new();
    for ((account, region, event_source, event_name), api) in apis {
        let Some(scope) = scopes.get(&(account.clone(), region.clone())) else {
            continue;
        };
        let scope_per_day = (scope.records as f64 * scaling.events_per_sample_record)
            .clamp(scaling.min_events_per_day, scaling.max_events_per_day);
        let calls_per_day = scope_per_day * api.records as f64 / scope.records as f64;
        let human = 2 * api.human_votes >= api.records;
        let account_profile = scope.profile(&account, &region);
        let (hourly_profile, weekend_factor, hour_level_shape) = if human {
            (
                account_profile,
                HUMAN_WEEKEND_FACTOR,
                HUMAN_HOUR_LEVEL_SHAPE,
            )
        } else {
            (
                account_profile.map(|weight| {
                    AUTOMATION_PROFILE_SHARE * weight + (1.0 - AUTOMATION_PROFILE_SHARE)
                }),
                AUTOMATION_WEEKEND_FACTOR,
                AUTOMATION_HOUR_LEVEL_SHAPE,
            )
        };
        let series = |insight_type| InsightSeries {
            recipient_account_id: account.clone(),
            aws_region: region.clone(),
            event_source: event_source.clone(),
            event_name: event_name.clone(),
            insight_type,
        };
        let shape = |insight_type, per_day| SeriesShape {
            series: series(insight_type),
            per_day,
            hourly_profile,
            weekend_factor,
            hour_level_shape,
            day_level_sigma: DAY_LEVEL_SIGMA,
        };
        if 2 * api.write_votes > api.records {
            shapes.push(shape(InsightType::ApiCallRate, calls_per_day));
        }
        let error_share =
            (api.errors as f64 + ERROR_PRIOR_ERRORS) / (api.records as f64 + ERROR_PRIOR_RECORDS);
        shapes.push(shape(
            InsightType::ApiErrorRate,
            calls_per_day * error_share,
        ));
    }
    shapes
}

type ApiKey = (String, String, String, String);

#[derive(Default)]
struct ScopeSample {
    records: u64,
    hours: [u64; 24],
    days: BTreeSet<String>,
}

#[derive(Default)]
struct ApiSample {
    records: u64,
    errors: u64,
    write_votes: u64,
    human_votes: u64,
}

impl ScopeSample {
    /// The scope's own hours (smoothed 1-2-1, with a flat share) when the sample saw it over
    /// several days; otherwise an office-hours curve whose peak hour is drawn from the scope's
    /// name, so that accounts do not all peak together.
    fn profile(&self, account: &str, region: &str) -> [f64; 24] {
        let mut profile = [0.0; 24];
        if self.days.len() >= MIN_DAYS_FOR_OWN_PROFILE
            && self.records >= MIN_RECORDS_FOR_OWN_PROFILE
        {
            for (hour, weight) in profile.iter_mut().enumerate() {
                *weight = (self.hours[(hour + 23) % 24]
                    + 2 * self.hours[hour]
                    + self.hours[(hour + 1) % 24]) as f64;
            }
        } else {
            let peak_hour = (name_hash(account, region) % 10 + 9) as f64;
            for (hour, weight) in profile.iter_mut().enumerate() {
                let distance = (hour as f64 - peak_hour).abs();
                let distance = distance.min(24.0 - distance);
                *weight = (-(distance * distance) / (2.0 * 3.0 * 3.0)).exp();
            }
        }
        let mean = profile.iter().sum::<f64>() / 24.0;
        if mean <= 0.0 {
            return [1.0; 24];
        }
        profile.map(|weight| (1.0 - FLAT_SHARE) * weight / mean + FLAT_SHARE)
    }
}

/// A management API call, as far as the shapes need it.
struct ManagementCall {
    account: String,
    region: String,
    event_source: String,
    event_name: String,
    hour: usize,
    day: String,
    failed: bool,
    writes: bool,
    by_a_person: bool,
}

impl ManagementCall {
    fn of(record: &Value) -> Option<ManagementCall> {
        let text = |pointer: &str| record.pointer(pointer).and_then(Value::as_str);
        if !matches!(text("/eventType"), None | Some("AwsApiCall")) {
            return None;
        }
        if !matches!(text("/eventCategory"), None | Some("Management")) {
            return None;
        }
        let account = text("/recipientAccountId").or_else(|| text("/userIdentity/accountId"))?;
        let event_name = text("/eventName")?;
        let event_time = text("/eventTime")?;
        let hour = event_time
            .get(11..13)?
            .parse::<usize>()
            .ok()
            .filter(|hour| *hour < 24)?;
        let writes = match record.get("readOnly").and_then(Value::as_bool) {
            Some(read_only) => !read_only,
            None => !reads_by_its_name(event_name),
        };
        Some(ManagementCall {
            account: account.to_string(),
            region: text("/awsRegion")?.to_string(),
            event_source: text("/eventSource")?.to_string(),
            event_name: event_name.to_string(),
            hour,
            day: event_time.get(..10)?.to_string(),
            failed: record.get("errorCode").is_some_and(|code| !code.is_null()),
            writes,
            by_a_person: matches!(text("/userIdentity/type"), Some("IAMUser" | "Root")),
        })
    }
}

/// Records before `readOnly` existed (eventVersion < 1.05) are judged by the verb their API
/// name starts with.
fn reads_by_its_name(event_name: &str) -> bool {
    const READ_VERBS: [&str; 9] = [
        "Describe", "Get", "List", "Lookup", "Head", "Search", "Check", "Validate", "Estimate",
    ];
    READ_VERBS.iter().any(|verb| event_name.starts_with(verb))
}

/// FNV-1a of the scope's name: a stable, spread-out number.
fn name_hash(account: &str, region: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in account.bytes().chain([b'/']).chain(region.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
