//! Secret key types and the HKDF key schedule (docs/spec.md §1).
//!
//! Every key of a vault is derived from its [`RootKey`] with
//! `HKDF-SHA256(ikm = root, salt = vault_id, info = "vigil/v1/<purpose>")`,
//! one purpose per type, so a key can never be handed to the wrong operation.

use core::fmt;

use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::sas::ShortAuthCode;
use crate::wrap::X25519PublicKey;

/// HKDF `info` labels, one per purpose. The table in docs/spec.md §1 lists them.
pub(crate) mod label {
    pub(crate) const VAULT_ID: &[u8] = b"vigil/v1/vault-id";
    pub(crate) const LOG: &[u8] = b"vigil/v1/log";
    pub(crate) const STORE: &[u8] = b"vigil/v1/store";
    pub(crate) const MAILBOX_PREFIX: &[u8] = b"vigil/v1/mailbox/";
    pub(crate) const ALERT_PREFIX: &[u8] = b"vigil/v1/alert/";
    pub(crate) const SAS_PREFIX: &[u8] = b"vigil/v1/sas/";
    pub(crate) const MAILBOX_VERIFIER: &[u8] = b"vigil/v1/mailbox-verifier";
    pub(crate) const STORE_INDEX: &[u8] = b"vigil/v1/store-index";
    pub(crate) const GRANT_SHRED: &[u8] = b"vigil/v1/grant-shred";
    pub(crate) const GRANT_STATUS: &[u8] = b"vigil/v1/grant-status";
}

/// Defines a 32-byte secret key type: zeroized on drop, redacted `Debug`,
/// constant-time equality, no `Clone`.
macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Length of the key in bytes.
            pub const LEN: usize = 32;

            /// Rebuilds the key from its bytes (for example when a key store loads it).
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The raw key bytes. Named so that every use stands out in review:
            /// only key stores and the crypto core itself should need it.
            pub fn expose_secret(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl ConstantTimeEq for $name {
            fn ct_eq(&self, other: &Self) -> subtle::Choice {
                self.0.ct_eq(&other.0)
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.ct_eq(other).into()
            }
        }

        impl Eq for $name {}
    };
}

secret_key!(
    /// The root secret of one vault (one monitoring period). Every other key
    /// is derived from it; destroying it destroys the vault.
    RootKey
);
secret_key!(
    /// Seals the health log's changes and snapshots (`vigil/v1/log`).
    LogKey
);
secret_key!(
    /// Seals device-local records at rest that are never synced, such as the
    /// alert outbox and the disclosure log (`vigil/v1/store`).
    StoreKey
);
secret_key!(
    /// Proves to one node's relay that a device may use the vault's mailbox
    /// there (`vigil/v1/mailbox/` followed by the node's [`NodeId`]). The
    /// relay keeps only its [`MailboxVerifier`]; the key for one node opens
    /// nothing at another.
    MailboxKey
);
secret_key!(
    /// Seals fever alerts for one community node
    /// (`vigil/v1/alert/` followed by the node's X25519 public key).
    AlertKey
);

secret_key!(
    /// Names device-local records whose natural key would say something
    /// (which grant, episode and kind an alert is): their store keys are
    /// keyed hashes under it (`vigil/v1/store-index`).
    IndexKey
);

