//! The "User name" of CloudTrail's Event history (the `Username` lookup attribute), derived
//! from `userIdentity` the way Event history shows it.
//!
//! AWS does not publish the rule; this follows what Event history and `aws cloudtrail
//! lookup-events` show for each identity type:
//! - a `userName` in the record wins (IAM users, SAML and web-identity users, root with an alias,
//!   `HIDDEN_DUE_TO_SECURITY_REASONS` on failed sign-ins);
//! - `Root` without one is `root`;
//! - `AssumedRole`, `FederatedUser` and other session identities: the session name, the last
//!   segment of the ARN (`…:assumed-role/my-role/my-session-name` → `my-session-name`), else the
//!   part of `principalId` after `:`;
//! - `AWSService` and typeless service events: the service that acted (`invokedBy`);
//! - anything else: the last ARN segment, else `principalId`.

/// The parts of `userIdentity` the user name is derived from.
#[derive(Clone, Copy, Debug, Default)]
pub struct UsernameInputs<'a> {
    pub identity_type: Option<&'a str>,
    pub user_name: Option<&'a str>,
    pub arn: Option<&'a str>,
    pub principal_id: Option<&'a str>,
    pub invoked_by: Option<&'a str>,
}

pub fn derive_username(inputs: UsernameInputs<'_>) -> Option<String> {
    if let Some(user_name) = non_empty(inputs.user_name) {
        return Some(user_name.to_string());
    }
    let arn_last_segment = non_empty(inputs.arn)
        .and_then(|arn| arn.rsplit('/').next())
        .filter(|segment| !segment.is_empty() && !segment.starts_with("arn:"));
    let principal_session = non_empty(inputs.principal_id)
        .and_then(|principal| principal.split_once(':'))
        .map(|(_, session)| session)
        .filter(|session| !session.is_empty());
    let derived = match non_empty(inputs.identity_type) {
        Some("Root") => Some("root"),
        Some("AWSService") | None => non_empty(inputs.invoked_by).or(arn_last_segment),
        Some(_) => arn_last_segment
            .or(principal_session)
            .or(non_empty(inputs.principal_id)),
    };
    derived.map(str::to_string)
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_users_are_named_by_their_user_name() {
        let inputs = UsernameInputs {
            identity_type: Some("IAMUser"),
            user_name: Some("Alice"),
            arn: Some("arn:aws:iam::123456789012:user/Alice"),
            ..Default::default()
        };
        assert_eq!(derive_username(inputs).as_deref(), Some("Alice"));
    }

    #[test]
    fn assumed_roles_are_named_by_their_session() {
        let inputs = UsernameInputs {
            identity_type: Some("AssumedRole"),
            arn: Some("arn:aws:sts::123456789012:assumed-role/my-role/my-session-name"),
            principal_id: Some("AROAJIKPFTA72SWU4L7T4:my-session-name"),
            ..Default::default()
        };
        assert_eq!(derive_username(inputs).as_deref(), Some("my-session-name"));
        let without_arn = UsernameInputs {
            arn: None,
            ..inputs
        };
        assert_eq!(
            derive_username(without_arn).as_deref(),
            Some("my-session-name")
        );
    }

    #[test]
    fn root_without_alias_is_root_and_services_are_named_by_invoked_by() {
        let root = UsernameInputs {
            identity_type: Some("Root"),
            arn: Some("arn:aws:iam::123456789012:root"),
            ..Default::default()
        };
        assert_eq!(derive_username(root).as_deref(), Some("root"));
        let service = UsernameInputs {
            identity_type: Some("AWSService"),
            invoked_by: Some("ec2.amazonaws.com"),
            ..Default::default()
        };
        assert_eq!(
            derive_username(service).as_deref(),
            Some("ec2.amazonaws.com")
        );
        let typeless = UsernameInputs {
            invoked_by: Some("cloudtrail.amazonaws.com"),
            ..Default::default()
        };
        assert_eq!(
            derive_username(typeless).as_deref(),
            Some("cloudtrail.amazonaws.com")
        );
        assert_eq!(derive_username(UsernameInputs::default()), None);
    }

    #[test]
    fn federated_users_are_named_by_the_arn() {
        let inputs = UsernameInputs {
            identity_type: Some("FederatedUser"),
            arn: Some("arn:aws:sts::123456789012:federated-user/Bob"),
            principal_id: Some("123456789012:Bob"),
            ..Default::default()
        };
        assert_eq!(derive_username(inputs).as_deref(), Some("Bob"));
    }
}
