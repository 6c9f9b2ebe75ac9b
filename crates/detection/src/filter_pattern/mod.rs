//! CloudWatch Logs JSON filter patterns — the language of CloudWatch metric filters and of the
//! CIS AWS Foundations Benchmark alarms — parsed once and evaluated against many records.
//!
//! ```
//! use orgtrail_detection::FilterPattern;
//!
//! let pattern = FilterPattern::parse(
//!     r#"{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }"#,
//! )?;
//! let record = serde_json::json!({
//!     "eventName": "ConsoleLogin",
//!     "errorMessage": "Failed authentication",
//! });
//! assert!(pattern.matches(&record));
//! assert_eq!(
//!     pattern.to_string(),
//!     r#"{ $.eventName = "ConsoleLogin" && $.errorMessage = "Failed authentication" }"#,
//! );
//! # Ok::<(), orgtrail_detection::FilterPatternError>(())
//! ```
//!
//! The language as orgtrail implements it, and each point where CloudWatch's documentation
//! leaves the behaviour open, is written down in `docs/filter-patterns.md`.
//!
//! Layout: `lexer` (characters → tokens with columns), `parser` (tokens → `ast`), `evaluate`
//! (`ast` × record → bool), `display` (`ast` → canonical text), `error`.

mod ast;
mod display;
mod error;
mod evaluate;
mod lexer;
mod parser;

use std::fmt;

pub use error::{FilterPatternError, FilterPatternProblem};

/// CloudWatch's limit on a filter pattern's length (PutMetricFilter's `filterPattern`),
/// counted here in characters.
pub const MAX_PATTERN_CHARACTERS: usize = 1024;
/// How deep parentheses may nest. CloudWatch documents no limit; this one bounds the parser's
/// and the evaluator's recursion (CIS patterns nest 2 deep).
pub const MAX_PARENTHESES_DEPTH: usize = 64;
/// CloudWatch's quota of regular expressions (`%…%` terms) in one JSON filter pattern.
pub const MAX_REGULAR_EXPRESSIONS: usize = 2;

/// A parsed JSON filter pattern, ready to evaluate. Two patterns are equal when they parse to
/// the same expression (spacing, redundant parentheses and quoting of plain words aside).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterPattern {
    expression: ast::Expression,
}

impl FilterPattern {
    /// Parses a JSON filter pattern (`{ … }`). Regular expressions are compiled here, once.
    ///
    /// An error names the column (1-based, in characters) where the pattern stops making sense
    /// and what was expected there.
    pub fn parse(text: &str) -> Result<FilterPattern, FilterPatternError> {
        parser::parse_pattern(text).map(|expression| FilterPattern { expression })
    }

    /// Whether a record — one CloudTrail record, already parsed — matches the pattern, as a
    /// CloudWatch metric filter would count it. Never panics, parses nothing and allocates
    /// nothing.
    pub fn matches(&self, record: &serde_json::Value) -> bool {
        self.expression.matches(record)
    }
}

/// The canonical text of the pattern; parsing it gives an equal pattern.
impl fmt::Display for FilterPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        display::write_pattern(f, &self.expression)
    }
}

impl std::str::FromStr for FilterPattern {
    type Err = FilterPatternError;

    fn from_str(text: &str) -> Result<FilterPattern, FilterPatternError> {
        FilterPattern::parse(text)
    }
}

#[cfg(test)]
mod parse_tests;

#[cfg(test)]
mod evaluate_tests;
