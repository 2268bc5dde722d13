//! The attackers: each runs one attack on its own connections until told to
//! stop, and counts what the node answered.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::Rng;
use serde::Serialize;
use vigil_crypto::{KeySchedule, RootKey, X25519PublicKey, wrap};
use vigil_net::{ClientEndpoint, DeviceConnection, EnrolmentCode};
use vigil_proto::alert::{
    ALERT_START, AlertPayload, episode_id, grant_id, round_onset, seal_alert,
};
use vigil_proto::{
    AlertWire, Exchange, GrantWire, MAX_FRAME, PROTOCOL_VERSION, Request, Response,
    decode_response, encode_request,
};

use super::Attack;

/// Every label an attacker puts in a forged grant starts with this, so the
/// node's inbox and grant list show which entries attackers made.
pub const FORGED_LABEL: &str = "attacker: forged resident";

/// Sizes of the attacks.
#[derive(Debug, Clone, Serialize)]
pub struct AttackSizes {
    /// Threads (each with its own connection) per attack.
    pub threads: usize,
    /// Bytes of one oversized frame.
    pub frame_bytes: usize,
    /// Entries in one `have` list.
    pub have_entries: usize,
    /// Connections the connection flood holds open.
    pub connections: usize,
}

/// What the attackers did and what the node answered, shared by their threads.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) requests: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    answers: Mutex<BTreeMap<String, u64>>,
    /// Grant ids of grants the node acknowledged to an attacker.
    pub(crate) forged_grants: Mutex<HashSet<[u8; 16]>>,
    /// Forged alerts the node said it stored.
    pub(crate) forged_alerts_stored: AtomicU64,
    /// Connections open at once, at most (the connection flood).
    pub(crate) peak_connections: AtomicU64,
}

impl Tally {
    fn count(&self, kind: impl Into<String>) {
        *self
            .answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind.into())
            .or_default() += 1;
    }

    pub(crate) fn answers(&self) -> BTreeMap<String, u64> {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// One attacker thread.
pub(crate) struct Attacker<'a> {
    pub(crate) attack: Attack,
    pub(crate) code: &'a EnrolmentCode,
    pub(crate) sizes: &'a AttackSizes,
    pub(crate) stop: &'a AtomicBool,
    pub(crate) tally: &'a Tally,
    pub(crate) rng: ChaCha20Rng,
    /// A ticket staff issued, for the attacks run by a resident turned
    /// attacker (pairing spam, `have` lists); `None` plays a stranger.
    pub(crate) ticket: Option<&'a vigil_proto::Ticket>,
}

/// A connection that has said hello; `None` until (re)connected.
struct Conn(Option<DeviceConnection>);

