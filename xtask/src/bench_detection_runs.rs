//! The secure runs of `cargo xtask bench ingest`, each into a fresh database with a different
//! set of detections on (`Detections`: none, the CIS alarms alone, the CIS alarms and SigmaHQ's
//! rules): that the aggregator made the alarms and rules it should, the time and the CPU per
//! event of the aggregator and PostgreSQL (from `/proc`), and what the detectors stored — the
//! sum of `alarm_matches`, the Sigma findings as events per rule — which must be what the same
//! detectors match in-process over the same events (`bench_filters`, `bench_rules`).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context};

use crate::bench::{count, signed_percent, time_grpc_ingest, IngestBenchOptions};
use crate::bench_filters::DetectionBenchReport;
use crate::bench_rules::SigmaCounts;
use crate::postgres::ThrowawayPostgres;
use crate::processes::{start_aggregator, ChildProcess, Security};

/// How much slower ingest may be with every detection on than with none (issue 13).
pub const SLOWDOWN_TARGET: f64 = 0.15;

/// Which detections a secure run has on.
#[derive(Clone, Copy)]
pub struct Detections {
    cis: bool,
    sigma: bool,
}

impl Detections {
    pub const OFF: Detections = Detections {
        cis: false,
        sigma: false,
    };
    pub const CIS_ONLY: Detections = Detections {
        cis: true,
        sigma: false,
    };
    /// As by default.
    pub const ALL: Detections = Detections {
        cis: true,
        sigma: true,
    };

    /// The aggregator's settings for them (every detection on is the default; Insights are off).
    fn environment(self) -> Vec<(&'static str, &'static str)> {
        // Insights off in every run: their rounds over the generated history would share the
        // machine with ingest unevenly (`bench insights` measures them and the rollups).
        let mut environment = vec![("ORGTRAIL_INSIGHTS__ENABLED", "false")];
        if !self.cis {
            environment.push(("ORGTRAIL_ALARMS__CIS_BUILTIN", "false"));
        }
        if !self.sigma {
            environment.push(("ORGTRAIL_DETECTIONS__SIGMAHQ_RULES", "false"));
        }
        environment
    }

    pub fn label(self, cis_alarms: usize, sigma_rules: u64) -> String {
        match (self.cis, self.sigma) {
            (false, false) => "everything off (no alarm, no Sigma rule)".to_string(),
            (true, false) => format!("CIS set only ({cis_alarms} alarms)"),
            (false, true) => format!("Sigma rules only ({sigma_rules})"),
            (true, true) => {
                format!("everything on ({cis_alarms} alarms, {sigma_rules} Sigma rules; default)")
            }
        }
    }

    /// For the aggregator's log file.
    fn slug(self) -> &'static str {
        match (self.cis, self.sigma) {
            (false, false) => "detections-off",
            (true, false) => "cis-only",
            (false, true) => "sigma-only",
            (true, true) => "detections-on",
        }
    }
}

/// What every secure run of the ingest benchmark shares.
pub struct IngestRuns<'a> {
    pub bin_dir: &'a Path,
    pub postgres: &'a ThrowawayPostgres,
    pub work: &'a Path,
    pub data: &'a Path,
    pub options: &'a IngestBenchOptions,
    /// What the detectors matched in-process over the same events.
    pub expected: &'a DetectionBenchReport,
}

/// One secure run: its time, its CPU per event, and what its detectors stored.
pub struct SecureRun {
    pub detections: Detections,
    pub seconds: f64,
    pub cpu: CpuPerEvent,
    pub stored: StoredDetections,
}

/// What a run's database holds of the detections after the ingest.
pub struct StoredDetections {
    pub alarm_matches: u64,
    pub transitions: u64,
    /// From the findings of kind `sigma` (`rules`: the Sigma rules made at start).
    pub sigma: SigmaCounts,
}

impl IngestRuns<'_> {
    /// Starts a secure aggregator on `database` (which exists) with `detections` on, checks
    /// that it made the alarms and rules it should, ingests the data and reads back what the
    /// detectors stored. The aggregator is left running (for lookups), with its endpoint.
    pub fn secure_run(
        &self,
        security: Security<'_>,
        detections: Detections,
        database: &str,
    ) -> anyhow::Result<(ChildProcess, String, SecureRun)> {
        let (aggregator, address) = start_aggregator(
            self.bin_dir,
            &self.postgres.url(database),
            &self
                .work
                .join(format!("aggregator-{}.log", detections.slug())),
            &detections.environment(),
            security,
        )?;
        let cis_alarms = count(
            self.postgres,
            database,
            "SELECT count(*) FROM alarms WHERE cis_id IS NOT NULL AND deleted_at IS NULL",
        )?;
        let expected_alarms = if detections.cis {
            orgtrail_detection::cis_metric_filters().len() as u64
        } else {
            0
        };
        if cis_alarms != expected_alarms {
            bail!(
                "{cis_alarms} CIS alarms made at start with {:?}, {expected_alarms} expected",
                detections.environment()
            );
        }
        let sigma_rules = count(
            self.postgres,
            database,
            "SELECT count(*) FROM sigma_rules WHERE deleted_at IS NULL",
        )?;
        let expected_rules = if detections.sigma {
            self.expected.sigma.rules
        } else {
            0
        };
        if sigma_rules != expected_rules {
            bail!(
                "{sigma_rules} Sigma rules made at start with {:?}, {expected_rules} expected (the built-in rules parse_sigma_rule accepts)",
                detections.environment()
            );
        }
        let endpoint = security.endpoint(address);
        let cpu = CpuUse::start(&aggregator, self.postgres)?;
        let seconds = time_grpc_ingest(self.bin_dir, &endpoint, security, self.data, self.options)?;
        let cpu = cpu.end(&aggregator, self.postgres, self.options.events)?;
        let stored = StoredDetections {
            // Every file's rows are written in the transaction of its events.
            alarm_matches: count(
                self.postgres,
                database,
                "SELECT coalesce(sum(matches), 0) FROM alarm_matches",
            )?,
            transitions: count(
                self.postgres,
                database,
                "SELECT count(*) FROM alarm_transitions",
            )?,
            sigma: stored_sigma_counts(self.postgres, database, sigma_rules)?,
        };
        let run = SecureRun {
            detections,
            seconds,
            cpu,
            stored,
        };
        Ok((aggregator, endpoint, run))
    }
}

