//! The device side of sync as a sans-I/O state machine (docs/spec.md §10).
//!
//! It emits request frames, consumes response frames and reports events; it
//! never touches a socket, a clock or a disk. The caller (the vault) carries
//! frames through an [`crate::Exchange`] and reacts to events: store an
//! acknowledged bundle as pushed, open and apply a received one.
//!
//! Order: `Hello` → (`Register`) → `Auth` → each `Push` → `Pull` until
//! complete → (`PushSnapshot`) → done.

use std::collections::{BTreeMap, VecDeque};

use crate::codec::{CodecError, PROTOCOL_VERSION, decode_response, encode_request};
use crate::messages::{
    BundleItem, DeviceIdBytes, ProtoError, Request, Response, SnapshotItem, VaultIdBytes,
    VersionVector,
};

/// What to register if the mailbox does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// The mailbox key's verifier.
    pub verifier: [u8; 32],
    /// End of the period, ms.
    pub expires_ms: i64,
}

/// Parameters of one sync session.
pub struct SyncConfig {
    /// The vault.
    pub vault: VaultIdBytes,
    /// The mailbox key (kept only for the session).
    pub mailbox_key: [u8; 32],
    /// Register the mailbox first (the vault's first device does).
    pub register: Option<Registration>,
    /// Reply size hint for pulls.
    pub pull_max_bytes: u32,
}

impl std::fmt::Debug for SyncConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncConfig")
            .field("vault", &self.vault)
            .field("mailbox_key", &"<redacted>")
            .field("register", &self.register)
            .finish()
    }
}

impl Drop for SyncConfig {
    fn drop(&mut self) {
        // Best-effort wipe; the vault's MailboxKey type is the zeroizing owner.
        self.mailbox_key = [0; 32];
    }
}

/// What happened, for the caller to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// The node stored one of our bundles durably.
    Acked {
        /// Its seq.
        seq: u64,
    },
    /// A snapshot to start from (before any bundle of this pull).
    Snapshot(SnapshotItem),
    /// The next bundle of a device, in order. Call [`DeviceSync::reject`] if
    /// it does not open, so the vector does not advance past it.
    Bundle(BundleItem),
    /// Pulling is complete; the caller may now [`DeviceSync::offer_snapshot`]
    /// covering [`DeviceSync::have`] (read it after handling the bundles:
    /// rejections lower it).
    PullDone,
    /// The node stored our snapshot.
    SnapshotAcked,
}

