//! Lookups: the request in (attributes, times, filters checked by the domain's rules), events
//! and counts out.

use orgtrail_api::v1 as pb;
use orgtrail_domain::lookup::{
    EventCount, LookupAttribute, LookupAttributeKey, LookupParameters, LookupQuery,
};
use orgtrail_domain::{AccountIdSource, CloudTrailEvent};
use tonic::Status;

use super::{from_timestamp, to_timestamp};
use crate::grpc::status::lookup_error_status;
use crate::lookup::LookupRequest;

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
            verified_only: request.verified_only,
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
