//! CloudTrail Lake's queries (the CloudTrail-compatible endpoint's `StartQuery` and its
//! siblings): each query's state, and its results sealed like records until they expire.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{convert_sqlx_error, PgStore, StoreError};

/// A Lake query as stored (its results apart).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LakeQuery {
    pub query_id: Uuid,
    pub statement: String,
    pub status: String,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub execution_ms: Option<i64>,
    pub result_rows: Option<i64>,
}

/// How a query ended.
pub struct LakeOutcome<'a> {
    pub status: &'a str,
    pub error_message: Option<&'a str>,
    pub execution_ms: i64,
    pub result_rows: i64,
    /// The results as JSON, sealed before they are stored.
    pub results: Option<&'a [u8]>,
}

const LAKE_COLUMNS: &str =
    "query_id, statement, status, error_message, created_at, execution_ms, result_rows";

impl PgStore {
    /// Records a new query of `token_id`, RUNNING; drops the queries past their expiry.
    pub async fn create_lake_query(
        &self,
        query_id: Uuid,
        token_id: Uuid,
        statement: &str,
        keep_days: u32,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM lake_queries WHERE expires_at < now()")
            .execute(self.pool())
            .await
            .map_err(convert_sqlx_error)?;
        sqlx::query(
            "INSERT INTO lake_queries (query_id, token_id, statement, status, expires_at)
             VALUES ($1, $2, $3, 'RUNNING', now() + make_interval(days => $4))",
        )
        .bind(query_id)
        .bind(token_id)
        .bind(statement)
        .bind(i32::try_from(keep_days).unwrap_or(i32::MAX))
        .execute(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        Ok(())
    }

    /// Records how a running query ended; a query cancelled meanwhile stays cancelled (and its
    /// results are not kept). Whether the outcome was recorded.
    pub async fn finish_lake_query(
        &self,
        query_id: Uuid,
        outcome: &LakeOutcome<'_>,
    ) -> Result<bool, StoreError> {
        let (key_id, sealed) = match outcome.results {
            Some(results) => {
                let (key_id, sealed) = self.seal_secret(query_id, results)?;
                (key_id, Some(sealed))
            }
            None => (None, None),
        };
        let updated = sqlx::query(
            "UPDATE lake_queries SET status = $2, error_message = $3, execution_ms = $4,
                    result_rows = $5, key_id = $6, sealed_results = $7, finished_at = now()
             WHERE query_id = $1 AND status = 'RUNNING'",
        )
        .bind(query_id)
        .bind(outcome.status)
        .bind(outcome.error_message)
        .bind(outcome.execution_ms)
        .bind(outcome.result_rows)
        .bind(key_id)
        .bind(sealed)
        .execute(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        Ok(updated.rows_affected() == 1)
    }

    /// A query of `token_id`.
    pub async fn lake_query(
        &self,
        query_id: Uuid,
        token_id: Uuid,
    ) -> Result<Option<LakeQuery>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {LAKE_COLUMNS} FROM lake_queries WHERE query_id = $1 AND token_id = $2"
        ))
        .bind(query_id)
        .bind(token_id)
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// The results of a finished query of `token_id`, opened.
    pub async fn lake_query_results(
        &self,
        query_id: Uuid,
        token_id: Uuid,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Option<i32>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT key_id, sealed_results FROM lake_queries WHERE query_id = $1 AND token_id = $2",
        )
        .bind(query_id)
        .bind(token_id)
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        match row {
            Some((key_id, Some(sealed))) => Ok(Some(self.open_secret(
                &format!("the results of query {query_id}"),
                key_id,
                query_id,
                &sealed,
            )?)),
            _ => Ok(None),
        }
    }

    /// The queries of `token_id`, newest first.
    pub async fn list_lake_queries(
        &self,
        token_id: Uuid,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
        status: Option<&str>,
        offset: usize,
        limit: u32,
    ) -> Result<Vec<LakeQuery>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {LAKE_COLUMNS} FROM lake_queries
             WHERE token_id = $1 AND ($2::timestamptz IS NULL OR created_at >= $2)
               AND ($3::timestamptz IS NULL OR created_at <= $3)
               AND ($4::text IS NULL OR status = $4)
             ORDER BY created_at DESC, query_id OFFSET $5 LIMIT $6"
        ))
        .bind(token_id)
        .bind(start)
        .bind(end)
        .bind(status)
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// Cancels a running query of `token_id`: its status after (`None`: no such query).
    pub async fn cancel_lake_query(
        &self,
        query_id: Uuid,
        token_id: Uuid,
    ) -> Result<Option<(bool, String)>, StoreError> {
        let cancelled: Option<String> = sqlx::query_scalar(
            "UPDATE lake_queries SET status = 'CANCELLED', finished_at = now()
             WHERE query_id = $1 AND token_id = $2 AND status IN ('QUEUED', 'RUNNING')
             RETURNING status",
        )
        .bind(query_id)
        .bind(token_id)
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        if let Some(status) = cancelled {
            return Ok(Some((true, status)));
        }
        Ok(self
            .lake_query(query_id, token_id)
            .await?
            .map(|query| (false, query.status)))
    }
}
