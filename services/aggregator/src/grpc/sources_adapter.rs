//! `SourceService` over gRPC.

use orgtrail_api::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::to_timestamp;
use super::status::sources_error_status;
use crate::sources::{ReportedOutcome, SourceRegistry};
use crate::store::ListedFile;

pub struct SourcesAdapter {
    registry: SourceRegistry,
}

impl SourcesAdapter {
    pub fn new(registry: SourceRegistry) -> SourcesAdapter {
        SourcesAdapter { registry }
    }
}

fn listed_file(file: pb::StoredFile) -> ListedFile {
    ListedFile {
        bucket: file.bucket,
        object_key: file.object_key,
        etag: file.etag,
    }
}

fn stored_file(file: ListedFile) -> pb::StoredFile {
    pb::StoredFile {
        bucket: file.bucket,
        object_key: file.object_key,
        etag: file.etag,
    }
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

#[tonic::async_trait]
impl pb::source_service_server::SourceService for SourcesAdapter {
    async fn filter_new_files(
        &self,
        request: Request<pb::FilterNewFilesRequest>,
    ) -> Result<Response<pb::FilterNewFilesResponse>, Status> {
        let files = request
            .into_inner()
            .files
            .into_iter()
            .map(listed_file)
            .collect();
        let new_files = self
            .registry
            .filter_new_files(files)
            .await
            .map_err(|error| sources_error_status(&error))?;
        Ok(Response::new(pb::FilterNewFilesResponse {
            new_files: new_files.into_iter().map(stored_file).collect(),
        }))
    }

    async fn get_checkpoints(
        &self,
        request: Request<pb::GetCheckpointsRequest>,
    ) -> Result<Response<pb::GetCheckpointsResponse>, Status> {
        let request = request.into_inner();
        let checkpoints = self
            .registry
            .checkpoints(&request.bucket, request.prefixes)
            .await
            .map_err(|error| sources_error_status(&error))?;
        Ok(Response::new(pb::GetCheckpointsResponse {
            checkpoints: checkpoints
                .into_iter()
                .map(|(prefix, newest)| pb::Checkpoint {
                    prefix,
                    newest_object_key: newest.unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn acquire_source_lease(
        &self,
        request: Request<pb::AcquireSourceLeaseRequest>,
    ) -> Result<Response<pb::AcquireSourceLeaseResponse>, Status> {
        let request = request.into_inner();
        let lease = self
            .registry
            .acquire_lease(&request.source, &request.holder, request.lease_seconds)
            .await
            .map_err(|error| sources_error_status(&error))?;
        Ok(Response::new(pb::AcquireSourceLeaseResponse {
            granted: lease.granted,
            holder: lease.holder,
            expires_at: Some(to_timestamp(lease.expires_at)),
        }))
    }

    async fn release_source_lease(
        &self,
        request: Request<pb::ReleaseSourceLeaseRequest>,
    ) -> Result<Response<pb::ReleaseSourceLeaseResponse>, Status> {
        let request = request.into_inner();
        let released = self
            .registry
            .release_lease(&request.source, &request.holder)
            .await
            .map_err(|error| sources_error_status(&error))?;
        Ok(Response::new(pb::ReleaseSourceLeaseResponse { released }))
    }

    async fn report_source_status(
        &self,
        request: Request<pb::ReportSourceStatusRequest>,
    ) -> Result<Response<pb::ReportSourceStatusResponse>, Status> {
        let request = request.into_inner();
        let report = ReportedOutcome {
            source: request.source,
            account_id: request.account_id,
            aws_region: request.aws_region,
            collector: request.collector,
            error: non_empty(request.error),
            files_taken: request.files_taken,
            newest_object_key: non_empty(request.newest_object_key),
        };
        self.registry
            .report(report)
            .await
            .map_err(|error| sources_error_status(&error))?;
        Ok(Response::new(pb::ReportSourceStatusResponse {}))
    }

    async fn list_sources(
        &self,
        _request: Request<pb::ListSourcesRequest>,
    ) -> Result<Response<pb::ListSourcesResponse>, Status> {
        let rows = self
            .registry
            .list()
            .await
            .map_err(|error| sources_error_status(&error))?;
        Ok(Response::new(pb::ListSourcesResponse {
            sources: rows
                .into_iter()
                .map(|row| pb::SourceStatus {
                    source: row.source,
                    account_id: row.account_id,
                    aws_region: row.aws_region,
                    collector: row.collector,
                    last_object_key: row.last_object_key.unwrap_or_default(),
                    last_delivery_time: row.last_delivery_time.map(to_timestamp),
                    last_success_at: row.last_success_at.map(to_timestamp),
                    last_error: row.last_error.unwrap_or_default(),
                    last_error_at: row.last_error_at.map(to_timestamp),
                    lag_seconds: row.lag_seconds.map_or(0, |lag| lag.max(0.0) as i64),
                    lease_holder: row.lease_holder.unwrap_or_default(),
                })
                .collect(),
        }))
    }
}
