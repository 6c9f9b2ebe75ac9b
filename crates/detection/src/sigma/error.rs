//! Why a Sigma rule was refused. Every message names what is wrong in the rule's own terms (its
//! field, its logsource, its correlation type), so an operator can fix the rule from the
//! message alone, and the gRPC adapter can pass it on as it is.

/// A Sigma rule that orgtrail cannot evaluate, or a rule set it cannot compile. Messages are
/// lowercase without a final period, as all of orgtrail's errors.
#[derive(Debug, thiserror::Error)]
pub enum SigmaRuleError {
    /// The text is not YAML at all (rsigma's YAML error, with its line and column).
    #[error("the rule is not YAML: {0}")]
    NotYaml(String),
    /// The text is YAML but not a valid Sigma rule: rsigma's errors for each document,
    /// including those it reports without failing (an unknown `level`, a bad `related` entry).
    #[error("the rule is not a valid Sigma rule: {0}")]
    NotSigma(String),
    /// The text holds no Sigma detection rule (an empty text, or only `action: global`).
    #[error("the text holds no Sigma rule")]
    NoRule,
    /// One text is one rule: its `yaml`, `id` and findings belong together.
    #[error("the text holds {0} rules: give one rule per text (one file per rule)")]
    SeveralRules(usize),
    /// orgtrail keys findings on the rule's `id`.
    #[error("the rule has no id: orgtrail keys its findings on the Sigma id (add id: <a UUID>)")]
    NoId,
    /// A finding needs a severity, and guessing one would be worse than asking.
    #[error("the rule has no level: add level: informational, low, medium, high or critical")]
    NoLevel,
    /// `level` (or a text given to `SigmaLevel::from_str`) is not one of Sigma's five levels.
    #[error("level {0} is not one of informational, low, medium, high, critical")]
    UnknownLevel(String),
    /// The rule is for another log source; orgtrail holds CloudTrail records only.
    #[error("logsource is {0}, not product: aws service: cloudtrail")]
    NotCloudTrail(String),
    /// Correlation rules need state across events, which orgtrail cannot keep right (see
    /// docs/sigma.md): each event is evaluated on the aggregator replica that stores it, and
    /// rsigma's correlation state lives in one process's memory.
    #[error(
        "correlation rules ({0}) are not supported: orgtrail evaluates each event on whichever \
         aggregator replica stores it, and rsigma keeps correlation state in one process's \
         memory, so a correlation would see only part of the events and would not give the same \
         result under replay"
    )]
    Correlation(String),
    /// Sigma filter documents (`filter:`) change other rules; orgtrail evaluates each rule on
    /// its own.
    #[error(
        "sigma filter rules are not supported: write the exclusion into the rule's own detection \
         (… and not filter_…)"
    )]
    FilterRule,
    /// `|expand` needs a processing pipeline to fill its placeholders, and orgtrail has none;
    /// rsigma 0.23 would load the rule and never expand them.
    #[error("|expand placeholders ({0}) are not supported: write the values into the rule")]
    ExpandPlaceholders(String),
    /// A field whose first path segment is not a top-level key of CloudTrail records: a rule
    /// written for another schema, or a typo. Either way it could never match.
    #[error(
        "field {field} is not a field of CloudTrail records{did_you_mean} (field names are \
         CloudTrail's JSON keys, case-sensitive: the first part must be one of {known})",
        did_you_mean = .suggestion
            .as_ref()
            .map(|name| format!(": did you mean {name}?"))
            .unwrap_or_default(),
        known = super::CLOUDTRAIL_RECORD_FIELDS.join(", ")
    )]
    UnknownField {
        field: String,
        /// The CloudTrail field that differs from the first part only in case, if any.
        suggestion: Option<String>,
    },
    /// rsigma parsed the rule but could not compile it (an invalid regular expression or CIDR,
    /// a condition naming a detection that does not exist, an impossible modifier chain).
    #[error("the rule does not compile: {0}")]
    Compile(String),
    /// Two rules given to `SigmaRuleSet::compile` share an id.
    #[error("two rules have the id {0}: a rule set keys its findings on the id")]
    DuplicateRuleId(String),
    /// A `SigmaRule` given to `SigmaRuleSet::compile` whose fields are not what its `yaml`
    /// parses to (changed after parsing, or deserialized from elsewhere).
    #[error("its fields do not match its yaml: parse the yaml again with parse_sigma_rule")]
    MetadataMismatch,
    /// A refusal while compiling a rule set, with the rule it is about.
    #[error("rule {rule_id}: {source}")]
    InRule {
        rule_id: String,
        #[source]
        source: Box<SigmaRuleError>,
    },
}
