//! The ingest stream's messages: a file's chunks in (origin checked against S3's limits,
//! sizes bounded), each file's report out, and the limits a sender must respect.

use orgtrail_api::v1 as pb;
use orgtrail_domain::LogFileOrigin;
use tonic::Status;

use super::{to_timestamp, truncate};
use crate::ingest::{FileChunk, FileEnd, FileOutcome, FileReport, IngestLimits, RawRecord};

/// S3's limits on what identifies an object, and sane ones for the rest.
const MAX_OBJECT_KEY_BYTES: usize = 1024;
const MAX_BUCKET_BYTES: usize = 255;
const MAX_SOURCE_BYTES: usize = 256;
const MAX_ETAG_BYTES: usize = 256;
const MAX_REASON_BYTES: usize = 4096;

/// A file's origin, checked against S3's limits.
pub fn origin_from_proto(origin: pb::LogFileOrigin) -> Result<LogFileOrigin, Status> {
    let checks = [
        ("origin.source", &origin.source, MAX_SOURCE_BYTES, true),
        ("origin.bucket", &origin.bucket, MAX_BUCKET_BYTES, false),
        (
            "origin.object_key",
            &origin.object_key,
            MAX_OBJECT_KEY_BYTES,
            true,
        ),
        ("origin.etag", &origin.etag, MAX_ETAG_BYTES, true),
    ];
    for (field, value, max, required) in checks {
        if required && value.is_empty() {
            return Err(Status::invalid_argument(format!("{field} is empty")));
        }
        if value.len() > max {
            return Err(Status::invalid_argument(format!(
                "{field} is longer than {max} bytes"
            )));
        }
    }
    let last_modified = origin
        .last_modified
        .map(|time| super::from_timestamp("origin.last_modified", time))
        .transpose()?;
    Ok(LogFileOrigin {
        source: origin.source,
        bucket: origin.bucket,
        object_key: origin.object_key,
        etag: origin.etag,
        last_modified,
    })
}

pub fn origin_to_proto(origin: LogFileOrigin) -> pb::LogFileOrigin {
    pb::LogFileOrigin {
        source: origin.source,
        bucket: origin.bucket,
        object_key: origin.object_key,
        etag: origin.etag,
        last_modified: origin.last_modified.map(super::to_timestamp),
    }
}

/// Records (and sender rejections) one ingest message may carry; senders send up to 1000.
pub const MAX_ITEMS_PER_MESSAGE: usize = 10_000;

impl TryFrom<pb::IngestRequest> for FileChunk {
    type Error = Status;

    fn try_from(request: pb::IngestRequest) -> Result<FileChunk, Status> {
        if request.records.len() + request.rejections.len() > MAX_ITEMS_PER_MESSAGE {
            return Err(Status::invalid_argument(format!(
                "a message carries {} records and rejections, over the limit of {MAX_ITEMS_PER_MESSAGE}",
                request.records.len() + request.rejections.len()
            )));
        }
        let origin = request.origin.map(origin_from_proto).transpose()?;
        let rejections = request
            .rejections
            .into_iter()
            .map(|rejection| {
                (
                    rejection.index,
                    truncate(rejection.reason, MAX_REASON_BYTES),
                )
            })
            .collect();
        let end = request
            .end
            .map(|end| {
                let content_sha256 = match end.content_sha256.len() {
                    0 => None,
                    _ => Some(<[u8; 32]>::try_from(end.content_sha256.as_slice()).map_err(
                        |_| {
                            Status::invalid_argument(format!(
                                "FileEnd.content_sha256 is {} bytes: a SHA-256 is 32 (or send none)",
                                end.content_sha256.len()
                            ))
                        },
                    )?),
                };
                Ok::<_, Status>(FileEnd {
                    records_read: end.records_read,
                    fault: (!end.fault.is_empty()).then(|| truncate(end.fault, MAX_REASON_BYTES)),
                    content_sha256,
                })
            })
            .transpose()?;
        Ok(FileChunk {
            file_seq: request.file_seq,
            origin,
            records: request
                .records
                .into_iter()
                .map(|record| RawRecord {
                    index: record.index,
                    json: record.json,
                })
                .collect(),
            rejections,
            end,
        })
    }
}

impl From<FileReport> for pb::IngestResponse {
    fn from(report: FileReport) -> pb::IngestResponse {
        let (outcome, first_committed_at) = match report.outcome {
            FileOutcome::Committed => (pb::FileOutcome::Committed, None),
            FileOutcome::AlreadyIngested { first_committed_at } => (
                pb::FileOutcome::AlreadyIngested,
                Some(to_timestamp(first_committed_at)),
            ),
        };
        pb::IngestResponse {
            file_seq: report.file_seq,
            origin: Some(origin_to_proto(report.origin)),
            outcome: outcome.into(),
            accepted: report.accepted,
            duplicates: report.duplicates,
            rejected: report.rejected,
            rejections: report
                .rejections
                .into_iter()
                .map(|(index, reason)| pb::RecordRejection { index, reason })
                .collect(),
            fault: report.fault.unwrap_or_default(),
            first_committed_at,
        }
    }
}

pub fn limits_to_proto(limits: &IngestLimits) -> pb::IngestLimits {
    pb::IngestLimits {
        max_request_bytes: limits.max_request_bytes as u64,
        max_record_bytes: limits.max_record_bytes as u64,
    }
}
