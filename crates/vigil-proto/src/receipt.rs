//! Deletion receipts (docs/spec.md §13): what a node attests to having
//! deleted for a vault, signed with its Ed25519 key from the enrolment code.

use serde::{Deserialize, Serialize};
use vigil_crypto::{SIGNATURE_LEN, SigningIdentity, VerifyKey};

const DOMAIN: &[u8] = b"vigil/v1/receipt";

/// The attested facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptBody {
    /// The vault.
    pub vault: [u8; 16],
    /// When the node deleted it, ms (node clock).
    pub deleted_at_ms: i64,
    /// Bundles and snapshots deleted.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Grants deleted (their alert keys with them).
    pub grants: u64,
    /// Alerts deleted.
    pub alerts: u64,
    /// Alerts staff had not yet acknowledged, kept at the node (marked
    /// "resident ended monitoring") until they do or the period ends.
    pub kept_unseen_alerts: u64,
    /// The device ids that had pushed bundles to the mailbox at shred time
    /// (the shredding one included, if it had), in ascending order: the node
    /// tells each of them at its next contact before the period's end
    /// (docs/spec.md §13).
    pub devices: Vec<[u8; 16]>,
    /// The signing node's public key.
    pub node: [u8; 32],
}

/// Why a receipt does not verify.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("the receipt is malformed or not signed by this node")]
pub struct BadReceipt;

/// Encodes and signs: `postcard(body) || signature(DOMAIN || postcard(body))`.
pub fn sign_receipt(signer: &SigningIdentity, body: &ReceiptBody) -> Vec<u8> {
    let mut out = postcard::to_stdvec(body).expect("plain data serialises");
    let mut msg = DOMAIN.to_vec();
    msg.extend_from_slice(&out);
    out.extend_from_slice(&signer.sign(&msg));
    out
}

/// Verifies a receipt against the node's key (from its enrolment code).
pub fn verify_receipt(node: &VerifyKey, receipt: &[u8]) -> Result<ReceiptBody, BadReceipt> {
    let split = receipt.len().checked_sub(SIGNATURE_LEN).ok_or(BadReceipt)?;
    let (body_bytes, sig) = receipt.split_at(split);
    let mut msg = DOMAIN.to_vec();
    msg.extend_from_slice(body_bytes);
    if !node.verify(&msg, sig) {
        return Err(BadReceipt);
    }
    let body: ReceiptBody = postcard::from_bytes(body_bytes).map_err(|_| BadReceipt)?;
    if body.node != *node.as_bytes() {
        return Err(BadReceipt);
    }
    Ok(body)
}
