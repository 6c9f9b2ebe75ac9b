//! `RuleService` and `FindingService` over gRPC. Changes are attributed to the caller and the
//! person the client says it acts for (`convert::stated_actor`).

use orgtrail_api::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::detections::{
    finding_detail_to_proto, finding_filter_from_proto, finding_to_proto, replay_to_proto,
    rule_files_from_proto, rule_test_to_proto, rule_to_proto, suppression_from_proto,
    suppression_to_proto, test_size_from_proto,
};
use super::convert::{decode_id_token, encode_id_token, from_timestamp, page_size, stated_actor};
use super::status::{finding_error_status, rule_error_status};
use crate::findings::Findings;
use crate::sigma_rules::SigmaRules;

pub struct RulesAdapter {
    rules: SigmaRules,
}

impl RulesAdapter {
    pub fn new(rules: SigmaRules) -> RulesAdapter {
        RulesAdapter { rules }
    }
}

#[tonic::async_trait]
impl pb::rule_service_server::RuleService for RulesAdapter {
    async fn list_rules(
        &self,
        _request: Request<pb::ListRulesRequest>,
    ) -> Result<Response<pb::ListRulesResponse>, Status> {
        let rules = self
            .rules
            .list()
            .await
            .map_err(|error| rule_error_status(&error))?;
        Ok(Response::new(pb::ListRulesResponse {
            rules: rules
                .into_iter()
                .map(|rule| rule_to_proto(rule, false))
                .collect(),
        }))
    }

    async fn get_rule(
        &self,
        request: Request<pb::GetRuleRequest>,
    ) -> Result<Response<pb::SigmaRule>, Status> {
        let request = request.into_inner();
        let version = (request.version > 0).then_some(request.version);
        let rule = self
            .rules
            .get(&request.rule_id, version)
            .await
            .map_err(|error| rule_error_status(&error))?;
        Ok(Response::new(rule_to_proto(rule, true)))
    }

    async fn add_rules(
        &self,
        request: Request<pb::AddRulesRequest>,
    ) -> Result<Response<pb::AddRulesResponse>, Status> {
        let actor = stated_actor(&request);
        let request = request.into_inner();
        let files = rule_files_from_proto(request.files);
        let (added, unchanged) = self
            .rules
            .add(&actor, &files, !request.disabled)
            .await
            .map_err(|error| rule_error_status(&error))?;
        Ok(Response::new(pb::AddRulesResponse {
            added: added
                .into_iter()
                .map(|rule| rule_to_proto(rule, false))
                .collect(),
            unchanged,
        }))
    }

    async fn enable_rule(
        &self,
        request: Request<pb::EnableRuleRequest>,
    ) -> Result<Response<pb::SigmaRule>, Status> {
        let actor = stated_actor(&request);
        let rule = self
            .rules
            .set_enabled(&actor, &request.into_inner().rule_id, true)
            .await
            .map_err(|error| rule_error_status(&error))?;
        Ok(Response::new(rule_to_proto(rule, false)))
    }

    async fn disable_rule(
        &self,
        request: Request<pb::DisableRuleRequest>,
    ) -> Result<Response<pb::SigmaRule>, Status> {
        let actor = stated_actor(&request);
        let rule = self
            .rules
            .set_enabled(&actor, &request.into_inner().rule_id, false)
            .await
            .map_err(|error| rule_error_status(&error))?;
        Ok(Response::new(rule_to_proto(rule, false)))
    }

