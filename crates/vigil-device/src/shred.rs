//! Crypto-shredding at the end of the period (docs/spec.md §13).
//!
//! Order, each step durable before the next, so a crash at any point leaves
//! a state the next open completes: (1) write the tombstone — from then on
//! the vault never opens again; (2) destroy the root in the key store
//! (overwrite, sync, remove); (3) drop every key in memory (zeroized on
//! drop); (4) delete the store's files, all but the tombstone. Only the
//! shredded vault's own key and the files of the store's layout are deleted:
//! another vault's key file, or the resident's files beside the store, stay.

use std::path::Path;

use vigil_crypto::VaultId;
use vigil_proto::{DriveError, Exchange, RequestShred, drive};

use crate::keystore::{KeyFate, KeyStore, KeyStoreError};
use crate::layout::{self, SMALL_RECORD, TOMBSTONE_MAGIC, TombstoneRecord};
use crate::period::Period;
use crate::storage::{SledStorage, Storage, StorageError};

/// What remains of a shredded vault: nothing sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The vault that was.
    pub vault_id: VaultId,
    /// Its period.
    pub period: Period,
    /// When the shred began, ms.
    pub shredded_at_ms: i64,
    /// The node's deletion receipt, if the node was reached.
    pub receipt: Option<Vec<u8>>,
}

impl Tombstone {
    /// The tombstone file's bytes: a magic, then the record (postcard).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = TOMBSTONE_MAGIC.to_vec();
        v.extend_from_slice(&layout::encode(&TombstoneRecord {
            vault: *self.vault_id.as_bytes(),
            period: self.period,
            shredded_at_ms: self.shredded_at_ms,
            receipt: self.receipt.clone(),
        }));
        v
    }

    /// Parses the file's bytes; `None` if it is not a tombstone.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let r: TombstoneRecord =
            layout::decode(b.strip_prefix(TOMBSTONE_MAGIC)?, SMALL_RECORD).ok()?;
        Some(Tombstone {
            vault_id: VaultId::from_bytes(r.vault),
            period: r.period,
            shredded_at_ms: r.shredded_at_ms,
            receipt: r.receipt,
        })
    }
}

/// Why a shred could not complete. Whatever failed, the tombstone is
/// written first, so the vault never opens again and the next attempt
/// (any open) finishes the job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShredError {
    /// The key store failed to destroy the root.
    #[error("could not destroy the root key: {0}")]
    KeyStore(#[from] KeyStoreError),
    /// The store failed.
    #[error("could not delete the vault's store: {0}")]
    Storage(#[from] StorageError),
    /// The tombstone is unreadable.
    #[error("the vault's tombstone is damaged")]
    BadTombstone,
    /// The shred completed, but the key store held another vault's key (or
    /// no Vigil key), which was left untouched.
    #[error("vault {} is shredded; the key store holds another vault's key (or not a Vigil key), left untouched", .0.vault_id)]
    KeyKept(Tombstone),
}

/// Shreds: writes `t` as the tombstone, then finishes.
pub(crate) fn shred(
    mut storage: Box<dyn Storage>,
    key_store: &dyn KeyStore,
    t: &Tombstone,
) -> Result<Tombstone, ShredError> {
    let bytes = t.encode();
    storage.put_tombstone(&bytes)?;
    finish(storage, key_store, &bytes)
}

/// Finishes a shred whose tombstone exists: destroys the key, deletes the
/// store. Idempotent.
pub(crate) fn finish(
    storage: Box<dyn Storage>,
    key_store: &dyn KeyStore,
    tombstone: &[u8],
) -> Result<Tombstone, ShredError> {
    let t = Tombstone::decode(tombstone).ok_or(ShredError::BadTombstone)?;
    let fate = key_store.destroy_if(t.vault_id)?;
    storage.destroy()?;
    done(t, fate)
}

/// Finishes a shred of the sled store in `dir`, without opening sled.
pub(crate) fn finish_dir(
    dir: &Path,
    key_store: &dyn KeyStore,
    tombstone: &[u8],
) -> Result<Tombstone, ShredError> {
    let t = Tombstone::decode(tombstone).ok_or(ShredError::BadTombstone)?;
    let fate = key_store.destroy_if(t.vault_id)?;
    SledStorage::destroy_dir(dir)?;
    done(t, fate)
}

fn done(t: Tombstone, fate: KeyFate) -> Result<Tombstone, ShredError> {
    match fate {
        KeyFate::Kept => Err(ShredError::KeyKept(t)),
        _ => Ok(t),
    }
}

/// Asks the node to delete the vault's mailbox and `grants` at once;
/// returns its signed receipt.
pub(crate) fn request_deletion(
    conn: &mut dyn Exchange,
    vault: VaultId,
    mailbox_key: &[u8; 32],
    grants: Vec<[u8; 16]>,
) -> Result<Vec<u8>, DriveError> {
    let mut conv = RequestShred::new(*vault.as_bytes(), mailbox_key, grants);
    drive(&mut conv, conn, |_| Ok::<(), DriveError>(()))?;
    conv.into_receipt().ok_or_else(|| {
        DriveError::Protocol(vigil_proto::SyncError::Unexpected(
            "no receipt from the node".into(),
        ))
    })
}
