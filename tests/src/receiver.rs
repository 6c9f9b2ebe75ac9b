//! `NotificationReceiver`: an HTTP/1.1 server on a loopback port that stands in for a webhook
//! or Slack endpoint. It records every request in order (method, path, headers, body, when),
//! answers 200 `ok` as Slack does — or 503 when told to refuse, or nothing at all when told to
//! stall — and checks signatures with its own HMAC (the `hmac` crate, not the aggregator's
//! code). Stopped when dropped; every wait is bounded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// A stalled request is answered (503) after this long at the latest, so no connection of a
/// test outlives it by much.
pub const STALL_BOUND: Duration = Duration::from_secs(120);
/// The largest body the receiver reads.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How long the receiver waits for a request's body.
const BODY_BOUND: Duration = Duration::from_secs(30);

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// In order; names in lowercase.
    pub headers: Vec<(String, String)>,
    /// The raw bytes, as the signature covers them.
    pub body: Vec<u8>,
    pub received_at: DateTime<Utc>,
    /// What the receiver answered: 200, or 503 when it refused (or stalled, then gave up).
    pub answered: u16,
}

impl ReceivedRequest {
    /// The first value of a header (names are compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "the body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Whether `x-orgtrail-signature` is `v1=` + lowercase hex HMAC-SHA256 keyed with `secret`
/// over `x-orgtrail-timestamp` + `.` + the raw body, compared in constant time — what the
/// README tells a receiver to do, done with the `hmac` crate.
pub fn verify_signature(request: &ReceivedRequest, secret: &str) -> bool {
    let (Some(timestamp), Some(signature)) = (
        request.header("x-orgtrail-timestamp"),
        request.header("x-orgtrail-signature"),
    ) else {
        return false;
    };
    let Some(hex) = signature.strip_prefix("v1=") else {
        return false;
    };
    let Some(tag) = decode_lowercase_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&request.body);
    mac.verify_slice(&tag).is_ok()
}

/// How the receiver answers the requests to come.
#[derive(Default)]
struct Behaviour {
    /// This many requests are answered 503 before any other rule applies.
    refuse_next: usize,
    refuse_all: bool,
    stall: bool,
}

struct Shared {
    requests: Mutex<Vec<ReceivedRequest>>,
    behaviour: Mutex<Behaviour>,
    /// A request was recorded.
    arrived: Notify,
    /// Stalled requests may be answered now.
    stall_released: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A webhook endpoint on `127.0.0.1:<port>`; stops (with every open connection) when dropped.
pub struct NotificationReceiver {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl NotificationReceiver {
    pub async fn start() -> NotificationReceiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("the receiver cannot listen on loopback: {error}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("the receiver has no address: {error}"));
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            behaviour: Mutex::new(Behaviour::default()),
            arrived: Notify::new(),
            stall_released: Notify::new(),
        });
        let server = tokio::spawn(serve(listener, Arc::clone(&shared)));
        NotificationReceiver {
            address,
            shared,
            server,
        }
    }

    /// The URL to deliver to (`http://127.0.0.1:<port>/notifications`).
    pub fn url(&self) -> String {
        format!("http://{}/notifications", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Answers the next `count` requests 503 (then back to the other rules).
    pub fn refuse_next(&self, count: usize) {
        lock(&self.shared.behaviour).refuse_next = count;
    }

    /// Answers every request 503 while on.
    pub fn refuse_all(&self, on: bool) {
        lock(&self.shared.behaviour).refuse_all = on;
    }

    /// While on, records requests and answers none of them (a receiver that hangs); turning
    /// it off answers those waiting 503. Bounded by [`STALL_BOUND`].
    pub fn stall(&self, on: bool) {
        lock(&self.shared.behaviour).stall = on;
        if !on {
            self.shared.stall_released.notify_waiters();
        }
    }

    /// Every request so far, in the order they arrived.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Waits until at least `count` requests have arrived and returns them all; panics with
    /// what arrived when `bound` passes first.
    pub async fn wait_for(&self, count: usize, bound: Duration) -> Vec<ReceivedRequest> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let arrived = self.shared.arrived.notified();
            tokio::pin!(arrived);
            // Registered before looking, so an arrival in between is not missed.
            arrived.as_mut().enable();
            {
                let requests = lock(&self.shared.requests);
                if requests.len() >= count {
                    return requests.clone();
                }
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let requests = self.requests();
                let summary: Vec<String> = requests
                    .iter()
                    .map(|request| {
                        format!(
                            "{} {} → {} ({} bytes)",
                            request.method,
                            request.path,
                            request.answered,
                            request.body.len()
                        )
                    })
                    .collect();
                panic!(
                    "the receiver got {} of {count} requests within {bound:?}: {summary:#?}",
                    requests.len()
                );
            }
        }
    }

    /// How many requests came for each `x-orgtrail-notification-id` (requests without one
    /// under `""`).
    pub fn counts_per_notification_id(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for request in lock(&self.shared.requests).iter() {
            let id = request
                .header("x-orgtrail-notification-id")
                .unwrap_or_default();
            *counts.entry(id.to_string()).or_insert(0) += 1;
        }
        counts
    }
}

impl Drop for NotificationReceiver {
    fn drop(&mut self) {
        // The accept loop owns the connections' tasks: aborting it drops them all.
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            // Reap finished connections as they end.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            let service = service_fn(move |request| answer(request, Arc::clone(&shared)));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = request.into_parts();
    let body = match tokio::time::timeout(BODY_BOUND, Limited::new(body, MAX_BODY_BYTES).collect())
        .await
    {
        Ok(Ok(collected)) => collected.to_bytes().to_vec(),
        Ok(Err(error)) => format!("(the receiver could not read the body: {error})").into_bytes(),
        Err(_) => b"(the body did not arrive in time)".to_vec(),
    };
    let (answered, stall) = {
        let mut behaviour = lock(&shared.behaviour);
        if behaviour.refuse_next > 0 {
            behaviour.refuse_next -= 1;
            (StatusCode::SERVICE_UNAVAILABLE, false)
        } else if behaviour.stall {
            (StatusCode::SERVICE_UNAVAILABLE, true)
        } else if behaviour.refuse_all {
            (StatusCode::SERVICE_UNAVAILABLE, false)
        } else {
            (StatusCode::OK, false)
        }
    };
    let stall_released = shared.stall_released.notified();
    tokio::pin!(stall_released);
    stall_released.as_mut().enable();
    lock(&shared.requests).push(ReceivedRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|path| path.as_str().to_string())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        received_at: Utc::now(),
        answered: answered.as_u16(),
    });
    shared.arrived.notify_waiters();
    if stall {
        let _ = tokio::time::timeout(STALL_BOUND, stall_released).await;
    }
    let text = if answered == StatusCode::OK {
        "ok"
    } else {
        "refused by the test receiver"
    };
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = answered;
    Ok(response)
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
