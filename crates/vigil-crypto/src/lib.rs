//! Vigil's crypto core: secret key types, the HKDF key schedule, sealed
//! envelopes, X25519 key wrapping and the pairing code.
//!
//! Nothing here does I/O or reads a clock; randomness is always a parameter
//! (`rand_core::CryptoRng`), so tests and the simulation run deterministically.
//! The formats are specified in `docs/spec.md`, cited section by section.
//!
//! ```
//! use vigil_crypto::{open, seal, Context, KeySchedule, Kind, RootKey};
//! # use vigil_crypto::rand_core::UnwrapErr;
//! # let mut rng = UnwrapErr(getrandom::SysRng);
//! let keys = KeySchedule::new(RootKey::generate(&mut rng));
//! let ctx = Context::new("example").bytes(keys.vault_id().as_bytes()).u64(1);
//! let blob = seal(&keys.log_key(), Kind::LogBundle, &ctx, b"37.1 C", &mut rng).unwrap();
//! let plain = open(&keys.log_key(), Kind::LogBundle, &ctx, &blob).unwrap();
//! assert_eq!(&plain[..], b"37.1 C");
//! ```
#![forbid(unsafe_code)]

mod envelope;
mod joiner;
mod keys;
mod sas;
mod sign;
mod ticket;
mod wrap;

#[cfg(test)]
mod wycheproof;

pub use envelope::{
    Context, EnvelopeKey, HEADER_LEN, Kind, MAGIC, MAX_PLAINTEXT_LEN, MAX_SEALED_LEN, MIN_BUCKET,
    NONCE_LEN, OVERHEAD, OpenError, PAGE_BUCKET, POW2_BUCKETS_UP_TO, POW2_VERSION,
    QUARTER_BUCKETS_UP_TO, SealError, TAG_LEN, VERSION, bucket_len, open, seal, sealed_len,
};
pub use joiner::{JOINER_CODE_PREFIX, JoinerCodeError, joiner_code, parse_joiner_code};
pub use keys::{
    AlertKey, IndexKey, KeySchedule, LogKey, MailboxKey, MailboxVerifier, NodeId, RootKey,
    StoreKey, VaultId,
};
pub use rand_core;
pub use sas::ShortAuthCode;
pub use sign::{SIGNATURE_LEN, SigningIdentity, VerifyKey};
pub use subtle::ConstantTimeEq;
pub use ticket::{TicketId, TicketSecret, TicketVerifier};
pub use wrap::{
    UnwrapError, WRAP_VERSION, WRAPPED_LEN, WrapError, Wrappable, WrappedKey, X25519Identity,
    X25519PublicKey, unwrap, wrap,
};
pub use zeroize::Zeroizing;
