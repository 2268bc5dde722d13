//! Plain text tables, through comfy-table, in the layout both programs have
//! always printed: no borders, a header row, columns two spaces apart and
//! padded to their widest cell, nothing after the last column.

use comfy_table::{CellAlignment, ContentArrangement, Table};

/// The table of `header` and `rows`, one line each, every line ending in a
/// newline; the columns listed in `right` are right-aligned.
pub(crate) fn render(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let mut t = Table::new();
    // The NOTHING preset draws no border; padding does the spacing: two
    // spaces after each column, none before. Never wrap: scripts cut columns.
    t.load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied())
        .add_rows(rows.iter().map(|r| r.iter().map(String::as_str)));
    for (i, column) in t.column_iter_mut().enumerate() {
        column.set_padding((0, 2));
        if right.contains(&i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = String::new();
    for line in t.lines() {
        // Padding of the last column, and of empty trailing cells.
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_two_spaces_apart_and_pad_by_characters() {
        let t = render(&["A", "B"], &[vec!["ë".into(), "x".into()]], &[]);
        assert_eq!(t, "A  B\në  x\n");
    }

    #[test]
    fn right_aligned_columns_and_no_trailing_space() {
        let rows = vec![
            vec!["t".into(), "37.9".into(), "".into()],
            vec!["heart-rate".into(), "72".into(), "note".into()],
        ];
        let t = render(&["METRIC", "VALUE", "NOTE"], &rows, &[1]);
        assert_eq!(
            t,
            "METRIC      VALUE  NOTE\n\
             t            37.9\n\
             heart-rate     72  note\n"
        );
    }
}