/// Why a session failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncError {
    /// The node refused a request.
    #[error("the node refused: {0}")]
    Refused(ProtoError),
    /// The node's reply could not be decoded.
    #[error("bad reply from the node: {0}")]
    Codec(#[from] CodecError),
    /// The node replied out of turn.
    #[error("unexpected reply from the node: {0}")]
    Unexpected(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Hello,
    Register,
    Auth,
    Push,
    Pull,
    Snapshot,
    Done,
    Failed,
}

/// The device side of one sync session.
#[derive(Debug)]
pub struct DeviceSync {
    config: SyncConfig,
    step: Step,
    waiting: bool,
    outgoing: VecDeque<BundleItem>,
    have: BTreeMap<DeviceIdBytes, u64>,
    rejected: Vec<DeviceIdBytes>,
    snapshot: Option<SnapshotItem>,
    events: VecDeque<SyncEvent>,
}

impl DeviceSync {
    /// A session that pushes `outgoing` (in seq order) and pulls what `have` lacks.
    pub fn new(config: SyncConfig, have: VersionVector, outgoing: Vec<BundleItem>) -> Self {
        DeviceSync {
            config,
            step: Step::Hello,
            waiting: false,
            outgoing: outgoing.into(),
            have: have.into_iter().collect(),
            rejected: Vec::new(),
            snapshot: None,
            events: VecDeque::new(),
        }
    }

    /// The next request frame to send, or `None` while a reply is awaited or
    /// when the session is over.
    pub fn poll_request(&mut self) -> Option<Vec<u8>> {
        if self.waiting {
            return None;
        }
        let req = match self.step {
            Step::Hello => Request::Hello {
                version: PROTOCOL_VERSION,
            },
            Step::Register => {
                let r = self.config.register?;
                Request::Register {
                    vault: self.config.vault,
                    verifier: r.verifier,
                    expires_ms: r.expires_ms,
                }
            }
            Step::Auth => Request::Auth {
                vault: self.config.vault,
                key: self.config.mailbox_key,
            },
            Step::Push => Request::Push(self.outgoing.front()?.clone()),
            Step::Pull => Request::Pull {
                have: self.have_vector(),
                max_bytes: self.config.pull_max_bytes,
            },
            Step::Snapshot => Request::PushSnapshot(self.snapshot.clone()?),
            Step::Done | Step::Failed => return None,
        };
        self.waiting = true;
        Some(encode_request(&req))
    }

    /// Feeds the reply to the last request.
    pub fn handle_response(&mut self, frame: &[u8]) -> Result<(), SyncError> {
        if !self.waiting {
            return self.fail(SyncError::Unexpected("reply without a request".into()));
        }
        self.waiting = false;
        let resp = match decode_response(frame) {
            Ok(r) => r,
            Err(e) => return self.fail(e.into()),
        };
        if let Response::Error(e) = resp {
            return self.fail(SyncError::Refused(e));
        }
        match (self.step, resp) {
            (Step::Hello, Response::HelloOk { version }) if version == PROTOCOL_VERSION => {
                self.step = if self.config.register.is_some() {
                    Step::Register
                } else {
                    Step::Auth
                };
            }
            (Step::Register, Response::Ok) => self.step = Step::Auth,
            (Step::Auth, Response::Ok) => self.after_auth(),
            (Step::Push, Response::Ack { device, seq }) => {
                let front = self.outgoing.front().map(|b| (b.device, b.seq));
                if front != Some((device, seq)) {
                    return self.fail(SyncError::Unexpected("ack for another bundle".into()));
                }
                self.outgoing.pop_front();
                let h = self.have.entry(device).or_insert(0);
                *h = (*h).max(seq);
                self.events.push_back(SyncEvent::Acked { seq });
                if self.outgoing.is_empty() {
                    self.step = Step::Pull;
                }
            }
            (Step::Pull, Response::UpToDate) => self.pull_done(),
            (
                Step::Pull,
                Response::Bundles {
                    snapshot,
                    bundles,
                    more,
                },
            ) => {
                if let Some(s) = snapshot {
                    for (d, seq) in &s.covers {
                        if !self.rejected.contains(d) {
                            let h = self.have.entry(*d).or_insert(0);
                            *h = (*h).max(*seq);
                        }
                    }
                    self.events.push_back(SyncEvent::Snapshot(s));
                }
                let mut progressed = false;
                for b in bundles {
                    let h = self.have.get(&b.device).copied().unwrap_or(0);
                    // Only the next bundle of each device is taken: replays and
                    // gaps are ignored, so a relay cannot rewind or skip. `h`
                    // may come from a snapshot's covers (the node's word):
                    // at u64::MAX nothing is next.
                    if h.checked_add(1) == Some(b.seq) && !self.rejected.contains(&b.device) {
                        self.have.insert(b.device, b.seq);
                        progressed = true;
                        self.events.push_back(SyncEvent::Bundle(b));
                    }
                }
                if !more || !progressed {
                    self.pull_done();
                }
            }
            (Step::Snapshot, Response::Ack { .. }) => {
                self.events.push_back(SyncEvent::SnapshotAcked);
                self.step = Step::Done;
            }
            (step, resp) => {
                return self.fail(SyncError::Unexpected(format!("{resp:?} in step {step:?}")));
            }
        }
        Ok(())
    }

    fn after_auth(&mut self) {
        self.step = if self.outgoing.is_empty() {
            Step::Pull
        } else {
            Step::Push
        };
    }

    fn pull_done(&mut self) {
        self.step = Step::Snapshot;
        self.events.push_back(SyncEvent::PullDone);
    }

    fn fail(&mut self, e: SyncError) -> Result<(), SyncError> {
        self.step = Step::Failed;
        Err(e)
    }

    fn have_vector(&self) -> VersionVector {
        self.have.iter().map(|(d, s)| (*d, *s)).collect()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SyncEvent> {
        let ev = self.events.pop_front();
        // With no snapshot offered after the pull, the session simply ends.
        if ev.is_none() && self.step == Step::Snapshot && self.snapshot.is_none() && !self.waiting {
            self.step = Step::Done;
        }
        ev
    }

    /// A bundle delivered by [`SyncEvent::Bundle`] did not open: stop taking
    /// that device's bundles in this session (the vector stays before it),
    /// including the ones already queued as events behind it.
    pub fn reject(&mut self, device: DeviceIdBytes, seq: u64) {
        self.events
            .retain(|e| !matches!(e, SyncEvent::Bundle(b) if b.device == device));
        if let Some(h) = self.have.get_mut(&device)
            && *h >= seq
        {
            *h = seq.saturating_sub(1);
        }
        if !self.rejected.contains(&device) {
            self.rejected.push(device);
        }
    }

    /// After [`SyncEvent::PullDone`], offers a snapshot to upload.
    pub fn offer_snapshot(&mut self, snapshot: SnapshotItem) {
        if self.step == Step::Snapshot {
            self.snapshot = Some(snapshot);
        }
    }

    /// Whether the session finished successfully.
    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    /// The version vector held now.
    pub fn have(&self) -> VersionVector {
        self.have_vector()
    }
}

impl crate::Conversation for DeviceSync {
    type Event = SyncEvent;

    fn poll_request(&mut self) -> Option<Vec<u8>> {
        DeviceSync::poll_request(self)
    }

    fn handle_response(&mut self, frame: &[u8]) -> Result<(), SyncError> {
        DeviceSync::handle_response(self, frame)
    }

    fn poll_event(&mut self) -> Option<SyncEvent> {
        DeviceSync::poll_event(self)
    }
}
