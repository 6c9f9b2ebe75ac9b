//! The one home of the AWS SDK: base credentials from the default chain (environment,
//! profile, web identity / IRSA), AssumeRole into member accounts with cached credentials,
//! S3 clients per source, and the conversion of SDK errors into [`SourceError`]s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{
    error::CredentialsError, future, ProvideCredentials, SharedCredentialsProvider,
};
use aws_credential_types::Credentials;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tokio::sync::Mutex;

use crate::config::{AwsSettings, SourceConfig};
use crate::source_error::SourceError;

/// Credentials are renewed this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// AWS as the collector reaches it.
pub struct AwsAccess {
    base: SdkConfig,
    endpoint_url: Option<String>,
    session_name: String,
    roles: Mutex<HashMap<RoleKey, Arc<RoleCredentials>>>,
}

/// A role and the external id it is assumed with.
type RoleKey = (String, Option<String>);

/// What a source is read with: an S3 client in the bucket's region, with the source's
/// credentials.
#[derive(Clone)]
pub struct SourceS3 {
    pub client: aws_sdk_s3::Client,
}

impl AwsAccess {
    pub async fn load(settings: &AwsSettings, collector_id: &str) -> AwsAccess {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint_url) = &settings.endpoint_url {
            loader = loader.endpoint_url(endpoint_url);
        }
        AwsAccess {
            base: loader.load().await,
            endpoint_url: settings.endpoint_url.clone(),
            session_name: session_name(collector_id),
            roles: Mutex::new(HashMap::new()),
        }
    }

    /// The S3 client of a source. With a role, the role is assumed (or its cached credentials
    /// used) first, so that a role that cannot be assumed is said so, not hidden in a failed
    /// listing.
    pub async fn s3_for(&self, source: &SourceConfig) -> Result<SourceS3, SourceError> {
        let mut config = aws_sdk_s3::config::Builder::from(&self.base)
            .force_path_style(self.endpoint_url.is_some());
        if let Some(region) = &source.bucket_region {
            config = config.region(Region::new(region.clone()));
        }
        if let Some(role_arn) = &source.role_arn {
            let role = self.role(role_arn, source.external_id.as_deref()).await;
            role.credentials().await?;
            config =
                config.credentials_provider(SharedCredentialsProvider::new(ArcCredentials(role)));
        }
        Ok(SourceS3 {
            client: aws_sdk_s3::Client::from_conf(config.build()),
        })
    }

    /// CloudTrail in `region`, with the collector's own credentials (for `ListPublicKeys`).
    pub fn cloudtrail_in(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        aws_sdk_cloudtrail::Client::from_conf(
            aws_sdk_cloudtrail::config::Builder::from(&self.base)
                .region(Region::new(region.to_string()))
                .build(),
        )
    }

    async fn role(&self, role_arn: &str, external_id: Option<&str>) -> Arc<RoleCredentials> {
        let key = (role_arn.to_string(), external_id.map(str::to_string));
        let mut roles = self.roles.lock().await;
        if let Some(role) = roles.get(&key) {
            return Arc::clone(role);
        }
        let mut builder = AssumeRoleProvider::builder(role_arn).session_name(&self.session_name);
        if let Some(external_id) = external_id {
            builder = builder.external_id(external_id);
        }
        let provider = builder.configure(&self.base).build().await;
        let role = Arc::new(RoleCredentials {
            role_arn: role_arn.to_string(),
            provider: Box::new(provider),
            cached: Mutex::new(None),
        });
        roles.insert(key, Arc::clone(&role));
        role
    }
}

/// `orgtrail-<collector id>`, within STS's rules for session names (2 to 64 of `[\w+=,.@-]`).
fn session_name(collector_id: &str) -> String {
    let name: String = format!("orgtrail-{collector_id}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    name
}

/// AssumeRole credentials of one role, cached and renewed [`REFRESH_BEFORE_EXPIRY`] before
/// they expire.
pub struct RoleCredentials {
    role_arn: String,
    provider: Box<dyn ProvideCredentials>,
    cached: Mutex<Option<Credentials>>,
}

impl RoleCredentials {
    pub async fn credentials(&self) -> Result<Credentials, SourceError> {
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref() {
            if is_fresh(credentials, SystemTime::now()) {
                return Ok(credentials.clone());
            }
        }
        let fresh = self
            .provider
            .provide_credentials()
            .await
            .map_err(|error| assume_role_error(&self.role_arn, &error))?;
        tracing::debug!(role = %self.role_arn, expiry = ?fresh.expiry(), "assumed role");
        *cached = Some(fresh.clone());
        Ok(fresh)
    }
}

fn is_fresh(credentials: &Credentials, now: SystemTime) -> bool {
    credentials
        .expiry()
        .is_none_or(|expiry| expiry > now + REFRESH_BEFORE_EXPIRY)
}

/// The SDK's view of [`RoleCredentials`].
#[derive(Clone)]
struct ArcCredentials(Arc<RoleCredentials>);

impl std::fmt::Debug for ArcCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RoleCredentials({})", self.0.role_arn)
    }
}

