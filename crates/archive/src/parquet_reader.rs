//! The bytes of an archive object → its events ([`decode_parquet`]) or only what its footer says
//! ([`read_archive_summary`]), through the parquet crate's Arrow reader. For the tests and for
//! `verify --archive`: an object is accepted only with the archive's format version and exactly
//! its schema.

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, BooleanArray, ListArray, PrimitiveArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Schema};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::ParquetMetaData;

use crate::archive_error::ArchiveError;
use crate::archive_event::ArchiveEvent;
use crate::schema::{
    archive_schema, column, ARCHIVE_FORMAT_VERSION, METADATA_EVENT_COUNT, METADATA_FORMAT_VERSION,
    METADATA_MAX_EVENT_TIME, METADATA_MIN_EVENT_TIME,
};

/// What an archive object's footer says about it, without reading its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// The rows, as the Parquet footer counts them.
    pub row_count: u64,
    /// `orgtrail.archive.event_count`, as the writer counted them.
    pub event_count: u64,
    pub min_event_time: Option<DateTime<Utc>>,
    pub max_event_time: Option<DateTime<Utc>>,
    pub row_groups: usize,
}

/// The events of an archive object, in the object's order (by `event_source`, `event_name`,
/// `event_time`, then `event_id`).
pub fn decode_parquet(bytes: &[u8]) -> Result<Vec<ArchiveEvent>, ArchiveError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(bytes))
        .map_err(|source| ArchiveError::ReadParquet { source })?;
    summary_of(builder.metadata())?;
    check_schema(builder.schema())?;
    let reader = builder
        .build()
        .map_err(|source| ArchiveError::ReadParquet { source })?;
    let mut events = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|source| ArchiveError::ReadParquet {
            source: source.into(),
        })?;
        decode_batch(&batch, &mut events)?;
    }
    Ok(events)
}

/// The footer of an archive object: its counts and time range, for a verifier that checks an
/// object against what should be in it without decoding every row.
pub fn read_archive_summary(bytes: &[u8]) -> Result<ArchiveSummary, ArchiveError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(bytes))
        .map_err(|source| ArchiveError::ReadParquet { source })?;
    let summary = summary_of(builder.metadata())?;
    check_schema(builder.schema())?;
    Ok(summary)
}

fn summary_of(metadata: &ParquetMetaData) -> Result<ArchiveSummary, ArchiveError> {
    let file = metadata.file_metadata();
    let value = |key: &str| {
        file.key_value_metadata()
            .into_iter()
            .flatten()
            .find(|entry| entry.key == key)
            .and_then(|entry| entry.value.as_deref())
    };
    let not_archive = |detail: String| ArchiveError::NotAnArchiveObject { detail };
    let version = value(METADATA_FORMAT_VERSION)
        .ok_or_else(|| not_archive(format!("no {METADATA_FORMAT_VERSION} metadata")))?;
    if version != ARCHIVE_FORMAT_VERSION {
        return Err(ArchiveError::UnsupportedFormatVersion {
            found: version.to_string(),
            supported: ARCHIVE_FORMAT_VERSION,
        });
    }
    let event_count = value(METADATA_EVENT_COUNT)
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| not_archive(format!("no number in {METADATA_EVENT_COUNT}")))?;
    let time = |key: &str| -> Result<Option<DateTime<Utc>>, ArchiveError> {
        value(key)
            .map(|text| {
                DateTime::parse_from_rfc3339(text)
                    .map(|time| time.with_timezone(&Utc))
                    .map_err(|_| not_archive(format!("{key} is not an RFC 3339 time")))
            })
            .transpose()
    };
    Ok(ArchiveSummary {
        row_count: u64::try_from(file.num_rows())
            .map_err(|_| not_archive("a negative row count".to_string()))?,
        event_count,
        min_event_time: time(METADATA_MIN_EVENT_TIME)?,
        max_event_time: time(METADATA_MAX_EVENT_TIME)?,
        row_groups: metadata.num_row_groups(),
    })
}

