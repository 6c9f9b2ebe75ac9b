//! The grammar of JSON filter patterns, by recursive descent over the lexer's tokens:
//!
//! ```text
//! pattern   = "{" any_of "}"
//! any_of    = all ( "||" all )*                 -- && binds tighter than ||
//! all       = operand ( "&&" operand )*
//! operand   = "(" any_of ")" | condition        -- parentheses nest at most 64 deep
//! condition = selector ( operator value | "IS" ("TRUE" | "FALSE" | "NULL") | "NOT" "EXISTS" )
//! value     = quoted string | bare word | number | "*" | "%" regex "%"
//! ```
//!
//! Recursion happens only at a parenthesis and is bounded by the nesting limit, so no input can
//! exhaust the stack.

use super::ast::{
    ComparedValue, ComparisonOperator, Condition, Expression, NumberLiteral, Selector, TextPattern,
    ValueTest,
};
use super::error::{FilterPatternError, FilterPatternProblem};
use super::lexer::{tokenize, Token, TokenKind};
use super::{MAX_PARENTHESES_DEPTH, MAX_PATTERN_CHARACTERS, MAX_REGULAR_EXPRESSIONS};

const EXPECTED_COMPARISON: &str = "a comparison operator (=, !=, <, >, <=, >=) or IS/NOT EXISTS";
const EXPECTED_VALUE: &str =
    "a value (a quoted string, a word, a number, * or a %regular expression%)";
const EXPECTED_OPERAND: &str = "a selector ($.field) or \"(\"";

/// Parses a whole pattern into its compiled expression.
pub(super) fn parse_pattern(text: &str) -> Result<Expression, FilterPatternError> {
    // Counted before anything is copied: a caller may hand over any amount of text.
    let length = text.chars().count();
    if length > MAX_PATTERN_CHARACTERS {
        return Err(FilterPatternError::new(
            MAX_PATTERN_CHARACTERS + 1,
            FilterPatternProblem::PatternTooLong {
                length,
                limit: MAX_PATTERN_CHARACTERS,
            },
        ));
    }
    let characters: Vec<char> = text.chars().collect();
    let tokens = tokenize(&characters)?;
    let end_column = characters.len() + 1;
    let mut parser = Parser {
        tokens,
        position: 0,
        end_column,
        regular_expressions: 0,
        distinct_selectors: Vec::new(),
    };
    parser.expect(
        |kind| matches!(kind, TokenKind::OpenBrace),
        "\"{\" opening a JSON filter pattern (orgtrail evaluates JSON patterns only)",
    )?;
    let expression = parser.any_of(0)?;
    parser.expect(
        |kind| matches!(kind, TokenKind::CloseBrace),
        "&&, || or \"}\"",
    )?;
    parser.expect(
        |kind| matches!(kind, TokenKind::End),
        "the end of the pattern after \"}\"",
    )?;
    Ok(expression)
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
    /// The column reported for the end of the pattern.
    end_column: usize,
    regular_expressions: usize,
    /// The selectors seen so far, each once, in order of first appearance.
    distinct_selectors: Vec<Selector>,
}

impl Parser {
    /// The current token; past the end (which the lexer's `End` token prevents) it is `End`.
    fn peek(&self) -> Token {
        self.tokens.get(self.position).cloned().unwrap_or(Token {
            kind: TokenKind::End,
            column: self.end_column,
        })
    }

    fn advance(&mut self) -> Token {
        let token = self.peek();
        self.position += 1;
        token
    }

    fn unexpected(token: &Token, expected: &'static str) -> FilterPatternError {
        FilterPatternError::new(
            token.column,
            FilterPatternProblem::Unexpected {
                expected,
                found: token.describe(),
            },
        )
    }

    fn expect(
        &mut self,
        is_expected: impl Fn(&TokenKind) -> bool,
        expected: &'static str,
    ) -> Result<Token, FilterPatternError> {
        let token = self.advance();
        if is_expected(&token.kind) {
            Ok(token)
        } else {
            Err(Self::unexpected(&token, expected))
        }
    }

    fn any_of(&mut self, depth: usize) -> Result<Expression, FilterPatternError> {
        let mut members = Vec::new();
        push_flattened_any_of(&mut members, self.all(depth)?);
        while matches!(self.peek().kind, TokenKind::Or) {
            self.advance();
            push_flattened_any_of(&mut members, self.all(depth)?);
        }
        Ok(single_or(members, Expression::AnyOf))
    }

    fn all(&mut self, depth: usize) -> Result<Expression, FilterPatternError> {
        let mut members = Vec::new();
        push_flattened_all(&mut members, self.operand(depth)?);
        while matches!(self.peek().kind, TokenKind::And) {
            self.advance();
            push_flattened_all(&mut members, self.operand(depth)?);
        }
        Ok(single_or(members, Expression::All))
    }

    fn operand(&mut self, depth: usize) -> Result<Expression, FilterPatternError> {
        let token = self.advance();
        match token.kind {
            TokenKind::OpenParenthesis => {
                if depth >= MAX_PARENTHESES_DEPTH {
                    return Err(FilterPatternError::new(
                        token.column,
                        FilterPatternProblem::NestedTooDeep {
                            limit: MAX_PARENTHESES_DEPTH,
                        },
                    ));
                }
                let inner = self.any_of(depth + 1)?;
                self.expect(
                    |kind| matches!(kind, TokenKind::CloseParenthesis),
                    "&&, || or \")\"",
                )?;
                Ok(inner)
            }
            TokenKind::Selector(selector) => Ok(Expression::Condition(self.condition(selector)?)),
            _ => Err(Self::unexpected(&token, EXPECTED_OPERAND)),
        }
    }

