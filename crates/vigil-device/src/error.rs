//! The vault's errors, one enum per kind of operation.

use vigil_crypto::{SealError, VaultId};
use vigil_log::LogError;
use vigil_log::gatt::GattError;
use vigil_proto::{DriveError, ExchangeError, SyncError};

use crate::keystore::KeyStoreError;
use crate::shred::{ShredError, Tombstone};
use crate::storage::StorageError;

/// Why a vault could not be created or opened. Opening never writes, so
/// nothing already stored is lost whatever the error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The key store holds no root key for this vault.
    #[error(
        "no key for this vault in the key store (was it shredded, or is this the wrong key store?)"
    )]
    MissingKey,
    /// The key store holds a root, but of another vault.
    #[error("the key store holds the key of another vault (expected vault {expected})")]
    WrongKey {
        /// The vault the store belongs to.
        expected: VaultId,
    },
    /// The vault was shredded (now, or earlier): only its tombstone remains.
    #[error("this vault was shredded at the end of its period (vault {}, shredded at {} ms)", .0.vault_id, .0.shredded_at_ms)]
    Shredded(Tombstone),
    /// A shred could not complete; opening again retries it.
    #[error(transparent)]
    Shred(#[from] ShredError),
    /// The directory holds no vault.
    #[error("no vault found in {0}")]
    NotAVault(String),
    /// The directory already holds a vault.
    #[error("a vault already exists in {0}")]
    AlreadyExists(String),
    /// The directory holds files that are not a vault's (refused at create,
    /// touching nothing).
    #[error(
        "refusing to create a vault in {dir}: it holds {file:?}, which is not Vigil's (use a new or empty directory)"
    )]
    NotEmpty {
        /// The directory.
        dir: String,
        /// One of the files in it that is not Vigil's.
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
    /// Written by an older version of Vigil, in a format this build no longer
    /// reads (formats changed before any vault was in the field).
    #[error(
        "the vault uses store format {found}, from an older Vigil; this build reads {supported} \
         (shred it with the version that made it, or start a new vault)"
    )]
    OlderFormat {
        /// Format found.
        found: u32,
        /// The one format this build reads.
        supported: u32,
    },
    /// Stored data failed to decrypt or decode, or the store's files are
    /// damaged. If the key is intact, [`Vault::recover`](crate::Vault::recover)
    /// rebuilds the vault from the node.
    #[error(
        "the vault store is corrupted: {0} (if the key is intact, recover rebuilds it from the node, keeping the damaged files aside)"
    )]
    Corrupt(String),
    /// The period is empty or reversed.
    #[error("invalid monitoring period: end {end_ms} is not after start {start_ms}")]
    InvalidPeriod {
        /// Start.
        start_ms: i64,
        /// End.
        end_ms: i64,
    },
    /// The storage layer failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The key store failed.
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
}

/// Why a write to the vault failed. On a storage error the change stays
/// pending in memory and is written with the next successful write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The input was refused (bad value, unknown reading, ...).
    #[error(transparent)]
    Invalid(#[from] LogError),
    /// A Bluetooth GATT characteristic value could not be decoded, or holds
    /// an IEEE-11073 special value (nothing was recorded).
    #[error("GATT packet refused: {0}")]
    Gatt(#[from] GattError),
    /// The storage layer failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The change was too large to seal.
    #[error("change too large to store: {0}")]
    TooLarge(#[from] SealError),
}

/// Why a sync, pairing, grant or alert delivery failed. Nothing acknowledged
/// or stored is lost: a later attempt resumes where this one stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncFailure {
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] ExchangeError),
    /// The protocol failed (refusal, bad reply).
    #[error(transparent)]
    Protocol(#[from] SyncError),
    /// The device's store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A local write failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Creating the joining vault failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Pairing: nothing waits for this device at the node (yet).
    #[error("no pairing offer for this device at the node (has the first device sent it?)")]
    NoOffer,
    /// Pairing: the offer does not open with this device's pairing key.
    #[error("the pairing offer does not open with this device's key")]
    BadOffer,
    /// Another device of this vault shredded it early (the node returned its
    /// sealed notice, which opened): this device wrote its tombstone and
    /// deleted its store; call [`crate::Vault::finish_shred`] to destroy the key.
    #[error("this vault was shredded on another device at {} ms", .0.shredded_at_ms)]
    ShreddedElsewhere(crate::Tombstone),
    /// A grant or alerts for one node were to go over a connection to
    /// another (the connection's [`vigil_proto::Exchange::node`]): nothing
    /// was sent, since that node could unwrap the other's alert key.
    #[error("the connection reaches another node than the one named")]
    WrongNode,
}

impl From<DriveError> for SyncFailure {
    fn from(e: DriveError) -> Self {
        match e {
            DriveError::Transport(e) => SyncFailure::Transport(e),
            DriveError::Protocol(e) => SyncFailure::Protocol(e),
            // DriveError is non-exhaustive; anything new is a protocol matter.
            #[allow(unreachable_patterns)]
            other => SyncFailure::Protocol(SyncError::Unexpected(other.to_string())),
        }
    }
}

impl From<SealError> for SyncFailure {
    fn from(e: SealError) -> Self {
        SyncFailure::Write(WriteError::TooLarge(e))
    }
}
