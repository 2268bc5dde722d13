//! The network half of the resident flow: a [`Node`] connection, enrolment
//! with the staff ticket, sync, fever alerts, pairing a second device
//! ([`Vault::offer_pairing`] on the first, a [`Joiner`] on the new one) and
//! the shred that asks the node to delete first.
//!
//! Every call blocks on the network (up to the node's timeouts), so apps
//! call them off their main thread. A call that uses both a vault and a
//! node locks the vault first, then the node: no call locks them the other
//! way round, so two threads cannot deadlock on them.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use vigil::{DeviceConnection, EnrolmentCode, SyncFailure, TicketCode};
use zeroize::Zeroizing;

use crate::keystore::Adapter;
use crate::local::hex;
use crate::net_error::{NetError, SyncError};
use crate::{KeyStore, Vault};

// The records the network calls share with the local ones (one type each).
pub use crate::local::{FeverRule, Grant, PendingAlert};

/// The longest code or ticket accepted, in bytes: real ones are under 400
/// (an IPv6 address and four keys); anything longer is refused before it
/// is parsed or echoed in a message.
pub const MAX_CODE_BYTES: u64 = 1024;

fn too_long(what: &str, len: usize) -> String {
    format!("a {what} of {len} bytes is too long (at most {MAX_CODE_BYTES})")
}

fn fits(s: &str) -> bool {
    u64::try_from(s.len()).is_ok_and(|n| n <= MAX_CODE_BYTES)
}

/// A connection to one community node, reached through its enrolment code
/// (`vigil1/...`) or a resident's ticket (`vigil-ticket1/...`, which also
/// enrols). The node's certificate is pinned by the code. A connection
/// lost in a call is made again by the next call.
#[derive(Debug, uniffi::Object)]
pub struct Node {
    code: EnrolmentCode,
    // Holds the ticket's secret (zeroized on drop, redacted in Debug).
    ticket: Option<TicketCode>,
    timeout: Duration,
    conn: Mutex<Option<DeviceConnection>>,
}

impl Node {
    fn lock(&self) -> MutexGuard<'_, Option<DeviceConnection>> {
        // A connection left by a panicking call is at worst broken, which
        // the next exchange reports (and the call after reconnects).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the connection, connecting first if there is none; a
    /// transport failure drops the connection so that the next call
    /// reconnects.
    fn run<T>(
        &self,
        f: impl FnOnce(&mut DeviceConnection) -> Result<T, SyncFailure>,
    ) -> Result<T, SyncError> {
        let mut guard = self.lock();
        let conn = match guard.take() {
            Some(c) => c,
            None => DeviceConnection::connect(&self.code, self.timeout).map_err(NetError::from)?,
        };
        let conn = guard.insert(conn);
        let r = f(conn);
        if let Err(SyncFailure::Transport(_)) = r
            && let Some(c) = guard.take()
        {
            c.close();
        }
        Ok(r?)
    }

    fn node_public(&self) -> vigil::X25519PublicKey {
        self.code.node_public
    }
}

#[uniffi::export]
impl Node {
    /// Connects to the node named by `code`: an enrolment code
    /// (`vigil1/...`) or a ticket (`vigil-ticket1/...`), within
    /// `timeout_ms` milliseconds. A malformed code raises
    /// `NetError.BadEnrolmentCode`.
    #[uniffi::constructor]
    pub fn connect(code: String, timeout_ms: u32) -> Result<Arc<Self>, NetError> {
        let code = Zeroizing::new(code);
        if !fits(&code) {
            return Err(NetError::BadEnrolmentCode {
                detail: too_long("code", code.len()),
            });
        }
        let (node, ticket) = if code.trim_start().starts_with("vigil-ticket1") {
            let t: TicketCode = code.parse()?;
            (t.node.clone(), Some(t))
        } else {
            (code.parse::<EnrolmentCode>()?, None)
        };
        let timeout = Duration::from_millis(timeout_ms.into());
        let conn = DeviceConnection::connect(&node, timeout)?;
        Ok(Arc::new(Node {
            code: node,
            ticket,
            timeout,
            conn: Mutex::new(Some(conn)),
        }))
    }

