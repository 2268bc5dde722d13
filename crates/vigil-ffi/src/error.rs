//! The library's errors as UniFFI error enums: one variant for each of the
//! library's, with its fields as plain values (ids in hex, nested errors
//! as their message), and a `code` where the library gives one.

/// Why a vault could not be created or opened ([`vigil::OpenError`]).
/// Opening never writes, so nothing stored is lost whatever the error.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum OpenError {
    /// The key store holds no root key for this vault.
    #[error("no key for this vault in the key store")]
    MissingKey,
    /// The key store holds the root key of another vault.
    #[error("the key store holds the key of another vault (expected vault {expected})")]
    WrongKey {
        /// The vault the store should belong to (hex).
        expected: String,
    },
    /// The vault was shredded (now, or earlier): only its tombstone remains.
    #[error("this vault was shredded (vault {vault_id}, at {shredded_at_ms} ms)")]
    Shredded {
        /// The vault that was (hex).
        vault_id: String,
        /// When the shred began, ms.
        shredded_at_ms: i64,
    },
    /// A shred could not complete; opening again retries it.
    #[error("{detail}")]
    Shred {
        /// What failed.
        detail: String,
    },
    /// The directory holds no vault.
    #[error("no vault found in {dir}")]
    NotAVault {
        /// The directory.
        dir: String,
    },
    /// The directory already holds a vault (or its tombstone).
    #[error("a vault already exists in {dir}")]
    AlreadyExists {
        /// The directory.
        dir: String,
    },
    /// The directory holds files that are not Vigil's (nothing touched).
    #[error("refusing to create a vault in {dir}: it holds {file:?}, which is not Vigil's")]
    NotEmpty {
        /// The directory.
        dir: String,
        /// One of the foreign files.
        file: String,
    },
    /// Written by a newer version of Vigil.
    #[error("the vault uses store format {found}; this build reads up to {supported}")]
    NewerFormat {
        /// Format found.
        found: u32,
        /// Highest format this build reads.
        supported: u32,
    },
    /// Written by an older version of Vigil, in a format no longer read.
    #[error(
        "the vault uses store format {found}, from an older Vigil; this build reads {supported}"
    )]
    OlderFormat {
        /// Format found.
        found: u32,
        /// The format this build reads.
        supported: u32,
    },
    /// Stored data failed to decrypt or decode, or the store is damaged.
    #[error("the vault store is corrupted: {detail}")]
    Corrupt {
        /// What is damaged.
        detail: String,
    },
    /// The period is empty or reversed (`days` = 0).
    #[error("invalid monitoring period: end {end_ms} is not after start {start_ms}")]
    InvalidPeriod {
        /// Start, ms.
        start_ms: i64,
        /// End, ms.
        end_ms: i64,
    },
    /// The storage layer failed (I/O, or the store is in use elsewhere).
    #[error("{detail}")]
    Storage {
        /// What failed.
        detail: String,
    },
    /// The key store failed, or raised an error.
    #[error(transparent)]
    KeyStore {
        /// Its error.
        #[from]
        source: crate::KeyStoreError,
    },
    /// An error variant newer than this binding (its message says what).
    #[error("{detail}")]
    Other {
        /// The library's message.
        detail: String,
    },
}

impl From<vigil::OpenError> for OpenError {
    fn from(e: vigil::OpenError) -> Self {
        use vigil::OpenError as E;
        match e {
            E::MissingKey => OpenError::MissingKey,
            E::WrongKey { expected } => OpenError::WrongKey {
                expected: expected.to_string(),
            },
            E::Shredded(t) => OpenError::Shredded {
                vault_id: t.vault_id.to_string(),
                shredded_at_ms: t.shredded_at_ms,
            },
            E::Shred(e) => OpenError::Shred {
                detail: e.to_string(),
            },
            E::NotAVault(dir) => OpenError::NotAVault { dir },
            E::AlreadyExists(dir) => OpenError::AlreadyExists { dir },
            E::NotEmpty { dir, file } => OpenError::NotEmpty { dir, file },
            E::NewerFormat { found, supported } => OpenError::NewerFormat { found, supported },
            E::OlderFormat { found, supported } => OpenError::OlderFormat { found, supported },
            E::Corrupt(detail) => OpenError::Corrupt { detail },
            E::InvalidPeriod { start_ms, end_ms } => OpenError::InvalidPeriod { start_ms, end_ms },
            E::Storage(e) => OpenError::Storage {
                detail: e.to_string(),
            },
            E::KeyStore(e) => OpenError::KeyStore { source: e.into() },
            e => OpenError::Other {
                detail: e.to_string(),
            },
        }
    }
}

