//! A notification as a Slack incoming-webhook message (`{"text": …, "blocks": […]}`), and the
//! one-line summary that is its `text` (what Slack shows in the notification itself) and the
//! SNS subject. Alarm state changes get their own layout, a destination's test message says it
//! is one, anything else shows its kind, subject and compact JSON. Every text is cut to
//! Slack's limits (header 150 characters, section 3000, field 2000); mrkdwn is escaped.

use serde_json::{json, Value};

use super::{rfc3339, OutgoingNotification};

/// The Slack message of a notification.
pub(super) fn slack_message(notification: &OutgoingNotification) -> Value {
    let summary = plain_within(&one_line_summary(notification), SECTION_TEXT_LIMIT);
    let mut blocks = match (notification.kind.as_str(), alarm_change(&notification.body)) {
        (ALARM_STATE_CHANGE, Some(change)) => alarm_blocks(&change),
        (DESTINATION_TEST, _) => test_blocks(notification),
        _ => generic_blocks(notification),
    };
    blocks.push(json!({
        "type": "context",
        "elements": [{
            "type": "mrkdwn",
            "text": mrkdwn_within(
                &format!(
                    "orgtrail notification {} · {}",
                    notification.notification_id,
                    rfc3339(notification.created_at)
                ),
                SECTION_TEXT_LIMIT
            ),
        }],
    }));
    json!({ "text": summary, "blocks": blocks })
}

/// One line saying what a notification is: Slack's `text`, and (made ASCII) the SNS subject.
pub(super) fn one_line_summary(notification: &OutgoingNotification) -> String {
    let line = match (notification.kind.as_str(), alarm_change(&notification.body)) {
        (ALARM_STATE_CHANGE, Some(change)) => {
            let control = change
                .cis_id
                .map(|cis_id| format!(" (CIS {cis_id})"))
                .unwrap_or_default();
            format!(
                "orgtrail alarm {}{control}: {} → {}",
                change.name, change.old_state, change.new_state
            )
        }
        (DESTINATION_TEST, _) if notification.subject.is_empty() => "orgtrail test message".into(),
        (DESTINATION_TEST, _) => format!("orgtrail test message: {}", notification.subject),
        (kind, _) => format!("orgtrail {kind}: {}", notification.subject),
    };
    single_line(&line)
}

const ALARM_STATE_CHANGE: &str = "alarm.state_change";
const DESTINATION_TEST: &str = "destination.test";

/// Slack's limits, in characters.
const HEADER_TEXT_LIMIT: usize = 150;
const SECTION_TEXT_LIMIT: usize = 3000;
const FIELD_TEXT_LIMIT: usize = 2000;
/// Event ids an alarm's message names; the rest are counted.
const EVENT_IDS_SHOWN: usize = 10;

/// What an `alarm.state_change` body carries (`alarm` {name, cisId, title}, `oldState`,
/// `newState`, `reason`, `periodEnd`, `eventIds`); `None` without a name and both states.
struct AlarmChange<'a> {
    name: &'a str,
    cis_id: Option<&'a str>,
    title: Option<&'a str>,
    old_state: &'a str,
    new_state: &'a str,
    reason: Option<&'a str>,
    period_end: Option<&'a str>,
    event_ids: Vec<&'a str>,
}

fn alarm_change(body: &Value) -> Option<AlarmChange<'_>> {
    let text = text_member;
    let alarm = body.get("alarm")?;
    Some(AlarmChange {
        name: text(alarm, "name")?,
        cis_id: text(alarm, "cisId"),
        title: text(alarm, "title"),
        old_state: text(body, "oldState")?,
        new_state: text(body, "newState")?,
        reason: text(body, "reason"),
        period_end: text(body, "periodEnd"),
        event_ids: body
            .get("eventIds")
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default(),
    })
}

fn text_member<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value.get(name)?.as_str()
}

