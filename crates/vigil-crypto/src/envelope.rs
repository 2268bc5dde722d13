//! The sealed envelope (docs/spec.md §2): XChaCha20-Poly1305 with a random
//! 24-byte nonce, a `magic | version | kind` header, AAD binding the header to
//! a caller-supplied [`Context`], and plaintext padded to size buckets.
//!
//! ```text
//! "VGIL" | version (1) | kind (1) | nonce (24) | ciphertext (bucket) | tag (16)
//! padded plaintext = u32-le length | plaintext | zero bytes up to the bucket
//! ```
//!
//! Version 2 (written) and version 1 (still opened) differ only in their
//! buckets between 1 KiB and 16 KiB: quarter octaves, against powers of two
//! up to 4 KiB and multiples of 4 KiB above (docs/spec.md §3).

use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305, XNonce};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::keys::{AlertKey, LogKey, StoreKey};

/// The four magic bytes that start every sealed blob.
pub const MAGIC: [u8; 4] = *b"VGIL";
/// The envelope format version this code writes (and opens, with
/// [`POW2_VERSION`]): quarter-octave buckets between 1 KiB and 16 KiB.
pub const VERSION: u8 = 2;
/// The first envelope version, still opened: every blob sealed before
/// version 2, on devices and nodes, is one. Its buckets are powers of two up
/// to 4 KiB, then multiples of 4 KiB.
pub const POW2_VERSION: u8 = 1;
/// Header length: magic, version, kind.
pub const HEADER_LEN: usize = 6;
/// XChaCha20 nonce length.
pub const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Fixed bytes added to every blob besides padding: header, nonce, tag.
pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;
/// Largest plaintext [`seal`] accepts: 16 MiB.
pub const MAX_PLAINTEXT_LEN: usize = 16 * 1024 * 1024;
/// Smallest padded size: every blob hides lengths below this.
pub const MIN_BUCKET: usize = 256;
/// Up to this padded size buckets are powers of two (256, 512, 1024).
pub const POW2_BUCKETS_UP_TO: usize = 1024;
/// From [`POW2_BUCKETS_UP_TO`] to this padded size, buckets are quarter
/// octaves: a size in (2^k, 2^(k+1)] is rounded up to a multiple of 2^(k-2).
pub const QUARTER_BUCKETS_UP_TO: usize = 16 * 1024;
/// Above [`QUARTER_BUCKETS_UP_TO`] (in version 1: above this), buckets are
/// multiples of this.
pub const PAGE_BUCKET: usize = 4096;
/// Largest sealed blob [`open`] will consider.
pub const MAX_SEALED_LEN: usize = OVERHEAD + bucket_len(MAX_PLAINTEXT_LEN);

const LEN_PREFIX: usize = 4;

/// What a sealed blob holds. Part of the header and of the AAD, so a blob of
/// one kind never opens as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum Kind {
    /// A batch of Automerge changes from one device (sealed with the [`LogKey`]).
    LogBundle = 1,
    /// A compacted Automerge document covering a version vector ([`LogKey`]).
    LogSnapshot = 2,
    /// A device-local record at rest, never synced ([`StoreKey`]).
    LocalRecord = 3,
    /// A fever alert for a community node ([`AlertKey`]).
    Alert = 4,
    /// Vault facts a joining device needs with the wrapped root, such as
    /// the period ([`LogKey`]).
    PairingInfo = 5,
    /// A device's notice that it shredded the vault early ([`LogKey`]).
    ShredNotice = 6,
}

impl Kind {
    /// The kind's byte in the header.
    pub fn to_byte(self) -> u8 {
        self as u8
    }
}

/// Where a blob belongs: bound into the AAD, so a blob moved to another slot,
/// device or vault no longer opens. Fields are length-prefixed, so two
/// different field lists never encode alike.
///
/// ```
/// use vigil_crypto::Context;
/// let ctx = Context::new("log-bundle").bytes(b"vault id").bytes(b"device").u64(42);
/// assert!(!ctx.as_bytes().is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context(Vec<u8>);

impl Context {
    /// Starts a context with a domain string naming the slot's schema.
    pub fn new(domain: &str) -> Self {
        Self(Vec::with_capacity(64)).bytes(domain.as_bytes())
    }

