//! The disclosure log (docs/spec.md §12): every fact that left this device,
//! and when, sealed with the store key.

use serde::{Deserialize, Serialize};
use vigil_crypto::X25519PublicKey;
use vigil_log::FeverRule;

use crate::error::WriteError;
use crate::layout::{
    self, LocalRecord, P_DISCLOSURE, VaultCrypto, disclosure_key, parse_disclosure_key,
};
use crate::storage::{Batch, Storage, StorageError};

/// One fact that left this device (stored as it is, sealed: docs/spec.md §12).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Disclosure {
    /// A fever-alert grant was given to a node.
    Grant {
        /// When, ms.
        at_ms: i64,
        /// To which node.
        #[serde(with = "layout::x25519")]
        node: X25519PublicKey,
        /// Under which rule.
        #[serde(with = "layout::rule")]
        rule: FeverRule,
        /// With which label.
        label: String,
    },
    /// An alert was sent to a node for the first time.
    AlertSent {
        /// When, ms.
        at_ms: i64,
        /// The episode's (rounded) onset, ms.
        onset_ms: i64,
        /// Started (1) or ended (2).
        kind: u8,
        /// Level band.
        level: u8,
    },
    /// The node acknowledged an alert.
    AlertAcknowledged {
        /// When, ms.
        at_ms: i64,
        /// The episode's (rounded) onset, ms.
        onset_ms: i64,
        /// Started (1) or ended (2).
        kind: u8,
    },
    /// The vault's root was wrapped to another device.
    Pairing {
        /// When, ms.
        at_ms: i64,
        /// The joining device's key.
        #[serde(with = "layout::x25519")]
        joiner: X25519PublicKey,
    },
}

/// Appends `d` to `batch` as the next entry (after those stored and those
/// already in the batch), sealed with the store key.
pub(crate) fn disclose(
    storage: &dyn Storage,
    crypto: &mut VaultCrypto,
    batch: &mut Batch,
    d: &Disclosure,
) -> Result<(), WriteError> {
    let stored = storage.scan_prefix(P_DISCLOSURE)?.len() as u64;
    let batched = batch
        .ops()
        .iter()
        .filter(|(k, _)| k.starts_with(P_DISCLOSURE))
        .count() as u64;
    let n = stored + batched + 1;
    let sealed = crypto.seal_record(LocalRecord::Disclosure(n), d)?;
    batch.put(disclosure_key(n), sealed);
    Ok(())
}

/// Everything that ever left this device, oldest first.
pub(crate) fn disclosures(
    storage: &dyn Storage,
    crypto: &VaultCrypto,
) -> Result<Vec<Disclosure>, StorageError> {
    let mut out = Vec::new();
    for (k, v) in storage.scan_prefix(P_DISCLOSURE)? {
        let n = parse_disclosure_key(&k)
            .ok_or_else(|| StorageError::Corrupt("disclosure key".into()))?;
        let d: Disclosure = crypto
            .open_record(LocalRecord::Disclosure(n), &v)
            .ok_or_else(|| StorageError::Corrupt(format!("disclosure {n} does not open")))?;
        out.push(d);
    }
    Ok(out)
}
