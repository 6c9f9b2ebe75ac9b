//! Events → the bytes of one Parquet object: rows sorted by `eventSource`, `eventName`, then
//! `eventTime` and `eventID` (an object is one hour: records of one API side by side compress
//! far better than in time order, and a query for an API reads a narrow run of rows),
//! zstd-compressed, bounded row groups, statistics on the columns whose
//! minimum and maximum prune, and the archive's key-value metadata.

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use chrono::SecondsFormat;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::archive_error::ArchiveError;
use crate::archive_event::ArchiveEvent;
use crate::schema::{
    archive_schema, column, resource_arn_field, ARCHIVE_FORMAT_VERSION, METADATA_EVENT_COUNT,
    METADATA_FORMAT_VERSION, METADATA_MAX_EVENT_TIME, METADATA_MIN_EVENT_TIME,
};

/// Rows per row group unless told otherwise: an hour of one account and region is rarely more,
/// and a reader holds one row group's column chunks at a time.
pub const DEFAULT_MAX_ROW_GROUP_ROWS: usize = 64 * 1024;

/// zstd's level unless told otherwise: its own default, the usual balance of speed and size.
pub const DEFAULT_ZSTD_LEVEL: i32 = 9;

/// Columns without statistics: the minimum and maximum of random identifiers and free text
/// prune nothing, and would cost up to 128 bytes each in every footer.
const UNPRUNED_COLUMNS: [&str; 4] = [
    column::EVENT_ID,
    column::USER_AGENT,
    column::ERROR_MESSAGE,
    column::RECORD,
];

/// Columns whose values (nearly) never repeat: no dictionary to try and abandon.
const UNIQUE_COLUMNS: [&str; 2] = [column::EVENT_ID, column::RECORD];

/// How archive objects are encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveWriter {
    max_row_group_rows: usize,
    zstd_level: i32,
}

impl Default for ArchiveWriter {
    fn default() -> ArchiveWriter {
        ArchiveWriter {
            max_row_group_rows: DEFAULT_MAX_ROW_GROUP_ROWS,
            zstd_level: DEFAULT_ZSTD_LEVEL,
        }
    }
}

impl ArchiveWriter {
    pub fn new() -> ArchiveWriter {
        ArchiveWriter::default()
    }

    /// At most `rows` rows per row group (at least 1).
    pub fn with_max_row_group_rows(mut self, rows: usize) -> ArchiveWriter {
        self.max_row_group_rows = rows.max(1);
        self
    }

    /// zstd's compression level, clamped into 1 (fastest) to 22 (smallest).
    pub fn with_zstd_level(mut self, level: i32) -> ArchiveWriter {
        self.zstd_level = level.clamp(1, 22);
        self
    }

    /// The Parquet object of `events`, in any order; their order in the object is by
    /// `event_source`, `event_name`, `event_time`, then `event_id`.
    pub fn encode(&self, events: &[ArchiveEvent]) -> Result<Vec<u8>, ArchiveError> {
        let mut sorted: Vec<&ArchiveEvent> = events.iter().collect();
        sorted.sort_by(|left, right| {
            (
                &left.event_source,
                &left.event_name,
                left.event_time,
                &left.event_id,
            )
                .cmp(&(
                    &right.event_source,
                    &right.event_name,
                    right.event_time,
                    &right.event_id,
                ))
        });
        let schema = archive_schema();
        let write_error = |source| ArchiveError::WriteParquet { source };
        let properties = self.writer_properties(&sorted).map_err(write_error)?;
        // The Arrow schema is not embedded (`ARROW:schema`, 2 KB of base64 in every footer, as
        // much as a quiet hour's events): the Parquet types alone say it all, and every reader
        // (pyarrow, DuckDB, Athena) reads them.
        let options = ArrowWriterOptions::new()
            .with_properties(properties)
            .with_skip_arrow_metadata(true);
        let mut writer = ArrowWriter::try_new_with_options(Vec::new(), schema.clone(), options)
            .map_err(write_error)?;
        for row_group in sorted.chunks(self.max_row_group_rows) {
            let batch = RecordBatch::try_new(schema.clone(), columns_of(row_group))
                .map_err(|source| ArchiveError::BuildColumns { source })?;
            writer.write(&batch).map_err(write_error)?;
            // Each chunk is its own row group, whatever the writer's size estimate says.
            writer.flush().map_err(write_error)?;
        }
        writer.into_inner().map_err(write_error)
    }

