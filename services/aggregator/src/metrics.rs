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

/// Seconds from a log file's creation in S3 (its LastModified) to the commit of its events,
/// per source.
pub fn file_freshness(source: &str, seconds: f64) {
    Registry::global()
        .histogram(
            "orgtrail_ingest_freshness_seconds",
            "Seconds from a log file's creation in S3 (LastModified) to the commit of its events, per source.",
            &[("source", source)],
            &FRESHNESS_BUCKETS,
        )
        .observe(seconds);
}

/// From seconds (notifications) to an hour (a listing pass falling behind).
const FRESHNESS_BUCKETS: [f64; 12] = [
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];

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

/// A request to the CloudTrail-compatible endpoint answered: `OK` or CloudTrail's error code.
pub fn cloudtrail_api_request(code: &str) {
    Registry::global()
        .counter(
            "orgtrail_cloudtrail_api_requests_total",
            "Requests to the CloudTrail-compatible endpoint, by answer (OK or the error code).",
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

/// Events a newly stored file added to an alarm's metric filter.
pub fn alarm_filter_matched(alarm: &str, matches: u64) {
    Registry::global()
        .counter(
            "orgtrail_alarm_filter_matches_total",
            "Newly stored events that matched an alarm's metric filter, by alarm.",
            &[("alarm", alarm)],
        )
        .add(matches);
}

/// An alarm's state after an evaluation: 1 for the state it is in, 0 for the others.
pub fn alarm_state(alarm: &str, state: &str) {
    let registry = Registry::global();
    for candidate in ["OK", "ALARM", "INSUFFICIENT_DATA"] {
        registry
            .gauge(
                "orgtrail_alarm_state",
                "Each alarm's state: 1 for the state it is in.",
                &[("alarm", alarm), ("state", candidate)],
            )
            .set(u64::from(candidate == state));
    }
}

/// Notifications waiting in the outbox, and those given up after their attempts.
pub fn outbox_depth(pending: u64, failed: u64) {
    let registry = Registry::global();
    registry
        .gauge(
            "orgtrail_notifications_outbox",
            "Notifications in the outbox, by state (pending: to deliver; failed: given up).",
            &[("state", "pending")],
        )
        .set(pending);
    registry
        .gauge(
            "orgtrail_notifications_outbox",
            "Notifications in the outbox, by state (pending: to deliver; failed: given up).",
            &[("state", "failed")],
        )
        .set(failed);
}

/// A delivery attempt's result: delivered, retried (will be tried again) or failed (given up).
pub fn notification_delivery(kind: &str, result: &str) {
    Registry::global()
        .counter(
            "orgtrail_notification_deliveries_total",
            "Notification delivery attempts, by destination kind and result.",
            &[("kind", kind), ("result", result)],
        )
        .increment();
}

/// Findings a committed file raised: open ones, and suppressed ones (kept, counted).
pub fn findings_raised(raised: u64, suppressed: u64) {
    let registry = Registry::global();
    for (state, count) in [("raised", raised), ("suppressed", suppressed)] {
        registry
            .counter(
                "orgtrail_findings_total",
                "Findings of newly stored events, raised or suppressed.",
                &[("result", state)],
            )
            .add(count);
    }
}
