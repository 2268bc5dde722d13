//! Small helpers: safe terminal text, byte counts, stdout that tolerates a
//! closed pipe, tables.

use std::io::Write;

use crate::common::Error;

// One escaping for both programs (control characters, bidi overrides):
// labels are text a resident chose.
pub(crate) use crate::common::text::{cut, printable};

/// Widest a label is shown in a table, in characters: the whole label is
/// in `--json` and in each command's own message.
pub(crate) const LABEL_COLUMN: usize = 32;

/// `1.2 KiB`.
pub(crate) fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

/// Prints to stdout. A closed pipe (`vigil-node alerts | head`) is not an
/// error; the output just stops.
pub(crate) fn out(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::failed(format!("writing to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// A table as the operator commands print it (see [`crate::common::table`]).
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = crate::common::table::render(header, rows, &[]);
    t.truncate(t.trim_end_matches('\n').len());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_cannot_drive_the_terminal() {
        assert_eq!(
            printable("Ana\u{1b}[2J\nflat 12"),
            "Ana\\u{1b}[2J\\nflat 12"
        );
        assert_eq!(printable("Zoë, 12B"), "Zoë, 12B");
    }

    #[test]
    fn long_labels_are_cut_after_escaping() {
        assert_eq!(cut("Ana", 5), "Ana");
        assert_eq!(cut("Ana Costa", 5), "Ana…");
        assert_eq!(cut("a\u{1b}bcdef", 6), "a\\u{1…");
        assert_eq!(cut(&"x".repeat(200), 32).chars().count(), 32);
    }

    #[test]
    fn tables_pad_by_characters() {
        let t = table(&["A", "B"], &[vec!["ë".into(), "x".into()]]);
        assert_eq!(t, "A  B\në  x");
    }
}
