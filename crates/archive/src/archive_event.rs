//! One stored event as the archive keeps it: a row of the Parquet file. The searchable fields
//! are typed columns (the ones orgtrail's own search uses, flattened: `userIdentity`'s parts
//! and the resources' ARNs), beside the original record text, byte for byte, so that the
//! archive is lossless whatever CloudTrail adds to its records.

use chrono::{DateTime, Utc};
use orgtrail_domain::CloudTrailEvent;
use serde::Deserialize;

use crate::archive_error::ArchiveError;

/// A CloudTrail event in the archive. Field by field the same as the stored event
/// ([`CloudTrailEvent`]), except that `eventID` is the original text rather than orgtrail's
/// UUID of it, and `resources` is only their ARNs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveEvent {
    /// `eventTime`.
    pub event_time: DateTime<Utc>,
    /// `eventID` as the record writes it (a GUID, or any text for hand-written samples).
    pub event_id: String,
    pub event_version: Option<String>,
    /// For Insight events, the subject API's source (`insightDetails.eventSource`).
    pub event_source: Option<String>,
    /// For Insight events, the subject API's name (`insightDetails.eventName`).
    pub event_name: Option<String>,
    pub aws_region: Option<String>,
    /// The account that received the event: `recipientAccountId`, or the stored event's
    /// fallback for records older than eventVersion 1.02.
    pub account_id: Option<String>,
    pub event_type: Option<String>,
    /// `eventCategory`; `Management` for records before eventVersion 1.07, which have none.
    pub event_category: String,
    pub read_only: Option<bool>,
    pub management_event: Option<bool>,
    /// `userIdentity.type`.
    pub user_type: Option<String>,
    /// `userIdentity.arn`.
    pub user_arn: Option<String>,
    /// `userIdentity.principalId`.
    pub user_principal_id: Option<String>,
    /// `userIdentity.accountId`: the caller's account.
    pub user_account_id: Option<String>,
    /// `userIdentity.accessKeyId`, `None` for CloudTrail's empty ones.
    pub access_key_id: Option<String>,
    /// The user name as Event history shows it (`orgtrail_domain::username`).
    pub username: Option<String>,
    pub source_ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// `resources[].ARN` (or `ARNPrefix`), in the record's order; empty without resources.
    pub resource_arns: Vec<String>,
    /// The original record, exactly the bytes it had in its log file (`requestID`,
    /// `sharedEventID` and every field without a column of its own are in it).
    pub record: String,
}

impl ArchiveEvent {
    /// The archive's row for a stored event. The original `eventID` text is read back from the
    /// record (the stored event only has its UUID).
    pub fn from_cloudtrail_event(event: &CloudTrailEvent) -> Result<ArchiveEvent, ArchiveError> {
        #[derive(Deserialize)]
        struct EventIdField {
            #[serde(rename = "eventID")]
            event_id: Option<String>,
        }
        let field: EventIdField = serde_json::from_str(&event.record_json).map_err(|error| {
            ArchiveError::UnreadableRecord {
                event_id: event.event_id.to_string(),
                detail: error.to_string(),
            }
        })?;
        let event_id = field
            .event_id
            .ok_or_else(|| ArchiveError::UnreadableRecord {
                event_id: event.event_id.to_string(),
                detail: "no eventID string".to_string(),
            })?;
        let identity = &event.user_identity;
        Ok(ArchiveEvent {
            event_time: event.event_time,
            event_id,
            event_version: event.event_version.clone(),
            event_source: event.event_source.clone(),
            event_name: event.event_name.clone(),
            aws_region: event.aws_region.clone(),
            account_id: event.account_id.clone(),
            event_type: event.event_type.clone(),
            event_category: event.event_category.as_str().to_string(),
            read_only: event.read_only,
            management_event: event.management_event,
            user_type: identity.identity_type.clone(),
            user_arn: identity.arn.clone(),
            user_principal_id: identity.principal_id.clone(),
            user_account_id: identity.account_id.clone(),
            access_key_id: identity.access_key_id.clone(),
            username: identity.username.clone(),
            source_ip_address: event.source_ip_address.clone(),
            user_agent: event.user_agent.clone(),
            error_code: event.error_code.clone(),
            error_message: event.error_message.clone(),
            resource_arns: event
                .resources
                .iter()
                .filter_map(|resource| resource.arn.clone())
                .collect(),
            record: event.record_json.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orgtrail_domain::record::parse_record;

    #[test]
    fn a_stored_event_keeps_its_original_event_id_text_and_record() {
        let record = r#"{"eventVersion":"1.08","eventTime":"2021-03-04T05:06:07Z","eventID":"EXAMPLE8-9621-4d00-b913-beca2EXAMPLE","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/Alice","userName":"Alice","accountId":"111122223333","accessKeyId":""},"resources":[{"ARN":"arn:aws:iam::111122223333:user/Bob","type":"AWS::IAM::User"}],"eventType":"AwsApiCall"}"#;
        let event = parse_record(record.to_string(), None).unwrap();
        let archived = ArchiveEvent::from_cloudtrail_event(&event).unwrap();
        assert_eq!(archived.event_id, "EXAMPLE8-9621-4d00-b913-beca2EXAMPLE");
        assert_eq!(archived.record, record);
        assert_eq!(archived.account_id.as_deref(), Some("111122223333"));
        assert_eq!(archived.user_type.as_deref(), Some("IAMUser"));
        assert_eq!(archived.access_key_id, None);
        assert_eq!(archived.username.as_deref(), Some("Alice"));
        assert_eq!(archived.event_category, "Management");
        assert_eq!(
            archived.resource_arns,
            ["arn:aws:iam::111122223333:user/Bob"]
        );
    }
}
