//! The sample CloudTrail records through the archive's Parquet and back: every field and every
//! record's bytes come back, rows sorted by API then time, row groups bounded, every column chunk zstd,
//! row-group statistics where they prune, the archive's metadata in the footer. And the measurement of
//! bytes per event against CloudTrail's own gzip'd JSON.

mod sample_events;

use std::io::Write;
use std::sync::Arc;

use arrow_array::{Int32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use orgtrail_archive::{
    decode_parquet, encode_parquet, partition_events, read_archive_summary, ArchiveError,
    ArchiveEvent, ArchiveWriter, ARCHIVE_FORMAT_VERSION,
};
use parquet::basic::Compression;
use parquet::file::reader::{FileReader, SerializedFileReader};
use sample_events::{read_sample_events, read_sample_files};

/// The object's order: by API, then time.
fn sorted(events: &[ArchiveEvent]) -> Vec<ArchiveEvent> {
    let mut events = events.to_vec();
    events.sort_by_key(|event| {
        (
            event.event_source.clone(),
            event.event_name.clone(),
            event.event_time,
            event.event_id.clone(),
        )
    });
    events
}

#[test]
fn every_sample_event_comes_back_field_for_field_and_record_byte_for_byte() {
    let events = read_sample_events();
    assert!(events.len() > 1000, "only {} sample events", events.len());
    let object = encode_parquet(&events).unwrap();
    let decoded = decode_parquet(&object).unwrap();
    let expected = sorted(&events);
    assert_eq!(decoded.len(), expected.len());
    for (decoded, expected) in decoded.iter().zip(&expected) {
        assert_eq!(decoded.record.as_bytes(), expected.record.as_bytes());
        assert_eq!(decoded, expected);
    }
}

#[test]
fn rows_are_sorted_by_api_then_time_whatever_the_input_order() {
    let mut events = read_sample_events();
    events.reverse();
    let decoded = decode_parquet(&encode_parquet(&events).unwrap()).unwrap();
    assert_eq!(decoded, sorted(&events));
}

#[test]
fn row_groups_are_bounded_and_every_column_chunk_is_zstd() {
    let events = read_sample_events();
    let rows_per_group = 500;
    let object = ArchiveWriter::new()
        .with_max_row_group_rows(rows_per_group)
        .encode(&events)
        .unwrap();
    let reader = SerializedFileReader::new(Bytes::from(object.clone())).unwrap();
    let metadata = reader.metadata();
    assert_eq!(
        metadata.num_row_groups(),
        events.len().div_ceil(rows_per_group)
    );
    let schema = metadata.file_metadata().schema_descr();
    for row_group in metadata.row_groups() {
        assert!(row_group.num_rows() as usize <= rows_per_group);
        assert_eq!(row_group.num_columns(), schema.num_columns());
        for chunk in row_group.columns() {
            assert!(
                matches!(chunk.compression(), Compression::ZSTD(_)),
                "{} is {:?}",
                chunk.column_path(),
                chunk.compression()
            );
            let statistics = chunk.statistics();
            match chunk.column_path().string().as_str() {
                "record" | "event_id" => assert!(
                    statistics.is_none(),
                    "{} has statistics",
                    chunk.column_path()
                ),
                "event_time" | "event_category" => {
                    let statistics = statistics.expect("statistics");
                    assert!(statistics.min_bytes_opt().is_some());
                    assert!(statistics.max_bytes_opt().is_some());
                }
                // Null in some row groups, so perhaps only a null count.
                "event_name" | "account_id" | "error_code" => assert!(statistics.is_some()),
                _ => {}
            }
        }
    }
    assert_eq!(decode_parquet(&object).unwrap(), sorted(&events));
}

#[test]
fn the_footer_says_the_format_version_event_count_and_time_range() {
    let events = read_sample_events();
    let object = encode_parquet(&events).unwrap();
    let reader = SerializedFileReader::new(Bytes::from(object.clone())).unwrap();
    let key_values = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap();
    let value = |key: &str| {
        key_values
            .iter()
            .find(|entry| entry.key == key)
            .and_then(|entry| entry.value.clone())
    };
    assert_eq!(
        value("orgtrail.archive.version").as_deref(),
        Some(ARCHIVE_FORMAT_VERSION)
    );
    assert_eq!(
        value("orgtrail.archive.event_count"),
        Some(events.len().to_string())
    );
    let summary = read_archive_summary(&object).unwrap();
    assert_eq!(summary.event_count, events.len() as u64);
    assert_eq!(summary.row_count, events.len() as u64);
    assert_eq!(
        summary.min_event_time,
        events.iter().map(|event| event.event_time).min()
    );
    assert_eq!(
        summary.max_event_time,
        events.iter().map(|event| event.event_time).max()
    );
}

#[test]
fn an_object_of_no_events_is_valid_and_empty() {
    let object = encode_parquet(&[]).unwrap();
    assert_eq!(decode_parquet(&object).unwrap(), []);
    let summary = read_archive_summary(&object).unwrap();
    assert_eq!((summary.event_count, summary.min_event_time), (0, None));
}

#[test]
fn other_parquet_and_other_bytes_are_refused() {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(vec![1]))]).unwrap();
    let mut other = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut other, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    assert!(matches!(
        decode_parquet(&other),
        Err(ArchiveError::NotAnArchiveObject { .. })
    ));
    assert!(matches!(
        decode_parquet(b"{\"Records\":[]}"),
        Err(ArchiveError::ReadParquet { .. })
    ));
}

