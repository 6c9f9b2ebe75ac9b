//! The aggregator's Prometheus series (served at `server.metrics_listen`): what was ingested,
//! what was refused, what retention deleted. Names follow Prometheus conventions (`_total` for
//! counters).

use orgtrail_service_runtime::metrics::Registry;

/// A log file finished: `committed` (stored) or `already_ingested` (taken before, nothing
/// stored), with its record counts.
pub fn file_finished(outcome: &str, accepted: u64, duplicates: u64, rejected: u64) {
    let registry = Registry::global();
    registry
        .counter(
            "orgtrail_ingest_files_total",
            "Log files finished, by outcome.",
            &[("outcome", outcome)],
        )
        .increment();
    for (kind, count) in [
        ("stored", accepted),
        ("duplicate", duplicates),
        ("rejected", rejected),
    ] {
        registry
            .counter(
                "orgtrail_ingest_records_total",
                "Records of committed log files: stored, duplicates of stored events, rejected (quarantined).",
                &[("result", kind)],
            )
            .add(count);
    }
}

/// A call refused by authentication or authorization, by gRPC code.
pub fn call_refused(code: &str) {
    Registry::global()
        .counter(
            "orgtrail_calls_refused_total",
            "Calls refused by authentication or role checks, by gRPC status code.",
            &[("code", code)],
        )
        .increment();
}

/// A retention enforcement run finished.
pub fn retention_run(status: &str, events_deleted: u64, partitions_dropped: u64) {
    let registry = Registry::global();
    registry
        .counter(
            "orgtrail_retention_runs_total",
            "Retention enforcement runs, by final status.",
            &[("status", status)],
        )
        .increment();
    registry
        .counter(
            "orgtrail_retention_events_deleted_total",
            "Events deleted by retention enforcement.",
            &[],
        )
        .add(events_deleted);
    registry
        .counter(
            "orgtrail_retention_partitions_dropped_total",
            "Day partitions dropped whole by retention enforcement.",
            &[],
        )
        .add(partitions_dropped);
}
