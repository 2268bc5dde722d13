//! Vigil: an end-to-end encrypted, local-first vault for the health log a
//! resident keeps during a monitoring period.
//!
//! This crate is what a resident app links: the [`Vault`] and the types it
//! speaks (the period, key stores, storage, sync, pairing, fever alerts,
//! disclosures, shredding), the health log's types ([`Metric`], [`Reading`],
//! [`FeverRule`], ...) and, with the default `net` feature, the connection
//! to a community node ([`DeviceConnection`], [`EnrolmentCode`]). Keys,
//! envelopes and the wire format stay inside the crates that own them.
//!
//! A resident's week, against a node reached through its enrolment code:
//!
//! ```no_run
//! use std::time::Duration;
//! use vigil::{DeviceConnection, FeverRule, FileKeyStore, Metric, Period, TicketCode, Vault};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (ticket_text, start) = ("vigil-ticket1/...", 1_790_000_000_000);
//! // Scanned from the ticket staff handed out with the wristband.
//! let ticket: TicketCode = ticket_text.parse()?;
//! let code = &ticket.node;
//! let keys = FileKeyStore::new("/data/vigil.key");
//! let mut vault = Vault::create(
//!     "/data/vigil".as_ref(),
//!     Period::days(start, 7),
//!     Box::new(keys.clone()),
//!     &mut vigil::os_rng(),
//! )?;
//! let mut node = DeviceConnection::connect(code, Duration::from_secs(5))?;
//! // Allow the node fever alerts for this period, and nothing else; the
//! // node shows them under the label staff set in the ticket.
//! let grant = vault.enrol(&mut node, &code.node_public, &ticket.ticket, FeverRule::default(), start)?;
//! println!("staff will see your alerts as {:?}", grant.label);
//! vault.record(Metric::BodyTemperature, 38.4, Metric::BodyTemperature.unit(), start + 60_000)?;
//! vault.sync(&mut node)?; // the sealed log, to the resident's other devices
//! vault.send_alerts(&mut node, &code.node_public, start + 60_000)?;
//! // At the period's end: the node deletes, then every key is destroyed.
//! let tombstone = vault.shred_with_node(&mut node, &keys, start + 7 * 86_400_000)?;
//! assert!(tombstone.receipt.is_some());
//! # Ok(()) }
//! ```
//!
//! The same flow without a network, which runs as a test:
//!
//! ```
//! use vigil::{MemStorage, MemoryKeyStore, Metric, Period, Unit, Vault};
//!
//! let keys = MemoryKeyStore::new();
//! let period = Period::days(1_790_000_000_000, 7);
//! let mut vault = Vault::create_with(
//!     Box::new(MemStorage::new()),
//!     period,
//!     Box::new(keys.clone()),
//!     &mut vigil::os_rng(),
//! )?;
//! let id = vault.record(Metric::BodyTemperature, 36.9, Unit::Celsius, period.start_ms + 60_000)?;
//! vault.annotate(id, "after a walk")?;
//! assert_eq!(vault.log().len(), 1);
//! assert!(vault.is_due(period.end_ms));
//! let tombstone = vault.shred_now(&keys, period.end_ms)?;
//! assert_eq!(tombstone.period, period);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Features: `net` (default) adds the QUIC connection to a node; `node`
//! adds [`node`], a community node to run in-process (for examples, tests
//! and embedding).
#![forbid(unsafe_code)]

// The vault and its components.
pub use vigil_device::{
    AlertReport, AlertStatusReport, Batch, DELIVERY_DEADLINE_MS, DeliveredAlert, Disclosure,
    Enrolment, Entries, FileKeyStore, Grant, KeyStore, KeyStoreError, MemStorage, MemoryKeyStore,
    OpenError, PendingAlert, PendingJoin, Period, RecordError, ShredError, SledStorage,
    SnapshotPolicy, Storage, StorageError, SyncFailure, SyncReport, SyncSchedule, TOMBSTONE_FILE,
    Ticket, TicketId, TicketSecret, Tombstone, Vault, WriteError,
};

// The health log, the decoder of a wristband's Bluetooth GATT values
// (what `Vault::record_gatt` reads), and the log's FHIR R4 export.
pub use vigil_log::{
    ChangeHash, Conflict, DailySummary, Day, DeviceId, FeverEpisode, FeverRule, HealthLog,
    LogError, LogView, MAX_LABEL_CHARS, MAX_TEXT_CHARS, Metric, Reading, ReadingId, Retraction,
    RuleError, Severity, Symptom, Unit,
};
pub use vigil_log::{fhir, gatt};

// What a `KeyStore` implementation holds (an app's platform keystore).
pub use vigil_crypto::RootKey;

// Pairing: the joiner's key, the code that carries it to the first device
// (`vigil-join1/...`), and the code both screens show.
pub use vigil_crypto::{
    JOINER_CODE_PREFIX, JoinerCodeError, ShortAuthCode, VaultId, X25519Identity, X25519PublicKey,
    joiner_code, parse_joiner_code,
};

// Fever alerts as the node records them, and its deletion receipts.
pub use vigil_proto::alert::{ALERT_END, ALERT_START};
pub use vigil_proto::receipt::{BadReceipt, ReceiptBody, verify_receipt};

// The vault talks to a node through any `Exchange`: the QUIC connection
// below, or an app's own transport, which names the node it reaches.
pub use vigil_crypto::NodeId;
pub use vigil_proto::{Exchange, ExchangeError};

// What a failed exchange says: why the node closed, what it refused.
pub use vigil_proto::{CloseReason, CodecError, ProtoError, SyncError};

/// The connection to a community node.
#[cfg(feature = "net")]
pub use vigil_net::{DeviceConnection, EnrolmentCode, NetError, TicketCode};

/// Random numbers as the vault's constructors and pairing take them.
pub use vigil_crypto::rand_core::CryptoRng;

/// The operating system's random number generator (panics if the OS has
/// none, which no supported platform lacks).
pub fn os_rng() -> impl CryptoRng {
    vigil_crypto::rand_core::UnwrapErr(getrandom::SysRng)
}

#[cfg(feature = "node")]
pub mod node;