impl ProvideCredentials for ArcCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.0
                .credentials()
                .await
                .map_err(CredentialsError::provider_error)
        })
    }
}

/// STS refusals: AWS answers AccessDenied; some compatible servers answer a bare HTTP 403.
fn assume_role_error(role_arn: &str, error: &CredentialsError) -> SourceError {
    let full = format!("{}", DisplayErrorContext(error));
    let denied = ["AccessDenied", "StatusCode(403)", "not authorized"]
        .iter()
        .any(|marker| full.contains(marker));
    let detail = concise_detail(&full);
    if denied {
        SourceError::AssumeRoleDenied {
            role_arn: role_arn.to_string(),
            detail,
        }
    } else {
        SourceError::AssumeRole {
            role_arn: role_arn.to_string(),
            detail,
        }
    }
}

/// An S3 error of `operation` on `bucket`/`prefix`, classified by its code and status.
pub fn s3_error<E>(
    error: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    bucket: &str,
    prefix: &str,
    operation: &'static str,
) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error
        .raw_response()
        .map(|response| response.status().as_u16());
    let code = error
        .as_service_error()
        .and_then(|service| service.code())
        .map(str::to_string);
    let detail = concise_detail(&format!("{}", DisplayErrorContext(&error)));
    let bucket = bucket.to_string();
    let prefix = prefix.to_string();
    match (code.as_deref(), status) {
        (Some("NoSuchBucket"), _) => SourceError::NoSuchBucket { bucket },
        (Some("AccessDenied" | "AllAccessDisabled" | "AccountProblem"), _) | (None, Some(403)) => {
            SourceError::AccessDenied {
                bucket,
                prefix,
                operation,
                detail,
            }
        }
        (
            Some(
                "ExpiredToken"
                | "InvalidToken"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "TokenRefreshRequired",
            ),
            _,
        ) => SourceError::InvalidCredentials { bucket, detail },
        (_, Some(status))
            if status < 500
                && status != 429
                && !matches!(code.as_deref(), Some("SlowDown" | "RequestTimeout")) =>
        {
            SourceError::S3 {
                bucket,
                prefix,
                operation,
                detail,
                retryable: false,
            }
        }
        // 5xx, throttling, timeouts and connections that failed: try again later.
        _ => SourceError::S3 {
            bucket,
            prefix,
            operation,
            detail,
            retryable: true,
        },
    }
}

/// The service's own message (`<Message>…</Message>` of an XML error body) when the SDK could
/// not parse it, else the first line of the SDK's description, without the raw response.
fn concise_detail(full: &str) -> String {
    if let Some(start) = full.find("<Message>") {
        let message = &full[start + "<Message>".len()..];
        if let Some(end) = message.find("</Message>") {
            return message[..end].to_string();
        }
    }
    let cut = full.find(" (").unwrap_or(full.len());
    full[..cut].chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts AssumeRole calls and hands out credentials valid for `valid_for`.
    #[derive(Debug)]
    struct CountingProvider {
        calls: std::sync::atomic::AtomicUsize,
        valid_for: Duration,
    }

    impl ProvideCredentials for CountingProvider {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let credentials = Credentials::new(
                format!("ASIA{call}"),
                "secret",
                Some("token".into()),
                Some(SystemTime::now() + self.valid_for),
                "test",
            );
            future::ProvideCredentials::ready(Ok(credentials))
        }
    }

    async fn calls_for(valid_for: Duration) -> usize {
        let provider = Arc::new(CountingProvider {
            calls: std::sync::atomic::AtomicUsize::new(0),
            valid_for,
        });
        let role = RoleCredentials {
            role_arn: "arn:aws:iam::111111111111:role/R".into(),
            provider: Box::new(ArcProvider(Arc::clone(&provider))),
            cached: Mutex::new(None),
        };
        for _ in 0..3 {
            role.credentials().await.unwrap();
        }
        provider.calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[derive(Debug)]
    struct ArcProvider(Arc<CountingProvider>);

    impl ProvideCredentials for ArcProvider {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.0.provide_credentials()
        }
    }

    #[tokio::test]
    async fn credentials_are_cached_until_shortly_before_they_expire() {
        assert_eq!(
            calls_for(Duration::from_secs(3600)).await,
            1,
            "an hour of validity is reused"
        );
        assert_eq!(
            calls_for(Duration::from_secs(60)).await,
            3,
            "a minute left is renewed at once"
        );
    }

    #[test]
    fn details_keep_the_services_message_and_drop_the_raw_response() {
        let raw = r#"an error occurred: unhandled error (ProviderError { raw: Response { status: StatusCode(403), body: b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>User: u is not authorized</Message></Error>" } })"#;
        assert_eq!(concise_detail(raw), "User: u is not authorized");
        assert_eq!(
            concise_detail("dispatch failure (io error: refused)"),
            "dispatch failure"
        );
    }

    #[test]
    fn session_names_follow_sts_rules() {
        assert_eq!(session_name("pod-7 a/b"), "orgtrail-pod-7-a-b");
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
    }
}
