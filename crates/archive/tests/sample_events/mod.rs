//! The project's sample CloudTrail log files (`data/cloudtrail/`), read the plain way: gunzip,
//! `{"Records": [...]}` parsed with each record kept as its raw JSON text
//! (`serde_json::value::RawValue`, byte for byte), each record made a stored event by
//! orgtrail-domain's `parse_record` (with the file's key, for the account of records older
//! than `recipientAccountId`), then an [`ArchiveEvent`].

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

use orgtrail_archive::ArchiveEvent;
use orgtrail_domain::{parse_cloudtrail_key, parse_record, RecordError};
use serde::Deserialize;
use serde_json::value::RawValue;

/// One sample log file.
pub struct SampleFile {
    /// Its size as stored, gzip'd by CloudTrail (or the dataset's authors).
    pub gzip_bytes: usize,
    /// The records in the file.
    pub records: usize,
    /// The records the aggregator refuses (not stored events, so not in `events`).
    pub refused: usize,
    pub events: Vec<ArchiveEvent>,
}

#[derive(Deserialize)]
struct LogFile<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<&'a RawValue>,
}

pub fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `*.json.gz` under `data/cloudtrail/`, in path order. Panics on anything the sample
/// data should not contain.
pub fn read_sample_files() -> Vec<SampleFile> {
    let directory = repository_root().join("data/cloudtrail");
    let mut paths = Vec::new();
    collect_gz(&directory, &mut paths);
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no sample log files under {}",
        directory.display()
    );
    paths
        .iter()
        .map(|path| read_sample_file(&directory, path))
        .collect()
}

/// Every sample event, in file order.
pub fn read_sample_events() -> Vec<ArchiveEvent> {
    read_sample_files()
        .into_iter()
        .flat_map(|file| file.events)
        .collect()
}

fn read_sample_file(directory: &Path, path: &Path) -> SampleFile {
    let name = path
        .strip_prefix(directory)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/");
    let compressed = std::fs::read(path).unwrap();
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(compressed.as_slice())
        .read_to_string(&mut text)
        .unwrap_or_else(|error| panic!("{name}: {error}"));
    let log_file: LogFile =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{name}: {error}"));
    let key = parse_cloudtrail_key(&name);
    let mut events = Vec::new();
    let mut refused = 0;
    for (index, raw) in log_file.records.iter().enumerate() {
        match parse_record(raw.get().to_string(), key.as_ref()) {
            Ok(event) => events.push(
                ArchiveEvent::from_cloudtrail_event(&event)
                    .unwrap_or_else(|error| panic!("{name}#{index}: {error}")),
            ),
            // The documentation's hand-written examples without an eventID: the aggregator
            // quarantines them, so they are never stored, nor archived.
            Err(RecordError::MissingEventId) => refused += 1,
            Err(error) => panic!("{name}#{index}: {error}"),
        }
    }
    SampleFile {
        gzip_bytes: compressed.len(),
        records: log_file.records.len(),
        refused,
        events,
    }
}

fn collect_gz(directory: &Path, paths: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_gz(&path, paths);
        } else if path.to_string_lossy().ends_with(".json.gz") {
            paths.push(path);
        }
    }
}
