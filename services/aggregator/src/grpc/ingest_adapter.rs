//! `IngestService` over gRPC: the stream loop that feeds [`IngestStream`] and answers each
//! file after its commit, and that ends the stream cleanly when the aggregator drains.

use std::pin::Pin;

use orgtrail_api::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status, Streaming};

use super::convert::ingest::limits_to_proto;
use super::status::ingest_error_status;
use crate::drain::Drain;
use crate::ingest::{FileChunk, IngestService, IngestStream};

pub struct IngestAdapter {
    service: IngestService,
    drain: Drain,
}

impl IngestAdapter {
    pub fn new(service: IngestService, drain: Drain) -> IngestAdapter {
        IngestAdapter { service, drain }
    }
}

type ResponseStream =
    Pin<Box<dyn futures::Stream<Item = Result<pb::IngestResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::ingest_service_server::IngestService for IngestAdapter {
    type IngestStream = ResponseStream;

    async fn ingest(
        &self,
        request: Request<Streaming<pb::IngestRequest>>,
    ) -> Result<Response<Self::IngestStream>, Status> {
        if self.drain.is_started() {
            return Err(Status::unavailable("the aggregator is shutting down"));
        }
        let (answers, receiver) = mpsc::channel(16);
        let stream = IngestStream::new(self.service.clone());
        tokio::spawn(serve_ingest_stream(
            stream,
            request.into_inner(),
            answers,
            self.drain.clone(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn get_ingest_limits(
        &self,
        _request: Request<pb::GetIngestLimitsRequest>,
    ) -> Result<Response<pb::IngestLimits>, Status> {
        Ok(Response::new(limits_to_proto(&self.service.limits())))
    }
}

/// Runs one ingest stream to its end; a failure ends the stream with its status, and the file
/// in flight (if any) is rolled back.
async fn serve_ingest_stream(
    mut stream: IngestStream,
    mut inbound: Streaming<pb::IngestRequest>,
    answers: mpsc::Sender<Result<pb::IngestResponse, Status>>,
    drain: Drain,
) {
    let ended = loop {
        let next = tokio::select! {
            biased;
            () = drain.started(), if stream.open_file().is_none() => {
                break Err(Status::unavailable("the aggregator is shutting down: send the remaining files again"));
            }
            () = drain.deadline() => break Err(rolled_back_on_shutdown(&mut stream)),
            next = inbound.message() => next,
        };
        let chunk = match next {
            Ok(Some(message)) => FileChunk::try_from(message),
            Ok(None) => break Ok(()),
            Err(status) => Err(undecodable_message(&stream, status)),
        };
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(status) => break Err(status),
        };
        let accepted = tokio::select! {
            biased;
            () = drain.deadline() => break Err(rolled_back_on_shutdown(&mut stream)),
            accepted = stream.accept(chunk) => accepted,
        };
        match accepted {
            Ok(Some(report)) => {
                if answers.send(Ok(report.into())).await.is_err() {
                    break Ok(());
                }
            }
            Ok(None) => {}
            Err(error) => break Err(ingest_error_status(&error)),
        }
    };
    if let Some(origin) = stream.abandon_open_file() {
        tracing::warn!(file = %origin, "ingest stream ended mid-file: the file was rolled back");
    }
    if let Err(status) = ended {
        let _ = answers.send(Err(status)).await;
    }
}

fn rolled_back_on_shutdown(stream: &mut IngestStream) -> Status {
    let file = stream
        .abandon_open_file()
        .map(|origin| origin.to_string())
        .unwrap_or_default();
    tracing::warn!(%file, "shutdown grace period over: the file in flight was rolled back");
    Status::unavailable(format!(
        "the aggregator is shutting down: {file} was rolled back, send it again"
    ))
}

/// A message that could not be decoded (most often one over the size limit) ends the stream;
/// the answer names the file it interrupted.
fn undecodable_message(stream: &IngestStream, status: Status) -> Status {
    let file = stream
        .open_file()
        .map(|origin| format!("{origin} was rolled back: "))
        .unwrap_or_default();
    let code = match status.code() {
        Code::OutOfRange | Code::ResourceExhausted => Code::ResourceExhausted,
        code => code,
    };
    Status::new(code, format!("{file}{}", status.message()))
}
