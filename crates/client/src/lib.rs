//! The client side of orgtrail's gRPC API, shared by the `orgtrail` CLI and the collector:
//! connecting to the aggregator, sending log files over ingest streams, and plain text tables.

pub mod channel;
pub mod ingest_sender;
pub mod table;

pub use channel::{
    connect, connect_lazy, error_chain, stream_endpoint, AuthChannel, ClientSettings, ConnectError,
    Credentials, TlsFiles, Transport,
};
pub use ingest_sender::{
    FileOutcome, FileReport, FileResult, IngestSender, LocalLogFile, LogFileReader, SendError,
    SenderSettings, StartError,
};
pub use orgtrail_domain::LogFileOrigin;
