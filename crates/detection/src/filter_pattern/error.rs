//! Why a filter pattern was refused, and where: every error carries the 1-based column of the
//! character it is about, so an operator (or the gRPC adapter's INVALID_ARGUMENT message) can
//! point at it.

/// A pattern that cannot be parsed: the column of the offending character (1-based, counted in
/// characters, not bytes) and what was wrong there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {problem}")]
pub struct FilterPatternError {
    /// 1-based position, in characters, of the character the problem is about; the length
    /// plus one for a problem at the end of the pattern.
    pub column: usize,
    pub problem: FilterPatternProblem,
}

/// What was wrong with a pattern. Messages read as the end of `column N: …`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterPatternProblem {
    #[error("expected {expected}, found {found}")]
    Unexpected {
        expected: &'static str,
        found: String,
    },
    #[error("pattern is {length} characters long, over CloudWatch's limit of {limit}")]
    PatternTooLong { length: usize, limit: usize },
    #[error("parentheses nest deeper than {limit} levels")]
    NestedTooDeep { limit: usize },
    #[error(
        "unexpected character {0:?} (a value with characters other than letters, digits and \
         _ . - + * must be quoted)"
    )]
    UnexpectedCharacter(char),
    #[error("string is not closed: expected a closing \"")]
    UnterminatedString,
    #[error("unsupported escape \\{0} in a string: the escapes are \\\" and \\\\")]
    UnsupportedEscape(char),
    #[error("{construct} is not supported by CloudWatch: {instead}")]
    Unsupported {
        construct: &'static str,
        instead: &'static str,
    },
    #[error("{operator} compares numbers only, found {found}")]
    OrderingNeedsNumber {
        operator: &'static str,
        found: String,
    },
    #[error("number {0} is out of range")]
    NumberOutOfRange(String),
    #[error("array index {0} is out of range")]
    IndexOutOfRange(String),
    #[error("regular expression is not closed: expected a closing %")]
    UnterminatedRegex,
    #[error("regular expression is empty")]
    EmptyRegex,
    #[error("( and ) are not supported in a CloudWatch regular expression: it has no subpatterns")]
    RegexParentheses,
    #[error("multi-byte character {0:?} is not supported in a CloudWatch regular expression")]
    RegexMultiByteCharacter(char),
    #[error(
        "character {0:?} is not allowed in a CloudWatch regular expression (allowed: letters, \
         digits, : _ # = @ / ; , - and the operators ^ $ ? [ ] {{ }} | \\ * + .)"
    )]
    RegexCharacterNotAllowed(char),
    #[error("invalid regular expression: {detail}")]
    InvalidRegex { detail: String },
    #[error("a pattern may have at most {limit} regular expressions")]
    TooManyRegexes { limit: usize },
}

impl FilterPatternError {
    pub(crate) fn new(column: usize, problem: FilterPatternProblem) -> FilterPatternError {
        FilterPatternError { column, problem }
    }
}