impl Attacker<'_> {
    /// Runs the attack until `stop`.
    pub(crate) fn run(mut self) {
        match self.attack {
            Attack::Connections => self.connection_flood(),
            Attack::Forge => forge_loop(self),
            _ => {
                let mut conn = Conn(None);
                let mut setup = Vec::new();
                // The frame of the two big attacks is built once.
                let big = match self.attack {
                    Attack::BigFrames => Some(self.big_frame()),
                    Attack::HaveList => Some(self.have_frame()),
                    _ => None,
                };
                while !self.stop.load(Ordering::Relaxed) {
                    if conn.0.is_none() {
                        conn.0 = self.connect(&mut setup);
                        if conn.0.is_none() {
                            std::thread::sleep(Duration::from_millis(100));
                            continue;
                        }
                    }
                    let frames = match &big {
                        Some(f) => vec![f.clone()],
                        None => self.next_frames(),
                    };
                    for f in frames {
                        if !self.send(&mut conn, &f) {
                            break;
                        }
                    }
                }
                if let Some(c) = conn.0.take() {
                    c.close();
                }
            }
        }
    }

    /// Connects, says hello, and for the attacks that need a mailbox of
    /// their own enrol one with their ticket and authenticate (without a
    /// ticket they are refused and the attack runs unauthenticated).
    fn connect(&mut self, setup: &mut Vec<Vec<u8>>) -> Option<DeviceConnection> {
        let c = match DeviceConnection::connect(self.code, Duration::from_secs(10)) {
            Ok(c) => c,
            Err(e) => {
                self.tally
                    .count(format!("connect failed: {}", short(&e.to_string())));
                return None;
            }
        };
        let mut conn = Conn(Some(c));
        if setup.is_empty() {
            setup.push(encode_request(&Request::Hello {
                version: PROTOCOL_VERSION,
            }));
            if matches!(self.attack, Attack::PairingSpam | Attack::HaveList) {
                let mut seed = [0u8; 32];
                self.rng.fill_bytes(&mut seed);
                let keys = KeySchedule::new(RootKey::from_bytes(seed));
                let vault = *keys.vault_id().as_bytes();
                let verifier = keys.mailbox_key(&self.code.node_id()).verifier().to_bytes();
                setup.push(encode_request(&match self.ticket {
                    Some(t) => Request::Enrol {
                        ticket: t.id,
                        secret: *t.secret.expose_secret(),
                        vault,
                        verifier,
                        // Within the ticket's period (the node caps it there).
                        expires_ms: super::now_ms() + 7 * 86_400_000,
                    },
                    None => Request::Register {
                        vault,
                        verifier,
                        expires_ms: i64::MAX,
                    },
                }));
                setup.push(encode_request(&Request::Auth {
                    vault,
                    key: *keys.mailbox_key(&self.code.node_id()).expose_secret(),
                }));
            }
        }
        for f in setup.iter() {
            if !self.send(&mut conn, f) {
                return None;
            }
        }
        conn.0
    }

    /// Sends one frame and counts the answer; false if the connection is gone.
    fn send(&self, conn: &mut Conn, frame: &[u8]) -> bool {
        let Some(c) = conn.0.as_mut() else {
            return false;
        };
        self.tally.requests.fetch_add(1, Ordering::Relaxed);
        self.tally
            .bytes_sent
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        match c.exchange(frame) {
            Ok(bytes) => {
                match decode_response(&bytes) {
                    Ok(Response::Error(e)) => self
                        .tally
                        .count(format!("refused: {}", short(&e.to_string()))),
                    Ok(r) => self.tally.count(format!("accepted: {}", variant(&r))),
                    Err(e) => self
                        .tally
                        .count(format!("undecodable answer: {}", short(&e.to_string()))),
                }
                true
            }
            Err(e) => {
                self.tally
                    .count(format!("transport: {}", short(&e.to_string())));
                if let Some(c) = conn.0.take() {
                    c.close();
                }
                false
            }
        }
    }

    /// The next request(s) of a small-frame attack.
    fn next_frames(&mut self) -> Vec<Vec<u8>> {
        match self.attack {
            Attack::Register => {
                let mut vault = [0u8; 16];
                let mut verifier = [0u8; 32];
                self.rng.fill_bytes(&mut vault);
                self.rng.fill_bytes(&mut verifier);
                vec![encode_request(&Request::Register {
                    vault,
                    verifier,
                    expires_ms: i64::MAX,
                })]
            }
            Attack::GrantKey => vec![encode_request(&Request::GrantKey)],
            Attack::Garbage => {
                let len = 1 + (self.rng.next_u32() as usize % 4096);
                let mut g = vec![0u8; len];
                self.rng.fill_bytes(&mut g);
                vec![g]
            }
            Attack::PairingSpam => {
                let mut slot = [0u8; 32];
                self.rng.fill_bytes(&mut slot);
                let mut wrapped = vec![0u8; 4096];
                self.rng.fill_bytes(&mut wrapped);
                vec![encode_request(&Request::PairOffer { slot, wrapped })]
            }
            // Built once, or run by their own loops.
            Attack::BigFrames | Attack::HaveList | Attack::Connections | Attack::Forge => {
                Vec::new()
            }
        }
    }

    /// A frame of `frame_bytes` that is not a request (read whole, then refused).
    fn big_frame(&self) -> Vec<u8> {
        let mut f = vec![0xA5; self.sizes.frame_bytes.min(MAX_FRAME)];
        // A valid version prefix, so the node reads on into the body.
        f[..2].copy_from_slice(&[PROTOCOL_VERSION as u8, 0]);
        f
    }

    /// A `Pull` with `have_entries` made-up devices (an authenticated session).
    fn have_frame(&mut self) -> Vec<u8> {
        let mut have = Vec::with_capacity(self.sizes.have_entries);
        for _ in 0..self.sizes.have_entries {
            let mut d = [0u8; 16];
            self.rng.fill_bytes(&mut d);
            have.push((d, 1));
        }
        // Sorted like a real version vector, so only its size is unusual.
        have.sort_unstable();
        let mut f = encode_request(&Request::Pull {
            have,
            max_bytes: 1 << 20,
        });
        f.truncate(MAX_FRAME);
        f
    }

    /// Holds up to `connections` connections open from this one address,
    /// saying hello on each in turn so none idles out.
    fn connection_flood(&mut self) {
        let hello = encode_request(&Request::Hello {
            version: PROTOCOL_VERSION,
        });
        let endpoint = match ClientEndpoint::new(self.code.addr, 1) {
            Ok(e) => e,
            Err(e) => {
                self.tally.count(format!("endpoint failed: {e}"));
                return;
            }
        };
        let mut open: Vec<Conn> = Vec::new();
        let mut next = 0usize;
        while !self.stop.load(Ordering::Relaxed) {
            open.retain(|c| c.0.is_some());
            if open.len() < self.sizes.connections {
                match endpoint.connect(self.code, Duration::from_secs(5)) {
                    Ok(c) => {
                        let mut c = Conn(Some(c));
                        if self.send(&mut c, &hello) {
                            open.push(c);
                        }
                    }
                    Err(e) => {
                        self.tally
                            .count(format!("connect failed: {}", short(&e.to_string())));
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                self.tally
                    .peak_connections
                    .fetch_max(open.len() as u64, Ordering::Relaxed);
            } else if !open.is_empty() {
                next = (next + 1) % open.len();
                self.send(&mut open[next], &hello);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        for c in open.into_iter().filter_map(|c| c.0) {
            c.close();
        }
    }
}

/// The forgery attack needs the node's answers (its grant key), so it runs
/// its own loop: a made-up resident per round.
fn forge_loop(mut a: Attacker<'_>) {
    let hello = encode_request(&Request::Hello {
        version: PROTOCOL_VERSION,
    });
    let mut conn = Conn(None);
    while !a.stop.load(Ordering::Relaxed) {
        if conn.0.is_none() {
            match DeviceConnection::connect(a.code, Duration::from_secs(10)) {
                Ok(c) => conn.0 = Some(c),
                Err(e) => {
                    a.tally
                        .count(format!("connect failed: {}", short(&e.to_string())));
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
            if !a.send(&mut conn, &hello) {
                continue;
            }
        }
        forge_once(&mut a, &mut conn);
    }
    if let Some(c) = conn.0.take() {
        c.close();
    }
}

/// One made-up resident with one fever alert.
fn forge_once(a: &mut Attacker<'_>, conn: &mut Conn) {
    let Some(Response::GrantKey { public }) = call(a, conn, &Request::GrantKey) else {
        return;
    };
    let mut seed = [0u8; 32];
    a.rng.fill_bytes(&mut seed);
    let keys = KeySchedule::new(RootKey::from_bytes(seed));
    let node_key = X25519PublicKey::from_bytes(public);
    let alert_key = keys.alert_key(&node_key);
    let Ok(wrapped) = wrap(&node_key, &alert_key, &mut a.rng) else {
        return;
    };
    let gid = grant_id(&alert_key);
    let now = now_ms();
    let grant = Request::Grant(GrantWire {
        grant_id: gid,
        grant_key: public,
        wrapped_key: wrapped.as_bytes().to_vec(),
        threshold_c: 38.0,
        confirm_count: 2,
        confirm_window_ms: 3_600_000,
        recovery_ms: 3_600_000,
        valid_from_ms: now - 86_400_000,
        valid_until_ms: now + 7 * 86_400_000,
        label: format!("{FORGED_LABEL} {}", hex4(&gid)),
    });
    if call(a, conn, &grant) != Some(Response::Ok) {
        return;
    }
    a.tally
        .forged_grants
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(gid);
    let onset = round_onset(now);
    let episode = episode_id(&alert_key, onset);
    let payload = AlertPayload {
        onset_ms: onset,
        level: 3,
        kind: ALERT_START,
    };
    let Ok(blob) = seal_alert(&alert_key, &gid, &episode, &payload, &mut a.rng) else {
        return;
    };
    let alert = Request::Alert(AlertWire {
        grant_id: gid,
        episode,
        kind: ALERT_START,
        blob,
    });
    if call(a, conn, &alert) == Some(Response::AlertAck { stored: true }) {
        a.tally.forged_alerts_stored.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sends a request and returns the node's answer, if one came back.
fn call(a: &Attacker<'_>, conn: &mut Conn, req: &Request) -> Option<Response> {
    let frame = encode_request(req);
    a.tally.requests.fetch_add(1, Ordering::Relaxed);
    a.tally
        .bytes_sent
        .fetch_add(frame.len() as u64, Ordering::Relaxed);
    let c = conn.0.as_mut()?;
    match c.exchange(&frame) {
        Ok(bytes) => {
            let r = decode_response(&bytes).ok();
            match &r {
                Some(Response::Error(e)) => {
                    a.tally.count(format!("refused: {}", short(&e.to_string())))
                }
                Some(r) => a.tally.count(format!("accepted: {}", variant(r))),
                None => a.tally.count("undecodable answer"),
            }
            r
        }
        Err(e) => {
            a.tally
                .count(format!("transport: {}", short(&e.to_string())));
            if let Some(c) = conn.0.take() {
                c.close();
            }
            None
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn hex4(b: &[u8]) -> String {
    b.iter().take(4).map(|x| format!("{x:02x}")).collect()
}

/// The variant's name, without its fields.
fn variant(r: &Response) -> String {
    let s = format!("{r:?}");
    s.split([' ', '{', '(']).next().unwrap_or("").to_owned()
}

/// An answer's kind: numbers (lengths, versions, offsets) become `N` and
/// the text is cut at 48 characters, so counts group by kind.
fn short(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('N') {
                out.push('N');
            }
        } else {
            out.push(c);
        }
    }
    out.chars().take(48).collect()
}
