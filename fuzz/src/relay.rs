//! Sequences of requests against one relay, on several connections at once.
//!
//! The input is a list of records `connection (1) | length (2, LE) | frame`;
//! the last record takes whatever bytes remain. Each frame goes to that
//! connection's [`RelaySession`] (the node's own frame handler) one minute
//! after the previous one. Besides "no panic", a model of what the relay
//! has acknowledged so far checks that nobody gets in without the key.

use std::collections::{HashMap, HashSet};

use tempfile::TempDir;
use vigil_crypto::WrappedKey;
use vigil_crypto::rand_core::SeedableRng;
use vigil_crypto::{
    AlertKey, MailboxKey, NodeId, SigningIdentity, VaultId, X25519PublicKey, unwrap,
};
use vigil_node::{GrantKeys, InboxEntry, MailboxStore, Relay, RelayConfig, RelaySession};
use vigil_proto::alert::grant_id;
use vigil_proto::{
    FrameHandler, ProtoError, Request, Response, TicketId, decode_request, decode_response,
};

/// Connections a sequence can use.
pub const CONNECTIONS: usize = 3;
/// The clock at the first frame (ms).
pub const START_MS: i64 = 1_700_000_000_000;
/// The clock advances this much per frame (ms).
pub const STEP_MS: i64 = 60_000;
/// Seed of the node's grant-key generator: fixed, so a sequence that asks
/// for a grant key gets the same key on every run (seeds can use it).
pub const GRANT_KEY_SEED: [u8; 32] = [0x5e; 32];
/// Seed of the tickets staff issue before the first frame: fixed, so the
/// seeds (and the fuzzer's mutations of them) can redeem them.
pub const TICKET_SEED: [u8; 32] = [0x71; 32];

/// The tickets staff issue before the first frame: (label, period length
/// from [`START_MS`], revoked at once). One lasts a month, one expires ten
/// minutes (ten frames) in, one is revoked before it is used.
pub const TICKETS: [(&str, i64, bool); 3] = [
    ("Ana, flat 12B", 30 * 24 * 3_600_000, false),
    ("Bo, flat 3", 10 * 60_000, false),
    ("Cy, flat 7", 30 * 24 * 3_600_000, true),
];

/// The node the sequences talk to: mailbox keys are derived per node, so
/// honest devices (the seeds) derive theirs for this one.
pub fn node_id() -> NodeId {
    NodeId::new(X25519PublicKey::from_bytes([0x4e; 32]), [0xce; 32])
}

/// Small limits, so short sequences reach the quota and cap paths.
pub fn config() -> RelayConfig {
    RelayConfig {
        max_bytes_per_vault: 64 * 1024,
        max_blobs_per_vault: 16,
        pairing_ttl_ms: 15 * 60_000,
        max_pull_bytes: 16 * 1024,
        max_pull_bundles: 8,
        max_vaults: 2,
        max_grant_keys: 4,
        max_pairing_slots: 2,
        max_store_bytes: 96 * 1024,
        max_devices_per_vault: 4,
        max_tickets: 8,
        ..RelayConfig::default()
    }
}

/// Splits fuzz input into `(connection, frame)` records.
pub fn split(mut data: &[u8]) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    while let [conn, rest @ ..] = data {
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
            _ => (rest.len(), &rest[rest.len()..]),
        };
        let len = len.min(rest.len());
        out.push((usize::from(*conn) % CONNECTIONS, &rest[..len]));
        data = &rest[len..];
    }
    out
}

