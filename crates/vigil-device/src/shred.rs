//! Crypto-shredding at the end of the period (docs/spec.md §13).
//!
//! Order, each step durable before the next, so a crash at any point leaves
//! a state the next open completes: (1) write the tombstone — from then on
//! the vault never opens again; (2) destroy the root in the key store
//! (overwrite, sync, remove); (3) drop every key in memory (zeroized on
//! drop); (4) delete the store's files, all but the tombstone.

use std::fmt::Write as _;
use std::path::Path;

use vigil_crypto::VaultId;

use crate::keystore::{KeyStore, KeyStoreError};
use crate::storage::{SledStorage, Storage, StorageError};
use crate::vault::{Period, Vault};

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
    /// The tombstone file's text form.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = String::from("vigil-tombstone 1\n");
        let _ = writeln!(s, "vault {}", self.vault_id);
        let _ = writeln!(s, "period {} {}", self.period.start_ms, self.period.end_ms);
        let _ = writeln!(s, "shredded-at {}", self.shredded_at_ms);
        match &self.receipt {
            Some(r) => {
                let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
                let _ = writeln!(s, "receipt {hex}");
            }
            None => s.push_str("receipt -\n"),
        }
        s.into_bytes()
    }

    /// Parses the text form; `None` if it is not a tombstone.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(b).ok()?;
        let mut lines = text.lines();
        if lines.next()? != "vigil-tombstone 1" {
            return None;
        }
        let mut field = |name: &str| -> Option<String> {
            lines
                .next()?
                .strip_prefix(name)?
                .strip_prefix(' ')
                .map(str::to_owned)
        };
        let vault = field("vault")?;
        let period = field("period")?;
        let at = field("shredded-at")?;
        let receipt = field("receipt")?;
        let unhex = |h: &str| -> Option<Vec<u8>> {
            h.len()
                .is_multiple_of(2)
                .then(|| {
                    (0..h.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).ok())
                        .collect()
                })
                .flatten()
        };
        let vault: [u8; 16] = unhex(&vault)?.try_into().ok()?;
        let (a, z) = period.split_once(' ')?;
        Some(Tombstone {
            vault_id: VaultId::from_bytes(vault),
            period: Period {
                start_ms: a.parse().ok()?,
                end_ms: z.parse().ok()?,
            },
            shredded_at_ms: at.parse().ok()?,
            receipt: if receipt == "-" {
                None
            } else {
                Some(unhex(&receipt)?)
            },
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
}

/// Finishes a shred whose tombstone exists: destroys the key, deletes the
/// store. Idempotent.
pub(crate) fn finish(
    storage: Box<dyn Storage>,
    key_store: &dyn KeyStore,
    tombstone: &[u8],
) -> Result<Tombstone, ShredError> {
    let t = Tombstone::decode(tombstone).ok_or(ShredError::BadTombstone)?;
    key_store.destroy()?;
    storage.destroy()?;
    Ok(t)
}

/// Finishes a shred of the sled store in `dir`, without opening sled.
pub(crate) fn finish_dir(
    dir: &Path,
    key_store: &dyn KeyStore,
    tombstone: &[u8],
) -> Result<Tombstone, ShredError> {
    let t = Tombstone::decode(tombstone).ok_or(ShredError::BadTombstone)?;
    key_store.destroy()?;
    SledStorage::destroy_dir(dir)?;
    Ok(t)
}

impl Vault {
    /// Whether the period is over at `now_ms` (the app's timer calls this,
    /// then [`Vault::shred_now`]).
    pub fn is_due(&self, now_ms: i64) -> bool {
        now_ms >= self.period.end_ms
    }

    /// Shreds the vault now (at the end of the period, or early at the
    /// resident's request): tombstone, key destruction, store deletion.
    pub fn shred_now(self, key_store: &dyn KeyStore, now_ms: i64) -> Result<Tombstone, ShredError> {
        self.shred_with_receipt(key_store, now_ms, None)
    }

    /// Shreds the vault, first asking the node behind `conn` to delete the
    /// mailbox and this device's grants at once. The node's signed receipt
    /// goes into the tombstone. If the node cannot be reached the shred goes
    /// ahead anyway (the node's sweeper deletes at the period's end).
    pub fn shred_with_node(
        self,
        conn: &mut dyn vigil_proto::Exchange,
        key_store: &dyn KeyStore,
        now_ms: i64,
    ) -> Result<Tombstone, ShredError> {
        let receipt = match self.request_node_deletion(conn) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "node not told to delete; its sweeper will");
                None
            }
        };
        self.shred_with_receipt(key_store, now_ms, receipt)
    }

    fn request_node_deletion(
        &self,
        conn: &mut dyn vigil_proto::Exchange,
    ) -> Result<Vec<u8>, String> {
        use vigil_proto::{Request, Response, decode_response, encode_request};
        let grants = self
            .grants()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|g| g.grant_id)
            .collect();
        crate::sync::hello(conn).map_err(|e| e.to_string())?;
        let mut call = |r: &Request| -> Result<Response, String> {
            let f = conn
                .exchange(&encode_request(r))
                .map_err(|e| e.to_string())?;
            decode_response(&f).map_err(|e| e.to_string())
        };
        match call(&Request::Shred {
            vault: *self.keys.vault_id().as_bytes(),
            key: *self.keys.mailbox_key().expose_secret(),
            grants,
        })? {
            Response::Receipt(r) => Ok(r),
            other => Err(format!("node answered {other:?}")),
        }
    }

    pub(crate) fn shred_with_receipt(
        self,
        key_store: &dyn KeyStore,
        now_ms: i64,
        receipt: Option<Vec<u8>>,
    ) -> Result<Tombstone, ShredError> {
        let t = Tombstone {
            vault_id: self.keys.vault_id(),
            period: self.period,
            shredded_at_ms: now_ms,
            receipt,
        };
        let mut storage = self.into_storage();
        storage.put_tombstone(&t.encode())?;
        finish(storage, key_store, &t.encode())
    }
}
