//! Sigma detection rules over CloudTrail records: parse and check a rule
//! ([`parse_sigma_rule`]), compile a set once ([`SigmaRuleSet::compile`]), ask it which rules
//! each record matches ([`SigmaRuleSet::matches`]). SigmaHQ's 57 AWS CloudTrail rules are
//! built in ([`builtin_sigma_rules`]).
//!
//! ```
//! use orgtrail_detection::{parse_sigma_rule, SigmaLevel, SigmaRuleSet};
//!
//! let rule = parse_sigma_rule(
//!     "title: Versioning suspended
//! id: 6a3ec0a6-3c1f-4a4e-9a38-3c1b0f7d2a11
//! author: an operator
//! logsource: {product: aws, service: cloudtrail}
//! detection:
//!     selection:
//!         eventSource: s3.amazonaws.com
//!         eventName: PutBucketVersioning
//!         requestParameters|contains: Suspended
//!     condition: selection
//! level: medium
//! tags: [attack.impact, attack.t1490]",
//! )?;
//! assert_eq!(rule.level, SigmaLevel::Medium);
//! assert_eq!(rule.attack_techniques(), ["T1490"]);
//!
//! let rules = SigmaRuleSet::compile(&[rule])?;
//! let record = serde_json::json!({
//!     "eventSource": "s3.amazonaws.com",
//!     "eventName": "PutBucketVersioning",
//!     "requestParameters": {"VersioningConfiguration": {"Status": "Suspended"}},
//! });
//! let matched = rules.matches(&record);
//! assert_eq!(matched.len(), 1);
//! // The Detection Rule License asks every alert to carry the rule's author.
//! assert_eq!(matched[0].author.as_deref(), Some("an operator"));
//! # Ok::<(), orgtrail_detection::SigmaRuleError>(())
//! ```
//!
//! The evaluator is rsigma (`rsigma-parser` and `rsigma-eval` 0.23). What orgtrail evaluates
//! and refuses, and why, is in `docs/sigma.md`.
//!
//! Layout: `parse` (text → checked `SigmaRule`), `rule_set` (compile once, match records),
//! `cloudtrail_event` (how rsigma reads a record), `record_fields` (CloudTrail's top-level
//! fields), `error`.

mod cloudtrail_event;
mod error;
mod parse;
mod record_fields;
mod rule_set;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use error::SigmaRuleError;
pub use parse::parse_sigma_rule;
pub use record_fields::CLOUDTRAIL_RECORD_FIELDS;
pub use rule_set::SigmaRuleSet;

/// A Sigma rule's `level`, lowest first: `Informational < Low < Medium < High < Critical`.
/// Written lower-case, as Sigma writes it (`FromStr`, `as_str`, serde).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigmaLevel {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl SigmaLevel {
    /// All five, lowest first.
    pub const ALL: [SigmaLevel; 5] = [
        SigmaLevel::Informational,
        SigmaLevel::Low,
        SigmaLevel::Medium,
        SigmaLevel::High,
        SigmaLevel::Critical,
    ];

    /// The level as Sigma writes it: `informational`, `low`, `medium`, `high`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            SigmaLevel::Informational => "informational",
            SigmaLevel::Low => "low",
            SigmaLevel::Medium => "medium",
            SigmaLevel::High => "high",
            SigmaLevel::Critical => "critical",
        }
    }
}

impl fmt::Display for SigmaLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigmaLevel {
    type Err = SigmaRuleError;

    /// Sigma's spelling only (lower-case), as rsigma reads a rule's `level`.
    fn from_str(text: &str) -> Result<SigmaLevel, SigmaRuleError> {
        SigmaLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == text)
            .ok_or_else(|| SigmaRuleError::UnknownLevel(text.to_owned()))
    }
}

/// One Sigma detection rule, parsed and checked by [`parse_sigma_rule`]: what orgtrail keeps
/// about it besides the compiled matcher. `author` is kept because the Detection Rule License
/// (under which SigmaHQ's rules are published) requires every alert based on a match to carry
/// it, and rsigma's match result does not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigmaRule {
    /// The Sigma `id`; required, since orgtrail keys findings on it.
    pub rule_id: String,
    pub title: String,
    pub level: SigmaLevel,
    pub author: Option<String>,
    /// `stable`, `test`, `experimental`, `deprecated` or `unsupported`.
    pub status: Option<String>,
    pub description: Option<String>,
    pub references: Vec<String>,
    /// As written, e.g. `attack.t1078`, `attack.persistence`.
    pub tags: Vec<String>,
    /// The fields its detection reads (detection fields and `|fieldref` targets), as dotted
    /// paths, sorted, each once. Empty for a keyword rule.
    pub fields: Vec<String>,
    /// The rule's text as given, byte for byte.
    pub yaml: String,
}

