//! The demo's detection steps: SigmaHQ's AWS CloudTrail rules built in (and the one left out,
//! with the reason), the findings they raised on the sample organization's records as they
//! were stored — which rules fired, at what level, by whose rule — checked against the
//! independent evaluator's `data/sigma/EXPECTED.json`; one finding with its event, triaged;
//! then a rule of the team's own from a file, backtested and added, a suppression of
//! known-good activity, and a replay raising what live ingest would have raised (checked
//! against the records), then a second replay raising nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context};
use orgtrail_detection::sigma::{
    builtin_sigma_rules, parse_sigma_rule, BUILTIN_SIGMA_RULES_ATTRIBUTION,
};
use serde_json::Value;

use crate::bench_data::sample_records;
use crate::demo::{check_interrupted, heading, DemoCli};
use crate::workspace_root;

/// Rows of `orgtrail rules list` shown (the rest are counted).
const RULE_ROWS: usize = 8;
/// The finding shown and acknowledged: SigmaHQ's *AWS VPC Flow Logs Deleted* (level high).
const SHOWN_RULE_ID: &str = "e386b9b5-af12-450e-afff-761730fb8a98";
const ACK_REASON: &str = "flow logs deleted during the attack simulation of 2023-07-10; asking the account's owner to turn them back on";

/// The team's rule: its file in the demo's folder, its id, and its text. It is the team's own
/// (not derived from a SigmaHQ rule), so its author is the team.
const TEAM_RULE_FOLDER: &str = "team-rules";
const TEAM_RULE_FILE: &str = "secrets_read_by_iam_user.yml";
const TEAM_RULE_ID: &str = "aacdbebf-602a-4562-b055-8b5e503869d6";
const TEAM_RULE: &str = r#"title: Secrets Manager Secret Read With IAM User Credentials
id: aacdbebf-602a-4562-b055-8b5e503869d6
status: experimental
description: A secret's value was read with an IAM user's long-term credentials. Our
  applications read secrets through roles; a person or a leaked access key reading secret
  values is how credentials are harvested.
references:
  - https://stratus-red-team.cloud/attack-techniques/AWS/aws.credential-access.secretsmanager-retrieve-secrets/
  - https://stratus-red-team.cloud/attack-techniques/AWS/aws.credential-access.secretsmanager-batch-retrieve-secrets/
author: Example Corp security team (orgtrail demo)
date: 2026-12-01
tags:
  - attack.credential-access
  - attack.t1555.006
logsource:
  product: aws
  service: cloudtrail
detection:
  selection:
    eventSource: secretsmanager.amazonaws.com
    eventName:
      - GetSecretValue
      - BatchGetSecretValue
    userIdentity.type: IAMUser
  condition: selection
falsepositives:
  - An administrator reading a secret by hand during an incident or a migration
level: medium
"#;
/// Whose reads of secrets are known-good: the user who ran the planned attack simulation.
const SUPPRESSED_PRINCIPAL: &str = "arn:aws:iam::123837392027:user/bert-jan";
const SUPPRESSION_REASON: &str =
    "bert-jan ran the planned attack simulation of 2023-07-10; reading the secrets it made was part of it";
/// The window of event time the team's rule is backtested and replayed over: the samples'
/// last two years (the attack simulation of 2023 and the Stratus detonations of 2024).
const WINDOW_START: &str = "2023-01-01";
const WINDOW_END: &str = "2024-12-31";

