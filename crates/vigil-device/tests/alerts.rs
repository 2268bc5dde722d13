//! The fever-alert capability against the real node code, in process.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_crypto::{KeySchedule, NodeId, RootKey, X25519Identity};
use vigil_device::{Disclosure, MemStorage, MemoryKeyStore, Period, Vault};
use vigil_log::{FeverRule, Metric, Unit};
use vigil_node::Relay;
use vigil_proto::alert::{ALERT_START, AlertPayload, grant_id, round_onset, seal_alert};
use vigil_proto::{
    AlertWire, Exchange, ExchangeError, FrameHandler, ProtoError, Request, Response,
    decode_response, encode_request,
};
use vigil_testkit::node_id;

const START: i64 = 1_790_035_200_000;
const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

struct Direct {
    session: vigil_node::RelaySession,
    node: NodeId,
    now: i64,
}

impl Exchange for Direct {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        Ok(self.session.handle(request, self.now))
    }

    fn node(&self) -> NodeId {
        self.node
    }
}

struct Node {
    relay: Relay,
    public: vigil_crypto::X25519PublicKey,
    _dir: tempfile::TempDir,
}

fn node(seed: u8) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let public = X25519Identity::from_bytes([seed; 32]).public_key();
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
        public,
        _dir: dir,
    }
}

/// Staff register a resident labelled `label` for the week: the ticket.
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

fn conn(n: &Node, now: i64) -> Direct {
    Direct {
        session: n.relay.session(),
        node: node_id(n.public),
        now,
    }
}

fn vault(seed: u64) -> Vault {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Vault::create_with(
        Box::new(MemStorage::new()),
        Period::days(START, 7),
        Box::new(MemoryKeyStore::new()),
        &mut rng,
    )
    .unwrap()
}

/// A phone (`vault(seed)`) enrolled with `n` under `label`, and a second
/// device that joined it through the node with an identity drawn from
/// `join_seed`.
fn enrolled_and_joined(n: &Node, seed: u64, join_seed: u64, label: &str) -> (Vault, Vault) {
    let mut rng = ChaCha20Rng::seed_from_u64(join_seed);
    let mut phone = vault(seed);
    phone
        .enrol(
            &mut conn(n, START),
            &n.public,
            &ticket(n, label),
            FeverRule::default(),
            START,
        )
        .unwrap();
    let id = X25519Identity::generate(&mut rng);
    phone
        .offer_pairing(&mut conn(n, START), &id.public_key(), START)
        .unwrap();
    let joined = Vault::fetch_join(&mut conn(n, START), &id)
        .unwrap()
        .confirm(
            Box::new(MemStorage::new()),
            Box::new(MemoryKeyStore::new()),
            &mut conn(n, START),
            &mut rng,
        )
        .unwrap();
    (phone, joined)
}

/// Temperature every 10 minutes for `days`, with `f(minute)` giving the value.
fn temps(v: &mut Vault, days: i64, f: impl Fn(i64) -> f64) {
    for m in (0..days * 1440).step_by(10) {
        v.record(
            Metric::BodyTemperature,
            f(m),
            Unit::Celsius,
            START + m * MIN,
        )
        .unwrap();
    }
}

#[test]
fn quiet_weeks_and_single_spikes_send_nothing() {
    let n = node(1);
    let mut v = vault(1);
    v.enrol(
        &mut conn(&n, START),
        &n.public,
        &ticket(&n, "Ana, flat 12"),
        FeverRule::default(),
        START,
    )
    .unwrap();
    // Sub-threshold all week, with one isolated spike above it.
    temps(&mut v, 7, |m| {
        if m == 3 * 1440 {
            37.8
        } else {
            36.4 + (m % 70) as f64 * 0.01
        }
    });
    let r = v
        .send_alerts(&mut conn(&n, START + 7 * DAY), &n.public, START + 7 * DAY)
        .unwrap();
    assert_eq!((r.delivered, r.pending), (0, 0));
    assert!(v.pending_alerts().unwrap().is_empty());
    assert!(n.relay.inbox().unwrap().is_empty());
    // The only disclosure is the grant itself.
    let d = v.disclosures().unwrap();
    assert_eq!(d.len(), 1);
    assert!(matches!(&d[0], Disclosure::Grant { label, .. } if label == "Ana, flat 12"));
}

