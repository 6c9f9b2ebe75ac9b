//! The end-to-end test kit: a `TestStack` (a fresh database in the throwaway PostgreSQL and
//! the real aggregator binary on loopback), the sample data with expectations computed from
//! the files, helpers to send files and messages, and the receiving ends of notifications
//! (a webhook receiver, SNS topics with SQS queues). Every wait is bounded.

pub mod aws_clients;
pub mod cli_process;
pub mod collector_process;
pub mod memory_file;
pub mod moto;
pub mod organization;
pub mod pki;
pub mod raw_ingest;
pub mod receiver;
pub mod rollups;
pub mod samples;
pub mod sealing;
pub mod sns;
pub mod stack;
pub mod trail;

pub use stack::{binary, AggregatorProcess, StackOptions, TestStack, WAIT};

use chrono::{DateTime, Utc};

/// "Now" for every aggregator under test (`clock.frozen_at`) and for every expectation the
/// tests compute: nothing a test checks depends on the day it runs.
pub const TEST_NOW: &str = "2026-11-30T12:00:00Z";

/// The value after `flag` in a binary's arguments (`--endpoint URL`), or why there is none.
pub fn flag_value(arguments: &[String], flag: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    let position = arguments
        .iter()
        .position(|argument| argument == flag)
        .with_context(|| format!("{flag} is required"))?;
    arguments
        .get(position + 1)
        .cloned()
        .with_context(|| format!("{flag} needs a value"))
}

/// [`TEST_NOW`] as a time.
pub fn test_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(TEST_NOW)
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_else(|error| panic!("TEST_NOW is not RFC 3339: {error}"))
}

use orgtrail_client::{FileResult, IngestSender, LogFileReader};
use std::sync::Arc;

/// Sends sample files (source "samples") through the stack's ingest sender; panics on any file
/// not delivered.
pub async fn ingest_sample_files(stack: &TestStack, files: &[samples::SampleFile]) {
    let sender = stack
        .ingest_sender(orgtrail_client::SenderSettings::default())
        .await;
    let readers: Vec<Arc<dyn LogFileReader>> = files
        .iter()
        .map(|file| {
            Arc::new(
                orgtrail_client::LocalLogFile::new(&file.path, "samples")
                    .unwrap_or_else(|error| panic!("{}: {error}", file.path.display())),
            ) as Arc<dyn LogFileReader>
        })
        .collect();
    for result in send_all(&sender, readers).await {
        result
            .result
            .unwrap_or_else(|error| panic!("{}: {error}", result.origin));
    }
}

/// Sends the files and returns one result per file (bounded by [`WAIT`] per file batch).
pub async fn send_all(
    sender: &IngestSender,
    files: Vec<Arc<dyn LogFileReader>>,
) -> Vec<FileResult> {
    let bound = WAIT * 5;
    let mut results = Vec::new();
    tokio::time::timeout(
        bound,
        sender.send_files(files, |result| results.push(result)),
    )
    .await
    .unwrap_or_else(|_| panic!("the files were not all answered within {bound:?}"));
    results
}

/// A bare HTTP GET of a metrics listener on loopback (bounded by 10 s); the answer, which must
/// be 200.
pub fn scrape_metrics(port: u16) -> String {
    use std::io::{Read, Write};
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = std::net::TcpStream::connect_timeout(&address, WAIT)
        .unwrap_or_else(|error| panic!("cannot reach the metrics listener {address}: {error}"));
    let bound = Some(std::time::Duration::from_secs(10));
    let _ = stream.set_read_timeout(bound);
    let _ = stream.set_write_timeout(bound);
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap_or_else(|error| panic!("metrics request: {error}"));
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .unwrap_or_else(|error| panic!("metrics answer: {error}"));
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    answer
}

/// A plaintext channel to a probe listener on loopback, as Kubernetes' gRPC probe connects.
pub async fn probe_channel(port: u16) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap_or_else(|error| panic!("probe endpoint: {error}"))
        .connect_timeout(WAIT)
        .timeout(WAIT)
        .connect()
        .await
        .unwrap_or_else(|error| panic!("cannot reach the health listener on {port}: {error}"))
}

/// The serving status (`grpc.health.v1`) of the server as a whole (service `""`) on a plaintext
/// probe listener.
pub async fn probe_health(channel: tonic::transport::Channel) -> i32 {
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap_or_else(|status| panic!("health check: {status}"))
        .into_inner()
        .status
}
