//! Every device ↔ node conversation as a sans-I/O state machine, in the
//! shape of [`crate::DeviceSync`] (docs/spec.md §9): `poll_request` gives the
//! next request frame, `handle_response` takes the node's reply, and
//! `poll_event` reports what the caller must act on (store, seal, disclose).
//! None of them touch a socket, a clock or a disk; [`drive`] is the one loop
//! that carries their frames over an [`Exchange`].

use std::collections::VecDeque;

use sha2::{Digest, Sha256};

use crate::codec::{PROTOCOL_VERSION, decode_response, encode_request};
use crate::exchange::{Exchange, ExchangeError};
use crate::messages::{
    AlertWire, GrantDeletion, GrantWire, ProtoError, Request, Response, VaultIdBytes,
};
use crate::sync::{Registration, SyncError};
use crate::ticket::{Ticket, TicketId};

/// A device ↔ node conversation. Call [`Conversation::poll_request`] until it
/// returns `None`, feeding each reply to [`Conversation::handle_response`]
/// and draining [`Conversation::poll_event`] after each.
pub trait Conversation {
    /// What the caller is told.
    type Event;
    /// The next request frame, or `None` while a reply is awaited or when the
    /// conversation is over.
    fn poll_request(&mut self) -> Option<Vec<u8>>;
    /// Feeds the reply to the last request.
    fn handle_response(&mut self, frame: &[u8]) -> Result<(), SyncError>;
    /// The next event, if any.
    fn poll_event(&mut self) -> Option<Self::Event>;
}

/// Why a driven conversation stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriveError {
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] ExchangeError),
    /// The node refused, or replied out of turn or malformed.
    #[error(transparent)]
    Protocol(#[from] SyncError),
}

/// Runs `conv` over `conn` to its end. After each reply, `on_reply` is called
/// with the conversation so that it can drain and act on its events before the
/// next request is made (an event may change what is sent next).
pub fn drive<C, E>(
    conv: &mut C,
    conn: &mut dyn Exchange,
    mut on_reply: impl FnMut(&mut C) -> Result<(), E>,
) -> Result<(), E>
where
    C: Conversation + ?Sized,
    E: From<DriveError>,
{
    // Events queued before the first request (e.g. "about to send") come first.
    on_reply(conv)?;
    while let Some(req) = conv.poll_request() {
        let resp = conn
            .exchange(&req)
            .map_err(|e| E::from(DriveError::Transport(e)))?;
        conv.handle_response(&resp)
            .map_err(|e| E::from(DriveError::Protocol(e)))?;
        on_reply(conv)?;
    }
    Ok(())
}

/// Decodes a reply; a refusal becomes [`SyncError::Refused`].
fn reply(frame: &[u8]) -> Result<Response, SyncError> {
    match decode_response(frame)? {
        Response::Error(e) => Err(SyncError::Refused(e)),
        r => Ok(r),
    }
}

fn hello() -> Vec<u8> {
    encode_request(&Request::Hello {
        version: PROTOCOL_VERSION,
    })
}

fn unexpected(resp: &Response, to: &str) -> SyncError {
    SyncError::Unexpected(format!("{resp:?} to {to}"))
}

/// Whether a reply is the node's hello for this protocol version.
fn hello_ok(resp: &Response) -> Result<(), SyncError> {
    match resp {
        Response::HelloOk { version } if *version == PROTOCOL_VERSION => Ok(()),
        r => Err(unexpected(r, "hello")),
    }
}

/// The node-side slot where a joiner's wrapped root waits:
/// `SHA-256("vigil/v1/pair-slot" || joiner public key)`.
pub fn pairing_slot(joiner: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"vigil/v1/pair-slot");
    h.update(joiner);
    h.finalize().into()
}

