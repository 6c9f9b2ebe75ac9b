//! `parse_sigma_rule`: rsigma's parser, then orgtrail's checks, in the order an operator would
//! want to hear about them — is it YAML, is it one Sigma detection rule, does it have an id and a
//! level, is it for CloudTrail, does it use what orgtrail cannot evaluate (correlations,
//! filters, `|expand`), does every field exist in CloudTrail records, does it compile.

use std::collections::BTreeSet;

use rsigma_parser::{parse_sigma_yaml, Detection, DetectionItem, LogSource, Modifier, SigmaValue};

use super::record_fields::check_record_field;
use super::{SigmaLevel, SigmaRule, SigmaRuleError};

/// Parses one Sigma detection rule and checks that orgtrail can evaluate it on CloudTrail
/// records. The rule is refused, with the reason, when:
///
/// - the text is not YAML, or not a valid Sigma rule (rsigma's errors, including those it
///   reports for a document without failing the whole text, such as an unknown `level`);
/// - it holds no rule, or more than one (one text is one rule: give each its own file);
/// - it is, or holds, a correlation rule: correlations need state across events, which
///   orgtrail's replicas do not share (see `SigmaRuleError::Correlation`); or a Sigma filter;
/// - it has no `id` (findings are keyed on it) or no `level`;
/// - its `logsource` is not `product: aws` with `service: cloudtrail`. A logsource with
///   `product: aws` and no `service` (nor `category`) is accepted too: it can only mean AWS's
///   audit log, and orgtrail holds nothing else;
/// - it uses `|expand` (placeholders need a processing pipeline, which orgtrail has not);
/// - a field it reads (a detection field, or a `|fieldref` target) does not start with a
///   top-level CloudTrail field ([`super::CLOUDTRAIL_RECORD_FIELDS`], case-sensitive). Keyword
///   rules read no field and are fine;
/// - rsigma cannot compile it (an invalid regular expression or CIDR, …).
pub fn parse_sigma_rule(yaml: &str) -> Result<SigmaRule, SigmaRuleError> {
    parse_checked(yaml).map(|(rule, _)| rule)
}

/// `parse_sigma_rule`, also giving rsigma's parsed rule for the rule set to compile.
pub(crate) fn parse_checked(
    yaml: &str,
) -> Result<(SigmaRule, rsigma_parser::SigmaRule), SigmaRuleError> {
    // YAML reads an empty text as one null document, which rsigma calls "not a mapping".
    if yaml.trim().is_empty() {
        return Err(SigmaRuleError::NoRule);
    }
    let collection =
        parse_sigma_yaml(yaml).map_err(|error| SigmaRuleError::NotSigma(error.to_string()))?;
    // rsigma returns Ok with each document's errors collected here: a YAML syntax error stops
    // the stream; the rest are per-document problems (including "warnings" such as an unknown
    // level, which would otherwise silently become "no level").
    if let Some(first) = collection.errors.first() {
        if let Some(yaml_error) = first.strip_prefix("YAML parse error: ") {
            return Err(SigmaRuleError::NotYaml(yaml_error.to_owned()));
        }
        return Err(SigmaRuleError::NotSigma(collection.errors.join("; ")));
    }
    if !collection.correlations.is_empty() {
        let types: BTreeSet<&str> = collection
            .correlations
            .iter()
            .map(|correlation| correlation.correlation_type.as_str())
            .collect();
        let types: Vec<&str> = types.into_iter().collect();
        return Err(SigmaRuleError::Correlation(types.join(", ")));
    }
    if !collection.filters.is_empty() {
        return Err(SigmaRuleError::FilterRule);
    }
    let mut rules = collection.rules.into_iter();
    let parsed = match (rules.next(), rules.len()) {
        (None, _) => return Err(SigmaRuleError::NoRule),
        (Some(rule), 0) => rule,
        (Some(_), more) => return Err(SigmaRuleError::SeveralRules(more + 1)),
    };

    let rule_id = parsed
        .id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .ok_or(SigmaRuleError::NoId)?;
    let level = parsed
        .level
        .map(|level| level.as_str().parse::<SigmaLevel>())
        .transpose()?
        .ok_or(SigmaRuleError::NoLevel)?;
    check_logsource(&parsed.logsource)?;

    let mut reads = FieldsRead::default();
    for detection in parsed.detection.named.values() {
        reads.collect(detection, None);
    }
    if !reads.expand_placeholders.is_empty() {
        let placeholders: Vec<&str> = reads
            .expand_placeholders
            .iter()
            .map(String::as_str)
            .collect();
        return Err(SigmaRuleError::ExpandPlaceholders(placeholders.join(", ")));
    }
    for field in &reads.checked_fields {
        if let Some(suggestion) = check_record_field(field) {
            return Err(SigmaRuleError::UnknownField {
                field: field.clone(),
                suggestion: suggestion.map(str::to_owned),
            });
        }
    }
    rsigma_eval::compile_rule(&parsed)
        .map_err(|error| SigmaRuleError::Compile(error.to_string()))?;

    let rule = SigmaRule {
        rule_id,
        title: parsed.title.clone(),
        level,
        author: parsed.author.clone(),
        status: parsed.status.map(status_name),
        description: parsed.description.clone(),
        references: parsed.references.clone(),
        tags: parsed.tags.clone(),
        fields: reads.fields.into_iter().collect(),
        yaml: yaml.to_owned(),
    };
    Ok((rule, parsed))
}

