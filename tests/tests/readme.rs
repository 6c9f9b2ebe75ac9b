//! The README claims only what works: its "What works today" list names, for every claim,
//! the commands that do it, and every command the README shows — in that list and in its
//! code blocks — exists in the binaries as built (`<binary> <subcommand…> --help` succeeds).
//! What is not built yet is named only under "Not yet".

use std::path::Path;
use std::process::Command;

use orgtrail_tests::binary;

const BINARIES: [&str; 3] = ["orgtrail", "orgtrail-aggregator", "orgtrail-collector"];

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The lines of the section headed `## {title}`, up to the next `## `.
fn section<'a>(text: &'a str, title: &str) -> Option<Vec<&'a str>> {
    let heading = format!("## {title}");
    let mut lines = text.lines().skip_while(|line| line.trim() != heading);
    lines.next()?;
    Some(lines.take_while(|line| !line.starts_with("## ")).collect())
}

/// A command as a binary and the subcommand words that follow it, up to the first option,
/// placeholder or ellipsis; `a|b` alternatives give one command each.
fn commands_of(line: &str) -> Vec<(String, Vec<String>)> {
    let mut tokens = line.split_whitespace();
    let Some(first) = tokens.next() else {
        return Vec::new();
    };
    if !BINARIES.contains(&first) {
        return Vec::new();
    }
    let mut paths: Vec<Vec<String>> = vec![Vec::new()];
    for token in tokens {
        let token = token.trim_end_matches([',', '.', ';', ')']);
        let is_word = !token.is_empty()
            && token
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-' || c == '|')
            && !token.starts_with('-');
        if !is_word {
            break;
        }
        paths = paths
            .into_iter()
            .flat_map(|path| {
                token.split('|').map(move |word| {
                    let mut extended = path.clone();
                    extended.push(word.to_string());
                    extended
                })
            })
            .collect();
    }
    paths
        .into_iter()
        .map(|path| (first.to_string(), path))
        .collect()
}

/// The backticked spans of a text.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn assert_command_exists(binary_name: &str, words: &[String], context: &str) {
    let output = Command::new(binary(binary_name))
        .args(words)
        .arg("--help")
        .output()
        .unwrap_or_else(|error| panic!("cannot run {binary_name}: {error}"));
    assert!(
        output.status.success(),
        "the README shows `{binary_name} {}` ({context}), which does not exist:\n{}",
        words.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_claim_of_what_works_names_commands_that_exist() {
    let text = readme();
    let works = section(&text, "What works today")
        .expect("the README lists what works today under `## What works today`");
    let claims: Vec<String> = works.join("\n").split("\n- ").map(str::to_string).collect();
    let claims: Vec<&String> = claims
        .iter()
        .filter(|claim| !claim.trim().is_empty())
        .collect();
    assert!(!claims.is_empty(), "`## What works today` lists nothing");
    for claim in claims {
        let commands: Vec<(String, Vec<String>)> = backticked(claim)
            .into_iter()
            .flat_map(commands_of)
            .collect();
        assert!(
            !commands.is_empty(),
            "a claim names no command that does it: {claim}"
        );
        for (binary_name, words) in commands {
            assert_command_exists(&binary_name, &words, "what works today");
        }
    }
}

#[test]
fn every_command_in_the_readme_exists() {
    let text = readme();
    let mut in_block = false;
    let mut checked = 0;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        let candidates: Vec<&str> = if in_block {
            vec![line.trim()]
        } else {
            backticked(line)
        };
        for candidate in candidates {
            for (binary_name, words) in commands_of(candidate) {
                assert_command_exists(&binary_name, &words, candidate);
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "only {checked} commands found in the README");
}

#[test]
fn the_command_reader_reads_commands_as_the_readme_writes_them() {
    assert_eq!(
        commands_of("orgtrail retention list|get NAME [--version N|--history]"),
        vec![
            (
                "orgtrail".to_string(),
                vec!["retention".into(), "list".into()]
            ),
            (
                "orgtrail".to_string(),
                vec!["retention".into(), "get".into()]
            ),
        ]
    );
    assert_eq!(
        commands_of("orgtrail events lookup --output jsonl"),
        vec![(
            "orgtrail".to_string(),
            vec!["events".into(), "lookup".into()]
        )]
    );
    assert_eq!(commands_of("cargo xtask test"), Vec::new());
    assert_eq!(backticked("a `orgtrail x` b `y`"), vec!["orgtrail x", "y"]);
    let text = "## A\n- one\n## B\nx\n";
    assert_eq!(section(text, "A"), Some(vec!["- one"]));
    assert_eq!(section(text, "C"), None);
}
