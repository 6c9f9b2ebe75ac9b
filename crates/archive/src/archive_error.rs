//! Why an archive object could not be written or read back. Nothing here is retryable: the
//! crate does no I/O, so the same input fails the same way.

/// An archive encoding or decoding failure.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("stored event {event_id} has a record that cannot be read: {detail}")]
    UnreadableRecord { event_id: String, detail: String },
    #[error("cannot build the archive's columns")]
    BuildColumns {
        #[source]
        source: arrow_schema::ArrowError,
    },
    #[error("cannot write the archive's parquet")]
    WriteParquet {
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("cannot read the parquet object")]
    ReadParquet {
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("not an orgtrail archive object: {detail}")]
    NotAnArchiveObject { detail: String },
    #[error("archive format version {found} is not one this orgtrail reads ({supported})")]
    UnsupportedFormatVersion {
        found: String,
        supported: &'static str,
    },
    #[error("row {row} of the archive object has an invalid {column}: {detail}")]
    InvalidValue {
        row: usize,
        column: &'static str,
        detail: String,
    },
}

/// Why an archive object key cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ObjectKeyError {
    #[error("sequence {sequence} is over the {max} objects one hour may have")]
    SequenceExhausted { sequence: u32, max: u32 },
}
