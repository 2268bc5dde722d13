//! The one error type of both programs: a one-line message and the process
//! exit code it ends with.

use std::fmt;

/// Exit codes. `vigil --help` documents all five; `vigil-node` uses the first two.
pub(crate) mod exit {
    /// The operation failed (network, storage, the node refused, not confirmed).
    pub(crate) const FAILED: u8 = 1;
    /// Bad input: arguments, a value out of range, a malformed time, code or config file.
    pub(crate) const USAGE: u8 = 2;
    /// No usable vault: none in the directory, or its key file is missing or wrong.
    pub(crate) const NO_VAULT: u8 = 3;
    /// The vault was shredded; only its tombstone remains.
    pub(crate) const SHREDDED: u8 = 4;
    /// Pairing: the offer is not at the node yet; run the same command again.
    pub(crate) const WAITING: u8 = 5;

    /// The stable name of an exit code, as `vigil --json` reports it in
    /// `{"error": {"code": ...}}` (scripts match on it, so it never changes).
    pub(crate) fn name(code: u8) -> &'static str {
        match code {
            FAILED => "failed",
            USAGE => "usage",
            NO_VAULT => "no_vault",
            SHREDDED => "shredded",
            WAITING => "waiting",
            _ => "internal",
        }
    }
}

/// A failure, shown as `error: <message>` on one line.
#[derive(Debug)]
pub(crate) struct Error {
    /// The process exit code.
    pub(crate) code: u8,
    /// The message, without the `error: ` prefix.
    pub(crate) message: String,
    /// The kind of the I/O error it came from, if any.
    io_kind: Option<std::io::ErrorKind>,
}

impl Error {
    /// A failure with this exit code.
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            io_kind: None,
        }
    }

    /// Bad input (exit code 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, message)
    }

    /// An operation that failed (exit code 1).
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::new(exit::FAILED, message)
    }

    /// Prefixes the message with what was being done.
    pub(crate) fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// Whether this is a write to a closed pipe (`vigil log | head`).
    pub(crate) fn is_broken_pipe(&self) -> bool {
        self.io_kind == Some(std::io::ErrorKind::BrokenPipe)
    }

    /// The process exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        self.code
    }

    /// The message on one line (library messages may contain newlines).
    pub(crate) fn one_line(&self) -> String {
        one_line(&self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error {
            io_kind: Some(e.kind()),
            ..Error::failed(e.to_string())
        }
    }
}

/// Collapses a message onto one line.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