fn alarm_blocks(change: &AlarmChange<'_>) -> Vec<Value> {
    let marker = match change.new_state {
        "ALARM" => ":rotating_light:",
        "OK" => ":white_check_mark:",
        _ => ":grey_question:",
    };
    let mut blocks = vec![header(&format!(
        "{marker} {} is {}",
        change.name, change.new_state
    ))];
    let description = match (change.title, change.reason) {
        (Some(title), Some(reason)) => Some(format!("*{}*\n{}", escape(title), escape(reason))),
        (Some(title), None) => Some(format!("*{}*", escape(title))),
        (None, Some(reason)) => Some(escape(reason)),
        (None, None) => None,
    };
    if let Some(description) = description {
        blocks.push(section_text(&description));
    }
    let mut fields = vec![
        field("Alarm", change.name),
        field(
            "State",
            &format!("{} → {}", change.old_state, change.new_state),
        ),
    ];
    if let Some(cis_id) = change.cis_id {
        fields.push(field("CIS control", cis_id));
    }
    if let Some(period_end) = change.period_end {
        fields.push(field("Period end", period_end));
    }
    if !change.event_ids.is_empty() {
        let mut shown = change
            .event_ids
            .iter()
            .take(EVENT_IDS_SHOWN)
            .map(|id| format!("`{}`", escape(id)))
            .collect::<Vec<_>>()
            .join(", ");
        let rest = change.event_ids.len().saturating_sub(EVENT_IDS_SHOWN);
        if rest > 0 {
            shown.push_str(&format!(" and {rest} more"));
        }
        fields.push(json!({
            "type": "mrkdwn",
            "text": mrkdwn_escaped_within(
                &format!("*Events ({})*\n{shown}", change.event_ids.len()),
                FIELD_TEXT_LIMIT
            ),
        }));
    }
    blocks.push(json!({ "type": "section", "fields": fields }));
    blocks
}

fn test_blocks(notification: &OutgoingNotification) -> Vec<Value> {
    let about = if notification.subject.is_empty() {
        "this destination".to_string()
    } else {
        format!("the destination *{}*", escape(&notification.subject))
    };
    vec![
        header("orgtrail test message"),
        section_text(&format!(
            "A test of {about}: orgtrail's notifications reach this channel."
        )),
    ]
}

fn generic_blocks(notification: &OutgoingNotification) -> Vec<Value> {
    let title = if notification.subject.is_empty() {
        notification.kind.as_str()
    } else {
        notification.subject.as_str()
    };
    let json_text = serde_json::to_string(&notification.body).unwrap_or_default();
    // A code block: fences around the escaped, cut JSON, 3000 characters in all.
    let fence = "```";
    let inner = mrkdwn_within(&json_text, SECTION_TEXT_LIMIT - 2 * fence.len());
    vec![
        header(title),
        json!({
            "type": "section",
            "fields": [
                field("Kind", &notification.kind),
                field("Subject", &notification.subject),
            ],
        }),
        section_text(&format!("{fence}{inner}{fence}")),
    ]
}

fn header(text: &str) -> Value {
    json!({
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": plain_within(&single_line(text), HEADER_TEXT_LIMIT),
            "emoji": true,
        },
    })
}

/// A section of mrkdwn already escaped.
fn section_text(escaped: &str) -> Value {
    json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": mrkdwn_escaped_within(escaped, SECTION_TEXT_LIMIT) },
    })
}

/// A field: a bold label over a value (escaped here).
fn field(label: &str, value: &str) -> Value {
    let value = if value.is_empty() { "—" } else { value };
    json!({
        "type": "mrkdwn",
        "text": mrkdwn_escaped_within(&format!("*{label}*\n{}", escape(value)), FIELD_TEXT_LIMIT),
    })
}

/// The three characters Slack's mrkdwn reserves, escaped as it asks.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// `text` escaped, then cut to `limit` characters (never inside an escape).
fn mrkdwn_within(text: &str, limit: usize) -> String {
    let escaped = escape(text);
    if escaped.chars().count() <= limit {
        return escaped;
    }
    // Cut the raw text so that its escaped form, and the ellipsis, fit.
    let mut cut = String::new();
    let mut length = 0;
    for c in text.chars() {
        let piece = escape(c.encode_utf8(&mut [0; 4]));
        let piece_length = piece.chars().count();
        if length + piece_length > limit.saturating_sub(1) {
            break;
        }
        length += piece_length;
        cut.push_str(&piece);
    }
    cut.push('…');
    cut
}

/// Mrkdwn already escaped, cut to `limit` characters, backing off an escape it would split.
fn mrkdwn_escaped_within(escaped: &str, limit: usize) -> String {
    if escaped.chars().count() <= limit {
        return escaped.to_string();
    }
    let mut cut: String = escaped.chars().take(limit.saturating_sub(1)).collect();
    if let Some(ampersand) = cut.rfind('&') {
        if !cut[ampersand..].contains(';') {
            cut.truncate(ampersand);
        }
    }
    cut.push('…');
    cut
}