    /// Appends a variable-length field (u32-le length, then the bytes).
    pub fn bytes(mut self, field: &[u8]) -> Self {
        let len = u32::try_from(field.len()).expect("context fields are small");
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(field);
        self
    }

    /// Appends a fixed-width integer (8 bytes, little-endian).
    pub fn u64(mut self, value: u64) -> Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// The encoded context.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Keys that may seal envelopes. Sealed: only the crate's purpose keys qualify,
/// so a mailbox key or a root can never be used as an envelope key.
pub trait EnvelopeKey: private::Sealed {}

mod private {
    pub trait Sealed {
        fn key_bytes(&self) -> &[u8; 32];
    }
}

macro_rules! envelope_key {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {
            fn key_bytes(&self) -> &[u8; 32] {
                self.expose_secret()
            }
        }
        impl EnvelopeKey for $t {}
    )*};
}
envelope_key!(LogKey, StoreKey, AlertKey);

/// Why [`seal`] refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// The plaintext is longer than [`MAX_PLAINTEXT_LEN`].
    #[error("plaintext of {len} bytes exceeds the envelope maximum of {max} bytes")]
    TooLarge {
        /// The plaintext's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
}

/// The one error for every failure to open a blob: wrong key, tampering,
/// truncation, wrong kind, wrong context, bad padding. Deliberately coarse,
/// so that failures are no oracle.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("sealed blob could not be opened")]
pub struct OpenError;

/// The padded size for a plaintext of `len` bytes (the length prefix
/// included), as [`seal`] writes it: powers of two from 256 B to 1 KiB,
/// quarter octaves to 16 KiB (1280, 1536, 1792, 2048, 2560, ... 14336,
/// 16384: at most a quarter more than the bytes padded), then multiples of
/// 4 KiB.
pub const fn bucket_len(len: usize) -> usize {
    let n = len + LEN_PREFIX;
    if n <= POW2_BUCKETS_UP_TO || n > QUARTER_BUCKETS_UP_TO {
        pow2_bucket_len(len)
    } else {
        // n is in (2^k, 2^(k+1)]: steps of 2^(k-2), at least 256 here.
        let step = n.next_power_of_two() / 8;
        n.div_ceil(step) * step
    }
}

/// Version 1's padded size: powers of two from 256 B to 4 KiB, then
/// multiples of 4 KiB. Version 2 differs only between 1 KiB and 16 KiB.
const fn pow2_bucket_len(len: usize) -> usize {
    let n = len + LEN_PREFIX;
    if n <= MIN_BUCKET {
        MIN_BUCKET
    } else if n <= PAGE_BUCKET {
        n.next_power_of_two()
    } else {
        n.div_ceil(PAGE_BUCKET) * PAGE_BUCKET
    }
}

/// The padded size of a blob of envelope `version` (one this code opens).
const fn bucket_len_of(version: u8, len: usize) -> usize {
    if version == POW2_VERSION {
        pow2_bucket_len(len)
    } else {
        bucket_len(len)
    }
}

/// The exact size of the blob [`seal`] produces for a plaintext of `len` bytes.
pub const fn sealed_len(len: usize) -> usize {
    OVERHEAD + bucket_len(len)
}

fn header(version: u8, kind: Kind) -> [u8; HEADER_LEN] {
    [
        MAGIC[0],
        MAGIC[1],
        MAGIC[2],
        MAGIC[3],
        version,
        kind.to_byte(),
    ]
}

fn aad(header: &[u8], context: &Context) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + context.0.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(&context.0);
    aad
}

fn cipher<K: EnvelopeKey>(key: &K) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&(*private::Sealed::key_bytes(key)).into())
}

