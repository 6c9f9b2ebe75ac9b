//! The demo's alarm steps: the built-in CIS AWS Foundations Benchmark alarms evaluated by
//! event time on the sample organization's records (their state, the history of two of them,
//! a backtest of a pattern), then a notification end to end — a webhook destination pointing
//! at a receiver the demo runs on loopback, a custom alarm naming it, a signed test message
//! as the receiver got it, and the outbox.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::demo::{check_interrupted, heading, DemoCli};
use crate::webhook_receiver::WebhookReceiver;
use crate::workspace_root;

/// Seconds between the aggregator's evaluation rounds in the demo (60 by default).
pub const EVALUATION_INTERVAL_SECONDS: u64 = 2;
/// How long the demo waits for the alarms to be evaluated.
const EVALUATION_WAIT: Duration = Duration::from_secs(90);
/// How long the demo waits for the test message to reach its receiver.
const DELIVERY_WAIT: Duration = Duration::from_secs(30);
/// Lines of the received body shown.
const BODY_LINES: usize = 14;

/// CIS alarms whose history is shown: security groups and unauthorized API calls.
const HISTORIES: [(&str, &str); 2] = [
    ("cis-4.10", "security group changes"),
    ("cis-4.1", "unauthorized API calls"),
];
/// The backtest shown: CIS 4.6's console sign-in failures, before making an alarm of it.
const BACKTEST_PATTERN: &str =
    r#"{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }"#;

