//! Retention: which events a policy or a legal hold covers, how long an event is kept (the
//! most protective matching policy wins, else the default), the operator's floors no policy
//! may go under, and the decision for one event.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::event::EventCategory;
use crate::s3_key::is_account_id;

/// What a policy or a hold covers: every listed dimension must match (an empty list matches
/// anything), and `read_only`, when set, must equal the event's (an event without readOnly
/// does not match a scope that sets it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RetentionScope {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    /// Category names as stored (`Management`, `Data`, `Insight`, `NetworkActivity`).
    pub event_categories: Vec<String>,
    pub event_sources: Vec<String>,
    pub event_names: Vec<String>,
    pub read_only: Option<bool>,
}

/// The facts of an event that retention looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionFacts {
    pub event_time: DateTime<Utc>,
    pub account_id: Option<String>,
    pub aws_region: Option<String>,
    pub event_category: String,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub read_only: Option<bool>,
}

impl RetentionScope {
    /// Checks the scope and puts it in canonical form (sorted, deduplicated, categories
    /// spelled as stored).
    pub fn validated(mut self) -> Result<RetentionScope, RetentionError> {
        if let Some(account) = self.accounts.iter().find(|account| !is_account_id(account)) {
            return Err(RetentionError::InvalidScope(format!(
                "account {account:?} is not a 12-digit account id"
            )));
        }
        for (field, values) in [
            ("region", &self.regions),
            ("event source", &self.event_sources),
            ("event name", &self.event_names),
            ("event category", &self.event_categories),
        ] {
            if let Some(value) = values
                .iter()
                .find(|value| value.is_empty() || value.len() > 256)
            {
                return Err(RetentionError::InvalidScope(format!(
                    "{field} {value:?} must be 1 to 256 characters"
                )));
            }
        }
        self.event_categories = self
            .event_categories
            .iter()
            .map(|category| EventCategory::parse(category).to_string())
            .collect();
        for values in [
            &mut self.accounts,
            &mut self.regions,
            &mut self.event_categories,
            &mut self.event_sources,
            &mut self.event_names,
        ] {
            values.sort();
            values.dedup();
        }
        Ok(self)
    }

    pub fn matches(&self, facts: &RetentionFacts) -> bool {
        let listed = |values: &[String], value: Option<&str>| {
            values.is_empty()
                || value.is_some_and(|value| values.iter().any(|listed| listed == value))
        };
        listed(&self.accounts, facts.account_id.as_deref())
            && listed(&self.regions, facts.aws_region.as_deref())
            && listed(&self.event_categories, Some(&facts.event_category))
            && listed(&self.event_sources, facts.event_source.as_deref())
            && listed(&self.event_names, facts.event_name.as_deref())
            && self
                .read_only
                .is_none_or(|read_only| facts.read_only == Some(read_only))
    }

    /// The categories the scope can match: its own, or every known one.
    fn categories(&self) -> Vec<String> {
        if self.event_categories.is_empty() {
            [
                EventCategory::Management,
                EventCategory::Data,
                EventCategory::Insight,
                EventCategory::NetworkActivity,
            ]
            .iter()
            .map(ToString::to_string)
            .collect()
        } else {
            self.event_categories.clone()
        }
    }
}

/// A version of a retention policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicy {
    pub name: String,
    pub version: i32,
    pub description: String,
    pub scope: RetentionScope,
    pub retain_days: u32,
}

/// A legal hold: nothing it covers is deleted while it is active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegalHold {
    pub hold_id: i64,
    pub reason: String,
    pub scope: RetentionScope,
    pub expires_at: Option<DateTime<Utc>>,
    pub released_at: Option<DateTime<Utc>>,
}

impl LegalHold {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.released_at.is_none() && self.expires_at.is_none_or(|expiry| expiry > now)
    }
}

/// The most retention days a policy may set: 100 years.
pub const MAX_RETAIN_DAYS: u32 = 36_500;

/// The operator's floors: per event category, the fewest days any policy may keep it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionFloors(pub BTreeMap<String, u32>);

