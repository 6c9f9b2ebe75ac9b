//! The collector's Prometheus series (served at `metrics_listen`): source passes, files and
//! events per pass, failures per source.

use orgtrail_service_runtime::metrics::Registry;

use crate::source_pass::SourceOutcome;

/// Counts the outcome of one source's pass.
pub fn source_visited(source: &str, outcome: &SourceOutcome) {
    let registry = Registry::global();
    let result = match outcome {
        SourceOutcome::Read(_) => "read",
        SourceOutcome::Failed(_) => "failed",
        SourceOutcome::LeasedElsewhere(_) => "leased_elsewhere",
    };
    registry
        .counter(
            "orgtrail_collector_source_passes_total",
            "Passes over a source, by result (read, failed, leased by another collector).",
            &[("result", result)],
        )
        .increment();
    match outcome {
        SourceOutcome::Read(report) => {
            let counts = &report.counts;
            for (outcome, files) in [
                ("committed", counts.committed),
                ("already_ingested", counts.already_ingested),
                ("fault", counts.faults),
            ] {
                registry
                    .counter(
                        "orgtrail_collector_files_total",
                        "Log files sent to the aggregator, by outcome.",
                        &[("outcome", outcome)],
                    )
                    .add(files as u64);
            }
            registry
                .counter(
                    "orgtrail_collector_events_stored_total",
                    "Events the aggregator stored from this collector's files.",
                    &[],
                )
                .add(counts.events_stored);
            let region_errors = report.errors().count() as u64;
            if region_errors > 0 {
                source_failed(source, region_errors);
            }
        }
        SourceOutcome::Failed(_) => source_failed(source, 1),
        SourceOutcome::LeasedElsewhere(_) => {}
    }
}

fn source_failed(source: &str, count: u64) {
    Registry::global()
        .counter(
            "orgtrail_collector_source_errors_total",
            "Errors reading a source (the whole source, or one account and region of it).",
            &[("source", source)],
        )
        .add(count);
}