    /// The node's enrolment code (`vigil1/...`: no ticket secret in it),
    /// what a joining device connects with.
    pub fn enrolment_code(&self) -> String {
        self.code.to_string()
    }

    /// The node's address, `ip:port`.
    pub fn address(&self) -> String {
        self.code.addr.to_string()
    }

    /// Whether this node was connected from a ticket (and so may enrol).
    pub fn has_ticket(&self) -> bool {
        self.ticket.is_some()
    }

    /// Closes the connection now (the next call reconnects). Not `close`:
    /// that is the generated Kotlin object's own (it frees the Rust side).
    pub fn disconnect(&self) {
        if let Some(c) = self.lock().take() {
            c.close();
        }
    }
}

/// The rule Vigil uses when the app gives none.
#[uniffi::export]
pub fn default_fever_rule() -> FeverRule {
    vigil::FeverRule::default().into()
}

/// The rule as the library takes it, checked as `vigil enrol` checks it.
fn checked_rule(rule: Option<FeverRule>) -> Result<vigil::FeverRule, SyncError> {
    let Some(r) = rule else {
        return Ok(vigil::FeverRule::default());
    };
    let rule = vigil::FeverRule {
        threshold_c: r.threshold_c,
        confirm_count: usize::try_from(r.confirm_count).unwrap_or(usize::MAX),
        confirm_window_ms: r.confirm_window_ms,
        recovery_ms: r.recovery_ms,
    };
    rule.validate().map_err(|e| SyncError::InvalidRule {
        detail: e.to_string(),
    })?;
    // A zero window could never confirm two readings (the node accepts it).
    if rule.confirm_window_ms <= 0 {
        return Err(SyncError::InvalidRule {
            detail: "the confirm window must be longer than zero".into(),
        });
    }
    Ok(rule)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// What enrolling did.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Enrolled {
    /// The grant (its label is the one staff set).
    pub grant: Grant,
    /// Alerts already due that were delivered right away.
    pub alerts_delivered: u64,
    /// Why alerts already due could not be sent yet (the next
    /// `send_alerts` retries), if they could not.
    pub alerts_error: Option<String>,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Own change bundles the node acknowledged.
    pub pushed: u64,
    /// Bundles received and applied.
    pub received: u64,
    /// Whether a snapshot was received and applied.
    pub received_snapshot: bool,
    /// Blobs that did not open (tampered or not ours), ignored.
    pub rejected: u64,
    /// Whether this device uploaded a snapshot.
    pub uploaded_snapshot: bool,
}

/// What sending alerts did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AlertReport {
    /// Alerts the node acknowledged in this call.
    pub delivered: u64,
    /// Alerts still waiting.
    pub pending: u64,
}

/// What asking the node about staff acknowledgement learnt.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AlertStatusReport {
    /// Delivered alerts asked about (those not yet known acknowledged).
    pub asked: u64,
    /// Alerts newly known acknowledged by staff.
    pub acknowledged: u64,
    /// Alerts whose state the node did not tell (an older node, or one
    /// refusing the question): still unknown, and nothing failed.
    pub unknown: u64,
}

/// The node's signed deletion receipt, verified against its code.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Receipt {
    /// When the node deleted the mailbox, ms (node clock).
    pub deleted_at_ms: i64,
    /// Bundles and snapshots deleted.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Grants deleted.
    pub grants: u64,
    /// Alerts deleted.
    pub alerts: u64,
    /// Alerts staff had not seen yet, kept until they do or the period ends.
    pub kept_unseen_alerts: u64,
    /// Devices (hex ids) the node tells of the shred at their next contact.
    pub devices: Vec<String>,
}

