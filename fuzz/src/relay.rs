//! Sequences of requests against one relay, on several connections at once.
//!
//! The input is a list of records `connection (1) | length (2, LE) | frame`;
//! the last record takes whatever bytes remain. Each frame goes to that
//! connection's [`RelaySession`] (the node's own frame handler) one minute
//! after the previous one. Besides "no panic", a model of what the relay
//! has acknowledged so far checks that nobody gets in without the key.

use std::collections::{HashMap, HashSet};

use tempfile::TempDir;
use vigil_crypto::{MailboxKey, SigningIdentity};
use vigil_node::{GrantKeys, MailboxStore, Relay, RelayConfig, RelaySession};
use vigil_proto::{FrameHandler, ProtoError, Request, Response, decode_request, decode_response};

/// Connections a sequence can use.
pub const CONNECTIONS: usize = 3;
/// The clock at the first frame (ms).
pub const START_MS: i64 = 1_700_000_000_000;
/// The clock advances this much per frame (ms).
pub const STEP_MS: i64 = 60_000;
/// Seed of the node's grant-key generator: fixed, so a sequence that asks
/// for a grant key gets the same key on every run (seeds can use it).
pub const GRANT_KEY_SEED: [u8; 32] = [0x5e; 32];

/// Small limits, so short sequences reach the quota paths.
pub fn config() -> RelayConfig {
    RelayConfig {
        max_bytes_per_vault: 64 * 1024,
        max_blobs_per_vault: 16,
        pairing_ttl_ms: 15 * 60_000,
        max_pull_bytes: 16 * 1024,
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
    authed: [bool; CONNECTIONS],
    // Verifiers the relay accepted in a `Register` answered `Ok`, per vault.
    registered: HashMap<[u8; 16], HashSet<[u8; 32]>>,
    granted: HashSet<[u8; 16]>,
    stored_alerts: usize,
}

/// One relay (in-memory store, grant keys in a temporary directory) and its
/// connections.
pub struct Harness {
    _dir: TempDir,
    relay: Relay,
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
    /// A fresh node.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let keys = GrantKeys::open(dir.path(), GRANT_KEY_SEED).expect("grant key directory");
        let relay = Relay::new(MailboxStore::in_memory(), config())
            .with_alerts(keys)
            .with_receipts(SigningIdentity::from_bytes([0x3c; 32]));
        let conns = (0..CONNECTIONS).map(|_| relay.session()).collect();
        Harness {
            _dir: dir,
            relay,
            conns,
            model: Model::default(),
            step: 0,
        }
    }

    /// The clock of the next frame.
    pub fn now_ms(&self) -> i64 {
        START_MS + self.step * STEP_MS
    }

    /// Sends one frame on connection `conn`, checks the invariants, and
    /// returns the decoded answer.
    pub fn send(&mut self, conn: usize, frame: &[u8]) -> Response {
        let now = self.now_ms();
        self.step += 1;
        // The mailbox a shred names, as it was before the shred.
        let before = match decode_request(frame) {
            Ok(Request::Shred { vault, .. }) => self
                .relay
                .store()
                .mailbox(&vault)
                .expect("mailbox reads")
                .map(|m| m.verifier),
            _ => None,
        };
        let reply = self.conns[conn].handle(frame, now);
        let resp = decode_response(&reply).expect("the relay's answer decodes");
        self.check(conn, frame, &resp, before);
        resp
    }

    fn check(&mut self, conn: usize, frame: &[u8], resp: &Response, before: Option<[u8; 32]>) {
        let m = &mut self.model;
        assert!(
            !matches!(resp, Response::Error(ProtoError::Internal(_))),
            "internal error on an in-memory store: {resp:?}"
        );
        let Ok(req) = decode_request(frame) else {
            assert!(
                matches!(resp, Response::Error(ProtoError::Malformed(_))),
                "a malformed frame was answered {resp:?}"
            );
            return;
        };
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
                m.registered.entry(vault).or_default().insert(verifier);
            }
            Request::Auth { vault, key } if *resp == Response::Ok => {
                assert!(
                    proves(&m.registered, &vault, &key),
                    "Auth accepted a key no Register set"
                );
                m.authed[conn] = true;
            }
            // A shred of a vault already gone is answered with a receipt
            // (a retry must succeed); one of a live mailbox needs its key.
            Request::Shred { key, .. } if matches!(resp, Response::Receipt(_)) => {
                if let Some(verifier) = before {
                    assert_eq!(
                        MailboxKey::from_bytes(key).verifier().to_bytes(),
                        verifier,
                        "a live mailbox was shredded without its key"
                    );
                }
            }
            Request::Push(_)
            | Request::Pull { .. }
            | Request::PushSnapshot(_)
            | Request::PairOffer { .. }
                if !m.authed[conn] =>
            {
                assert_eq!(
                    resp,
                    &Response::Error(ProtoError::NotAuthenticated),
                    "a mailbox request without Auth"
                );
            }
            Request::Grant(w) if *resp == Response::Ok => {
                m.granted.insert(w.grant_id);
            }
            Request::Alert(w) if *resp == (Response::AlertAck { stored: true }) => {
                assert!(
                    m.granted.contains(&w.grant_id),
                    "alert stored under no grant"
                );
                m.stored_alerts += 1;
            }
            _ => {}
        }
        let inbox = self.relay.inbox().expect("inbox reads");
        assert!(
            inbox.len() <= m.stored_alerts,
            "{} inbox entries from {} stored alerts",
            inbox.len(),
            m.stored_alerts
        );
        let limits = config();
        for (vault, info) in self.relay.store().vaults().expect("vaults read") {
            assert!(
                info.bytes <= limits.max_bytes_per_vault
                    && info.blobs <= limits.max_blobs_per_vault,
                "vault {vault:?} holds {} bytes in {} blobs, past its quota",
                info.bytes,
                info.blobs
            );
        }
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
