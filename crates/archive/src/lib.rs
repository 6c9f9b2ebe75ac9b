//! orgtrail's consolidated archive, the encoding: every stored event once, as Parquet objects
//! that Athena, Trino, Spark and DuckDB read directly. [`ArchiveEvent`] is a row (typed columns
//! for the searchable fields, plus the original record text, lossless) and [`archive_schema`]
//! the fixed schema. No network, no files: the caller hands events in and gets bytes and keys
//! out. The reference is `docs/archive.md`.

pub mod archive_error;
pub mod archive_event;
pub mod schema;

pub use archive_error::{ArchiveError, ObjectKeyError};
pub use archive_event::ArchiveEvent;
pub use schema::{archive_schema, ARCHIVE_FORMAT_VERSION};
