//! CloudTrail Lake's query operations on the CloudTrail-compatible endpoint, over orgtrail's SQL
//! (`query::QueryService`): `StartQuery` runs the statement in the background as the key's
//! scope allows (audited with its text), and its results are kept sealed for
//! `cloudtrail_api.query_results_days`; `DescribeQuery`, `GetQueryResults` (pages of up to
//! 1,000 rows, each row a list of one-entry maps as Lake returns them), `ListQueries` and
//! `CancelQuery` see only the key's own queries.

use std::time::Instant;

use chrono::{DateTime, Utc};
use orgtrail_cloudtrail_api::{page_token, statement_for_events, ApiError, LakeRequest};
use orgtrail_service_runtime::error_chain;
use orgtrail_sql::{QueryResult, SqlError};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::auth::AccessKeyCaller;
use crate::query::{QueryService, QueryServiceError};
use crate::store::{LakeOutcome, LakeQuery, PgStore};

/// Lake's queries for the endpoint.
#[derive(Clone)]
pub struct LakeQueries {
    store: PgStore,
    queries: QueryService,
    keep_days: u32,
}

fn unavailable(error: impl std::error::Error) -> ApiError {
    tracing::warn!(error = %error_chain(&error), "a Lake request cannot be answered");
    ApiError::ServiceUnavailable {
        reason: "the queries cannot be read now".into(),
    }
}

fn epoch_seconds(time: DateTime<Utc>) -> f64 {
    time.timestamp_millis() as f64 / 1000.0
}

impl LakeQueries {
    pub fn new(store: PgStore, queries: QueryService, keep_days: u32) -> LakeQueries {
        LakeQueries {
            store,
            queries,
            keep_days,
        }
    }

    /// The answer body of a Lake request from `key`.
    pub async fn answer(
        &self,
        key: &AccessKeyCaller,
        request: LakeRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let answer = match request {
            LakeRequest::StartQuery { statement } => self.start(key, statement).await?,
            LakeRequest::DescribeQuery { query_id } => {
                let query = self.owned(key, query_id).await?;
                let mut statistics = json!({ "CreationTime": epoch_seconds(query.created_at) });
                if let Some(rows) = query.result_rows {
                    statistics["EventsMatched"] = json!(rows);
                }
                if let Some(milliseconds) = query.execution_ms {
                    statistics["ExecutionTimeInMillis"] = json!(milliseconds);
                }
                let mut answer = json!({
                    "QueryId": query.query_id.to_string(),
                    "QueryString": query.statement,
                    "QueryStatus": query.status,
                    "QueryStatistics": statistics,
                });
                if let Some(message) = query.error_message {
                    answer["ErrorMessage"] = json!(message);
                }
                answer
            }
            LakeRequest::GetQueryResults {
                query_id,
                offset,
                max_results,
            } => {
                let query = self.owned(key, query_id).await?;
                let rows: Vec<Value> = match query.status.as_str() {
                    "FINISHED" => {
                        let results = self
                            .store
                            .lake_query_results(query_id, key.token_id)
                            .await
                            .map_err(unavailable)?
                            .unwrap_or_default();
                        serde_json::from_slice(&results).map_err(|error| {
                            ApiError::InternalFailure {
                                reason: format!(
                                    "the results of query {query_id} cannot be read: {error}"
                                ),
                            }
                        })?
                    }
                    _ => Vec::new(),
                };
                let total = rows.len();
                if offset > total {
                    return Err(ApiError::InvalidNextToken);
                }
                let end = (offset + max_results as usize).min(total);
                let page = &rows[offset..end];
                let mut answer = json!({
                    "QueryStatus": query.status,
                    "QueryStatistics": {
                        "ResultsCount": page.len(),
                        "TotalResultsCount": total,
                    },
                    "QueryResultRows": page,
                });
                if end < total {
                    answer["NextToken"] = json!(page_token(end));
                }
                if let Some(message) = query.error_message {
                    answer["ErrorMessage"] = json!(message);
                }
                answer
            }
            LakeRequest::ListQueries {
                offset,
                max_results,
                start_time,
                end_time,
                status,
            } => {
                let queries = self
                    .store
                    .list_lake_queries(
                        key.token_id,
                        start_time,
                        end_time,
                        status.as_deref(),
                        offset,
                        max_results + 1,
                    )
                    .await
                    .map_err(unavailable)?;
                let more = queries.len() > max_results as usize;
                let listed: Vec<Value> = queries
                    .iter()
                    .take(max_results as usize)
                    .map(|query| {
                        json!({
                            "QueryId": query.query_id.to_string(),
                            "QueryStatus": query.status,
                            "CreationTime": epoch_seconds(query.created_at),
                        })
                    })
                    .collect();
                let mut answer = json!({ "Queries": listed });
                if more {
                    answer["NextToken"] = json!(page_token(offset + max_results as usize));
                }
                answer
            }
            LakeRequest::CancelQuery { query_id } => {
                match self
                    .store
                    .cancel_lake_query(query_id, key.token_id)
                    .await
                    .map_err(unavailable)?
                {
                    None => {
                        return Err(ApiError::QueryIdNotFound {
                            query_id: query_id.to_string(),
                        })
                    }
                    Some((false, status)) => {
                        return Err(ApiError::InactiveQuery {
                            reason: format!("query {query_id} is {status}, not running"),
                        })
                    }
                    Some((true, status)) => {
                        json!({ "QueryId": query_id.to_string(), "QueryStatus": status })
                    }
                }
            }
        };
        Ok(answer.to_string().into_bytes())
    }

