//! The program's one error type: a one-line message and an exit code.

/// Why a command failed. Printed as one line, `error: <message>`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Bad input: arguments, the config file, an alert id. Exit code 2.
    #[error("{0}")]
    Usage(String),
    /// Anything else: missing data directory, I/O, the store, the network.
    /// Exit code 1.
    #[error("{0}")]
    Failed(String),
}

impl Error {
    pub(crate) fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    pub(crate) fn failed(msg: impl Into<String>) -> Self {
        Error::Failed(msg.into())
    }

    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Failed(_) => 1,
        }
    }

    /// The message on one line (library messages may contain newlines).
    pub(crate) fn one_line(&self) -> String {
        let s = self.to_string();
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}
