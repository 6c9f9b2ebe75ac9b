//! The built-in Sigma rules against the ground truth in `data/sigma/EXPECTED.json` (pySigma
//! 2.0.1 with its SQLite backend, over the same sample records): every record of
//! `data/cloudtrail/` is parsed once into a `serde_json::Value`, the built-in rules are compiled
//! into one `SigmaRuleSet`, and each rule's set of matched records (eventIDs, or
//! `<file>#<index>` for records without one, EXPECTED's convention) must be EXPECTED's.
//!
//! One rule is refused by design and stated here: AWS SAML Provider Deletion Activity reads
//! `status`, which is not a CloudTrail record field, so `parse_sigma_rule` refuses it as it
//! would an operator's typo (docs/sigma.md). EXPECTED agrees it can never match raw CloudTrail:
//! it matches no record there, which `the_one_refused_built_in_rule_matches_nothing_in_expected`
//! pins.

mod sample_records;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use orgtrail_detection::{
    builtin_sigma_rules, parse_sigma_rule, SigmaRule, SigmaRuleError, SigmaRuleSet,
    CLOUDTRAIL_RECORD_FIELDS,
};
use serde_json::Value;

use sample_records::{read_sample_data, repository_root, SampleData};

/// The built-in rule refused by design, and the field it is refused for.
const REFUSED_BUILTIN_FILE: &str = "aws_delete_saml_provider.yml";
const REFUSED_BUILTIN_ID: &str = "ccd6a6c8-bb4e-4a91-9d2a-07e632819374";
const REFUSED_BUILTIN_FIELD: &str = "status";

/// Read once for all tests here (they run in parallel).
fn sample_data() -> &'static SampleData {
    static SAMPLE_DATA: OnceLock<SampleData> = OnceLock::new();
    SAMPLE_DATA.get_or_init(read_sample_data)
}

fn expected() -> &'static Value {
    static EXPECTED: OnceLock<Value> = OnceLock::new();
    EXPECTED.get_or_init(|| {
        let path = repository_root().join("data/sigma/EXPECTED.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        serde_json::from_str(&text).unwrap()
    })
}

/// Every built-in rule by file name: parsed, or refused.
fn parsed_builtin_rules() -> BTreeMap<&'static str, Result<SigmaRule, SigmaRuleError>> {
    builtin_sigma_rules()
        .iter()
        .map(|builtin| (builtin.file_name, parse_sigma_rule(builtin.yaml)))
        .collect()
}

