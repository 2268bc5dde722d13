//! The CLI's one error type: a one-line message and an exit code.

use vigil_device::{OpenError, StorageError, SyncFailure, WriteError};

use super::time::format_time;

/// Exit codes (documented in `vigil --help`).
pub(crate) mod exit {
    /// The operation failed (network, storage, the node refused, not confirmed).
    pub(crate) const FAILED: u8 = 1;
    /// Bad input: an unknown metric, a value out of range, a malformed time or code.
    pub(crate) const USAGE: u8 = 2;
    /// No usable vault: none in the directory, or its key file is missing or wrong.
    pub(crate) const NO_VAULT: u8 = 3;
    /// The vault was shredded; only its tombstone remains.
    pub(crate) const SHREDDED: u8 = 4;
    /// Pairing: the offer is not at the node yet; run the same command again.
    pub(crate) const WAITING: u8 = 5;
}

/// A failure, shown as `error: <message>` on one line.
#[derive(Debug)]
pub(crate) struct CliError {
    /// The process exit code.
    pub(crate) code: u8,
    /// The message, without the `error: ` prefix.
    pub(crate) message: String,
}

impl CliError {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
        }
    }

    /// Bad input.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, message)
    }

    /// An operation that failed.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::new(exit::FAILED, message)
    }

    /// Prefixes the message with what was being done.
    pub(crate) fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::failed(e.to_string())
    }
}

impl From<StorageError> for CliError {
    fn from(e: StorageError) -> Self {
        CliError::failed(format!("vault store: {e}"))
    }
}

impl From<WriteError> for CliError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Invalid(vigil_log::LogError::NotInitialised) => CliError::failed(
                "this device has not received the vault's log yet: run `vigil sync` first",
            ),
            WriteError::Invalid(e) => CliError::usage(e.to_string()),
            e => CliError::failed(e.to_string()),
        }
    }
}

impl From<SyncFailure> for CliError {
    fn from(e: SyncFailure) -> Self {
        CliError::failed(one_line(&e.to_string()))
    }
}

impl From<vigil_net::NetError> for CliError {
    fn from(e: vigil_net::NetError) -> Self {
        match e {
            vigil_net::NetError::BadEnrolmentCode(m) => {
                CliError::usage(format!("bad node code: {m}"))
            }
            e => CliError::failed(format!(
                "cannot reach the node: {}",
                one_line(&e.to_string())
            )),
        }
    }
}

/// Maps a vault that cannot be opened to a message and exit code.
pub(crate) fn open_error(
    e: OpenError,
    dir: &std::path::Path,
    key: &std::path::Path,
    now_ms: i64,
) -> CliError {
    let (d, k) = (dir.display(), key.display());
    match e {
        OpenError::Shredded(t) => {
            let when = if t.shredded_at_ms >= now_ms - 1000 {
                format!(
                    "its monitoring period ended at {}, so it was shredded just now",
                    format_time(t.period.end_ms)
                )
            } else {
                format!("it was shredded at {}", format_time(t.shredded_at_ms))
            };
            CliError::new(
                exit::SHREDDED,
                format!("the vault in {d} no longer exists: {when}; only its tombstone remains"),
            )
        }
        OpenError::MissingKey => CliError::new(
            exit::NO_VAULT,
            format!("no key file at {k} for the vault in {d} (wrong --key-file?)"),
        ),
        OpenError::WrongKey { .. } => CliError::new(
            exit::NO_VAULT,
            format!(
                "the key file {k} belongs to another vault than the one in {d} (wrong --key-file?)"
            ),
        ),
        OpenError::KeyStore(e) => CliError::new(exit::NO_VAULT, one_line(&e.to_string())),
        OpenError::NotAVault(_) => CliError::new(
            exit::NO_VAULT,
            format!("no vault in {d}: run `vigil init` first, or pass --vault DIR"),
        ),
        OpenError::AlreadyExists(_) => CliError::usage(format!(
            "{d} already holds a vault (or the tombstone of one)"
        )),
        e => CliError::failed(one_line(&e.to_string())),
    }
}

/// Collapses a message onto one line.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
