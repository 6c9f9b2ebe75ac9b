//! The Sigma rules' part of `cargo xtask bench filters`: what SigmaHQ's built-in rules cost per
//! event on their own, over the same generated events and the very same parsed `Value`s as the
//! CIS filters (`bench_filters` reads the events and hands each batch to both, in the release
//! xtask): every rule the aggregator uses compiled into one `SigmaRuleSet`, as the aggregator
//! compiles them, asked about each event; each rule alone (a set of one), the slowest few shown;
//! and how many events each rule matched — what the aggregator's Sigma findings must add up to
//! after ingesting the same events (`SigmaCounts`, which `bench ingest` checks).
//!
//! A batch is measured as many times as the filters' (`bench_filters::ROUNDS`) and the fastest round counts, as for the filters; the
//! matches are counted in one more pass, untimed, so that the timed passes do only what ingest
//! does: ask the set which rules a record matches.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use orgtrail_detection::{builtin_sigma_rules, parse_sigma_rule, SigmaRule, SigmaRuleSet};
use serde_json::Value;

use crate::bench_filters::fastest_round;

/// How many of the slowest rules alone to show.
const SLOWEST: usize = 5;

/// What the aggregator's Sigma findings over the same events must be: one finding per rule and
/// matching event.
#[derive(Debug, PartialEq, Eq)]
pub struct SigmaCounts {
    /// The built-in rules the aggregator uses (those `parse_sigma_rule` accepts).
    pub rules: u64,
    /// Events matched by at least one rule.
    pub events_matched: u64,
    /// Matching events per rule id; rules that matched nothing are left out.
    pub events_per_rule: BTreeMap<String, u64>,
}

