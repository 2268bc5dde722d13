//! Vigil: an end-to-end encrypted, local-first vault for the health log a
//! resident keeps during a monitoring period.
//!
//! This facade re-exports what resident apps need: the crypto core
//! ([`crypto`]), the health log ([`log`]) and the device vault ([`device`]).
//! Sync, alerts and shredding join them as they land.
#![forbid(unsafe_code)]

pub use vigil_crypto as crypto;
pub use vigil_device as device;
pub use vigil_log as log;
