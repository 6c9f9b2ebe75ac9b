//! `QueryService` over gRPC: a query run for its caller, its answer streamed back.

use std::pin::Pin;

use orgtrail_api::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::query::query_result_to_proto;
use super::convert::stated_actor;
use super::status::query_error_status;
use crate::query::QueryService;

pub struct QueryAdapter {
    service: QueryService,
}

impl QueryAdapter {
    pub fn new(service: QueryService) -> QueryAdapter {
        QueryAdapter { service }
    }
}

type RowStream = Pin<Box<dyn futures::Stream<Item = Result<pb::QueryRows, Status>> + Send>>;

#[tonic::async_trait]
impl pb::query_service_server::QueryService for QueryAdapter {
    type RunQueryStream = RowStream;

    async fn run_query(
        &self,
        request: Request<pb::RunQueryRequest>,
    ) -> Result<Response<Self::RunQueryStream>, Status> {
        let actor = stated_actor(&request);
        let sql = request.into_inner().sql;
        // gRPC callers see every account: scopes belong to the CloudTrail endpoint's keys.
        let result = self
            .service
            .run(&actor, &sql, None)
            .await
            .map_err(|error| query_error_status(&error))?;
        let messages = query_result_to_proto(&result)?;
        Ok(Response::new(Box::pin(futures::stream::iter(
            messages.into_iter().map(Ok),
        ))))
    }
}
