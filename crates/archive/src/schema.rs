//! The archive's one Arrow schema, fixed: every Parquet object orgtrail writes has exactly these
//! columns, in this order, so that an external table declared once (`docs/archive.md`) reads
//! every object. Changing it means a new [`ARCHIVE_FORMAT_VERSION`].
//!
//! The partition values (`account`, `region`, `day`) are not columns: Hive-style, they are in
//! the object's key ([`crate::object_key`]). `account_id` and `aws_region` stay data columns all
//! the same: Athena refuses a partition key that has a data column's name, and a file read on
//! its own (downloaded, or by a reader without Hive partitioning) keeps every field.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};

/// The version of the archive's layout and schema, in every object's key-value metadata
/// ([`METADATA_FORMAT_VERSION`]).
pub const ARCHIVE_FORMAT_VERSION: &str = "1";

/// Key-value metadata of every object: the format version.
pub const METADATA_FORMAT_VERSION: &str = "orgtrail.archive.version";
/// Key-value metadata: how many events (rows) the object holds.
pub const METADATA_EVENT_COUNT: &str = "orgtrail.archive.event_count";
/// Key-value metadata: the earliest `eventTime`, RFC 3339 (absent in an object of no events).
pub const METADATA_MIN_EVENT_TIME: &str = "orgtrail.archive.min_event_time";
/// Key-value metadata: the latest `eventTime`, RFC 3339 (absent in an object of no events).
pub const METADATA_MAX_EVENT_TIME: &str = "orgtrail.archive.max_event_time";

/// The columns, in order. Nullable unless said otherwise; a JSON field absent from the record
/// (or the wrong JSON type for the stored event) is null.
pub mod column {
    /// `eventTime`, Timestamp(Microsecond, "UTC"), not null: Parquet `INT64`
    /// `TIMESTAMP(isAdjustedToUTC=true, MICROS)`. Rows are sorted by `event_source`, `event_name`, then it and `event_id`.
    pub const EVENT_TIME: &str = "event_time";
    /// `eventID` as written, Utf8, not null.
    pub const EVENT_ID: &str = "event_id";
    /// `eventVersion`, Utf8 (`1.08`).
    pub const EVENT_VERSION: &str = "event_version";
    /// `eventSource`, Utf8 (`iam.amazonaws.com`); for Insight events `insightDetails.eventSource`.
    pub const EVENT_SOURCE: &str = "event_source";
    /// `eventName`, Utf8 (`CreateUser`); for Insight events `insightDetails.eventName`.
    pub const EVENT_NAME: &str = "event_name";
    /// `awsRegion`, Utf8.
    pub const AWS_REGION: &str = "aws_region";
    /// `recipientAccountId` (or the stored event's fallback for older records), Utf8.
    pub const ACCOUNT_ID: &str = "account_id";
    /// `eventType`, Utf8 (`AwsApiCall`, `AwsConsoleSignIn`, …).
    pub const EVENT_TYPE: &str = "event_type";
    /// `eventCategory`, Utf8, not null (`Management` for records without one).
    pub const EVENT_CATEGORY: &str = "event_category";
    /// `readOnly`, Boolean.
    pub const READ_ONLY: &str = "read_only";
    /// `managementEvent`, Boolean.
    pub const MANAGEMENT_EVENT: &str = "management_event";
    /// `userIdentity.type`, Utf8 (`Root`, `IAMUser`, `AssumedRole`, …).
    pub const USER_TYPE: &str = "user_type";
    /// `userIdentity.arn`, Utf8.
    pub const USER_ARN: &str = "user_arn";
    /// `userIdentity.principalId`, Utf8.
    pub const USER_PRINCIPAL_ID: &str = "user_principal_id";
    /// `userIdentity.accountId` (the caller's account), Utf8.
    pub const USER_ACCOUNT_ID: &str = "user_account_id";
    /// `userIdentity.accessKeyId`, Utf8; null for CloudTrail's empty ones.
    pub const ACCESS_KEY_ID: &str = "access_key_id";
    /// The user name as CloudTrail's Event history shows it, Utf8.
    pub const USERNAME: &str = "username";
    /// `sourceIPAddress`, Utf8 (an address, or a service's DNS name).
    pub const SOURCE_IP_ADDRESS: &str = "source_ip_address";
    /// `userAgent`, Utf8.
    pub const USER_AGENT: &str = "user_agent";
    /// `errorCode`, Utf8.
    pub const ERROR_CODE: &str = "error_code";
    /// `errorMessage`, Utf8.
    pub const ERROR_MESSAGE: &str = "error_message";
    /// `resources[].ARN` (or `ARNPrefix`), List<Utf8> (not null, elements not null; empty
    /// without resources). The element field is named `element`, as the Parquet spec's
    /// three-level list.
    pub const RESOURCE_ARNS: &str = "resource_arns";
    /// The original record, Utf8, not null, last: byte for byte the JSON text of the log file,
    /// for every field no column has (`requestParameters`, `additionalEventData`, …).
    pub const RECORD: &str = "record";
}

/// The name of a list's element field, as the Parquet format's LIST annotation names it.
pub const LIST_ELEMENT_NAME: &str = "element";

/// The archive's schema.
pub fn archive_schema() -> Arc<Schema> {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let flag = |name: &str| Field::new(name, DataType::Boolean, true);
    Arc::new(Schema::new(vec![
        Field::new(
            column::EVENT_TIME,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(column::EVENT_ID, DataType::Utf8, false),
        text(column::EVENT_VERSION),
        text(column::EVENT_SOURCE),
        text(column::EVENT_NAME),
        text(column::AWS_REGION),
        text(column::ACCOUNT_ID),
        text(column::EVENT_TYPE),
        Field::new(column::EVENT_CATEGORY, DataType::Utf8, false),
        flag(column::READ_ONLY),
        flag(column::MANAGEMENT_EVENT),
        text(column::USER_TYPE),
        text(column::USER_ARN),
        text(column::USER_PRINCIPAL_ID),
        text(column::USER_ACCOUNT_ID),
        text(column::ACCESS_KEY_ID),
        text(column::USERNAME),
        text(column::SOURCE_IP_ADDRESS),
        text(column::USER_AGENT),
        text(column::ERROR_CODE),
        text(column::ERROR_MESSAGE),
        Field::new(
            column::RESOURCE_ARNS,
            DataType::List(Arc::new(resource_arn_field())),
            false,
        ),
        Field::new(column::RECORD, DataType::Utf8, false),
    ]))
}

/// The element field of `resource_arns`.
pub fn resource_arn_field() -> Field {
    Field::new(LIST_ELEMENT_NAME, DataType::Utf8, false)
}