pub fn show_findings(
    cli: &DemoCli<'_>,
    work: &Path,
    first_step: usize,
    interrupted: &AtomicBool,
) -> anyhow::Result<usize> {
    let mut step = first_step;
    heading(&format!(
        "{step}. Sigma rules: SigmaHQ's AWS CloudTrail rules, built in, evaluated on every event in the transaction that stores it"
    ));
    let usable = show_builtin_rules(cli)?;

    check_interrupted(interrupted)?;
    step += 1;
    heading(&format!(
        "{step}. The findings they raised on the sample records: which rules fired, their levels and authors"
    ));
    let shown_finding = show_sigma_findings(cli, usable)?;

    check_interrupted(interrupted)?;
    step += 1;
    heading(&format!(
        "{step}. One finding, with its rule's author, the event behind it and its original record"
    ));
    let finding_id = shown_finding.to_string();
    cli.show(&["findings", "show", &finding_id])?;

    check_interrupted(interrupted)?;
    step += 1;
    heading(&format!(
        "{step}. Triage: acknowledged, with a reason (kept with the finding and in the audit log)"
    ));
    cli.show(&["findings", "ack", &finding_id, "--reason", ACK_REASON])?;

    check_interrupted(interrupted)?;
    step += 1;
    heading(&format!(
        "{step}. A rule of the team's own, from a file: backtested over the stored events (raising nothing), then added"
    ));
    let folder = work.join(TEAM_RULE_FOLDER);
    std::fs::create_dir_all(&folder)?;
    std::fs::write(folder.join(TEAM_RULE_FILE), TEAM_RULE)?;
    let rule_path = format!("{TEAM_RULE_FOLDER}/{TEAM_RULE_FILE}");
    // What the replay should raise, read from the sample files while the rule is backtested.
    let expected = std::thread::spawn(team_rule_matches_in_samples);
    println!("{rule_path}:");
    for line in TEAM_RULE.lines() {
        println!("  {line}");
    }
    cli.show_in(
        work,
        &[
            "rules",
            "test",
            &rule_path,
            "--start",
            WINDOW_START,
            "--end",
            WINDOW_END,
            "--events",
            "3",
        ],
    )?;
    cli.show_in(work, &["rules", "add", &format!("{TEAM_RULE_FOLDER}/")])?;
    println!("(from now on it is evaluated on each event as it is stored; the events stored before it are not evaluated again until a replay)");

    check_interrupted(interrupted)?;
    step += 1;
    heading(&format!(
        "{step}. A suppression: known-good activity the rule should not raise (kept as suppressed findings and counted, never notified)"
    ));
    cli.show(&[
        "suppressions",
        "create",
        "--rule",
        TEAM_RULE_ID,
        "--principal",
        SUPPRESSED_PRINCIPAL,
        "--reason",
        SUPPRESSION_REASON,
        "--expires",
        "+30d",
    ])?;

    check_interrupted(interrupted)?;
    step += 1;
    heading(&format!(
        "{step}. A replay of the samples' last two years (event time): what live ingest would have raised with the rules and suppressions as they are now"
    ));
    let expected = expected
        .join()
        .map_err(|_| anyhow::anyhow!("reading the sample records panicked"))??;
    let replay = run_replay(cli)?;
    if replay != expected {
        bail!(
            "the replay raised {} findings and suppressed {}; the sample records say {} and {}",
            replay.raised,
            replay.suppressed,
            expected.raised,
            expected.suppressed
        );
    }
    println!(
        "(the team's rule matches {} sample records of the window: {} by {SUPPRESSED_PRINCIPAL}, kept as suppressed, and {} raised; every other match was raised before, at ingest)",
        expected.raised + expected.suppressed,
        expected.suppressed,
        expected.raised
    );
    cli.show(&["findings", "list", "--rule", TEAM_RULE_ID, "--max", "5"])?;
    cli.show(&["suppressions", "list"])?;

    check_interrupted(interrupted)?;
    step += 1;
    heading(&format!(
        "{step}. The same replay again: a finding is raised once per rule and event"
    ));
    let again = run_replay(cli)?;
    if again != ReplayRaised::default() {
        bail!(
            "the second replay raised {} findings and suppressed {}: it should raise nothing",
            again.raised,
            again.suppressed
        );
    }
    Ok(step)
}

