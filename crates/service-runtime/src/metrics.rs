//! Prometheus metrics: counters, gauges and histograms in one process-wide registry, served as
//! the text exposition format at `GET /metrics` on a listener of their own (plaintext HTTP/1.1,
//! no data beyond the figures). Small on purpose: a handful of series.

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

/// Observations counted into cumulative buckets (upper bounds, ascending), with their sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: Vec<f64>,
    /// One count per bound, then the count of everything (`+Inf`).
    counts: Vec<AtomicU64>,
    /// The sum of the observations, in millionths.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &[f64]) -> Histogram {
        Histogram {
            bounds: bounds.to_vec(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Counts `value` (negative values count as 0).
    pub fn observe(&self, value: f64) {
        let value = value.max(0.0);
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            if value <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(all) = self.counts.last() {
            all.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add((value * 1e6).round() as u64, Ordering::Relaxed);
    }

    fn render(&self, text: &mut String, name: &str, labels: &str) {
        let with_le = |le: &str| match labels.strip_suffix('}') {
            Some(open) => format!("{open},le=\"{le}\"}}"),
            None => format!("{{le=\"{le}\"}}"),
        };
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                text,
                "{name}_bucket{} {}",
                with_le(&bound.to_string()),
                count.load(Ordering::Relaxed)
            );
        }
        let all = self
            .counts
            .last()
            .map_or(0, |count| count.load(Ordering::Relaxed));
        let _ = writeln!(text, "{name}_bucket{} {all}", with_le("+Inf"));
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(text, "{name}_sum{labels} {sum}");
        let _ = writeln!(text, "{name}_count{labels} {all}");
    }
}

struct HistogramFamily {
    help: &'static str,
    series: BTreeMap<String, Arc<Histogram>>,
}

/// The process's metrics.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
    histograms: Mutex<BTreeMap<&'static str, HistogramFamily>>,
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

    /// The histogram `name` with these labels and bucket bounds (those of its first use).
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        bounds: &[f64],
    ) -> Arc<Histogram> {
        let labels = render_labels(labels);
        let mut histograms = locked(&self.histograms);
        let family = histograms.entry(name).or_insert_with(|| HistogramFamily {
            help,
            series: BTreeMap::new(),
        });
        family
            .series
            .entry(labels)
            .or_insert_with(|| Arc::new(Histogram::new(bounds)))
            .clone()
    }

    fn series(
        &self,
        name: &'static str,
        help: &'static str,
        kind: &'static str,
        labels: &[(&str, &str)],
    ) -> Arc<Series> {
        let labels = render_labels(labels);
        let mut families = locked(&self.families);
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        family.series.entry(labels).or_default().clone()
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let families = locked(&self.families);
        let mut text = String::new();
        for (name, family) in families.iter() {
            let _ = writeln!(text, "# HELP {name} {}", family.help);
            let _ = writeln!(text, "# TYPE {name} {}", family.kind);
            for (labels, series) in &family.series {
                let _ = writeln!(text, "{name}{labels} {}", series.get());
            }
        }
        drop(families);
        let histograms = locked(&self.histograms);
        for (name, family) in histograms.iter() {
            let _ = writeln!(text, "# HELP {name} {}", family.help);
            let _ = writeln!(text, "# TYPE {name} histogram");
            for (labels, histogram) in &family.series {
                histogram.render(&mut text, name, labels);
            }
        }
        text
    }
}

/// The registry's maps stay usable after a panic elsewhere: figures are not invariants.
fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
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

    #[test]
    fn renders_histograms_cumulatively_with_their_sum_and_count() {
        let registry = Registry::default();
        let histogram =
            registry.histogram("t_seconds", "Seconds.", &[("source", "a")], &[1.0, 10.0]);
        for value in [0.5, 2.0, 20.0, -1.0] {
            histogram.observe(value);
        }
        registry.histogram("t_seconds", "Seconds.", &[], &[1.0, 10.0]);
        assert_eq!(
            registry.render(),
            "# HELP t_seconds Seconds.\n# TYPE t_seconds histogram\n\
             t_seconds_bucket{le=\"1\"} 0\nt_seconds_bucket{le=\"10\"} 0\nt_seconds_bucket{le=\"+Inf\"} 0\n\
             t_seconds_sum 0\nt_seconds_count 0\n\
             t_seconds_bucket{source=\"a\",le=\"1\"} 2\nt_seconds_bucket{source=\"a\",le=\"10\"} 3\n\
             t_seconds_bucket{source=\"a\",le=\"+Inf\"} 4\nt_seconds_sum{source=\"a\"} 22.5\n\
             t_seconds_count{source=\"a\"} 4\n"
        );
    }
}