/// Bytes per event of the archive's Parquet against gzip'd `{"Records":[…]}` JSON, for the same
/// sample events. Run with `--nocapture` to see the figures.
#[test]
fn parquet_bytes_per_event_against_gzip_json() {
    let files = read_sample_files();
    let events: Vec<ArchiveEvent> = files.iter().flat_map(|file| file.events.clone()).collect();
    let count = events.len() as f64;
    let record_bytes: usize = events.iter().map(|event| event.record.len()).sum();
    let delivered_gzip: usize = files.iter().map(|file| file.gzip_bytes).sum();
    let partitions = partition_events(events.clone());
    let hourly_parquet: usize = partitions
        .values()
        .map(|events| encode_parquet(events).unwrap().len())
        .sum();
    let hourly_gzip: usize = partitions.values().map(|events| gzip_json(events)).sum();
    let whole_parquet = encode_parquet(&events).unwrap().len();
    let whole_gzip = gzip_json(&events);
    let per_event = |bytes: usize| bytes as f64 / count;
    let refused: usize = files.iter().map(|file| file.refused).sum();
    let records: usize = files.iter().map(|file| file.records).sum();
    println!(
        "{} sample events from {} files ({} of {} records refused by the aggregator, not counted), \
         {} hourly partitions; records {:.0} B/event uncompressed",
        events.len(),
        files.len(),
        refused,
        records,
        partitions.len(),
        per_event(record_bytes)
    );
    println!(
        "  as delivered (one gzip per log file):      {:>9} B  {:>7.1} B/event",
        delivered_gzip,
        per_event(delivered_gzip)
    );
    println!(
        "  gzip {{\"Records\":[…]}} per hourly partition: {:>9} B  {:>7.1} B/event",
        hourly_gzip,
        per_event(hourly_gzip)
    );
    println!(
        "  archive Parquet per hourly partition:      {:>9} B  {:>7.1} B/event",
        hourly_parquet,
        per_event(hourly_parquet)
    );
    println!(
        "  gzip {{\"Records\":[…]}}, all in one:          {:>9} B  {:>7.1} B/event",
        whole_gzip,
        per_event(whole_gzip)
    );
    println!(
        "  archive Parquet, all in one object:        {:>9} B  {:>7.1} B/event",
        whole_parquet,
        per_event(whole_parquet)
    );
    assert!(whole_parquet > 0 && hourly_parquet > 0);
}

/// CloudTrail's own log file body for `events` (`{"Records":[…]}` of the original record
/// texts), gzip'd at flate2's default level.
fn gzip_json(events: &[ArchiveEvent]) -> usize {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(b"{\"Records\":[").unwrap();
    for (index, event) in events.iter().enumerate() {
        if index > 0 {
            encoder.write_all(b",").unwrap();
        }
        encoder.write_all(event.record.as_bytes()).unwrap();
    }
    encoder.write_all(b"]}").unwrap();
    encoder.finish().unwrap().len()
}
