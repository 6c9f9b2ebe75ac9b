//! What every call to the aggregator shares: the `x-orgtrail-actor` metadata that names the
//! person behind the caller in the audit log, and how a failed call reads on standard error.

use anyhow::anyhow;

/// Names the caller in the audit log: `$USER@host`. The credential (certificate or token)
/// decides who may call; this only says who the operator says they are.
pub fn with_actor<T>(message: T) -> tonic::Request<T> {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("{user}@{}", host.trim()).parse() {
        request.metadata_mut().insert("x-orgtrail-actor", value);
    }
    request
}

/// `{what failed}: {the server's message}` — the server's message as it is, e.g. the column
/// of a filter pattern that does not parse.
pub fn status_error(what: &str) -> impl Fn(tonic::Status) -> anyhow::Error + '_ {
    move |status| anyhow!("{what}: {}", status.message())
}
