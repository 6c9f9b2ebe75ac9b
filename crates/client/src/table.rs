//! Plain text tables: columns as wide as their widest cell, cells on one line.

pub fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|title| title.chars().count()).collect();
    for row in rows {
        for (column, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(column) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let mut text = String::new();
    let mut push_row = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (column, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if column < last {
                let padding = widths[column] - cell.chars().count() + 2;
                text.push_str(&" ".repeat(padding));
            }
        }
        text.push('\n');
    };
    push_row(header.to_vec());
    for row in rows {
        push_row(row.iter().map(String::as_str).collect());
    }
    text
}

/// A cell of at most `max_chars` characters on one line: line breaks and runs of whitespace
/// become one space, and a longer text is cut with `…`.
pub fn truncate_cell(text: &str, max_chars: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max_chars {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_their_widest_cell() {
        let text = render_table(
            &["A", "BB"],
            &[
                vec!["long".into(), "x".into()],
                vec!["s".into(), "yy".into()],
            ],
        );
        assert_eq!(text, "A     BB\nlong  x\ns     yy\n");
    }

    #[test]
    fn long_cells_are_cut_to_one_line_of_their_width() {
        assert_eq!(truncate_cell("{ $.a = 1 }", 60), "{ $.a = 1 }");
        assert_eq!(
            truncate_cell("{ ($.a = 1) ||\n  ($.b = 2) }", 60),
            "{ ($.a = 1) || ($.b = 2) }"
        );
        assert_eq!(truncate_cell("abcdef", 4), "abc…");
        assert_eq!(truncate_cell("abcdef", 4).chars().count(), 4);
        assert_eq!(truncate_cell("", 4), "");
    }
}
