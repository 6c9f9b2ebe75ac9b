//! AWS KMS as the master key of record encryption (envelope encryption): a new data key comes
//! from `GenerateDataKey` (AES-256) and is stored only as the ciphertext KMS returned; at start
//! each stored data key is opened with `Decrypt`. The key never leaves KMS, and every use of it
//! is in the organization's CloudTrail. Both calls carry the same encryption context, so a key
//! policy can allow them for orgtrail's data keys only.
//!
//! The one home of the AWS SDK in the aggregator. Credentials come from the SDK's default chain
//! (environment, profile, web identity / IRSA in Kubernetes).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;

use crate::config::KmsSettings;

/// What went wrong with KMS.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    #[error("AWS KMS {operation} with key {key} failed: {detail}{hint}")]
    Call {
        operation: &'static str,
        key: String,
        detail: String,
        hint: String,
    },
    /// The ciphertext does not open under the key KMS holds for it.
    #[error("data key {key_id} does not open with the KMS key {arn}")]
    WrongKey { key_id: i32, arn: String },
}

/// The encryption context of every data key: bound into the ciphertext, required to open it,
/// and usable in key policies (`kms:EncryptionContext:orgtrail`).
const CONTEXT_KEY: &str = "orgtrail";
const CONTEXT_VALUE: &str = "record-data-key";

/// Prefix of `data_keys.wrapped_by` for data keys wrapped by KMS; the key's ARN follows.
pub const WRAPPED_BY_PREFIX: &str = "kms:";

/// A KMS call gives up after this long, retries included: a start never hangs on KMS.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The KMS key new data keys are made under, and the client that opens them.
pub struct KmsMaster {
    client: aws_sdk_kms::Client,
    key_id: String,
    endpoint: String,
}

impl std::fmt::Debug for KmsMaster {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KmsMaster")
            .field("key_id", &self.key_id)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// The SDK's configuration for KMS: rustls with ring, bounded timeouts and retries, the
/// region and endpoint when given.
async fn kms_config(region: Option<&str>, endpoint: Option<&str>) -> aws_config::SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_string()));
    }
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

