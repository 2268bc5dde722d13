//! Health text from standard input: `-` in place of a note, a reason or a
//! label reads it from stdin, so it never lands in the shell's history.

use std::io::Read;

use super::Error;

/// The most a text read from standard input may be (the log's own limits
/// are far below; this only stops an endless pipe).
const MAX_STDIN_TEXT: u64 = 64 * 1024;

/// `value`, or, when it is `-`, what standard input holds (one trailing
/// line break removed). `what` names the text in errors.
pub(crate) fn text_arg(value: &str, what: &str) -> Result<String, Error> {
    if value != "-" {
        return Ok(value.to_owned());
    }
    read_text(std::io::stdin().lock(), what)
}

fn read_text(input: impl Read, what: &str) -> Result<String, Error> {
    let mut bytes = Vec::new();
    input
        .take(MAX_STDIN_TEXT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::failed(format!("reading the {what} from standard input: {e}")))?;
    if bytes.len() as u64 > MAX_STDIN_TEXT {
        return Err(Error::usage(format!(
            "the {what} on standard input is longer than {} KiB",
            MAX_STDIN_TEXT / 1024
        )));
    }
    let mut text = String::from_utf8(bytes)
        .map_err(|_| Error::usage(format!("the {what} on standard input is not UTF-8 text")))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_text_loses_one_line_break_and_refuses_binary_and_floods() {
        assert_eq!(
            read_text(&b"sore throat\n"[..], "note").unwrap(),
            "sore throat"
        );
        assert_eq!(
            read_text(&b"two\nlines\r\n"[..], "note").unwrap(),
            "two\nlines"
        );
        assert!(read_text(&[0xff, 0xfe][..], "note").is_err());
        let flood = vec![b'a'; 64 * 1024 + 1];
        let e = read_text(&flood[..], "note").unwrap_err();
        assert!(e.to_string().contains("longer than 64 KiB"), "{e}");
        assert_eq!(text_arg("plain", "note").unwrap(), "plain");
    }
}