    async fn delete_rule(
        &self,
        request: Request<pb::DeleteRuleRequest>,
    ) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        let actor = stated_actor(&request);
        self.rules
            .delete(&actor, &request.into_inner().rule_id)
            .await
            .map_err(|error| rule_error_status(&error))?;
        Ok(Response::new(pb::DeleteRuleResponse {}))
    }

    async fn test_rule(
        &self,
        request: Request<pb::TestRuleRequest>,
    ) -> Result<Response<pb::TestRuleResponse>, Status> {
        let request = request.into_inner();
        let max_events = test_size_from_proto(request.max_events)?;
        let start = request
            .start_time
            .map(|time| from_timestamp("start_time", time))
            .transpose()?;
        let end = request
            .end_time
            .map(|time| from_timestamp("end_time", time))
            .transpose()?;
        let test = self
            .rules
            .test(&request.yaml, start, end, max_events)
            .await
            .map_err(|error| rule_error_status(&error))?;
        Ok(Response::new(rule_test_to_proto(test)))
    }

    async fn replay_detections(
        &self,
        request: Request<pb::ReplayDetectionsRequest>,
    ) -> Result<Response<pb::ReplayDetectionsResponse>, Status> {
        let actor = stated_actor(&request);
        let request = request.into_inner();
        let start = request
            .start_time
            .map(|time| from_timestamp("start_time", time))
            .transpose()?
            .ok_or_else(|| Status::invalid_argument("a replay needs its start time"))?;
        let end = request
            .end_time
            .map(|time| from_timestamp("end_time", time))
            .transpose()?
            .ok_or_else(|| Status::invalid_argument("a replay needs its end time"))?;
        let report = self
            .rules
            .replay(&actor, start, end)
            .await
            .map_err(|error| rule_error_status(&error))?;
        Ok(Response::new(replay_to_proto(report)))
    }
}

pub struct FindingsAdapter {
    findings: Findings,
}

impl FindingsAdapter {
    pub fn new(findings: Findings) -> FindingsAdapter {
        FindingsAdapter { findings }
    }
}

#[tonic::async_trait]
impl pb::finding_service_server::FindingService for FindingsAdapter {
    async fn list_findings(
        &self,
        request: Request<pb::ListFindingsRequest>,
    ) -> Result<Response<pb::ListFindingsResponse>, Status> {
        let request = request.into_inner();
        let filter = finding_filter_from_proto(&request)?;
        let limit = page_size(request.max_results, 100)?;
        let before = decode_id_token(&request.next_token)?;
        let findings = self
            .findings
            .list(&filter, before, limit)
            .await
            .map_err(|error| finding_error_status(&error))?;
        let next_token = match findings.last() {
            Some(last) if findings.len() == limit as usize => encode_id_token(last.finding_id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListFindingsResponse {
            findings: findings.into_iter().map(finding_to_proto).collect(),
            next_token,
        }))
    }

    async fn get_finding(
        &self,
        request: Request<pb::GetFindingRequest>,
    ) -> Result<Response<pb::FindingDetail>, Status> {
        let (finding, event) = self
            .findings
            .get(request.into_inner().finding_id)
            .await
            .map_err(|error| finding_error_status(&error))?;
        Ok(Response::new(finding_detail_to_proto(finding, event)))
    }

    async fn update_finding_state(
        &self,
        request: Request<pb::UpdateFindingStateRequest>,
    ) -> Result<Response<pb::Finding>, Status> {
        let actor = stated_actor(&request);
        let request = request.into_inner();
        let finding = self
            .findings
            .update_state(&actor, request.finding_id, &request.state, &request.reason)
            .await
            .map_err(|error| finding_error_status(&error))?;
        Ok(Response::new(finding_to_proto(finding)))
    }

    async fn create_suppression(
        &self,
        request: Request<pb::CreateSuppressionRequest>,
    ) -> Result<Response<pb::Suppression>, Status> {
        let actor = stated_actor(&request);
        let suppression = suppression_from_proto(request.into_inner())?;
        let created = self
            .findings
            .create_suppression(&actor, suppression)
            .await
            .map_err(|error| finding_error_status(&error))?;
        Ok(Response::new(suppression_to_proto(created)))
    }

    async fn list_suppressions(
        &self,
        request: Request<pb::ListSuppressionsRequest>,
    ) -> Result<Response<pb::ListSuppressionsResponse>, Status> {
        let suppressions = self
            .findings
            .list_suppressions(request.into_inner().all)
            .await
            .map_err(|error| finding_error_status(&error))?;
        Ok(Response::new(pb::ListSuppressionsResponse {
            suppressions: suppressions.into_iter().map(suppression_to_proto).collect(),
        }))
    }

    async fn delete_suppression(
        &self,
        request: Request<pb::DeleteSuppressionRequest>,
    ) -> Result<Response<pb::DeleteSuppressionResponse>, Status> {
        let actor = stated_actor(&request);
        let request = request.into_inner();
        self.findings
            .delete_suppression(&actor, request.suppression_id, &request.reason)
            .await
            .map_err(|error| finding_error_status(&error))?;
        Ok(Response::new(pb::DeleteSuppressionResponse {}))
    }
}
