//! Vigil: an end-to-end encrypted, local-first vault for the health log a
//! resident keeps during a monitoring period.
//!
//! This facade re-exports what resident apps need. Today that is the crypto
//! core ([`crypto`]); the log, the device vault and sync join it as they land.
#![forbid(unsafe_code)]

pub use vigil_crypto as crypto;
