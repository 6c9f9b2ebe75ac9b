//! A query's answer on the wire: its columns (name and Arrow type) and its rows as JSON
//! objects, in messages of at most [`ROWS_PER_MESSAGE`] rows.

use orgtrail_api::v1 as pb;
use orgtrail_sql::QueryResult;
use tonic::Status;

/// Rows per streamed message.
pub const ROWS_PER_MESSAGE: usize = 1000;

/// The messages of an answer: the columns in the first (which may hold no row).
pub fn query_result_to_proto(result: &QueryResult) -> Result<Vec<pb::QueryRows>, Status> {
    let columns: Vec<pb::QueryColumn> = result
        .schema
        .fields()
        .iter()
        .map(|field| pb::QueryColumn {
            name: field.name().clone(),
            r#type: field.data_type().to_string(),
        })
        .collect();
    let rows = result
        .json_lines()
        .map_err(|error| Status::internal(error.to_string()))?;
    let mut messages: Vec<pb::QueryRows> = rows
        .chunks(ROWS_PER_MESSAGE)
        .map(|chunk| pb::QueryRows {
            columns: Vec::new(),
            rows: chunk.to_vec(),
        })
        .collect();
    match messages.first_mut() {
        Some(first) => first.columns = columns,
        None => messages.push(pb::QueryRows {
            columns,
            rows: Vec::new(),
        }),
    }
    Ok(messages)
}
