//! The CloudTrail domain of orgtrail: log files and their records, the events stored from them,
//! S3 key layouts, S3's notifications of new objects, and lookups. Pure: no network, no
//! database, no files — readers are passed in.

pub mod event;
pub mod json_text;
pub mod log_file;
pub mod lookup;
pub mod record;
pub mod retention;
pub mod s3_key;
pub mod s3_notification;
pub mod username;

pub use event::{AccountIdSource, CloudTrailEvent, EventCategory, EventId, Resource, UserIdentity};
pub use json_text::compact_json;
pub use log_file::{
    read_log_file, LogFileFault, LogFileItem, LogFileOrigin, LogFileRead, ReadLimits,
};
pub use record::{parse_record, parse_record_bytes, RecordError};
pub use s3_key::{parse_cloudtrail_key, CloudTrailKey, LogFileKind};
pub use s3_notification::{
    parse_s3_notification, CreatedObject, NotificationError, S3Notification,
};