/// What a shred with the node left: the tombstone's facts and the receipt.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ShredReport {
    /// The vault shredded (hex).
    pub vault_id: String,
    /// When, ms.
    pub shredded_at_ms: i64,
    /// SHA-256 of the node's receipt (hex): what the tombstone keeps of it.
    pub receipt_sha256: Option<String>,
    /// The receipt, if the node sent one that verifies.
    pub receipt: Option<Receipt>,
    /// The node sent a receipt that does not verify against its code.
    pub receipt_invalid: bool,
    /// Why the node was not asked to delete (then its sweeper deletes the
    /// mailbox when the period ends), if it was not.
    pub node_error: Option<String>,
}

/// The network calls on a vault.
#[uniffi::export]
impl Vault {
    /// Enrols with the node connected from the resident's ticket: registers
    /// the vault's mailbox and grants the node fever alerts for this period
    /// under `rule` (the default rule if none), then sends alerts already
    /// due. Raises `NoTicket` on a node connected from a plain code.
    pub fn enrol(
        &self,
        node: Arc<Node>,
        rule: Option<FeverRule>,
        now_ms: i64,
    ) -> Result<Enrolled, SyncError> {
        let ticket = node.ticket.as_ref().ok_or(SyncError::NoTicket)?;
        let rule = checked_rule(rule)?;
        let public = node.node_public();
        let (grant, sent) = self.with(|v| {
            node.run(|c| {
                let grant = v.enrol(c, &public, &ticket.ticket, rule, now_ms)?;
                // Already enrolled whatever happens now: a failure here is
                // reported, and `send_alerts` retries.
                Ok((grant, v.send_alerts(c, &public, now_ms)))
            })
        })?;
        let (alerts_delivered, alerts_error) = match sent {
            Ok(r) => (count(r.delivered), None),
            Err(e) => (0, Some(e.to_string())),
        };
        Ok(Enrolled {
            grant: grant.into(),
            alerts_delivered,
            alerts_error,
        })
    }

    /// Syncs the log with the node: pushes this device's new changes,
    /// pulls the other devices'. If another device shredded the vault, this
    /// one is shredded too (`ShreddedElsewhere`) and this object closed.
    pub fn sync(&self, node: Arc<Node>) -> Result<SyncReport, SyncError> {
        let r = self.with(|v| node.run(|c| v.sync(c)));
        if let Err(SyncError::ShreddedElsewhere { .. }) = &r {
            // Its store is gone; dropping it zeroizes its keys.
            let _ = self.take();
        }
        let r = r?;
        Ok(SyncReport {
            pushed: count(r.pushed),
            received: count(r.received),
            received_snapshot: r.received_snapshot,
            rejected: count(r.rejected),
            uploaded_snapshot: r.uploaded_snapshot,
        })
    }

    /// Evaluates the fever rule, then sends every alert waiting for this
    /// node (the device must have enrolled with it).
    pub fn send_alerts(&self, node: Arc<Node>, now_ms: i64) -> Result<AlertReport, SyncError> {
        let public = node.node_public();
        let r = self.with(|v| node.run(|c| v.send_alerts(c, &public, now_ms)))?;
        Ok(AlertReport {
            delivered: count(r.delivered),
            pending: count(r.pending),
        })
    }

    /// Asks the node whether staff acknowledged this device's delivered
    /// alerts (those not yet known acknowledged) and stores the answer;
    /// `delivered_alerts` then shows it. Call it after `send_alerts`. An
    /// older node, or one refusing the question, leaves the state unknown
    /// and raises nothing; only the network or the protocol failing does.
    pub fn refresh_alert_status(&self, node: Arc<Node>) -> Result<AlertStatusReport, SyncError> {
        let public = node.node_public();
        let r = self.with(|v| node.run(|c| v.refresh_alert_status(c, &public)))?;
        Ok(AlertStatusReport {
            asked: count(r.asked),
            acknowledged: count(r.acknowledged),
            unknown: count(r.unknown),
        })
    }

