//! Properties of the filter-pattern language, with proptest:
//!
//! - generated patterns (a tree of conditions, `&&`, `||` and parentheses, written out with
//!   random spacing, quoting and redundant parentheses) parse; printing the parsed pattern and
//!   parsing the text gives the same pattern, and printing again gives the same text; the
//!   parsed pattern decides records as the tree means (`pattern_trees`' reference evaluator);
//! - `parse` never panics, on arbitrary strings or on CIS patterns mutated character by
//!   character — and whatever parses prints back to itself;
//! - `matches` never panics, on arbitrary JSON values (deep nesting, arrays, nulls, numbers of
//!   every kind, unicode strings) for generated and CIS patterns.
//!
//! `PROPTEST_CASES=N cargo test -p orgtrail-detection --test filter_pattern_properties` runs N
//! inputs per property (256 by default).

mod pattern_trees;

use orgtrail_detection::{cis_metric_filter_variants, cis_metric_filters, FilterPattern};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

use pattern_trees::{
    reference_matches, selector, test, tree, Condition, Step, Tree, Writer, PROPERTY_NAMES,
};

// ---------------------------------------------------------------------------------------------
// Records

fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("finite", Number::from_f64)
            .prop_map(Value::Number),
        (-1000i32..1000, 0u32..100).prop_map(|(whole, hundredths)| {
            Value::from(f64::from(whole) + f64::from(hundredths) / 100.0)
        }),
    ]
}

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        "[ab*xy\"\\\\0-9.\n]{0,6}",
        prop::sample::select(&["a", "b", "ab", "xy", "x\ny", "key:v_#=@/;,-", "true", "400"][..])
            .prop_map(str::to_owned),
    ]
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(PROPERTY_NAMES).prop_map(str::to_owned),
        1 => "\\PC{0,6}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        json_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(json_key(), inner, 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Values built from the tree's own strings and numbers: the strings with and without a
/// character before or after, the numbers and their neighbours — so wildcards meet strings
/// they almost match and comparisons meet their bounds — and the values no comparison
/// matches (null, booleans, an empty object and array).
fn values_near(tree: &Tree) -> BoxedStrategy<Value> {
    let mut strings = vec!["a".to_owned(), "xy".to_owned()];
    let mut numbers = vec![0.0];
    tree.literals(&mut strings, &mut numbers);
    let near_string = (
        prop::sample::select(strings),
        prop::sample::select(&["", "", "a", "z*"][..]),
        prop::sample::select(&["", "", "b", "*z"][..]),
    )
        .prop_map(|(string, before, after)| Value::String(format!("{before}{string}{after}")));
    let near_number = (prop::sample::select(numbers), -1i32..=1)
        .prop_map(|(number, offset)| Value::from(number + f64::from(offset)));
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Object(Map::new())),
        1 => Just(Value::Array(Vec::new())),
        4 => near_number,
        6 => near_string,
    ]
    .boxed()
}

/// Records of `values_near` under the property names the selectors use, so conditions resolve.
fn records_near(tree: &Tree) -> impl Strategy<Value = Vec<Value>> {
    let value = values_near(tree).prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            1 => prop::collection::vec(inner.clone(), 1..4).prop_map(Value::Array),
            3 => prop::collection::btree_map(
                prop::sample::select(PROPERTY_NAMES).prop_map(str::to_owned),
                inner,
                1..6,
            )
            .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    });
    prop::collection::vec(value, 4..12)
}

/// A record in which the selector resolves to `leaf`: objects for property steps, arrays
/// padded with nulls for index steps.
fn record_with_value_at(selector: &[Step], leaf: Value) -> Value {
    selector.iter().rev().fold(leaf, |value, step| match step {
        Step::Property(name) => {
            let mut members = Map::new();
            members.insert((*name).to_owned(), value);
            Value::Object(members)
        }
        Step::Index(index) => {
            let mut elements = vec![Value::Null; *index];
            elements.push(value);
            Value::Array(elements)
        }
    })
}

/// A value nested `depth` levels down a path of the generated property names and indexes, so
/// selectors walk deep.
fn deeply_nested(depth: usize, leaf: Value, seed: u64) -> Value {
    let mut value = leaf;
    for level in 0..depth {
        let choice = (seed.rotate_left(level as u32) % 3) as usize;
        value = if choice == 0 {
            Value::Array(vec![value])
        } else {
            let mut members = Map::new();
            members.insert(
                PROPERTY_NAMES[level % PROPERTY_NAMES.len()].to_owned(),
                value,
            );
            Value::Object(members)
        };
    }
    value
}