impl SigmaCounts {
    /// The sum over the rules: the number of findings.
    pub fn findings(&self) -> u64 {
        self.events_per_rule.values().sum()
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "rules": self.rules,
            "events_matched": self.events_matched,
            "events_per_rule": self.events_per_rule,
        })
    }

    pub fn from_json(json: &Value) -> anyhow::Result<SigmaCounts> {
        let number = |name: &str| {
            json.get(name)
                .and_then(Value::as_u64)
                .with_context(|| format!("no number {name} in the Sigma counts"))
        };
        let events_per_rule = json
            .get("events_per_rule")
            .and_then(Value::as_object)
            .context("no events_per_rule in the Sigma counts")?
            .iter()
            .map(|(rule_id, events)| {
                let events = events
                    .as_u64()
                    .with_context(|| format!("the count of rule {rule_id} is not a number"))?;
                Ok((rule_id.clone(), events))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(SigmaCounts {
            rules: number("rules")?,
            events_matched: number("events_matched")?,
            events_per_rule,
        })
    }
}

/// The built-in rules the aggregator uses, and those it refuses, by file name with the reason.
pub fn usable_builtin_sigma_rules() -> (Vec<SigmaRule>, Vec<(&'static str, String)>) {
    let mut rules = Vec::new();
    let mut refused = Vec::new();
    for builtin in builtin_sigma_rules() {
        match parse_sigma_rule(builtin.yaml) {
            Ok(rule) => rules.push(rule),
            Err(error) => refused.push((builtin.file_name, error.to_string())),
        }
    }
    (rules, refused)
}

/// One rule alone, as a set of one.
struct RuleCost {
    rule_set: SigmaRuleSet,
    time: Duration,
    matches: u64,
}

/// The measurement, batch by batch.
pub struct SigmaCosts {
    rule_set: SigmaRuleSet,
    compile_time: Duration,
    refused: Vec<(&'static str, String)>,
    /// Each rule's position in the set, by id.
    positions: HashMap<String, usize>,
    alone: Vec<RuleCost>,
    records: u64,
    /// The whole set on each record.
    together: Duration,
    /// Matching events per rule, by position, from the whole set.
    events_per_rule: Vec<u64>,
    events_matched: u64,
}

impl SigmaCosts {
    /// Compiles the built-in rules the aggregator uses into one set, and each into a set of its
    /// own.
    pub fn compile() -> anyhow::Result<SigmaCosts> {
        let (rules, refused) = usable_builtin_sigma_rules();
        if rules.is_empty() {
            bail!("no built-in Sigma rule parses");
        }
        let started = Instant::now();
        let rule_set =
            SigmaRuleSet::compile(&rules).context("the built-in Sigma rules do not compile")?;
        let compile_time = started.elapsed();
        let alone = rules
            .iter()
            .map(|rule| {
                let rule_set = SigmaRuleSet::compile(std::slice::from_ref(rule))
                    .with_context(|| format!("the Sigma rule {} does not compile", rule.title))?;
                Ok(RuleCost {
                    rule_set,
                    time: Duration::ZERO,
                    matches: 0,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let positions = rules
            .iter()
            .enumerate()
            .map(|(position, rule)| (rule.rule_id.clone(), position))
            .collect();
        Ok(SigmaCosts {
            events_per_rule: vec![0; rules.len()],
            rule_set,
            compile_time,
            refused,
            positions,
            alone,
            records: 0,
            together: Duration::ZERO,
            events_matched: 0,
        })
    }

    /// Measures one batch of records, parsed once.
    pub fn measure_batch(&mut self, records: &[Value]) {
        let rule_set = &self.rule_set;
        self.together += fastest_round(|| {
            for record in records {
                black_box(black_box(rule_set).matches(black_box(record)));
            }
        });
        for record in records {
            let matched = rule_set.matches(record);
            if !matched.is_empty() {
                self.events_matched += 1;
            }
            for rule in matched {
                if let Some(position) = self.positions.get(&rule.rule_id) {
                    self.events_per_rule[*position] += 1;
                }
            }
        }
        for cost in &mut self.alone {
            let mut matches = 0;
            cost.time += fastest_round(|| {
                matches = records
                    .iter()
                    .filter(|record| {
                        !black_box(&cost.rule_set)
                            .matches(black_box(record))
                            .is_empty()
                    })
                    .count();
            });
            cost.matches += matches as u64;
        }
        self.records += records.len() as u64;
    }

    /// What the aggregator's findings over the same records must be.
    pub fn counts(&self) -> SigmaCounts {
        SigmaCounts {
            rules: self.rule_set.len() as u64,
            events_matched: self.events_matched,
            events_per_rule: self
                .rule_set
                .rules()
                .iter()
                .zip(&self.events_per_rule)
                .filter(|(_, events)| **events > 0)
                .map(|(rule, events)| (rule.rule_id.clone(), *events))
                .collect(),
        }
    }

    /// Nanoseconds per record of the whole set.
    pub fn nanoseconds_per_record(&self) -> f64 {
        self.together.as_secs_f64() * 1e9 / self.records.max(1) as f64
    }

    /// How many rules the set has.
    pub fn rules(&self) -> usize {
        self.rule_set.len()
    }

    /// The table `bench filters` prints after the filters'.
    pub fn print(&self) {
        let records = self.records.max(1) as f64;
        let rate = |time: Duration| records / time.as_secs_f64();
        let nanoseconds = |time: Duration| time.as_secs_f64() * 1e9 / records;
        let rules = self.rule_set.len();
        println!(
            "Sigma rules on their own: the same {} events and parsed Values, one thread, release",
            self.records
        );
        println!(
            "  {rules} of SigmaHQ's {} built-in rules, as the aggregator uses them, compiled into one set in {:.1} ms",
            rules + self.refused.len(),
            self.compile_time.as_secs_f64() * 1e3
        );
        for (file_name, reason) in &self.refused {
            // The reason's first clause (the rest lists CloudTrail's fields).
            let reason = reason.split(" (").next().unwrap_or(reason);
            println!("  not used (refused by design): {file_name}: {reason}");
        }
        println!(
            "  {:<10} {:>12} {:>10} {:>9}  rule",
            "rules", "events/s", "ns/event", "events"
        );
        println!(
            "  {:<10} {:>12.0} {:>10.1} {:>9}  every event through the one set, as ingest does",
            format!("all {rules}"),
            rate(self.together),
            nanoseconds(self.together),
            self.events_matched
        );
        let mut slowest: Vec<(&SigmaRule, &RuleCost)> =
            self.rule_set.rules().iter().zip(&self.alone).collect();
        slowest.sort_by_key(|(_, cost)| std::cmp::Reverse(cost.time));
        let summed: Duration = self.alone.iter().map(|cost| cost.time).sum();
        println!(
            "  each rule alone (a set of one): {:.1} ns/event summed over the {rules}; the {} slowest:",
            nanoseconds(summed),
            SLOWEST.min(rules)
        );
        for (rule, cost) in slowest.iter().take(SLOWEST) {
            println!(
                "  {:<10} {:>12.0} {:>10.1} {:>9}  {} ({})",
                "alone",
                rate(cost.time),
                nanoseconds(cost.time),
                cost.matches,
                rule.title,
                rule.level
            );
        }
        let matching: Vec<(&SigmaRule, u64)> = self
            .rule_set
            .rules()
            .iter()
            .zip(self.events_per_rule.iter().copied())
            .filter(|(_, events)| *events > 0)
            .collect();
        println!(
            "  {} of the {} events ({:.2} %) matched at least one rule; {} of the {rules} rules matched, {} findings in all (one per rule and event):",
            self.events_matched,
            self.records,
            self.events_matched as f64 * 100.0 / records,
            matching.len(),
            self.counts().findings()
        );
        let mut by_events = matching;
        by_events.sort_by(|(_, a), (_, b)| b.cmp(a));
        for (rule, events) in by_events {
            println!(
                "  {:>9} events  {} ({}, {})",
                events, rule.title, rule.level, rule.rule_id
            );
        }
        let disagreeing: Vec<&str> = self
            .rule_set
            .rules()
            .iter()
            .zip(&self.alone)
            .zip(&self.events_per_rule)
            .filter(|((_, alone), together)| alone.matches != **together)
            .map(|((rule, _), _)| rule.title.as_str())
            .collect();
        if !disagreeing.is_empty() {
            println!(
                "  alone and in the set, these rules matched different events: {}",
                disagreeing.join("; ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counts_read_back_from_their_json() {
        let counts = SigmaCounts {
            rules: 56,
            events_matched: 7,
            events_per_rule: BTreeMap::from([("a".to_string(), 5), ("b".to_string(), 3)]),
        };
        assert_eq!(SigmaCounts::from_json(&counts.to_json()).ok(), Some(counts));
    }
}
