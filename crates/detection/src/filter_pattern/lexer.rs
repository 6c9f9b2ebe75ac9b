//! Splits a pattern's text into tokens, each with the column it starts at. Selectors are split
//! into their steps here and regular expressions are checked against CloudWatch's character set
//! and compiled here, so the parser deals in finished pieces.

use super::ast::{ComparisonOperator, RegexTerm, Selector, SelectorStep};
use super::error::{FilterPatternError, FilterPatternProblem};

/// Bounds the compiled size of one regular expression. Patterns are at most 1024 characters,
/// but a counted repetition (`a{1000}`) multiplies; this keeps one term's program small.
const REGEX_SIZE_LIMIT_BYTES: usize = 1 << 20;
/// CloudWatch has no groups, so a regular expression never needs to nest deeply.
const REGEX_NEST_LIMIT: u32 = 32;

#[derive(Clone, Debug)]
pub(super) enum TokenKind {
    OpenBrace,
    CloseBrace,
    OpenParenthesis,
    CloseParenthesis,
    And,
    Or,
    Operator(ComparisonOperator),
    Selector(Selector),
    /// A `"…"` string, escapes resolved.
    QuotedString(String),
    /// An unquoted run of value characters: a word, a number, a dotted name, a wildcard, or one
    /// of the keywords IS, NOT, TRUE, FALSE, NULL, EXISTS.
    BareWord(String),
    Regex(RegexTerm),
    End,
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub(super) kind: TokenKind,
    /// 1-based character position of the token's first character.
    pub(super) column: usize,
}

impl Token {
    /// How the token is named in an error's "found …".
    pub(super) fn describe(&self) -> String {
        match &self.kind {
            TokenKind::OpenBrace => "\"{\"".to_owned(),
            TokenKind::CloseBrace => "\"}\"".to_owned(),
            TokenKind::OpenParenthesis => "\"(\"".to_owned(),
            TokenKind::CloseParenthesis => "\")\"".to_owned(),
            TokenKind::And => "\"&&\"".to_owned(),
            TokenKind::Or => "\"||\"".to_owned(),
            TokenKind::Operator(operator) => format!("\"{}\"", operator.symbol()),
            TokenKind::Selector(selector) => format!("selector {selector}"),
            TokenKind::QuotedString(text) => format!("string {text:?}"),
            TokenKind::BareWord(word) => format!("{word:?}"),
            TokenKind::Regex(term) => format!("regular expression %{}%", term.source),
            TokenKind::End => "end of pattern".to_owned(),
        }
    }
}

/// The characters an unquoted value may have. CloudWatch's guide asks for quotes around
/// anything but letters, digits and `_`; CIS and the AWS guide itself write dotted names
/// (`kms.amazonaws.com`, `123.123.*`), and numbers need `-`, `+` and `.`.
pub(super) fn is_bare_word_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '-' | '+' | '*')
}

/// Property names in selectors: "alphanumeric strings that support hyphen and underscore".
pub(super) fn is_property_name_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '_' | '-')
}

/// The symbols and operators CloudWatch's regular-expression page lists; anything else,
/// parentheses and multi-byte characters included, is refused.
fn is_regex_character(character: char) -> bool {
    character.is_ascii_alphanumeric()
        || matches!(
            character,
            ':' | '_' | '#' | '=' | '@' | '/' | ';' | ',' | '-' // symbols
                | '^' | '$' | '?' | '[' | ']' | '{' | '}' | '|' | '\\' | '*' | '+' | '.' // operators
        )
}

/// Tokenizes the whole pattern; the last token is always `End`.
pub(super) fn tokenize(characters: &[char]) -> Result<Vec<Token>, FilterPatternError> {
    let mut lexer = Lexer {
        characters,
        position: 0,
    };
    let mut tokens = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let is_end = matches!(token.kind, TokenKind::End);
        tokens.push(token);
        if is_end {
            return Ok(tokens);
        }
    }
}

