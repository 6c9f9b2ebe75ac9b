//! CloudTrail Lake's query operations as orgtrail serves them over its SQL (`docs/sql.md`):
//! `StartQuery`, `DescribeQuery`, `GetQueryResults`, `ListQueries` and `CancelQuery`, their
//! request bodies read and checked (botocore's shapes: `QueryId` a UUID, `MaxQueryResults` and
//! `MaxResults` 1–1000, statuses from `QueryStatus`). orgtrail has one event data store, the
//! whole trail, named [`EVENT_DATA_STORE`]: `SELECT … FROM orgtrail` (or `FROM events`).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::api_error::ApiError;

/// The name of orgtrail's one event data store, in queries and in `EventDataStore`.
pub const EVENT_DATA_STORE: &str = "orgtrail";
/// Lake's limit on a query's text.
pub const MAX_QUERY_STATEMENT_CHARS: usize = 10_000;
/// Result rows (or queries) per page, at most and by default.
pub const MAX_PAGE_ROWS: u32 = 1000;

/// The operations served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    LookupEvents,
    StartQuery,
    DescribeQuery,
    GetQueryResults,
    ListQueries,
    CancelQuery,
}

impl Operation {
    pub fn parse(name: &str) -> Option<Operation> {
        Some(match name {
            "LookupEvents" => Operation::LookupEvents,
            "StartQuery" => Operation::StartQuery,
            "DescribeQuery" => Operation::DescribeQuery,
            "GetQueryResults" => Operation::GetQueryResults,
            "ListQueries" => Operation::ListQueries,
            "CancelQuery" => Operation::CancelQuery,
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Operation::LookupEvents => "LookupEvents",
            Operation::StartQuery => "StartQuery",
            Operation::DescribeQuery => "DescribeQuery",
            Operation::GetQueryResults => "GetQueryResults",
            Operation::ListQueries => "ListQueries",
            Operation::CancelQuery => "CancelQuery",
        }
    }
}

/// A Lake query's state, as `QueryStatus` spells it.
pub const QUERY_STATUSES: [&str; 6] = [
    "QUEUED",
    "RUNNING",
    "FINISHED",
    "FAILED",
    "CANCELLED",
    "TIMED_OUT",
];

/// A Lake request, read.
#[derive(Clone, Debug, PartialEq)]
pub enum LakeRequest {
    StartQuery {
        statement: String,
    },
    DescribeQuery {
        query_id: Uuid,
    },
    GetQueryResults {
        query_id: Uuid,
        /// The offset of the page (orgtrail's token is the row number, as text).
        offset: usize,
        max_results: u32,
    },
    ListQueries {
        offset: usize,
        max_results: u32,
        start_time: Option<DateTime<Utc>>,
        end_time: Option<DateTime<Utc>>,
        status: Option<String>,
    },
    CancelQuery {
        query_id: Uuid,
    },
}

/// Reads a Lake request from its `Content-Type` header value and its body (the operation read
/// from `X-Amz-Target` by [`crate::operation_of`]).
pub fn parse_lake_request(
    operation: Operation,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<LakeRequest, ApiError> {
    crate::lookup_events_request::check_content_type(content_type.unwrap_or_default())?;
    let members = body_members(body)?;
    let text = |name: &str| -> Result<Option<&str>, ApiError> {
        match members.get(name).filter(|value| !value.is_null()) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(serialization(format!("{name} is not a string"))),
        }
    };
    let query_id = || -> Result<Uuid, ApiError> {
        let text = text("QueryId")?.ok_or_else(|| invalid("QueryId is required"))?;
        Uuid::try_parse(text).map_err(|_| ApiError::QueryIdNotFound {
            query_id: text.chars().take(64).collect(),
        })
    };
    check_event_data_store(text("EventDataStore")?)?;
    match operation {
        Operation::StartQuery => {
            for unsupported in ["QueryAlias", "QueryParameters", "DeliveryS3Uri"] {
                if members
                    .get(unsupported)
                    .is_some_and(|value| !value.is_null())
                {
                    return Err(invalid(&format!(
                        "{unsupported} is not supported: give the QueryStatement itself (results are kept here, not delivered to S3)"
                    )));
                }
            }
            let statement =
                text("QueryStatement")?.ok_or_else(|| invalid("QueryStatement is required"))?;
            let chars = statement.chars().count();
            if chars == 0 || chars > MAX_QUERY_STATEMENT_CHARS {
                return Err(ApiError::InvalidQueryStatement {
                    reason: format!(
                        "the statement is {chars} characters; it must be 1 to {MAX_QUERY_STATEMENT_CHARS}"
                    ),
                });
            }
            Ok(LakeRequest::StartQuery {
                statement: statement.to_string(),
            })
        }
        Operation::DescribeQuery => Ok(LakeRequest::DescribeQuery {
            query_id: query_id()?,
        }),
        Operation::CancelQuery => Ok(LakeRequest::CancelQuery {
            query_id: query_id()?,
        }),
        Operation::GetQueryResults => Ok(LakeRequest::GetQueryResults {
            query_id: query_id()?,
            offset: offset(text("NextToken")?)?,
            max_results: page_size(members.get("MaxQueryResults"))?,
        }),
        Operation::ListQueries => {
            let status = text("QueryStatus")?;
            if let Some(status) = status {
                if !QUERY_STATUSES.contains(&status) {
                    return Err(ApiError::InvalidQueryStatus {
                        status: status.chars().take(64).collect(),
                    });
                }
            }
            let start_time = time(members.get("StartTime"), "StartTime")?;
            let end_time = time(members.get("EndTime"), "EndTime")?;
            if let (Some(start), Some(end)) = (start_time, end_time) {
                if start > end {
                    return Err(ApiError::InvalidDateRange {
                        reason: format!("StartTime {start} is after EndTime {end}"),
                    });
                }
            }
            Ok(LakeRequest::ListQueries {
                offset: offset(text("NextToken")?)?,
                max_results: page_size(members.get("MaxResults"))?,
                start_time,
                end_time,
                status: status.map(str::to_string),
            })
        }
        Operation::LookupEvents => Err(invalid("LookupEvents is not a Lake operation")),
    }
}

/// The statement with orgtrail's event data store named as `events`: Lake's queries name the
/// store (`FROM orgtrail`, or its ARN in double quotes); orgtrail's SQL has one table,
/// `events`, and the scope of the caller is applied to it whatever the statement says.
pub fn statement_for_events(statement: &str) -> String {
    statement.replace(&format!("\"{EVENT_DATA_STORE}\""), "events")
}

fn check_event_data_store(name: Option<&str>) -> Result<(), ApiError> {
    match name {
        None => Ok(()),
        Some(name)
            if name == EVENT_DATA_STORE || name.ends_with(&format!("/{EVENT_DATA_STORE}")) =>
        {
            Ok(())
        }
        Some(name) => Err(ApiError::EventDataStoreNotFound {
            name: name.chars().take(200).collect(),
        }),
    }
}

fn body_members(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(members)) => Ok(members),
        Ok(_) => Err(serialization("the body is not a JSON object".into())),
        Err(error) => Err(serialization(format!("the body is not JSON: {error}"))),
    }
}

