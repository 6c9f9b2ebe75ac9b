//! The archive read by readers orgtrail did not write: the sample events are written as the
//! archive lays them out (one object per account, region and hour, and a late object for one
//! hour) into a directory, which `tests/read_back.py` reads with pyarrow (file by file) and
//! DuckDB (`read_parquet(…, hive_partitioning = true)`). Every record must come back byte for
//! byte, and DuckDB must see the partition values of the path.
//!
//! Needs `ORGTRAIL_TEST_PYTHON`: a Python with pyarrow and DuckDB (`cargo xtask test` sets it
//! to its `readers` venv). Without it the test fails, saying so.

mod sample_events;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use orgtrail_archive::{
    encode_parquet, partition_events, ArchiveEvent, HourPartition, ObjectKey,
    ARCHIVE_FORMAT_VERSION, DEFAULT_PARTITION_VALUE,
};
use sample_events::read_sample_events;
use serde::Deserialize;

const PYTHON_VARIABLE: &str = "ORGTRAIL_TEST_PYTHON";
const PREFIX: &str = "archive";

#[derive(Deserialize)]
struct ReadBack {
    versions: BTreeMap<String, String>,
    pyarrow: PyarrowRead,
    duckdb: DuckdbRead,
}

#[derive(Deserialize)]
struct PyarrowRead {
    files: Vec<PyarrowFile>,
    rows: Vec<Row>,
}

#[derive(Deserialize)]
struct PyarrowFile {
    path: String,
    rows: usize,
    compressions: Vec<String>,
    metadata: BTreeMap<String, String>,
    types: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct DuckdbRead {
    types: BTreeMap<String, String>,
    rows: Vec<Row>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    event_id: String,
    event_time_us: i64,
    record: String,
    resource_arns: Vec<String>,
    /// The partition values, from DuckDB only.
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    day: Option<String>,
}

#[test]
fn pyarrow_and_duckdb_read_every_record_byte_for_byte_with_hive_partitions() {
    let python = std::env::var_os(PYTHON_VARIABLE).unwrap_or_else(|| {
        panic!(
            "{PYTHON_VARIABLE} is not set: it names a Python with pyarrow and duckdb, which \
             `cargo xtask test` installs into target/xtask/readers (bin/python); by hand: \
             python3 -m venv /tmp/readers && /tmp/readers/bin/pip install pyarrow duckdb, then \
             {PYTHON_VARIABLE}=/tmp/readers/bin/python cargo test -p orgtrail-archive"
        )
    });
    let events = read_sample_events();
    let directory = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("archive-python-read-back");
    if directory.exists() {
        std::fs::remove_dir_all(&directory).unwrap();
    }
    let written = write_archive(&directory, &events);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/read_back.py");
    let events_directory = directory.join(PREFIX).join("events");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&events_directory)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", python.to_string_lossy()));
    assert!(
        output.status.success(),
        "{} failed ({}): {}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let read_back: ReadBack = serde_json::from_slice(&output.stdout).unwrap();
    println!("read back with {:?}", read_back.versions);

    // pyarrow, file by file: every object zstd, with the archive's metadata and types.
    assert_eq!(read_back.pyarrow.files.len(), written.len());
    for file in &read_back.pyarrow.files {
        let key = format!("{PREFIX}/events/{}", file.path);
        assert_eq!(written.get(&key), Some(&file.rows), "{key}");
        assert_eq!(file.compressions, ["ZSTD"], "{key}");
        assert_eq!(
            file.metadata
                .get("orgtrail.archive.version")
                .map(String::as_str),
            Some(ARCHIVE_FORMAT_VERSION)
        );
        assert_eq!(
            file.metadata.get("orgtrail.archive.event_count"),
            Some(&file.rows.to_string())
        );
        assert_eq!(file.types["event_time"], "timestamp[us, tz=UTC]");
        assert_eq!(
            file.types["resource_arns"],
            "list<element: string not null>"
        );
        assert_eq!(file.types["record"], "string");
        assert_eq!(file.types["read_only"], "bool");
    }
    let expected: Vec<Row> = sorted(events.iter().map(|event| row_of(event, None)).collect());
    let pyarrow_rows = sorted(read_back.pyarrow.rows);
    assert_same_rows("pyarrow", &pyarrow_rows, &expected);

    // DuckDB over the Hive-style directory: the same rows, and the path's partition values.
    assert_eq!(
        read_back.duckdb.types["event_time"],
        "TIMESTAMP WITH TIME ZONE"
    );
    assert_eq!(read_back.duckdb.types["resource_arns"], "VARCHAR[]");
    assert_eq!(read_back.duckdb.types["day"], "DATE");
    let expected: Vec<Row> = sorted(
        events
            .iter()
            .map(|event| row_of(event, Some(&HourPartition::of(event))))
            .collect(),
    );
    let duckdb_rows = sorted(read_back.duckdb.rows);
    assert_same_rows("duckdb", &duckdb_rows, &expected);
}

/// Writes `events` as the archive would: one object per hour partition, except the largest
/// hour, whose second half is a late object (`HH-0001`). The keys written, with their rows.
fn write_archive(directory: &Path, events: &[ArchiveEvent]) -> BTreeMap<String, usize> {
    let partitions = partition_events(events.to_vec());
    let largest = partitions
        .iter()
        .max_by_key(|(_, events)| events.len())
        .map(|(partition, _)| partition.clone())
        .unwrap();
    let mut written = BTreeMap::new();
    for (partition, events) in partitions {
        let objects: Vec<&[ArchiveEvent]> = if partition == largest {
            let (first, late) = events.split_at(events.len() / 2);
            vec![first, late]
        } else {
            vec![&events]
        };
        let mut keys: Vec<String> = Vec::new();
        for object in objects {
            let key =
                ObjectKey::next_for(PREFIX, partition.clone(), keys.iter().map(String::as_str))
                    .unwrap()
                    .to_string();
            let path = directory.join(&key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, encode_parquet(object).unwrap()).unwrap();
            written.insert(key.clone(), object.len());
            keys.push(key);
        }
    }
    assert!(written.keys().any(|key| key.ends_with("-0001.parquet")));
    written
}

fn row_of(event: &ArchiveEvent, partition: Option<&HourPartition>) -> Row {
    let value = |value: &str| (value != DEFAULT_PARTITION_VALUE).then(|| value.to_string());
    Row {
        event_id: event.event_id.clone(),
        event_time_us: event.event_time.timestamp_micros(),
        record: event.record.clone(),
        resource_arns: event.resource_arns.clone(),
        account: partition.and_then(|partition| value(&partition.account)),
        region: partition.and_then(|partition| value(&partition.region)),
        day: partition.map(|partition| partition.day().format("%Y-%m-%d").to_string()),
    }
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort();
    rows
}

fn assert_same_rows(reader: &str, found: &[Row], expected: &[Row]) {
    assert_eq!(found.len(), expected.len(), "{reader}: row count");
    for (found, expected) in found.iter().zip(expected) {
        assert_eq!(
            found.record.as_bytes(),
            expected.record.as_bytes(),
            "{reader}: record of {}",
            expected.event_id
        );
        assert_eq!(found, expected, "{reader}");
    }
}
