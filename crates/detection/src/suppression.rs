//! Suppressions: known-good activity a rule should not raise — a rule, scoped by accounts,
//! principals (`userIdentity.arn`) and source IPs (addresses or CIDR ranges), with a reason and
//! an expiry. A match a suppression covers is kept and counted, not raised.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

/// What a suppression covers. Within a dimension any listed value matches; across them all
/// must; an empty dimension covers everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SuppressionScope {
    pub rule_id: String,
    pub accounts: Vec<String>,
    pub principals: Vec<String>,
    pub source_ips: Vec<SourceIpRange>,
}

/// An address or a CIDR range of `sourceIPAddress`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceIpRange {
    network: IpAddr,
    prefix: u8,
    /// As written.
    written: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SuppressionError {
    #[error("{0:?} is not an IP address or a CIDR range (203.0.113.0/24, 2001:db8::/32)")]
    SourceIp(String),
    #[error("a suppression names a rule")]
    NoRule,
    #[error("a suppression needs a reason")]
    NoReason,
    #[error("a suppression covers some accounts, principals or source IPs, not every match of the rule: disable the rule instead")]
    Unscoped,
    #[error("the suppression's expiry {0} is not in the future")]
    Expired(DateTime<Utc>),
}

impl SourceIpRange {
    pub fn parse(text: &str) -> Result<SourceIpRange, SuppressionError> {
        let invalid = || SuppressionError::SourceIp(text.to_string());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| invalid())?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.trim().parse::<u8>().map_err(|_| invalid())?,
            None => width,
        };
        if prefix > width {
            return Err(invalid());
        }
        Ok(SourceIpRange {
            network,
            prefix,
            written: text.trim().to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// Whether `address` (a `sourceIPAddress`: an IP, or a service's DNS name, which no range
    /// covers) is in the range.
    pub fn contains(&self, address: &str) -> bool {
        let Ok(address) = address.parse::<IpAddr>() else {
            return false;
        };
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

impl SuppressionScope {
    /// Checks what an operator asks for.
    pub fn validate(
        &self,
        reason: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), SuppressionError> {
        if self.rule_id.trim().is_empty() {
            return Err(SuppressionError::NoRule);
        }
        if reason.trim().is_empty() {
            return Err(SuppressionError::NoReason);
        }
        if self.accounts.is_empty() && self.principals.is_empty() && self.source_ips.is_empty() {
            return Err(SuppressionError::Unscoped);
        }
        if expires_at <= now {
            return Err(SuppressionError::Expired(expires_at));
        }
        Ok(())
    }

    /// Whether a match of `rule_id` on an event of `account`, by `principal`, from
    /// `source_ip`, is covered.
    pub fn covers(
        &self,
        rule_id: &str,
        account: Option<&str>,
        principal: Option<&str>,
        source_ip: Option<&str>,
    ) -> bool {
        let listed = |values: &[String], value: Option<&str>| {
            values.is_empty()
                || value.is_some_and(|value| values.iter().any(|listed| listed == value))
        };
        self.rule_id == rule_id
            && listed(&self.accounts, account)
            && listed(&self.principals, principal)
            && (self.source_ips.is_empty()
                || source_ip
                    .is_some_and(|ip| self.source_ips.iter().any(|range| range.contains(ip))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_contain_their_addresses_and_nothing_else() {
        let range = SourceIpRange::parse("203.0.113.0/24").unwrap();
        assert!(range.contains("203.0.113.7"));
        assert!(!range.contains("203.0.114.7"));
        assert!(!range.contains("s3.amazonaws.com"));
        assert!(!range.contains("2001:db8::1"));
        let single = SourceIpRange::parse("198.51.100.9").unwrap();
        assert!(single.contains("198.51.100.9"));
        assert!(!single.contains("198.51.100.10"));
        let everything = SourceIpRange::parse("0.0.0.0/0").unwrap();
        assert!(everything.contains("8.8.8.8"));
        let v6 = SourceIpRange::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5"));
        assert!(!v6.contains("2001:db9::5"));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129"] {
            assert!(SourceIpRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_scope_covers_the_matches_of_its_rule_within_every_dimension() {
        let scope = SuppressionScope {
            rule_id: "r1".into(),
            accounts: vec!["111122223333".into()],
            principals: Vec::new(),
            source_ips: vec![SourceIpRange::parse("10.0.0.0/8").unwrap()],
        };
        assert!(scope.covers("r1", Some("111122223333"), Some("arn:x"), Some("10.1.2.3")));
        assert!(!scope.covers("r2", Some("111122223333"), None, Some("10.1.2.3")));
        assert!(!scope.covers("r1", Some("999999999999"), None, Some("10.1.2.3")));
        assert!(!scope.covers("r1", Some("111122223333"), None, Some("11.1.2.3")));
        assert!(!scope.covers("r1", None, None, Some("10.1.2.3")));
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(
            scope.validate("known scanner", now, now),
            Err(SuppressionError::Expired(now))
        );
        assert_eq!(
            SuppressionScope {
                rule_id: "r1".into(),
                ..Default::default()
            }
            .validate("x", now + chrono::Duration::days(1), now),
            Err(SuppressionError::Unscoped)
        );
    }
}
