//! A query's answer on the wire: its columns (name and Arrow type) and its rows as JSON
//! objects, in messages of at most [`ROWS_PER_MESSAGE`] rows.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::json::LineDelimitedWriter;
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
    let mut rows = Vec::with_capacity(result.rows);
    for batch in &result.batches {
        rows.extend(json_rows(batch)?);
    }
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

/// Each row of `batch` as a JSON object (nulls left out, as Arrow's JSON writer does).
fn json_rows(batch: &RecordBatch) -> Result<Vec<String>, Status> {
    let mut writer = LineDelimitedWriter::new(Vec::new());
    writer
        .write(batch)
        .and_then(|()| writer.finish())
        .map_err(|error| Status::internal(format!("cannot write a row as JSON: {error}")))?;
    let text = String::from_utf8(writer.into_inner())
        .map_err(|error| Status::internal(format!("a row is not UTF-8: {error}")))?;
    Ok(text.lines().map(str::to_string).collect())
}