impl IndexKey {
    /// A 16-byte opaque id for `input` in `domain`: HMAC-SHA256 (as
    /// HKDF-Expand with this key as the PRK) over `domain || input`,
    /// truncated. Without the key the ids cannot be linked to their inputs.
    /// Callers pass fixed-length inputs, so `domain || input` is unambiguous.
    pub fn tag(&self, domain: &[u8], input: &[u8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        Hkdf::<Sha256>::from_prk(&self.0)
            .expect("a 32-byte key is a valid SHA-256 PRK")
            .expand_multi_info(&[domain, input], &mut out)
            .expect("16 bytes is far below HKDF's limit");
        out
    }
}

impl AlertKey {
    /// The proof that whoever asks a node to delete grant `grant_id` for
    /// `vault` holds this grant's alert key (docs/spec.md §13): a MAC over
    /// `vault || grant_id` under `S = HKDF(K, salt = none,
    /// "vigil/v1/grant-shred")`, as HKDF-Expand with `S` as the PRK (HMAC-SHA256
    /// of `vault || grant_id || 01`). The alert key itself only seals alerts;
    /// the MAC key is derived under its own label.
    pub fn shred_proof(&self, vault: &VaultId, grant_id: &[u8; 16]) -> [u8; 32] {
        let mut s = zeroize::Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, &self.0)
            .expand(label::GRANT_SHRED, s.as_mut())
            .expect("32 bytes is far below HKDF's limit");
        let mut out = [0u8; 32];
        Hkdf::<Sha256>::from_prk(s.as_ref())
            .expect("a 32-byte key is a valid SHA-256 PRK")
            .expand_multi_info(&[vault.as_bytes(), grant_id], &mut out)
            .expect("32 bytes is far below HKDF's limit");
        out
    }

    /// Whether `proof` is [`AlertKey::shred_proof`] for `vault` and
    /// `grant_id`, compared in constant time.
    pub fn verify_shred_proof(
        &self,
        vault: &VaultId,
        grant_id: &[u8; 16],
        proof: &[u8; 32],
    ) -> bool {
        self.shred_proof(vault, grant_id).ct_eq(proof).into()
    }

    /// The proof that whoever asks a node for the acknowledgement state of
    /// grant `grant_id`'s alerts holds this grant's alert key (docs/spec.md
    /// §12): HKDF-Expand over `grant_id` with `HKDF(K, "vigil/v1/grant-status")`
    /// as the PRK. Its own label, so it never doubles as a deletion proof.
    pub fn status_proof(&self, grant_id: &[u8; 16]) -> [u8; 32] {
        let mut s = zeroize::Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, &self.0)
            .expand(label::GRANT_STATUS, s.as_mut())
            .expect("32 bytes is far below HKDF's limit");
        let mut out = [0u8; 32];
        Hkdf::<Sha256>::from_prk(s.as_ref())
            .expect("a 32-byte key is a valid SHA-256 PRK")
            .expand(grant_id, &mut out)
            .expect("32 bytes is far below HKDF's limit");
        out
    }

    /// Whether `proof` is [`AlertKey::status_proof`] for `grant_id`, in
    /// constant time.
    pub fn verify_status_proof(&self, grant_id: &[u8; 16], proof: &[u8; 32]) -> bool {
        self.status_proof(grant_id).ct_eq(proof).into()
    }
}

impl RootKey {
    /// Generates a fresh root key from a cryptographically secure RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }
}

impl MailboxKey {
    /// The value the relay stores to check mailbox access:
    /// `SHA-256("vigil/v1/mailbox-verifier" || key)`. It does not reveal the key.
    pub fn verifier(&self) -> MailboxVerifier {
        let mut h = Sha256::new();
        h.update(label::MAILBOX_VERIFIER);
        h.update(self.0);
        MailboxVerifier(h.finalize().into())
    }
}

/// A public hash of a [`MailboxKey`], stored by the relay.
#[derive(Clone, Copy)]
pub struct MailboxVerifier([u8; 32]);

impl MailboxVerifier {
    /// Rebuilds a verifier from its stored bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The verifier's bytes, for storage.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Whether `key` matches this verifier, compared in constant time.
    pub fn verify(&self, key: &MailboxKey) -> bool {
        key.verifier().0.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for MailboxVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxVerifier({})", hex_prefix(&self.0))
    }
}

impl PartialEq for MailboxVerifier {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for MailboxVerifier {}

/// The public identifier of a vault, derived from its root. It names the
/// vault's mailbox on the relay and salts every other derivation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VaultId([u8; 16]);

impl VaultId {
    /// Length in bytes.
    pub const LEN: usize = 16;

    /// Rebuilds a vault id from its bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for VaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultId({self})")
    }
}

