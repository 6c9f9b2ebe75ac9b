//! An ingest stream driven message by message, for what the ingest sender never does: stop
//! mid-file, send too much, or outlive a shutdown.

use std::time::Duration;

use orgtrail_api::v1 as pb;
use orgtrail_api::v1::ingest_service_client::IngestServiceClient;
use orgtrail_client::AuthChannel;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::stack::WAIT;

pub struct RawIngestStream {
    requests: Option<mpsc::Sender<pb::IngestRequest>>,
    answers: Streaming<pb::IngestResponse>,
}

impl RawIngestStream {
    pub async fn open(channel: AuthChannel) -> Result<RawIngestStream, Status> {
        let (requests, outgoing) = mpsc::channel(16);
        let mut client = IngestServiceClient::new(channel).max_encoding_message_size(usize::MAX);
        let answers = tokio::time::timeout(WAIT, client.ingest(ReceiverStream::new(outgoing)))
            .await
            .map_err(|_| Status::deadline_exceeded("the stream did not open"))??
            .into_inner();
        Ok(RawIngestStream {
            requests: Some(requests),
            answers,
        })
    }

    pub async fn send(&self, request: pb::IngestRequest) {
        if let Some(requests) = &self.requests {
            // The server may already have ended the stream; the answer says why.
            let _ = requests.send(request).await;
        }
    }

    /// Ends the request side.
    pub fn close(&mut self) {
        self.requests = None;
    }

    /// The next answer, the stream's end (`Ok(None)`) or its error; bounded by `bound`.
    pub async fn next_answer(
        &mut self,
        bound: Duration,
    ) -> Result<Option<pb::IngestResponse>, Status> {
        tokio::time::timeout(bound, self.answers.message())
            .await
            .unwrap_or_else(|_| panic!("no answer within {bound:?}"))
    }
}

pub fn origin(bucket: &str, key: &str, etag: &str) -> pb::LogFileOrigin {
    pb::LogFileOrigin {
        source: "test".into(),
        bucket: bucket.into(),
        object_key: key.into(),
        etag: etag.into(),
        last_modified: None,
    }
}

/// The messages of one file: records `start..` with their indexes.
pub fn records_message(
    file_seq: u64,
    origin: Option<pb::LogFileOrigin>,
    first_index: u32,
    records: &[&str],
) -> pb::IngestRequest {
    pb::IngestRequest {
        file_seq,
        origin,
        records: records
            .iter()
            .enumerate()
            .map(|(offset, record)| pb::RawRecord {
                index: first_index + offset as u32,
                json: record.as_bytes().to_vec(),
            })
            .collect(),
        rejections: Vec::new(),
        end: None,
    }
}

pub fn end_message(file_seq: u64, records_read: u32) -> pb::IngestRequest {
    pb::IngestRequest {
        file_seq,
        end: Some(pb::FileEnd {
            records_read,
            ..pb::FileEnd::default()
        }),
        ..Default::default()
    }
}
