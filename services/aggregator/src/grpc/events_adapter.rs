//! `EventService` over gRPC: lookups and summaries (bounded by the request timeout of the
//! server's limit layer).

use orgtrail_api::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::events::{event_count_to_proto, event_to_proto};
use super::convert::from_timestamp;
use super::status::lookup_error_status;
use crate::lookup::{EventLookup, LookupRequest};

pub struct EventsAdapter {
    lookup: EventLookup,
}

impl EventsAdapter {
    pub fn new(lookup: EventLookup) -> EventsAdapter {
        EventsAdapter { lookup }
    }
}

#[tonic::async_trait]
impl pb::event_service_server::EventService for EventsAdapter {
    async fn lookup_events(
        &self,
        request: Request<pb::LookupEventsRequest>,
    ) -> Result<Response<pb::LookupEventsResponse>, Status> {
        let request = LookupRequest::try_from(request.into_inner())?;
        let page = self
            .lookup
            .lookup_events(request)
            .await
            .map_err(|error| lookup_error_status(&error))?;
        Ok(Response::new(pb::LookupEventsResponse {
            events: page.events.into_iter().map(event_to_proto).collect(),
            next_token: page.next_token.unwrap_or_default(),
        }))
    }

    async fn summarize_events(
        &self,
        request: Request<pb::SummarizeEventsRequest>,
    ) -> Result<Response<pb::SummarizeEventsResponse>, Status> {
        let request = request.into_inner();
        let start = request
            .start_time
            .map(|time| from_timestamp("start_time", time))
            .transpose()?;
        let end = request
            .end_time
            .map(|time| from_timestamp("end_time", time))
            .transpose()?;
        let counts = self
            .lookup
            .summarize_events(start, end)
            .await
            .map_err(|error| lookup_error_status(&error))?;
        Ok(Response::new(pb::SummarizeEventsResponse {
            counts: counts.into_iter().map(event_count_to_proto).collect(),
        }))
    }
}
