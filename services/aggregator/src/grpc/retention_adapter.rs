//! `RetentionService` and `AuditService` over gRPC. Changes are attributed to the caller and
//! the person the client says it acts for (`convert::stated_actor`).

use orgtrail_api::v1 as pb;
use orgtrail_domain::EventId;
use tonic::{Request, Response, Status};

use super::convert::retention::{
    audit_entry_to_proto, enforcement_report_to_proto, explanation_to_proto, hold_to_proto,
    policy_content_from_proto, policy_to_proto, scope_from_proto, tallies_to_proto,
};
use super::convert::{decode_id_token, encode_id_token, from_timestamp, page_size, stated_actor};
use super::status::retention_error_status;
use crate::retention::{PolicyChange, RetentionService, RetentionServiceError};

/// Unary calls are bounded by the request timeout of the server's limit layer.
pub struct RetentionAdapter {
    service: RetentionService,
}

impl RetentionAdapter {
    pub fn new(service: RetentionService) -> RetentionAdapter {
        RetentionAdapter { service }
    }

    async fn answer<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, RetentionServiceError>>,
    ) -> Result<T, Status> {
        work.await.map_err(|error| retention_error_status(&error))
    }
}

#[tonic::async_trait]
impl pb::retention_service_server::RetentionService for RetentionAdapter {
    async fn create_policy(
        &self,
        request: Request<pb::CreatePolicyRequest>,
    ) -> Result<Response<pb::RetentionPolicy>, Status> {
        let actor = stated_actor(&request);
        let request = request.into_inner();
        let created = self
            .answer(self.service.create_policy(
                &actor,
                &request.name,
                policy_content_from_proto(request.description, request.scope, request.retain_days),
            ))
            .await?;
        Ok(Response::new(policy_to_proto(created)))
    }

    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::RetentionPolicy>, Status> {
        let request = request.into_inner();
        let version = (request.version != 0).then_some(request.version);
        let policy = self
            .answer(self.service.get_policy(&request.name, version))
            .await?;
        Ok(Response::new(policy_to_proto(policy)))
    }

    async fn list_policies(
        &self,
        _request: Request<pb::ListPoliciesRequest>,
    ) -> Result<Response<pb::ListPoliciesResponse>, Status> {
        let policies = self.answer(self.service.list_policies()).await?;
        Ok(Response::new(pb::ListPoliciesResponse {
            policies: policies.into_iter().map(policy_to_proto).collect(),
        }))
    }

    async fn get_policy_history(
        &self,
        request: Request<pb::GetPolicyHistoryRequest>,
    ) -> Result<Response<pb::GetPolicyHistoryResponse>, Status> {
        let versions = self
            .answer(self.service.policy_history(&request.into_inner().name))
            .await?;
        Ok(Response::new(pb::GetPolicyHistoryResponse {
            versions: versions.into_iter().map(policy_to_proto).collect(),
        }))
    }

    async fn update_policy(
        &self,
        request: Request<pb::UpdatePolicyRequest>,
    ) -> Result<Response<pb::RetentionPolicy>, Status> {
        let actor = stated_actor(&request);
        let request = request.into_inner();
        let change = PolicyChange {
            description: request.description,
            scope: request.scope.map(|scope| scope_from_proto(Some(scope))),
            retain_days: request.retain_days,
        };
        let expected = (request.expected_version != 0).then_some(request.expected_version);
        let updated = self
            .answer(
                self.service
                    .update_policy(&actor, &request.name, change, expected),
            )
            .await?;
        Ok(Response::new(policy_to_proto(updated)))
    }

    async fn delete_policy(
        &self,
        request: Request<pb::DeletePolicyRequest>,
    ) -> Result<Response<pb::DeletePolicyResponse>, Status> {
        let actor = stated_actor(&request);
        let deleted = self
            .answer(
                self.service
                    .delete_policy(&actor, &request.into_inner().name),
            )
            .await?;
        Ok(Response::new(pb::DeletePolicyResponse {
            deleted: Some(policy_to_proto(deleted)),
        }))
    }

