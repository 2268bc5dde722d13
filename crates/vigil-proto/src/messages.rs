//! Wire messages (docs/spec.md §9). Every blob is an opaque sealed envelope:
//! the relay moves bytes it cannot read.

use serde::{Deserialize, Serialize};

use crate::codec::MAX_VERSION_VECTOR;

/// A vault id (16 bytes), as on the wire.
pub type VaultIdBytes = [u8; 16];
/// A device id (16 bytes), as on the wire.
pub type DeviceIdBytes = [u8; 16];
/// A version vector: for each device, the highest bundle seq held
/// contiguously from 1. Sorted by device, no duplicates.
pub type VersionVector = Vec<(DeviceIdBytes, u64)>;

/// Reads a version vector of at most [`MAX_VERSION_VECTOR`] entries,
/// refusing a longer one from its length prefix, before any entry is read
/// or stored (serde's own `Vec` would build the whole list first).
fn bounded_vv<'de, D: serde::Deserializer<'de>>(d: D) -> Result<VersionVector, D::Error> {
    struct Bounded;
    impl<'de> serde::de::Visitor<'de> for Bounded {
        type Value = VersionVector;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(
                f,
                "a version vector of at most {MAX_VERSION_VECTOR} entries"
            )
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let too_long = || {
                serde::de::Error::custom(format_args!(
                    "version vector longer than {MAX_VERSION_VECTOR} entries"
                ))
            };
            if seq.size_hint().is_some_and(|n| n > MAX_VERSION_VECTOR) {
                return Err(too_long());
            }
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(e) = seq.next_element()? {
                if out.len() == MAX_VERSION_VECTOR {
                    return Err(too_long());
                }
                out.push(e);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Bounded)
}

/// One sealed bundle of a device's changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleItem {
    /// The author device.
    pub device: DeviceIdBytes,
    /// The author's bundle counter, from 1.
    pub seq: u64,
    /// The sealed envelope (kind LogBundle).
    #[serde(with = "crate::blob")]
    pub blob: Vec<u8>,
}

/// A sealed snapshot of the whole log covering a version vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotItem {
    /// What it covers.
    #[serde(deserialize_with = "bounded_vv")]
    pub covers: VersionVector,
    /// The sealed envelope (kind LogSnapshot).
    #[serde(with = "crate::blob")]
    pub blob: Vec<u8>,
}

/// Device → node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Opens a session; must come first.
    Hello {
        /// Protocol version the device speaks.
        version: u16,
    },
    /// Creates the vault's mailbox (first device only). Idempotent with the same verifier.
    Register {
        /// The vault.
        vault: VaultIdBytes,
        /// SHA-256 verifier of the mailbox key (never the key).
        verifier: [u8; 32],
        /// End of the monitoring period (ms); the node may delete the mailbox after it.
        expires_ms: i64,
    },
    /// Authenticates the session for one vault by presenting the mailbox key.
    Auth {
        /// The vault.
        vault: VaultIdBytes,
        /// The mailbox access key.
        key: [u8; 32],
    },
    /// Appends one sealed bundle.
    Push(BundleItem),
    /// Asks for every bundle the device lacks.
    Pull {
        /// What the device holds.
        #[serde(deserialize_with = "bounded_vv")]
        have: VersionVector,
        /// Stop adding bundles to the reply past this many bytes (at least one is sent).
        max_bytes: u32,
    },
    /// Stores a sealed snapshot; the node drops the bundles it covers.
    PushSnapshot(SnapshotItem),
    /// Leaves a wrapped root for a joining device (authenticated session).
    PairOffer {
        /// `SHA-256("vigil/v1/pair-slot" || joiner public key)`.
        slot: [u8; 32],
        /// The root wrapped to the joiner (82 bytes).
        #[serde(with = "crate::blob")]
        wrapped: Vec<u8>,
    },
    /// Fetches a wrapped root left for this joiner (no authentication).
    PairFetch {
        /// The joiner's slot.
        slot: [u8; 32],
    },
    /// Grants this node the fever-alert capability for one vault (no
    /// mailbox authentication: the wrapped key proves itself, §12).
    Grant(GrantWire),
    /// One sealed fever alert under a grant.
    Alert(AlertWire),
    /// Asks the node for a one-time X25519 key to wrap a grant's alert key
    /// to; the node destroys its secret when the grant ends, so copies of
    /// the grant stop unwrapping (§13).
    GrantKey,
    /// The period ended (or the resident ended it): delete the vault's
    /// mailbox and these grants with their alerts, now. Authenticated with
    /// the mailbox key, like `Auth`.
    Shred {
        /// The vault.
        vault: VaultIdBytes,
        /// The mailbox key.
        key: [u8; 32],
        /// The vault's grants on this node, each with the proof that the
        /// sender holds its alert key (§13): a grant is deleted only with it.
        grants: Vec<GrantDeletion>,
        /// The shred notice, sealed by the shredding device under the log
        /// key (docs/spec.md §13): the node hands it to the vault's other
        /// devices, which open it before shredding themselves.
        #[serde(with = "crate::blob")]
        notice: Vec<u8>,
    },
    /// Registers the vault's mailbox with a staff-issued enrolment ticket
    /// (§15): the only way to create a new vault's mailbox. The ticket is
    /// bound to this vault; the same vault (same verifier) may send it again.
    Enrol {
        /// The ticket's id.
        ticket: [u8; 16],
        /// The ticket's secret (inside TLS; the node keeps only its hash).
        secret: [u8; 32],
        /// The vault.
        vault: VaultIdBytes,
        /// SHA-256 verifier of the mailbox key (never the key).
        verifier: [u8; 32],
        /// End of the monitoring period (ms); the node caps it at the ticket's.
        expires_ms: i64,
    },
    /// Asks whether staff acknowledged this grant's delivered alerts
    /// (docs/spec.md §12). No mailbox authentication: `proof` shows the
    /// sender holds the grant's alert key, as `Shred` does for a deletion.
    /// The node answers for this grant's alerts only.
    AlertStatus(AlertStatusQuery),
}

