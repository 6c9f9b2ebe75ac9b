//! `InsightService` over gRPC. Tuning changes are attributed to the caller and the person the
//! client says it acts for (`convert::stated_actor`).

use orgtrail_api::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::insights::{
    decode_insight_token, encode_insight_token, explain_to_proto, insight_filter_from_proto,
    insight_id_from_proto, insight_to_proto, replay_to_proto, replay_window_from_proto,
    scope_from_proto, setting_from_proto, setting_to_proto,
};
use super::convert::{page_size, stated_actor};
use super::status::insight_error_status;
use crate::insights::InsightService;

pub struct InsightsAdapter {
    insights: InsightService,
}

impl InsightsAdapter {
    pub fn new(insights: InsightService) -> InsightsAdapter {
        InsightsAdapter { insights }
    }
}

#[tonic::async_trait]
impl pb::insight_service_server::InsightService for InsightsAdapter {
    async fn list_insights(
        &self,
        request: Request<pb::ListInsightsRequest>,
    ) -> Result<Response<pb::ListInsightsResponse>, Status> {
        let request = request.into_inner();
        let filter = insight_filter_from_proto(&request)?;
        let limit = page_size(request.max_results, 50)?;
        let before = decode_insight_token(&request.next_token)?;
        let episodes = self
            .insights
            .list(&filter, before, limit)
            .await
            .map_err(|error| insight_error_status(&error))?;
        let next_token = if episodes.len() as u32 == limit {
            episodes
                .last()
                .map(encode_insight_token)
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListInsightsResponse {
            insights: episodes.into_iter().map(insight_to_proto).collect(),
            next_token,
        }))
    }

    async fn explain_insight(
        &self,
        request: Request<pb::ExplainInsightRequest>,
    ) -> Result<Response<pb::ExplainInsightResponse>, Status> {
        let id = insight_id_from_proto(&request.into_inner().insight_id)?;
        let (episode, minutes, model) = self
            .insights
            .explain(id)
            .await
            .map_err(|error| insight_error_status(&error))?;
        Ok(Response::new(explain_to_proto(episode, minutes, &model)))
    }

    async fn replay_insights(
        &self,
        request: Request<pb::ReplayInsightsRequest>,
    ) -> Result<Response<pb::ReplayInsightsResponse>, Status> {
        let actor = stated_actor(&request);
        let (start, end) = replay_window_from_proto(&request.into_inner())?;
        let counts = self
            .insights
            .replay(&actor, start, end)
            .await
            .map_err(|error| insight_error_status(&error))?;
        Ok(Response::new(replay_to_proto(counts)))
    }

    async fn list_insight_settings(
        &self,
        _request: Request<pb::ListInsightSettingsRequest>,
    ) -> Result<Response<pb::ListInsightSettingsResponse>, Status> {
        let settings = self
            .insights
            .list_settings()
            .await
            .map_err(|error| insight_error_status(&error))?;
        Ok(Response::new(pb::ListInsightSettingsResponse {
            settings: settings.into_iter().map(setting_to_proto).collect(),
            defaults_json: serde_json::to_string(&self.insights.settings().model)
                .unwrap_or_default(),
        }))
    }

    async fn set_insight_setting(
        &self,
        request: Request<pb::SetInsightSettingRequest>,
    ) -> Result<Response<pb::InsightSetting>, Status> {
        let actor = stated_actor(&request);
        let setting = setting_from_proto(request.into_inner().setting)?;
        let stored = self
            .insights
            .set_setting(&actor, setting)
            .await
            .map_err(|error| insight_error_status(&error))?;
        Ok(Response::new(setting_to_proto(stored)))
    }

    async fn delete_insight_setting(
        &self,
        request: Request<pb::DeleteInsightSettingRequest>,
    ) -> Result<Response<pb::DeleteInsightSettingResponse>, Status> {
        let actor = stated_actor(&request);
        let scope = scope_from_proto(request.into_inner());
        self.insights
            .delete_setting(&actor, scope)
            .await
            .map_err(|error| insight_error_status(&error))?;
        Ok(Response::new(pb::DeleteInsightSettingResponse {}))
    }
}
