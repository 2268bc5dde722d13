//! Text that came from the log or the node (notes, reasons, messages),
//! made safe to print on a terminal: a note written on a paired device, or
//! a message from a hostile node, must not move the cursor, clear the
//! screen, retitle the window, fake table rows or reorder what is shown.

/// Whether `c` is shown escaped: C0 (ESC, newlines, tabs…), DEL and C1
/// controls, which terminals act on, and the characters that change the
/// direction or the lines of the text around them (bidi overrides,
/// isolates and marks; the Unicode line and paragraph separators).
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every unsafe character escaped as Rust writes it (`\n`,
/// `\u{1b}`, `\u{202e}`), the rest unchanged. The one function all text
/// output from the log or the node goes through; `--json` keeps JSON's
/// own escaping.
pub(crate) fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// [`printable`] text cut to `max` characters, an ellipsis marking the
/// cut, so that one long note cannot push a table past the terminal's
/// width (the whole text is in `--json`).
pub(crate) fn cut(s: &str, max: usize) -> String {
    let p = printable(s);
    if p.chars().count() <= max {
        return p;
    }
    let mut c: String = p.chars().take(max.saturating_sub(1)).collect();
    c.truncate(c.trim_end().len());
    c.push('…');
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_direction_changes_are_escaped() {
        assert_eq!(
            printable("ok\u{1b}[2J\r\nnext\tx\u{7f}\u{9b}"),
            "ok\\u{1b}[2J\\r\\nnext\\tx\\u{7f}\\u{9b}"
        );
        assert_eq!(printable("abc\u{202e}txt"), "abc\\u{202e}txt");
        assert_eq!(
            printable("\u{2066}x\u{2069}\u{2028}"),
            "\\u{2066}x\\u{2069}\\u{2028}"
        );
        // Ordinary text, accents, other scripts and symbols are left alone.
        assert_eq!(
            printable("Zoë: 37.9 °C, 体温 ≥ 38"),
            "Zoë: 37.9 °C, 体温 ≥ 38"
        );
    }

    #[test]
    fn long_text_is_cut_after_escaping() {
        assert_eq!(cut("short", 5), "short");
        assert_eq!(cut("a long note", 7), "a long…");
        assert_eq!(cut("a\u{1b}bcdef", 6), "a\\u{1…");
        assert_eq!(cut(&"x".repeat(2000), 60).chars().count(), 60);
    }
}
