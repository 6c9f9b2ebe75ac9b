//! The gRPC adapters: wire types in, domain calls, wire types out. Handlers stay thin; the
//! rules live in `ingest` and `lookup`.

pub mod convert;
pub mod events_adapter;
pub mod ingest_adapter;
pub mod keys_adapter;
pub mod quarantine_adapter;
pub mod retention_adapter;
pub mod sources_adapter;
pub mod status;
pub mod tokens_adapter;

pub use events_adapter::EventsAdapter;
pub use ingest_adapter::IngestAdapter;
pub use keys_adapter::KeysAdapter;
pub use quarantine_adapter::QuarantineAdapter;
pub use retention_adapter::{AuditAdapter, RetentionAdapter};
pub use sources_adapter::SourcesAdapter;
pub use tokens_adapter::TokensAdapter;