    async fn preview_policy(
        &self,
        request: Request<pb::PreviewPolicyRequest>,
    ) -> Result<Response<pb::PreviewPolicyResponse>, Status> {
        let request = request.into_inner();
        let preview = self
            .answer(self.service.preview(
                &request.name,
                policy_content_from_proto(request.description, request.scope, request.retain_days),
            ))
            .await?;
        let total = preview
            .deletions
            .values()
            .map(|events| u64::try_from(*events).unwrap_or(0))
            .sum();
        Ok(Response::new(pb::PreviewPolicyResponse {
            deletions: tallies_to_proto(preview.deletions),
            total,
            replaces_existing: preview.replaces_existing,
        }))
    }

    async fn explain_retention(
        &self,
        request: Request<pb::ExplainRetentionRequest>,
    ) -> Result<Response<pb::ExplainRetentionResponse>, Status> {
        let request = request.into_inner();
        let event_id = EventId::from_cloudtrail(&request.event_id)
            .ok_or_else(|| Status::invalid_argument("event_id is empty"))?;
        let explanation = self.answer(self.service.explain(event_id)).await?;
        Ok(Response::new(explanation_to_proto(explanation)))
    }

    async fn run_enforcement(
        &self,
        request: Request<pb::RunEnforcementRequest>,
    ) -> Result<Response<pb::EnforcementReport>, Status> {
        // A run takes as long as the deletions take: no request timeout here.
        let actor = stated_actor(&request);
        let report = self
            .service
            .run_now(&actor)
            .await
            .map_err(|error| retention_error_status(&error))?;
        Ok(Response::new(enforcement_report_to_proto(report)))
    }

    async fn create_legal_hold(
        &self,
        request: Request<pb::CreateLegalHoldRequest>,
    ) -> Result<Response<pb::LegalHold>, Status> {
        let actor = stated_actor(&request);
        let request = request.into_inner();
        let expires_at = request
            .expires_at
            .map(|time| from_timestamp("expires_at", time))
            .transpose()?;
        let hold = self
            .answer(self.service.create_hold(
                &actor,
                &request.reason,
                scope_from_proto(request.scope),
                expires_at,
            ))
            .await?;
        Ok(Response::new(hold_to_proto(hold)))
    }

    async fn list_legal_holds(
        &self,
        request: Request<pb::ListLegalHoldsRequest>,
    ) -> Result<Response<pb::ListLegalHoldsResponse>, Status> {
        let holds = self
            .answer(
                self.service
                    .list_holds(request.into_inner().include_inactive),
            )
            .await?;
        Ok(Response::new(pb::ListLegalHoldsResponse {
            holds: holds.into_iter().map(hold_to_proto).collect(),
        }))
    }

    async fn release_legal_hold(
        &self,
        request: Request<pb::ReleaseLegalHoldRequest>,
    ) -> Result<Response<pb::LegalHold>, Status> {
        let actor = stated_actor(&request);
        let request = request.into_inner();
        let hold = self
            .answer(
                self.service
                    .release_hold(&actor, request.hold_id, &request.reason),
            )
            .await?;
        Ok(Response::new(hold_to_proto(hold)))
    }
}

pub struct AuditAdapter {
    service: RetentionService,
}

impl AuditAdapter {
    pub fn new(service: RetentionService) -> AuditAdapter {
        AuditAdapter { service }
    }
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for AuditAdapter {
    async fn list_audit_entries(
        &self,
        request: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        let request = request.into_inner();
        let limit = page_size(request.max_results, 100)?;
        let before_id = decode_id_token(&request.next_token)?;
        let since = request
            .since
            .map(|time| from_timestamp("since", time))
            .transpose()?;
        let prefix = (!request.action_prefix.is_empty()).then_some(request.action_prefix.as_str());
        let entries = self
            .service
            .list_audit(before_id, prefix, since, limit + 1)
            .await
            .map_err(|error| retention_error_status(&error))?;
        let more = entries.len() > limit as usize;
        let entries: Vec<_> = entries.into_iter().take(limit as usize).collect();
        let next_token = match (more, entries.last()) {
            (true, Some(last)) => encode_id_token(last.audit_id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListAuditEntriesResponse {
            entries: entries.into_iter().map(audit_entry_to_proto).collect(),
            next_token,
        }))
    }
}
