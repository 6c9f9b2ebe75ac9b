//! Evaluating a compiled pattern against one record, already parsed into a `serde_json::Value`.
//! Nothing is parsed and nothing allocated here: selectors walk the value by reference, text
//! patterns compare slices, regular expressions were compiled with the pattern.
//!
//! The semantics are CloudWatch's, decided point by point in `docs/filter-patterns.md`; the
//! rule under all comparisons is that a value node is a JSON string or number, and that a
//! selector that does not resolve, or resolves to null, a boolean, an object or an array,
//! matches no comparison — `!=` included.

use serde_json::{Number, Value};

use super::ast::{
    ComparedValue, ComparisonOperator, Condition, Expression, NumberLiteral, Selector,
    SelectorStep, TextPattern, ValueTest,
};

/// How many distinct selectors of one pattern an evaluation remembers the value of (CIS
/// patterns have at most 4); conditions on further selectors walk the record each time.
const REMEMBERED_SELECTORS: usize = 8;

/// The values selectors resolved to during one evaluation, on the stack. A walk through
/// `serde_json`'s maps compares the key against its neighbours' keys, each a separate
/// allocation; remembering the result makes sixteen tests of `$.eventName` cost one walk.
struct ResolvedSelectors<'a> {
    values: [Option<Option<&'a Value>>; REMEMBERED_SELECTORS],
}

impl<'a> ResolvedSelectors<'a> {
    fn new() -> Self {
        ResolvedSelectors {
            values: [None; REMEMBERED_SELECTORS],
        }
    }

    fn resolve(&mut self, condition: &Condition, record: &'a Value) -> Option<&'a Value> {
        match self.values.get_mut(condition.selector_slot) {
            Some(remembered) => {
                *remembered.get_or_insert_with(|| condition.selector.resolve(record))
            }
            None => condition.selector.resolve(record),
        }
    }
}

impl Expression {
    pub(crate) fn matches(&self, record: &Value) -> bool {
        self.matches_with(record, &mut ResolvedSelectors::new())
    }

    /// Recursion follows the expression's nesting, which the parser bounds.
    fn matches_with<'a>(&self, record: &'a Value, resolved: &mut ResolvedSelectors<'a>) -> bool {
        match self {
            Expression::All(members) => members
                .iter()
                .all(|member| member.matches_with(record, resolved)),
            Expression::AnyOf(members) => members
                .iter()
                .any(|member| member.matches_with(record, resolved)),
            Expression::Condition(condition) => condition.matches(record, resolved),
        }
    }
}

impl Condition {
    fn matches<'a>(&self, record: &'a Value, resolved: &mut ResolvedSelectors<'a>) -> bool {
        let selected = resolved.resolve(self, record);
        match &self.test {
            ValueTest::NotExists => selected.is_none(),
            ValueTest::IsNull => matches!(selected, Some(Value::Null)),
            ValueTest::IsTrue => matches!(selected, Some(Value::Bool(true))),
            ValueTest::IsFalse => matches!(selected, Some(Value::Bool(false))),
            ValueTest::Compare { operator, value } => match selected {
                Some(Value::String(text)) => compare_string(text, *operator, value),
                Some(Value::Number(number)) => compare_number(number, *operator, value),
                // "If a property selector points to an array or object, the metric filter won't
                // match"; a missing field, null and booleans are no value nodes either.
                _ => false,
            },
        }
    }
}

impl Selector {
    /// The value the selector points to, if every step exists.
    pub(crate) fn resolve<'a>(&self, record: &'a Value) -> Option<&'a Value> {
        self.steps
            .iter()
            .try_fold(record, |current, step| match step {
                SelectorStep::Property(name) => current.as_object()?.get(name.as_str()),
                SelectorStep::Index(index) => current.as_array()?.get(*index),
            })
    }
}

fn compare_string(text: &str, operator: ComparisonOperator, value: &ComparedValue) -> bool {
    let found = match value {
        ComparedValue::Text(pattern) => pattern.matches_string(text),
        ComparedValue::Regex(term) => term.compiled.is_match(text),
        // A number is compared with numbers only: "400" is not 400.
        ComparedValue::Number(_) => return false,
    };
    match operator {
        ComparisonOperator::Equal => found,
        ComparisonOperator::NotEqual => !found,
        // The parser allows ordering operators with numbers only.
        _ => false,
    }
}

fn compare_number(number: &Number, operator: ComparisonOperator, value: &ComparedValue) -> bool {
    match value {
        ComparedValue::Number(literal) => compare_numerically(number, operator, literal),
        // `= *` matches any value node, numbers included (the guide's `{ $.latency = * }`);
        // no other string or regular expression is compared with a number.
        ComparedValue::Text(TextPattern::AnyValue) => operator == ComparisonOperator::Equal,
        ComparedValue::Text(_) | ComparedValue::Regex(_) => false,
    }
}

fn compare_numerically(
    number: &Number,
    operator: ComparisonOperator,
    literal: &NumberLiteral,
) -> bool {
    let record_integer = number
        .as_i64()
        .map(i128::from)
        .or_else(|| number.as_u64().map(i128::from));
    let ordering = match (record_integer, literal.integer) {
        (Some(left), Some(right)) => Some(left.cmp(&right)),
        _ => number
            .as_f64()
            .and_then(|left| left.partial_cmp(&literal.value)),
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match operator {
        ComparisonOperator::Equal => ordering.is_eq(),
        ComparisonOperator::NotEqual => ordering.is_ne(),
        ComparisonOperator::Less => ordering.is_lt(),
        ComparisonOperator::Greater => ordering.is_gt(),
        ComparisonOperator::LessOrEqual => ordering.is_le(),
        ComparisonOperator::GreaterOrEqual => ordering.is_ge(),
    }
}

impl TextPattern {
    fn matches_string(&self, text: &str) -> bool {
        match self {
            TextPattern::AnyValue => true,
            TextPattern::Exact(expected) => text == expected,
            TextPattern::Prefix(prefix) => text.starts_with(prefix.as_str()),
            TextPattern::Suffix(suffix) => text.ends_with(suffix.as_str()),
            TextPattern::Contains(part) => text.contains(part.as_str()),
        }
    }
}
