//! Who may call what. Every call but health checking needs a role: [`Authenticator`] finds the
//! caller of what a request presents (a bearer token, else the client certificate's names
//! mapped by `auth.certificate_roles`), [`required_access`] is the one table of method → role,
//! and a refusal says why and is written to the audit log (up to a rate). The tower layer
//! that applies this to every call, and the gRPC codes of refusals, are `grpc::auth_layer`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use orgtrail_service_runtime::{error_chain, SharedClock};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::rate_limits::RefusalAuditLimit;
use crate::role::Role;
use secrecy::{ExposeSecret, SecretString};

use crate::store::{NewAccessKey, PgStore, StoreError, StoredToken};

/// The authenticated caller of a request, in its extensions.
#[derive(Clone, Debug)]
pub struct Caller {
    /// `cert:<name>` or `token:<name>`.
    pub identity: String,
    pub role: Role,
    pub address: Option<SocketAddr>,
}

impl fmt::Display for Caller {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.address {
            Some(address) => write!(formatter, "{} ({address})", self.identity),
            None => formatter.write_str(&self.identity),
        }
    }
}

/// What a method needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Public,
    Needs(Role),
}

/// The one table of method → role. A method not named here needs admin.
pub fn required_access(path: &str) -> Access {
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return Access::Needs(Role::Admin);
    };
    match (service, method) {
        ("grpc.health.v1.Health", _) => Access::Public,
        ("grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection", _) => {
            Access::Needs(Role::Reader)
        }
        ("orgtrail.v1.IngestService", _) => Access::Needs(Role::Ingest),
        ("orgtrail.v1.SourceService", "ListSources") => Access::Needs(Role::Reader),
        ("orgtrail.v1.SourceService", _) => Access::Needs(Role::Ingest),
        ("orgtrail.v1.EventService", _) => Access::Needs(Role::Reader),
        ("orgtrail.v1.QueryService", "RunQuery") => Access::Needs(Role::Reader),
        (
            "orgtrail.v1.RetentionService",
            "GetPolicy" | "ListPolicies" | "GetPolicyHistory" | "PreviewPolicy"
            | "ExplainRetention" | "ListLegalHolds",
        ) => Access::Needs(Role::Reader),
        ("orgtrail.v1.AuditService", "ListAuditEntries") => Access::Needs(Role::Reader),
        ("orgtrail.v1.QuarantineService", "ListQuarantine") => Access::Needs(Role::Reader),
        (
            "orgtrail.v1.AlarmService",
            "GetAlarm" | "ListAlarms" | "GetAlarmHistory" | "TestFilter",
        ) => Access::Needs(Role::Reader),
        ("orgtrail.v1.NotificationService", "ListDestinations" | "ListNotifications") => {
            Access::Needs(Role::Reader)
        }
        ("orgtrail.v1.RuleService", "ListRules" | "GetRule" | "TestRule") => {
            Access::Needs(Role::Reader)
        }
        ("orgtrail.v1.FindingService", "ListFindings" | "GetFinding" | "ListSuppressions") => {
            Access::Needs(Role::Reader)
        }
        (
            "orgtrail.v1.InsightService",
            "ListInsights" | "ExplainInsight" | "ListInsightSettings",
        ) => Access::Needs(Role::Reader),
        // Triage is the team's daily work: readers acknowledge and resolve.
        ("orgtrail.v1.FindingService", "UpdateFindingState") => Access::Needs(Role::Reader),
        // The content of refused records may hold anything: admins only.
        ("orgtrail.v1.QuarantineService", "GetQuarantined") => Access::Needs(Role::Admin),
        _ => Access::Needs(Role::Admin),
    }
}

/// Why a call was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("no credentials: present a client certificate of the configured CA or an `authorization: Bearer` token")]
    NoCredentials,
    #[error("the bearer token is malformed")]
    MalformedToken,
    #[error("the bearer token is not valid")]
    UnknownToken,
    #[error("token {0:?} was revoked")]
    RevokedToken(String),
    #[error("token {0:?} has expired")]
    ExpiredToken(String),
    #[error("the client certificate cannot be read")]
    UnreadableCertificate,
    #[error(
        "the client certificate ({0}) has no role: map one of its names in auth.certificate_roles"
    )]
    UnmappedCertificate(String),
    #[error("{identity} has the role {role}; {method} needs {required}")]
    RoleTooLow {
        identity: String,
        role: Role,
        required: Role,
        method: String,
    },
    #[error("{identity} may read only the accounts its access key is scoped to, not {account}")]
    AccountOutOfScope { identity: String, account: String },
    #[error("{0} presented an invalid AWS signature: {1}")]
    InvalidSignature(String, String),
    #[error("cannot check the credentials now")]
    Store(#[source] StoreError),
}