    /// First device of a pairing: leaves the vault's root at the node,
    /// wrapped to the new device's `joiner_code` (`vigil-join1/...`), and
    /// returns the code both screens must show (`"048 213"`). A mistyped
    /// joiner code is refused before anything is sent.
    pub fn offer_pairing(
        &self,
        node: Arc<Node>,
        joiner_code: String,
        now_ms: i64,
    ) -> Result<String, SyncError> {
        if !fits(&joiner_code) {
            return Err(SyncError::BadJoinerCode {
                code: "too-long".into(),
                detail: too_long("joiner code", joiner_code.len()),
            });
        }
        let joiner =
            vigil::parse_joiner_code(&joiner_code).map_err(|e| SyncError::BadJoinerCode {
                code: match e {
                    vigil::JoinerCodeError::Checksum => "checksum",
                    _ => "malformed",
                }
                .into(),
                detail: e.to_string(),
            })?;
        let sas = self.with(|v| node.run(|c| v.offer_pairing(c, &joiner, now_ms)))?;
        Ok(sas.to_string())
    }

    /// Shreds the vault now, first asking the node to delete its mailbox
    /// and this device's grants (its signed receipt is returned). If the
    /// node cannot be reached the shred goes ahead (the node deletes at the
    /// period's end). The root key is destroyed in `key_store`; this object
    /// is closed: every later call raises `Shredded`.
    pub fn shred_with_node(
        &self,
        node: Arc<Node>,
        key_store: Arc<dyn KeyStore>,
        now_ms: i64,
    ) -> Result<ShredReport, crate::ShredError> {
        let vault = self.take()?;
        let keys = Adapter(key_store);
        let mut guard = node.lock();
        let conn = match guard.take() {
            Some(c) => Ok(c),
            None => DeviceConnection::connect(&node.code, node.timeout),
        };
        let (tombstone, node_error) = match conn {
            Ok(c) => {
                let c = guard.insert(c);
                let t = vault.shred_with_node(c, &keys, now_ms)?;
                let e = t
                    .receipt
                    .is_none()
                    .then(|| "the node did not confirm the deletion".to_owned());
                (t, e)
            }
            Err(e) => (vault.shred_now(&keys, now_ms)?, Some(e.to_string())),
        };
        drop(guard);
        let verified = tombstone
            .receipt
            .as_deref()
            .map(|r| vigil::verify_receipt(&node.code.receipt_key, r));
        Ok(ShredReport {
            vault_id: tombstone.vault_id.to_string(),
            shredded_at_ms: tombstone.shredded_at_ms,
            receipt_sha256: tombstone.receipt_sha256.map(|d| hex(&d)),
            receipt_invalid: matches!(verified, Some(Err(_))),
            receipt: verified.and_then(Result::ok).map(|b| Receipt {
                deleted_at_ms: b.deleted_at_ms,
                blobs: b.blobs,
                bytes: b.bytes,
                grants: b.grants,
                alerts: b.alerts,
                kept_unseen_alerts: b.kept_unseen_alerts,
                devices: b.devices.iter().map(|d| hex(d)).collect(),
            }),
            node_error,
        })
    }
}

/// Where a joining device is in the pairing.
enum JoinState {
    /// Waiting for the first device's offer.
    Waiting(vigil::X25519Identity),
    /// The offer is fetched; the resident compares the codes.
    Fetched(vigil::PendingJoin),
    /// Confirmed or rejected.
    Done,
}

/// A new device joining a resident's vault. It shows its joiner code
/// ([`Joiner::joiner_code`]) to type or scan on the first device, which
/// offers the vault through the node; then [`Joiner::fetch_offer`] returns
/// the code to compare with the first device's, and the resident either
/// confirms ([`Joiner::confirm`] creates the vault here) or rejects.
#[derive(uniffi::Object)]
pub struct Joiner {
    public: vigil::X25519PublicKey,
    state: Mutex<JoinState>,
}

