//! Prometheus metrics: counters and gauges in one process-wide registry, served as the text
//! exposition format at `GET /metrics` on a listener of their own (plaintext HTTP/1.1, no data
//! beyond the figures). Small on purpose: a handful of series, no histograms.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A monotonically increasing count, or a gauge set to a value.
#[derive(Debug, Default)]
pub struct Series(AtomicU64);

impl Series {
    pub fn add(&self, amount: u64) {
        self.0.fetch_add(amount, Ordering::Relaxed);
    }

    pub fn increment(&self) {
        self.add(1);
    }

    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

struct Family {
    help: &'static str,
    kind: &'static str,
    /// Rendered label set (`{a="b"}` or empty) → its series.
    series: BTreeMap<String, Arc<Series>>,
}

/// The process's metrics.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

impl Registry {
    pub fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(Registry::default)
    }

    /// The counter `name` with these labels, registered on first use.
    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
    ) -> Arc<Series> {
        self.series(name, help, "counter", labels)
    }

    pub fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
    ) -> Arc<Series> {
        self.series(name, help, "gauge", labels)
    }

    fn series(
        &self,
        name: &'static str,
        help: &'static str,
        kind: &'static str,
        labels: &[(&str, &str)],
    ) -> Arc<Series> {
        let labels = render_labels(labels);
        let mut families = match self.families.lock() {
            Ok(families) => families,
            Err(poisoned) => poisoned.into_inner(),
        };
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        family.series.entry(labels).or_default().clone()
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let families = match self.families.lock() {
            Ok(families) => families,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut text = String::new();
        for (name, family) in families.iter() {
            let _ = writeln!(text, "# HELP {name} {}", family.help);
            let _ = writeln!(text, "# TYPE {name} {}", family.kind);
            for (labels, series) in &family.series {
                let _ = writeln!(text, "{name}{labels} {}", series.get());
            }
        }
        text
    }
}

fn render_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(name, value)| {
            let value = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{value}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A request head larger than this, or slower than the timeout, is dropped.
const MAX_REQUEST_BYTES: usize = 8192;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `GET /metrics` from the global registry.
pub async fn serve(listener: TcpListener) {
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream)).await;
            });
        }
    }
}

async fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 || head.len() + read > MAX_REQUEST_BYTES {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let request_line = head.split(|byte| *byte == b'\r').next().unwrap_or_default();
    let mut parts = request_line.split(|byte| *byte == b' ');
    let (method, path) = (parts.next(), parts.next());
    let (status, content_type, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            Registry::global().render(),
        ),
        (Some(b"GET"), _) => ("404 Not Found", "text/plain", "not found\n".into()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET /metrics\n".into(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let registry = Registry::default();
        registry
            .counter("t_files_total", "Files.", &[("outcome", "stored")])
            .add(3);
        registry
            .counter("t_files_total", "Files.", &[("outcome", "a\"b")])
            .increment();
        registry.gauge("t_up", "Up.", &[]).set(1);
        assert_eq!(
            registry.render(),
            "# HELP t_files_total Files.\n# TYPE t_files_total counter\nt_files_total{outcome=\"a\\\"b\"} 1\nt_files_total{outcome=\"stored\"} 3\n# HELP t_up Up.\n# TYPE t_up gauge\nt_up 1\n"
        );
    }
}