/// A short, fixed request sequence whose last reply is the result.
#[derive(Debug)]
struct Script {
    requests: VecDeque<(Request, &'static str)>,
    waiting: Option<&'static str>,
    failed: bool,
}

impl Script {
    fn new(requests: Vec<(Request, &'static str)>) -> Self {
        Script {
            requests: requests.into(),
            waiting: None,
            failed: false,
        }
    }

    fn poll(&mut self) -> Option<Vec<u8>> {
        if self.waiting.is_some() || self.failed {
            return None;
        }
        let (req, name) = self.requests.pop_front()?;
        self.waiting = Some(name);
        Some(encode_request(&req))
    }

    /// The awaited step's name and its reply (refusals as errors).
    fn take(&mut self, frame: &[u8]) -> Result<(&'static str, Response), SyncError> {
        let Some(name) = self.waiting.take() else {
            self.failed = true;
            return Err(SyncError::Unexpected("reply without a request".into()));
        };
        let r = reply(frame);
        if r.is_err() {
            self.failed = true;
        }
        Ok((name, r?))
    }

    fn fail(&mut self, e: SyncError) -> Result<(), SyncError> {
        self.failed = true;
        self.requests.clear();
        Err(e)
    }
}

/// First device: leaves the period's root, wrapped to a joiner, in the
/// joiner's pairing slot (`Hello` → `Register` → `Auth` → `PairOffer`).
#[derive(Debug)]
pub struct OfferPairing {
    script: Script,
    done: bool,
}

impl OfferPairing {
    /// Offers `payload` (wrapped root ‖ sealed pairing info) in `slot`.
    /// `mailbox_key` is used only in this conversation's `Auth` frame.
    pub fn new(
        vault: VaultIdBytes,
        mailbox_key: &[u8; 32],
        register: Registration,
        slot: [u8; 32],
        payload: Vec<u8>,
    ) -> Self {
        OfferPairing {
            script: Script::new(vec![
                (
                    Request::Hello {
                        version: PROTOCOL_VERSION,
                    },
                    "hello",
                ),
                (
                    Request::Register {
                        vault,
                        verifier: register.verifier,
                        expires_ms: register.expires_ms,
                    },
                    "register",
                ),
                (
                    Request::Auth {
                        vault,
                        key: *mailbox_key,
                    },
                    "auth",
                ),
                (
                    Request::PairOffer {
                        slot,
                        wrapped: payload,
                    },
                    "pairing offer",
                ),
            ]),
            done: false,
        }
    }

    /// Whether the node stored the offer.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl Conversation for OfferPairing {
    type Event = ();

    fn poll_request(&mut self) -> Option<Vec<u8>> {
        self.script.poll()
    }

    fn handle_response(&mut self, frame: &[u8]) -> Result<(), SyncError> {
        let (step, resp) = self.script.take(frame)?;
        match (step, &resp) {
            ("hello", r) => hello_ok(r).or_else(|e| self.script.fail(e)),
            // Registering again with the same verifier is answered Ok.
            ("register" | "auth", Response::Ok) => Ok(()),
            ("pairing offer", Response::Ok) => {
                self.done = true;
                Ok(())
            }
            (step, r) => self.script.fail(unexpected(r, step)),
        }
    }

    fn poll_event(&mut self) -> Option<()> {
        None
    }
}

/// What a pairing fetch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairingFetched {
    /// The offer waiting in the slot (wrapped root ‖ sealed pairing info).
    Offer(Vec<u8>),
    /// Nothing waits in the slot (yet).
    NoOffer,
}

/// Joining device: fetches what waits in its pairing slot (`Hello` →
/// `PairFetch`).
#[derive(Debug)]
pub struct FetchPairing {
    script: Script,
    events: VecDeque<PairingFetched>,
}

impl FetchPairing {
    /// Fetches the offer in `slot` (see [`pairing_slot`]).
    pub fn new(slot: [u8; 32]) -> Self {
        FetchPairing {
            script: Script::new(vec![
                (
                    Request::Hello {
                        version: PROTOCOL_VERSION,
                    },
                    "hello",
                ),
                (Request::PairFetch { slot }, "a pairing fetch"),
            ]),
            events: VecDeque::new(),
        }
    }
}

impl Conversation for FetchPairing {
    type Event = PairingFetched;

    fn poll_request(&mut self) -> Option<Vec<u8>> {
        self.script.poll()
    }