fn string_set(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_57_built_in_rules_are_expected_s_byte_for_byte_and_all_but_one_pass_the_checks() {
    let builtins = builtin_sigma_rules();
    assert_eq!(builtins.len(), 57);
    let expected_rules = expected()["rules"].as_object().unwrap();
    assert_eq!(expected_rules.len(), 57);
    let directory = repository_root().join("data/sigma/rules/cloud/aws/cloudtrail");
    let mut refused = Vec::new();
    for (file_name, parsed) in parsed_builtin_rules() {
        let on_disk = std::fs::read_to_string(directory.join(file_name)).unwrap();
        let builtin = builtins.iter().find(|b| b.file_name == file_name).unwrap();
        assert_eq!(
            builtin.yaml, on_disk,
            "{file_name} is embedded byte for byte"
        );
        match parsed {
            Ok(rule) => {
                let expectation = &expected_rules[&rule.rule_id];
                assert_eq!(
                    expectation["path"],
                    format!("cloud/aws/cloudtrail/{file_name}"),
                    "{file_name}"
                );
                assert_eq!(expectation["title"], rule.title.as_str(), "{file_name}");
                assert_eq!(expectation["level"], rule.level.as_str(), "{file_name}");
                assert_eq!(expectation["author"], json_or_null(&rule.author));
                assert_eq!(expectation["status"], json_or_null(&rule.status));
                assert_eq!(rule.yaml, on_disk);
                // The fields pySigma found the rule to read are the ones orgtrail found.
                assert_eq!(
                    string_set(&expectation["fields"]),
                    rule.fields.iter().cloned().collect(),
                    "{file_name}"
                );
            }
            Err(error) => refused.push((file_name, error)),
        }
    }
    let refused: Vec<String> = refused
        .iter()
        .map(|(file_name, error)| format!("{file_name}: {error}"))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert!(
        refused[0].starts_with(&format!(
            "{REFUSED_BUILTIN_FILE}: field {REFUSED_BUILTIN_FIELD} is not a field of CloudTrail records ("
        )),
        "{refused:#?}"
    );
}

fn json_or_null(text: &Option<String>) -> Value {
    text.as_ref()
        .map_or(Value::Null, |text| Value::String(text.clone()))
}

#[test]
fn the_one_refused_built_in_rule_matches_nothing_in_expected() {
    let expectation = &expected()["rules"][REFUSED_BUILTIN_ID];
    assert_eq!(
        expectation["path"],
        format!("cloud/aws/cloudtrail/{REFUSED_BUILTIN_FILE}")
    );
    assert!(string_set(&expectation["fields"]).contains(REFUSED_BUILTIN_FIELD));
    assert_eq!(expectation["count"], 0);
    let notes = expectation["notes"].to_string();
    assert!(notes.contains("no `status` field"), "{notes}");
    for sample in &sample_data().records {
        assert!(sample.record.get(REFUSED_BUILTIN_FIELD).is_none());
    }
}

#[test]
fn every_built_in_rule_matches_exactly_the_expected_records() {
    let data = sample_data();
    let expected = expected();
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(repository_root().join("data/cloudtrail/MANIFEST.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(data.files, manifest["files"].as_array().unwrap().len());
    assert_eq!(data.records.len() as u64, expected["data"]["records"]);
    let distinct: BTreeSet<&str> = data.records.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(distinct.len() as u64, expected["data"]["distinct_keys"]);

    let rules: Vec<SigmaRule> = parsed_builtin_rules()
        .into_values()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(rules.len(), 56);
    let rule_set = SigmaRuleSet::compile(&rules).unwrap();

    // Each record evaluated once against the whole set, as the aggregator does.
    let mut matched: BTreeMap<&str, (BTreeSet<&str>, u64)> = BTreeMap::new();
    for sample in &data.records {
        for rule in rule_set.matches(&sample.record) {
            let (keys, record_hits) = matched.entry(rule.rule_id.as_str()).or_default();
            keys.insert(sample.key.as_str());
            *record_hits += 1;
        }
    }

    let mut differences = Vec::new();
    for (rule_id, expectation) in expected["rules"].as_object().unwrap() {
        let mut expected_keys = string_set(&expectation["eventIDs"]);
        expected_keys.extend(string_set(&expectation["synthetic_keys"]));
        assert_eq!(
            expected_keys.len() as u64,
            expectation["count"],
            "{rule_id}"
        );
        let (keys, record_hits) = matched.remove(rule_id.as_str()).unwrap_or_default();
        let keys: BTreeSet<String> = keys.into_iter().map(str::to_owned).collect();
        eprintln!(
            "{rule_id} {:<60} orgtrail {:>3} ({:>3} hits), EXPECTED {:>3} ({:>3} hits)",
            expectation["title"].as_str().unwrap_or_default(),
            keys.len(),
            record_hits,
            expectation["count"],
            expectation["record_hits"],
        );
        if keys != expected_keys || record_hits != expectation["record_hits"] {
            differences.push(format!(
                "{rule_id} ({}): only orgtrail {:?}, only EXPECTED {:?}, hits {record_hits} vs {}",
                expectation["title"],
                keys.difference(&expected_keys).collect::<Vec<_>>(),
                expected_keys.difference(&keys).collect::<Vec<_>>(),
                expectation["record_hits"],
            ));
        }
    }
    assert!(matched.is_empty(), "rules not in EXPECTED: {matched:?}");
    // The decision: no disagreement with pySigma on the sample data.
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn every_top_level_key_of_the_sample_records_is_a_cloudtrail_record_field() {
    let mut unknown = BTreeSet::new();
    for sample in &sample_data().records {
        for key in sample.record.as_object().unwrap().keys() {
            if !CLOUDTRAIL_RECORD_FIELDS.contains(&key.as_str()) {
                unknown.insert(key.clone());
            }
        }
    }
    assert!(unknown.is_empty(), "{unknown:?}");
}
