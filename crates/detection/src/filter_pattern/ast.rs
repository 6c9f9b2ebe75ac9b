//! The parsed form of a JSON filter pattern, compiled for evaluation: selectors are split into
//! steps, wildcard strings into their literal part and where it must sit, numbers into the
//! values compared, regular expressions into compiled programs — so evaluating a record does no
//! parsing and allocates nothing.
//!
//! Built only by the parser, which keeps these invariants (the printer and the evaluator rely on
//! them): an `All` or `AnyOf` has at least two members and none of the same kind (nested `&&`
//! inside `&&` is flattened, as is `||` inside `||`); a selector starts with a property name; a
//! text value is never an exact string that begins or ends with `*` (that is a wildcard).

use std::fmt;

/// A boolean combination of conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expression {
    /// `a && b && …`: every member matches.
    All(Vec<Expression>),
    /// `a || b || …`: at least one member matches.
    AnyOf(Vec<Expression>),
    Condition(Condition),
}

/// One test of the value a selector points to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Condition {
    pub(crate) selector: Selector,
    /// The selector's place among the pattern's distinct selectors, in order of first
    /// appearance: conditions on the same field share it, so an evaluation walks to the field
    /// once (CIS 4.4 tests `$.eventName` 16 times). A function of the expression, so equal
    /// expressions have equal slots.
    pub(crate) selector_slot: usize,
    pub(crate) test: ValueTest,
}

/// `$.a.b[0][1].c`: where in the record the tested value is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Selector {
    pub(crate) steps: Vec<SelectorStep>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SelectorStep {
    /// `.name`: a member of an object.
    Property(String),
    /// `[n]`: an element of an array, zero-based.
    Index(usize),
}

/// What is asked of the selected value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ValueTest {
    Compare {
        operator: ComparisonOperator,
        value: ComparedValue,
    },
    /// `IS TRUE`: the value is the JSON boolean `true`.
    IsTrue,
    /// `IS FALSE`: the value is the JSON boolean `false`.
    IsFalse,
    /// `IS NULL`: the value exists and is JSON `null`.
    IsNull,
    /// `NOT EXISTS`: the selector does not resolve.
    NotExists,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ComparisonOperator {
    Equal,
    NotEqual,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
}

impl ComparisonOperator {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            ComparisonOperator::Equal => "=",
            ComparisonOperator::NotEqual => "!=",
            ComparisonOperator::Less => "<",
            ComparisonOperator::Greater => ">",
            ComparisonOperator::LessOrEqual => "<=",
            ComparisonOperator::GreaterOrEqual => ">=",
        }
    }

    /// Whether the operator is one of the two that strings, wildcards and regular expressions
    /// accept (CloudWatch orders numbers only).
    pub(crate) fn is_equality(self) -> bool {
        matches!(
            self,
            ComparisonOperator::Equal | ComparisonOperator::NotEqual
        )
    }
}

/// The right-hand side of a comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ComparedValue {
    /// A quoted string or a bare word that is not a number, with its wildcards resolved.
    Text(TextPattern),
    /// A bare number: compared with JSON numbers only.
    Number(NumberLiteral),
    /// `%…%`: searched for in JSON strings.
    Regex(RegexTerm),
}

/// A string value with CloudWatch's wildcards: `*` counts only as the first or last character
/// ("`Ev*ent` only matches the string `Ev*ent`").
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TextPattern {
    /// `*` (or `"*"`, `"**"`): any string or number.
    AnyValue,
    /// No leading or trailing `*`: the whole string.
    Exact(String),
    /// `abc*`: the string starts with the text.
    Prefix(String),
    /// `*abc`: the string ends with the text.
    Suffix(String),
    /// `*abc*`: the string contains the text.
    Contains(String),
}

impl TextPattern {
    /// Resolves the wildcards of a value as written (quotes and escapes already removed).
    pub(crate) fn from_written(written: &str) -> TextPattern {
        let (leading, after_leading) = match written.strip_prefix('*') {
            Some(rest) => (true, rest),
            None => (false, written),
        };
        let (trailing, inner) = match after_leading.strip_suffix('*') {
            Some(rest) => (true, rest),
            None => (false, after_leading),
        };
        match (leading, trailing) {
            (true, true) if inner.is_empty() => TextPattern::AnyValue,
            // "*" alone: a leading star with nothing after it.
            (true, false) if inner.is_empty() => TextPattern::AnyValue,
            (true, true) => TextPattern::Contains(inner.to_owned()),
            (true, false) => TextPattern::Suffix(inner.to_owned()),
            (false, true) => TextPattern::Prefix(inner.to_owned()),
            (false, false) => TextPattern::Exact(inner.to_owned()),
        }
    }

    /// The value as written again, without quotes: the inverse of `from_written`.
    pub(crate) fn written(&self) -> String {
        match self {
            TextPattern::AnyValue => "*".to_owned(),
            TextPattern::Exact(text) => text.clone(),
            TextPattern::Prefix(text) => format!("{text}*"),
            TextPattern::Suffix(text) => format!("*{text}"),
            TextPattern::Contains(text) => format!("*{text}*"),
        }
    }
}

/// A number as written in the pattern, with the values it is compared as.
#[derive(Clone, Debug)]
pub(crate) struct NumberLiteral {
    /// The text as written (`1e-3`, `+5`, `-0.5`): printed back unchanged.
    pub(crate) written: String,
    pub(crate) value: f64,
    /// Set when the literal is written as an integer, so that integers in records compare
    /// exactly even beyond 2^53.
    pub(crate) integer: Option<i128>,
}

/// Two literals are the same when written the same: `1` and `1.0` are equal values but
/// different patterns, and the printer keeps each as written.
impl PartialEq for NumberLiteral {
    fn eq(&self, other: &Self) -> bool {
        self.written == other.written
    }
}

impl Eq for NumberLiteral {}

/// A regular expression term, compiled once when the pattern is parsed.
#[derive(Clone)]
pub(crate) struct RegexTerm {
    /// The expression between the `%` signs.
    pub(crate) source: String,
    pub(crate) compiled: regex_lite::Regex,
}

impl PartialEq for RegexTerm {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for RegexTerm {}

impl fmt::Debug for RegexTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegexTerm(%{}%)", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::TextPattern;

    #[test]
    fn stars_count_as_wildcards_only_at_the_ends() {
        assert_eq!(
            TextPattern::from_written("Ev*ent"),
            TextPattern::Exact("Ev*ent".into())
        );
        assert_eq!(
            TextPattern::from_written("AccessDenied*"),
            TextPattern::Prefix("AccessDenied".into())
        );
        assert_eq!(
            TextPattern::from_written("*UnauthorizedOperation"),
            TextPattern::Suffix("UnauthorizedOperation".into())
        );
        assert_eq!(
            TextPattern::from_written("*Denied*"),
            TextPattern::Contains("Denied".into())
        );
        assert_eq!(TextPattern::from_written("*"), TextPattern::AnyValue);
        assert_eq!(TextPattern::from_written("**"), TextPattern::AnyValue);
        assert_eq!(
            TextPattern::from_written("***"),
            TextPattern::Contains("*".into())
        );
        assert_eq!(TextPattern::from_written(""), TextPattern::Exact("".into()));
    }

    #[test]
    fn a_text_pattern_written_again_reads_back_the_same() {
        for written in [
            "", "*", "**", "***", "a", "a*", "*a", "*a*", "a*b", "*a*b*", "a**", "**a",
        ] {
            let pattern = TextPattern::from_written(written);
            assert_eq!(
                TextPattern::from_written(&pattern.written()),
                pattern,
                "{written:?}"
            );
        }
    }
}