/// The inverse of [`split`], for the seed corpus.
pub fn join(records: &[(usize, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (conn, frame) in records {
        let len = u16::try_from(frame.len()).expect("seed frames are small");
        out.push(u8::try_from(*conn).expect("few connections"));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(frame);
    }
    out
}

/// What the relay has acknowledged so far.
#[derive(Default)]
struct Model {
    hello: [bool; CONNECTIONS],
    // The vault each connection proved the mailbox key of.
    authed: [Option<[u8; 16]>; CONNECTIONS],
    // Verifiers the relay accepted (`Enrolled`, or `Register` answered
    // `Ok`), per vault.
    registered: HashMap<[u8; 16], HashSet<[u8; 32]>>,
    // The alert key of every grant the relay took, unwrapped by the model
    // itself with the node's one-time key: what a shred proof must verify under.
    alert_keys: HashMap<[u8; 16], AlertKey>,
    stored_alerts: usize,
}

/// What the relay holds, read before a frame: whatever is gone after it
/// must have been deleted by someone entitled to.
struct Held {
    mailboxes: HashMap<[u8; 16], [u8; 32]>,
    grants: HashSet<[u8; 16]>,
    inbox: Vec<InboxEntry>,
}

/// A ticket the harness issued: what staff hand the resident.
#[derive(Clone, Copy, Debug)]
pub struct IssuedTicket {
    /// The ticket's id.
    pub id: TicketId,
    /// Its secret.
    pub secret: [u8; 32],
    /// Its period's end (ms).
    pub period_end_ms: i64,
}

/// One relay (in-memory store, grant keys in a temporary directory), the
/// tickets staff issued, and its connections.
pub struct Harness {
    _dir: TempDir,
    relay: Relay,
    // The model's own handle on the grant-key directory (read only).
    grant_keys: GrantKeys,
    tickets: Vec<IssuedTicket>,
    conns: Vec<RelaySession>,
    model: Model,
    step: i64,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A fresh node, with the [`TICKETS`] issued (and one revoked).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let keys = GrantKeys::open(dir.path(), GRANT_KEY_SEED).expect("grant key directory");
        let grant_keys = GrantKeys::open(dir.path(), GRANT_KEY_SEED).expect("grant key directory");
        let relay = Relay::new(MailboxStore::in_memory(), config())
            .with_alerts(keys)
            .with_receipts(SigningIdentity::from_bytes([0x3c; 32]));
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(TICKET_SEED);
        let tickets = TICKETS
            .iter()
            .map(|&(label, period, revoked)| {
                let end = START_MS + period;
                let t = relay
                    .issue_ticket(label, end, START_MS, &mut rng)
                    .expect("staff issue a ticket");
                if revoked {
                    relay
                        .revoke_ticket(&t.ticket.id, START_MS)
                        .expect("ticket revokes")
                        .expect("the ticket exists");
                }
                IssuedTicket {
                    id: t.ticket.id,
                    secret: *t.ticket.secret.expose_secret(),
                    period_end_ms: end,
                }
            })
            .collect();
        let conns = (0..CONNECTIONS).map(|_| relay.session()).collect();
        Harness {
            _dir: dir,
            relay,
            grant_keys,
            tickets,
            conns,
            model: Model::default(),
            step: 0,
        }
    }

    /// The tickets issued before the first frame, in [`TICKETS`] order.
    pub fn tickets(&self) -> &[IssuedTicket] {
        &self.tickets
    }

    /// The clock of the next frame.
    pub fn now_ms(&self) -> i64 {
        START_MS + self.step * STEP_MS
    }

    fn held(&self) -> Held {
        let store = self.relay.store();
        Held {
            mailboxes: store
                .vaults()
                .expect("vaults read")
                .into_iter()
                .map(|(v, m)| (v, m.verifier))
                .collect(),
            grants: self
                .relay
                .grants()
                .expect("grants read")
                .into_iter()
                .map(|g| g.grant.grant_id)
                .collect(),
            inbox: self.relay.inbox().expect("inbox reads"),
        }
    }

    /// Sends one frame on connection `conn`, checks the invariants, and
    /// returns the decoded answer.
    pub fn send(&mut self, conn: usize, frame: &[u8]) -> Response {
        let now = self.now_ms();
        self.step += 1;
        let before = self.held();
        let reply = self.conns[conn].handle(frame, now);
        let resp = decode_response(&reply).expect("the relay's answer decodes");
        self.check(conn, frame, &resp, &before);
        resp
    }

    fn check(&mut self, conn: usize, frame: &[u8], resp: &Response, before: &Held) {
        assert!(
            !matches!(resp, Response::Error(ProtoError::Internal(_))),
            "internal error on an in-memory store: {resp:?}"
        );
        let req = decode_request(frame);
        if req.is_err() {
            assert!(
                matches!(resp, Response::Error(ProtoError::Malformed(_))),
                "a malformed frame was answered {resp:?}"
            );
        }
        if let Ok(req) = req {
            self.check_request(conn, req, resp, before);
        }
        self.check_deletions(frame, before);
        self.check_holdings();
    }

    fn check_request(&mut self, conn: usize, req: Request, resp: &Response, before: &Held) {
        let m = &mut self.model;
        if let Request::Hello { version } = req {
            if version == vigil_proto::PROTOCOL_VERSION {
                assert!(matches!(resp, Response::HelloOk { .. }), "hello: {resp:?}");
                m.hello[conn] = true;
            }
            return;
        }
        if !m.hello[conn] {
            assert_eq!(
                resp,
                &Response::Error(ProtoError::HelloFirst),
                "before hello"
            );
            return;
        }
        match req {
            Request::Register {
                vault, verifier, ..
            } if *resp == Response::Ok => {
                // `Register` only confirms: the mailbox came from a ticket.
                assert!(
                    m.registered.contains_key(&vault),
                    "Register created a mailbox without a ticket"
                );
                m.registered.entry(vault).or_default().insert(verifier);
            }
            Request::Enrol {
                ticket,
                secret,
                vault,
                verifier,
                ..
            } if matches!(resp, Response::Enrolled { .. }) => {
                assert!(
                    self.tickets
                        .iter()
                        .any(|t| t.id == ticket && t.secret == secret),
                    "enrolled with a ticket staff never issued"
                );
                m.registered.entry(vault).or_default().insert(verifier);
            }
            Request::Auth { vault, key } if *resp == Response::Ok => {
                assert!(
                    proves(&m.registered, &vault, &key),
                    "Auth accepted a key no Enrol or Register set"
                );
                m.authed[conn] = Some(vault);
            }
            Request::Push(_)
            | Request::Pull { .. }
            | Request::PushSnapshot(_)
            | Request::PairOffer { .. }
            | Request::GrantKey
            | Request::Grant(_)
                if m.authed[conn].is_none() =>
            {
                assert!(
                    matches!(resp, Response::Error(_)),
                    "a mailbox or grant request without Auth was answered {resp:?}"
                );
            }
            // A session outlives a shred of its vault: it must not resume
            // the monitoring the resident ended.
            Request::GrantKey | Request::Grant(_)
                if !matches!(resp, Response::Error(_))
                    && !m.authed[conn].is_some_and(|v| before.mailboxes.contains_key(&v)) =>
            {
                panic!("a grant key or grant for a vault with no mailbox: {resp:?}");
            }
            Request::Grant(w) if *resp == Response::Ok => {
                // The node took it: the model unwraps its alert key the
                // same way (the one-time key still exists right after).
                let key = self
                    .grant_keys
                    .load(&w.grant_key)
                    .and_then(|id| {
                        let wk = WrappedKey::from_slice(&w.wrapped_key).ok()?;
                        unwrap::<AlertKey>(&id, &wk).ok()
                    })
                    .expect("an accepted grant's alert key unwraps");
                assert_eq!(
                    grant_id(&key),
                    w.grant_id,
                    "grant accepted under another id"
                );
                // Bound to the ticket of the vault this connection proved.
                let vault = m.authed[conn].expect("checked above");
                let bound = self
                    .relay
                    .store()
                    .ticket_of_vault(&vault)
                    .expect("tickets read")
                    .and_then(|t| t.grant());
                assert_eq!(
                    bound,
                    Some(w.grant_id),
                    "grant not bound to the vault's ticket"
                );
                m.alert_keys.insert(w.grant_id, key);
            }
            Request::Alert(w) if *resp == (Response::AlertAck { stored: true }) => {
                assert!(
                    m.alert_keys.contains_key(&w.grant_id),
                    "alert stored under no grant"
                );
                m.stored_alerts += 1;
            }
            _ => {}
        }
    }

    /// Nothing the relay held is gone after a frame unless that frame was a
    /// `Shred` entitled to delete it: a mailbox only with its key, a grant
    /// (and its alerts) only with a proof under its alert key, and nothing
    /// at all when the shred names a live mailbox with the wrong key.
    fn check_deletions(&self, frame: &[u8], before: &Held) {
        let after = self.held();
        let shred = match decode_request(frame) {
            Ok(Request::Shred {
                vault, key, grants, ..
            }) => Some((vault, key, grants)),
            _ => None,
        };
        let mut may_end: HashSet<[u8; 16]> = HashSet::new();
        let mut may_drop_mailbox = None;
        if let Some((vault, key, grants)) = &shred {
            let opens = |verifier: &[u8; 32]| {
                MailboxKey::from_bytes(*key).verifier().to_bytes() == *verifier
            };
            let allowed = match before.mailboxes.get(vault) {
                Some(v) if opens(v) => {
                    may_drop_mailbox = Some(*vault);
                    true
                }
                Some(_) => false,
                // Already gone: the proofs alone decide (spec §13).
                None => true,
            };
            if allowed {
                let vid = VaultId::from_bytes(*vault);
                for d in grants {
                    if self
                        .model
                        .alert_keys
                        .get(&d.grant_id)
                        .is_some_and(|k| k.verify_shred_proof(&vid, &d.grant_id, &d.proof))
                    {
                        may_end.insert(d.grant_id);
                    }
                }
            }
        }
        for v in before.mailboxes.keys() {
            assert!(
                after.mailboxes.contains_key(v) || may_drop_mailbox == Some(*v),
                "mailbox {v:?} deleted without its key"
            );
        }
        for g in &before.grants {
            assert!(
                after.grants.contains(g) || may_end.contains(g),
                "grant {g:?} ended without a proof under its alert key"
            );
        }
        for e in &before.inbox {
            assert!(
                after.inbox.contains(e) || may_end.contains(&e.grant_id),
                "alert of grant {:?} deleted or changed without a proof",
                e.grant_id
            );
        }
    }

    /// What the relay holds against what staff issued and its limits.
    fn check_holdings(&self) {
        let store = self.relay.store();
        let tickets = self.relay.tickets().expect("tickets read");
        assert!(
            tickets
                .iter()
                .all(|t| self.tickets.iter().any(|i| i.id == t.id)),
            "a ticket staff never issued"
        );
        let vaults = store.vaults().expect("vaults read");
        let limits = config();
        assert!(
            vaults.len() <= self.tickets.len() && vaults.len() as u64 <= limits.max_vaults,
            "{} mailboxes from {} tickets",
            vaults.len(),
            self.tickets.len()
        );
        for (vault, info) in &vaults {
            assert!(
                tickets.iter().any(|t| t.vault() == Some(*vault)),
                "mailbox {vault:?} without a ticket"
            );
            assert!(
                info.bytes <= limits.max_bytes_per_vault
                    && info.blobs <= limits.max_blobs_per_vault,
                "vault {vault:?} holds {} bytes in {} blobs, past its quota",
                info.bytes,
                info.blobs
            );
        }
        for g in self.relay.grants().expect("grants read") {
            let id = g.grant.grant_id;
            assert!(
                tickets.iter().any(|t| t.grant() == Some(id)),
                "grant {id:?} without a ticket"
            );
        }
        let inbox = self.relay.inbox().expect("inbox reads");
        assert!(
            inbox.len() <= self.model.stored_alerts,
            "{} inbox entries from {} stored alerts",
            inbox.len(),
            self.model.stored_alerts
        );
        let usage = self.relay.usage().expect("usage reads");
        assert!(
            usage.grant_keys <= limits.max_grant_keys
                && usage.pairing_slots <= limits.max_pairing_slots
                && usage.bytes <= limits.max_store_bytes,
            "past a node-wide cap: {usage:?}"
        );
    }

    /// The sweeper a year later must succeed whatever the sequence stored.
    pub fn finish(self) {
        let later = self.now_ms() + 365 * 24 * 3_600_000;
        self.relay.sweep(later, 0).expect("sweep succeeds");
    }
}

fn proves(
    registered: &HashMap<[u8; 16], HashSet<[u8; 32]>>,
    vault: &[u8; 16],
    key: &[u8; 32],
) -> bool {
    let verifier = MailboxKey::from_bytes(*key).verifier().to_bytes();
    registered.get(vault).is_some_and(|v| v.contains(&verifier))
}

/// The fuzz target: a sequence of frames on up to [`CONNECTIONS`] connections.
pub fn sequence(data: &[u8]) {
    let mut h = Harness::new();
    for (conn, frame) in split(data) {
        h.send(conn, frame);
    }
    h.finish();
}
