//! Wire types ↔ domain types. Incoming messages are validated here, in `TryFrom`; nothing
//! past this file sees a generated type.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use orgtrail_api::v1 as pb;
use orgtrail_domain::lookup::{
    EventCount, LookupAttribute, LookupAttributeKey, LookupParameters, LookupQuery,
};
use orgtrail_domain::retention::RetentionScope;
use orgtrail_domain::{AccountIdSource, CloudTrailEvent};
use tonic::Status;

use super::status::lookup_error_status;
use crate::ingest::{FileChunk, FileEnd, FileOutcome, FileReport, RawRecord};
use crate::lookup::LookupRequest;
use crate::store::{AuditEntry, RunCounts, StoredHold, StoredPolicy};
use orgtrail_domain::LogFileOrigin;

/// S3's limits on what identifies an object, and sane ones for the rest.
const MAX_OBJECT_KEY_BYTES: usize = 1024;
const MAX_BUCKET_BYTES: usize = 255;
const MAX_SOURCE_BYTES: usize = 256;
const MAX_ETAG_BYTES: usize = 256;
const MAX_REASON_BYTES: usize = 4096;

pub fn to_timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn from_timestamp(
    field: &str,
    timestamp: prost_types::Timestamp,
) -> Result<DateTime<Utc>, Status> {
    u32::try_from(timestamp.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(timestamp.seconds, nanos))
        .ok_or_else(|| Status::invalid_argument(format!("{field} is not a valid timestamp")))
}

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
    Ok(LogFileOrigin {
        source: origin.source,
        bucket: origin.bucket,
        object_key: origin.object_key,
        etag: origin.etag,
    })
}

pub fn origin_to_proto(origin: LogFileOrigin) -> pb::LogFileOrigin {
    pb::LogFileOrigin {
        source: origin.source,
        bucket: origin.bucket,
        object_key: origin.object_key,
        etag: origin.etag,
    }
}

/// A list call's page size: `default` for 0, at most 1000.
pub fn page_size(max_results: u32, default: u32) -> Result<u32, Status> {
    match max_results {
        0 => Ok(default),
        value if value > 1000 => Err(Status::invalid_argument(
            "max_results is over the limit of 1000",
        )),
        value => Ok(value),
    }
}

/// The next token of a list paged by descending id: the last id returned, opaque.
pub fn encode_id_token(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(id.to_be_bytes())
}

/// The id a next token stands for; `None` for the first page.
pub fn decode_id_token(token: &str) -> Result<Option<i64>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Status::invalid_argument("the next token is not valid");
    let bytes: [u8; 8] = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?
        .try_into()
        .map_err(|_| invalid())?;
    Ok(Some(i64::from_be_bytes(bytes)))
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
        let end = request.end.map(|end| FileEnd {
            records_read: end.records_read,
            fault: (!end.fault.is_empty()).then(|| truncate(end.fault, MAX_REASON_BYTES)),
        });
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

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
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

fn attribute_key(key: pb::LookupAttributeKey) -> Option<LookupAttributeKey> {
    Some(match key {
        pb::LookupAttributeKey::Unspecified => return None,
        pb::LookupAttributeKey::EventId => LookupAttributeKey::EventId,
        pb::LookupAttributeKey::EventName => LookupAttributeKey::EventName,
        pb::LookupAttributeKey::ReadOnly => LookupAttributeKey::ReadOnly,
        pb::LookupAttributeKey::Username => LookupAttributeKey::Username,
        pb::LookupAttributeKey::ResourceType => LookupAttributeKey::ResourceType,
        pb::LookupAttributeKey::ResourceName => LookupAttributeKey::ResourceName,
        pb::LookupAttributeKey::EventSource => LookupAttributeKey::EventSource,
        pb::LookupAttributeKey::AccessKeyId => LookupAttributeKey::AccessKeyId,
    })
}

impl TryFrom<pb::LookupEventsRequest> for LookupRequest {
    type Error = Status;

    fn try_from(request: pb::LookupEventsRequest) -> Result<LookupRequest, Status> {
        let mut attributes = Vec::with_capacity(request.lookup_attributes.len());
        for attribute in &request.lookup_attributes {
            let key = pb::LookupAttributeKey::try_from(attribute.key)
                .ok()
                .and_then(attribute_key)
                .ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "lookup attribute key {} is not one of CloudTrail's",
                        attribute.key
                    ))
                })?;
            let attribute = LookupAttribute::new(key, &attribute.value)
                .map_err(|error| lookup_error_status(&error.into()))?;
            attributes.push(attribute);
        }
        let parameters = LookupParameters {
            start_time: request
                .start_time
                .map(|time| from_timestamp("start_time", time))
                .transpose()?,
            end_time: request
                .end_time
                .map(|time| from_timestamp("end_time", time))
                .transpose()?,
            attributes,
            accounts: request.accounts,
            regions: request.regions,
            categories: request.event_categories,
            max_results: request.max_results,
        };
        let query =
            LookupQuery::new(parameters).map_err(|error| lookup_error_status(&error.into()))?;
        Ok(LookupRequest {
            query,
            next_token: (!request.next_token.is_empty()).then_some(request.next_token),
        })
    }
}