/// `product: aws` with `service: cloudtrail` or no service, and no category.
fn check_logsource(logsource: &LogSource) -> Result<(), SigmaRuleError> {
    let product_is_aws = logsource.product.as_deref() == Some("aws");
    let service_is_cloudtrail = matches!(logsource.service.as_deref(), None | Some("cloudtrail"));
    if product_is_aws && service_is_cloudtrail && logsource.category.is_none() {
        return Ok(());
    }
    let described: Vec<String> = [
        ("product", &logsource.product),
        ("service", &logsource.service),
        ("category", &logsource.category),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.as_ref().map(|value| format!("{key}: {value}")))
    .collect();
    Err(SigmaRuleError::NotCloudTrail(if described.is_empty() {
        "empty".to_owned()
    } else {
        described.join(" ")
    }))
}

fn status_name(status: rsigma_parser::Status) -> String {
    match status {
        rsigma_parser::Status::Stable => "stable",
        rsigma_parser::Status::Test => "test",
        rsigma_parser::Status::Experimental => "experimental",
        rsigma_parser::Status::Deprecated => "deprecated",
        rsigma_parser::Status::Unsupported => "unsupported",
    }
    .to_owned()
}

/// What a rule's detection reads, gathered in one walk.
#[derive(Default)]
struct FieldsRead {
    /// Every field path the detection reads, as dotted paths (inside an array block
    /// `field[any]:`, a member's field is `field.member`).
    fields: BTreeSet<String>,
    /// The paths that must start with a CloudTrail record field: all of `fields` but the
    /// member fields of array blocks, whose first part names a key inside an array element.
    checked_fields: BTreeSet<String>,
    /// `%placeholder%` names of `|expand` values (or the raw value when it has none).
    expand_placeholders: BTreeSet<String>,
}

impl FieldsRead {
    /// `array` is the path of the enclosing array block, if any.
    fn collect(&mut self, detection: &Detection, array: Option<&str>) {
        match detection {
            Detection::AllOf(items) => {
                for item in items {
                    self.collect_item(item, array);
                }
            }
            Detection::AnyOf(detections) | Detection::And(detections) => {
                for detection in detections {
                    self.collect(detection, array);
                }
            }
            Detection::ArrayMatch { field, body, .. } => {
                let path = match array {
                    Some(outer) => format!("{outer}.{field}"),
                    None => field.clone(),
                };
                self.add_field(&path, array.is_none());
                self.collect(body, Some(&path));
            }
            Detection::Conditional { named, .. } => {
                for detection in named.values() {
                    self.collect(detection, array);
                }
            }
            Detection::Keywords(_) => {}
        }
    }

    fn collect_item(&mut self, item: &DetectionItem, array: Option<&str>) {
        if let Some(name) = &item.field.name {
            match array {
                Some(outer) => self.add_field(&format!("{outer}.{name}"), false),
                None => self.add_field(name, true),
            }
        }
        if item.field.has_modifier(Modifier::FieldRef) {
            // The value names another field of the record, looked up from the record's root.
            for value in &item.values {
                if let SigmaValue::String(target) = value {
                    self.add_field(&target.original, true);
                }
            }
        }
        if item.field.has_modifier(Modifier::Expand) {
            for value in &item.values {
                let text = match value {
                    SigmaValue::String(text) => text.original.clone(),
                    other => other.to_string(),
                };
                let mut names = placeholder_names(&text).peekable();
                if names.peek().is_none() {
                    self.expand_placeholders.insert(text.clone());
                }
                for name in names {
                    self.expand_placeholders.insert(format!("%{name}%"));
                }
            }
        }
    }

    fn add_field(&mut self, path: &str, checked: bool) {
        self.fields.insert(path.to_owned());
        if checked {
            self.checked_fields.insert(path.to_owned());
        }
    }
}

/// The names between pairs of `%` in `text` (`%Legitimate_Countries%` → `Legitimate_Countries`).
fn placeholder_names(text: &str) -> impl Iterator<Item = &str> {
    text.split('%')
        .skip(1)
        .step_by(2)
        .filter(|name| !name.is_empty())
}