impl SigmaRule {
    /// The MITRE ATT&CK techniques among the tags, upper-cased as ATT&CK writes them
    /// (`attack.t1078.004` → `T1078.004`), in the tags' order, each once. Tactics
    /// (`attack.persistence`), groups (`attack.g0016`) and software (`attack.s0002`) are not
    /// techniques.
    pub fn attack_techniques(&self) -> Vec<String> {
        attack_techniques(&self.tags)
    }
}

/// The MITRE ATT&CK techniques among Sigma tags (see [`SigmaRule::attack_techniques`]).
pub fn attack_techniques(tags: &[String]) -> Vec<String> {
    let mut techniques: Vec<String> = Vec::new();
    for tag in tags {
        let Some(technique) = tag
            .to_ascii_lowercase()
            .strip_prefix("attack.")
            .map(str::to_owned)
        else {
            continue;
        };
        if is_attack_technique(&technique) {
            let technique = technique.to_ascii_uppercase();
            if !techniques.contains(&technique) {
                techniques.push(technique);
            }
        }
    }
    techniques
}

/// `t` + 4 digits, optionally `.` + 3 digits (a sub-technique).
fn is_attack_technique(text: &str) -> bool {
    let Some(number) = text.strip_prefix('t') else {
        return false;
    };
    let (technique, sub_technique) = match number.split_once('.') {
        Some((technique, sub_technique)) => (technique, Some(sub_technique)),
        None => (number, None),
    };
    let digits = |text: &str, count: usize| {
        text.len() == count && text.bytes().all(|byte| byte.is_ascii_digit())
    };
    digits(technique, 4) && sub_technique.is_none_or(|sub_technique| digits(sub_technique, 3))
}

/// One of the rules built into orgtrail: SigmaHQ's file, byte for byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltinSigmaRule {
    /// The file's name in SigmaHQ's `rules/cloud/aws/cloudtrail/` (and in orgtrail's
    /// `data/sigma/rules/cloud/aws/cloudtrail/`).
    pub file_name: &'static str,
    /// The rule's text.
    pub yaml: &'static str,
}

/// SigmaHQ's 57 AWS CloudTrail rules, in file-name order, embedded at build time from
/// `data/sigma/rules/cloud/aws/cloudtrail/` (see `data/sigma/SOURCES.md` for the commit). They
/// are published under the Detection Rule License 1.1 ([`DETECTION_RULE_LICENSE`],
/// [`BUILTIN_SIGMA_RULES_ATTRIBUTION`]): whoever shows a match must show the rule's author.
///
/// Not every one of them passes [`parse_sigma_rule`]: AWS SAML Provider Deletion Activity reads
/// a field `status` that CloudTrail records do not have, so it could never match and is refused
/// like any rule with an unknown field (`docs/sigma.md`).
pub fn builtin_sigma_rules() -> &'static [BuiltinSigmaRule] {
    BUILTIN_SIGMA_RULES
}

/// Where the built-in rules come from and under what licence, to show beside them.
pub const BUILTIN_SIGMA_RULES_ATTRIBUTION: &str = "Sigma rules from SigmaHQ \
    (https://github.com/SigmaHQ/sigma, rules/cloud/aws/cloudtrail at commit \
    8eaafff1f2845a696050e05e72ba1140ee190698), each by the author named in its author field, \
    licensed under the Detection Rule License (DRL) 1.1 \
    (https://github.com/SigmaHQ/Detection-Rule-License)";

/// The text of the Detection Rule License 1.1, under which the built-in rules are published.
pub const DETECTION_RULE_LICENSE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/sigma/LICENSE.Detection.Rules.md"
));

/// Written by build.rs: one `BuiltinSigmaRule` per file, `yaml` an `include_str!` of it.
static BUILTIN_SIGMA_RULES: &[BuiltinSigmaRule] =
    include!(concat!(env!("OUT_DIR"), "/builtin_sigma_rules.rs"));

#[cfg(test)]
mod parse_tests;

#[cfg(test)]
mod evaluate_tests;