    fn writer_properties(
        &self,
        sorted: &[&ArchiveEvent],
    ) -> Result<WriterProperties, parquet::errors::ParquetError> {
        let mut metadata = vec![
            KeyValue::new(
                METADATA_FORMAT_VERSION.to_string(),
                ARCHIVE_FORMAT_VERSION.to_string(),
            ),
            KeyValue::new(METADATA_EVENT_COUNT.to_string(), sorted.len().to_string()),
        ];
        let oldest = sorted.iter().min_by_key(|event| event.event_time);
        let newest = sorted.iter().max_by_key(|event| event.event_time);
        if let (Some(first), Some(last)) = (oldest, newest) {
            let text = |event: &ArchiveEvent| {
                event
                    .event_time
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true)
            };
            metadata.push(KeyValue::new(
                METADATA_MIN_EVENT_TIME.to_string(),
                text(first),
            ));
            metadata.push(KeyValue::new(
                METADATA_MAX_EVENT_TIME.to_string(),
                text(last),
            ));
        }
        let mut builder = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(self.zstd_level)?))
            .set_max_row_group_row_count(Some(self.max_row_group_rows))
            // Row-group statistics, no page index: an object is one hour, rarely more than a
            // row group, and a page index costs ~1 KB in every object, a quiet hour's worth.
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_key_value_metadata(Some(metadata));
        for name in UNPRUNED_COLUMNS {
            builder = builder
                .set_column_statistics_enabled(ColumnPath::from(name), EnabledStatistics::None);
        }
        for name in UNIQUE_COLUMNS {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(name), false);
        }
        Ok(builder.build())
    }
}

/// `events` as one Arrow batch of the archive's schema, in the order given: what the archive
/// holds, without the Parquet (the SQL engine's table of events not archived yet).
pub fn events_batch(events: &[ArchiveEvent]) -> Result<RecordBatch, ArchiveError> {
    let events: Vec<&ArchiveEvent> = events.iter().collect();
    RecordBatch::try_new(archive_schema(), columns_of(&events))
        .map_err(|source| ArchiveError::BuildColumns { source })
}

/// The Parquet object of `events` with the default settings ([`ArchiveWriter::default`]).
pub fn encode_parquet(events: &[ArchiveEvent]) -> Result<Vec<u8>, ArchiveError> {
    ArchiveWriter::default().encode(events)
}

/// The columns of `rows`, in the schema's order.
fn columns_of(rows: &[&ArchiveEvent]) -> Vec<ArrayRef> {
    let text = |value: fn(&ArchiveEvent) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from_iter(rows.iter().map(|row| value(row))))
    };
    let required_text = |value: fn(&ArchiveEvent) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|row| value(row)),
        ))
    };
    let flag = |value: fn(&ArchiveEvent) -> Option<bool>| -> ArrayRef {
        Arc::new(BooleanArray::from_iter(rows.iter().map(|row| value(row))))
    };
    let event_time = TimestampMicrosecondArray::from_iter_values(
        rows.iter().map(|row| row.event_time.timestamp_micros()),
    )
    .with_timezone("UTC");
    let mut resource_arns =
        ListBuilder::new(StringBuilder::new()).with_field(Arc::new(resource_arn_field()));
    for row in rows {
        for arn in &row.resource_arns {
            resource_arns.values().append_value(arn);
        }
        resource_arns.append(true);
    }
    vec![
        Arc::new(event_time),
        required_text(|row| &row.event_id),
        text(|row| row.event_version.as_deref()),
        text(|row| row.event_source.as_deref()),
        text(|row| row.event_name.as_deref()),
        text(|row| row.aws_region.as_deref()),
        text(|row| row.account_id.as_deref()),
        text(|row| row.event_type.as_deref()),
        required_text(|row| &row.event_category),
        flag(|row| row.read_only),
        flag(|row| row.management_event),
        text(|row| row.user_type.as_deref()),
        text(|row| row.user_arn.as_deref()),
        text(|row| row.user_principal_id.as_deref()),
        text(|row| row.user_account_id.as_deref()),
        text(|row| row.access_key_id.as_deref()),
        text(|row| row.username.as_deref()),
        text(|row| row.source_ip_address.as_deref()),
        text(|row| row.user_agent.as_deref()),
        text(|row| row.error_code.as_deref()),
        text(|row| row.error_message.as_deref()),
        Arc::new(resource_arns.finish()),
        required_text(|row| &row.record),
    ]
}
