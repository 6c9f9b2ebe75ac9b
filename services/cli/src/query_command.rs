//! `orgtrail query "SQL" [--output table|json|csv]`: SQL over the whole history
//! (`docs/sql.md`), printed as it streams in: a table (columns as they come, cells as their
//! JSON text), JSON Lines, or CSV with a header.

use std::io::Write;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::query_service_client::QueryServiceClient;
use orgtrail_client::table::render_table;
use orgtrail_client::{connect, ClientSettings};
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QueryOutput {
    Table,
    /// One JSON object per row (JSON Lines).
    Json,
    Csv,
}

#[derive(Args)]
pub struct QueryArguments {
    /// One SELECT over `events` (CloudTrail Lake's columns; docs/sql.md).
    pub sql: String,
    #[arg(long, value_enum, default_value_t = QueryOutput::Table)]
    pub output: QueryOutput,
}

/// A cell as text: strings as they are, anything else as its JSON; absent (null) empty.
fn cell(row: &Map<String, Value>, column: &str) -> String {
    match row.get(column) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// A CSV field, quoted when it must be (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub async fn run_query(
    settings: &ClientSettings,
    arguments: QueryArguments,
) -> anyhow::Result<ExitCode> {
    let mut client =
        QueryServiceClient::new(connect(settings).await?).max_decoding_message_size(256 << 20);
    let mut stream = client
        .run_query(pb::RunQueryRequest { sql: arguments.sql })
        .await
        .map_err(|status| anyhow!("the query was not run: {}", status.message()))?
        .into_inner();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut columns: Vec<String> = Vec::new();
    let mut table_rows: Vec<Vec<String>> = Vec::new();
    let mut rows = 0usize;
    while let Some(message) = stream
        .message()
        .await
        .map_err(|status| anyhow!("the query failed: {}", status.message()))?
    {
        if !message.columns.is_empty() {
            columns = message
                .columns
                .iter()
                .map(|column| column.name.clone())
                .collect();
            if arguments.output == QueryOutput::Csv {
                let header: Vec<String> = columns.iter().map(|name| csv_field(name)).collect();
                writeln!(out, "{}", header.join(","))?;
            }
        }
        for row in &message.rows {
            rows += 1;
            let object: Map<String, Value> = serde_json::from_str(row)
                .map_err(|error| anyhow!("the aggregator sent a row that is not JSON: {error}"))?;
            match arguments.output {
                QueryOutput::Json => writeln!(out, "{}", Value::Object(object))?,
                QueryOutput::Csv => {
                    let fields: Vec<String> = columns
                        .iter()
                        .map(|column| csv_field(&cell(&object, column)))
                        .collect();
                    writeln!(out, "{}", fields.join(","))?;
                }
                QueryOutput::Table => {
                    table_rows.push(columns.iter().map(|column| cell(&object, column)).collect())
                }
            }
        }
    }
    if arguments.output == QueryOutput::Table {
        let header: Vec<&str> = columns.iter().map(String::as_str).collect();
        write!(out, "{}", render_table(&header, &table_rows))?;
    }
    out.flush()?;
    eprintln!("({rows} rows)");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