#[test]
fn one_episode_one_alert_even_from_two_devices_and_retries() {
    let n = node(2);
    let (mut phone, mut tablet) = enrolled_and_joined(&n, 2, 9, "Ben");
    // The tablet enrols with the same node: the same grant.
    let g2 = tablet
        .enrol(
            &mut conn(&n, START),
            &n.public,
            &ticket(&n, "Ben"),
            FeverRule::default(),
            START,
        )
        .unwrap();
    assert_eq!(g2.grant_id, phone.grants().unwrap()[0].grant_id);
    // The tablet's enrolment replaced the grant record: the phone's one-time
    // key is destroyed with it, so a copy of the phone's grant frame no
    // longer unwraps the alert key once the grant is deleted.
    let keys: Vec<_> = std::fs::read_dir(n._dir.path().join("grant-keys"))
        .unwrap()
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "only the current grant's one-time key is kept"
    );

    // Fever on day 3, 10:00–12:00, recorded on the phone.
    let fever = |m: i64| {
        if (2 * 1440 + 600..2 * 1440 + 720).contains(&m) {
            38.4
        } else {
            36.6
        }
    };
    temps(&mut phone, 4, fever);
    let t = START + 4 * DAY;
    let r = phone.send_alerts(&mut conn(&n, t), &n.public, t).unwrap();
    assert_eq!(r.delivered, 2, "start and end");
    // The tablet learns the same episode by sync and sends it too: stored once.
    phone.sync(&mut conn(&n, t)).unwrap();
    tablet.sync(&mut conn(&n, t)).unwrap();
    let r = tablet.send_alerts(&mut conn(&n, t), &n.public, t).unwrap();
    assert_eq!(r.delivered, 2, "acknowledged as already stored");
    let inbox = n.relay.inbox().unwrap();
    assert_eq!(inbox.len(), 2);
    let onset = START + 2 * DAY + 600 * MIN;
    assert!(
        inbox
            .iter()
            .all(|e| e.onset_ms == round_onset(onset) && e.label == "Ben")
    );
    assert_eq!(inbox[0].level, 2, "peak 38.4 °C is band 2");
    // Disclosure log: grant, pairing, then sent + acknowledged for each alert.
    let d = phone.disclosures().unwrap();
    assert_eq!(
        d.iter()
            .filter(|x| matches!(x, Disclosure::AlertSent { .. }))
            .count(),
        2
    );
    assert_eq!(
        d.iter()
            .filter(|x| matches!(x, Disclosure::AlertAcknowledged { .. }))
            .count(),
        2
    );
    assert!(d.iter().any(|x| matches!(x, Disclosure::Pairing { .. })));
}

