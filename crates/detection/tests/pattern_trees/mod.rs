//! Generated filter patterns for the property tests: a tree of conditions, `&&`, `||` and
//! parentheses (`tree()`), written out with random spacing, quoting and redundant parentheses
//! (`Writer`), and a reference evaluator of the tree written from `docs/filter-patterns.md`
//! (`reference_matches`), independent of the crate's parser and evaluator.

use orgtrail_detection::FilterPattern;
use proptest::prelude::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Generated patterns

#[derive(Clone, Debug)]
pub enum Tree {
    All(Vec<Tree>),
    AnyOf(Vec<Tree>),
    Condition(Condition),
}

#[derive(Clone, Debug)]
pub struct Condition {
    pub selector: Vec<Step>,
    pub test: Test,
}

#[derive(Clone, Debug)]
pub enum Step {
    Property(&'static str),
    Index(usize),
}

#[derive(Clone, Debug)]
pub enum Test {
    /// `=` or `!=` with a string as written (wildcards included), quoted or not.
    Text {
        not_equal: bool,
        written: String,
        quoted: bool,
    },
    Number {
        operator: &'static str,
        written: String,
    },
    Regex {
        not_equal: bool,
        source: &'static str,
    },
    IsTrue,
    IsFalse,
    IsNull,
    NotExists,
}

pub const PROPERTY_NAMES: &[&str] = &["a", "b", "eventName", "x-y", "c_d", "Z9"];
const REGEXES: &[&str] = &[
    "^a",
    "b$",
    "[ab]+",
    r"\d{1,3}",
    "a|b",
    "x.?y",
    "key:v_#=@/;,-",
];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => prop::sample::select(PROPERTY_NAMES).prop_map(Step::Property),
        1 => (0usize..3).prop_map(Step::Index),
    ]
}

pub fn selector() -> impl Strategy<Value = Vec<Step>> {
    (
        prop::sample::select(PROPERTY_NAMES),
        prop::collection::vec(step(), 0..3),
    )
        .prop_map(|(first, rest)| {
            let mut steps = vec![Step::Property(first)];
            steps.extend(rest);
            steps
        })
}

/// A word that reads back unquoted as the same string: bare characters, not a number.
fn bare_word() -> impl Strategy<Value = String> {
    "[*]?[A-Za-z_][A-Za-z0-9_.-]{0,6}[*]?"
}

/// Any string a quoted value can hold, wildcards, quotes, backslashes and unicode included.
fn quoted_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[*]?[a-z\"\\\\ é€*.-]{0,6}[*]?",
        "\\PC{0,8}",
        Just(String::new()),
        Just("*".to_owned()),
    ]
}

fn number_text() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["", "-", "+"][..]),
        0u32..1000,
        prop::option::of(0u32..100),
        prop::option::of((prop::sample::select(&["e", "E"][..]), -5i32..5)),
    )
        .prop_map(|(sign, whole, fraction, exponent)| {
            let mut text = format!("{sign}{whole}");
            if let Some(fraction) = fraction {
                text.push_str(&format!(".{fraction}"));
            }
            if let Some((letter, power)) = exponent {
                text.push_str(&format!("{letter}{power}"));
            }
            text
        })
}

pub fn test() -> impl Strategy<Value = Test> {
    prop_oneof![
        4 => (any::<bool>(), bare_word(), any::<bool>()).prop_map(|(not_equal, written, quoted)| {
            Test::Text { not_equal, written, quoted }
        }),
        3 => (any::<bool>(), quoted_text()).prop_map(|(not_equal, written)| Test::Text {
            not_equal,
            written,
            quoted: true,
        }),
        3 => (
            prop::sample::select(&["=", "!=", "<", ">", "<=", ">="][..]),
            number_text(),
        )
            .prop_map(|(operator, written)| Test::Number { operator, written }),
        1 => (any::<bool>(), prop::sample::select(REGEXES))
            .prop_map(|(not_equal, source)| Test::Regex { not_equal, source }),
        1 => Just(Test::IsTrue),
        1 => Just(Test::IsFalse),
        1 => Just(Test::IsNull),
        1 => Just(Test::NotExists),
    ]
}