impl KmsMaster {
    pub async fn connect(settings: &KmsSettings) -> KmsMaster {
        let config = kms_config(settings.region.as_deref(), settings.endpoint.as_deref()).await;
        let endpoint = match (&settings.endpoint, config.region()) {
            (Some(endpoint), _) => endpoint.clone(),
            (None, Some(region)) => format!("AWS KMS in {region}"),
            (None, None) => "AWS KMS (no region set)".into(),
        };
        KmsMaster {
            client: aws_sdk_kms::Client::new(&config),
            key_id: settings.key_id.clone(),
            endpoint,
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// A new data key: its plaintext, its ciphertext, and `kms:<key ARN>` (the ARN KMS
    /// answered, so an alias moved later still finds the key that wrapped it).
    pub async fn generate_data_key(&self) -> Result<([u8; 32], Vec<u8>, String), KmsError> {
        let output = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context(CONTEXT_KEY, CONTEXT_VALUE)
            .send()
            .await
            .map_err(|error| self.failure("GenerateDataKey", &self.key_id, error))?;
        let malformed = |what: &str| KmsError::Call {
            operation: "GenerateDataKey",
            key: self.key_id.clone(),
            detail: format!("the answer {what}"),
            hint: String::new(),
        };
        let plaintext: [u8; 32] = output
            .plaintext()
            .map(|blob| blob.as_ref().to_vec())
            .ok_or_else(|| malformed("has no plaintext"))?
            .try_into()
            .map_err(|_| malformed("is not a 32-byte key"))?;
        let wrapped = output
            .ciphertext_blob()
            .map(|blob| blob.as_ref().to_vec())
            .ok_or_else(|| malformed("has no ciphertext"))?;
        let arn = output.key_id().unwrap_or(&self.key_id);
        Ok((plaintext, wrapped, format!("{WRAPPED_BY_PREFIX}{arn}")))
    }

    /// Opens data key `key_id`, wrapped by the KMS key `arn`.
    pub async fn decrypt(
        &self,
        key_id: i32,
        wrapped: &[u8],
        arn: &str,
    ) -> Result<[u8; 32], KmsError> {
        let output = self
            .client
            .decrypt()
            .key_id(arn)
            .ciphertext_blob(Blob::new(wrapped))
            .encryption_context(CONTEXT_KEY, CONTEXT_VALUE)
            .send()
            .await
            .map_err(|error| {
                let code = error.code().unwrap_or_default().to_string();
                if matches!(
                    code.as_str(),
                    "InvalidCiphertextException" | "IncorrectKeyException"
                ) {
                    KmsError::WrongKey {
                        key_id,
                        arn: arn.to_string(),
                    }
                } else {
                    self.failure("Decrypt", arn, error)
                }
            })?;
        output
            .plaintext()
            .and_then(|blob| <[u8; 32]>::try_from(blob.as_ref()).ok())
            .ok_or(KmsError::WrongKey {
                key_id,
                arn: arn.to_string(),
            })
    }

    fn failure<E, R>(&self, operation: &'static str, key: &str, error: SdkError<E, R>) -> KmsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = error.code().map(str::to_string);
        let hint = match (&error, code.as_deref()) {
            (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_), _) => format!(
                "; cannot reach {} (check encryption.kms_endpoint / kms_region and the network policy towards KMS)",
                self.endpoint
            ),
            (_, Some("AccessDeniedException")) => format!(
                "; the aggregator's AWS identity may not use this key: allow kms:{operation} on it (the aggregator's IRSA role and the key policy)"
            ),
            (_, Some("NotFoundException")) => {
                "; there is no such key in this account and region (check encryption.kms_key_id and kms_region)".into()
            }
            (_, Some("DisabledException" | "KMSInvalidStateException")) => {
                "; the key is disabled or pending deletion: enable it (or cancel its deletion) in KMS".into()
            }
            (_, Some("UnrecognizedClientException" | "InvalidSignatureException"
                | "ExpiredTokenException")) => {
                "; the AWS credentials are not valid (the default chain: environment, profile, IRSA web identity)".into()
            }
            _ => String::new(),
        };
        KmsError::Call {
            operation,
            key: key.to_string(),
            detail: DisplayErrorContext(&error).to_string(),
            hint,
        }
    }
}

/// An asymmetric KMS key (RSA, SIGN_VERIFY) that signs the archive's digests: RSASSA PKCS#1
/// v1.5 SHA-256 (`kms:Sign`) over a message, and its public key as CloudTrail gives its own
/// (the DER of the PKCS#1 `RSAPublicKey` inside `kms:GetPublicKey`'s SubjectPublicKeyInfo).
pub struct KmsSigner {
    client: aws_sdk_kms::Client,
    key_id: String,
    public_key_der: Vec<u8>,
}

impl KmsSigner {
    /// Connects and fetches the key's public key.
    pub async fn connect(
        key_id: &str,
        region: Option<&str>,
        endpoint: Option<&str>,
    ) -> Result<KmsSigner, String> {
        let client = aws_sdk_kms::Client::new(&kms_config(region, endpoint).await);
        let answer = client
            .get_public_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|error| {
                format!(
                    "kms:GetPublicKey of {key_id}: {}",
                    DisplayErrorContext(&error)
                )
            })?;
        let spki = answer
            .public_key()
            .ok_or_else(|| format!("kms:GetPublicKey of {key_id} answered no key"))?;
        let (_, info) =
            <x509_parser::x509::SubjectPublicKeyInfo as x509_parser::prelude::FromDer<
                '_,
                x509_parser::error::X509Error,
            >>::from_der(spki.as_ref())
            .map_err(|error| format!("the public key of {key_id} is not DER: {error}"))?;
        Ok(KmsSigner {
            client,
            key_id: key_id.to_string(),
            public_key_der: info.subject_public_key.data.to_vec(),
        })
    }

    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    /// The signature of `message` (RSASSA_PKCS1_V1_5_SHA_256, the message given raw).
    pub async fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, String> {
        let answer = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(aws_sdk_kms::types::MessageType::Raw)
            .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
            .send()
            .await
            .map_err(|error| {
                format!(
                    "kms:Sign with {}: {}",
                    self.key_id,
                    DisplayErrorContext(&error)
                )
            })?;
        answer
            .signature()
            .map(|signature| signature.as_ref().to_vec())
            .ok_or_else(|| format!("kms:Sign with {} answered no signature", self.key_id))
    }
}