impl Refusal {
    /// Whether the caller is known and lacks the role (else it is not known at all).
    pub fn is_permission(&self) -> bool {
        matches!(
            self,
            Refusal::RoleTooLow { .. }
                | Refusal::UnmappedCertificate(_)
                | Refusal::AccountOutOfScope { .. }
        )
    }
}

/// Bearer tokens: `otk_<id>_<secret>`, the id a UUID in hex, the secret 32 random bytes in
/// unpadded base64url.
pub struct IssuedToken {
    pub token_id: Uuid,
    pub secret_sha256: [u8; 32],
    /// The whole token, shown once.
    pub text: String,
}

pub fn issue_token() -> Result<IssuedToken, crate::crypto::CryptoError> {
    let token_id = Uuid::new_v4();
    let secret = crate::crypto::random_key()?;
    let secret_text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    Ok(IssuedToken {
        token_id,
        secret_sha256: Sha256::digest(secret_text.as_bytes()).into(),
        text: format!("otk_{}_{secret_text}", token_id.simple()),
    })
}

/// Splits `otk_<id>_<secret>`.
fn parse_token(text: &str) -> Option<(Uuid, &str)> {
    let rest = text.strip_prefix("otk_")?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != 32 || secret.is_empty() {
        return None;
    }
    Some((Uuid::parse_str(id).ok()?, secret))
}

/// Equal without telling where they differ.
fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// The longest life of a token, in days.
pub const MAX_TOKEN_DAYS: u32 = 3650;

/// Why a token cannot be made as asked.
#[derive(Debug, thiserror::Error)]
pub enum TokenRequestError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A token's name: 1–64 letters, digits, `-`, `_`, `.`, `@`.
pub fn validate_token_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("a token name has 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    {
        return Err(format!(
            "token name {name:?} may hold only letters, digits, '-', '_', '.' and '@'"
        ));
    }
    Ok(())
}

/// Finds callers and their roles.
pub struct Authenticator {
    store: PgStore,
    /// Certificate names (lower case) → role.
    certificate_roles: BTreeMap<String, Role>,
    refusal_audit: RefusalAuditLimit,
    clock: SharedClock,
}

/// The bound on writing a refusal to the audit log before answering.
const AUDIT_WRITE_BOUND: Duration = Duration::from_secs(2);

impl Authenticator {
    pub fn new(
        store: PgStore,
        certificate_roles: BTreeMap<String, Role>,
        clock: SharedClock,
    ) -> Authenticator {
        Authenticator {
            store,
            certificate_roles,
            refusal_audit: RefusalAuditLimit::default(),
            clock,
        }
    }

    /// The caller of a request, or why there is none.
    pub async fn authenticate(&self, presented: Presented) -> Result<Caller, Refusal> {
        let address = presented.address;
        if let Some(header) = &presented.authorization {
            let Authorization::Text(text) = header else {
                return Err(Refusal::MalformedToken);
            };
            let token = text
                .strip_prefix("Bearer ")
                .or_else(|| text.strip_prefix("bearer "))
                .ok_or(Refusal::MalformedToken)?
                .trim();
            let (token_id, secret) = parse_token(token).ok_or(Refusal::MalformedToken)?;
            let credential = self
                .store
                .token_credential(token_id)
                .await
                .map_err(Refusal::Store)?
                .ok_or(Refusal::UnknownToken)?;
            let presented = Sha256::digest(secret.as_bytes());
            if !constant_time_equal(&presented, &credential.secret_sha256) {
                return Err(Refusal::UnknownToken);
            }
            if credential.revoked_at.is_some() {
                return Err(Refusal::RevokedToken(credential.name));
            }
            if credential.access_key {
                // Its bearer secret was never shown; and its account scope is the CloudTrail
                // endpoint's to enforce.
                return Err(Refusal::UnknownToken);
            }
            if credential
                .expires_at
                .is_some_and(|expires_at| expires_at <= self.clock.now())
            {
                return Err(Refusal::ExpiredToken(credential.name));
            }
            let role = credential.role.parse().map_err(|_| {
                Refusal::Store(StoreError::CorruptRow(format!(
                    "token role {:?}",
                    credential.role
                )))
            })?;
            return Ok(Caller {
                identity: format!("token:{}", credential.name),
                role,
                address,
            });
        }
        let Some(certificate) = presented.certificate.as_deref() else {
            return Err(Refusal::NoCredentials);
        };
        let names = certificate_names(certificate).ok_or(Refusal::UnreadableCertificate)?;
        for name in &names {
            if let Some(role) = self.certificate_roles.get(&name.to_ascii_lowercase()) {
                return Ok(Caller {
                    identity: format!("cert:{name}"),
                    role: *role,
                    address,
                });
            }
        }
        Err(Refusal::UnmappedCertificate(names.join(", ")))
    }