pub fn show_alarms(
    cli: &DemoCli<'_>,
    ingest_finished: Instant,
    first_step: usize,
    interrupted: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<usize> {
    let mut step = first_step;
    heading(&format!(
        "{step}. Alarms: the 15 CIS AWS Foundations Benchmark alarms, built in, evaluated by event time on the records"
    ));
    let matched = cis_controls_with_matches()?;
    let waited = wait_for_evaluation(cli, &matched, ingest_finished)?;
    println!(
        "(the aggregator evaluates every {EVALUATION_INTERVAL_SECONDS} s here; the {} alarms whose patterns match sample records were evaluated {:.0} s after the last file)",
        matched.len(),
        waited.as_secs_f64()
    );
    println!("Each went to ALARM in the 5-minute periods with matches and back to OK after (notBreaching);");
    println!("their periods ended years before they were evaluated, so nothing was notified (alarms.notify_within_hours).");
    cli.show(&["alarms", "list"])?;

    for (index, (alarm, what)) in HISTORIES.into_iter().enumerate() {
        check_interrupted(interrupted)?;
        step += 1;
        heading(&format!(
            "{step}. Why {alarm} ({what}) changed state, newest first: the reason, the events behind it, why not notified"
        ));
        if index == 0 {
            println!("The accounts' and regions' files arrive interleaved, not in time order: a transition that files of older periods then made untrue stays, marked SUPERSEDED.");
        }
        cli.show(&["alarms", "history", alarm, "--max", "5"])?;
    }

    check_interrupted(interrupted)?;
    step += 1;
    heading(&format!(
        "{step}. A backtest: a pattern over the stored events, raising nothing (before making an alarm of it)"
    ));
    cli.show(&["filters", "test", BACKTEST_PATTERN])?;
    Ok(step)
}

pub fn show_notification(cli: &DemoCli<'_>, step: usize) -> anyhow::Result<()> {
    let receiver = WebhookReceiver::start()?;
    heading(&format!(
        "{step}. A notification end to end: a webhook destination (a receiver this demo runs on loopback), an alarm naming it, a signed test message"
    ));
    let url = receiver.url();
    let secret =
        cli.show_capturing_stdout(&["destinations", "create", "demo-webhook", "--webhook", &url])?;
    let secret = secret.trim().to_string();
    println!("{secret}");
    cli.show(&[
        "alarms",
        "create",
        "demo-console-logins",
        "--pattern",
        r#"{ $.eventName = "ConsoleLogin" }"#,
        "--threshold",
        "1",
        "--notify-on",
        "ALARM",
        "--destination",
        "demo-webhook",
    ])?;
    println!(
        "(it counts the console sign-ins stored from now on; its state changes go to demo-webhook)"
    );
    cli.show(&["destinations", "test", "demo-webhook"])?;

    let received = receiver.wait_for(1, DELIVERY_WAIT)?;
    let webhook = received.last().context("the receiver kept nothing")?;
    println!("\nWhat the receiver got:");
    println!("  {}", webhook.request_line);
    for name in [
        "content-type",
        "x-orgtrail-notification-id",
        "x-orgtrail-timestamp",
        "x-orgtrail-signature",
    ] {
        println!("  {name}: {}", webhook.header(name).unwrap_or("(none)"));
    }
    println!("  (body, {} bytes, pretty-printed:)", webhook.body.len());
    let body: Value = serde_json::from_slice(&webhook.body).with_context(|| {
        format!(
            "the body is not JSON: {}",
            String::from_utf8_lossy(&webhook.body)
        )
    })?;
    let pretty = serde_json::to_string_pretty(&body)?;
    for line in pretty.lines().take(BODY_LINES) {
        println!("  {line}");
    }
    if !webhook.signature_is_valid(&secret) {
        bail!("the receiver got a signature that does not verify with the destination's signing secret");
    }
    println!(
        "The signature verifies: HMAC-SHA256 keyed with the signing secret above, over the timestamp, '.', and the raw body (the README's recipe)."
    );
    cli.show(&["notifications", "list"])?;
    Ok(())
}

/// The CIS controls (`4.10`) whose pattern matches some sample record, from
/// `data/cis/EXPECTED.json` (computed from the files by an independent evaluator).
fn cis_controls_with_matches() -> anyhow::Result<BTreeSet<String>> {
    let path = workspace_root().join("data/cis/EXPECTED.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let expected: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let patterns = expected["patterns"]
        .as_object()
        .with_context(|| format!("{} has no patterns", path.display()))?;
    Ok(patterns
        .iter()
        .filter(|(_, pattern)| pattern["primary"] == true && pattern["count"].as_u64() > Some(0))
        .map(|(cis_id, _)| cis_id.clone())
        .collect())
}

/// Waits (bounded) until every CIS alarm with matches has been evaluated
/// (`evaluatedThrough` set) and a round has begun since the last file was stored (rounds
/// come every [`EVALUATION_INTERVAL_SECONDS`] and take well under a second here), so what
/// is shown counts every sample record. Returns how long after the last file that was.
fn wait_for_evaluation(
    cli: &DemoCli<'_>,
    matched: &BTreeSet<String>,
    ingest_finished: Instant,
) -> anyhow::Result<Duration> {
    let settled = ingest_finished + Duration::from_secs(3 * EVALUATION_INTERVAL_SECONDS);
    let deadline = Instant::now() + EVALUATION_WAIT;
    loop {
        let listed: Value =
            serde_json::from_str(&cli.output(&["alarms", "list", "--output", "json"])?)
                .context("orgtrail alarms list --output json did not print JSON")?;
        let evaluated: BTreeSet<&str> = listed
            .as_array()
            .into_iter()
            .flatten()
            .filter(|alarm| !alarm["evaluatedThrough"].is_null())
            .filter_map(|alarm| alarm["cisId"].as_str())
            .collect();
        let waiting: Vec<String> = matched
            .iter()
            .filter(|cis_id| !evaluated.contains(cis_id.as_str()))
            .map(|cis_id| format!("cis-{cis_id}"))
            .collect();
        if waiting.is_empty() && Instant::now() >= settled {
            return Ok(ingest_finished.elapsed());
        }
        if Instant::now() > deadline {
            bail!(
                "the alarms were not evaluated within {EVALUATION_WAIT:?} (still waiting for {}); see the aggregator's log",
                waiting.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