    fn handle_response(&mut self, frame: &[u8]) -> Result<(), SyncError> {
        let taken = self.script.take(frame);
        match taken {
            Ok(("hello", r)) => hello_ok(&r).or_else(|e| self.script.fail(e)),
            Ok(("a pairing fetch", Response::PairOffer { wrapped })) => {
                self.events.push_back(PairingFetched::Offer(wrapped));
                Ok(())
            }
            Err(SyncError::Refused(ProtoError::NotFound)) => {
                self.events.push_back(PairingFetched::NoOffer);
                Ok(())
            }
            Ok((step, r)) => self.script.fail(unexpected(&r, step)),
            Err(e) => Err(e),
        }
    }

    fn poll_event(&mut self) -> Option<PairingFetched> {
        self.events.pop_front()
    }
}

/// What a grant or alert conversation asks of the caller, or reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertEvent {
    /// The node issued a one-time key for the grant `grant_id`: wrap the alert
    /// key to it and hand the grant back with [`GiveGrant::grant`] or
    /// [`DeliverAlerts::grant`].
    GrantKey {
        /// The grant being given.
        grant_id: [u8; 16],
        /// The node's one-time X25519 public key.
        public: [u8; 32],
    },
    /// The node took the enrolment ticket: the label and period end staff
    /// set, which the grant and the disclosure log record.
    Enrolled {
        /// The label staff typed.
        label: String,
        /// The end of the period staff set, ms.
        period_end_ms: i64,
    },
    /// The node stored the grant.
    Granted {
        /// Its id.
        grant_id: [u8; 16],
    },
    /// The alert at this index is about to leave the device for the first
    /// time in this conversation: record the disclosure now.
    Sending(usize),
    /// The node acknowledged the alert at this index.
    Delivered(usize),
    /// The node refused the alert at this index; it stays pending.
    Refused(usize, ProtoError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GrantStep {
    Hello,
    /// Redeeming the ticket (a first enrolment only).
    Enrol,
    Auth,
    Key,
    /// Waiting for the caller's wire.
    Wrap,
    Grant,
    Done,
    Failed,
}

/// What a grant conversation proves to the node (docs/spec.md §15): the
/// mailbox key of an enrolled vault (`Auth`), and for a first enrolment
/// the staff ticket that registers the mailbox (`Enrol`) before it.
pub struct GrantAuth {
    vault: VaultIdBytes,
    mailbox_key: [u8; 32],
    enrol: Option<(TicketId, [u8; 32], Registration)>,
}

impl GrantAuth {
    /// A device of an enrolled vault: `Auth` with the mailbox key.
    pub fn mailbox(vault: VaultIdBytes, mailbox_key: &[u8; 32]) -> Self {
        GrantAuth {
            vault,
            mailbox_key: *mailbox_key,
            enrol: None,
        }
    }

    /// A first enrolment: `Enrol` with `ticket` (registering the mailbox
    /// as `register` says), then `Auth`.
    pub fn ticket(
        vault: VaultIdBytes,
        mailbox_key: &[u8; 32],
        ticket: &Ticket,
        register: Registration,
    ) -> Self {
        GrantAuth {
            vault,
            mailbox_key: *mailbox_key,
            enrol: Some((ticket.id, *ticket.secret.expose_secret(), register)),
        }
    }

    fn enrol_request(&self) -> Option<Request> {
        let (id, secret, r) = self.enrol.as_ref()?;
        Some(Request::Enrol {
            ticket: *id,
            secret: *secret,
            vault: self.vault,
            verifier: r.verifier,
            expires_ms: r.expires_ms,
        })
    }
}

impl std::fmt::Debug for GrantAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantAuth")
            .field("vault", &self.vault)
            .field("mailbox_key", &"<redacted>")
            .field("ticket", &self.enrol.as_ref().map(|(id, _, _)| *id))
            .finish()
    }
}

impl Drop for GrantAuth {
    fn drop(&mut self) {
        // Best-effort wipe; `MailboxKey` and `TicketSecret` are the
        // zeroizing owners.
        self.mailbox_key = [0; 32];
        if let Some((_, secret, _)) = self.enrol.as_mut() {
            *secret = [0; 32];
        }
    }
}

