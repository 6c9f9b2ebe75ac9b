//! The demo's CloudTrail-compatible step: an access key made with `orgtrail tokens create
//! --aws-credentials`, then the AWS CLI from PyPI (`target/xtask/aws-clients`) calling
//! `aws cloudtrail lookup-events` on orgtrail, unchanged but for `--endpoint-url` and
//! `--ca-bundle`.

use std::process::Command;

use anyhow::{bail, Context};

use crate::demo::{heading, DemoCli};
use crate::pki::Pki;

/// Shows the step numbered `step`.
pub fn show_cloudtrail_api(
    cli: &DemoCli<'_>,
    listen: &str,
    pki: &Pki,
    step: usize,
) -> anyhow::Result<()> {
    let python = crate::python_readers::ensure_aws_clients_python()?;
    heading(&format!(
        "{step}. CloudTrail's own API: the AWS CLI (from PyPI) asks orgtrail's CloudTrail-compatible endpoint, signed with an orgtrail access key"
    ));
    let arguments = [
        "tokens",
        "create",
        "--name",
        "demo-aws-cli",
        "--role",
        "reader",
        "--aws-credentials",
    ];
    let created = cli.show_capturing_stdout(&arguments)?;
    let (access_key_id, secret_access_key) = aws_credentials(&created)?;
    println!("aws_access_key_id = {access_key_id}");
    println!("aws_secret_access_key = (shown once; not repeated here)");
    let endpoint = format!("https://{listen}");
    let ca = pki.ca();
    println!(
        "$ aws cloudtrail lookup-events --endpoint-url {endpoint} --ca-bundle {} --region us-east-1 \\\n    --lookup-attributes AttributeKey=EventName,AttributeValue=ConsoleLogin \\\n    --query 'Events[].[EventTime,Username,EventSource]' --output table",
        ca.display()
    );
    let output = Command::new(&python)
        .args(["-m", "awscli", "cloudtrail", "lookup-events"])
        .args(["--endpoint-url", &endpoint, "--region", "us-east-1"])
        .arg("--ca-bundle")
        .arg(&ca)
        .args([
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=ConsoleLogin",
        ])
        .args([
            "--query",
            "Events[].[EventTime,Username,EventSource]",
            "--output",
            "table",
        ])
        .env("AWS_ACCESS_KEY_ID", &access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &secret_access_key)
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .context("cannot run the AWS CLI")?;
    if !output.status.success() {
        bail!(
            "aws cloudtrail lookup-events failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    print!("{}", String::from_utf8_lossy(&output.stdout));
    println!("(every account and region of the organization in one call; the CLI followed NextToken to the last page)");
    Ok(())
}

/// The access key id and secret access key `orgtrail tokens create --aws-credentials` printed
/// (the lines of an AWS credentials file).
pub fn aws_credentials(printed: &str) -> anyhow::Result<(String, String)> {
    let value = |name: &str| {
        printed
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().strip_prefix('='))
            .map(|value| value.trim().to_string())
            .with_context(|| format!("no {name} in the output of tokens create"))
    };
    Ok((value("aws_access_key_id")?, value("aws_secret_access_key")?))
}