impl fmt::Display for VaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Which community node a device talks to: the node's long-term X25519
/// public key and the SHA-256 of the TLS certificate the device pins, both
/// from its enrolment code (`vigil1/<addr>/<x25519>/<cert sha256>/…`).
///
/// The mailbox key is derived per node from both (docs/spec.md §1), so a key
/// one node saw opens nothing at another. The certificate hash is what TLS
/// authenticates: a key derived for a certificate only ever travels over a
/// connection pinned to it, even if the code was tampered with. The address
/// is not part of it: a node that moves stays the same node.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId {
    x25519: X25519PublicKey,
    cert_sha256: [u8; 32],
}

impl NodeId {
    /// Length of [`NodeId::to_bytes`].
    pub const LEN: usize = 64;

    /// The node with X25519 key `x25519` whose TLS certificate hashes
    /// (SHA-256 of its DER) to `cert_sha256`.
    pub fn new(x25519: X25519PublicKey, cert_sha256: [u8; 32]) -> Self {
        NodeId {
            x25519,
            cert_sha256,
        }
    }

    /// The node's X25519 public key (alert keys are bound to it, §12).
    pub fn x25519(&self) -> &X25519PublicKey {
        &self.x25519
    }

    /// SHA-256 of the node's TLS certificate (DER).
    pub fn cert_sha256(&self) -> &[u8; 32] {
        &self.cert_sha256
    }

    /// `x25519 || cert_sha256`, as the key schedule uses it.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(self.x25519.as_bytes());
        out[32..].copy_from_slice(&self.cert_sha256);
        out
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NodeId({}, cert {})",
            hex_prefix(self.x25519.as_bytes()),
            hex_prefix(&self.cert_sha256)
        )
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    hex::encode(&bytes[..bytes.len().min(4)]) + "…"
}

/// The key schedule of one vault: holds the root and derives each purpose's key.
///
/// ```
/// use vigil_crypto::{KeySchedule, RootKey};
/// let schedule = KeySchedule::new(RootKey::from_bytes([7; 32]));
/// let log_key = schedule.log_key();
/// assert_ne!(log_key.expose_secret(), schedule.store_key().expose_secret());
/// ```
pub struct KeySchedule {
    root: RootKey,
    vault_id: VaultId,
    /// HKDF-Extract(salt = vault id, ikm = root), the pseudorandom key every
    /// purpose's key is expanded from: extracted once here rather than at
    /// each derivation (a sync derives its mailbox key, a delivery its
    /// alert key). As secret as the root; zeroized on drop like it.
    prk: zeroize::Zeroizing<[u8; 32]>,
}

impl fmt::Debug for KeySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySchedule")
            .field("root", &self.root)
            .field("vault_id", &self.vault_id)
            .finish()
    }
}

impl KeySchedule {
    /// Takes ownership of the root and derives the vault id from it.
    pub fn new(root: RootKey) -> Self {
        let mut id = [0u8; 16];
        expand(&root, None, &[label::VAULT_ID], &mut id);
        let (mut prk, _) = Hkdf::<Sha256>::extract(Some(&id), &root.0);
        let mut prk_bytes = zeroize::Zeroizing::new([0u8; 32]);
        prk_bytes.copy_from_slice(&prk);
        prk.as_mut_slice().zeroize();
        Self {
            root,
            vault_id: VaultId(id),
            prk: prk_bytes,
        }
    }

    /// The vault id: `HKDF(ikm = root, salt = none, info = "vigil/v1/vault-id")`, 16 bytes.
    pub fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    /// The root key, for a key store to persist or a pairing to wrap.
    pub fn root(&self) -> &RootKey {
        &self.root
    }

    /// The key that seals log bundles and snapshots.
    pub fn log_key(&self) -> LogKey {
        LogKey(self.derive(&[label::LOG]))
    }

    /// The key that seals device-local records at rest.
    pub fn store_key(&self) -> StoreKey {
        StoreKey(self.derive(&[label::STORE]))
    }