#[test]
fn forged_replayed_out_of_window_and_cross_grant_alerts_are_refused() {
    let n = node(3);
    let mut v = vault(3);
    let t = START + DAY;
    v.enrol(
        &mut conn(&n, START),
        &n.public,
        &ticket(&n, "Cy"),
        FeverRule::default(),
        START,
    )
    .unwrap();
    let g = v.grants().unwrap()[0].clone();
    // Someone else's grant on the same node.
    let mut other = vault(4);
    other
        .enrol(
            &mut conn(&n, START),
            &n.public,
            &ticket(&n, "Di"),
            FeverRule::default(),
            START,
        )
        .unwrap();

    // The alert key the resident's devices derive; an attacker's key.
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let keys = KeySchedule::new(RootKey::from_bytes([0x42; 32]));
    let attacker_key = keys.alert_key(&n.public);
    let call = |r: Request| at(&n, r, t);
    let onset = round_onset(t);
    let ep = [7u8; 16];
    let payload = AlertPayload {
        onset_ms: onset,
        level: 1,
        kind: ALERT_START,
    };

    // Forged: sealed with a key that is not the grant's.
    let forged = seal_alert(&attacker_key, &g.grant_id, &ep, &payload, &mut rng).unwrap();
    let alert = |grant_id, blob| {
        Request::Alert(AlertWire {
            grant_id,
            episode: ep,
            kind: ALERT_START,
            blob,
        })
    };
    assert_eq!(
        call(alert(g.grant_id, forged.clone())),
        Response::Error(ProtoError::ForgedAlert)
    );
    // Unknown grant (the attacker's own id was never granted).
    assert_eq!(
        call(alert(grant_id(&attacker_key), forged)),
        Response::Error(ProtoError::UnknownGrant)
    );
    // A genuine alert of the other resident replayed under this grant.
    let fever = |m: i64| {
        if (1440..1460).contains(&m) {
            38.0
        } else {
            36.5
        }
    };
    temps(&mut other, 2, fever);
    other.evaluate_alerts(t).unwrap();
    let pending = other.pending_alerts().unwrap();
    assert_eq!(pending.len(), 2, "start and end");
    let mut tap = Tap {
        inner: conn(&n, t),
        seen: vec![],
    };
    other.send_alerts(&mut tap, &n.public, t).unwrap();
    let Some(Request::Alert(genuine)) = tap
        .seen
        .iter()
        .find(|r| matches!(r, Request::Alert(_)))
        .cloned()
    else {
        panic!("no alert sent")
    };
    assert_eq!(n.relay.inbox().unwrap().len(), 2);
    let mut moved = genuine.clone();
    moved.grant_id = g.grant_id;
    assert_eq!(
        call(Request::Alert(moved)),
        Response::Error(ProtoError::ForgedAlert)
    );
    // Replay of the genuine one: acknowledged as already stored, inbox unchanged.
    assert_eq!(
        call(Request::Alert(genuine.clone())),
        Response::AlertAck { stored: false }
    );
    assert_eq!(n.relay.inbox().unwrap().len(), 2);
    // Outside the window: after the period ends, and an onset before it.
    let late = at(&n, Request::Alert(genuine), START + 8 * DAY);
    assert_eq!(late, Response::Error(ProtoError::OutsideWindow));
    assert_eq!(
        n.relay.inbox().unwrap().len(),
        2,
        "nothing refused reached the inbox"
    );
    // Revoked grant.
    n.relay.revoke_grant(&g.grant_id).unwrap();
    temps(&mut v, 2, fever);
    let r = v.send_alerts(&mut conn(&n, t), &n.public, t).unwrap();
    assert_eq!(
        (r.delivered, r.pending),
        (0, 2),
        "kept in the outbox, visible to the resident"
    );
    let p = &v.pending_alerts().unwrap()[0];
    assert!(!p.overdue(p.queued_ms + MIN));
    assert!(
        p.overdue(p.queued_ms + 16 * MIN),
        "the delivery watch flags it"
    );
}

/// One request on a fresh session (after Hello), at time `now`.
fn at(n: &Node, r: Request, now: i64) -> Response {
    let mut s = n.relay.session();
    s.handle(
        &encode_request(&Request::Hello {
            version: vigil_proto::PROTOCOL_VERSION,
        }),
        now,
    );
    decode_response(&s.handle(&encode_request(&r), now)).unwrap()
}

struct Tap {
    inner: Direct,
    seen: Vec<Request>,
}

impl Exchange for Tap {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        self.seen
            .push(vigil_proto::decode_request(request).unwrap());
        self.inner.exchange(request)
    }

    fn node(&self) -> NodeId {
        self.inner.node()
    }
}

#[test]
fn offline_at_onset_arrives_later_once_with_the_true_onset() {
    let n = node(6);
    // Not the seed of `vault(6)`: the joiner must draw another device id.
    let (mut phone, mut band) = enrolled_and_joined(&n, 6, 60, "Eve");
    // The band measures a fever at 03:00 on day 2 while nothing is online.
    let onset = START + DAY + 180 * MIN;
    for i in 0..4 {
        band.record(
            Metric::BodyTemperature,
            38.6,
            Unit::Celsius,
            onset + i * 5 * MIN,
        )
        .unwrap();
    }
    // Hours later the band syncs; the phone (holding the grant) pulls and sends.
    let later = onset + 6 * 60 * MIN;
    band.sync(&mut conn(&n, later)).unwrap();
    phone.sync(&mut conn(&n, later)).unwrap();
    let r = phone
        .send_alerts(&mut conn(&n, later), &n.public, later)
        .unwrap();
    assert_eq!(r.delivered, 1);
    let r = phone
        .send_alerts(&mut conn(&n, later + MIN), &n.public, later + MIN)
        .unwrap();
    assert_eq!(r.delivered, 0, "nothing sent twice");
    let inbox = n.relay.inbox().unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].onset_ms, round_onset(onset));
    assert_eq!(inbox[0].received_ms, later);
}

