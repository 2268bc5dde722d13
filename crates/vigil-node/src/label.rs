//! Labels staff type for residents (docs/spec.md §15): what the inbox shows
//! with each alert, so nothing in one may hide or reorder text on screen.

use unicode_normalization::UnicodeNormalization;

/// Most characters in a label, after normalising.
pub const MAX_STAFF_LABEL_CHARS: usize = 80;

/// Why a label was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// Nothing printable is left.
    #[error("the label is empty once invisible and control characters are removed")]
    Empty,
    /// Longer than [`MAX_STAFF_LABEL_CHARS`].
    #[error("the label has {chars} characters; at most {max}")]
    TooLong {
        /// Its length, in characters, after normalising.
        chars: usize,
        /// The limit.
        max: usize,
    },
}

/// Characters that change how text around them is shown without showing
/// themselves: bidirectional controls (which can reverse "12B" to read as
/// another flat), zero-width and other invisible format characters (which
/// make two different labels look alike).
fn invisible(c: char) -> bool {
    matches!(
        c,
        // Bidirectional embeddings, overrides, isolates and marks.
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        // Zero-width space, non-joiner, joiner, word joiner, BOM.
        | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'
        // Other invisible format characters: soft hyphen, combining
        // grapheme joiner, Mongolian vowel separator, invisible operators,
        // deprecated format controls, interlinear annotation, tags, and
        // the Hangul fillers that render as blanks.
        | '\u{00AD}' | '\u{034F}' | '\u{180E}' | '\u{2061}'..='\u{2064}'
        | '\u{206A}'..='\u{206F}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E0000}'..='\u{E007F}'
        | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}'
    )
}

/// A label as staff typed it, made safe to show: Unicode NFC (one spelling
/// per text), whitespace of any kind as one space, invisible characters and
/// other control characters removed, trimmed; refused when nothing is left
/// or when longer than [`MAX_STAFF_LABEL_CHARS`].
pub fn normalize_label(raw: &str) -> Result<String, LabelError> {
    let mut out = String::with_capacity(raw.len());
    let mut space = false;
    for c in raw.nfc() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if invisible(c) || c.is_control() {
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    if out.is_empty() {
        return Err(LabelError::Empty);
    }
    let chars = out.chars().count();
    if chars > MAX_STAFF_LABEL_CHARS {
        return Err(LabelError::TooLong {
            chars,
            max: MAX_STAFF_LABEL_CHARS,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_right_to_left_override_cannot_disguise_a_flat() {
        // "Ana, flat 12B" with an RLO before "B21": shown reversed, it would
        // read as flat 12B while naming another.
        let forged = "Ana, flat \u{202E}B21\u{202C}";
        assert_eq!(normalize_label(forged).unwrap(), "Ana, flat B21");
        for c in [
            '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            assert_eq!(normalize_label(&format!("Ana{c} 12B")).unwrap(), "Ana 12B");
        }
    }

    #[test]
    fn zero_width_characters_cannot_make_two_labels_look_alike() {
        for c in [
            '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}',
        ] {
            assert_eq!(normalize_label(&format!("A{c}na")).unwrap(), "Ana");
        }
    }

    #[test]
    fn controls_and_whitespace_become_one_space() {
        assert_eq!(
            normalize_label("  Ana\u{1b}[2J\n\tflat  12B \u{85}").unwrap(),
            "Ana[2J flat 12B"
        );
    }

    #[test]
    fn one_spelling_per_text() {
        // "é" as e + combining acute, and precomposed: the same label.
        assert_eq!(normalize_label("Zoe\u{301}").unwrap(), "Zo\u{e9}");
    }

    #[test]
    fn empty_and_long_labels_are_refused() {
        assert_eq!(normalize_label(""), Err(LabelError::Empty));
        assert_eq!(
            normalize_label(" \u{200B}\u{202E} \n"),
            Err(LabelError::Empty)
        );
        let long = "x".repeat(MAX_STAFF_LABEL_CHARS + 1);
        assert_eq!(
            normalize_label(&long),
            Err(LabelError::TooLong {
                chars: 81,
                max: MAX_STAFF_LABEL_CHARS
            })
        );
        assert!(normalize_label(&"é".repeat(MAX_STAFF_LABEL_CHARS)).is_ok());
    }
}
