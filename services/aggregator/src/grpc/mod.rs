//! The gRPC adapters: wire types in, domain calls, wire types out. Handlers stay thin; the
//! rules live in the domain services (`ingest`, `lookup`, `sources`, `retention`, `auth`).
//! Everything that knows tonic or the generated types is here: the server and its tower
//! stack (`server`), authentication and limits as layers, and the one table of error → code
//! (`status`).

pub mod alarms_adapter;
pub mod auth_layer;
pub mod convert;
pub mod detections_adapter;
pub mod events_adapter;
pub mod ingest_adapter;
pub mod insights_adapter;
pub mod keys_adapter;
pub mod limit_layer;
pub mod quarantine_adapter;
pub mod query_adapter;
pub mod retention_adapter;
mod server;
pub mod sources_adapter;
pub mod status;
pub mod tokens_adapter;

pub use alarms_adapter::{AlarmsAdapter, NotificationsAdapter};
pub use detections_adapter::{FindingsAdapter, RulesAdapter};
pub use events_adapter::EventsAdapter;
pub use ingest_adapter::IngestAdapter;
pub use insights_adapter::InsightsAdapter;
pub use keys_adapter::KeysAdapter;
pub use quarantine_adapter::QuarantineAdapter;
pub use query_adapter::QueryAdapter;
pub use retention_adapter::{AuditAdapter, RetentionAdapter};
pub use server::{load_tls, serve_grpc, DomainServices, GrpcServeError, GrpcTls};
pub use sources_adapter::SourcesAdapter;
pub use tokens_adapter::TokensAdapter;
