//! X25519 key wrapping in the manner of age (docs/spec.md §4): a fresh
//! ephemeral key agrees with the recipient's key, HKDF over the transcript
//! (both public keys) gives a one-time key, ChaCha20-Poly1305 seals the secret.
//!
//! ```text
//! version (1) | kind (1) | ephemeral public key (32) | ciphertext (32) | tag (16)
//! ```

use core::fmt;

use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, Nonce, Tag};
use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::Sha256;
use x25519_dalek::{EphemeralSecret, PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::keys::{AlertKey, RootKey};

/// Wrap format version.
pub const WRAP_VERSION: u8 = 1;
/// Length of a [`WrappedKey`] in bytes.
pub const WRAPPED_LEN: usize = 2 + 32 + 32 + 16;

/// An X25519 public key: a device's pairing key or a community node's key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct X25519PublicKey([u8; 32]);

impl X25519PublicKey {
    /// Builds a public key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for X25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519PublicKey({})", hex::encode(self.0))
    }
}

/// An X25519 secret key that receives wrapped keys (a joining device, a node).
/// Zeroized on drop; `Debug` prints only the public half.
pub struct X25519Identity {
    secret: StaticSecret,
    /// Computed once (a scalar multiplication): pairing, unwrapping and
    /// the node's grant keys each ask for it, some several times.
    public: X25519PublicKey,
}

impl X25519Identity {
    fn new(secret: StaticSecret) -> Self {
        let public = X25519PublicKey(PublicKey::from(&secret).to_bytes());
        Self { secret, public }
    }

    /// Generates a fresh identity.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::new(StaticSecret::random_from_rng(rng))
    }

    /// Rebuilds an identity from its stored secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self::new(StaticSecret::from(bytes))
    }

    /// The secret bytes, for a key store to persist.
    pub fn expose_secret(&self) -> &[u8; 32] {
        self.secret.as_bytes()
    }

    /// The public key to hand to whoever wraps keys for this identity.
    pub fn public_key(&self) -> X25519PublicKey {
        self.public
    }

    /// X25519 with this identity; `None` if the result is all zero
    /// (a low-order peer key, which contributes nothing).
    pub(crate) fn agree(&self, peer: &X25519PublicKey) -> Option<Zeroizing<[u8; 32]>> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(peer.0));
        shared
            .was_contributory()
            .then(|| Zeroizing::new(shared.to_bytes()))
    }
}

impl fmt::Debug for X25519Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519Identity(public: {:?})", self.public_key())
    }
}

/// A secret wrapped to one X25519 recipient; safe to send over any channel.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey([u8; WRAPPED_LEN]);

impl WrappedKey {
    /// The wrapped bytes.
    pub fn as_bytes(&self) -> &[u8; WRAPPED_LEN] {
        &self.0
    }

    /// Parses wrapped bytes; only the length is checked here, the rest by [`unwrap`].
    pub fn from_slice(bytes: &[u8]) -> Result<Self, UnwrapError> {
        <[u8; WRAPPED_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| UnwrapError)
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedKey(kind {}, {} bytes)", self.0[1], WRAPPED_LEN)
    }
}

/// Secrets that may be wrapped. Each has its own kind byte and HKDF label, so
/// a wrapped alert key never unwraps as a root.
pub trait Wrappable: private::Sealed {}

mod private {
    pub trait Sealed: Sized {
        const KIND: u8;
        const LABEL: &'static [u8];
        fn secret(&self) -> &[u8; 32];
        fn from_secret(bytes: [u8; 32]) -> Self;
    }
}

impl private::Sealed for RootKey {
    const KIND: u8 = 1;
    const LABEL: &'static [u8] = b"vigil/v1/wrap/root";
    fn secret(&self) -> &[u8; 32] {
        self.expose_secret()
    }
    fn from_secret(bytes: [u8; 32]) -> Self {
        Self::from_bytes(bytes)
    }
}
impl Wrappable for RootKey {}