impl RetentionFloors {
    /// Refuses a policy that would keep a category it covers for less than that category's floor.
    pub fn check(&self, scope: &RetentionScope, retain_days: u32) -> Result<(), RetentionError> {
        for category in scope.categories() {
            if let Some(&floor) = self.0.get(&category) {
                if retain_days < floor {
                    return Err(RetentionError::BelowFloor {
                        category,
                        floor,
                        retain_days,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Checks a policy's own fields (not its floors).
pub fn validate_policy_fields(
    name: &str,
    description: &str,
    retain_days: u32,
) -> Result<(), RetentionError> {
    let valid_name = (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !valid_name {
        return Err(RetentionError::InvalidName(name.to_string()));
    }
    if description.len() > 4096 {
        return Err(RetentionError::InvalidScope(
            "the description is longer than 4096 bytes".into(),
        ));
    }
    if retain_days == 0 || retain_days > MAX_RETAIN_DAYS {
        return Err(RetentionError::InvalidRetainDays(retain_days));
    }
    Ok(())
}

/// How one event stands under the policies and holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionDecision {
    /// The policies that match, as (name, version, retain days).
    pub matched: Vec<(String, i32, u32)>,
    /// The policy that sets the retention (the most protective); `None` when the default does.
    pub winning: Option<String>,
    pub retain_days: u32,
    pub expires_at: DateTime<Utc>,
    /// The active holds that cover the event.
    pub held_by: Vec<i64>,
}

impl RetentionDecision {
    /// Whether enforcement at `now` deletes the event.
    pub fn is_deleted_at(&self, now: DateTime<Utc>) -> bool {
        self.held_by.is_empty() && self.expires_at <= now
    }
}

/// The decision for one event: the longest `retain_days` of the matching policies (the
/// default when none match); held events are never deleted.
pub fn decide(
    facts: &RetentionFacts,
    policies: &[RetentionPolicy],
    holds: &[LegalHold],
    default_retain_days: u32,
    now: DateTime<Utc>,
) -> RetentionDecision {
    let matched: Vec<(String, i32, u32)> = policies
        .iter()
        .filter(|policy| policy.scope.matches(facts))
        .map(|policy| (policy.name.clone(), policy.version, policy.retain_days))
        .collect();
    let winning = matched
        .iter()
        .max_by(|a, b| a.2.cmp(&b.2).then_with(|| b.0.cmp(&a.0)))
        .cloned();
    let retain_days = winning
        .as_ref()
        .map_or(default_retain_days, |winner| winner.2);
    RetentionDecision {
        winning: winning.map(|winner| winner.0),
        retain_days,
        expires_at: facts.event_time + Duration::days(i64::from(retain_days)),
        held_by: holds
            .iter()
            .filter(|hold| hold.is_active(now) && hold.scope.matches(facts))
            .map(|hold| hold.hold_id)
            .collect(),
        matched,
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error(
        "{retain_days} days is under the operator's floor of {floor} days for {category} events"
    )]
    BelowFloor {
        category: String,
        floor: u32,
        retain_days: u32,
    },
    #[error("policy name {0:?} must be 1 to 128 characters of letters, digits and - _ .")]
    InvalidName(String),
    #[error("retain_days {0} must be 1 to 36500")]
    InvalidRetainDays(u32),
    #[error("invalid scope: {0}")]
    InvalidScope(String),
}

impl fmt::Display for RetentionScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (name, values) in [
            ("accounts", &self.accounts),
            ("regions", &self.regions),
            ("categories", &self.event_categories),
            ("sources", &self.event_sources),
            ("names", &self.event_names),
        ] {
            if !values.is_empty() {
                parts.push(format!("{name}={}", values.join(",")));
            }
        }
        if let Some(read_only) = self.read_only {
            parts.push(format!("readOnly={read_only}"));
        }
        if parts.is_empty() {
            f.write_str("all events")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(category: &str, account: &str, days_old: i64, now: DateTime<Utc>) -> RetentionFacts {
        RetentionFacts {
            event_time: now - Duration::days(days_old),
            account_id: Some(account.into()),
            aws_region: Some("us-east-1".into()),
            event_category: category.into(),
            event_source: Some("iam.amazonaws.com".into()),
            event_name: Some("CreateUser".into()),
            read_only: Some(false),
        }
    }

    fn policy(name: &str, scope: RetentionScope, retain_days: u32) -> RetentionPolicy {
        RetentionPolicy {
            name: name.into(),
            version: 1,
            description: String::new(),
            scope,
            retain_days,
        }
    }

    #[test]
    fn the_most_protective_matching_policy_wins_and_holds_stop_deletion() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let policies = vec![
            policy("short", RetentionScope::default(), 30),
            policy(
                "iam-writes",
                RetentionScope {
                    event_sources: vec!["iam.amazonaws.com".into()],
                    read_only: Some(false),
                    ..Default::default()
                },
                400,
            ),
            policy(
                "other-account",
                RetentionScope {
                    accounts: vec!["222222222222".into()],
                    ..Default::default()
                },
                3000,
            ),
        ];
        let event = facts("Management", "111111111111", 100, now);
        let decision = decide(&event, &policies, &[], 90, now);
        assert_eq!(decision.winning.as_deref(), Some("iam-writes"));
        assert_eq!(decision.retain_days, 400);
        assert_eq!(decision.matched.len(), 2);
        assert!(!decision.is_deleted_at(now));

        let old = facts("Management", "111111111111", 500, now);
        assert!(decide(&old, &policies, &[], 90, now).is_deleted_at(now));
        let hold = LegalHold {
            hold_id: 7,
            reason: "case 42".into(),
            scope: RetentionScope {
                accounts: vec!["111111111111".into()],
                ..Default::default()
            },
            expires_at: None,
            released_at: None,
        };
        let held = decide(&old, &policies, std::slice::from_ref(&hold), 90, now);
        assert_eq!(held.held_by, vec![7]);
        assert!(!held.is_deleted_at(now));
        let released = LegalHold {
            released_at: Some(now),
            ..hold
        };
        assert!(decide(&old, &policies, &[released], 90, now).is_deleted_at(now));

        // No policy matches: the default.
        let unmatched = RetentionFacts {
            event_source: Some("s3.amazonaws.com".into()),
            ..facts("Management", "333333333333", 10, now)
        };
        let decision = decide(&unmatched, &policies[1..], &[], 90, now);
        assert_eq!((decision.winning, decision.retain_days), (None, 90));
    }

    #[test]
    fn read_only_scopes_do_not_match_events_without_read_only() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let scope = RetentionScope {
            read_only: Some(true),
            ..Default::default()
        };
        let mut event = facts("Management", "111111111111", 1, now);
        event.read_only = None;
        assert!(!scope.matches(&event));
        event.read_only = Some(true);
        assert!(scope.matches(&event));
    }

    #[test]
    fn floors_refuse_policies_under_them_for_every_category_they_cover() {
        let floors = RetentionFloors(BTreeMap::from([
            ("Management".to_string(), 90),
            ("Insight".to_string(), 30),
        ]));
        let management = RetentionScope {
            event_categories: vec!["Management".into()],
            ..Default::default()
        };
        assert!(floors.check(&management, 90).is_ok());
        assert_eq!(
            floors.check(&management, 30).unwrap_err().to_string(),
            "30 days is under the operator's floor of 90 days for Management events"
        );
        let insight = RetentionScope {
            event_categories: vec!["Insight".into()],
            ..Default::default()
        };
        assert!(floors.check(&insight, 30).is_ok());
        // A scope without categories covers every category, so every floor applies.
        assert!(floors.check(&RetentionScope::default(), 60).is_err());
    }

    #[test]
    fn scopes_are_validated_and_made_canonical() {
        let scope = RetentionScope {
            accounts: vec![
                "222222222222".into(),
                "111111111111".into(),
                "111111111111".into(),
            ],
            event_categories: vec!["insight".into()],
            ..Default::default()
        }
        .validated()
        .unwrap();
        assert_eq!(scope.accounts, vec!["111111111111", "222222222222"]);
        assert_eq!(scope.event_categories, vec!["Insight"]);
        assert!(RetentionScope {
            accounts: vec!["12".into()],
            ..Default::default()
        }
        .validated()
        .is_err());
        assert!(validate_policy_fields("ok-name", "", 0).is_err());
        assert!(validate_policy_fields("bad name", "", 10).is_err());
    }
}
