//! `SigmaRuleSet`: rules compiled once into one rsigma `Engine` (which indexes the rules by the
//! fields and values they need, so a record is tried only against the rules it can match), then
//! asked about each record.

use std::collections::HashMap;

use rsigma_eval::Engine;
use serde_json::Value;

use super::cloudtrail_event::CloudTrailEvent;
use super::parse::parse_checked;
use super::{SigmaRule, SigmaRuleError};

/// Sigma rules compiled for evaluation. Compile once (at start, and again when the rules
/// change), then share it (`Send + Sync`; behind an `Arc`) among the tasks that evaluate records:
/// [`SigmaRuleSet::matches`] takes `&self` and keeps no state between records.
pub struct SigmaRuleSet {
    engine: Engine,
    /// The rules in the order given to `compile`.
    rules: Vec<SigmaRule>,
    /// Each rule's position in `rules`, by id: rsigma names a matched rule by its id.
    positions: HashMap<String, usize>,
}

impl SigmaRuleSet {
    /// Compiles `rules`, which [`super::parse_sigma_rule`] made: each rule's `yaml` is parsed and
    /// checked again, since a `SigmaRule` may have been deserialized or changed since, and must
    /// still give the same rule. Refused, naming the rule: a rule whose fields differ from what
    /// its yaml gives, a rule refused by `parse_sigma_rule`, and two rules with one id.
    pub fn compile(rules: &[SigmaRule]) -> Result<SigmaRuleSet, SigmaRuleError> {
        let mut positions = HashMap::with_capacity(rules.len());
        let mut parsed_rules = Vec::with_capacity(rules.len());
        for (position, rule) in rules.iter().enumerate() {
            let in_rule = |source: SigmaRuleError| SigmaRuleError::InRule {
                rule_id: rule.rule_id.clone(),
                source: Box::new(source),
            };
            let (checked, parsed) = parse_checked(&rule.yaml).map_err(in_rule)?;
            if checked != *rule {
                return Err(in_rule(SigmaRuleError::MetadataMismatch));
            }
            if positions.insert(rule.rule_id.clone(), position).is_some() {
                return Err(SigmaRuleError::DuplicateRuleId(rule.rule_id.clone()));
            }
            parsed_rules.push(parsed);
        }
        let mut engine = Engine::new();
        // Every rule compiled alone in parse_checked; a failure here would be rsigma's.
        if let Some((position, error)) = engine.add_rules(parsed_rules.iter()).into_iter().next() {
            let rule_id = rules
                .get(position)
                .map(|rule| rule.rule_id.clone())
                .unwrap_or_default();
            return Err(SigmaRuleError::InRule {
                rule_id,
                source: Box::new(SigmaRuleError::Compile(error.to_string())),
            });
        }
        Ok(SigmaRuleSet {
            engine,
            rules: rules.to_vec(),
            positions,
        })
    }

    /// Whether the set has no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// How many rules the set has.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The rules, in the order given to `compile`.
    pub fn rules(&self) -> &[SigmaRule] {
        &self.rules
    }

    /// The rules the record matches (each once), in the order given to compile.
    ///
    /// `record` is one CloudTrail record, already parsed (the same `Value` the filter patterns
    /// see); it is read in place, through an adapter that shows JSON objects as their text
    /// (`cloudtrail_event`). Sigma's semantics as rsigma implements them: string matching is
    /// case-insensitive unless `|cased`, `|re` is a case-sensitive search, `null` matches a
    /// missing field or JSON null, a dotted path crossing arrays matches if any element does.
    pub fn matches(&self, record: &Value) -> Vec<&SigmaRule> {
        let event = CloudTrailEvent::new(record);
        let mut positions: Vec<usize> = self
            .engine
            .evaluate(&event)
            .iter()
            .filter(|result| result.is_detection())
            .filter_map(|result| result.header.rule_id.as_deref())
            .filter_map(|rule_id| self.positions.get(rule_id).copied())
            .collect();
        positions.sort_unstable();
        positions.dedup();
        positions
            .into_iter()
            .filter_map(|position| self.rules.get(position))
            .collect()
    }
}

impl std::fmt::Debug for SigmaRuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigmaRuleSet")
            .field(
                "rule_ids",
                &self
                    .rules
                    .iter()
                    .map(|rule| rule.rule_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}