/// Gives a node a fever-alert grant: `Hello` → (`Enrol` with the ticket) →
/// `Auth` → `GrantKey` → (the caller wraps the alert key to the issued
/// key) → `Grant`.
#[derive(Debug)]
pub struct GiveGrant {
    grant_id: [u8; 16],
    auth: GrantAuth,
    step: GrantStep,
    waiting: bool,
    wire: Option<GrantWire>,
    events: VecDeque<AlertEvent>,
}

impl GiveGrant {
    /// Gives the grant `grant_id`, proving `auth`.
    pub fn new(grant_id: [u8; 16], auth: GrantAuth) -> Self {
        Self::after_hello(grant_id, auth, false)
    }

    /// `hello`: whether the session is already open.
    fn after_hello(grant_id: [u8; 16], auth: GrantAuth, hello: bool) -> Self {
        let step = match (hello, auth.enrol.is_some()) {
            (false, _) => GrantStep::Hello,
            (true, true) => GrantStep::Enrol,
            (true, false) => GrantStep::Auth,
        };
        GiveGrant {
            grant_id,
            auth,
            step,
            waiting: false,
            wire: None,
            events: VecDeque::new(),
        }
    }

    /// After [`AlertEvent::GrantKey`]: the grant to send, its alert key
    /// wrapped to the issued key.
    pub fn grant(&mut self, wire: GrantWire) {
        if self.step == GrantStep::Wrap {
            self.wire = Some(wire);
            self.step = GrantStep::Grant;
        }
    }

    /// Whether the node stored the grant.
    pub fn is_done(&self) -> bool {
        self.step == GrantStep::Done
    }
}

impl Conversation for GiveGrant {
    type Event = AlertEvent;

    fn poll_request(&mut self) -> Option<Vec<u8>> {
        if self.waiting {
            return None;
        }
        let frame = match self.step {
            GrantStep::Hello => hello(),
            GrantStep::Enrol => encode_request(&self.auth.enrol_request()?),
            GrantStep::Auth => encode_request(&Request::Auth {
                vault: self.auth.vault,
                key: self.auth.mailbox_key,
            }),
            GrantStep::Key => encode_request(&Request::GrantKey),
            GrantStep::Grant => encode_request(&Request::Grant(self.wire.take()?)),
            GrantStep::Wrap | GrantStep::Done | GrantStep::Failed => return None,
        };
        self.waiting = true;
        Some(frame)
    }

    fn handle_response(&mut self, frame: &[u8]) -> Result<(), SyncError> {
        if !std::mem::take(&mut self.waiting) {
            self.step = GrantStep::Failed;
            return Err(SyncError::Unexpected("reply without a request".into()));
        }
        let resp = match reply(frame) {
            Ok(r) => r,
            Err(e) => {
                self.step = GrantStep::Failed;
                return Err(e);
            }
        };
        match (self.step, resp) {
            (GrantStep::Hello, r) => {
                if let Err(e) = hello_ok(&r) {
                    self.step = GrantStep::Failed;
                    return Err(e);
                }
                self.step = if self.auth.enrol.is_some() {
                    GrantStep::Enrol
                } else {
                    GrantStep::Auth
                };
            }
            (
                GrantStep::Enrol,
                Response::Enrolled {
                    label,
                    period_end_ms,
                },
            ) => {
                self.step = GrantStep::Auth;
                self.events.push_back(AlertEvent::Enrolled {
                    label,
                    period_end_ms,
                });
            }
            (GrantStep::Auth, Response::Ok) => self.step = GrantStep::Key,
            (GrantStep::Key, Response::GrantKey { public }) => {
                self.step = GrantStep::Wrap;
                self.events.push_back(AlertEvent::GrantKey {
                    grant_id: self.grant_id,
                    public,
                });
            }
            (GrantStep::Grant, Response::Ok) => {
                self.step = GrantStep::Done;
                self.events.push_back(AlertEvent::Granted {
                    grant_id: self.grant_id,
                });
            }
            (step, r) => {
                self.step = GrantStep::Failed;
                let to = match step {
                    GrantStep::Enrol => "enrol",
                    GrantStep::Auth => "auth",
                    GrantStep::Key => "grant key",
                    _ => "grant",
                };
                return Err(unexpected(&r, to));
            }
        }
        Ok(())
    }

