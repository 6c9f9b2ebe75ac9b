//! Administration: tokens and roles, data keys, the quarantine.

use orgtrail_api::v1 as pb;
use tonic::Status;

use super::to_timestamp;
use crate::role::{Role, UnknownRole};
use crate::store::{QuarantineEntry, StoredDataKey, StoredToken};

pub fn role_from_proto(role: &str) -> Result<Role, Status> {
    role.parse()
        .map_err(|error: UnknownRole| Status::invalid_argument(error.to_string()))
}

pub fn token_to_proto(token: StoredToken) -> pb::ApiToken {
    pb::ApiToken {
        token_id: token.token_id.to_string(),
        name: token.name,
        role: token.role,
        created_at: Some(to_timestamp(token.created_at)),
        created_by: token.created_by,
        expires_at: token.expires_at.map(to_timestamp),
        revoked_at: token.revoked_at.map(to_timestamp),
        revoked_by: token.revoked_by.unwrap_or_default(),
        access_key_id: token.access_key_id.unwrap_or_default(),
        accounts: token.accounts,
    }
}

/// A data key with how many events it seals and whether new records use it.
pub fn data_key_to_proto(key: &StoredDataKey, active: bool, events: i64) -> pb::DataKey {
    pb::DataKey {
        key_id: key.key_id,
        wrapped_by: key.wrapped_by.clone(),
        created_at: Some(to_timestamp(key.created_at)),
        created_by: key.created_by.clone(),
        active,
        events,
        retired: key.retired_at.is_some(),
    }
}

pub fn quarantine_entry_to_proto(entry: QuarantineEntry) -> pb::QuarantineEntry {
    pb::QuarantineEntry {
        quarantine_id: entry.quarantine_id,
        received_at: Some(to_timestamp(entry.received_at)),
        source: entry.source,
        bucket: entry.bucket,
        object_key: entry.object_key,
        etag: entry.etag,
        record_index: entry.record_index.unwrap_or(-1),
        reason: entry.reason,
        content_bytes: entry.content_bytes,
        content: entry.content.unwrap_or_default(),
    }
}
