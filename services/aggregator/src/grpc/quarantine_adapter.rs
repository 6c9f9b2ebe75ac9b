//! `QuarantineService` over gRPC.

use orgtrail_api::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::admin::quarantine_entry_to_proto;
use super::convert::{decode_id_token, encode_id_token, page_size};
use super::status::quarantine_error_status;
use crate::store::PgStore;

pub struct QuarantineAdapter {
    store: PgStore,
}

impl QuarantineAdapter {
    pub fn new(store: PgStore) -> QuarantineAdapter {
        QuarantineAdapter { store }
    }
}

#[tonic::async_trait]
impl pb::quarantine_service_server::QuarantineService for QuarantineAdapter {
    async fn list_quarantine(
        &self,
        request: Request<pb::ListQuarantineRequest>,
    ) -> Result<Response<pb::ListQuarantineResponse>, Status> {
        let request = request.into_inner();
        let limit = page_size(request.max_results, 50)?;
        let before_id = decode_id_token(&request.next_token)?;
        let source = (!request.source.is_empty()).then_some(request.source.as_str());
        let entries = self
            .store
            .list_quarantine(source, before_id, limit)
            .await
            .map_err(|error| quarantine_error_status(&error))?;
        let next_token = if entries.len() == limit as usize {
            entries
                .last()
                .map(|entry| encode_id_token(entry.quarantine_id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListQuarantineResponse {
            entries: entries.into_iter().map(quarantine_entry_to_proto).collect(),
            next_token,
        }))
    }

    async fn get_quarantined(
        &self,
        request: Request<pb::GetQuarantinedRequest>,
    ) -> Result<Response<pb::QuarantineEntry>, Status> {
        let entry = self
            .store
            .quarantine_entry(request.into_inner().quarantine_id)
            .await
            .map_err(|error| quarantine_error_status(&error))?;
        Ok(Response::new(quarantine_entry_to_proto(entry)))
    }
}
