//! Staff acknowledgement visible to the resident (issue 18, item 3): the
//! device keeps a sealed record of the alerts its node confirmed, asks the
//! node which of them staff acknowledged, and keeps the answer. A node that
//! cannot or will not tell (an old node, a refused proof) leaves the state
//! unknown without failing anything; a stranger learns nothing.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_crypto::{NodeId, X25519Identity, X25519PublicKey};
use vigil_device::{FileKeyStore, MemStorage, MemoryKeyStore, Period, Vault};
use vigil_log::{FeverRule, Metric, Unit};
use vigil_node::Relay;
use vigil_proto::alert::{ALERT_END, ALERT_START};
use vigil_proto::{
    AlertState, Exchange, ExchangeError, FrameHandler, ProtoError, Request, Response,
    decode_request, encode_request, encode_response,
};
use vigil_testkit::node_id;

const START: i64 = 1_790_035_200_000;
const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

struct Node {
    relay: Relay,
    public: X25519PublicKey,
    _dir: tempfile::TempDir,
}

fn node(seed: u8) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let config = vigil_node::NodeConfig {
        grant_key_seed: Some([seed; 32]),
        ..Default::default()
    };
    let relay = vigil_node::Node::open(dir.path(), &config)
        .unwrap()
        .relay()
        .clone();
    Node {
        relay,
        public: X25519Identity::from_bytes([seed; 32]).public_key(),
        _dir: dir,
    }
}

/// What a test's node does with an `AlertStatus` request; everything else
/// goes to the real relay session. Every request is recorded.
enum Status {
    /// The real node answers.
    Real,
    /// An old node: it cannot decode request 13.
    Old,
    /// The node refuses as for an unknown grant.
    Refuse,
    /// A lying node: claims staff acknowledged alerts nobody asked about.
    Lie,
    /// The request is rewritten to ask about `grant` (a cheating device
    /// pointing its question at another resident's grant).
    AskAbout([u8; 16]),
}

struct Conn {
    session: vigil_node::RelaySession,
    node: NodeId,
    now: i64,
    status: Status,
    seen: Vec<Request>,
    answers: Vec<Response>,
}

impl Exchange for Conn {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        let req = decode_request(request).unwrap();
        self.seen.push(req.clone());
        let resp = match (&self.status, req) {
            (Status::Old, Request::AlertStatus(_)) => encode_response(&Response::Error(
                ProtoError::Malformed("unknown variant".into()),
            )),
            (Status::Refuse, Request::AlertStatus(_)) => {
                encode_response(&Response::Error(ProtoError::UnknownGrant))
            }
            (Status::Lie, Request::AlertStatus(q)) => {
                let mut states: Vec<AlertState> = q
                    .alerts
                    .iter()
                    .map(|&(episode, kind)| AlertState {
                        episode: [0xab; 16],
                        kind,
                        stored: true,
                        acked_ms: Some(START + episode[0] as i64),
                    })
                    .collect();
                states.push(AlertState {
                    episode: [0xcd; 16],
                    kind: ALERT_START,
                    stored: true,
                    acked_ms: Some(START),
                });
                encode_response(&Response::AlertStatus(states))
            }
            (Status::AskAbout(grant), Request::AlertStatus(mut q)) => {
                q.grant_id = *grant;
                self.session
                    .handle(&encode_request(&Request::AlertStatus(q)), self.now)
            }
            _ => self.session.handle(request, self.now),
        };
        self.answers
            .push(vigil_proto::decode_response(&resp).unwrap());
        Ok(resp)
    }

    fn node(&self) -> NodeId {
        self.node
    }
}

fn conn(n: &Node, now: i64, status: Status) -> Conn {
    Conn {
        session: n.relay.session(),
        node: node_id(n.public),
        now,
        status,
        seen: Vec::new(),
        answers: Vec::new(),
    }
}

fn ticket(n: &Node, label: &str) -> vigil_device::Ticket {
    n.relay
        .issue_ticket(
            label,
            START + 7 * DAY,
            START,
            &mut ChaCha20Rng::seed_from_u64(77),
        )
        .unwrap()
        .ticket
}

/// A vault on `storage`, enrolled with `n` as `label`, with a fever on day
/// 2 from 10:00 to 12:00 (so it also ends), its two alerts delivered.
fn feverish(n: &Node, mut v: Vault, label: &str) -> Vault {
    v.enrol(
        &mut conn(n, START, Status::Real),
        &n.public,
        &ticket(n, label),
        FeverRule::default(),
        START,
    )
    .unwrap();
    for m in (8 * 60..16 * 60).step_by(10) {
        let temp = if (600..720).contains(&m) { 38.4 } else { 36.6 };
        v.record(
            Metric::BodyTemperature,
            temp,
            Unit::Celsius,
            START + DAY + m * MIN,
        )
        .unwrap();
    }
    let t = START + 2 * DAY;
    let r = v
        .send_alerts(&mut conn(n, t, Status::Real), &n.public, t)
        .unwrap();
    assert_eq!(r.delivered, 2, "start and end");
    v
}

