//! Ed25519 signatures for a node's deletion receipts (docs/spec.md §13), so
//! a third party holding the node's enrolment code can check what the node
//! attested to having deleted.

use core::fmt;

use ed25519_dalek::Signer;
use rand_core::CryptoRng;

/// Length of a signature.
pub const SIGNATURE_LEN: usize = 64;

/// A node's receipt-signing key. Zeroized on drop; `Debug` shows the public half.
pub struct SigningIdentity(ed25519_dalek::SigningKey);

impl SigningIdentity {
    /// Generates a fresh key.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = crate::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Rebuilds the key from its stored 32-byte seed.
    pub fn from_bytes(seed: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The seed, for a key store to persist.
    pub fn expose_secret(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key to publish (in the enrolment code).
    pub fn verify_key(&self) -> VerifyKey {
        VerifyKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `message` (callers domain-separate their messages).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningIdentity(public: {:?})", self.verify_key())
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyKey([u8; 32]);

impl VerifyKey {
    /// From its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `signature` is this key's signature of `message` (strict
    /// verification: no malleable or small-order forms).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = <[u8; SIGNATURE_LEN]>::try_from(signature) else {
            return false;
        };
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig))
            .is_ok()
    }
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyKey({})", hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let k = SigningIdentity::from_bytes([3; 32]);
        let sig = k.sign(b"receipt");
        assert!(k.verify_key().verify(b"receipt", &sig));
        assert!(!k.verify_key().verify(b"receipt!", &sig));
        let mut bad = sig;
        bad[10] ^= 1;
        assert!(!k.verify_key().verify(b"receipt", &bad));
        assert!(
            !SigningIdentity::from_bytes([4; 32])
                .verify_key()
                .verify(b"receipt", &sig)
        );
        assert!(!format!("{k:?}").contains("0303"));
    }
}
