//! Sending log files to the aggregator over ingest streams, each file delivered exactly when
//! its answer arrives.
//!
//! Files are read as a stream (bounded memory) and sent in batches sized under the
//! aggregator's message limit; several files are in flight per stream (pipelining) and several
//! streams run side by side. When a stream breaks — the aggregator restarts, drains or is
//! unreachable — every file it had not answered goes back to the queue and is sent again on a
//! new stream after a backoff; the aggregator's file ledger makes that resend safe.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use md5::{Digest, Md5};
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::ingest_service_client::IngestServiceClient;
use orgtrail_domain::{read_log_file, LogFileItem, LogFileOrigin, ReadLimits};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;

use crate::channel::{stream_endpoint, ClientSettings, ConnectError, Credentials};
use tonic::{Code, Status};

/// A log file that can be opened (again, for a resend) as a byte stream.
pub trait LogFileReader: Send + Sync + 'static {
    fn origin(&self) -> &LogFileOrigin;
    /// Called on a blocking thread.
    fn open(&self) -> io::Result<Box<dyn Read + Send>>;
}

/// A log file on local disk. Its ETag is the MD5 of its bytes, as S3 reports it for a
/// single-part upload; its key is its absolute path.
pub struct LocalLogFile {
    path: PathBuf,
    origin: LogFileOrigin,
}

impl LocalLogFile {
    /// Reads the file once to compute its ETag.
    pub fn new(path: &Path, source: &str) -> io::Result<LocalLogFile> {
        let absolute = path.canonicalize()?;
        let mut file = std::fs::File::open(&absolute)?;
        let mut hasher = Md5::new();
        io::copy(&mut file, &mut hasher)?;
        let etag = format!("{:x}", hasher.finalize());
        Ok(LocalLogFile {
            origin: LogFileOrigin {
                source: source.to_string(),
                bucket: String::new(),
                object_key: absolute.to_string_lossy().into_owned(),
                etag,
                last_modified: None,
            },
            path: absolute,
        })
    }
}

impl LogFileReader for LocalLogFile {
    fn origin(&self) -> &LogFileOrigin {
        &self.origin
    }

    fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(std::fs::File::open(&self.path)?))
    }
}

/// The aggregator's answer for a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    pub outcome: FileOutcome,
    pub accepted: u32,
    pub duplicates: u32,
    pub rejected: u32,
    /// The first rejections, with the record index and the reason.
    pub rejections: Vec<(u32, String)>,
    /// A file-level fault met while reading (the records before it were stored).
    pub fault: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileOutcome {
    Committed,
    AlreadyIngested,
}

/// One file's end: its report, or why it was not delivered.
#[derive(Debug)]
pub struct FileResult {
    pub origin: LogFileOrigin,
    pub result: Result<FileReport, SendError>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot open the file")]
    Open(#[source] io::Error),
    #[error("the aggregator refused the file: {}", .0.message())]
    Refused(Status),
    #[error("not delivered after {attempts} attempts, the last failed with: {last}")]
    GaveUp { attempts: u32, last: String },
    #[error("not sent: the sender was stopped")]
    Cancelled,
}

/// How files are sent.
#[derive(Clone, Debug)]
pub struct SenderSettings {
    /// Ingest streams side by side.
    pub streams: usize,
    /// Files sent on a stream before their answers arrive.
    pub files_in_flight_per_stream: usize,
    /// Attempts per file before giving up.
    pub max_attempts: u32,
    /// First backoff after a broken stream; doubles up to `max_retry_delay`, with jitter.
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// A stream whose aggregator answers nothing for this long while files wait for answers
    /// is taken for broken: its files are sent again on a new stream.
    pub answer_timeout: Duration,
    pub read_limits: ReadLimits,
}

impl Default for SenderSettings {
    fn default() -> Self {
        SenderSettings {
            streams: 2,
            files_in_flight_per_stream: 8,
            max_attempts: 8,
            retry_delay: Duration::from_millis(200),
            max_retry_delay: Duration::from_secs(10),
            answer_timeout: Duration::from_secs(600),
            read_limits: ReadLimits::default(),
        }
    }
}

/// The limits the aggregator announced.
#[derive(Clone, Copy, Debug)]
pub struct AggregatorLimits {
    pub max_request_bytes: usize,
    pub max_record_bytes: usize,
}

/// Room kept in a message for everything but the record texts.
const MESSAGE_OVERHEAD_BYTES: usize = 64 * 1024;
/// Records per message at most.
const MAX_RECORDS_PER_MESSAGE: usize = 1000;

/// Sends log files to one aggregator.
#[derive(Clone)]
pub struct IngestSender {
    /// Each stream connects on its own (see [`crate::stream_endpoint`]).
    endpoint: Endpoint,
    credentials: Credentials,
    settings: SenderSettings,
    limits: AggregatorLimits,
}

/// Why a sender could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("the aggregator did not give its ingest limits: {}", .0.message())]
    Limits(Status),
}

