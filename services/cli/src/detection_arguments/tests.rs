//! Flags → requests of `rules add|test`, `detections replay`, `findings list` and
//! `suppressions create`, parsed by the real command line (`crate::Arguments`), so the wiring
//! in `main.rs` is tested too; and rule files read from files and directories.

use chrono::TimeZone;
use clap::Parser;

use super::*;
use crate::findings_command::{FindingsCommand, SuppressionsCommand};
use crate::rules_command::{DetectionsCommand, RulesCommand};
use crate::{Arguments, Command};

fn parse(words: &[&str]) -> Result<Command, clap::Error> {
    Arguments::try_parse_from(std::iter::once("orgtrail").chain(words.iter().copied()))
        .map(|arguments| arguments.command)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0)
        .single()
        .expect("a valid time")
}

fn at(text: &str) -> Option<prost_types::Timestamp> {
    let time = DateTime::parse_from_rfc3339(text).expect("RFC 3339");
    Some(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).expect("nanos"),
    })
}

fn findings_filter(words: &[&str]) -> anyhow::Result<pb::ListFindingsRequest> {
    let mut all = vec!["findings", "list"];
    all.extend_from_slice(words);
    match parse(&all) {
        Ok(Command::Findings(FindingsCommand::List(arguments))) => {
            list_findings_request(&arguments, now())
        }
        Ok(_) => panic!("{all:?} is not findings list"),
        Err(error) => panic!("{all:?}: {error}"),
    }
}

fn suppression_request(words: &[&str]) -> anyhow::Result<pb::CreateSuppressionRequest> {
    let mut all = vec!["suppressions", "create"];
    all.extend_from_slice(words);
    match parse(&all) {
        Ok(Command::Suppressions(SuppressionsCommand::Create(arguments))) => {
            create_suppression_request(&arguments, now())
        }
        Ok(_) => panic!("{all:?} is not suppressions create"),
        Err(error) => panic!("{all:?}: {error}"),
    }
}

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TemporaryDirectory(PathBuf);

