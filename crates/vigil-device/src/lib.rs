//! The resident side of Vigil: a [`Vault`] holds one monitoring period's
//! health log, its keys, and an encrypted store in which nothing is plaintext
//! but non-sensitive metadata (docs/spec.md §8).
//!
//! ```
//! use vigil_device::{MemStorage, MemoryKeyStore, Period, Vault};
//! use vigil_log::{Metric, Unit};
//! # use vigil_crypto::rand_core::UnwrapErr;
//! # let mut rng = UnwrapErr(getrandom::SysRng);
//! let keys = MemoryKeyStore::new();
//! let period = Period::days(1_790_000_000_000, 7);
//! let mut vault = Vault::create_with(Box::new(MemStorage::new()), period, Box::new(keys.clone()), &mut rng)?;
//! vault.record(Metric::BodyTemperature, 36.9, Unit::Celsius, period.start_ms + 60_000)?;
//! assert_eq!(vault.log().len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod alerts;
mod disclosure;
mod error;
mod faults;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod journal;
mod keystore;
mod layout;
mod pairing;
mod period;
mod recover;
mod schedule;
mod shred;
mod storage;
mod sync;
mod vault;

pub use alerts::{
    AlertReport, AlertStatusReport, DELIVERY_DEADLINE_MS, DeliveredAlert, Grant, PendingAlert,
};
pub use disclosure::Disclosure;
pub use error::{OpenError, SyncFailure, WriteError};
#[cfg(feature = "fault-injection")]
pub use faults::DeviceFault;
pub use journal::DEFAULT_COMPACT_EVERY;
pub use keystore::{FileKeyStore, KeyFate, KeyStore, KeyStoreError, MemoryKeyStore};
pub use layout::{RecordError, STORE_FORMAT};
pub use pairing::{PendingJoin, pairing_slot};
pub use period::Period;
pub use recover::{RecoverError, Recovery};
pub use schedule::{DEFAULT_MAX_RETRY_MS, DEFAULT_RETRY_MS, DEFAULT_SYNC_EVERY_MS, SyncSchedule};
pub use shred::{ShredError, Tombstone};
pub use storage::{
    Batch, DAMAGED_PREFIX, DEFAULT_LOCK_WAIT, Entries, MARKER_FILE, MemStorage, SledStorage,
    Storage, StorageError, TOMBSTONE_FILE,
};
pub use sync::{SnapshotPolicy, SyncReport};
pub use vault::{Enrolment, Vault};
pub use vigil_proto::{Ticket, TicketId, TicketSecret};
