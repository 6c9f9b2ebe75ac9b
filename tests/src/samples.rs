//! The real sample records in `data/cloudtrail`, and what the tests expect of them, computed
//! straight from the files with serde_json — independently of the production parser.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use serde_json::Value;

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/cloudtrail")
}

/// One sample log file.
pub struct SampleFile {
    pub path: PathBuf,
    /// The path below `data/cloudtrail`, used as the S3 key when the file is uploaded.
    pub key: String,
    pub bytes: Vec<u8>,
    /// Each record's exact text.
    pub records: Vec<String>,
}

impl SampleFile {
    /// The account and region of its key, when it follows CloudTrail's layout.
    pub fn key_account_and_region(&self) -> Option<(String, String)> {
        let segments: Vec<&str> = self.key.split('/').collect();
        let position = segments.iter().position(|segment| *segment == "AWSLogs")?;
        let account = segments.get(position + 1)?;
        let region = segments.get(position + 3)?;
        (account.len() == 12 && account.bytes().all(|byte| byte.is_ascii_digit()))
            .then(|| (account.to_string(), region.to_string()))
    }
}

/// Every `*.json.gz` file of the sample data, in path order.
pub fn sample_files() -> Vec<SampleFile> {
    let mut paths = Vec::new();
    collect(&data_dir(), &mut paths);
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no sample files under {}",
        data_dir().display()
    );
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
            let mut json = Vec::new();
            flate2::read::MultiGzDecoder::new(bytes.as_slice())
                .read_to_end(&mut json)
                .unwrap_or_else(|error| panic!("{} is not gzip: {error}", path.display()));
            #[derive(serde::Deserialize)]
            struct Envelope {
                #[serde(rename = "Records")]
                records: Vec<Box<RawValue>>,
            }
            let envelope: Envelope = serde_json::from_slice(&json)
                .unwrap_or_else(|error| panic!("{} is not a log file: {error}", path.display()));
            let key = path
                .strip_prefix(data_dir())
                .map(|relative| relative.to_string_lossy().into_owned())
                .unwrap_or_default();
            SampleFile {
                path,
                key,
                bytes,
                records: envelope
                    .records
                    .into_iter()
                    .map(|record| record.get().to_string())
                    .collect(),
            }
        })
        .collect()
}

/// The sample files of one data set (a folder of `data/cloudtrail`).
pub fn sample_files_of(data_set: &str) -> Vec<SampleFile> {
    sample_files()
        .into_iter()
        .filter(|file| file.key.starts_with(data_set))
        .collect()
}

/// The first `count` real records of the Invictus data set (one account, eventVersion 1.08),
/// each with an eventID of its own.
pub fn invictus_records(count: usize) -> Vec<String> {
    sample_files_of("invictus-ir-aws_dataset")
        .into_iter()
        .flat_map(|file| file.records)
        .take(count)
        .collect()
}

fn collect(directory: &Path, paths: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(directory)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", directory.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, paths);
        } else if path.to_string_lossy().ends_with(".json.gz") {
            paths.push(path);
        }
    }
}

/// What a stored event is expected to be, read from its record.
#[derive(Clone, Debug)]
pub struct ExpectedEvent {
    pub event_id: String,
    pub event_time: DateTime<Utc>,
    pub event_name: Option<String>,
    pub event_source: Option<String>,
    pub read_only: Option<bool>,
    pub username: Option<String>,
    pub resource_types: Vec<String>,
    pub resource_names: Vec<String>,
    pub access_key_id: Option<String>,
    pub account_id: Option<String>,
    pub aws_region: Option<String>,
    pub event_category: String,
    pub record: String,
}

/// The sample input as the tests see it.
pub struct ExpectedStore {
    /// By eventID, the first delivery of each.
    pub events: BTreeMap<String, ExpectedEvent>,
    pub records: usize,
    /// Records delivered again (same eventID).
    pub duplicates: usize,
    /// Records without eventID or eventTime.
    pub unusable: usize,
}

pub fn expected_store(files: &[SampleFile]) -> ExpectedStore {
    let mut store = ExpectedStore {
        events: BTreeMap::new(),
        records: 0,
        duplicates: 0,
        unusable: 0,
    };
    for file in files {
        let key_account = file.key_account_and_region().map(|(account, _)| account);
        for record in &file.records {
            store.records += 1;
            match expected_event(record, key_account.as_deref()) {
                None => store.unusable += 1,
                Some(event) if store.events.contains_key(&event.event_id) => store.duplicates += 1,
                Some(event) => {
                    store.events.insert(event.event_id.clone(), event);
                }
            }
        }
    }
    store
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .map(str::to_string)
}

