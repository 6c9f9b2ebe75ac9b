//! The aggregator as the collector uses it: the source services (what is new, checkpoints,
//! leases, status) and the ingest sender. Connections are made lazily and remade after
//! failures, so an aggregator that is down or restarting is an error of the moment, retried.

use orgtrail_api::v1 as pb;
use orgtrail_api::v1::source_service_client::SourceServiceClient;
use orgtrail_client::{
    connect_lazy, AuthChannel, ClientSettings, ConnectError, IngestSender, SenderSettings,
    StartError,
};

use crate::source_error::SourceError;

/// Files or prefixes per request (the aggregator takes up to 10000).
const BATCH: usize = 5000;

#[derive(Clone)]
pub struct AggregatorClient {
    sources: SourceServiceClient<AuthChannel>,
    /// For ingest senders (each stream connects on its own).
    settings: ClientSettings,
    collector_id: String,
}

/// A lease decision.
pub struct Lease {
    pub granted: bool,
    pub holder: String,
}

impl AggregatorClient {
    pub fn new(
        settings: &ClientSettings,
        collector_id: &str,
    ) -> Result<AggregatorClient, ConnectError> {
        Ok(AggregatorClient {
            sources: SourceServiceClient::new(connect_lazy(settings)?),
            settings: settings.clone(),
            collector_id: collector_id.to_string(),
        })
    }

    /// An ingest sender (it asks the aggregator for its limits).
    pub async fn ingest_sender(&self, streams: usize) -> Result<IngestSender, SourceError> {
        IngestSender::connect(
            &self.settings,
            SenderSettings {
                streams,
                ..SenderSettings::default()
            },
        )
        .await
        .map_err(|error| match error {
            StartError::Limits(status) => SourceError::aggregator("GetIngestLimits", status),
            StartError::Connect(error) => SourceError::Aggregator {
                operation: "connect",
                code: tonic::Code::Unavailable,
                message: orgtrail_client::error_chain(&error),
            },
        })
    }

    /// The files the ledger does not hold yet, in their order.
    pub async fn filter_new_files(
        &self,
        files: Vec<pb::StoredFile>,
    ) -> Result<Vec<pb::StoredFile>, SourceError> {
        let mut new_files = Vec::new();
        for batch in files.chunks(BATCH) {
            let response = self
                .sources
                .clone()
                .filter_new_files(pb::FilterNewFilesRequest {
                    files: batch.to_vec(),
                })
                .await
                .map_err(|status| SourceError::aggregator("FilterNewFiles", status))?;
            new_files.extend(response.into_inner().new_files);
        }
        Ok(new_files)
    }

    /// The newest key the ledger holds under each prefix.
    pub async fn checkpoints(
        &self,
        bucket: &str,
        prefixes: Vec<String>,
    ) -> Result<Vec<Option<String>>, SourceError> {
        let mut newest = Vec::with_capacity(prefixes.len());
        for batch in prefixes.chunks(BATCH) {
            let response = self
                .sources
                .clone()
                .get_checkpoints(pb::GetCheckpointsRequest {
                    bucket: bucket.to_string(),
                    prefixes: batch.to_vec(),
                })
                .await
                .map_err(|status| SourceError::aggregator("GetCheckpoints", status))?;
            newest.extend(
                response
                    .into_inner()
                    .checkpoints
                    .into_iter()
                    .map(|checkpoint| {
                        (!checkpoint.newest_object_key.is_empty())
                            .then_some(checkpoint.newest_object_key)
                    }),
            );
        }
        Ok(newest)
    }

    pub async fn acquire_lease(
        &self,
        source: &str,
        lease_seconds: u32,
    ) -> Result<Lease, SourceError> {
        let response = self
            .sources
            .clone()
            .acquire_source_lease(pb::AcquireSourceLeaseRequest {
                source: source.to_string(),
                holder: self.collector_id.clone(),
                lease_seconds,
            })
            .await
            .map_err(|status| SourceError::aggregator("AcquireSourceLease", status))?
            .into_inner();
        Ok(Lease {
            granted: response.granted,
            holder: response.holder,
        })
    }

    pub async fn release_lease(&self, source: &str) {
        let released = self
            .sources
            .clone()
            .release_source_lease(pb::ReleaseSourceLeaseRequest {
                source: source.to_string(),
                holder: self.collector_id.clone(),
            })
            .await;
        if let Err(status) = released {
            tracing::warn!(source, code = ?status.code(), message = status.message(), "cannot release the lease; it expires by itself");
        }
    }