impl TemporaryDirectory {
    fn new(name: &str) -> TemporaryDirectory {
        let path = std::env::temp_dir().join(format!(
            "orgtrail-cli-{name}-{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        std::fs::create_dir_all(&path).expect("a temporary directory");
        TemporaryDirectory(path)
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("a directory");
        }
        std::fs::write(&path, text).expect("a file");
        path
    }
}

impl Drop for TemporaryDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_findings_filter_takes_every_flag_and_repeats_the_list_flags() {
    let request = findings_filter(&[
        "--level",
        "high",
        "--rule",
        "38e7f511-3f74-41d4-836e-f57dfa18eead",
        "--rule",
        "root-login",
        "--account",
        "111111111111",
        "--state",
        "open",
        "--state",
        "false-positive",
        "--state",
        "suppressed",
        "--since",
        "7d",
        "--kind",
        "sigma",
    ])
    .expect("the filter is made");
    assert_eq!(
        request,
        pb::ListFindingsRequest {
            min_level: "high".into(),
            rule_ids: vec![
                "38e7f511-3f74-41d4-836e-f57dfa18eead".into(),
                "root-login".into()
            ],
            accounts: vec!["111111111111".into()],
            states: vec!["open".into(), "false_positive".into(), "suppressed".into()],
            since: at("2026-11-23T12:00:00Z"),
            kind: "sigma".into(),
            max_results: 0,
            next_token: String::new(),
        }
    );
    assert_eq!(
        findings_filter(&[]).expect("made"),
        pb::ListFindingsRequest::default(),
        "no flag filters nothing"
    );
    assert_eq!(
        findings_filter(&["--state", "false_positive", "--kind", "alarm"])
            .expect("made")
            .states,
        ["false_positive"]
    );
}

#[test]
fn a_findings_filter_refuses_what_the_api_does_not_know() {
    for words in [
        &["findings", "list", "--level", "severe"][..],
        &["findings", "list", "--state", "closed"][..],
        &["findings", "list", "--kind", "guardduty"][..],
        &["findings", "list", "--max", "-1"][..],
    ] {
        assert!(parse(words).is_err(), "{words:?} is taken");
    }
    let error = findings_filter(&["--since", "last week"]).expect_err("not a time");
    assert!(error.to_string().contains("is not a time"), "{error}");
}

#[test]
fn levels_are_ordered_as_sigma_orders_them() {
    let levels = FindingLevel::value_variants();
    let names: Vec<&str> = levels.iter().map(|level| level.as_str()).collect();
    assert_eq!(
        names,
        ["informational", "low", "medium", "high", "critical"]
    );
    assert!(levels.windows(2).all(|pair| pair[0] < pair[1]));
}

#[test]
fn a_suppression_takes_its_scope_and_an_expiry_from_now() {
    let request = suppression_request(&[
        "--rule",
        "905d389b-b853-46d0-9d3d-dea0d3a3cd49",
        "--account",
        "111111111111",
        "--principal",
        "arn:aws:iam::111111111111:role/nightly",
        "--principal",
        "arn:aws:iam::111111111111:role/backup",
        "--source-ip",
        "10.0.0.0/8",
        "--reason",
        "the nightly job",
        "--expires",
        "+7d",
    ])
    .expect("the request is made");
    assert_eq!(
        request,
        pb::CreateSuppressionRequest {
            rule_id: "905d389b-b853-46d0-9d3d-dea0d3a3cd49".into(),
            accounts: vec!["111111111111".into()],
            principals: vec![
                "arn:aws:iam::111111111111:role/nightly".into(),
                "arn:aws:iam::111111111111:role/backup".into()
            ],
            source_ips: vec!["10.0.0.0/8".into()],
            reason: "the nightly job".into(),
            expires_at: at("2026-12-07T12:00:00Z"),
        }
    );
    let dated = suppression_request(&[
        "--rule",
        "r",
        "--account",
        "1",
        "--reason",
        "x",
        "--expires",
        "2026-12-31",
    ])
    .expect("made");
    assert_eq!(dated.expires_at, at("2026-12-31T23:59:59.999999Z"));
}

#[test]
fn a_suppression_needs_a_rule_a_reason_and_a_future_expiry() {
    let base = ["suppressions", "create", "--rule", "r", "--account", "1"];
    let with = |extra: &[&'static str]| {
        let mut all = base.to_vec();
        all.extend_from_slice(extra);
        all
    };
    assert!(parse(&with(&["--reason", "x"])).is_err(), "no --expires");
    assert!(parse(&with(&["--expires", "+1d"])).is_err(), "no --reason");
    assert!(parse(&[
        "suppressions",
        "create",
        "--reason",
        "x",
        "--expires",
        "+1d"
    ])
    .is_err());
    let error = suppression_request(&["--rule", "r", "--reason", "x", "--expires", "7d"])
        .expect_err("a span before now is refused");
    assert!(
        format!("{error:#}").starts_with("--expires: \"7d\" is a span before now"),
        "{error:#}"
    );
    let error = suppression_request(&["--rule", "r", "--reason", "x", "--expires", "2020-01-01"])
        .expect_err("the past is refused");
    assert!(
        format!("{error:#}").contains("not in the future"),
        "{error:#}"
    );
}

#[test]
fn a_rule_test_sends_its_range_and_size_and_a_replay_needs_both_ends() {
    let command = parse(&[
        "rules",
        "test",
        "rule.yml",
        "--start",
        "2024-07-30",
        "--end",
        "2024-11-30T08:43:18Z",
        "--events",
        "25",
    ]);
    let Ok(Command::Rules(RulesCommand::Test(arguments))) = command else {
        panic!("not rules test");
    };
    assert_eq!(arguments.file, PathBuf::from("rule.yml"));
    let request = test_rule_request(&arguments, "title: x".into(), now()).expect("made");
    assert_eq!(
        request,
        pb::TestRuleRequest {
            yaml: "title: x".into(),
            start_time: at("2024-07-30T00:00:00Z"),
            end_time: at("2024-11-30T08:43:18Z"),
            max_events: 25,
        }
    );
    let Ok(Command::Rules(RulesCommand::Test(arguments))) = parse(&["rules", "test", "r.yml"])
    else {
        panic!("not rules test");
    };
    let request = test_rule_request(&arguments, String::new(), now()).expect("made");
    assert_eq!(
        (request.start_time, request.end_time, request.max_events),
        (None, None, 0),
        "all of history, the server's default size"
    );

    let Ok(Command::Detections(DetectionsCommand::Replay(arguments))) = parse(&[
        "detections",
        "replay",
        "--start",
        "30d",
        "--end",
        "2026-11-30",
    ]) else {
        panic!("not detections replay");
    };
    assert_eq!(
        replay_request(&arguments, now()).expect("made"),
        pb::ReplayDetectionsRequest {
            start_time: at("2026-10-31T12:00:00Z"),
            end_time: at("2026-11-30T23:59:59.999999Z"),
        }
    );
    assert!(parse(&["detections", "replay", "--start", "7d"]).is_err());
    assert!(parse(&["detections", "replay", "--end", "7d"]).is_err());
}

#[test]
fn rule_files_are_read_from_files_and_directories_in_path_order() {
    let directory = TemporaryDirectory::new("rules");
    let single = directory.write("single.txt", "title: single");
    directory.write("folder/b.yaml", "title: b");
    directory.write("folder/a.yml", "title: a");
    directory.write("folder/nested/c.yml", "title: c");
    directory.write("folder/notes.md", "not a rule");
    let files =
        read_rule_files(&[single.clone(), directory.0.join("folder")]).expect("the files are read");
    let read: Vec<(String, String)> = files
        .into_iter()
        .map(|file| (file.name, file.yaml))
        .collect();
    let name = |relative: &str| directory.0.join(relative).display().to_string();
    assert_eq!(
        read,
        [
            (single.display().to_string(), "title: single".to_string()),
            (name("folder/a.yml"), "title: a".to_string()),
            (name("folder/b.yaml"), "title: b".to_string()),
            (name("folder/nested/c.yml"), "title: c".to_string()),
        ],
        "a file given is taken whatever its name; a directory gives its *.yml and *.yaml"
    );
}

#[test]
fn a_rule_file_that_cannot_be_read_stops_everything_and_is_named() {
    let directory = TemporaryDirectory::new("unreadable");
    let good = directory.write("good.yml", "title: good");
    let missing = directory.0.join("missing.yml");
    let error = read_rule_files(&[good, missing.clone()]).expect_err("nothing is sent");
    assert!(
        format!("{error:#}").starts_with(&format!("cannot read {}", missing.display())),
        "{error:#}"
    );
    let empty = directory.0.join("empty");
    std::fs::create_dir_all(&empty).expect("a directory");
    let error =
        read_rule_files(std::slice::from_ref(&empty)).expect_err("an empty directory is refused");
    assert_eq!(
        error.to_string(),
        format!("{}: no *.yml or *.yaml files in it", empty.display())
    );
    assert!(
        parse(&["rules", "add"]).is_err(),
        "rules add without a file is refused"
    );
    let Ok(Command::Rules(RulesCommand::Add(arguments))) =
        parse(&["rules", "add", "a.yml", "b", "--disabled"])
    else {
        panic!("not rules add");
    };
    assert_eq!(
        arguments.paths,
        [PathBuf::from("a.yml"), PathBuf::from("b")]
    );
    assert!(arguments.disabled);
}