/// Why a write failed ([`vigil::WriteError`]). Nothing was recorded; on a
/// storage error the change is written with the next successful write.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum WriteError {
    /// The input was refused (a value that is NaN, infinite or out of
    /// range, a negative time, an unknown reading, text too long, ...).
    #[error("{detail}")]
    Invalid {
        /// A short, stable name for the refusal (`not-finite`, `out-of-range`, ...).
        code: String,
        /// The library's message.
        detail: String,
    },
    /// A GATT characteristic value could not be decoded, or holds an
    /// IEEE-11073 special value.
    #[error("GATT packet refused: {detail}")]
    Gatt {
        /// The decoder's stable code (`truncated`, `special-value`, ...).
        code: String,
        /// The decoder's message.
        detail: String,
    },
    /// The storage layer failed.
    #[error("{detail}")]
    Storage {
        /// What failed.
        detail: String,
    },
    /// The vault was shredded through this object: nothing is left to write.
    #[error("this vault was shredded; nothing can be recorded in it")]
    Shredded,
    /// The change was too large to seal.
    #[error("change too large to store: {detail}")]
    TooLarge {
        /// The sealing error.
        detail: String,
    },
    /// An error variant newer than this binding (its message says what).
    #[error("{detail}")]
    Other {
        /// The library's message.
        detail: String,
    },
}

/// A short, stable name for a refused input (for apps to branch on).
pub(crate) fn log_code(e: &vigil::LogError) -> &'static str {
    use vigil::LogError as E;
    match e {
        E::NotFinite { .. } => "not-finite",
        E::OutOfRange { .. } => "out-of-range",
        E::WrongUnit { .. } => "wrong-unit",
        E::FractionalCount(_) => "fractional-count",
        E::UnknownMetric(_) => "unknown-metric",
        E::UnknownUnit(_) => "unknown-unit",
        E::UnknownSymptom(_) => "unknown-symptom",
        E::UnknownSeverity(_) => "unknown-severity",
        E::NegativeTime(_) => "negative-time",
        E::InvalidDay(_) => "invalid-day",
        E::UnknownReading(_) => "unknown-reading",
        E::InvalidReadingId(_) => "invalid-reading-id",
        E::TextTooLong { .. } => "text-too-long",
        E::Malformed(_) => "malformed",
        E::NotInitialised => "not-initialised",
        E::NewerSchema { .. } => "newer-schema",
        _ => "invalid",
    }
}

impl From<vigil::WriteError> for WriteError {
    fn from(e: vigil::WriteError) -> Self {
        use vigil::WriteError as E;
        match e {
            E::Invalid(e) => WriteError::Invalid {
                code: log_code(&e).into(),
                detail: e.to_string(),
            },
            E::Gatt(e) => WriteError::Gatt {
                code: e.code().into(),
                detail: e.to_string(),
            },
            E::Storage(e) => WriteError::Storage {
                detail: e.to_string(),
            },
            E::TooLarge(e) => WriteError::TooLarge {
                detail: e.to_string(),
            },
            e => WriteError::Other {
                detail: e.to_string(),
            },
        }
    }
}

impl From<crate::Gone> for WriteError {
    fn from(_: crate::Gone) -> Self {
        WriteError::Shredded
    }
}

/// Why a read failed: only a vault shredded through this object refuses
/// reads (its log is gone).
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ReadError {
    /// The vault was shredded through this object: nothing is left to read.
    #[error("this vault was shredded; nothing is left to read")]
    Shredded,
}

impl From<crate::Gone> for ReadError {
    fn from(_: crate::Gone) -> Self {
        ReadError::Shredded
    }
}

/// An input the binding refused before it reached the library: the
/// library's own refusal ([`vigil::LogError`], with its code), or one of
/// the binding's checks (a time past the year 9999, empty text, a day
/// outside the period, ...). Converted into each error enum's `Invalid`.
#[derive(Debug)]
pub(crate) struct Invalid {
    /// A short, stable name for the refusal.
    pub(crate) code: &'static str,
    /// What was refused, in words.
    pub(crate) detail: String,
}