/// Shows the rules (the first rows of the table), checks that the built-in ones are SigmaHQ's
/// rules but those orgtrail refuses, and says which are left out and why. Returns how many
/// are built in.
fn show_builtin_rules(cli: &DemoCli<'_>) -> anyhow::Result<usize> {
    let shipped = builtin_sigma_rules();
    let mut usable = 0;
    let mut left_out = Vec::new();
    for file in shipped {
        match parse_sigma_rule(file.yaml) {
            Ok(_) => usable += 1,
            Err(error) => left_out.push((file, error.to_string())),
        }
    }
    let listed: Value = serde_json::from_str(&cli.output(&["rules", "list", "--output", "json"])?)
        .context("orgtrail rules list --output json did not print JSON")?;
    let builtin = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter(|rule| rule["origin"] == "builtin")
        .count();
    if builtin != usable {
        bail!("the aggregator holds {builtin} built-in rules; {usable} of SigmaHQ's pass orgtrail's checks");
    }
    println!("{BUILTIN_SIGMA_RULES_ATTRIBUTION}.");
    cli.show_head(&["rules", "list"], RULE_ROWS + 1, "rules")?;
    println!(
        "{usable} of SigmaHQ's {} rules are built in.",
        shipped.len()
    );
    for (file, error) in left_out {
        let title = file
            .yaml
            .lines()
            .find_map(|line| line.strip_prefix("title:"))
            .map_or(file.file_name, str::trim);
        // The refusal's first clause; the rest lists CloudTrail's record fields.
        let reason = error.split(" (").next().unwrap_or(&error);
        println!("Left out: {title} ({}): {reason}, so it could never fire (the aggregator says so in its log at every start).", file.file_name);
    }
    Ok(usable)
}

/// Tallies the Sigma findings per rule, checks them against `data/sigma/EXPECTED.json`, prints
/// the tally and the high ones; returns the id of the finding to show.
fn show_sigma_findings(cli: &DemoCli<'_>, usable: usize) -> anyhow::Result<i64> {
    let listed: Value = serde_json::from_str(&cli.output(&[
        "findings", "list", "--kind", "sigma", "--max", "5000", "--output", "json",
    ])?)
    .context("orgtrail findings list --output json did not print JSON")?;
    let findings = listed.as_array().context("findings list printed no list")?;
    let mut per_rule: BTreeMap<String, RuleTally> = BTreeMap::new();
    for finding in findings {
        let rule_id = finding["ruleId"].as_str().unwrap_or_default().to_string();
        let tally = per_rule.entry(rule_id).or_insert_with(|| RuleTally {
            title: text(&finding["title"]),
            level: text(&finding["level"]),
            author: text(&finding["author"]),
            findings: 0,
        });
        tally.findings += 1;
    }
    let expected = expected_findings_per_rule()?;
    let found: BTreeMap<&str, usize> = per_rule
        .iter()
        .map(|(rule_id, tally)| (rule_id.as_str(), tally.findings))
        .collect();
    let wanted: BTreeMap<&str, usize> = expected
        .iter()
        .map(|(rule_id, count)| (rule_id.as_str(), *count))
        .collect();
    if found != wanted {
        bail!("the findings per rule are {found:?}; data/sigma/EXPECTED.json says {wanted:?}");
    }

    let mut rows: Vec<&RuleTally> = per_rule.values().collect();
    rows.sort_by_key(|tally| {
        (
            std::cmp::Reverse(level_rank(&tally.level)),
            std::cmp::Reverse(tally.findings),
            tally.title.clone(),
        )
    });
    let title_width = rows.iter().map(|row| row.title.len()).max().unwrap_or(0);
    let author_width = rows.iter().map(|row| row.author.len()).max().unwrap_or(0);
    println!(
        "{:<title_width$}  {:<6}  {:<author_width$}  FINDINGS",
        "RULE", "LEVEL", "AUTHOR"
    );
    for row in &rows {
        println!(
            "{:<title_width$}  {:<6}  {:<author_width$}  {:>8}",
            row.title, row.level, row.author, row.findings
        );
    }
    println!(
        "{} findings, one per rule and event: {} of the {usable} rules fired, on exactly the records the independent evaluator lists (data/sigma/EXPECTED.json).",
        findings.len(),
        rows.len()
    );
    println!("Every view of a finding carries its rule's author: the Detection Rule License 1.1 asks it of every match of SigmaHQ's rules.");
    println!("Their events are years old, so the findings were kept but notified no one (detections.notify_within_hours).");
    cli.show(&["findings", "list", "--kind", "sigma", "--level", "high"])?;

    findings
        .iter()
        .find(|finding| finding["ruleId"] == SHOWN_RULE_ID)
        .and_then(|finding| finding["findingId"].as_i64())
        .with_context(|| format!("no finding of rule {SHOWN_RULE_ID}"))
}