    async fn owned(&self, key: &AccessKeyCaller, query_id: Uuid) -> Result<LakeQuery, ApiError> {
        self.store
            .lake_query(query_id, key.token_id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| ApiError::QueryIdNotFound {
                query_id: query_id.to_string(),
            })
    }

    /// Records the query and runs it in the background; its id.
    async fn start(&self, key: &AccessKeyCaller, statement: String) -> Result<Value, ApiError> {
        let query_id = Uuid::new_v4();
        self.store
            .create_lake_query(query_id, key.token_id, &statement, self.keep_days)
            .await
            .map_err(unavailable)?;
        let accounts = (!key.accounts.is_empty()).then(|| key.accounts.clone());
        let actor = key.caller.to_string();
        let (store, queries) = (self.store.clone(), self.queries.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = queries
                .run(&actor, &statement_for_events(&statement), accounts)
                .await;
            let execution_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let recorded = match outcome {
                Ok(result) => match lake_rows(&result) {
                    Ok(rows) => {
                        let results = Value::Array(rows).to_string();
                        store
                            .finish_lake_query(
                                query_id,
                                &LakeOutcome {
                                    status: "FINISHED",
                                    error_message: None,
                                    execution_ms,
                                    result_rows: result.rows as i64,
                                    results: Some(results.as_bytes()),
                                },
                            )
                            .await
                    }
                    Err(message) => {
                        failed(&store, query_id, "FAILED", &message, execution_ms).await
                    }
                },
                Err(error) => {
                    let status = match &error {
                        QueryServiceError::Sql(SqlError::Timeout(_)) => "TIMED_OUT",
                        _ => "FAILED",
                    };
                    failed(&store, query_id, status, &error.to_string(), execution_ms).await
                }
            };
            if let Err(error) = recorded {
                tracing::warn!(%query_id, error = %error_chain(&error), "cannot record a Lake query's outcome");
            }
        });
        Ok(json!({ "QueryId": query_id.to_string() }))
    }
}

async fn failed(
    store: &PgStore,
    query_id: Uuid,
    status: &str,
    message: &str,
    execution_ms: i64,
) -> Result<bool, crate::store::StoreError> {
    store
        .finish_lake_query(
            query_id,
            &LakeOutcome {
                status,
                error_message: Some(message),
                execution_ms,
                result_rows: 0,
                results: None,
            },
        )
        .await
}

/// The rows as Lake returns them: each a list of one-entry maps, column → value as text, in
/// the columns' order (a null is an empty text).
fn lake_rows(result: &QueryResult) -> Result<Vec<Value>, String> {
    let columns: Vec<String> = result
        .schema
        .fields()
        .iter()
        .map(|field| field.name().clone())
        .collect();
    let mut rows = Vec::with_capacity(result.rows);
    for line in result.json_lines().map_err(|error| error.to_string())? {
        let object: Map<String, Value> = serde_json::from_str(&line)
            .map_err(|error| format!("cannot read the results: {error}"))?;
        let row: Vec<Value> = columns
            .iter()
            .map(|column| {
                let value = match object.get(column) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(text)) => text.clone(),
                    Some(other) => other.to_string(),
                };
                json!({ column.as_str(): value })
            })
            .collect();
        rows.push(Value::Array(row));
    }
    Ok(rows)
}
