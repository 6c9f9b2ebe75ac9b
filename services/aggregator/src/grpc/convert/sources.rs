//! What collectors keep no state for: listed files, checkpoints, leases and status reports in;
//! new files, checkpoints and the source status table out.

use orgtrail_api::v1 as pb;
use tonic::Status;

use super::{from_timestamp, to_timestamp};
use crate::sources::ReportedOutcome;
use crate::store::{
    IntegrityReport, IntegrityState, ListedFile, LogFileCheck, ReportedProblem, SourceLease,
    SourceStatusRow,
};

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
        integrity_checked_until: row.integrity_checked_until.map(to_timestamp),
        log_files_by_integrity: row
            .log_files_by_integrity
            .0
            .into_iter()
            .map(|(status, files)| (status, u64::try_from(files).unwrap_or(0)))
            .collect(),
        integrity_problems: row
            .integrity_problems
            .map_or(0, |problems| u64::try_from(problems).unwrap_or(0)),
        integrity_checked_at: row.integrity_checked_at.map(to_timestamp),
        freshness_seconds: row.freshness_seconds,
        freshness_p95_seconds: row.freshness_p95_seconds,
    }
}

pub fn integrity_report_from_proto(
    request: pb::RecordIntegrityRequest,
) -> Result<IntegrityReport, Status> {
    let digest = match (non_empty(request.digest_key), request.digest_end_time) {
        (Some(key), Some(end_time)) => Some((key, from_timestamp("digest_end_time", end_time)?)),
        (None, _) => None,
        (Some(_), None) => {
            return Err(Status::invalid_argument(
                "digest_end_time is required with digest_key",
            ))
        }
    };
    Ok(IntegrityReport {
        digest,
        source: request.source,
        bucket: request.bucket,
        account_id: request.account_id,
        aws_region: request.aws_region,
        collector: request.collector,
        digests_read: request.digests_read,
        digests_verified: request.digests_verified,
        log_files: request
            .log_files
            .into_iter()
            .map(|file| LogFileCheck {
                object_key: file.object_key,
                etag: file.etag,
                status: file.status,
                digest_key: non_empty(file.digest_key),
            })
            .collect(),
        problems: request
            .problems
            .into_iter()
            .map(|problem| ReportedProblem {
                kind: problem.kind,
                bucket: problem.bucket,
                object_key: problem.object_key,
                message: problem.message,
            })
            .collect(),
    })
}

pub fn integrity_state_to_proto(state: IntegrityState) -> pb::GetIntegrityStateResponse {
    let (digest_key, digest_end_time) = match state.digest {
        Some((key, end_time)) => (key, Some(to_timestamp(end_time))),
        None => (String::new(), None),
    };
    pb::GetIntegrityStateResponse {
        digest_key,
        digest_end_time,
        hashes: state
            .hashes
            .into_iter()
            .map(|(object_key, etag, content_sha256)| pb::LedgerHash {
                object_key,
                etag,
                content_sha256,
            })
            .collect(),
    }
}

/// Proto3 has no absent string: empty means none.
fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}
