//! SQL over the whole organization's history, as CloudTrail Lake answers it: Apache DataFusion
//! with one table, `events`, in Lake's column names (`eventtime`, `eventsource`, `eventname`,
//! `awsregion`, `recipientaccountid`, `useridentity` as a struct, `requestparameters` and the
//! other free-form fields as JSON text with Presto's `json_extract` and `json_extract_scalar`,
//! `eventjson`, …), over the Parquet archive (`crates/archive`) and the events not archived
//! yet, as one relation.
//!
//! - [`archive_table`]: the archived objects as a table whose scan opens only the objects a
//!   query's predicates on time, account and region can reach.
//! - [`geoip`]: `ip_country`, from a GeoIP country database the operator configures.
//! - [`lake_view`]: the `events` view over the archive's schema, narrowed to a caller's
//!   accounts inside the view's own plan.
//! - [`json_functions`]: `json_extract_scalar` and `json_extract` (a JSONPath subset).
//! - [`query_guard`]: only a query reading `events` runs: statements, DDL, DML and `COPY` are
//!   refused before planning and the plan is checked node by node.
//! - [`engine`]: [`SqlEngine`] runs one query within limits of time, memory and result rows.
//!
//! No network, no database: the caller hands the archive's objects in (local Parquet files)
//! and the events not archived yet (Arrow batches of the archive's schema).

pub mod archive_table;
pub mod engine;
pub mod geoip;
pub mod json_functions;
pub mod lake_view;
pub mod query_guard;

pub use archive_table::{archive_files_under, ArchiveFile, ObjectFetcher};
pub use engine::{EventSources, QueryResult, QueryScope, Reach, SqlEngine, SqlError, SqlLimits};
pub use geoip::{GeoIpDatabase, GeoIpError};
pub use lake_view::{lake_columns, EVENTS_TABLE};
