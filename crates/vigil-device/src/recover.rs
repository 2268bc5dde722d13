//! Rebuilding a damaged vault from the node (docs/spec.md §8, §10).

use std::path::{Path, PathBuf};

use vigil_crypto::{KeySchedule, RootKey, VaultId};
use vigil_proto::Exchange;

use crate::error::{OpenError, SyncFailure};
use crate::keystore::KeyStore;
use crate::period::Period;
use crate::shred::{ShredError, Tombstone};
use crate::storage::{SledStorage, StorageError};
use crate::sync::{SnapshotPolicy, SyncReport};
use crate::vault::{Vault, system_rng};

/// What [`Vault::recover`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Readings in the rebuilt log (all the node had acknowledged).
    pub readings: usize,
    /// Whether fever-alert grants this device made were lost with the
    /// damaged store: they were sealed there only, and a damaged store
    /// cannot say whether it held any, so this is always true. The
    /// resident enrols again if they had enrolled.
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
    /// store is damaged (it does not open: [`OpenError::Corrupt`]) but the
    /// root in `key_store` is intact. The damaged store's files are moved
    /// into a new `vigil-damaged-<n>/` inside `dir` (shred deletes it with
    /// the vault); a fresh store is created for the same root, as a new
    /// device with an empty log, and synced from the node (relay snapshot
    /// and bundles). The period is read from the marker file; `period` is
    /// used only when the marker does not record it.
    ///
    /// What only the damaged store held is lost: readings the node never
    /// acknowledged, the fever-alert grants (enrol again) and the
    /// disclosure log.
    pub fn recover(
        dir: &Path,
        key_store: &dyn KeyStore,
        conn: &mut dyn Exchange,
        period: Option<Period>,
    ) -> Result<(Vault, Recovery), RecoverError> {
        if let Some(t) = SledStorage::read_tombstone(dir)? {
            // A shredded vault is never rebuilt, whatever the node still holds.
            return Err(match Tombstone::decode(&t) {
                Some(t) => OpenError::Shredded(t),
                None => OpenError::Shred(ShredError::BadTombstone),
            }
            .into());
        }
        let root = key_store
            .load()
            .map_err(OpenError::from)?
            .ok_or(OpenError::MissingKey)?;
        let vault_id = KeySchedule::new(RootKey::from_bytes(*root.expose_secret())).vault_id();
        let marker = SledStorage::read_marker(dir);
        if let Some(v) = marker.vault.filter(|v| v != vault_id.as_bytes()) {
            return Err(OpenError::WrongKey {
                expected: VaultId::from_bytes(v),
            }
            .into());
        }
        // Only a store that does not open is replaced: a healthy one may
        // hold readings and grants the node never had.
        match Vault::open(dir, key_store) {
            Ok(_) => return Err(RecoverError::NotDamaged(dir.display().to_string())),
            Err(OpenError::Corrupt(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let period = marker
            .period
            .or(period)
            .ok_or(RecoverError::PeriodUnknown)?;
        let damaged_dir = SledStorage::move_aside(dir)?;
        let storage = SledStorage::open(dir)?;
        let mut vault = Vault::create_with_root(
            Box::new(storage),
            period,
            None,
            root,
            false,
            &mut system_rng()?,
        )?;
        let sync = vault.sync_with(conn, SnapshotPolicy::Never)?;
        let report = Recovery {
            readings: vault.log().len(),
            grants_lost: true,
            damaged_dir,
            sync,
        };
        Ok((vault, report))
    }
}