pub fn expected_event(record: &str, key_account: Option<&str>) -> Option<ExpectedEvent> {
    let value: Value = serde_json::from_str(record).ok()?;
    let event_id = text(&value, "/eventID")?;
    let event_time = DateTime::parse_from_rfc3339(&text(&value, "/eventTime")?)
        .ok()?
        .with_timezone(&Utc);
    let category = text(&value, "/eventCategory").unwrap_or_else(|| {
        if text(&value, "/eventType").as_deref() == Some("AwsCloudTrailInsight") {
            "Insight".into()
        } else {
            "Management".into()
        }
    });
    let read_only = match value.get("readOnly") {
        Some(Value::Bool(flag)) => Some(*flag),
        Some(Value::String(flag)) if flag == "true" => Some(true),
        Some(Value::String(flag)) if flag == "false" => Some(false),
        _ => None,
    };
    let resources = value
        .get("resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let resource_types = resources
        .iter()
        .filter_map(|resource| text(resource, "/type"))
        .collect();
    let mut resource_names: Vec<String> = Vec::new();
    for resource in &resources {
        if let Some(arn) = text(resource, "/ARN").or_else(|| text(resource, "/ARNPrefix")) {
            let resource_part = if arn.starts_with("arn:") {
                arn.splitn(6, ':').nth(5).unwrap_or(&arn).to_string()
            } else {
                arn.clone()
            };
            let last = resource_part
                .rsplit(['/', ':'])
                .next()
                .unwrap_or_default()
                .to_string();
            resource_names.push(arn);
            if !last.is_empty() {
                resource_names.push(last);
            }
        }
    }
    let account_id = text(&value, "/recipientAccountId")
        .or_else(|| key_account.map(str::to_string))
        .or_else(|| text(&value, "/userIdentity/accountId"));
    Some(ExpectedEvent {
        event_id,
        event_time,
        event_name: text(&value, "/eventName")
            .or_else(|| text(&value, "/insightDetails/eventName")),
        event_source: text(&value, "/eventSource")
            .or_else(|| text(&value, "/insightDetails/eventSource")),
        read_only,
        username: expected_username(value.get("userIdentity")),
        resource_types,
        resource_names,
        access_key_id: text(&value, "/userIdentity/accessKeyId"),
        account_id,
        aws_region: text(&value, "/awsRegion"),
        event_category: category,
        record: record.to_string(),
    })
}

/// Event history's user name, per identity type (the rule the aggregator documents).
fn expected_username(identity: Option<&Value>) -> Option<String> {
    let identity = identity?;
    if let Some(name) = text(identity, "/userName") {
        return Some(name);
    }
    let arn_tail = text(identity, "/arn")
        .and_then(|arn| arn.rsplit('/').next().map(str::to_string))
        .filter(|tail| !tail.starts_with("arn:"));
    match text(identity, "/type").as_deref() {
        Some("Root") => Some("root".into()),
        Some("AWSService") | None => text(identity, "/invokedBy").or(arn_tail),
        Some(_) => arn_tail
            .or_else(|| {
                text(identity, "/principalId")
                    .and_then(|id| id.split_once(':').map(|(_, session)| session.to_string()))
            })
            .or_else(|| text(identity, "/principalId")),
    }
}

/// The eventID (as written in the record) of an event returned by the API.
pub fn record_event_id(record: &str) -> String {
    let value: Value = serde_json::from_str(record)
        .unwrap_or_else(|error| panic!("a returned record is not JSON: {error}"));
    text(&value, "/eventID").unwrap_or_else(|| panic!("a returned record has no eventID: {record}"))
}

/// Distinct values of one field over the expected events, most frequent first.
pub fn values_by_frequency<'a>(
    events: impl Iterator<Item = &'a ExpectedEvent>,
    field: impl Fn(&ExpectedEvent) -> Vec<String>,
) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for event in events {
        let values: HashSet<String> = field(event).into_iter().collect();
        for value in values {
            *counts.entry(value).or_default() += 1;
        }
    }
    let mut values: Vec<(String, usize)> = counts.into_iter().collect();
    values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    values
}
