//! Who may call what. Every call but health checking needs a role; [`AuthLayer`] — one tower
//! layer in front of every service — finds the caller (a bearer token, else the client
//! certificate's names mapped by `auth.certificate_roles`), checks the role the method needs,
//! hands the [`Caller`] to the handler in the request's extensions, and refuses the rest with
//! UNAUTHENTICATED or PERMISSION_DENIED, each refusal written to the audit log.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::transport::CertificateDer;
use tower::{Layer, Service};
use uuid::Uuid;

use crate::store::{PgStore, StoreError, StoredToken};

/// What a caller may do. An admin may do everything; a reader reads; ingest is what collectors
/// (and backfills) need: send files and keep their sources' bookkeeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Ingest,
    Reader,
    Admin,
}

impl Role {
    pub fn allows(self, required: Role) -> bool {
        self == required || self == Role::Admin
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Reader => "reader",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a role: use ingest, reader or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(text: &str) -> Result<Role, UnknownRole> {
        match text.to_ascii_lowercase().as_str() {
            "ingest" => Ok(Role::Ingest),
            "reader" => Ok(Role::Reader),
            "admin" => Ok(Role::Admin),
            _ => Err(UnknownRole(text.to_string())),
        }
    }
}

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
        (
            "orgtrail.v1.RetentionService",
            "GetPolicy" | "ListPolicies" | "GetPolicyHistory" | "PreviewPolicy"
            | "ExplainRetention" | "ListLegalHolds",
        ) => Access::Needs(Role::Reader),
        ("orgtrail.v1.AuditService", "ListAuditEntries") => Access::Needs(Role::Reader),
        ("orgtrail.v1.QuarantineService", "ListQuarantine") => Access::Needs(Role::Reader),
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
    #[error("cannot check the credentials now")]
    Store(#[source] StoreError),
}

impl Refusal {
    pub fn status(&self) -> tonic::Status {
        match self {
            Refusal::RoleTooLow { .. } | Refusal::UnmappedCertificate(_) => {
                tonic::Status::permission_denied(self.to_string())
            }
            Refusal::Store(_) => tonic::Status::unavailable(self.to_string()),
            _ => tonic::Status::unauthenticated(self.to_string()),
        }
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

/// Finds callers and their roles.
pub struct Authenticator {
    store: PgStore,
    /// Certificate names (lower case) → role.
    certificate_roles: BTreeMap<String, Role>,
    refusal_audit: crate::limits::RefusalAuditLimit,
}

/// The bound on writing a refusal to the audit log before answering.
const AUDIT_WRITE_BOUND: Duration = Duration::from_secs(2);

impl Authenticator {
    pub fn new(store: PgStore, certificate_roles: BTreeMap<String, Role>) -> Authenticator {
        Authenticator {
            store,
            certificate_roles,
            refusal_audit: crate::limits::RefusalAuditLimit::default(),
        }
    }

    /// The caller of a request, or why there is none.
    pub async fn authenticate(&self, presented: Presented) -> Result<Caller, Refusal> {
        let address = presented.address;
        if let Some(value) = &presented.authorization {
            let text = value.to_str().map_err(|_| Refusal::MalformedToken)?;
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
            if credential
                .expires_at
                .is_some_and(|expires_at| expires_at <= Utc::now())
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
        let Some(certificate) = presented
            .certificates
            .as_ref()
            .and_then(|chain| chain.first())
        else {
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

    /// Writes a refusal to the audit log (bounded in time and in rate per address; a failure
    /// to write is logged).
    async fn record_refusal(&self, refusal: &Refusal, method: &str, address: Option<SocketAddr>) {
        let Some(suppressed) = self
            .refusal_audit
            .admit(address.map(|address| address.ip()))
        else {
            return;
        };
        let actor = match refusal {
            Refusal::RoleTooLow { identity, .. } => identity.clone(),
            Refusal::RevokedToken(name) | Refusal::ExpiredToken(name) => format!("token:{name}"),
            _ => "unauthenticated".to_string(),
        };
        let actor = match address {
            Some(address) => format!("{actor} ({address})"),
            None => actor,
        };
        let mut details = json!({ "method": method, "reason": refusal.to_string(), "code": format!("{:?}", refusal.status().code()) });
        if suppressed > 0 {
            details["suppressedBefore"] = json!(suppressed);
        }
        let write = self.store.audit(&actor, "call.refused", method, &details);
        match tokio::time::timeout(AUDIT_WRITE_BOUND, write).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %crate::grpc::status::error_chain(&error), method, "cannot audit a refused call")
            }
            Err(_) => tracing::warn!(method, "cannot audit a refused call in time"),
        }
    }

    pub async fn create_token(
        &self,
        actor: &str,
        name: &str,
        role: Role,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(StoredToken, String), StoreError> {
        let issued = issue_token().map_err(|error| StoreError::Encryption(error.to_string()))?;
        let stored = self
            .store
            .create_token(
                actor,
                issued.token_id,
                name,
                role.as_str(),
                &issued.secret_sha256,
                expires_at,
            )
            .await?;
        Ok((stored, issued.text))
    }
}

/// What a request presents: its authorization header, its client certificate chain, where it
/// comes from.
pub struct Presented {
    authorization: Option<http::HeaderValue>,
    certificates: Option<Arc<Vec<CertificateDer<'static>>>>,
    address: Option<SocketAddr>,
}

impl Presented {
    pub fn of<B>(request: &http::Request<B>) -> Presented {
        Presented {
            authorization: request.headers().get(http::header::AUTHORIZATION).cloned(),
            certificates: request
                .extensions()
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.peer_certs()),
            address: remote_address(request),
        }
    }
}

fn remote_address<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|info| info.get_ref().remote_addr())
        .or_else(|| {
            extensions
                .get::<TcpConnectInfo>()
                .and_then(TcpConnectInfo::remote_addr)
        })
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

/// The layer of [`AuthService`].
#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
}

impl AuthLayer {
    pub fn new(authenticator: Arc<Authenticator>) -> AuthLayer {
        AuthLayer { authenticator }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

/// Authenticates and authorises every call before it reaches a service.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for AuthService<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    RequestBody: Send + 'static,
    ResponseBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<RequestBody>) -> Self::Future {
        // The service that was polled ready serves this call; its clone waits for the next.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let authenticator = self.authenticator.clone();
        Box::pin(async move {
            let method = request.uri().path().to_string();
            let required = match required_access(&method) {
                Access::Public => return inner.call(request).await,
                Access::Needs(role) => role,
            };
            let presented = Presented::of(&request);
            let address = presented.address;
            let outcome = match authenticator.authenticate(presented).await {
                Ok(caller) if caller.role.allows(required) => Ok(caller),
                Ok(caller) => Err(Refusal::RoleTooLow {
                    identity: caller.identity,
                    role: caller.role,
                    required,
                    method: method.clone(),
                }),
                Err(refusal) => Err(refusal),
            };
            match outcome {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Err(refusal) => {
                    tracing::warn!(method, reason = %refusal, "call refused");
                    let status = refusal.status();
                    crate::metrics::call_refused(&format!("{:?}", status.code()));
                    if !matches!(refusal, Refusal::Store(_)) {
                        authenticator
                            .record_refusal(&refusal, &method, address)
                            .await;
                    }
                    Ok(status.into_http())
                }
            }
        })
    }
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
}
