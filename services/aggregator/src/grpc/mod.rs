//! The gRPC adapters: wire types in, domain calls, wire types out. Handlers stay thin; the
//! rules live in `ingest` and `lookup`.

pub mod convert;
pub mod events_adapter;
pub mod ingest_adapter;
pub mod retention_adapter;
pub mod sources_adapter;
pub mod status;

pub use events_adapter::EventsAdapter;
pub use ingest_adapter::IngestAdapter;
pub use retention_adapter::{AuditAdapter, RetentionAdapter};
pub use sources_adapter::SourcesAdapter;