impl private::Sealed for AlertKey {
    const KIND: u8 = 2;
    const LABEL: &'static [u8] = b"vigil/v1/wrap/alert";
    fn secret(&self) -> &[u8; 32] {
        self.expose_secret()
    }
    fn from_secret(bytes: [u8; 32]) -> Self {
        Self::from_bytes(bytes)
    }
}
impl Wrappable for AlertKey {}

/// Why [`wrap`] refused.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WrapError {
    /// The recipient key is a low-order point: the agreement would be all zero.
    #[error("recipient public key is invalid (low-order point)")]
    InvalidRecipient,
}

/// The one error for every failure to unwrap (wrong identity, tampering,
/// wrong kind, bad length).
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("wrapped key could not be unwrapped")]
pub struct UnwrapError;

fn wrap_cipher<T: Wrappable>(
    shared: &[u8; 32],
    ephemeral: &X25519PublicKey,
    recipient: &X25519PublicKey,
) -> ChaCha20Poly1305 {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(&ephemeral.0);
    salt[32..].copy_from_slice(&recipient.0);
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(&salt), shared)
        .expand(<T as private::Sealed>::LABEL, key.as_mut())
        .expect("32-byte HKDF output is valid");
    ChaCha20Poly1305::new(&(*key).into())
}

/// Wraps `secret` to `recipient` with a fresh ephemeral key.
pub fn wrap<T: Wrappable, R: CryptoRng + ?Sized>(
    recipient: &X25519PublicKey,
    secret: &T,
    rng: &mut R,
) -> Result<WrappedKey, WrapError> {
    let eph = EphemeralSecret::random_from_rng(rng);
    let eph_pub = X25519PublicKey(PublicKey::from(&eph).to_bytes());
    let shared = eph.diffie_hellman(&PublicKey::from(recipient.0));
    if !shared.was_contributory() {
        return Err(WrapError::InvalidRecipient);
    }
    let cipher = wrap_cipher::<T>(shared.as_bytes(), &eph_pub, recipient);
    let mut out = [0u8; WRAPPED_LEN];
    out[0] = WRAP_VERSION;
    out[1] = <T as private::Sealed>::KIND;
    out[2..34].copy_from_slice(&eph_pub.0);
    out[34..66].copy_from_slice(<T as private::Sealed>::secret(secret));
    let (head, rest) = out.split_at_mut(34);
    let (body, tag_out) = rest.split_at_mut(32);
    // The key is used once, so the all-zero nonce is safe (as in age).
    let tag = cipher
        .encrypt_inout_detached(&Nonce::default(), &head[..2], body.into())
        .expect("32-byte message is within limits");
    tag_out.copy_from_slice(&tag);
    Ok(WrappedKey(out))
}

/// Unwraps a secret wrapped to `identity`.
pub fn unwrap<T: Wrappable>(
    identity: &X25519Identity,
    wrapped: &WrappedKey,
) -> Result<T, UnwrapError> {
    let w = &wrapped.0;
    if w[0] != WRAP_VERSION || w[1] != <T as private::Sealed>::KIND {
        return Err(UnwrapError);
    }
    let mut eph = [0u8; 32];
    eph.copy_from_slice(&w[2..34]);
    let eph = X25519PublicKey(eph);
    let shared = identity.agree(&eph).ok_or(UnwrapError)?;
    let cipher = wrap_cipher::<T>(&shared, &eph, &identity.public_key());
    let mut body = Zeroizing::new([0u8; 32]);
    body.copy_from_slice(&w[34..66]);
    let tag = Tag::try_from(&w[66..]).map_err(|_| UnwrapError)?;
    cipher
        .decrypt_inout_detached(&Nonce::default(), &w[..2], body.as_mut_slice().into(), &tag)
        .map_err(|_| UnwrapError)?;
    Ok(<T as private::Sealed>::from_secret(*body))
}
