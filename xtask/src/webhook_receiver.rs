//! The demo's webhook endpoint: a small HTTP/1.1 listener on a loopback port, on a thread of
//! its own (std::net, no async runtime), that answers every request `200 ok`, closes the
//! connection and keeps what came (headers and raw body), so the demo can show a signed
//! notification end to end without any outside service. Every read is bounded; it stops when
//! dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The largest request (headers and body) the receiver reads.
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// How long one connection may take to send its request.
const READ_BOUND: Duration = Duration::from_secs(10);

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct ReceivedWebhook {
    /// `POST /orgtrail-demo`.
    pub request_line: String,
    /// Names in lowercase, in order.
    pub headers: Vec<(String, String)>,
    /// The raw bytes, as the signature covers them.
    pub body: Vec<u8>,
}

impl ReceivedWebhook {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether `x-orgtrail-signature` is `v1=` + the lowercase hex HMAC-SHA256, keyed with
    /// `secret`, of `x-orgtrail-timestamp` + `.` + the raw body — the README's recipe
    /// (constant-time comparison by `verify_slice`).
    pub fn signature_is_valid(&self, secret: &str) -> bool {
        let (Some(timestamp), Some(signature)) = (
            self.header("x-orgtrail-timestamp"),
            self.header("x-orgtrail-signature"),
        ) else {
            return false;
        };
        let Some(tag) = signature.strip_prefix("v1=").and_then(decode_lowercase_hex) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(&self.body);
        mac.verify_slice(&tag).is_ok()
    }
}

/// The listener and what it received; stopped when dropped.
pub struct WebhookReceiver {
    address: SocketAddr,
    received: Arc<Mutex<Vec<ReceivedWebhook>>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookReceiver {
    pub fn start() -> anyhow::Result<WebhookReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .context("the webhook receiver cannot listen on loopback")?;
        let address = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let received = Arc::clone(&received);
            let stopping = Arc::clone(&stopping);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    // One connection at a time: the demo sends a handful of requests.
                    if let Ok(stream) = stream {
                        if let Some(webhook) = answer(stream) {
                            received
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push(webhook);
                        }
                    }
                }
            })
        };
        Ok(WebhookReceiver {
            address,
            received,
            stopping,
            thread: Some(thread),
        })
    }

    /// Where to deliver: `http://127.0.0.1:<port>/orgtrail-demo`.
    pub fn url(&self) -> String {
        format!("http://{}/orgtrail-demo", self.address)
    }

    /// Waits (at most `bound`) until `count` requests have come; returns them all.
    pub fn wait_for(&self, count: usize, bound: Duration) -> anyhow::Result<Vec<ReceivedWebhook>> {
        let deadline = Instant::now() + bound;
        loop {
            let received = self
                .received
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if received.len() >= count {
                return Ok(received);
            }
            if Instant::now() > deadline {
                bail!(
                    "the webhook receiver got {} of {count} requests within {bound:?}",
                    received.len()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request (bounded in size and time), answers `200 ok` and closes; `None` when
/// no whole request came.
fn answer(mut stream: TcpStream) -> Option<ReceivedWebhook> {
    stream.set_read_timeout(Some(READ_BOUND)).ok()?;
    stream.set_write_timeout(Some(READ_BOUND)).ok()?;
    let deadline = Instant::now() + READ_BOUND;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(position) = find(&buffer, b"\r\n\r\n") {
            break position;
        }
        if buffer.len() > MAX_REQUEST_BYTES || Instant::now() > deadline {
            return None;
        }
        let read = stream.read(&mut chunk).ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    if length > MAX_REQUEST_BYTES {
        return None;
    }
    let mut body = buffer[header_end + 4..].to_vec();
    while body.len() < length {
        if Instant::now() > deadline {
            return None;
        }
        let read = stream.read(&mut chunk).ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    body.truncate(length);
    let _ = stream.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
    );
    let _ = stream.flush();
    Some(ReceivedWebhook {
        request_line,
        headers,
        body,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn decode_lowercase_hex(text: &str) -> Option<Vec<u8>> {
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    pairs
        .map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, timestamp: &str, body: &[u8]) -> ReceivedWebhook {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        ReceivedWebhook {
            request_line: "POST /orgtrail-demo HTTP/1.1".into(),
            headers: vec![
                ("x-orgtrail-timestamp".into(), timestamp.into()),
                ("x-orgtrail-signature".into(), format!("v1={hex}")),
            ],
            body: body.to_vec(),
        }
    }

    #[test]
    fn a_request_posted_to_the_receiver_is_answered_and_kept_with_its_raw_body() {
        let receiver = WebhookReceiver::start().unwrap();
        let address = receiver
            .url()
            .trim_start_matches("http://")
            .replace("/orgtrail-demo", "");
        let mut stream = TcpStream::connect(address).unwrap();
        let body = br#"{"kind":"destination.test"}"#;
        write!(
            stream,
            "POST /orgtrail-demo HTTP/1.1\r\nHost: x\r\nX-Orgtrail-Timestamp: 1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        stream.write_all(body).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        let received = receiver.wait_for(1, Duration::from_secs(10)).unwrap();
        assert_eq!(received[0].request_line, "POST /orgtrail-demo HTTP/1.1");
        assert_eq!(received[0].header("x-orgtrail-timestamp"), Some("1"));
        assert_eq!(received[0].body, body);
    }

    #[test]
    fn a_signature_is_valid_only_under_its_secret_and_over_its_exact_body() {
        let webhook = signed("whsec_a", "1700000000", b"{\"a\":1}");
        assert!(webhook.signature_is_valid("whsec_a"));
        assert!(!webhook.signature_is_valid("whsec_b"));
        let mut changed = webhook.clone();
        changed.body = b"{\"a\": 1}".to_vec();
        assert!(!changed.signature_is_valid("whsec_a"));
    }
}