    fn condition(&mut self, selector: Selector) -> Result<Condition, FilterPatternError> {
        let token = self.advance();
        let test = match token.kind {
            TokenKind::Operator(operator) => self.comparison(operator)?,
            TokenKind::BareWord(ref word) if word == "IS" => self.is_test()?,
            TokenKind::BareWord(ref word) if word == "NOT" => {
                self.expect(
                    |kind| matches!(kind, TokenKind::BareWord(word) if word == "EXISTS"),
                    "EXISTS after NOT",
                )?;
                ValueTest::NotExists
            }
            TokenKind::BareWord(ref word) if word == "EXISTS" => {
                return Err(FilterPatternError::new(
                    token.column,
                    FilterPatternProblem::Unsupported {
                        construct: "EXISTS",
                        instead: "write `$.field = *` to test that a field exists",
                    },
                ))
            }
            _ => return Err(Self::unexpected(&token, EXPECTED_COMPARISON)),
        };
        let selector_slot = match self
            .distinct_selectors
            .iter()
            .position(|seen| *seen == selector)
        {
            Some(slot) => slot,
            None => {
                self.distinct_selectors.push(selector.clone());
                self.distinct_selectors.len() - 1
            }
        };
        Ok(Condition {
            selector,
            selector_slot,
            test,
        })
    }

    fn is_test(&mut self) -> Result<ValueTest, FilterPatternError> {
        let token = self.advance();
        match token.kind {
            TokenKind::BareWord(ref word) => match word.as_str() {
                "TRUE" => Ok(ValueTest::IsTrue),
                "FALSE" => Ok(ValueTest::IsFalse),
                "NULL" => Ok(ValueTest::IsNull),
                "NOT" => Err(FilterPatternError::new(
                    token.column,
                    FilterPatternProblem::Unsupported {
                        construct: "IS NOT",
                        instead: "use != for values, or NOT EXISTS for absent fields",
                    },
                )),
                _ => Err(Self::unexpected(&token, "TRUE, FALSE or NULL after IS")),
            },
            _ => Err(Self::unexpected(&token, "TRUE, FALSE or NULL after IS")),
        }
    }

    fn comparison(
        &mut self,
        operator: ComparisonOperator,
    ) -> Result<ValueTest, FilterPatternError> {
        let token = self.advance();
        let value = match token.kind {
            TokenKind::QuotedString(ref text) => {
                ComparedValue::Text(TextPattern::from_written(text))
            }
            TokenKind::BareWord(ref word) => match parse_number(word) {
                Some(Ok(number)) => ComparedValue::Number(number),
                Some(Err(problem)) => return Err(FilterPatternError::new(token.column, problem)),
                None => ComparedValue::Text(TextPattern::from_written(word)),
            },
            TokenKind::Regex(ref term) => {
                self.regular_expressions += 1;
                if self.regular_expressions > MAX_REGULAR_EXPRESSIONS {
                    return Err(FilterPatternError::new(
                        token.column,
                        FilterPatternProblem::TooManyRegexes {
                            limit: MAX_REGULAR_EXPRESSIONS,
                        },
                    ));
                }
                ComparedValue::Regex(term.clone())
            }
            _ => return Err(Self::unexpected(&token, EXPECTED_VALUE)),
        };
        if !operator.is_equality() && !matches!(value, ComparedValue::Number(_)) {
            return Err(FilterPatternError::new(
                token.column,
                FilterPatternProblem::OrderingNeedsNumber {
                    operator: operator.symbol(),
                    found: token.describe(),
                },
            ));
        }
        Ok(ValueTest::Compare { operator, value })
    }
}

/// Reads a bare word as a number if it is written as one: `[+-]digits[.digits][(e|E)[+-]digits]`
/// (CloudWatch's "integers that contain plus or minus symbols and follow scientific notation",
/// with decimals). `None` when the word is not a number, so it is a string.
fn parse_number(word: &str) -> Option<Result<NumberLiteral, FilterPatternProblem>> {
    if !is_written_as_number(word) {
        return None;
    }
    let value = match word.parse::<f64>() {
        Ok(value) if value.is_finite() => value,
        _ => return Some(Err(FilterPatternProblem::NumberOutOfRange(word.to_owned()))),
    };
    let is_integer = !word.contains(['.', 'e', 'E']);
    let integer = if is_integer {
        word.parse::<i128>().ok()
    } else {
        None
    };
    Some(Ok(NumberLiteral {
        written: word.to_owned(),
        value,
        integer,
    }))
}

pub(super) fn is_written_as_number(word: &str) -> bool {
    let unsigned = word.strip_prefix(['+', '-']).unwrap_or(word);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (unsigned, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (mantissa, None),
    };
    let all_digits =
        |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    all_digits(whole)
        && fraction.is_none_or(all_digits)
        && exponent.is_none_or(|exponent| {
            all_digits(exponent.strip_prefix(['+', '-']).unwrap_or(exponent))
        })
}

fn push_flattened_all(members: &mut Vec<Expression>, member: Expression) {
    match member {
        Expression::All(inner) => members.extend(inner),
        other => members.push(other),
    }
}

fn push_flattened_any_of(members: &mut Vec<Expression>, member: Expression) {
    match member {
        Expression::AnyOf(inner) => members.extend(inner),
        other => members.push(other),
    }
}

/// One member stands for itself; several make the combination.
fn single_or(
    mut members: Vec<Expression>,
    combine: fn(Vec<Expression>) -> Expression,
) -> Expression {
    if members.len() == 1 {
        if let Some(only) = members.pop() {
            return only;
        }
    }
    combine(members)
}