    fn poll_event(&mut self) -> Option<AlertEvent> {
        self.events.pop_front()
    }
}

/// One alert to deliver, with the grant it needs if the node lost it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingAlert {
    /// The sealed alert.
    pub wire: AlertWire,
    /// Whether it already left the device in an earlier conversation.
    pub sent_before: bool,
}

/// Delivers sealed alerts: `Hello`, then one `Alert` each. An alert the node
/// refuses with `UnknownGrant` makes the grant be given again (once per
/// grant, inside this conversation) and the alert be retried.
#[derive(Debug)]
pub struct DeliverAlerts {
    alerts: Vec<OutgoingAlert>,
    next: usize,
    hello_done: bool,
    waiting: bool,
    regrant: Option<GiveGrant>,
    regranted: Vec<[u8; 16]>,
    events: VecDeque<AlertEvent>,
    failed: bool,
    vault: VaultIdBytes,
    mailbox_key: [u8; 32],
}

impl Drop for DeliverAlerts {
    fn drop(&mut self) {
        // Best-effort wipe; `MailboxKey` is the zeroizing owner.
        self.mailbox_key = [0; 32];
    }
}

impl DeliverAlerts {
    /// Delivers `alerts` in order; a grant given again (the node lost it)
    /// is authenticated with `vault`'s mailbox key (§15).
    pub fn new(alerts: Vec<OutgoingAlert>, vault: VaultIdBytes, mailbox_key: &[u8; 32]) -> Self {
        let mut d = DeliverAlerts {
            alerts,
            next: 0,
            hello_done: false,
            waiting: false,
            regrant: None,
            regranted: Vec::new(),
            events: VecDeque::new(),
            failed: false,
            vault,
            mailbox_key: *mailbox_key,
        };
        d.announce();
        d
    }

    /// After [`AlertEvent::GrantKey`]: the grant to give again.
    pub fn grant(&mut self, wire: GrantWire) {
        if let Some(g) = self.regrant.as_mut() {
            g.grant(wire);
        }
    }

    /// Queues "about to send" for the next alert, if it never left.
    fn announce(&mut self) {
        if let Some(a) = self.alerts.get(self.next)
            && !a.sent_before
        {
            self.events.push_back(AlertEvent::Sending(self.next));
            self.alerts[self.next].sent_before = true;
        }
    }

    fn advance(&mut self) {
        self.next += 1;
        self.announce();
    }
}

impl Conversation for DeliverAlerts {
    type Event = AlertEvent;

    fn poll_request(&mut self) -> Option<Vec<u8>> {
        if self.waiting || self.failed || self.next >= self.alerts.len() {
            return None;
        }
        if let Some(g) = self.regrant.as_mut() {
            let frame = g.poll_request()?;
            self.waiting = true;
            return Some(frame);
        }
        let frame = if self.hello_done {
            encode_request(&Request::Alert(self.alerts[self.next].wire.clone()))
        } else {
            hello()
        };
        self.waiting = true;
        Some(frame)
    }