struct RuleTally {
    title: String,
    level: String,
    author: String,
    findings: usize,
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or("-").to_string()
}

fn level_rank(level: &str) -> usize {
    ["informational", "low", "medium", "high", "critical"]
        .iter()
        .position(|known| *known == level)
        .unwrap_or(0)
}

/// The findings each built-in rule should raise on the samples: its distinct matching events
/// in `data/sigma/EXPECTED.json` (pySigma's answer), for the rules that match any.
fn expected_findings_per_rule() -> anyhow::Result<BTreeMap<String, usize>> {
    let path = workspace_root().join("data/sigma/EXPECTED.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let expected: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let rules = expected["rules"]
        .as_object()
        .with_context(|| format!("{} has no rules", path.display()))?;
    Ok(rules
        .iter()
        .filter_map(|(rule_id, rule)| {
            let events = rule["eventIDs"].as_array()?.len();
            (events > 0).then(|| (rule_id.clone(), events))
        })
        .collect())
}

/// What a replay raised.
#[derive(Debug, Default, PartialEq, Eq)]
struct ReplayRaised {
    raised: u64,
    suppressed: u64,
}

/// Runs the replay over the samples' years, shows its report and reads it back.
fn run_replay(cli: &DemoCli<'_>) -> anyhow::Result<ReplayRaised> {
    let report = cli.show_capturing_stdout(&[
        "detections",
        "replay",
        "--start",
        WINDOW_START,
        "--end",
        WINDOW_END,
    ])?;
    print!("{report}");
    read_replay_report(&report)
}

/// `N events scanned, M matches, R findings raised, S suppressed` → R and S.
fn read_replay_report(report: &str) -> anyhow::Result<ReplayRaised> {
    let mut counts = BTreeMap::new();
    for part in report.trim().split(", ") {
        if let Some((number, label)) = part.split_once(' ') {
            counts.insert(label, number.parse::<u64>().ok());
        }
    }
    match (counts.get("findings raised"), counts.get("suppressed")) {
        (Some(Some(raised)), Some(Some(suppressed))) => Ok(ReplayRaised {
            raised: *raised,
            suppressed: *suppressed,
        }),
        _ => bail!("cannot read the replay's report: {report:?}"),
    }
}

/// What the team's rule and the suppression make of the sample records of the window, read
/// from the files with a plain predicate (not through Sigma): the records it matches, one per
/// eventID, those of the suppressed principal counted apart.
fn team_rule_matches_in_samples() -> anyhow::Result<ReplayRaised> {
    let mut matched = BTreeSet::new();
    let mut suppressed = BTreeSet::new();
    for record in sample_records()? {
        let day = record["eventTime"].as_str().unwrap_or_default().get(..10);
        let in_window = day.is_some_and(|day| (WINDOW_START..=WINDOW_END).contains(&day));
        let read_secret = in_window
            && record["eventSource"] == "secretsmanager.amazonaws.com"
            && (record["eventName"] == "GetSecretValue"
                || record["eventName"] == "BatchGetSecretValue")
            && record["userIdentity"]["type"] == "IAMUser";
        if !read_secret {
            continue;
        }
        let event_id = text(&record["eventID"]);
        if record["userIdentity"]["arn"] == SUPPRESSED_PRINCIPAL {
            suppressed.insert(event_id);
        } else {
            matched.insert(event_id);
        }
    }
    Ok(ReplayRaised {
        raised: matched.len() as u64,
        suppressed: suppressed.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_report_is_read_back() {
        assert_eq!(
            read_replay_report(
                "9389 events scanned, 611 matches, 25 findings raised, 60 suppressed\n"
            )
            .unwrap(),
            ReplayRaised {
                raised: 25,
                suppressed: 60
            }
        );
        assert!(read_replay_report("nothing").is_err());
    }

    #[test]
    fn the_team_rule_is_one_orgtrail_accepts_with_its_author() {
        let rule = parse_sigma_rule(TEAM_RULE).unwrap();
        assert_eq!(rule.rule_id, TEAM_RULE_ID);
        assert!(rule.author.is_some());
    }
}