impl std::fmt::Debug for Joiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The identity and any fetched root stay out of logs.
        f.debug_struct("Joiner")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Joiner {
    fn lock(&self) -> MutexGuard<'_, JoinState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[uniffi::export]
impl Joiner {
    /// A new pairing identity (random, kept in memory only).
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        let identity = vigil::X25519Identity::generate(&mut vigil::os_rng());
        Arc::new(Joiner {
            public: identity.public_key(),
            state: Mutex::new(JoinState::Waiting(identity)),
        })
    }

    /// The joiner code (`vigil-join1/...`) the first device offers to.
    pub fn joiner_code(&self) -> String {
        vigil::joiner_code(&self.public)
    }

    /// Takes the first device's offer from the node and returns the code
    /// to compare (`"048 213"`). Raises `NoOffer` while none is there (ask
    /// again later). Nothing is stored until [`Joiner::confirm`].
    pub fn fetch_offer(&self, node: Arc<Node>) -> Result<String, SyncError> {
        let mut state = self.lock();
        let pending = match &*state {
            JoinState::Waiting(identity) => node.run(|c| vigil::Vault::fetch_join(c, identity))?,
            JoinState::Fetched(p) => return Ok(p.code().to_string()),
            JoinState::Done => return Err(SyncError::JoinerClosed),
        };
        let code = pending.code().to_string();
        *state = JoinState::Fetched(pending);
        Ok(code)
    }

    /// The resident saw the same code on both screens: creates this
    /// device's vault in `dir` (a new or empty directory), its root in
    /// `key_store`, and syncs the log. If that first sync fails, the vault
    /// exists: open it and sync again.
    pub fn confirm(
        &self,
        node: Arc<Node>,
        dir: String,
        key_store: Arc<dyn KeyStore>,
    ) -> Result<Arc<Vault>, SyncError> {
        let mut state = self.lock();
        match &*state {
            JoinState::Fetched(_) => {}
            JoinState::Waiting(_) => return Err(SyncError::NoOffer),
            JoinState::Done => return Err(SyncError::JoinerClosed),
        }
        let dir = Path::new(&dir);
        // As `Vault.create` checks: never over a tombstone, never among
        // files that are not Vigil's (a shred deletes the directory's).
        // Checked before the offer is used, so another directory may follow.
        if vigil::SledStorage::read_tombstone(dir)?.is_some() {
            return Err(LibOpen(vigil::OpenError::AlreadyExists(dir.display().to_string())).into());
        }
        if let Some(file) = vigil::SledStorage::foreign_entry(dir)? {
            return Err(LibOpen(vigil::OpenError::NotEmpty {
                dir: dir.display().to_string(),
                file,
            })
            .into());
        }
        let storage = vigil::SledStorage::open(dir)?;
        let JoinState::Fetched(pending) = std::mem::replace(&mut *state, JoinState::Done) else {
            return Err(SyncError::NoOffer);
        };
        drop(state);
        let vault = node.run(|c| {
            pending.confirm(
                Box::new(storage),
                Box::new(Adapter(key_store)),
                c,
                &mut vigil::os_rng(),
            )
        })?;
        Ok(Vault::new(vault))
    }

    /// The codes differ (or the resident cancelled): the offer is dropped
    /// and nothing is stored. This joiner is done; pair again with a new one.
    pub fn reject(&self) {
        let mut state = self.lock();
        if let JoinState::Fetched(p) = std::mem::replace(&mut *state, JoinState::Done) {
            p.reject();
        }
    }
}

/// The library's open error, as the binding's, for the joiner's checks.
struct LibOpen(vigil::OpenError);

impl From<LibOpen> for SyncError {
    fn from(e: LibOpen) -> Self {
        SyncError::Open { source: e.0.into() }
    }
}