    fn handle_response(&mut self, frame: &[u8]) -> Result<(), SyncError> {
        if !std::mem::take(&mut self.waiting) {
            self.failed = true;
            return Err(SyncError::Unexpected("reply without a request".into()));
        }
        if let Some(g) = self.regrant.as_mut() {
            if let Err(e) = g.handle_response(frame) {
                self.failed = true;
                return Err(e);
            }
            while let Some(ev) = g.poll_event() {
                self.events.push_back(ev);
            }
            if g.is_done() {
                self.regrant = None;
            }
            return Ok(());
        }
        if !self.hello_done {
            let r = decode_response(frame).map_err(SyncError::from);
            let r = r.and_then(|r| match r {
                Response::Error(e) => Err(SyncError::Refused(e)),
                r => hello_ok(&r),
            });
            if r.is_err() {
                self.failed = true;
            }
            self.hello_done = r.is_ok();
            return r;
        }
        let resp = match decode_response(frame) {
            Ok(r) => r,
            Err(e) => {
                self.failed = true;
                return Err(e.into());
            }
        };
        let grant_id = self.alerts[self.next].wire.grant_id;
        match resp {
            Response::AlertAck { .. } => {
                self.events.push_back(AlertEvent::Delivered(self.next));
                self.advance();
            }
            Response::Error(ProtoError::UnknownGrant) if !self.regranted.contains(&grant_id) => {
                // The node lost or never got the grant: give it again, once.
                self.regranted.push(grant_id);
                let auth = GrantAuth::mailbox(self.vault, &self.mailbox_key);
                self.regrant = Some(GiveGrant::after_hello(grant_id, auth, true));
            }
            Response::Error(e) => {
                self.events.push_back(AlertEvent::Refused(self.next, e));
                self.advance();
            }
            r => {
                self.failed = true;
                return Err(unexpected(&r, "alert"));
            }
        }
        Ok(())
    }

    fn poll_event(&mut self) -> Option<AlertEvent> {
        self.events.pop_front()
    }
}

/// Registers a vault's mailbox with a staff ticket, without a grant
/// (`Hello` → `Enrol`): a vault that syncs through the node but gives it
/// no fever alerts (docs/spec.md §15).
pub struct RedeemTicket {
    script: Script,
    enrolled: Option<(String, i64)>,
}

impl RedeemTicket {
    /// Redeems `ticket` for `vault`, registering its mailbox as `register` says.
    pub fn new(vault: VaultIdBytes, ticket: &Ticket, register: Registration) -> Self {
        RedeemTicket {
            script: Script::new(vec![
                (
                    Request::Hello {
                        version: PROTOCOL_VERSION,
                    },
                    "hello",
                ),
                (
                    Request::Enrol {
                        ticket: ticket.id,
                        secret: *ticket.secret.expose_secret(),
                        vault,
                        verifier: register.verifier,
                        expires_ms: register.expires_ms,
                    },
                    "enrol",
                ),
            ]),
            enrolled: None,
        }
    }

    /// The label and period end staff set, once the node answered.
    pub fn enrolled(&self) -> Option<(&str, i64)> {
        self.enrolled.as_ref().map(|(l, e)| (l.as_str(), *e))
    }
}

impl std::fmt::Debug for RedeemTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The script holds the ticket's secret: never printed.
        f.debug_struct("RedeemTicket")
            .field("enrolled", &self.enrolled)
            .finish_non_exhaustive()
    }
}

impl Conversation for RedeemTicket {
    type Event = ();

    fn poll_request(&mut self) -> Option<Vec<u8>> {
        self.script.poll()
    }

    fn handle_response(&mut self, frame: &[u8]) -> Result<(), SyncError> {
        match self.script.take(frame)? {
            ("hello", r) => hello_ok(&r).or_else(|e| self.script.fail(e)),
            (
                "enrol",
                Response::Enrolled {
                    label,
                    period_end_ms,
                },
            ) => {
                self.enrolled = Some((label, period_end_ms));
                Ok(())
            }
            (step, r) => self.script.fail(unexpected(&r, step)),
        }
    }

    fn poll_event(&mut self) -> Option<()> {
        None
    }
}

/// Asks the node to delete a vault's mailbox and grants at once and to sign
/// a receipt (`Hello` → `Shred`).
#[derive(Debug)]
pub struct RequestShred {
    script: Script,
    receipt: Option<Vec<u8>>,
}

impl RequestShred {
    /// Deletes `vault` (proved by its mailbox key) and `grants` (each
    /// proved by its own proof). `notice` is the sealed shred notice for the
    /// vault's other devices.
    pub fn new(
        vault: VaultIdBytes,
        mailbox_key: &[u8; 32],
        grants: Vec<GrantDeletion>,
        notice: Vec<u8>,
    ) -> Self {
        RequestShred {
            script: Script::new(vec![
                (
                    Request::Hello {
                        version: PROTOCOL_VERSION,
                    },
                    "hello",
                ),
                (
                    Request::Shred {
                        vault,
                        key: *mailbox_key,
                        grants,
                        notice,
                    },
                    "shred",
                ),
            ]),
            receipt: None,
        }
    }