fn account_id_source(source: AccountIdSource) -> pb::AccountIdSource {
    match source {
        AccountIdSource::RecipientAccountId => pb::AccountIdSource::RecipientAccountId,
        AccountIdSource::S3Key => pb::AccountIdSource::S3Key,
        AccountIdSource::UserIdentity => pb::AccountIdSource::UserIdentity,
        AccountIdSource::None => pb::AccountIdSource::None,
    }
}

pub fn event_to_proto(event: CloudTrailEvent) -> pb::Event {
    let identity = event.user_identity;
    pb::Event {
        event_id: event.event_id.to_string(),
        event_time: Some(to_timestamp(event.event_time)),
        event_version: event.event_version.unwrap_or_default(),
        event_source: event.event_source.unwrap_or_default(),
        event_name: event.event_name.unwrap_or_default(),
        aws_region: event.aws_region.unwrap_or_default(),
        account_id: event.account_id.unwrap_or_default(),
        account_id_source: account_id_source(event.account_id_source).into(),
        event_type: event.event_type.unwrap_or_default(),
        event_category: event.event_category.to_string(),
        read_only: event.read_only,
        management_event: event.management_event,
        user_identity: Some(pb::UserIdentity {
            r#type: identity.identity_type.unwrap_or_default(),
            arn: identity.arn.unwrap_or_default(),
            principal_id: identity.principal_id.unwrap_or_default(),
            account_id: identity.account_id.unwrap_or_default(),
            access_key_id: identity.access_key_id.unwrap_or_default(),
            invoked_by: identity.invoked_by.unwrap_or_default(),
            username: identity.username.unwrap_or_default(),
        }),
        source_ip_address: event.source_ip_address.unwrap_or_default(),
        user_agent: event.user_agent.unwrap_or_default(),
        error_code: event.error_code.unwrap_or_default(),
        error_message: event.error_message.unwrap_or_default(),
        resources: event
            .resources
            .into_iter()
            .map(|resource| pb::Resource {
                r#type: resource.resource_type.unwrap_or_default(),
                arn: resource.arn.unwrap_or_default(),
                account_id: resource.account_id.unwrap_or_default(),
            })
            .collect(),
        shared_event_id: event.shared_event_id.unwrap_or_default(),
        request_id: event.request_id.unwrap_or_default(),
        cloud_trail_event: event.record_json,
    }
}

pub fn event_count_to_proto(count: EventCount) -> pb::EventCount {
    pb::EventCount {
        account_id: count.account_id.unwrap_or_default(),
        aws_region: count.aws_region.unwrap_or_default(),
        event_category: count.event_category.to_string(),
        events: count.events,
        oldest_event_time: Some(to_timestamp(count.oldest_event_time)),
        newest_event_time: Some(to_timestamp(count.newest_event_time)),
    }
}

pub fn scope_from_proto(scope: Option<pb::RetentionScope>) -> RetentionScope {
    let scope = scope.unwrap_or_default();
    RetentionScope {
        accounts: scope.accounts,
        regions: scope.regions,
        event_categories: scope.event_categories,
        event_sources: scope.event_sources,
        event_names: scope.event_names,
        read_only: scope.read_only,
    }
}

pub fn scope_to_proto(scope: RetentionScope) -> pb::RetentionScope {
    pb::RetentionScope {
        accounts: scope.accounts,
        regions: scope.regions,
        event_categories: scope.event_categories,
        event_sources: scope.event_sources,
        event_names: scope.event_names,
        read_only: scope.read_only,
    }
}

pub fn policy_to_proto(stored: StoredPolicy) -> pb::RetentionPolicy {
    pb::RetentionPolicy {
        name: stored.policy.name,
        version: stored.policy.version,
        description: stored.policy.description,
        scope: Some(scope_to_proto(stored.policy.scope)),
        retain_days: stored.policy.retain_days,
        created_at: Some(to_timestamp(stored.created_at)),
        updated_at: Some(to_timestamp(stored.updated_at)),
        updated_by: stored.updated_by,
    }
}

pub fn hold_to_proto(stored: StoredHold) -> pb::LegalHold {
    pb::LegalHold {
        hold_id: stored.hold.hold_id,
        reason: stored.hold.reason,
        scope: Some(scope_to_proto(stored.hold.scope)),
        created_at: Some(to_timestamp(stored.created_at)),
        created_by: stored.created_by,
        expires_at: stored.hold.expires_at.map(to_timestamp),
        released_at: stored.hold.released_at.map(to_timestamp),
        released_by: stored.released_by.unwrap_or_default(),
        release_reason: stored.release_reason.unwrap_or_default(),
    }
}

pub fn tallies_to_proto(counts: RunCounts) -> Vec<pb::EventTally> {
    counts
        .into_iter()
        .map(|((account_id, aws_region), events)| pb::EventTally {
            account_id,
            aws_region,
            events: u64::try_from(events).unwrap_or(0),
        })
        .collect()
}

pub fn audit_entry_to_proto(entry: AuditEntry) -> pb::AuditEntry {
    let text =
        |value: Option<serde_json::Value>| value.map(|value| value.to_string()).unwrap_or_default();
    pb::AuditEntry {
        audit_id: entry.audit_id,
        occurred_at: Some(to_timestamp(entry.occurred_at)),
        actor: entry.actor,
        action: entry.action,
        subject: entry.subject,
        before: text(entry.before),
        after: text(entry.after),
        details: text(entry.details),
    }
}
