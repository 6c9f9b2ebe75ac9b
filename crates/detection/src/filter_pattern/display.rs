//! The canonical text of a pattern. Parsing it gives the same expression back, so printing is a
//! fixed point after one round.
//!
//! The canonical form is the spaced one: `{ … }` with a space inside the braces and around
//! every operator, strings always quoted, numbers and regular expressions as written, and
//! parentheses around every combination inside another (`a || (b && c)`), so the precedence of
//! `&&` over `||` is visible. Spacing and quotes can make it longer than the text it was
//! parsed from; when it would pass CloudWatch's 1024-character limit (and so no longer parse),
//! the compact form is printed instead: no optional spaces, unquoted words where a word reads
//! back as the same string, parentheses only where precedence needs them. The compact form is
//! never longer than any text that parses to the same expression.

use std::fmt::{self, Display, Formatter, Write};

use super::ast::{
    ComparedValue, Condition, Expression, Selector, SelectorStep, TextPattern, ValueTest,
};
use super::lexer::is_bare_word_character;
use super::MAX_PATTERN_CHARACTERS;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Spaced,
    Compact,
}

/// Writes the whole pattern, braces included, in its canonical form.
pub(super) fn write_pattern(f: &mut Formatter<'_>, expression: &Expression) -> fmt::Result {
    let mut spaced = String::new();
    write_braced(&mut spaced, expression, Style::Spaced)?;
    if spaced.chars().count() <= MAX_PATTERN_CHARACTERS {
        f.write_str(&spaced)
    } else {
        write_braced(f, expression, Style::Compact)
    }
}

fn write_braced(out: &mut impl Write, expression: &Expression, style: Style) -> fmt::Result {
    match style {
        Style::Spaced => out.write_str("{ ")?,
        Style::Compact => out.write_str("{")?,
    }
    write_expression(out, expression, style)?;
    match style {
        Style::Spaced => out.write_str(" }"),
        Style::Compact => out.write_str("}"),
    }
}

/// Recursion follows the expression's nesting, which the parser bounds.
fn write_expression(out: &mut impl Write, expression: &Expression, style: Style) -> fmt::Result {
    let (members, separator) = match (expression, style) {
        (Expression::All(members), Style::Spaced) => (members, " && "),
        (Expression::All(members), Style::Compact) => (members, "&&"),
        (Expression::AnyOf(members), Style::Spaced) => (members, " || "),
        (Expression::AnyOf(members), Style::Compact) => (members, "||"),
        (Expression::Condition(condition), _) => return write_condition(out, condition, style),
    };
    for (position, member) in members.iter().enumerate() {
        if position > 0 {
            out.write_str(separator)?;
        }
        let needs_parentheses = match member {
            Expression::Condition(_) => false,
            // An `||` (always inside `&&`, the parser flattens `||` in `||`) needs them; an `&&`
            // (always inside `||`) gets them for the reader.
            Expression::AnyOf(_) => true,
            Expression::All(_) => style == Style::Spaced,
        };
        if needs_parentheses {
            out.write_str("(")?;
            write_expression(out, member, style)?;
            out.write_str(")")?;
        } else {
            write_expression(out, member, style)?;
        }
    }
    Ok(())
}

fn write_condition(out: &mut impl Write, condition: &Condition, style: Style) -> fmt::Result {
    write!(out, "{}", condition.selector)?;
    // A keyword after a property name needs a space to end the name; after `]` it does not,
    // and the compact form leaves out what is not needed.
    let keyword_space = match (style, condition.selector.steps.last()) {
        (Style::Compact, Some(SelectorStep::Index(_))) => "",
        _ => " ",
    };
    let (operator, value) = match &condition.test {
        ValueTest::Compare { operator, value } => (operator, value),
        ValueTest::IsTrue => return write!(out, "{keyword_space}IS TRUE"),
        ValueTest::IsFalse => return write!(out, "{keyword_space}IS FALSE"),
        ValueTest::IsNull => return write!(out, "{keyword_space}IS NULL"),
        ValueTest::NotExists => return write!(out, "{keyword_space}NOT EXISTS"),
    };
    match style {
        Style::Spaced => write!(out, " {} ", operator.symbol())?,
        Style::Compact => out.write_str(operator.symbol())?,
    }
    match value {
        ComparedValue::Text(TextPattern::AnyValue) => out.write_str("*"),
        ComparedValue::Text(pattern) => {
            let written = pattern.written();
            if style == Style::Compact && reads_back_as_bare_word(&written) {
                out.write_str(&written)
            } else {
                write_quoted(out, &written)
            }
        }
        ComparedValue::Number(number) => out.write_str(&number.written),
        ComparedValue::Regex(term) => write!(out, "%{}%", term.source),
    }
}

/// Whether a string written without quotes is lexed as one word and read as that string (and
/// not as a number).
fn reads_back_as_bare_word(written: &str) -> bool {
    !written.is_empty()
        && written.chars().all(is_bare_word_character)
        && !super::parser::is_written_as_number(written)
}

/// A string in double quotes with `"` and `\` escaped, the only escapes the lexer reads.
fn write_quoted(out: &mut impl Write, text: &str) -> fmt::Result {
    out.write_str("\"")?;
    for character in text.chars() {
        if matches!(character, '"' | '\\') {
            out.write_str("\\")?;
        }
        out.write_char(character)?;
    }
    out.write_str("\"")
}

impl Display for Selector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for step in &self.steps {
            match step {
                SelectorStep::Property(name) => write!(f, ".{name}")?,
                SelectorStep::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}
