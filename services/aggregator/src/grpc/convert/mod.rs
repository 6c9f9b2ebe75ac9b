//! Wire types ↔ domain types, one file per area: every message the adapters take is turned
//! into domain types here (incoming data is validated on the way, in `TryFrom`s and
//! `*_from_proto` functions), and every domain answer into the message it goes out as.
//! Nothing past `grpc/` sees a generated type; the adapters only call these.

pub mod admin;
pub mod alarms;
pub mod detections;
pub mod events;
pub mod ingest;
pub mod insights;
pub mod query;
pub mod retention;
pub mod sources;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use tonic::{Request, Status};

use crate::auth::Caller;

pub fn to_timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn from_timestamp(
    field: &str,
    timestamp: prost_types::Timestamp,
) -> Result<DateTime<Utc>, Status> {
    u32::try_from(timestamp.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(timestamp.seconds, nanos))
        .ok_or_else(|| Status::invalid_argument(format!("{field} is not a valid timestamp")))
}

/// A list call's page size: `default` for 0, at most 1000.
pub fn page_size(max_results: u32, default: u32) -> Result<u32, Status> {
    match max_results {
        0 => Ok(default),
        value if value > 1000 => Err(Status::invalid_argument(
            "max_results is over the limit of 1000",
        )),
        value => Ok(value),
    }
}

/// The next token of a list paged by descending id: the last id returned, opaque.
pub fn encode_id_token(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(id.to_be_bytes())
}

/// The id a next token stands for; `None` for the first page.
pub fn decode_id_token(token: &str) -> Result<Option<i64>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Status::invalid_argument("the next token is not valid");
    let bytes: [u8; 8] = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?
        .try_into()
        .map_err(|_| invalid())?;
    Ok(Some(i64::from_be_bytes(bytes)))
}

/// The authenticated caller of a request, as the audit log names it.
pub fn authenticated_actor<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<Caller>()
        .map(Caller::to_string)
        .unwrap_or_else(|| "unauthenticated".into())
}

/// Who made a request: the authenticated caller, and the person the client says it acts for
/// (`x-orgtrail-actor`: the CLI sends user@host), marked as stated.
pub fn stated_actor<T>(request: &Request<T>) -> String {
    let identity = authenticated_actor(request);
    let stated = request
        .metadata()
        .get("x-orgtrail-actor")
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .chars()
                .filter(|c| !c.is_control())
                .take(128)
                .collect::<String>()
        })
        .filter(|value| !value.is_empty());
    match stated {
        Some(stated) => format!("{identity} [stated: {stated}]"),
        None => identity,
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}