    /// The key that names device-local records by keyed hash.
    pub fn index_key(&self) -> IndexKey {
        IndexKey(self.derive(&[label::STORE_INDEX]))
    }

    /// The key that grants access to the vault's mailbox on `node`'s relay,
    /// and nowhere else: a node sees the key while a session lasts, so each
    /// node gets its own (docs/spec.md §1).
    pub fn mailbox_key(&self, node: &NodeId) -> MailboxKey {
        MailboxKey(self.derive(&[
            label::MAILBOX_PREFIX,
            node.x25519.as_bytes(),
            &node.cert_sha256,
        ]))
    }

    /// The alert key for one community node, bound to that node's X25519 public key.
    pub fn alert_key(&self, node: &X25519PublicKey) -> AlertKey {
        AlertKey(self.derive(&[label::ALERT_PREFIX, node.as_bytes()]))
    }

    /// The short authentication code both devices show when `joiner` pairs
    /// into this vault (docs/spec.md §5). It depends on the root, so a relay
    /// that swapped the wrapped root or the joiner's key cannot predict it.
    pub fn pairing_code(&self, joiner: &X25519PublicKey) -> ShortAuthCode {
        let mut out = [0u8; 8];
        self.expand(&[label::SAS_PREFIX, joiner.as_bytes()], &mut out);
        ShortAuthCode::from_okm(out)
    }

    fn derive(&self, info: &[&[u8]]) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.expand(info, &mut out);
        out
    }

    /// HKDF-Expand from the extracted key: the same output as
    /// [`expand`]`(root, Some(vault id), ...)`, without the extraction.
    fn expand(&self, info: &[&[u8]], out: &mut [u8]) {
        Hkdf::<Sha256>::from_prk(self.prk.as_ref())
            .expect("a SHA-256 output is a valid HKDF pseudorandom key")
            .expand_multi_info(info, out)
            .expect("HKDF output length is a small compile-time constant");
    }
}

/// HKDF-SHA256 extract-and-expand. Output lengths here are fixed and far
/// below HKDF's 255 × 32-byte limit, so expansion cannot fail.
fn expand(root: &RootKey, salt: Option<&[u8]>, info: &[&[u8]], out: &mut [u8]) {
    let hk = Hkdf::<Sha256>::new(salt, &root.0);
    hk.expand_multi_info(info, out)
        .expect("HKDF output length is a small compile-time constant");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_values_print_as_lowercase_hex() {
        let mut b = [0u8; 32];
        b[0] = 0x0a;
        b[1] = 0xbc;
        b[31] = 0xff;
        let hex32 = format!("0abc{}ff", "00".repeat(29));
        let mut v = [0u8; 16];
        v.copy_from_slice(&b[..16]);
        let id = VaultId::from_bytes(v);
        assert_eq!(id.to_string(), &hex32[..32]);
        assert_eq!(format!("{id:?}"), format!("VaultId({})", &hex32[..32]));
        assert_eq!(
            format!("{:?}", MailboxVerifier::from_bytes(b)),
            "MailboxVerifier(0abc0000…)"
        );
        assert_eq!(
            format!("{:?}", crate::X25519PublicKey::from_bytes(b)),
            format!("X25519PublicKey({hex32})")
        );
        assert_eq!(
            format!("{:?}", crate::VerifyKey::from_bytes(b)),
            format!("VerifyKey({hex32})")
        );
    }

    #[test]
    fn debug_is_redacted() {
        let k = RootKey::from_bytes([0xab; 32]);
        let s = format!("{k:?}");
        assert_eq!(s, "RootKey(<redacted>)");
    }

    #[test]
    fn verifier_checks_key() {
        let s = KeySchedule::new(RootKey::from_bytes([1; 32]));
        let other = KeySchedule::new(RootKey::from_bytes([2; 32]));
        let node = NodeId::new(crate::X25519PublicKey::from_bytes([3; 32]), [4; 32]);
        let v = s.mailbox_key(&node).verifier();
        assert!(v.verify(&s.mailbox_key(&node)));
        assert!(!v.verify(&other.mailbox_key(&node)));
    }
}
