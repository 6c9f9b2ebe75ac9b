//! Lookups over the consolidated view: pages of events newest first, with opaque tokens for
//! keyset pagination (never OFFSET), and summaries per account, region and category.

use chrono::{DateTime, Utc};
use orgtrail_domain::lookup::{
    decode_page_token, encode_page_token, EventCount, LookupError, LookupQuery, PageCursor,
};
use orgtrail_domain::CloudTrailEvent;

use crate::store::{PgStore, StoreError};

/// A lookup as asked: the query and the token of the page wanted.
#[derive(Clone, Debug)]
pub struct LookupRequest {
    pub query: LookupQuery,
    pub next_token: Option<String>,
}

/// One page of events.
#[derive(Clone, Debug)]
pub struct LookupPage {
    pub events: Vec<CloudTrailEvent>,
    /// `None` on the last page.
    pub next_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LookupServiceError {
    #[error(transparent)]
    Invalid(#[from] LookupError),
    #[error("cannot read events")]
    Store(#[from] StoreError),
    /// The summary is read from the rollups, which this aggregator does not keep.
    #[error("the summary is answered from the rollups, and this aggregator does not keep them (ingest.rollups = false, a setting for benchmarks only): its counts would be wrong")]
    RollupsOff,
}

#[derive(Clone)]
pub struct EventLookup {
    store: PgStore,
    /// `ingest.rollups`: without them the summary has nothing right to answer from.
    rollups_kept: bool,
}

impl EventLookup {
    pub fn new(store: PgStore, rollups_kept: bool) -> EventLookup {
        EventLookup {
            store,
            rollups_kept,
        }
    }

    pub async fn lookup_events(
        &self,
        request: LookupRequest,
    ) -> Result<LookupPage, LookupServiceError> {
        let query = request.query;
        let after = match request.next_token.as_deref() {
            None => None,
            Some(token) => Some(decode_page_token(token, &query)?),
        };
        let page_size = query.max_results as usize;
        // One more than a page tells whether another page follows.
        let mut events = self
            .store
            .lookup_events(&query, after, query.max_results + 1)
            .await?;
        let next_token = if events.len() > page_size {
            events.truncate(page_size);
            events.last().map(|last| {
                let cursor = PageCursor {
                    event_time: last.event_time,
                    event_id: last.event_id,
                };
                encode_page_token(&cursor, &query)
            })
        } else {
            None
        };
        Ok(LookupPage { events, next_token })
    }

    pub async fn summarize_events(
        &self,
        start_time: Option<DateTime<Utc>>,
        end_time: Option<DateTime<Utc>>,
    ) -> Result<Vec<EventCount>, LookupServiceError> {
        if !self.rollups_kept {
            return Err(LookupServiceError::RollupsOff);
        }
        if let (Some(start), Some(end)) = (start_time, end_time) {
            if start > end {
                return Err(LookupError::InvalidTimeRange { start, end }.into());
            }
        }
        Ok(self.store.summarize_events(start_time, end_time).await?)
    }
}