struct Lexer<'a> {
    characters: &'a [char],
    /// Index of the next character to read (its column is `position + 1`).
    position: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.characters.get(self.position).copied()
    }

    fn peek_second(&self) -> Option<char> {
        self.characters.get(self.position + 1).copied()
    }

    fn column(&self) -> usize {
        self.position + 1
    }

    fn error_here(&self, problem: FilterPatternProblem) -> FilterPatternError {
        FilterPatternError::new(self.column(), problem)
    }

    fn next_token(&mut self) -> Result<Token, FilterPatternError> {
        while self.peek().is_some_and(char::is_whitespace) {
            self.position += 1;
        }
        let column = self.column();
        let Some(character) = self.peek() else {
            return Ok(Token {
                kind: TokenKind::End,
                column,
            });
        };
        let kind = match character {
            '{' => self.single(TokenKind::OpenBrace),
            '}' => self.single(TokenKind::CloseBrace),
            '(' => self.single(TokenKind::OpenParenthesis),
            ')' => self.single(TokenKind::CloseParenthesis),
            '&' => self.doubled('&', TokenKind::And, "&&")?,
            '|' => self.doubled('|', TokenKind::Or, "||")?,
            '=' => self.single(TokenKind::Operator(ComparisonOperator::Equal)),
            '!' => {
                if self.peek_second() == Some('=') {
                    self.position += 2;
                    TokenKind::Operator(ComparisonOperator::NotEqual)
                } else {
                    return Err(self.error_here(FilterPatternProblem::Unexpected {
                        expected: "!= (a lone ! is not an operator)",
                        found: "\"!\"".to_owned(),
                    }));
                }
            }
            '<' | '>' => self.ordering_operator(character),
            '"' => TokenKind::QuotedString(self.quoted_string()?),
            '%' => TokenKind::Regex(self.regex()?),
            '$' => TokenKind::Selector(self.selector()?),
            character if is_bare_word_character(character) => {
                let start = self.position;
                while self.peek().is_some_and(is_bare_word_character) {
                    self.position += 1;
                }
                TokenKind::BareWord(self.text_between(start, self.position))
            }
            other => {
                return Err(self.error_here(FilterPatternProblem::UnexpectedCharacter(other)));
            }
        };
        Ok(Token { kind, column })
    }

    fn single(&mut self, kind: TokenKind) -> TokenKind {
        self.position += 1;
        kind
    }

    fn doubled(
        &mut self,
        character: char,
        kind: TokenKind,
        expected: &'static str,
    ) -> Result<TokenKind, FilterPatternError> {
        if self.peek_second() == Some(character) {
            self.position += 2;
            Ok(kind)
        } else {
            Err(self.error_here(FilterPatternProblem::Unexpected {
                expected,
                found: format!("{:?}", character.to_string()),
            }))
        }
    }

    fn ordering_operator(&mut self, character: char) -> TokenKind {
        let or_equal = self.peek_second() == Some('=');
        self.position += if or_equal { 2 } else { 1 };
        TokenKind::Operator(match (character, or_equal) {
            ('<', false) => ComparisonOperator::Less,
            ('<', true) => ComparisonOperator::LessOrEqual,
            (_, false) => ComparisonOperator::Greater,
            (_, true) => ComparisonOperator::GreaterOrEqual,
        })
    }

    fn text_between(&self, start: usize, end: usize) -> String {
        self.characters
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .collect()
    }

    /// `"…"` with `\"` and `\\` as the only escapes (those CloudFormation's and the CDK's
    /// quoting produce); any other backslash is refused rather than guessed at.
    fn quoted_string(&mut self) -> Result<String, FilterPatternError> {
        let opening_column = self.column();
        self.position += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(FilterPatternError::new(
                        opening_column,
                        FilterPatternProblem::UnterminatedString,
                    ))
                }
                Some('"') => {
                    self.position += 1;
                    return Ok(text);
                }
                Some('\\') => match self.peek_second() {
                    Some(escaped @ ('"' | '\\')) => {
                        text.push(escaped);
                        self.position += 2;
                    }
                    Some(other) => {
                        return Err(self.error_here(FilterPatternProblem::UnsupportedEscape(other)))
                    }
                    None => {
                        return Err(FilterPatternError::new(
                            opening_column,
                            FilterPatternProblem::UnterminatedString,
                        ))
                    }
                },
                Some(character) => {
                    text.push(character);
                    self.position += 1;
                }
            }
        }
    }

    /// `%…%`: the expression runs to the next `%` (CloudWatch allows no `%` inside one). The
    /// closing `%` is found first, so an unclosed expression is reported as such rather than
    /// as whatever character follows it.
    fn regex(&mut self) -> Result<RegexTerm, FilterPatternError> {
        let opening_column = self.column();
        let start = self.position + 1;
        let Some(length) = self
            .characters
            .get(start..)
            .and_then(|rest| rest.iter().position(|character| *character == '%'))
        else {
            return Err(FilterPatternError::new(
                opening_column,
                FilterPatternProblem::UnterminatedRegex,
            ));
        };
        self.position = start;
        while self.position < start + length {
            let character = self.peek().unwrap_or('%');
            let problem = if matches!(character, '(' | ')') {
                FilterPatternProblem::RegexParentheses
            } else if !character.is_ascii() {
                FilterPatternProblem::RegexMultiByteCharacter(character)
            } else if !is_regex_character(character) {
                FilterPatternProblem::RegexCharacterNotAllowed(character)
            } else {
                self.position += 1;
                continue;
            };
            return Err(self.error_here(problem));
        }
        let source = self.text_between(start, self.position);
        self.position += 1;
        if source.is_empty() {
            return Err(FilterPatternError::new(
                opening_column,
                FilterPatternProblem::EmptyRegex,
            ));
        }
        let compiled = regex_lite::RegexBuilder::new(&source)
            .size_limit(REGEX_SIZE_LIMIT_BYTES)
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
            .map_err(|error| {
                FilterPatternError::new(
                    opening_column,
                    FilterPatternProblem::InvalidRegex {
                        detail: first_line(&error.to_string()),
                    },
                )
            })?;
        Ok(RegexTerm { source, compiled })
    }

    /// `$.name`, then any number of `.name` and `[index]`.
    fn selector(&mut self) -> Result<Selector, FilterPatternError> {
        self.position += 1;
        if self.peek() != Some('.') {
            return Err(self.error_here(FilterPatternProblem::Unexpected {
                expected: "\".\" and a property name after $",
                found: self.describe_character_here(),
            }));
        }
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                Some('.') => {
                    self.position += 1;
                    let start = self.position;
                    while self.peek().is_some_and(is_property_name_character) {
                        self.position += 1;
                    }
                    if start == self.position {
                        return Err(self.error_here(FilterPatternProblem::Unexpected {
                            expected: "a property name (letters, digits, _ and -) after \".\"",
                            found: self.describe_character_here(),
                        }));
                    }
                    steps.push(SelectorStep::Property(
                        self.text_between(start, self.position),
                    ));
                }
                Some('[') => {
                    self.position += 1;
                    steps.push(SelectorStep::Index(self.array_index()?));
                }
                _ => return Ok(Selector { steps }),
            }
        }
    }

    /// The digits of `[n]` and its closing bracket; the opening one is already read.
    fn array_index(&mut self) -> Result<usize, FilterPatternError> {
        if self.peek() == Some('*') {
            return Err(self.error_here(FilterPatternProblem::Unsupported {
                construct: "the array wildcard [*]",
                instead: "select an element by its index, e.g. [0]",
            }));
        }
        let start = self.position;
        while self
            .peek()
            .is_some_and(|character| character.is_ascii_digit())
        {
            self.position += 1;
        }
        let digits = self.text_between(start, self.position);
        if digits.is_empty() {
            return Err(self.error_here(FilterPatternProblem::Unexpected {
                expected: "an array index (digits) after \"[\"",
                found: self.describe_character_here(),
            }));
        }
        let index = digits.parse::<usize>().map_err(|_| {
            FilterPatternError::new(start + 1, FilterPatternProblem::IndexOutOfRange(digits))
        })?;
        if self.peek() != Some(']') {
            return Err(self.error_here(FilterPatternProblem::Unexpected {
                expected: "\"]\" after the array index",
                found: self.describe_character_here(),
            }));
        }
        self.position += 1;
        Ok(index)
    }

    fn describe_character_here(&self) -> String {
        match self.peek() {
            Some(character) => format!("{:?}", character.to_string()),
            None => "end of pattern".to_owned(),
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("the expression does not compile")
        .to_owned()
}