    /// The caller of `method`, if it has the role the method needs.
    pub async fn authorize(
        &self,
        method: &str,
        required: Role,
        presented: Presented,
    ) -> Result<Caller, Refusal> {
        let caller = self.authenticate(presented).await?;
        if caller.role.allows(required) {
            Ok(caller)
        } else {
            Err(Refusal::RoleTooLow {
                identity: caller.identity,
                role: caller.role,
                required,
                method: method.to_string(),
            })
        }
    }

    /// Writes a refusal to the audit log (bounded in time and in rate per address; a failure
    /// to write is logged). Refusals for want of the database are not written: it is down.
    pub async fn record_refusal(
        &self,
        refusal: &Refusal,
        method: &str,
        address: Option<SocketAddr>,
    ) {
        if matches!(refusal, Refusal::Store(_)) {
            return;
        }
        let Some(suppressed) = self
            .refusal_audit
            .admit(address.map(|address| address.ip()))
        else {
            return;
        };
        let actor = match refusal {
            Refusal::RoleTooLow { identity, .. }
            | Refusal::AccountOutOfScope { identity, .. }
            | Refusal::InvalidSignature(identity, _) => identity.clone(),
            Refusal::RevokedToken(name) | Refusal::ExpiredToken(name) => format!("token:{name}"),
            _ => "unauthenticated".to_string(),
        };
        let actor = match address {
            Some(address) => format!("{actor} ({address})"),
            None => actor,
        };
        let code = if refusal.is_permission() {
            "PermissionDenied"
        } else {
            "Unauthenticated"
        };
        let mut details = json!({ "method": method, "reason": refusal.to_string(), "code": code });
        if suppressed > 0 {
            details["suppressedBefore"] = json!(suppressed);
        }
        let write = self.store.audit(&actor, "call.refused", method, &details);
        match tokio::time::timeout(AUDIT_WRITE_BOUND, write).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %error_chain(&error), method, "cannot audit a refused call")
            }
            Err(_) => tracing::warn!(method, "cannot audit a refused call in time"),
        }
    }

    /// Makes a token that expires `expires_in_days` from now (0: never); the secret is in
    /// the returned value only.
    pub async fn create_token(
        &self,
        actor: &str,
        request: &TokenRequest<'_>,
    ) -> Result<(StoredToken, IssuedSecret), TokenRequestError> {
        let TokenRequest {
            name,
            role,
            expires_in_days,
            aws_credentials,
            accounts,
        } = *request;
        validate_token_name(name).map_err(TokenRequestError::Invalid)?;
        if expires_in_days > MAX_TOKEN_DAYS {
            return Err(TokenRequestError::Invalid(format!(
                "expires_in_days is over the limit of {MAX_TOKEN_DAYS}"
            )));
        }
        validate_access_key_request(role, aws_credentials, accounts)
            .map_err(TokenRequestError::Invalid)?;
        let expires_at = (expires_in_days > 0)
            .then(|| self.clock.now() + chrono::Duration::days(i64::from(expires_in_days)));
        let encryption_error = |error: crate::crypto::CryptoError| {
            TokenRequestError::Store(StoreError::Encryption(error.to_string()))
        };
        let issued = issue_token().map_err(encryption_error)?;
        let access_key = if aws_credentials {
            Some(issue_access_key().map_err(encryption_error)?)
        } else {
            None
        };
        let mut accounts = accounts.to_vec();
        accounts.sort();
        accounts.dedup();
        let stored = self
            .store
            .create_token(
                actor,
                issued.token_id,
                name,
                role.as_str(),
                &issued.secret_sha256,
                expires_at,
                access_key.as_ref().map(|key| NewAccessKey {
                    access_key_id: &key.access_key_id,
                    secret_access_key: key.secret_access_key.expose_secret(),
                    accounts: &accounts,
                }),
            )
            .await?;
        // An access key's token has no bearer secret anyone knows: the text is dropped.
        let secret = match access_key {
            Some(key) => IssuedSecret::AwsCredentials {
                access_key_id: key.access_key_id,
                secret_access_key: key.secret_access_key,
            },
            None => IssuedSecret::Bearer(issued.text),
        };
        Ok((stored, secret))
    }

    /// The caller of a CloudTrail-API request claiming `access_key_id`, with the secret its
    /// signature is to be checked with. The signature is the CloudTrail endpoint's to check,
    /// and only then [`AccessKeyCaller::admit`] says whether the key may still be used: a
    /// caller without the secret learns nothing about the key.
    pub async fn access_key(
        &self,
        access_key_id: &str,
        address: Option<SocketAddr>,
    ) -> Result<AccessKeyCaller, Refusal> {
        let credential = self
            .store
            .access_key_credential(access_key_id)
            .await
            .map_err(Refusal::Store)?
            .ok_or(Refusal::UnknownToken)?;
        let role = credential.role.parse().map_err(|_| {
            Refusal::Store(StoreError::CorruptRow(format!(
                "token role {:?}",
                credential.role
            )))
        })?;
        Ok(AccessKeyCaller {
            caller: Caller {
                identity: format!("token:{}", credential.name),
                role,
                address,
            },
            expired: credential
                .expires_at
                .is_some_and(|expires_at| expires_at <= self.clock.now()),
            revoked: credential.revoked_at.is_some(),
            token_id: credential.token_id,
            name: credential.name,
            secret_access_key: credential.secret_access_key,
            accounts: credential.accounts,
        })
    }
}

