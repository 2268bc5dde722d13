//! Rebuilding a damaged vault from the node (docs/spec.md §8, §10).

use std::path::{Path, PathBuf};

use vigil_proto::Exchange;

use crate::error::{OpenError, SyncFailure};
use crate::keystore::KeyStore;
use crate::period::Period;
use crate::storage::StorageError;
use crate::sync::SyncReport;
use crate::vault::Vault;

/// What [`Vault::recover`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Readings in the rebuilt log (all the node had acknowledged).
    pub readings: usize,
    /// Whether fever-alert grants this device made were lost with the
    /// damaged store (they were sealed there only): the resident must enrol
    /// again.
    pub grants_lost: bool,
    /// Where the damaged store's files were moved (inside the vault directory).
    pub damaged_dir: PathBuf,
    /// The sync that brought the log back.
    pub sync: SyncReport,
}

/// Why a vault could not be rebuilt from the node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoverError {
    /// Opening or creating failed (no key, wrong key, shredded, ...).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The period is recorded nowhere readable, and none was given.
    #[error(
        "the vault's period is unknown (its marker file is missing or unreadable): give the period's start and length"
    )]
    PeriodUnknown,
    /// The store opens: there is nothing to recover (recovering would drop
    /// what only this device holds).
    #[error("the vault in {0} opens normally: nothing to recover")]
    NotDamaged(String),
    /// Moving the damaged files aside failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The fresh store exists, but syncing it from the node failed: a sync
    /// retries.
    #[error("the vault was rebuilt empty, but syncing it from the node failed (sync again): {0}")]
    Sync(#[from] SyncFailure),
}

impl Vault {
    /// Rebuilds the vault in `dir` from the node behind `conn`, when its
    /// store is damaged but the key in `key_store` is intact.
    pub fn recover(
        dir: &Path,
        key_store: &dyn KeyStore,
        conn: &mut dyn Exchange,
        period: Option<Period>,
    ) -> Result<(Vault, Recovery), RecoverError> {
        let _ = (dir, key_store, conn, period);
        Err(RecoverError::PeriodUnknown)
    }
}