#[test]
fn node_restart_and_lost_acknowledgements_lose_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let id_bytes = [8u8; 32];
    let open_node = || {
        let config = vigil_node::NodeConfig {
            grant_key_seed: Some(id_bytes),
            ..Default::default()
        };
        vigil_node::Node::open(dir.path(), &config)
            .unwrap()
            .relay()
            .clone()
    };
    let public = X25519Identity::from_bytes(id_bytes).public_key();
    let mut v = vault(8);
    let t = START + 2 * DAY;
    {
        let relay = open_node();
        v.enrol(
            &mut Direct {
                session: relay.session(),
                node: node_id(public),
                now: START,
            },
            &public,
            &relay
                .issue_ticket(
                    "Flo",
                    START + 7 * DAY,
                    START,
                    &mut ChaCha20Rng::seed_from_u64(9),
                )
                .unwrap()
                .ticket,
            FeverRule::default(),
            START,
        )
        .unwrap();
    }
    temps(&mut v, 2, |m| {
        if (1440 + 60..1440 + 80).contains(&m) {
            38.1
        } else {
            36.6
        }
    });
    assert_eq!(v.pending_alerts().unwrap().len(), 2, "start and end queued");
    // The node restarts between two connections; the first reply is lost.
    let relay = open_node();
    struct LoseReply(Direct, bool);
    impl Exchange for LoseReply {
        fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
            let r = self.0.exchange(request)?;
            if !self.1 && matches!(decode_response(&r), Ok(Response::AlertAck { .. })) {
                self.1 = true;
                return Err(ExchangeError::ConnectionLost(
                    std::io::ErrorKind::ConnectionReset.into(),
                ));
            }
            Ok(r)
        }

        fn node(&self) -> NodeId {
            self.0.node()
        }
    }
    let mut flaky = LoseReply(
        Direct {
            session: relay.session(),
            node: node_id(public),
            now: t,
        },
        false,
    );
    assert!(v.send_alerts(&mut flaky, &public, t).is_err());
    drop(flaky);
    drop(relay);
    let relay = open_node();
    let r = v
        .send_alerts(
            &mut Direct {
                session: relay.session(),
                node: node_id(public),
                now: t,
            },
            &public,
            t,
        )
        .unwrap();
    assert_eq!(r.delivered, 2);
    assert_eq!(
        relay.inbox().unwrap().len(),
        2,
        "the first was stored once, the second delivered"
    );
    assert!(v.pending_alerts().unwrap().is_empty());
    // Staff acknowledge; it survives a restart.
    let e = relay.inbox().unwrap()[0].clone();
    assert!(
        relay
            .ack_alert(&e.grant_id, &e.episode, e.kind, t + MIN)
            .unwrap()
    );
    drop(relay);
    assert_eq!(open_node().inbox().unwrap()[0].acked_ms, Some(t + MIN));
}

/// Temperatures from the wristband's own bytes watch for fever exactly as
/// typed ones do: two packets at 38.0 °C queue the episode's start.
#[test]
fn gatt_temperatures_queue_a_fever_alert() {
    let n = node(16);
    let mut v = vault(16);
    v.enrol(
        &mut conn(&n, START),
        &n.public,
        &ticket(&n, "flat 16"),
        FeverRule::default(),
        START,
    )
    .unwrap();
    // 38.0 °C (380 × 10⁻¹), Celsius, no time stamp: recorded at arrival.
    let packet = [0x00, 0x7C, 0x01, 0x00, 0xFF];
    v.record_gatt(0x2A1C, &packet, START + 60 * MIN).unwrap();
    v.record_gatt(0x2A1C, &packet, START + 65 * MIN).unwrap();
    assert_eq!(v.log().len(), 2);
    assert_eq!(
        v.pending_alerts().unwrap().len(),
        1,
        "the fever's start is queued"
    );
}