impl Invalid {
    /// A refusal of the binding's own.
    pub(crate) fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Invalid {
            code,
            detail: detail.into(),
        }
    }
}

impl From<vigil::LogError> for Invalid {
    fn from(e: vigil::LogError) -> Self {
        Invalid {
            code: log_code(&e),
            detail: e.to_string(),
        }
    }
}

impl From<Invalid> for WriteError {
    fn from(e: Invalid) -> Self {
        WriteError::Invalid {
            code: e.code.into(),
            detail: e.detail,
        }
    }
}

/// Why a query failed: the input was refused, or the vault's store could
/// not be read ([`vigil::StorageError`]); nothing is ever written.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum QueryError {
    /// The input was refused (a time before 1970 or after 9999, a reversed
    /// range, a day that is not YYYY-MM-DD, ...).
    #[error("{detail}")]
    Invalid {
        /// A short, stable name for the refusal (`negative-time`,
        /// `time-out-of-range`, `invalid-range`, `invalid-day`, ...).
        code: String,
        /// What was refused, in words.
        detail: String,
    },
    /// The vault's store could not be read, or a record in it does not open.
    #[error("{detail}")]
    Storage {
        /// What failed.
        detail: String,
    },
    /// The vault was shredded through this object: nothing is left to read.
    #[error("this vault was shredded; nothing is left to read")]
    Shredded,
}

impl From<Invalid> for QueryError {
    fn from(e: Invalid) -> Self {
        QueryError::Invalid {
            code: e.code.into(),
            detail: e.detail,
        }
    }
}

impl From<vigil::StorageError> for QueryError {
    fn from(e: vigil::StorageError) -> Self {
        QueryError::Storage {
            detail: e.to_string(),
        }
    }
}

impl From<crate::Gone> for QueryError {
    fn from(_: crate::Gone) -> Self {
        QueryError::Shredded
    }
}

/// Why a shred did not complete ([`vigil::ShredError`]). Apart from
/// `Invalid` and `Shredded` (nothing was done), the tombstone is already
/// written: the vault never opens again, and the next open finishes the job.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ShredError {
    /// The input was refused (a time before 1970 or after 9999); the vault
    /// is untouched and still open.
    #[error("{detail}")]
    Invalid {
        /// A short, stable name for the refusal.
        code: String,
        /// What was refused, in words.
        detail: String,
    },
    /// The key store failed to destroy the root key.
    #[error("could not destroy the root key: {source}")]
    KeyStore {
        /// Its error.
        source: crate::KeyStoreError,
    },
    /// The vault's store could not be deleted.
    #[error("could not delete the vault's store: {detail}")]
    Storage {
        /// What failed.
        detail: String,
    },
    /// The vault's tombstone is damaged.
    #[error("the vault's tombstone is damaged")]
    BadTombstone,
    /// The shred completed, but the key store held another vault's key
    /// (or not a Vigil key), which was left untouched.
    #[error(
        "vault {vault_id} is shredded; the key store holds another vault's key (or not a Vigil key), left untouched"
    )]
    KeyKept {
        /// The vault that was shredded (hex).
        vault_id: String,
        /// When the shred began, ms.
        shredded_at_ms: i64,
    },
    /// The vault was already shredded through this object.
    #[error("this vault was already shredded")]
    Shredded,
    /// An error variant newer than this binding (its message says what).
    #[error("{detail}")]
    Other {
        /// The library's message.
        detail: String,
    },
}

impl From<vigil::ShredError> for ShredError {
    fn from(e: vigil::ShredError) -> Self {
        use vigil::ShredError as E;
        match e {
            E::KeyStore(e) => ShredError::KeyStore { source: e.into() },
            E::Storage(e) => ShredError::Storage {
                detail: e.to_string(),
            },
            E::BadTombstone => ShredError::BadTombstone,
            E::KeyKept(t) => ShredError::KeyKept {
                vault_id: t.vault_id.to_string(),
                shredded_at_ms: t.shredded_at_ms,
            },
            e => ShredError::Other {
                detail: e.to_string(),
            },
        }
    }
}

impl From<Invalid> for ShredError {
    fn from(e: Invalid) -> Self {
        ShredError::Invalid {
            code: e.code.into(),
            detail: e.detail,
        }
    }
}

impl From<crate::Gone> for ShredError {
    fn from(_: crate::Gone) -> Self {
        ShredError::Shredded
    }
}