pub fn tree() -> impl Strategy<Value = Tree> {
    let leaf = (selector(), test())
        .prop_map(|(selector, test)| Tree::Condition(Condition { selector, test }));
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Tree::All),
            prop::collection::vec(inner, 2..4).prop_map(Tree::AnyOf),
        ]
    })
}

impl Tree {
    /// The strings and numbers the tree compares with, for records that come close to them.
    pub fn literals(&self, strings: &mut Vec<String>, numbers: &mut Vec<f64>) {
        match self {
            Tree::All(members) | Tree::AnyOf(members) => {
                for member in members {
                    member.literals(strings, numbers);
                }
            }
            Tree::Condition(condition) => match &condition.test {
                Test::Text { written, .. } => strings.push(written.trim_matches('*').to_owned()),
                Test::Number { written, .. } => numbers.push(written.parse().unwrap()),
                _ => {}
            },
        }
    }

    pub fn regex_count(&self) -> usize {
        match self {
            Tree::All(members) | Tree::AnyOf(members) => {
                members.iter().map(Tree::regex_count).sum()
            }
            Tree::Condition(condition) => usize::from(matches!(condition.test, Test::Regex { .. })),
        }
    }
}

/// How a tree is written out: spacing and optional parentheses drawn from a seed, so the same
/// tree is written many ways.
pub struct Writer {
    pub seed: u64,
}

impl Writer {
    fn next(&mut self) -> u64 {
        // xorshift: cheap, deterministic from the proptest-chosen seed.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    fn optional_space(&mut self) -> &'static str {
        ["", "", " ", "  ", "\t", "\n"][(self.next() % 6) as usize]
    }

    fn required_space(&mut self) -> String {
        format!(" {}", self.optional_space())
    }

    pub fn write_pattern(&mut self, tree: &Tree) -> String {
        let (before, after) = (self.optional_space(), self.optional_space());
        format!(
            "{before}{{{}{}}}{after}",
            self.write_tree(tree, false),
            self.optional_space()
        )
    }

    /// `in_all`: the tree is a member of an `&&`, so an `||` must be parenthesized.
    fn write_tree(&mut self, tree: &Tree, in_all: bool) -> String {
        let body = match tree {
            Tree::Condition(condition) => self.write_condition(condition),
            Tree::All(members) | Tree::AnyOf(members) => {
                let is_all = matches!(tree, Tree::All(_));
                let separator = if is_all { "&&" } else { "||" };
                let written: Vec<String> = members
                    .iter()
                    .map(|member| {
                        let text = self.write_tree(member, is_all);
                        format!("{}{text}{}", self.optional_space(), self.optional_space())
                    })
                    .collect();
                let joined = written.join(separator);
                if matches!(tree, Tree::AnyOf(_)) && in_all {
                    return format!("({joined})");
                }
                joined
            }
        };
        if self.next() & 3 == 0 {
            format!("({}{body}{})", self.optional_space(), self.optional_space())
        } else {
            body
        }
    }

    fn write_condition(&mut self, condition: &Condition) -> String {
        let mut text = String::from("$");
        for step in &condition.selector {
            match step {
                Step::Property(name) => text.push_str(&format!(".{name}")),
                Step::Index(index) => text.push_str(&format!("[{index}]")),
            }
        }
        let space = self.optional_space();
        let comparison = |operator: &str, value: String, writer: &mut Writer| {
            format!("{space}{operator}{}{value}", writer.optional_space())
        };
        let rest = match &condition.test {
            Test::Text {
                not_equal,
                written,
                quoted,
            } => {
                let value = if *quoted {
                    format!("\"{}\"", written.replace('\\', "\\\\").replace('"', "\\\""))
                } else {
                    written.clone()
                };
                comparison(if *not_equal { "!=" } else { "=" }, value, self)
            }
            Test::Number { operator, written } => comparison(operator, written.clone(), self),
            Test::Regex { not_equal, source } => comparison(
                if *not_equal { "!=" } else { "=" },
                format!("%{source}%"),
                self,
            ),
            Test::IsTrue => format!("{}IS{}TRUE", self.required_space(), self.required_space()),
            Test::IsFalse => format!("{}IS{}FALSE", self.required_space(), self.required_space()),
            Test::IsNull => format!("{}IS{}NULL", self.required_space(), self.required_space()),
            Test::NotExists => {
                format!(
                    "{}NOT{}EXISTS",
                    self.required_space(),
                    self.required_space()
                )
            }
        };
        text.push_str(&rest);
        text
    }
}

