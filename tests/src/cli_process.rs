//! Running the `orgtrail` binary with a bound on how long it may take.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::pki::{cli_environment, ClientIdentity};
use crate::stack::binary;

/// Runs `orgtrail ARGS…` as the tests' admin (TLS with the admin certificate) and returns its
/// output; panics if it takes longer than `bound`.
pub fn run_orgtrail(arguments: &[&str], bound: Duration) -> Output {
    run_orgtrail_with(&cli_environment(ClientIdentity::Admin), arguments, bound)
}

/// The environment of a command that speaks to moto as AWS (`orgtrail verify`): moto's test
/// credentials, a region, and no profile or instance metadata to fall back on.
pub fn moto_aws_environment() -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect()
}

/// Runs `orgtrail ARGS…` with the given environment (its TLS material, token, …) only.
pub fn run_orgtrail_with(
    environment: &[(String, String)],
    arguments: &[&str],
    bound: Duration,
) -> Output {
    let mut command = Command::new(binary("orgtrail"));
    command
        .args(arguments)
        .env_remove("ORGTRAIL_TOKEN")
        .env_remove("ORGTRAIL_CA")
        .env_remove("ORGTRAIL_CERT")
        .env_remove("ORGTRAIL_KEY")
        .envs(environment.iter().cloned());
    run_bounded(command, None, bound)
}

/// Runs `command` with `stdin` as its standard input, its output captured; panics (having
/// killed it) if it takes longer than `bound`.
pub fn run_bounded(mut command: Command, stdin: Option<Vec<u8>>, bound: Duration) -> Output {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {description}: {error}"));
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(&input);
        });
    }
    // Drain the pipes while waiting, so a large output cannot block the child.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + bound;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{description} took longer than {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Reads a child's pipe to its end on a thread of its own.
pub fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buffer = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buffer);
        }
        buffer
    })
}

/// How long one `orgtrail` command against a test stack may take ([`orgtrail_at`]).
pub const CLI_BOUND: Duration = Duration::from_secs(180);

/// Runs `orgtrail --endpoint <stack> ARGS…` as the tests' admin and returns its output.
pub fn orgtrail_at(stack: &crate::TestStack, arguments: &[&str]) -> Output {
    let endpoint = stack.endpoint();
    let mut all = vec!["--endpoint", endpoint.as_str()];
    all.extend_from_slice(arguments);
    run_orgtrail(&all, CLI_BOUND)
}

/// As [`orgtrail_at`], requiring success; its standard output.
pub fn orgtrail_ok_at(stack: &crate::TestStack, arguments: &[&str]) -> String {
    let output = orgtrail_at(stack, arguments);
    assert!(
        output.status.success(),
        "orgtrail {arguments:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// As [`orgtrail_ok_at`] with `--output json`, parsed.
pub fn orgtrail_json_at(stack: &crate::TestStack, arguments: &[&str]) -> serde_json::Value {
    let mut all = arguments.to_vec();
    all.extend_from_slice(&["--output", "json"]);
    let stdout = orgtrail_ok_at(stack, &all);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("orgtrail {all:?} printed no JSON ({error}): {stdout}"))
}
