//! What the tests of the printed outputs share.

/// A timestamp `seconds` after the Unix epoch.
pub fn at(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// A table's rows as cells: render_table puts at least two spaces between columns, and no cell
/// holds two spaces in a row.
pub fn cells(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}