/// Most alerts one `AlertStatus` may ask about.
pub const MAX_ALERT_STATUS: usize = 256;

/// A device's question about its own delivered alerts under one grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertStatusQuery {
    /// The grant.
    pub grant_id: [u8; 16],
    /// `AlertKey::status_proof(grant_id)` under the grant's alert key.
    pub proof: [u8; 32],
    /// The alerts asked about: (episode, kind), at most [`MAX_ALERT_STATUS`].
    pub alerts: Vec<([u8; 16], u8)>,
}

/// What the node knows of one alert a device asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    /// The episode.
    pub episode: [u8; 16],
    /// The kind (1 started, 2 ended).
    pub kind: u8,
    /// Whether the node holds it in its inbox.
    pub stored: bool,
    /// When staff acknowledged it, if they did (never who).
    pub acked_ms: Option<i64>,
}

/// One grant a `Shred` asks the node to delete, with its proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantDeletion {
    /// The grant.
    pub grant_id: [u8; 16],
    /// `AlertKey::shred_proof(vault, grant_id)` under the grant's alert key:
    /// only the vault that holds the grant (and the node) can compute it.
    pub proof: [u8; 32],
}

/// A fever-alert grant as the node receives it. Everything but the alert
/// key is plaintext to the node, by design: the resident consents to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantWire {
    /// `SHA-256("vigil/v1/grant-id" || alert key)[..16]`.
    pub grant_id: [u8; 16],
    /// The one-time X25519 key the node issued for this grant (`GrantKey`).
    pub grant_key: [u8; 32],
    /// The alert key wrapped to `grant_key` (82 bytes).
    #[serde(with = "crate::blob")]
    pub wrapped_key: Vec<u8>,
    /// Threshold, °C.
    pub threshold_c: f64,
    /// Readings at or above the threshold that confirm an episode.
    pub confirm_count: u32,
    /// Within how long, ms.
    pub confirm_window_ms: i64,
    /// Below the threshold for this long ends an episode, ms.
    pub recovery_ms: i64,
    /// First instant of validity (the period's start), ms.
    pub valid_from_ms: i64,
    /// First instant after validity (the period's end), ms.
    pub valid_until_ms: i64,
    /// What the resident chose to share (≤ 200 characters).
    pub label: String,
}

/// One sealed alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertWire {
    /// The grant.
    pub grant_id: [u8; 16],
    /// The episode id (the same on every device that sees the episode).
    pub episode: [u8; 16],
    /// 1 = episode started, 2 = episode ended.
    pub kind: u8,
    /// The sealed alert (kind Alert, the grant's alert key).
    #[serde(with = "crate::blob")]
    pub blob: Vec<u8>,
}

/// Node → device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Session open.
    HelloOk {
        /// Protocol version the node speaks.
        version: u16,
    },
    /// The request succeeded (Register, Auth, PairOffer).
    Ok,
    /// A bundle or snapshot is durably stored.
    Ack {
        /// The bundle's author (or zero for a snapshot).
        device: DeviceIdBytes,
        /// Its seq (or 0 for a snapshot).
        seq: u64,
    },
    /// What the device lacks, in (device, seq) order.
    Bundles {
        /// A snapshot to start from, if the node dropped bundles the device lacks.
        snapshot: Option<SnapshotItem>,
        /// The bundles.
        bundles: Vec<BundleItem>,
        /// Whether more remain (pull again with the updated vector).
        more: bool,
    },
    /// Nothing new.
    UpToDate,
    /// The wrapped root left for this joiner.
    PairOffer {
        /// The root wrapped to the joiner.
        #[serde(with = "crate::blob")]
        wrapped: Vec<u8>,
    },
    /// The request was refused.
    Error(ProtoError),
    /// The alert is verified and in the inbox (`stored` is false when it
    /// already was: a duplicate from another device or a retry).
    AlertAck {
        /// Whether this request added it.
        stored: bool,
    },
    /// A signed deletion receipt (§13).
    Receipt(#[serde(with = "crate::blob")] Vec<u8>),
    /// A one-time grant key.
    GrantKey {
        /// Its public half.
        public: [u8; 32],
    },
    /// The ticket is bound to the vault: what staff set for it.
    Enrolled {
        /// The label staff typed: what they see with this resident's alerts.
        label: String,
        /// The end of the period staff set: the mailbox and the grant end then.
        period_end_ms: i64,
    },
    /// The answer to `AlertStatus`: one entry per alert asked, in order.
    AlertStatus(Vec<AlertState>),
}

