//! The disclosure log (docs/spec.md §12): every fact that left this device,
//! and when, sealed with the store key.

use vigil_crypto::X25519PublicKey;
use vigil_log::FeverRule;

use crate::error::WriteError;
use crate::layout::{
    DisclosureRecord, LocalRecord, P_DISCLOSURE, VaultCrypto, disclosure_key, parse_disclosure_key,
};
use crate::storage::{Batch, Storage, StorageError};

/// One fact that left this device.
#[derive(Debug, Clone, PartialEq)]
pub enum Disclosure {
    /// A fever-alert grant was given to a node.
    Grant {
        /// When, ms.
        at_ms: i64,
        /// To which node.
        node: X25519PublicKey,
        /// Under which rule.
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
        joiner: X25519PublicKey,
    },
}

impl From<&Disclosure> for DisclosureRecord {
    fn from(d: &Disclosure) -> Self {
        match d {
            Disclosure::Grant {
                at_ms,
                node,
                rule,
                label,
            } => DisclosureRecord::Grant {
                at_ms: *at_ms,
                node: *node.as_bytes(),
                rule: (*rule).into(),
                label: label.clone(),
            },
            Disclosure::AlertSent {
                at_ms,
                onset_ms,
                kind,
                level,
            } => DisclosureRecord::AlertSent {
                at_ms: *at_ms,
                onset_ms: *onset_ms,
                kind: *kind,
                level: *level,
            },
            Disclosure::AlertAcknowledged {
                at_ms,
                onset_ms,
                kind,
            } => DisclosureRecord::AlertAcknowledged {
                at_ms: *at_ms,
                onset_ms: *onset_ms,
                kind: *kind,
            },
            Disclosure::Pairing { at_ms, joiner } => DisclosureRecord::Pairing {
                at_ms: *at_ms,
                joiner: *joiner.as_bytes(),
            },
        }
    }
}

impl From<DisclosureRecord> for Disclosure {
    fn from(r: DisclosureRecord) -> Self {
        match r {
            DisclosureRecord::Grant {
                at_ms,
                node,
                rule,
                label,
            } => Disclosure::Grant {
                at_ms,
                node: X25519PublicKey::from_bytes(node),
                rule: rule.into(),
                label,
            },
            DisclosureRecord::AlertSent {
                at_ms,
                onset_ms,
                kind,
                level,
            } => Disclosure::AlertSent {
                at_ms,
                onset_ms,
                kind,
                level,
            },
            DisclosureRecord::AlertAcknowledged {
                at_ms,
                onset_ms,
                kind,
            } => Disclosure::AlertAcknowledged {
                at_ms,
                onset_ms,
                kind,
            },
            DisclosureRecord::Pairing { at_ms, joiner } => Disclosure::Pairing {
                at_ms,
                joiner: X25519PublicKey::from_bytes(joiner),
            },
        }
    }
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
    let sealed = crypto.seal_record(LocalRecord::Disclosure(n), &DisclosureRecord::from(d))?;
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
        let rec: DisclosureRecord = crypto
            .open_record(LocalRecord::Disclosure(n), &v)
            .ok_or_else(|| StorageError::Corrupt(format!("disclosure {n} does not open")))?;
        out.push(rec.into());
    }
    Ok(out)
}