    /// The node's signed receipt, once it answered.
    pub fn into_receipt(self) -> Option<Vec<u8>> {
        self.receipt
    }
}

impl Conversation for RequestShred {
    type Event = ();

    fn poll_request(&mut self) -> Option<Vec<u8>> {
        self.script.poll()
    }

    fn handle_response(&mut self, frame: &[u8]) -> Result<(), SyncError> {
        match self.script.take(frame)? {
            ("hello", r) => hello_ok(&r).or_else(|e| self.script.fail(e)),
            ("shred", Response::Receipt(r)) => {
                self.receipt = Some(r);
                Ok(())
            }
            (step, r) => self.script.fail(unexpected(&r, step)),
        }
    }

    fn poll_event(&mut self) -> Option<()> {
        None
    }
}

/// What [`QueryAlertStatus`] tells its caller, per question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertStatusEvent {
    /// The node answered question `i` (the states, as the node sent them:
    /// the caller matches them to what it asked).
    Answered(usize, Vec<crate::messages::AlertState>),
    /// The node refused question `i`: an unknown grant or a proof it does
    /// not accept (`UnknownGrant`), or a node older than the request
    /// (`Malformed`). The state stays unknown; the conversation goes on.
    Refused(usize, ProtoError),
}

/// Asks the node which of a grant's delivered alerts staff acknowledged
/// (docs/spec.md §12): `Hello`, then one `AlertStatus` per question. A
/// refusal ends no conversation: the node answers each question alone.
#[derive(Debug)]
pub struct QueryAlertStatus {
    questions: Vec<crate::messages::AlertStatusQuery>,
    next: usize,
    hello_done: bool,
    waiting: bool,
    failed: bool,
    events: VecDeque<AlertStatusEvent>,
}

impl QueryAlertStatus {
    /// Asks `questions` in order (each at most
    /// [`crate::MAX_ALERT_STATUS`] alerts).
    pub fn new(questions: Vec<crate::messages::AlertStatusQuery>) -> Self {
        QueryAlertStatus {
            questions,
            next: 0,
            hello_done: false,
            waiting: false,
            failed: false,
            events: VecDeque::new(),
        }
    }
}

impl Conversation for QueryAlertStatus {
    type Event = AlertStatusEvent;

    fn poll_request(&mut self) -> Option<Vec<u8>> {
        if self.waiting || self.failed || self.next >= self.questions.len() {
            return None;
        }
        self.waiting = true;
        Some(if self.hello_done {
            encode_request(&Request::AlertStatus(self.questions[self.next].clone()))
        } else {
            hello()
        })
    }

    fn handle_response(&mut self, frame: &[u8]) -> Result<(), SyncError> {
        if !std::mem::take(&mut self.waiting) {
            self.failed = true;
            return Err(SyncError::Unexpected("reply without a request".into()));
        }
        let resp = match decode_response(frame) {
            Ok(r) => r,
            Err(e) => {
                self.failed = true;
                return Err(e.into());
            }
        };
        if !self.hello_done {
            let r = match resp {
                Response::Error(e) => Err(SyncError::Refused(e)),
                r => hello_ok(&r),
            };
            self.failed = r.is_err();
            self.hello_done = r.is_ok();
            return r;
        }
        let i = self.next;
        match resp {
            Response::AlertStatus(states) => {
                self.events.push_back(AlertStatusEvent::Answered(i, states));
            }
            Response::Error(e) => self.events.push_back(AlertStatusEvent::Refused(i, e)),
            r => {
                self.failed = true;
                return Err(unexpected(&r, "alert status"));
            }
        }
        self.next += 1;
        Ok(())
    }

    fn poll_event(&mut self) -> Option<AlertStatusEvent> {
        self.events.pop_front()
    }
}
