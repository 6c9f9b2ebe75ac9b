//! The project's sample CloudTrail records (`data/cloudtrail/`), read with orgtrail-domain's
//! log-file reader (gzip'd or plain `{"Records":[…]}` files) and parsed once each into a
//! `serde_json::Value`, as the aggregator would hand them to the filters. Shared by the CIS
//! ground-truth test and the throughput example.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use orgtrail_domain::log_file::{read_log_file, LogFileItem, ReadLimits};
use serde_json::Value;

/// One record of the sample data.
pub struct SampleRecord {
    /// How `data/cis/EXPECTED.json` names the record: its eventID, or `<file>#<index>` for a
    /// record without one, `<file>` being the path under `data/cloudtrail/` with `/`
    /// separators (the form of `MANIFEST.json`'s `file`) and `<index>` its 0-based position
    /// in `Records`.
    pub key: String,
    pub record: Value,
}

pub struct SampleData {
    pub files: usize,
    pub records: Vec<SampleRecord>,
}

pub fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Reads every log file under `data/cloudtrail/`, in path order. Panics on anything the
/// sample data should not contain: a file that fails to read, a record that is not an object.
pub fn read_sample_data() -> SampleData {
    let directory = repository_root().join("data/cloudtrail");
    let mut files = Vec::new();
    collect_log_files(&directory, &mut files);
    files.sort();
    let mut records = Vec::new();
    for path in &files {
        let relative = relative_path(&directory, path);
        let file = std::fs::File::open(path)
            .unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()));
        let read = read_log_file(file, ReadLimits::default(), |item| {
            match item {
                LogFileItem::Record { index, json } => {
                    let record: Value = serde_json::from_str(&json)
                        .unwrap_or_else(|error| panic!("{relative}#{index}: {error}"));
                    let key = match record.get("eventID").and_then(Value::as_str) {
                        Some(event_id) => event_id.to_owned(),
                        None => format!("{relative}#{index}"),
                    };
                    records.push(SampleRecord { key, record });
                }
                LogFileItem::Rejected { index, reason } => {
                    panic!("{relative}#{index} rejected: {reason}")
                }
            }
            ControlFlow::Continue(())
        });
        if let Some(fault) = read.fault {
            panic!("{relative}: {fault}");
        }
    }
    SampleData {
        files: files.len(),
        records,
    }
}

fn collect_log_files(directory: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(directory)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", directory.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            collect_log_files(&path, files);
        } else if (name.ends_with(".json.gz") || name.ends_with(".json")) && name != "MANIFEST.json"
        {
            files.push(path);
        }
    }
}

fn relative_path(directory: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(directory).unwrap();
    let parts: Vec<String> = relative
        .components()
        .map(|component| component.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}