impl IngestSender {
    /// Connects to the aggregator and asks for its limits.
    pub async fn connect(
        client: &ClientSettings,
        settings: SenderSettings,
    ) -> Result<IngestSender, StartError> {
        let endpoint = stream_endpoint(client)?;
        let credentials = Credentials::new(client)?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| ConnectError::Unreachable {
                endpoint: client.endpoint.clone(),
                source,
            })?;
        let limits = IngestServiceClient::with_interceptor(channel, credentials.clone())
            .get_ingest_limits(pb::GetIngestLimitsRequest {})
            .await
            .map_err(StartError::Limits)?
            .into_inner();
        let limits = AggregatorLimits {
            max_request_bytes: usize::try_from(limits.max_request_bytes).unwrap_or(usize::MAX),
            max_record_bytes: usize::try_from(limits.max_record_bytes).unwrap_or(usize::MAX),
        };
        Ok(IngestSender {
            endpoint,
            credentials,
            settings,
            limits,
        })
    }

    pub fn limits(&self) -> AggregatorLimits {
        self.limits
    }

    /// Sends every file and calls `on_result` once per file, in the order answers arrive.
    pub async fn send_files(
        &self,
        files: Vec<Arc<dyn LogFileReader>>,
        on_result: impl FnMut(FileResult) + Send,
    ) {
        self.send_files_until(files, &CancellationToken::new(), on_result)
            .await;
    }

    /// Like [`IngestSender::send_files`], until `cancel` fires: then no new file is started,
    /// the files in flight are finished and answered, and the others end as
    /// [`SendError::Cancelled`].
    pub async fn send_files_until(
        &self,
        files: Vec<Arc<dyn LogFileReader>>,
        cancel: &CancellationToken,
        mut on_result: impl FnMut(FileResult) + Send,
    ) {
        let queue = Arc::new(JobQueue::new(files, cancel.clone()));
        let (results, mut received) = mpsc::unbounded_channel();
        let mut workers = Vec::new();
        for _ in 0..self.settings.streams.max(1) {
            let worker = StreamWorker {
                sender: self.clone(),
                queue: Arc::clone(&queue),
                results: results.clone(),
            };
            workers.push(tokio::spawn(worker.run()));
        }
        drop(results);
        while let Some(result) = received.recv().await {
            on_result(result);
        }
        for worker in workers {
            let _ = worker.await;
        }
    }
}

struct Job {
    reader: Arc<dyn LogFileReader>,
    attempts: u32,
}

/// Files waiting to be sent, and how many are not finished yet (waiting or in flight).
struct JobQueue {
    waiting: Mutex<VecDeque<Job>>,
    unfinished: AtomicUsize,
    changed: Notify,
    /// Once fired, nothing more is taken from the queue.
    cancel: CancellationToken,
}