/// Refuses an object whose columns are not the archive's, by name and type, in order.
fn check_schema(found: &Schema) -> Result<(), ArchiveError> {
    let expected = archive_schema();
    if found.fields().len() != expected.fields().len() {
        return Err(ArchiveError::NotAnArchiveObject {
            detail: format!(
                "{} columns instead of {}",
                found.fields().len(),
                expected.fields().len()
            ),
        });
    }
    for (found, expected) in found.fields().iter().zip(expected.fields().iter()) {
        if found.name() != expected.name() || !same_type(found.data_type(), expected.data_type()) {
            return Err(ArchiveError::NotAnArchiveObject {
                detail: format!(
                    "column {} {} where {} {} belongs",
                    found.name(),
                    found.data_type(),
                    expected.name(),
                    expected.data_type()
                ),
            });
        }
    }
    Ok(())
}

/// Whether a column read from Parquet has the schema's type. The objects carry no Arrow
/// schema, so a UTC timestamp reads back with the time zone `+00:00`, and the list's element
/// may be named otherwise.
fn same_type(found: &DataType, expected: &DataType) -> bool {
    match (found, expected) {
        (
            DataType::Timestamp(found_unit, Some(found_zone)),
            DataType::Timestamp(expected_unit, Some(_)),
        ) => found_unit == expected_unit && matches!(found_zone.as_ref(), "UTC" | "+00:00"),
        _ => found.equals_datatype(expected),
    }
}

/// One batch's rows, appended to `events`.
fn decode_batch(batch: &RecordBatch, events: &mut Vec<ArchiveEvent>) -> Result<(), ArchiveError> {
    let columns = BatchColumns::of(batch)?;
    let first_row = events.len();
    for index in 0..batch.num_rows() {
        events.push(columns.event(index, first_row + index)?);
    }
    Ok(())
}

/// A batch's columns, typed (the schema has been checked, so a downcast that fails means a
/// corrupt object).
struct BatchColumns<'a> {
    event_time: &'a PrimitiveArray<TimestampMicrosecondType>,
    event_id: &'a StringArray,
    event_version: &'a StringArray,
    event_source: &'a StringArray,
    event_name: &'a StringArray,
    aws_region: &'a StringArray,
    account_id: &'a StringArray,
    event_type: &'a StringArray,
    event_category: &'a StringArray,
    read_only: &'a BooleanArray,
    management_event: &'a BooleanArray,
    user_type: &'a StringArray,
    user_arn: &'a StringArray,
    user_principal_id: &'a StringArray,
    user_account_id: &'a StringArray,
    access_key_id: &'a StringArray,
    username: &'a StringArray,
    source_ip_address: &'a StringArray,
    user_agent: &'a StringArray,
    error_code: &'a StringArray,
    error_message: &'a StringArray,
    resource_arns: &'a ListArray,
    record: &'a StringArray,
}