/// Typed protocol errors the node returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The node does not speak this version.
    #[error("unsupported protocol version; the node speaks {supported}")]
    UnsupportedVersion {
        /// Version the node speaks.
        supported: u16,
    },
    /// Hello must come first.
    #[error("say hello first")]
    HelloFirst,
    /// The request needs an authenticated session.
    #[error("not authenticated")]
    NotAuthenticated,
    /// Wrong mailbox key.
    #[error("mailbox key refused")]
    Unauthorized,
    /// No such vault on this node.
    #[error("unknown vault")]
    UnknownVault,
    /// A different verifier is already registered for this vault.
    #[error("vault already registered with another key")]
    AlreadyRegistered,
    /// A per-vault quota would be exceeded.
    #[error("quota exceeded: {what} limit is {limit}")]
    QuotaExceeded {
        /// `bytes` or `blobs`.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A different bundle is already stored at this (device, seq).
    #[error("a different bundle is already stored at this device and seq")]
    Conflict,
    /// Bundles must arrive in order: seq must be the author's next.
    #[error("bundle seq {got} out of order; expected {expected}")]
    OutOfOrder {
        /// The seq expected next.
        expected: u64,
        /// The seq given.
        got: u64,
    },
    /// Nothing at that pairing slot.
    #[error("nothing to fetch at that slot")]
    NotFound,
    /// The frame could not be decoded.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The node failed internally (storage); try again later.
    #[error("node error: {0}")]
    Internal(String),
    /// No such grant on this node.
    #[error("unknown grant")]
    UnknownGrant,
    /// The grant was revoked or has expired.
    #[error("grant revoked or expired")]
    GrantRevoked,
    /// The grant's key does not unwrap with this node's key, or does not match its id.
    #[error("grant key does not belong to this node or this grant")]
    BadGrant,
    /// The alert does not open under the grant's key (forged or altered).
    #[error("alert does not verify")]
    ForgedAlert,
    /// The alert's onset lies outside the grant's validity window.
    #[error("alert outside the grant's validity window")]
    OutsideWindow,
    /// This node does not issue receipts (no signing key configured).
    #[error("this node cannot sign receipts")]
    NoReceipts,
    /// The vault's period is over: its mailbox cannot be created or used.
    #[error("the monitoring period is over")]
    PeriodOver,
    /// The pairing slot already holds an offer (the first writer wins, so a
    /// second device racing for a joiner's slot is refused, not swapped in).
    #[error("that pairing slot already holds an offer")]
    SlotTaken,
    /// The vault was shredded before its period's end (by one of its
    /// devices): its mailbox cannot be recreated or used.
    #[error("this vault was shredded on another device")]
    VaultShredded {
        /// The sealed notice the shredding device left (opaque to the node).
        #[serde(with = "crate::blob")]
        notice: Vec<u8>,
    },
    /// A node-wide cap would be exceeded (vaults, grant keys, pairing
    /// slots, disk): the node is full for now, whoever asks.
    #[error("the node is full: its {what} limit is {limit}")]
    NodeFull {
        /// `vaults`, `grant keys`, `pairing slots` or `disk bytes`.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// `Register` asked for a period ending further ahead than the node
    /// keeps a mailbox.
    #[error("the period ends too far ahead: this node keeps a mailbox until {latest_ms} at most")]
    ExpiryTooFar {
        /// The latest end of period the node accepts now, ms.
        latest_ms: i64,
    },
    /// A list in the request has more entries than the node accepts.
    #[error("too many entries: the {what} list may hold {limit}")]
    TooManyEntries {
        /// `have` or `covers`.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A new vault's mailbox, or a grant, needs an enrolment ticket from
    /// staff (§15).
    #[error("this node enrols residents with a ticket from staff only")]
    TicketRequired,
    /// No ticket with that id and secret (a wrong secret reads the same).
    #[error("enrolment ticket not recognised")]
    TicketUnknown,
    /// The ticket is already bound to another vault, or the vault's ticket
    /// to another grant.
    #[error("enrolment ticket already used")]
    TicketUsed,
    /// The ticket's period is over.
    #[error("enrolment ticket expired")]
    TicketExpired,
    /// Staff revoked the ticket (or the resident it enrolled).
    #[error("enrolment ticket revoked")]
    TicketRevoked,
    /// The vault is already enrolled with another ticket.
    #[error("this vault is already enrolled with another ticket")]
    AlreadyEnrolled,
}