/// Seals `plaintext` as a blob of `kind` bound to `context`.
pub fn seal<K: EnvelopeKey, R: CryptoRng + ?Sized>(
    key: &K,
    kind: Kind,
    context: &Context,
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, SealError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(SealError::TooLarge {
            len: plaintext.len(),
            max: MAX_PLAINTEXT_LEN,
        });
    }
    let padded = bucket_len(plaintext.len());
    let mut out = vec![0u8; OVERHEAD + padded];
    let hdr = header(VERSION, kind);
    out[..HEADER_LEN].copy_from_slice(&hdr);
    let (nonce, body) = out[HEADER_LEN..].split_at_mut(NONCE_LEN);
    rng.fill_bytes(nonce);
    let nonce = XNonce::try_from(&*nonce).expect("nonce slice is 24 bytes");
    let (body, tag_out) = body.split_at_mut(padded);
    let len = u32::try_from(plaintext.len()).expect("bounded by MAX_PLAINTEXT_LEN");
    body[..LEN_PREFIX].copy_from_slice(&len.to_le_bytes());
    body[LEN_PREFIX..LEN_PREFIX + plaintext.len()].copy_from_slice(plaintext);
    let tag = cipher(key)
        .encrypt_inout_detached(&nonce, &aad(&hdr, context), body.into())
        .expect("padded length is far below XChaCha20-Poly1305's limit");
    tag_out.copy_from_slice(&tag);
    Ok(out)
}

/// Opens a blob sealed by [`seal`] with the same key, kind and context.
/// The plaintext is wiped from memory when the returned buffer is dropped.
pub fn open<K: EnvelopeKey>(
    key: &K,
    kind: Kind,
    context: &Context,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if sealed.len() < OVERHEAD + MIN_BUCKET || sealed.len() > MAX_SEALED_LEN {
        return Err(OpenError);
    }
    // The version byte is authenticated (it is in the AAD): a relay that
    // rewrites it makes the blob unopenable, never read by the other rule.
    let version = sealed[4];
    if version != VERSION && version != POW2_VERSION {
        return Err(OpenError);
    }
    let hdr = header(version, kind);
    if sealed[..HEADER_LEN] != hdr {
        return Err(OpenError);
    }
    let padded = sealed.len() - OVERHEAD;
    // Only canonical bucket sizes are ever written; anything else was altered.
    if padded < LEN_PREFIX || bucket_len_of(version, padded - LEN_PREFIX) != padded {
        return Err(OpenError);
    }
    let nonce =
        XNonce::try_from(&sealed[HEADER_LEN..HEADER_LEN + NONCE_LEN]).map_err(|_| OpenError)?;
    let body_start = HEADER_LEN + NONCE_LEN;
    let tag_start = body_start + padded;
    let tag = chacha20poly1305::Tag::try_from(&sealed[tag_start..]).map_err(|_| OpenError)?;
    let mut body = Zeroizing::new(sealed[body_start..tag_start].to_vec());
    cipher(key)
        .decrypt_inout_detached(
            &nonce,
            &aad(&hdr, context),
            body.as_mut_slice().into(),
            &tag,
        )
        .map_err(|_| OpenError)?;
    let mut len_bytes = [0u8; LEN_PREFIX];
    len_bytes.copy_from_slice(&body[..LEN_PREFIX]);
    let len = u32::from_le_bytes(len_bytes) as usize;
    // Authenticated by now, so these checks cannot leak anything to a forger;
    // they catch a sealing bug or a forged-with-the-key blob.
    if len > padded - LEN_PREFIX
        || bucket_len_of(version, len) != padded
        || body[LEN_PREFIX + len..].iter().any(|&b| b != 0)
    {
        return Err(OpenError);
    }
    body.copy_within(LEN_PREFIX..LEN_PREFIX + len, 0);
    body.truncate(len);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        assert_eq!(pow2_bucket_len(0), 256);
        assert_eq!(pow2_bucket_len(252), 256);
        assert_eq!(pow2_bucket_len(253), 512);
        assert_eq!(pow2_bucket_len(4092), 4096);
        assert_eq!(pow2_bucket_len(4093), 8192);
        assert_eq!(pow2_bucket_len(8188), 8192);
        assert_eq!(pow2_bucket_len(8189), 12288);
        assert_eq!(pow2_bucket_len(65536), 69632);
        // Version 2 differs only between 1 KiB and 16 KiB.
        for len in (0..1021).chain(16_381..70_000) {
            assert_eq!(bucket_len(len), pow2_bucket_len(len), "{len}");
        }
        assert_eq!(bucket_len(1021), 1280);
        assert_eq!(bucket_len(8189), 10240);
        assert_eq!(MAX_SEALED_LEN, OVERHEAD + 16 * 1024 * 1024 + 4096);
    }
}