// ---------------------------------------------------------------------------------------------
// A reference evaluator of the trees, written from docs/filter-patterns.md

fn resolve<'a>(record: &'a Value, selector: &[Step]) -> Option<&'a Value> {
    let mut current = record;
    for step in selector {
        current = match step {
            Step::Property(name) => current.as_object()?.get(*name)?,
            Step::Index(index) => current.as_array()?.get(*index)?,
        };
    }
    Some(current)
}

fn wildcard_matches(written: &str, text: &str) -> bool {
    let (leading, rest) = match written.strip_prefix('*') {
        Some(rest) => (true, rest),
        None => (false, written),
    };
    let (trailing, inner) = match rest.strip_suffix('*') {
        Some(inner) => (true, inner),
        None => (false, rest),
    };
    match (leading, trailing) {
        (true, true) => text.contains(inner),
        (true, false) => text.ends_with(inner),
        (false, true) => text.starts_with(inner),
        (false, false) => text == inner,
    }
}

fn is_any_value(written: &str) -> bool {
    written == "*" || written == "**"
}

fn is_number(written: &str) -> bool {
    FilterPattern::parse(&format!("{{ $.n < {written} }}")).is_ok()
}

pub fn reference_matches(tree: &Tree, record: &Value) -> bool {
    match tree {
        Tree::All(members) => members
            .iter()
            .all(|member| reference_matches(member, record)),
        Tree::AnyOf(members) => members
            .iter()
            .any(|member| reference_matches(member, record)),
        Tree::Condition(condition) => {
            let selected = resolve(record, &condition.selector);
            match &condition.test {
                Test::NotExists => selected.is_none(),
                Test::IsNull => selected == Some(&Value::Null),
                Test::IsTrue => selected == Some(&Value::Bool(true)),
                Test::IsFalse => selected == Some(&Value::Bool(false)),
                Test::Text {
                    not_equal,
                    written,
                    quoted,
                } => {
                    if !quoted && is_number(written) {
                        unreachable!("bare_word() makes no numbers");
                    }
                    match selected {
                        Some(Value::String(text)) => wildcard_matches(written, text) != *not_equal,
                        Some(Value::Number(_)) => is_any_value(written) && !not_equal,
                        _ => false,
                    }
                }
                Test::Number { operator, written } => match selected {
                    Some(Value::Number(number)) => {
                        let left = number.as_f64().unwrap();
                        let right: f64 = written.parse().unwrap();
                        match *operator {
                            "=" => left == right,
                            "!=" => left != right,
                            "<" => left < right,
                            ">" => left > right,
                            "<=" => left <= right,
                            _ => left >= right,
                        }
                    }
                    _ => false,
                },
                Test::Regex { not_equal, source } => match selected {
                    Some(Value::String(text)) => {
                        let regex = regex_lite_free_match(source, text);
                        regex != *not_equal
                    }
                    _ => false,
                },
            }
        }
    }
}

/// The regular expressions of `REGEXES`, decided by hand so the reference does not share the
/// engine it checks.
fn regex_lite_free_match(source: &str, text: &str) -> bool {
    let bytes = text.as_bytes();
    match source {
        "^a" => text.starts_with('a'),
        "b$" => text.ends_with('b'),
        "[ab]+" => text.contains(['a', 'b']),
        r"\d{1,3}" => bytes.iter().any(u8::is_ascii_digit),
        "a|b" => text.contains(['a', 'b']),
        "x.?y" => {
            text.contains("xy")
                || text
                    .char_indices()
                    .filter(|(_, character)| *character == 'x')
                    .any(|(position, _)| {
                        let mut after = text[position + 1..].chars();
                        after.next().is_some_and(|character| character != '\n')
                            && after.next() == Some('y')
                    })
        }
        "key:v_#=@/;,-" => text.contains("key:v_#=@/;,-"),
        other => unreachable!("no reference for {other}"),
    }
}