    /// Records an outcome; a failure to record is logged, the collector goes on.
    pub async fn report(
        &self,
        source: &str,
        account_id: &str,
        aws_region: &str,
        outcome: Result<(u32, Option<String>), String>,
    ) {
        let (files_taken, newest_object_key, error) = match outcome {
            Ok((files_taken, newest)) => (files_taken, newest.unwrap_or_default(), String::new()),
            Err(error) => (0, String::new(), error),
        };
        let reported = self
            .sources
            .clone()
            .report_source_status(pb::ReportSourceStatusRequest {
                source: source.to_string(),
                account_id: account_id.to_string(),
                aws_region: aws_region.to_string(),
                collector: self.collector_id.clone(),
                error,
                files_taken,
                newest_object_key,
            })
            .await;
        if let Err(status) = reported {
            tracing::warn!(source, account_id, aws_region, code = ?status.code(), message = status.message(), "cannot report the source status");
        }
    }

    /// Where validation of an account and region stands, and the ledger's hash of each of
    /// `files` (`(key, etag)`; an empty etag asks for any version the ledger holds).
    pub async fn integrity_state(
        &self,
        scope: &IntegrityScope<'_>,
        files: &[(String, String)],
    ) -> Result<LedgerIntegrity, SourceError> {
        let mut state = LedgerIntegrity::default();
        let mut first = true;
        for batch in files
            .chunks(BATCH)
            .chain(files.is_empty().then_some(&[][..]))
        {
            let response = self
                .sources
                .clone()
                .get_integrity_state(pb::GetIntegrityStateRequest {
                    source: scope.source.to_string(),
                    bucket: scope.bucket.to_string(),
                    account_id: scope.account_id.to_string(),
                    aws_region: scope.aws_region.to_string(),
                    files: batch
                        .iter()
                        .map(|(key, etag)| pb::StoredFile {
                            bucket: scope.bucket.to_string(),
                            object_key: key.clone(),
                            etag: etag.clone(),
                        })
                        .collect(),
                })
                .await
                .map_err(|status| SourceError::aggregator("GetIntegrityState", status))?
                .into_inner();
            if first {
                state.digest = (!response.digest_key.is_empty())
                    .then(|| {
                        let end_time = response.digest_end_time?;
                        let end_time = chrono::DateTime::from_timestamp(
                            end_time.seconds,
                            u32::try_from(end_time.nanos).unwrap_or(0),
                        )?;
                        Some((response.digest_key.clone(), end_time))
                    })
                    .flatten();
                first = false;
            }
            state.hashes.extend(response.hashes);
        }
        Ok(state)
    }

    /// Records a validation; the log files go in batches, the progress with the last.
    pub async fn record_integrity(
        &self,
        mut request: pb::RecordIntegrityRequest,
    ) -> Result<pb::RecordIntegrityResponse, SourceError> {
        request.collector = self.collector_id.clone();
        let mut log_files = std::mem::take(&mut request.log_files);
        let mut total = pb::RecordIntegrityResponse::default();
        while log_files.len() > BATCH {
            let rest = log_files.split_off(BATCH);
            let partial = pb::RecordIntegrityRequest {
                log_files,
                problems: Vec::new(),
                digest_key: String::new(),
                digest_end_time: None,
                digests_read: 0,
                digests_verified: 0,
                ..request.clone()
            };
            let answer = self.send_integrity(partial).await?;
            total.events_quarantined += answer.events_quarantined;
            log_files = rest;
        }
        request.log_files = log_files;
        let answer = self.send_integrity(request).await?;
        total.events_quarantined += answer.events_quarantined;
        total.findings_raised += answer.findings_raised;
        Ok(total)
    }

    async fn send_integrity(
        &self,
        request: pb::RecordIntegrityRequest,
    ) -> Result<pb::RecordIntegrityResponse, SourceError> {
        Ok(self
            .sources
            .clone()
            .record_integrity(request)
            .await
            .map_err(|status| SourceError::aggregator("RecordIntegrity", status))?
            .into_inner())
    }
}

/// One account and region of a source's bucket.
pub struct IntegrityScope<'a> {
    pub source: &'a str,
    pub bucket: &'a str,
    pub account_id: &'a str,
    pub aws_region: &'a str,
}

/// What the aggregator holds for digest validation.
#[derive(Default)]
pub struct LedgerIntegrity {
    /// The newest digest read by the last validation, and its end time.
    pub digest: Option<(String, chrono::DateTime<chrono::Utc>)>,
    pub hashes: Vec<pb::LedgerHash>,
}
