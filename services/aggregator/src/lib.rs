//! orgtrail-aggregator: the central gRPC service. Takes CloudTrail log files from collectors,
//! dedupes and stores their events in PostgreSQL, and serves lookups over the consolidated view.
//!
//! Layers: `grpc` (adapters) → `ingest`, `lookup` (domain services) → `store` (the only SQL).
//! `server` composes them; `config` is what the binary runs on.

pub mod alarm_evaluation;
pub mod alarms;
pub mod archive;
pub mod auth;
pub mod cloudtrail_api;
pub mod config;
pub mod crypto;
pub mod detection;
pub mod drain;
pub mod findings;
pub mod grpc;
pub mod ingest;
pub mod insights;
pub mod kms;
pub mod lookup;
pub mod metrics;
pub mod notify;
pub mod query;
pub mod rate_limits;
pub mod retention;
pub mod role;
pub mod server;
pub mod sigma_rules;
pub mod sources;
pub mod store;
