//! `SourceService` over gRPC.

use orgtrail_api::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::sources::{
    checkpoint_to_proto, integrity_report_from_proto, integrity_state_to_proto, lease_to_proto,
    listed_file_from_proto, listed_file_to_proto, report_from_proto, source_status_to_proto,
};
use super::status::sources_error_status;
use crate::sources::SourceRegistry;

pub struct SourcesAdapter {
    registry: SourceRegistry,
}

impl SourcesAdapter {
    pub fn new(registry: SourceRegistry) -> SourcesAdapter {
        SourcesAdapter { registry }
    }
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
            .map(listed_file_from_proto)
            .collect();
        let new_files = self
            .registry
            .filter_new_files(files)
            .await
            .map_err(|error| sources_error_status(&error))?;
        Ok(Response::new(pb::FilterNewFilesResponse {
            new_files: new_files.into_iter().map(listed_file_to_proto).collect(),
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
            checkpoints: checkpoints.into_iter().map(checkpoint_to_proto).collect(),
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
        Ok(Response::new(lease_to_proto(lease)))
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
        let report = report_from_proto(request.into_inner());
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
            sources: rows.into_iter().map(source_status_to_proto).collect(),
        }))
    }

    async fn get_integrity_state(
        &self,
        request: Request<pb::GetIntegrityStateRequest>,
    ) -> Result<Response<pb::GetIntegrityStateResponse>, Status> {
        let request = request.into_inner();
        let files = request
            .files
            .into_iter()
            .filter(|file| file.bucket.is_empty() || file.bucket == request.bucket)
            .map(|file| (file.object_key, file.etag))
            .collect();
        let state = self
            .registry
            .integrity_state(
                &request.source,
                &request.bucket,
                &request.account_id,
                &request.aws_region,
                files,
            )
            .await
            .map_err(|error| sources_error_status(&error))?;
        Ok(Response::new(integrity_state_to_proto(state)))
    }

    async fn record_integrity(
        &self,
        request: Request<pb::RecordIntegrityRequest>,
    ) -> Result<Response<pb::RecordIntegrityResponse>, Status> {
        let report = integrity_report_from_proto(request.into_inner())?;
        let recorded = self
            .registry
            .record_integrity(report)
            .await
            .map_err(|error| sources_error_status(&error))?;
        Ok(Response::new(pb::RecordIntegrityResponse {
            findings_raised: u32::try_from(recorded.findings_raised).unwrap_or(u32::MAX),
            events_quarantined: recorded.events_quarantined,
        }))
    }
}