/// Plain text cut to `limit` characters, `…` marking the cut.
fn plain_within(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Line breaks and other control characters as spaces, runs of spaces as one.
fn single_line(text: &str) -> String {
    text.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn notification(kind: &str, subject: &str, body: Value) -> OutgoingNotification {
        OutgoingNotification {
            notification_id: 7,
            kind: kind.into(),
            subject: subject.into(),
            body,
            created_at: DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
                .map(|time| time.with_timezone(&Utc))
                .unwrap(),
        }
    }

    fn alarm_body() -> Value {
        json!({
            "alarm": {"name": "root-login", "cisId": "4.3", "title": "Root account usage <&>"},
            "oldState": "OK",
            "newState": "ALARM",
            "reason": "1 datapoint [3.0] >= threshold 1",
            "periodEnd": "2026-11-30T11:55:00Z",
            "eventIds": (0..12).map(|n| format!("event-{n}")).collect::<Vec<_>>(),
        })
    }

    #[test]
    fn an_alarm_state_change_reads_as_an_alarm() {
        let message = slack_message(&notification(
            "alarm.state_change",
            "root-login",
            alarm_body(),
        ));
        assert_eq!(
            message["text"],
            "orgtrail alarm root-login (CIS 4.3): OK → ALARM"
        );
        let blocks = message["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(
            blocks[0]["text"]["text"],
            ":rotating_light: root-login is ALARM"
        );
        assert_eq!(
            blocks[1]["text"]["text"],
            "*Root account usage &lt;&amp;&gt;*\n1 datapoint [3.0] &gt;= threshold 1"
        );
        let fields: Vec<&str> = blocks[2]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|field| field["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "*Alarm*\nroot-login",
                "*State*\nOK → ALARM",
                "*CIS control*\n4.3",
                "*Period end*\n2026-11-30T11:55:00Z",
                "*Events (12)*\n`event-0`, `event-1`, `event-2`, `event-3`, `event-4`, `event-5`, `event-6`, `event-7`, `event-8`, `event-9` and 2 more",
            ]
        );
        assert_eq!(
            blocks[3]["elements"][0]["text"],
            "orgtrail notification 7 · 2026-11-30T12:00:00.000Z"
        );
    }

    #[test]
    fn an_alarm_body_without_its_states_is_shown_as_json() {
        let message = slack_message(&notification(
            "alarm.state_change",
            "root-login",
            json!({"alarm": {"name": "root-login"}}),
        ));
        assert_eq!(message["text"], "orgtrail alarm.state_change: root-login");
        assert!(message["blocks"][2]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("```{\"alarm\""));
    }

    #[test]
    fn a_test_message_says_it_is_one() {
        let message = slack_message(&notification("destination.test", "ops-channel", json!({})));
        assert_eq!(message["text"], "orgtrail test message: ops-channel");
        assert_eq!(
            message["blocks"][0]["text"]["text"],
            "orgtrail test message"
        );
        assert!(message["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("*ops-channel*"));
    }

    #[test]
    fn anything_else_shows_its_json_cut_to_slack_s_limits() {
        let big = "x<".repeat(5000);
        let message = slack_message(&notification(
            "finding",
            &"s".repeat(4000),
            json!({ "detail": big }),
        ));
        let text = message["text"].as_str().unwrap();
        assert_eq!(text.chars().count(), 3000);
        assert!(text.starts_with("orgtrail finding: sss") && text.ends_with("s…"));
        let blocks = message["blocks"].as_array().unwrap();
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), 150);
        assert!(header.ends_with('…'));
        let code = blocks[2]["text"]["text"].as_str().unwrap();
        assert!(code.chars().count() <= 3000, "{}", code.chars().count());
        assert!(code.starts_with("```{\"detail\":\"x&lt;x&lt;"));
        assert!(code.ends_with("…```"));
        // No escape is cut in two.
        let before_ellipsis = code.trim_end_matches("…```");
        assert!(before_ellipsis.ends_with("&lt;") || before_ellipsis.ends_with('x'));
        for block in blocks {
            for field in block["fields"].as_array().into_iter().flatten() {
                assert!(field["text"].as_str().unwrap().chars().count() <= 2000);
            }
        }
    }

    #[test]
    fn cutting_never_splits_an_escape() {
        assert_eq!(mrkdwn_within("ab<cd", 5), "ab…");
        assert_eq!(mrkdwn_within("ab<cd", 7), "ab&lt;…");
        assert_eq!(mrkdwn_within("ab<", 6), "ab&lt;");
        assert_eq!(mrkdwn_escaped_within("ab&lt;cd", 5), "ab…");
        assert_eq!(plain_within("abcdef", 4), "abc…");
        assert_eq!(single_line(" a\nb\t\tc  "), "a b c");
    }
}
