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
use vigil_proto::{DriveError, Exchange, GrantDeletion, RequestShred, drive};

use sha2::{Digest, Sha256};

use crate::keystore::{KeyFate, KeyStore, KeyStoreError};
use crate::layout::{
    self, SMALL_RECORD, TOMBSTONE_MAGIC, TOMBSTONE_MAGIC_V2, TombstoneRecord, TombstoneRecordV2,
};
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
    /// The node's deletion receipt, if the node was reached: returned by
    /// the shred so the resident sees it then, but never written to the
    /// tombstone file (it counts the alerts deleted), so `None` when read back.
    pub receipt: Option<Vec<u8>>,
    /// SHA-256 of the receipt: what the tombstone file keeps of it, enough to
    /// match a receipt the resident saved and nothing more.
    pub receipt_sha256: Option<[u8; 32]>,
}

impl Tombstone {
    /// The digest the tombstone keeps of a receipt.
    pub fn receipt_digest(receipt: &[u8]) -> [u8; 32] {
        Sha256::digest(receipt).into()
    }

    /// The tombstone file's bytes: a magic, then the record (postcard). The
    /// receipt itself is left out (see [`Tombstone::receipt`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = TOMBSTONE_MAGIC.to_vec();
        v.extend_from_slice(&layout::encode(&TombstoneRecord {
            vault: *self.vault_id.as_bytes(),
            period: self.period,
            shredded_at_ms: self.shredded_at_ms,
            receipt_sha256: self
                .receipt_sha256
                .or_else(|| self.receipt.as_deref().map(Self::receipt_digest)),
        }));
        v
    }

    /// Parses the file's bytes; `None` if it is not a tombstone. A format-2
    /// tombstone (which kept the receipt) reads with the receipt reduced to
    /// its digest.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if let Some(rest) = b.strip_prefix(TOMBSTONE_MAGIC_V2) {
            let r: TombstoneRecordV2 = layout::decode(rest, SMALL_RECORD).ok()?;
            return Some(Tombstone {
                vault_id: VaultId::from_bytes(r.vault),
                period: r.period,
                shredded_at_ms: r.shredded_at_ms,
                receipt: None,
                receipt_sha256: r.receipt.as_deref().map(Self::receipt_digest),
            });
        }
        let r: TombstoneRecord =
            layout::decode(b.strip_prefix(TOMBSTONE_MAGIC)?, SMALL_RECORD).ok()?;
        Some(Tombstone {
            vault_id: VaultId::from_bytes(r.vault),
            period: r.period,
            shredded_at_ms: r.shredded_at_ms,
            receipt: None,
            receipt_sha256: r.receipt_sha256,
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
    finish(storage, key_store, &bytes)?;
    // The caller gets the receipt itself; the file has only its digest.
    Ok(t.clone())
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
    grants: Vec<GrantDeletion>,
    notice: Vec<u8>,
) -> Result<Vec<u8>, DriveError> {
    let mut conv = RequestShred::new(*vault.as_bytes(), mailbox_key, grants, notice);
    drive(&mut conv, conn, |_| Ok::<(), DriveError>(()))?;
    conv.into_receipt().ok_or_else(|| {
        DriveError::Protocol(vigil_proto::SyncError::Unexpected(
            "no receipt from the node".into(),
        ))
    })
}
