//! orgtrail's consolidated archive, the encoding: every stored event once, as Parquet objects
//! that Athena, Trino, Spark and DuckDB read directly. [`ArchiveEvent`] is a row (typed columns
//! for the searchable fields, plus the original record text, lossless), [`archive_schema`] the
//! fixed schema, [`ArchiveWriter`]/[`encode_parquet`] make a zstd-compressed object sorted by
//! API then event time, [`decode_parquet`] reads one back, and [`ObjectKey`] says where it goes:
//! Hive-style `account=`/`region=`/`day=` folders with one object per hour, and further objects
//! for late events, never a rewrite. No network, no files: the caller hands events in and gets
//! bytes and keys out. The reference is `docs/archive.md`.

pub mod archive_error;
pub mod archive_event;
pub mod object_key;
pub mod parquet_reader;
pub mod parquet_writer;
pub mod schema;

pub use archive_error::{ArchiveError, ObjectKeyError};
pub use archive_event::ArchiveEvent;
pub use object_key::{
    partition_events, HourPartition, ObjectKey, DEFAULT_PARTITION_VALUE, MAX_SEQUENCE,
};
pub use parquet_reader::{decode_parquet, read_archive_summary, ArchiveSummary};
pub use parquet_writer::{encode_parquet, events_batch, ArchiveWriter, DEFAULT_MAX_ROW_GROUP_ROWS};
pub use schema::{archive_schema, ARCHIVE_FORMAT_VERSION};