impl<'a> BatchColumns<'a> {
    fn of(batch: &'a RecordBatch) -> Result<BatchColumns<'a>, ArchiveError> {
        let named = |name: &'static str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| ArchiveError::NotAnArchiveObject {
                    detail: format!("no column {name}"),
                })
        };
        let wrong_type = |name: &'static str| ArchiveError::NotAnArchiveObject {
            detail: format!("column {name} does not have its type"),
        };
        let text = |name: &'static str| -> Result<&'a StringArray, ArchiveError> {
            named(name)?
                .as_string_opt::<i32>()
                .ok_or_else(|| wrong_type(name))
        };
        let flag = |name: &'static str| -> Result<&'a BooleanArray, ArchiveError> {
            named(name)?
                .as_boolean_opt()
                .ok_or_else(|| wrong_type(name))
        };
        Ok(BatchColumns {
            event_time: named(column::EVENT_TIME)?
                .as_primitive_opt::<TimestampMicrosecondType>()
                .ok_or_else(|| wrong_type(column::EVENT_TIME))?,
            event_id: text(column::EVENT_ID)?,
            event_version: text(column::EVENT_VERSION)?,
            event_source: text(column::EVENT_SOURCE)?,
            event_name: text(column::EVENT_NAME)?,
            aws_region: text(column::AWS_REGION)?,
            account_id: text(column::ACCOUNT_ID)?,
            event_type: text(column::EVENT_TYPE)?,
            event_category: text(column::EVENT_CATEGORY)?,
            read_only: flag(column::READ_ONLY)?,
            management_event: flag(column::MANAGEMENT_EVENT)?,
            user_type: text(column::USER_TYPE)?,
            user_arn: text(column::USER_ARN)?,
            user_principal_id: text(column::USER_PRINCIPAL_ID)?,
            user_account_id: text(column::USER_ACCOUNT_ID)?,
            access_key_id: text(column::ACCESS_KEY_ID)?,
            username: text(column::USERNAME)?,
            source_ip_address: text(column::SOURCE_IP_ADDRESS)?,
            user_agent: text(column::USER_AGENT)?,
            error_code: text(column::ERROR_CODE)?,
            error_message: text(column::ERROR_MESSAGE)?,
            resource_arns: named(column::RESOURCE_ARNS)?
                .as_list_opt::<i32>()
                .ok_or_else(|| wrong_type(column::RESOURCE_ARNS))?,
            record: text(column::RECORD)?,
        })
    }

    /// Row `index` of the batch; `row` is its number in the object, for errors.
    fn event(&self, index: usize, row: usize) -> Result<ArchiveEvent, ArchiveError> {
        let invalid = |column: &'static str, detail: &str| ArchiveError::InvalidValue {
            row,
            column,
            detail: detail.to_string(),
        };
        let text = |array: &StringArray| {
            array
                .is_valid(index)
                .then(|| array.value(index).to_string())
        };
        let required = |array: &StringArray, name: &'static str| {
            text(array).ok_or_else(|| invalid(name, "null"))
        };
        let flag = |array: &BooleanArray| array.is_valid(index).then(|| array.value(index));
        if !self.event_time.is_valid(index) {
            return Err(invalid(column::EVENT_TIME, "null"));
        }
        let event_time = DateTime::from_timestamp_micros(self.event_time.value(index))
            .ok_or_else(|| invalid(column::EVENT_TIME, "out of range"))?;
        if !self.resource_arns.is_valid(index) {
            return Err(invalid(column::RESOURCE_ARNS, "null"));
        }
        let arns = self.resource_arns.value(index);
        let arns = arns
            .as_string_opt::<i32>()
            .ok_or_else(|| invalid(column::RESOURCE_ARNS, "not a list of strings"))?;
        if arns.null_count() > 0 {
            return Err(invalid(column::RESOURCE_ARNS, "a null element"));
        }
        Ok(ArchiveEvent {
            event_time,
            event_id: required(self.event_id, column::EVENT_ID)?,
            event_version: text(self.event_version),
            event_source: text(self.event_source),
            event_name: text(self.event_name),
            aws_region: text(self.aws_region),
            account_id: text(self.account_id),
            event_type: text(self.event_type),
            event_category: required(self.event_category, column::EVENT_CATEGORY)?,
            read_only: flag(self.read_only),
            management_event: flag(self.management_event),
            user_type: text(self.user_type),
            user_arn: text(self.user_arn),
            user_principal_id: text(self.user_principal_id),
            user_account_id: text(self.user_account_id),
            access_key_id: text(self.access_key_id),
            username: text(self.username),
            source_ip_address: text(self.source_ip_address),
            user_agent: text(self.user_agent),
            error_code: text(self.error_code),
            error_message: text(self.error_message),
            resource_arns: arns.iter().flatten().map(str::to_string).collect(),
            record: required(self.record, column::RECORD)?,
        })
    }
}