fn mem_vault(seed: u64) -> Vault {
    Vault::create_with(
        Box::new(MemStorage::new()),
        Period::days(START, 7),
        Box::new(MemoryKeyStore::new()),
        &mut ChaCha20Rng::seed_from_u64(seed),
    )
    .unwrap()
}

/// The alert-status questions a connection carried: (grant, alerts asked).
fn asked(c: &Conn) -> Vec<([u8; 16], usize)> {
    c.seen
        .iter()
        .filter_map(|r| match r {
            Request::AlertStatus(q) => Some((q.grant_id, q.alerts.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn staff_acknowledgement_reaches_the_device_durably_and_is_not_asked_again() {
    let n = node(21);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keyfile = tmp.path().join("root.key");
    let v = Vault::create(
        &dir,
        Period::days(START, 7),
        Box::new(FileKeyStore::new(&keyfile)),
        &mut ChaCha20Rng::seed_from_u64(21),
    )
    .unwrap();
    let mut v = feverish(&n, v, "Ana");
    let grant = v.grants().unwrap()[0].grant_id;

    // Delivered: the outbox is empty, the device still knows both alerts.
    assert!(v.pending_alerts().unwrap().is_empty());
    let d = v.delivered_alerts().unwrap();
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d.iter().all(|a| a.grant_id == grant
        && a.delivered_ms == START + 2 * DAY
        && a.staff_acked_ms.is_none()));
    let kinds: Vec<u8> = d.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![ALERT_START, ALERT_END]);
    let inbox = n.relay.inbox().unwrap();
    let start = inbox.iter().find(|e| e.kind == ALERT_START).unwrap();
    assert_eq!(
        (d[0].episode, d[0].onset_ms, d[0].level),
        (start.episode, start.onset_ms, 2)
    );

    // Staff have not looked yet: the device asks, learns nothing new.
    let t = START + 2 * DAY + 10 * MIN;
    let mut c = conn(&n, t, Status::Real);
    let r = v.refresh_alert_status(&mut c, &n.public).unwrap();
    assert_eq!((r.asked, r.acknowledged, r.unknown), (2, 0, 0));
    assert_eq!(asked(&c), vec![(grant, 2)]);
    assert!(
        v.delivered_alerts()
            .unwrap()
            .iter()
            .all(|a| a.staff_acked_ms.is_none())
    );

    // Staff acknowledge the start.
    let acked_at = t + 5 * MIN;
    assert!(
        n.relay
            .ack_alert(&grant, &start.episode, ALERT_START, acked_at)
            .unwrap()
    );
    let r = v
        .refresh_alert_status(&mut conn(&n, acked_at + MIN, Status::Real), &n.public)
        .unwrap();
    assert_eq!((r.asked, r.acknowledged, r.unknown), (2, 1, 0));
    let d = v.delivered_alerts().unwrap();
    assert_eq!(d[0].staff_acked_ms, Some(acked_at));
    assert_eq!(d[1].staff_acked_ms, None);

    // Durable: after reopening, the device still knows; it asks only about
    // the alert not yet known acknowledged.
    drop(v);
    let mut v = Vault::open_at(&dir, &FileKeyStore::new(&keyfile), acked_at + 2 * MIN).unwrap();
    let d = v.delivered_alerts().unwrap();
    assert_eq!(
        d.iter().map(|a| a.staff_acked_ms).collect::<Vec<_>>(),
        vec![Some(acked_at), None]
    );
    let mut c = conn(&n, acked_at + 3 * MIN, Status::Real);
    v.refresh_alert_status(&mut c, &n.public).unwrap();
    assert_eq!(asked(&c), vec![(grant, 1)]);
    // Everything acknowledged: nothing left to ask, no request made.
    assert!(
        n.relay
            .ack_alert(&grant, &d[1].episode, ALERT_END, acked_at + 4 * MIN)
            .unwrap()
    );
    v.refresh_alert_status(&mut conn(&n, acked_at + 5 * MIN, Status::Real), &n.public)
        .unwrap();
    let mut c = conn(&n, acked_at + 6 * MIN, Status::Real);
    let r = v.refresh_alert_status(&mut c, &n.public).unwrap();
    assert_eq!(r.asked, 0);
    assert!(c.seen.is_empty(), "{:?}", c.seen);
    assert!(
        v.delivered_alerts()
            .unwrap()
            .iter()
            .all(|a| a.staff_acked_ms.is_some())
    );
}

#[test]
fn an_old_or_refusing_node_leaves_the_state_unknown_and_fails_nothing() {
    let n = node(22);
    let mut v = feverish(&n, mem_vault(22), "Ben");
    let grant = v.grants().unwrap()[0].grant_id;
    let start = n.relay.inbox().unwrap()[0].clone();
    assert!(
        n.relay
            .ack_alert(&grant, &start.episode, start.kind, START + 2 * DAY)
            .unwrap()
    );
    let t = START + 3 * DAY;
    for status in [Status::Old, Status::Refuse] {
        let mut c = conn(&n, t, status);
        let r = v.refresh_alert_status(&mut c, &n.public).unwrap();
        assert_eq!((r.asked, r.acknowledged, r.unknown), (2, 0, 2));
        assert!(
            v.delivered_alerts()
                .unwrap()
                .iter()
                .all(|a| a.staff_acked_ms.is_none())
        );
        // The same connection still works for the rest of a sync.
        v.sync(&mut c).unwrap();
    }
    // A node that answers about alerts nobody asked about is not believed.
    let mut c = conn(&n, t, Status::Lie);
    let r = v.refresh_alert_status(&mut c, &n.public).unwrap();
    assert_eq!(r.acknowledged, 0);
    assert!(
        v.delivered_alerts()
            .unwrap()
            .iter()
            .all(|a| a.staff_acked_ms.is_none())
    );
    // The honest node: now it shows.
    let r = v
        .refresh_alert_status(&mut conn(&n, t, Status::Real), &n.public)
        .unwrap();
    assert_eq!(r.acknowledged, 1);
}

#[test]
fn a_device_asking_about_another_residents_grant_learns_nothing() {
    let n = node(23);
    let mut ana = feverish(&n, mem_vault(23), "Ana");
    let mut bo = feverish(&n, mem_vault(24), "Bo");
    let ana_grant = ana.grants().unwrap()[0].grant_id;
    let bo_grant = bo.grants().unwrap()[0].grant_id;
    assert_ne!(ana_grant, bo_grant);
    // Staff acknowledge every alert, Ana's and Bo's.
    for e in n.relay.inbox().unwrap() {
        assert!(
            n.relay
                .ack_alert(&e.grant_id, &e.episode, e.kind, START + 2 * DAY + MIN)
                .unwrap()
        );
    }
    // Bo's device points its question at Ana's grant (read off the
    // dashboard): its proof is for Bo's grant, so the node refuses it like
    // an unknown grant. Bo learns nothing and nothing fails.
    let t = START + 3 * DAY;
    let mut c = conn(&n, t, Status::AskAbout(ana_grant));
    let r = bo.refresh_alert_status(&mut c, &n.public).unwrap();
    assert_eq!((r.acknowledged, r.unknown), (0, 2));
    assert_eq!(
        c.answers.last(),
        Some(&Response::Error(ProtoError::UnknownGrant))
    );
    assert!(
        bo.delivered_alerts()
            .unwrap()
            .iter()
            .all(|a| a.staff_acked_ms.is_none())
    );
    // Each device, asking honestly, learns about its own alerts only.
    ana.refresh_alert_status(&mut conn(&n, t, Status::Real), &n.public)
        .unwrap();
    bo.refresh_alert_status(&mut conn(&n, t, Status::Real), &n.public)
        .unwrap();
    for (v, g) in [(&ana, ana_grant), (&bo, bo_grant)] {
        let d = v.delivered_alerts().unwrap();
        assert_eq!(d.len(), 2);
        assert!(
            d.iter()
                .all(|a| a.grant_id == g && a.staff_acked_ms == Some(START + 2 * DAY + MIN))
        );
    }
}

#[test]
fn the_status_request_goes_only_to_the_node_of_the_grant() {
    let n = node(25);
    let other = node(26);
    let mut v = feverish(&n, mem_vault(25), "Cai");
    // A connection to another node: refused before anything is sent, as
    // send_alerts refuses (the proof is for this grant's node only).
    let mut c = conn(&other, START + 3 * DAY, Status::Real);
    assert!(matches!(
        v.refresh_alert_status(&mut c, &n.public),
        Err(vigil_device::SyncFailure::WrongNode)
    ));
    assert!(c.seen.is_empty());
    // Asked for the other node over its own connection: this vault holds
    // no grant there, so there is nothing to ask.
    let r = v.refresh_alert_status(&mut c, &other.public).unwrap();
    assert_eq!(r.asked, 0);
    assert!(c.seen.is_empty());
}