fn cis_patterns() -> Vec<FilterPattern> {
    cis_metric_filters()
        .iter()
        .chain(cis_metric_filter_variants())
        .map(|filter| FilterPattern::parse(filter.pattern).unwrap())
        .collect()
}

fn assert_prints_back(pattern: &FilterPattern) -> Result<(), TestCaseError> {
    let printed = pattern.to_string();
    let reparsed = FilterPattern::parse(&printed)
        .map_err(|error| TestCaseError::fail(format!("{printed:?} does not parse: {error}")))?;
    prop_assert_eq!(&reparsed, pattern, "printed as {:?}", printed);
    prop_assert_eq!(reparsed.to_string(), printed);
    Ok(())
}

proptest! {
    #[test]
    fn generated_patterns_parse_print_back_and_mean_what_they_say(
        (tree, near) in tree().prop_flat_map(|tree| {
            let near = records_near(&tree);
            (Just(tree), near)
        }),
        seed in 1u64..,
        random in prop::collection::vec(json_value(), 1..4),
    ) {
        prop_assume!(tree.regex_count() <= 2);
        let text = Writer { seed }.write_pattern(&tree);
        prop_assume!(text.chars().count() <= 1024);
        let pattern = FilterPattern::parse(&text)
            .map_err(|error| TestCaseError::fail(format!("{text:?}: {error}")))?;
        assert_prints_back(&pattern)?;
        // The same tree written another way is the same pattern.
        let other = Writer { seed: seed.wrapping_mul(31).max(1) }.write_pattern(&tree);
        if other.chars().count() <= 1024 {
            prop_assert_eq!(&FilterPattern::parse(&other).unwrap(), &pattern);
        }
        for record in near.iter().chain(&random) {
            prop_assert_eq!(
                pattern.matches(record),
                reference_matches(&tree, record),
                "{} on {}", text, record
            );
        }
    }

    #[test]
    fn a_generated_condition_decides_the_value_it_selects_as_documented(
        (condition, values) in (selector(), test()).prop_flat_map(|(selector, test)| {
            let tree = Tree::Condition(Condition { selector, test });
            let values = prop::collection::vec(values_near(&tree), 8..16);
            (Just(tree), values)
        }),
    ) {
        let Tree::Condition(ref inner) = condition else { unreachable!() };
        let text = Writer { seed: 7 }.write_pattern(&condition);
        prop_assume!(text.chars().count() <= 1024);
        let pattern = FilterPattern::parse(&text)
            .map_err(|error| TestCaseError::fail(format!("{text:?}: {error}")))?;
        for value in values {
            let record = record_with_value_at(&inner.selector, value);
            prop_assert_eq!(
                pattern.matches(&record),
                reference_matches(&condition, &record),
                "{} on {}", text, record
            );
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,80}") {
        if let Ok(pattern) = FilterPattern::parse(&text) {
            assert_prints_back(&pattern)?;
        }
    }

    #[test]
    fn parse_never_panics_on_text_made_of_the_languages_characters(
        text in "[{}()$.a-z0-9 =!<>&|\"\\\\*%_\\[\\]^+-]{0,60}",
    ) {
        if let Ok(pattern) = FilterPattern::parse(&text) {
            assert_prints_back(&pattern)?;
        }
    }

    #[test]
    fn parse_never_panics_on_mutated_cis_patterns(
        which in 0usize..17,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 1..6),
    ) {
        let filters: Vec<_> = cis_metric_filters().iter().chain(cis_metric_filter_variants()).collect();
        let mut characters: Vec<char> = filters[which].pattern.chars().collect();
        for (index, character, kind) in edits {
            let position = index.index(characters.len() + 1);
            match kind {
                0 => characters.insert(position, character),
                1 if position < characters.len() => { characters.remove(position); }
                _ if position < characters.len() => characters[position] = character,
                _ => characters.push(character),
            }
        }
        let text: String = characters.into_iter().collect();
        if let Ok(pattern) = FilterPattern::parse(&text) {
            assert_prints_back(&pattern)?;
        }
    }

    #[test]
    fn matches_never_panics_on_arbitrary_records(
        tree in tree(),
        seed in 1u64..,
        record in json_value(),
        depth in 0usize..300,
    ) {
        let text = Writer { seed }.write_pattern(&tree);
        let generated = FilterPattern::parse(&text).ok();
        let deep = deeply_nested(depth, record.clone(), seed);
        for pattern in generated.iter().chain(cis_patterns().iter()) {
            let _ = pattern.matches(&record);
            let _ = pattern.matches(&deep);
        }
    }
}