impl SecureRun {
    pub fn rate(&self, events: f64) -> f64 {
        events / self.seconds
    }

    /// Where what the run's detectors stored differs from what the same detectors matched
    /// in-process (nothing, for those that were off).
    pub fn wrong_detections(&self, expected: &DetectionBenchReport) -> Vec<String> {
        let label = self.detections.slug();
        let mut wrong = Vec::new();
        let alarm_matches = if self.detections.cis {
            expected.cis_matches
        } else {
            0
        };
        if self.stored.alarm_matches != alarm_matches {
            wrong.push(format!(
                "{label}: the aggregator counted {} matches of the CIS alarms, {alarm_matches} expected from the same filters in-process",
                self.stored.alarm_matches
            ));
        }
        let no_findings = SigmaCounts {
            rules: 0,
            events_matched: 0,
            events_per_rule: Default::default(),
        };
        let findings = if self.detections.sigma {
            &expected.sigma
        } else {
            &no_findings
        };
        let stored = &self.stored.sigma;
        if stored.events_matched != findings.events_matched
            || stored.events_per_rule != findings.events_per_rule
        {
            let differing: Vec<String> = stored
                .events_per_rule
                .keys()
                .chain(findings.events_per_rule.keys())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter_map(|rule_id| {
                    let stored = stored.events_per_rule.get(rule_id).copied().unwrap_or(0);
                    let in_process = findings.events_per_rule.get(rule_id).copied().unwrap_or(0);
                    (stored != in_process).then(|| {
                        format!("rule {rule_id}: {stored} stored, {in_process} in-process")
                    })
                })
                .collect();
            wrong.push(format!(
                "{label}: the aggregator's Sigma findings are on {} events, {} findings, the same rules in-process match {} events, {} findings ({})",
                stored.events_matched,
                stored.findings(),
                findings.events_matched,
                findings.findings(),
                differing.join(", ")
            ));
        }
        wrong
    }
}

/// The Sigma findings stored in `database`, as events per rule (a Sigma finding is one rule's
/// match on one event).
fn stored_sigma_counts(
    postgres: &ThrowawayPostgres,
    database: &str,
    rules: u64,
) -> anyhow::Result<SigmaCounts> {
    let events_matched = count(
        postgres,
        database,
        "SELECT count(DISTINCT event_id) FROM findings, unnest(event_ids) AS event_id WHERE kind = 'sigma'",
    )?;
    let sql = "SELECT rule_id, sum(cardinality(event_ids)) FROM findings WHERE kind = 'sigma' GROUP BY rule_id";
    let answer = postgres.psql(database, sql)?;
    let events_per_rule = answer
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (rule_id, events) = line
                .split_once('|')
                .with_context(|| format!("{sql} answered {line:?}"))?;
            let events = events
                .trim()
                .parse()
                .with_context(|| format!("{sql} answered {line:?}"))?;
            Ok((rule_id.to_string(), events))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(SigmaCounts {
        rules,
        events_matched,
        events_per_rule,
    })
}

/// `  NAME against everything off: R against R events/s, ±x %; CPU per event …`.
pub fn compare_runs(name: &str, run: &SecureRun, off: &SecureRun, events: f64) -> String {
    format!(
        "  {name} against everything off: {:.0} against {:.0} events/s, {}; CPU per event: aggregator {}, PostgreSQL {}, both {}",
        run.rate(events),
        off.rate(events),
        signed_percent(run.rate(events) / off.rate(events) - 1.0),
        signed_percent(run.cpu.aggregator_microseconds / off.cpu.aggregator_microseconds - 1.0),
        signed_percent(run.cpu.postgres_microseconds / off.cpu.postgres_microseconds - 1.0),
        signed_percent(run.cpu.both_microseconds() / off.cpu.both_microseconds() - 1.0),
    )
}

/// The CPU the aggregator and PostgreSQL used during a run, per event.
pub struct CpuPerEvent {
    pub aggregator_microseconds: f64,
    pub postgres_microseconds: f64,
}

impl CpuPerEvent {
    pub fn both_microseconds(&self) -> f64 {
        self.aggregator_microseconds + self.postgres_microseconds
    }
}

/// CPU seconds at the start of a run.
pub struct CpuUse {
    aggregator: f64,
    postgres: f64,
}

impl CpuUse {
    pub fn start(
        aggregator: &ChildProcess,
        postgres: &ThrowawayPostgres,
    ) -> anyhow::Result<CpuUse> {
        Ok(CpuUse {
            aggregator: aggregator.cpu_seconds()?,
            postgres: postgres.cpu_seconds()?,
        })
    }

    pub fn end(
        self,
        aggregator: &ChildProcess,
        postgres: &ThrowawayPostgres,
        events: usize,
    ) -> anyhow::Result<CpuPerEvent> {
        let per_event = |seconds: f64| seconds * 1e6 / events as f64;
        Ok(CpuPerEvent {
            aggregator_microseconds: per_event(aggregator.cpu_seconds()? - self.aggregator),
            postgres_microseconds: per_event(postgres.cpu_seconds()? - self.postgres),
        })
    }
}