fn serialization(reason: String) -> ApiError {
    ApiError::Serialization { reason }
}

fn invalid(reason: &str) -> ApiError {
    ApiError::InvalidParameter {
        reason: reason.to_string(),
    }
}

fn offset(token: Option<&str>) -> Result<usize, ApiError> {
    match token {
        None => Ok(0),
        Some(token) => token
            .strip_prefix("row-")
            .and_then(|number| number.parse().ok())
            .ok_or(ApiError::InvalidNextToken),
    }
}

/// The token of the page starting at row `offset`.
pub fn page_token(offset: usize) -> String {
    format!("row-{offset}")
}

fn page_size(value: Option<&Value>) -> Result<u32, ApiError> {
    match value.filter(|value| !value.is_null()) {
        None => Ok(MAX_PAGE_ROWS),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(count @ 1..=1000) => Ok(count as u32),
            _ => Err(ApiError::InvalidMaxResults {
                value: number.to_string(),
            }),
        },
        Some(_) => Err(serialization("the page size is not a number".into())),
    }
}

fn time(value: Option<&Value>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match value.filter(|value| !value.is_null()) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .and_then(|seconds| DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64))
            .map(Some)
            .ok_or_else(|| serialization(format!("{name} is not a number of epoch seconds"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lake_requests_are_read() {
        let json = Some(crate::CONTENT_TYPE);
        let start = parse_lake_request(
            Operation::StartQuery,
            json,
            br#"{"QueryStatement":"SELECT count(*) FROM orgtrail"}"#,
        )
        .unwrap();
        assert_eq!(
            start,
            LakeRequest::StartQuery {
                statement: "SELECT count(*) FROM orgtrail".into()
            }
        );
        let id = Uuid::new_v4();
        let results = parse_lake_request(
            Operation::GetQueryResults,
            json,
            format!(r#"{{"QueryId":"{id}","MaxQueryResults":2,"NextToken":"row-4"}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(
            results,
            LakeRequest::GetQueryResults {
                query_id: id,
                offset: 4,
                max_results: 2
            }
        );
        let code = |operation, body: &str| {
            parse_lake_request(operation, json, body.as_bytes())
                .unwrap_err()
                .code()
        };
        assert_eq!(
            code(Operation::StartQuery, "{}"),
            "InvalidParameterException"
        );
        assert_eq!(
            parse_lake_request(Operation::StartQuery, Some("text/plain"), b"{}")
                .unwrap_err()
                .code(),
            "SerializationException"
        );
        assert_eq!(
            code(Operation::DescribeQuery, r#"{"QueryId":"nope"}"#),
            "QueryIdNotFoundException"
        );
        assert_eq!(
            code(
                Operation::GetQueryResults,
                &format!(r#"{{"QueryId":"{id}","NextToken":"x"}}"#)
            ),
            "InvalidNextTokenException"
        );
        assert_eq!(
            code(Operation::ListQueries, r#"{"QueryStatus":"DONE"}"#),
            "InvalidQueryStatusException"
        );
        assert_eq!(
            code(Operation::ListQueries, r#"{"EventDataStore":"other"}"#),
            "EventDataStoreNotFoundException"
        );
        assert_eq!(
            statement_for_events(r#"SELECT 1 FROM "orgtrail""#),
            "SELECT 1 FROM events"
        );
    }
}
