//! Enrolment tickets (docs/spec.md §15): the one-time secret staff hand a
//! resident, and the hash of it the node keeps.

use core::fmt;

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Domain of the ticket verifier hash.
const TICKET_VERIFIER: &[u8] = b"vigil/v1/ticket-verifier";

/// A ticket's id: public, names the ticket at the node and to staff.
pub type TicketId = [u8; 16];

/// The secret half of an enrolment ticket: whoever holds it may enrol one
/// vault. Zeroized on drop, never printed, compared in constant time.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct TicketSecret([u8; 32]);

impl TicketSecret {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// A fresh secret from a cryptographically secure RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        TicketSecret(b)
    }

    /// Rebuilds a secret from its bytes (a parsed ticket code).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        TicketSecret(bytes)
    }

    /// The raw bytes (for the ticket code and the wire only).
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// What the node stores: `SHA-256("vigil/v1/ticket-verifier" || id || secret)`.
    pub fn verifier(&self, id: &TicketId) -> TicketVerifier {
        let mut h = Sha256::new();
        h.update(TICKET_VERIFIER);
        h.update(id);
        h.update(self.0);
        TicketVerifier(h.finalize().into())
    }
}

impl fmt::Debug for TicketSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketSecret(<redacted>)")
    }
}

impl PartialEq for TicketSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for TicketSecret {}

/// The hash of a ticket's secret the node keeps: it checks a presented
/// secret without being able to present one itself (a copy of the node's
/// disk cannot enrol anyone).
#[derive(Clone, Copy)]
pub struct TicketVerifier([u8; 32]);

impl TicketVerifier {
    /// Rebuilds a verifier from its stored bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        TicketVerifier(bytes)
    }

    /// Its bytes, for storage.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Whether `secret` is the secret of ticket `id`, in constant time.
    pub fn verify(&self, id: &TicketId, secret: &TicketSecret) -> bool {
        secret.verifier(id).0.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for TicketVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TicketVerifier({}…)", hex::encode(&self.0[..4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verifier_accepts_its_secret_only() {
        let id = [7u8; 16];
        let s = TicketSecret::from_bytes([1; 32]);
        let v = s.verifier(&id);
        assert!(v.verify(&id, &s));
        assert!(!v.verify(&[8u8; 16], &s), "bound to the id");
        assert!(!v.verify(&id, &TicketSecret::from_bytes([2; 32])));
        assert_eq!(format!("{s:?}"), "TicketSecret(<redacted>)");
        // The format of docs/spec.md §15.
        let mut input = b"vigil/v1/ticket-verifier".to_vec();
        input.extend_from_slice(&id);
        input.extend_from_slice(&[1; 32]);
        assert_eq!(v.to_bytes(), <[u8; 32]>::from(Sha256::digest(&input)));
    }
}
