//! Which events an alarm counts: a filter on the account, the region and the event category,
//! applied before the alarm's filter pattern. CloudWatch has no such thing (a metric filter sees
//! one log group); orgtrail aggregates an organization, so an alarm may be narrowed to part of it.

use serde::{Deserialize, Serialize};

/// CloudTrail's event categories (`eventCategory`), spelled as CloudTrail spells them.
pub const EVENT_CATEGORIES: [&str; 4] = ["Management", "Data", "Insight", "NetworkActivity"];

/// The accounts, regions and event categories an alarm counts. Each list narrows the alarm
/// to its values; an empty list does not narrow, so the default scope covers every event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct AlarmScope {
    /// 12-digit AWS account ids (the event's `recipientAccountId`).
    pub accounts: Vec<String>,
    /// Region names (the event's `awsRegion`), e.g. `eu-west-1`.
    pub regions: Vec<String>,
    /// `Management`, `Data`, `Insight` or `NetworkActivity`.
    pub event_categories: Vec<String>,
}

/// Why a scope was refused. Each message names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AlarmScopeError {
    #[error("accounts: {0:?} is not a 12-digit AWS account id")]
    Account(String),
    #[error("regions: a region must not be empty")]
    EmptyRegion,
    #[error(
        "event_categories: {0:?} is not an event category, expected one of Management, Data, \
         Insight, NetworkActivity"
    )]
    EventCategory(String),
}

impl AlarmScope {
    /// Whether an event with this account, region and category is counted: every non-empty
    /// list must contain the event's value, and an event without an account or region (`None`)
    /// is outside any scope that lists accounts or regions.
    pub fn covers(
        &self,
        account_id: Option<&str>,
        region: Option<&str>,
        event_category: &str,
    ) -> bool {
        dimension_covers(&self.accounts, account_id)
            && dimension_covers(&self.regions, region)
            && dimension_covers(&self.event_categories, Some(event_category))
    }

    /// Checks each value: accounts are 12 ASCII digits, regions are not empty, categories are
    /// one of CloudTrail's four (case-sensitive).
    pub fn validate(&self) -> Result<(), AlarmScopeError> {
        if let Some(account) = self.accounts.iter().find(|id| !is_account_id(id)) {
            return Err(AlarmScopeError::Account(account.clone()));
        }
        if self.regions.iter().any(String::is_empty) {
            return Err(AlarmScopeError::EmptyRegion);
        }
        if let Some(category) = self
            .event_categories
            .iter()
            .find(|category| !EVENT_CATEGORIES.contains(&category.as_str()))
        {
            return Err(AlarmScopeError::EventCategory(category.clone()));
        }
        Ok(())
    }
}

fn dimension_covers(values: &[String], value: Option<&str>) -> bool {
    values.is_empty() || value.is_some_and(|value| values.iter().any(|listed| listed == value))
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|byte| byte.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::{AlarmScope, AlarmScopeError};

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| (*value).to_owned()).collect()
    }

    #[test]
    fn an_empty_scope_covers_every_event_even_without_account_or_region() {
        let scope = AlarmScope::default();
        assert_eq!(scope.validate(), Ok(()));
        assert!(scope.covers(Some("111122223333"), Some("eu-west-1"), "Management"));
        assert!(scope.covers(None, None, "Data"));
    }

    #[test]
    fn every_listed_dimension_must_contain_the_events_value() {
        let scope = AlarmScope {
            accounts: strings(&["111122223333", "444455556666"]),
            regions: strings(&["eu-west-1"]),
            event_categories: Vec::new(),
        };
        assert_eq!(scope.validate(), Ok(()));
        assert!(scope.covers(Some("444455556666"), Some("eu-west-1"), "Data"));
        assert!(!scope.covers(Some("777788889999"), Some("eu-west-1"), "Data"));
        assert!(!scope.covers(Some("111122223333"), Some("us-east-1"), "Data"));
        assert!(!scope.covers(None, Some("eu-west-1"), "Data"));
        assert!(!scope.covers(Some("111122223333"), None, "Data"));

        let management_only = AlarmScope {
            event_categories: strings(&["Management"]),
            ..AlarmScope::default()
        };
        assert!(management_only.covers(None, None, "Management"));
        assert!(!management_only.covers(None, None, "Data"));
        assert!(!management_only.covers(None, None, "management"));
    }

    #[test]
    fn invalid_values_are_refused_with_the_field_named() {
        let cases = [
            (
                AlarmScope {
                    accounts: strings(&["12345678901"]),
                    ..AlarmScope::default()
                },
                AlarmScopeError::Account("12345678901".to_owned()),
            ),
            (
                AlarmScope {
                    accounts: strings(&["11112222333a"]),
                    ..AlarmScope::default()
                },
                AlarmScopeError::Account("11112222333a".to_owned()),
            ),
            (
                AlarmScope {
                    accounts: strings(&[""]),
                    ..AlarmScope::default()
                },
                AlarmScopeError::Account(String::new()),
            ),
            (
                AlarmScope {
                    regions: strings(&["eu-west-1", ""]),
                    ..AlarmScope::default()
                },
                AlarmScopeError::EmptyRegion,
            ),
            (
                AlarmScope {
                    event_categories: strings(&["management"]),
                    ..AlarmScope::default()
                },
                AlarmScopeError::EventCategory("management".to_owned()),
            ),
            (
                AlarmScope {
                    event_categories: strings(&[""]),
                    ..AlarmScope::default()
                },
                AlarmScopeError::EventCategory(String::new()),
            ),
        ];
        for (scope, expected) in cases {
            assert_eq!(scope.validate(), Err(expected), "{scope:?}");
        }
        let all_categories = AlarmScope {
            event_categories: strings(&["Management", "Data", "Insight", "NetworkActivity"]),
            ..AlarmScope::default()
        };
        assert_eq!(all_categories.validate(), Ok(()));
        assert_eq!(
            AlarmScopeError::EventCategory("Mgmt".to_owned()).to_string(),
            "event_categories: \"Mgmt\" is not an event category, expected one of Management, \
             Data, Insight, NetworkActivity"
        );
    }

    #[test]
    fn scopes_read_camel_case_with_every_list_optional() {
        let scope: AlarmScope =
            serde_json::from_str(r#"{"eventCategories":["Management"]}"#).unwrap();
        assert_eq!(scope.event_categories, strings(&["Management"]));
        assert!(scope.accounts.is_empty() && scope.regions.is_empty());
        assert_eq!(
            serde_json::from_str::<AlarmScope>("{}").unwrap(),
            AlarmScope::default()
        );
        assert!(serde_json::from_str::<AlarmScope>(r#"{"account":["1"]}"#).is_err());
    }
}