/// What a new token is asked to be.
#[derive(Clone, Copy, Debug)]
pub struct TokenRequest<'a> {
    pub name: &'a str,
    pub role: Role,
    /// 0: never expires.
    pub expires_in_days: u32,
    /// An access key id and secret for the CloudTrail-compatible endpoint, instead of a bearer
    /// token.
    pub aws_credentials: bool,
    /// The accounts an access key is scoped to (empty: all).
    pub accounts: &'a [String],
}

/// The secret of a new token, shown once.
pub enum IssuedSecret {
    /// `otk_<id>_<secret>`.
    Bearer(String),
    AwsCredentials {
        access_key_id: String,
        secret_access_key: SecretString,
    },
}

/// An access key as presented, before its signature is checked.
pub struct AccessKeyCaller {
    pub caller: Caller,
    /// The token the key belongs to (what owns its Lake queries).
    pub token_id: Uuid,
    pub name: String,
    pub secret_access_key: SecretString,
    /// The accounts the key is scoped to; empty: every account.
    pub accounts: Vec<String>,
    revoked: bool,
    expired: bool,
}

impl AccessKeyCaller {
    #[cfg(test)]
    pub fn for_tests(caller: Caller, accounts: Vec<String>) -> AccessKeyCaller {
        AccessKeyCaller {
            name: caller.identity.clone(),
            token_id: Uuid::nil(),
            caller,
            secret_access_key: SecretString::from(String::new()),
            accounts,
            revoked: false,
            expired: false,
        }
    }

    /// Whether the key, whose signature has been verified, may be used now.
    pub fn admit(&self) -> Result<(), Refusal> {
        if self.revoked {
            return Err(Refusal::RevokedToken(self.name.clone()));
        }
        if self.expired {
            return Err(Refusal::ExpiredToken(self.name.clone()));
        }
        Ok(())
    }
}

/// AWS credentials are for reading events (the CloudTrail-compatible endpoint serves lookups
/// only); only they can be scoped to accounts, each of 12 digits.
fn validate_access_key_request(
    role: Role,
    aws_credentials: bool,
    accounts: &[String],
) -> Result<(), String> {
    if !aws_credentials {
        if !accounts.is_empty() {
            return Err("only AWS credentials (--aws-credentials) can be scoped to accounts: the gRPC API has no per-account scope".into());
        }
        return Ok(());
    }
    if role == Role::Ingest {
        return Err("AWS credentials read events through the CloudTrail-compatible endpoint: give them the role reader (or admin), not ingest".into());
    }
    if accounts.len() > MAX_SCOPED_ACCOUNTS {
        return Err(format!(
            "{} accounts, over the limit of {MAX_SCOPED_ACCOUNTS} per key",
            accounts.len()
        ));
    }
    if let Some(account) = accounts
        .iter()
        .find(|account| account.len() != 12 || !account.bytes().all(|byte| byte.is_ascii_digit()))
    {
        return Err(format!("account {account:?} is not 12 digits"));
    }
    Ok(())
}

/// The most accounts one access key can be scoped to.
pub const MAX_SCOPED_ACCOUNTS: usize = 1000;

