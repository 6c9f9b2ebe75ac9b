//! The AWS clients no one here wrote — boto3 and the AWS CLI, from PyPI — pointed at an
//! aggregator's CloudTrail-compatible endpoint over TLS with the test CA: access keys made with
//! `orgtrail tokens create --aws-credentials`, jobs for `tests/python/cloudtrail_client.py`,
//! `aws cloudtrail lookup-events` runs, and the AWS SDK for Rust's CloudTrail client.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli_process::{orgtrail_ok_at, run_bounded};
use crate::TestStack;

/// The Python with awscli and boto3 (`cargo xtask test` sets it).
pub const AWS_PYTHON_VARIABLE: &str = "ORGTRAIL_TEST_AWS_PYTHON";

/// How long one client run may take.
const CLIENT_BOUND: Duration = Duration::from_secs(300);

/// The aggregator's environment serving the endpoint on `port`.
pub fn endpoint_environment(port: u16) -> Vec<(String, String)> {
    vec![(
        "ORGTRAIL_CLOUDTRAIL_API__LISTEN".into(),
        format!("127.0.0.1:{port}"),
    )]
}

/// An access key as `orgtrail tokens create --aws-credentials` printed it.
#[derive(Clone, Debug)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Makes a token with AWS credentials through the CLI, as an admin would; `extra` are more
/// arguments (`--account A`, `--role admin`, `--expires-in-days N`).
pub fn create_access_key(stack: &TestStack, name: &str, extra: &[&str]) -> AccessKey {
    let mut arguments = vec!["tokens", "create", "--name", name, "--aws-credentials"];
    if !extra.contains(&"--role") {
        arguments.extend_from_slice(&["--role", "reader"]);
    }
    arguments.extend_from_slice(extra);
    let stdout = orgtrail_ok_at(stack, &arguments);
    let value = |name: &str| {
        stdout
            .lines()
            .find_map(|line| {
                line.strip_prefix(name)?
                    .trim()
                    .strip_prefix('=')
                    .map(str::trim)
            })
            .unwrap_or_else(|| panic!("no {name} in the output of tokens create: {stdout}"))
            .to_string()
    };
    AccessKey {
        access_key_id: value("aws_access_key_id"),
        secret_access_key: value("aws_secret_access_key"),
    }
}

fn aws_python() -> PathBuf {
    std::env::var_os(AWS_PYTHON_VARIABLE)
        .unwrap_or_else(|| {
            panic!("{AWS_PYTHON_VARIABLE} is not set: it names a Python with awscli and boto3 from PyPI (cargo xtask test sets it)")
        })
        .into()
}

fn endpoint_url(port: u16) -> String {
    format!("https://127.0.0.1:{port}")
}

/// An environment with no AWS configuration to fall back on.
fn isolated_aws_environment(command: &mut Command) {
    for name in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_CLOUDTRAIL",
        "AWS_CA_BUNDLE",
    ] {
        command.env_remove(name);
    }
    command
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

/// Runs `calls` (see `tests/python/cloudtrail_client.py`) with boto3 against the endpoint on
/// `port`, signed with `key`; one result per call.
pub fn boto3_calls(port: u16, key: &AccessKey, calls: Vec<Value>) -> Vec<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/cloudtrail_client.py");
    let job = json!({
        "endpoint": endpoint_url(port),
        "ca_bundle": crate::pki::ca_file(),
        "region": "us-east-1",
        "access_key_id": key.access_key_id,
        "secret_access_key": key.secret_access_key,
        "calls": calls,
    });
    let mut command = Command::new(aws_python());
    command.arg(&script);
    isolated_aws_environment(&mut command);
    let output = run_bounded(command, Some(job.to_string().into_bytes()), CLIENT_BOUND);
    assert!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{} printed no JSON ({error}): {}",
            script.display(),
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// `aws cloudtrail lookup-events --endpoint-url … --ca-bundle … ARGS…` with `key` in the
/// environment (the AWS CLI paginates by itself); its exit code, parsed output and standard
/// error.
pub fn aws_cli_lookup_events(
    port: u16,
    key: &AccessKey,
    arguments: &[&str],
) -> (i32, Value, String) {
    let mut command = Command::new(aws_python());
    let endpoint = endpoint_url(port);
    let ca_bundle = crate::pki::ca_file();
    command
        .args(["-m", "awscli", "cloudtrail", "lookup-events"])
        .args([
            "--endpoint-url",
            &endpoint,
            "--region",
            "us-east-1",
            "--output",
            "json",
        ])
        .arg("--ca-bundle")
        .arg(&ca_bundle)
        .args(arguments);
    isolated_aws_environment(&mut command);
    command
        .env("AWS_ACCESS_KEY_ID", &key.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &key.secret_access_key)
        .env("AWS_MAX_ATTEMPTS", "1");
    let output = run_bounded(command, None, CLIENT_BOUND);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let parsed = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout)
            .unwrap_or_else(|error| panic!("aws printed no JSON ({error}): {stdout}"))
    };
    (
        output.status.code().unwrap_or(-1),
        parsed,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The AWS SDK for Rust's CloudTrail client for `endpoint`, trusting the CA in `ca_pem`, signing
/// with the given key; no retries (every answer counts as it came).
pub fn cloudtrail_sdk_client(
    endpoint: &str,
    ca_pem: Vec<u8>,
    access_key_id: &str,
    secret_access_key: &str,
) -> Result<aws_sdk_cloudtrail::Client, aws_smithy_http_client::HttpClientError> {
    use aws_sdk_cloudtrail::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(TrustStore::empty().with_pem_certificate(ca_pem))
                .build()?,
        )
        .build_https();
    let config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "orgtrail",
        ))
        .http_client(http_client)
        .retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_cloudtrail::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .build();
    Ok(aws_sdk_cloudtrail::Client::from_conf(config))
}

/// [`cloudtrail_sdk_client`] for a test stack's endpoint on `port`, with the test CA.
pub fn test_sdk_client(port: u16, key: &AccessKey) -> aws_sdk_cloudtrail::Client {
    let ca = std::fs::read(crate::pki::ca_file())
        .unwrap_or_else(|error| panic!("cannot read the test CA: {error}"));
    cloudtrail_sdk_client(
        &endpoint_url(port),
        ca,
        &key.access_key_id,
        &key.secret_access_key,
    )
    .unwrap_or_else(|error| panic!("cannot make the SDK's client: {error}"))
}