impl JobQueue {
    fn new(files: Vec<Arc<dyn LogFileReader>>, cancel: CancellationToken) -> JobQueue {
        let unfinished = files.len();
        JobQueue {
            waiting: Mutex::new(
                files
                    .into_iter()
                    .map(|reader| Job {
                        reader,
                        attempts: 0,
                    })
                    .collect(),
            ),
            unfinished: AtomicUsize::new(unfinished),
            changed: Notify::new(),
            cancel,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pop(&self) -> Option<Job> {
        if self.cancel.is_cancelled() {
            return None;
        }
        self.lock().pop_front()
    }

    /// Takes every waiting job (after a cancel).
    fn drain(&self) -> Vec<Job> {
        self.lock().drain(..).collect()
    }

    fn is_waiting_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Puts jobs back at the front, in their order.
    fn requeue(&self, jobs: Vec<Job>) {
        let mut waiting = self.lock();
        for job in jobs.into_iter().rev() {
            waiting.push_front(job);
        }
        drop(waiting);
        self.changed.notify_waiters();
    }

    fn finish_one(&self) {
        self.unfinished.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    fn all_finished(&self) -> bool {
        self.unfinished.load(Ordering::SeqCst) == 0
    }
}

/// A file sent on a stream and not answered yet.
struct Pending {
    file_seq: u64,
    job: Job,
    _permit: OwnedSemaphorePermit,
}

struct StreamWorker {
    sender: IngestSender,
    queue: Arc<JobQueue>,
    results: mpsc::UnboundedSender<FileResult>,
}

impl StreamWorker {
    async fn run(self) {
        let mut failures = 0u32;
        while !self.queue.all_finished() {
            if self.queue.cancel.is_cancelled() {
                for job in self.queue.drain() {
                    self.finish(job, Err(SendError::Cancelled));
                }
            }
            if self.queue.is_waiting_empty() {
                // Another stream may still hand files back; wait for a change, but not forever.
                let _ =
                    tokio::time::timeout(Duration::from_millis(200), self.queue.changed.notified())
                        .await;
                continue;
            }
            match self.run_stream().await {
                Ok(()) => failures = 0,
                Err(status) => {
                    failures += 1;
                    let delay = backoff(&self.sender.settings, failures);
                    tracing::warn!(code = ?status.code(), message = status.message(), ?delay, "ingest stream broke; unanswered files will be sent again");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.queue.cancel.cancelled() => {}
                    }
                }
            }
        }
    }

    /// One stream: sends files until the queue is empty and reads the answers. On a break,
    /// the unanswered files go back to the queue.
    async fn run_stream(&self) -> Result<(), Status> {
        let settings = &self.sender.settings;
        let pending: Arc<Mutex<VecDeque<Pending>>> = Arc::new(Mutex::new(VecDeque::new()));
        let (requests, outgoing) = mpsc::channel::<pb::IngestRequest>(4);
        let mut client = IngestServiceClient::with_interceptor(
            self.sender.endpoint.connect_lazy(),
            self.sender.credentials.clone(),
        )
        .max_encoding_message_size(self.sender.limits.max_request_bytes)
        .max_decoding_message_size(64 << 20);
        let producer = tokio::spawn(produce_files(
            self.sender.clone(),
            Arc::clone(&self.queue),
            Arc::clone(&pending),
            self.results.clone(),
            requests,
            Arc::new(Semaphore::new(settings.files_in_flight_per_stream.max(1))),
        ));
        let outcome = match client.ingest(ReceiverStream::new(outgoing)).await {
            Ok(response) => self.consume_answers(response.into_inner(), &pending).await,
            Err(status) => Err(status),
        };
        producer.abort();
        let _ = producer.await;
        let unanswered: Vec<Pending> = lock(&pending).drain(..).collect();
        if let Err(status) = &outcome {
            self.handle_unanswered(unanswered, status);
        } else if !unanswered.is_empty() {
            self.handle_unanswered(
                unanswered,
                &Status::unavailable("the stream ended before every file was answered"),
            );
        }
        outcome
    }

    async fn consume_answers(
        &self,
        mut answers: tonic::Streaming<pb::IngestResponse>,
        pending: &Mutex<VecDeque<Pending>>,
    ) -> Result<(), Status> {
        let timeout = self.sender.settings.answer_timeout;
        loop {
            let next = tokio::time::timeout(timeout, answers.message())
                .await
                .map_err(|_| {
                    Status::deadline_exceeded(format!(
                        "the aggregator answered nothing for {timeout:?}"
                    ))
                })?;
            let answer = match next? {
                Some(answer) => answer,
                None => return Ok(()),
            };
            let answered = lock(pending).pop_front();
            let Some(answered) = answered else {
                return Err(Status::internal(format!(
                    "answer for file {} that was not sent",
                    answer.file_seq
                )));
            };
            if answered.file_seq != answer.file_seq {
                return Err(Status::internal(format!(
                    "answer for file {} while file {} was due",
                    answer.file_seq, answered.file_seq
                )));
            }
            self.finish(answered.job, Ok(report_from_answer(answer)));
        }
    }

    fn handle_unanswered(&self, unanswered: Vec<Pending>, status: &Status) {
        let refusing = matches!(
            status.code(),
            Code::InvalidArgument
                | Code::ResourceExhausted
                | Code::FailedPrecondition
                | Code::PermissionDenied
                | Code::Unauthenticated
                | Code::Unimplemented
        );
        let mut retry = Vec::new();
        for (position, pending) in unanswered.into_iter().enumerate() {
            let mut job = pending.job;
            if refusing && position == 0 {
                // The file in flight when the aggregator refused: sending it again would fail
                // the same way.
                self.finish(job, Err(SendError::Refused(status.clone())));
                continue;
            }
            job.attempts += 1;
            if job.attempts >= self.sender.settings.max_attempts {
                let last = format!("{:?}: {}", status.code(), status.message());
                let attempts = job.attempts;
                self.finish(job, Err(SendError::GaveUp { attempts, last }));
            } else {
                retry.push(job);
            }
        }
        self.queue.requeue(retry);
    }

    fn finish(&self, job: Job, result: Result<FileReport, SendError>) {
        let _ = self.results.send(FileResult {
            origin: job.reader.origin().clone(),
            result,
        });
        self.queue.finish_one();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes files from the queue and streams them, while the window of unanswered files allows.
async fn produce_files(
    sender: IngestSender,
    queue: Arc<JobQueue>,
    pending: Arc<Mutex<VecDeque<Pending>>>,
    results: mpsc::UnboundedSender<FileResult>,
    requests: mpsc::Sender<pb::IngestRequest>,
    window: Arc<Semaphore>,
) {
    let mut file_seq = 0u64;
    loop {
        let Ok(permit) = Arc::clone(&window).acquire_owned().await else {
            return;
        };
        // Popping and recording as pending happen without an await between them, so a job
        // is never lost if this task is aborted.
        let Some(job) = queue.pop() else { return };
        file_seq += 1;
        let reader = Arc::clone(&job.reader);
        lock(&pending).push_back(Pending {
            file_seq,
            job,
            _permit: permit,
        });
        let opened = {
            let reader = Arc::clone(&reader);
            tokio::task::spawn_blocking(move || reader.open()).await
        };
        let input = match opened {
            Ok(Ok(input)) => input,
            Ok(Err(error)) => {
                forget_pending(&pending, file_seq, &queue, &results, SendError::Open(error));
                continue;
            }
            Err(join_error) => {
                let error = io::Error::other(join_error.to_string());
                forget_pending(&pending, file_seq, &queue, &results, SendError::Open(error));
                continue;
            }
        };
        let origin = reader.origin().clone();
        let limits = read_limits(&sender);
        let requests = requests.clone();
        let streamed = tokio::task::spawn_blocking(move || {
            stream_file(input, &origin, file_seq, limits, &requests)
        })
        .await;
        if !matches!(streamed, Ok(Ok(()))) {
            // The stream is closed: the consumer side handles what is pending.
            return;
        }
    }
}

fn forget_pending(
    pending: &Mutex<VecDeque<Pending>>,
    file_seq: u64,
    queue: &JobQueue,
    results: &mpsc::UnboundedSender<FileResult>,
    error: SendError,
) {
    let removed = {
        let mut pending = lock(pending);
        let position = pending.iter().position(|entry| entry.file_seq == file_seq);
        position.and_then(|position| pending.remove(position))
    };
    if let Some(removed) = removed {
        let _ = results.send(FileResult {
            origin: removed.job.reader.origin().clone(),
            result: Err(error),
        });
        queue.finish_one();
    }
}

fn read_limits(sender: &IngestSender) -> ReadLimits {
    let limits = sender.limits;
    let mut read_limits = sender.settings.read_limits;
    read_limits.max_record_bytes = limits
        .max_record_bytes
        .min(
            limits
                .max_request_bytes
                .saturating_sub(MESSAGE_OVERHEAD_BYTES),
        )
        .max(1);
    read_limits
}

/// The stream was closed while a file was being sent.
struct StreamClosed;

/// Reads one file and sends it as messages: the first carries the origin, the last the end.
fn stream_file(
    input: Box<dyn Read + Send>,
    origin: &LogFileOrigin,
    file_seq: u64,
    limits: ReadLimits,
    requests: &mpsc::Sender<pb::IngestRequest>,
) -> Result<(), StreamClosed> {
    let batch_bytes = (limits.max_record_bytes + MESSAGE_OVERHEAD_BYTES).max(4 << 20) / 2;
    let mut batch = MessageBatch::new(file_seq, Some(origin));
    let mut closed = false;
    let read = read_log_file(input, limits, |item| {
        let size = match &item {
            LogFileItem::Record { json, .. } => json.len(),
            LogFileItem::Rejected { reason, .. } => reason.len(),
        };
        let full = batch.bytes + size > batch_bytes || batch.items >= MAX_RECORDS_PER_MESSAGE;
        if full && requests.blocking_send(batch.take()).is_err() {
            closed = true;
            return std::ops::ControlFlow::Break(());
        }
        batch.push(item);
        std::ops::ControlFlow::Continue(())
    });
    if closed {
        return Err(StreamClosed);
    }
    let mut last = batch.take();
    last.end = Some(pb::FileEnd {
        records_read: read.records_read,
        content_sha256: read
            .content_sha256
            .map(|hash| hash.to_vec())
            .unwrap_or_default(),
        fault: read
            .fault
            .map(|fault| fault.to_string())
            .unwrap_or_default(),
    });
    requests.blocking_send(last).map_err(|_| StreamClosed)
}

struct MessageBatch {
    message: pb::IngestRequest,
    bytes: usize,
    items: usize,
}

impl MessageBatch {
    fn new(file_seq: u64, origin: Option<&LogFileOrigin>) -> MessageBatch {
        MessageBatch {
            message: pb::IngestRequest {
                file_seq,
                origin: origin.map(|origin| pb::LogFileOrigin {
                    source: origin.source.clone(),
                    bucket: origin.bucket.clone(),
                    object_key: origin.object_key.clone(),
                    etag: origin.etag.clone(),
                    last_modified: origin.last_modified.map(|time| prost_types::Timestamp {
                        seconds: time.timestamp(),
                        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
                    }),
                }),
                ..Default::default()
            },
            bytes: 0,
            items: 0,
        }
    }

    fn push(&mut self, item: LogFileItem) {
        self.items += 1;
        match item {
            LogFileItem::Record { index, json } => {
                self.bytes += json.len();
                self.message.records.push(pb::RawRecord {
                    index,
                    json: json.into_bytes(),
                });
            }
            LogFileItem::Rejected { index, reason } => {
                self.bytes += reason.len();
                self.message
                    .rejections
                    .push(pb::RecordRejection { index, reason });
            }
        }
    }

    /// The message so far; the batch goes on with the same file.
    fn take(&mut self) -> pb::IngestRequest {
        let next = MessageBatch::new(self.message.file_seq, None);
        self.bytes = 0;
        self.items = 0;
        std::mem::replace(&mut self.message, next.message)
    }
}

fn report_from_answer(answer: pb::IngestResponse) -> FileReport {
    let outcome = match pb::FileOutcome::try_from(answer.outcome) {
        Ok(pb::FileOutcome::AlreadyIngested) => FileOutcome::AlreadyIngested,
        _ => FileOutcome::Committed,
    };
    FileReport {
        outcome,
        accepted: answer.accepted,
        duplicates: answer.duplicates,
        rejected: answer.rejected,
        rejections: answer
            .rejections
            .into_iter()
            .map(|rejection| (rejection.index, rejection.reason))
            .collect(),
        fault: (!answer.fault.is_empty()).then_some(answer.fault),
    }
}

/// Exponential backoff, each delay drawn between half and all of its ceiling.
fn backoff(settings: &SenderSettings, failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let ceiling = settings
        .retry_delay
        .saturating_mul(1 << exponent)
        .min(settings.max_retry_delay);
    let random = RandomState::new().build_hasher().finish();
    let millis = ceiling.as_millis().max(1) as u64;
    Duration::from_millis(millis / 2 + random % (millis / 2 + 1))
}
