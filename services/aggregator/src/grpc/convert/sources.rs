//! What collectors keep no state for: listed files, checkpoints, leases and status reports in;
//! new files, checkpoints and the source status table out.

use orgtrail_api::v1 as pb;

use super::to_timestamp;
use crate::sources::ReportedOutcome;
use crate::store::{ListedFile, SourceLease, SourceStatusRow};

pub fn listed_file_from_proto(file: pb::StoredFile) -> ListedFile {
    ListedFile {
        bucket: file.bucket,
        object_key: file.object_key,
        etag: file.etag,
    }
}

pub fn listed_file_to_proto(file: ListedFile) -> pb::StoredFile {
    pb::StoredFile {
        bucket: file.bucket,
        object_key: file.object_key,
        etag: file.etag,
    }
}

pub fn checkpoint_to_proto((prefix, newest): (String, Option<String>)) -> pb::Checkpoint {
    pb::Checkpoint {
        prefix,
        newest_object_key: newest.unwrap_or_default(),
    }
}

pub fn lease_to_proto(lease: SourceLease) -> pb::AcquireSourceLeaseResponse {
    pb::AcquireSourceLeaseResponse {
        granted: lease.granted,
        holder: lease.holder,
        expires_at: Some(to_timestamp(lease.expires_at)),
    }
}

pub fn report_from_proto(request: pb::ReportSourceStatusRequest) -> ReportedOutcome {
    ReportedOutcome {
        source: request.source,
        account_id: request.account_id,
        aws_region: request.aws_region,
        collector: request.collector,
        error: non_empty(request.error),
        files_taken: request.files_taken,
        newest_object_key: non_empty(request.newest_object_key),
    }
}

pub fn source_status_to_proto(row: SourceStatusRow) -> pb::SourceStatus {
    pb::SourceStatus {
        source: row.source,
        account_id: row.account_id,
        aws_region: row.aws_region,
        collector: row.collector,
        last_object_key: row.last_object_key.unwrap_or_default(),
        last_delivery_time: row.last_delivery_time.map(to_timestamp),
        last_success_at: row.last_success_at.map(to_timestamp),
        last_error: row.last_error.unwrap_or_default(),
        last_error_at: row.last_error_at.map(to_timestamp),
        lag_seconds: row.lag_seconds.map_or(0, |lag| lag.max(0.0) as i64),
        lease_holder: row.lease_holder.unwrap_or_default(),
    }
}

/// Proto3 has no absent string: empty means none.
fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}