/// An access key id (`OTKA` and 16 characters of base32, the shape of AWS's `AKIA…`) and its
/// secret (30 random bytes in base64, 40 characters, as AWS's).
pub struct IssuedAccessKey {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
}

pub fn issue_access_key() -> Result<IssuedAccessKey, crate::crypto::CryptoError> {
    const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    // Two draws: the id, which is not secret, shares no bits with the secret.
    let id_bytes = crate::crypto::random_key()?;
    let secret_bytes = crate::crypto::random_key()?;
    // 256 is a multiple of 32: every character is equally likely.
    let id: String = id_bytes[..16]
        .iter()
        .map(|byte| char::from(BASE32[usize::from(byte % 32)]))
        .collect();
    let secret = base64::engine::general_purpose::STANDARD.encode(&secret_bytes[..30]);
    Ok(IssuedAccessKey {
        access_key_id: format!("OTKA{id}"),
        secret_access_key: secret.into(),
    })
}

/// The `authorization` header as a request presents it.
pub enum Authorization {
    Text(String),
    /// Bytes that are not visible ASCII: no token.
    NotText,
}

/// What a request presents: its authorization header, its client certificate (the leaf, DER),
/// where it comes from.
pub struct Presented {
    pub authorization: Option<Authorization>,
    pub certificate: Option<Vec<u8>>,
    pub address: Option<SocketAddr>,
}

/// The subject's common name, then the DNS names of the subject alternative names.
fn certificate_names(certificate: &[u8]) -> Option<Vec<String>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).ok()?;
    let mut names: Vec<String> = parsed
        .subject()
        .iter_common_name()
        .filter_map(|name| name.as_str().ok().map(str::to_string))
        .collect();
    if let Ok(Some(extension)) = parsed.subject_alternative_name() {
        for name in &extension.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push(dns.to_string());
            }
        }
    }
    names.dedup();
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_needs_the_role_the_table_says() {
        assert_eq!(
            required_access("/grpc.health.v1.Health/Check"),
            Access::Public
        );
        assert_eq!(
            required_access("/orgtrail.v1.IngestService/Ingest"),
            Access::Needs(Role::Ingest)
        );
        assert_eq!(
            required_access("/orgtrail.v1.SourceService/ListSources"),
            Access::Needs(Role::Reader)
        );
        assert_eq!(
            required_access("/orgtrail.v1.RetentionService/CreatePolicy"),
            Access::Needs(Role::Admin)
        );
        assert_eq!(
            required_access("/orgtrail.v1.RetentionService/PreviewPolicy"),
            Access::Needs(Role::Reader)
        );
        assert_eq!(
            required_access("/orgtrail.v1.Unknown/X"),
            Access::Needs(Role::Admin)
        );
        assert_eq!(required_access("nonsense"), Access::Needs(Role::Admin));
        assert!(Role::Admin.allows(Role::Ingest));
        assert!(!Role::Reader.allows(Role::Admin));
        assert!(!Role::Ingest.allows(Role::Reader));
    }

    #[test]
    fn issued_tokens_parse_back_and_check_by_hash() {
        let issued = issue_token().unwrap();
        let (id, secret) = parse_token(&issued.text).expect("an issued token parses");
        assert_eq!(id, issued.token_id);
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        assert!(constant_time_equal(&digest, &issued.secret_sha256));
        assert!(parse_token("otk_zz_secret").is_none());
        assert!(parse_token("Bearer x").is_none());
        assert_ne!(issue_token().unwrap().text, issued.text);
    }

    #[test]
    fn access_keys_have_aws_shapes_and_scopes_are_checked() {
        let key = issue_access_key().unwrap();
        assert_eq!(key.access_key_id.len(), 20);
        assert!(key.access_key_id.starts_with("OTKA"));
        assert!(key.access_key_id[4..]
            .bytes()
            .all(|byte| byte.is_ascii_uppercase() || (b'2'..=b'7').contains(&byte)));
        assert_eq!(key.secret_access_key.expose_secret().len(), 40);
        assert_ne!(issue_access_key().unwrap().access_key_id, key.access_key_id);
        let one = ["111122223333".to_string()];
        assert!(validate_access_key_request(Role::Reader, true, &one).is_ok());
        assert!(validate_access_key_request(Role::Reader, false, &one).is_err());
        assert!(validate_access_key_request(Role::Ingest, true, &[]).is_err());
        assert!(validate_access_key_request(Role::Reader, true, &["12345".to_string()]).is_err());
    }
}
