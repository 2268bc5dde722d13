//! The mailbox key is per node (issue 15, finding 4): what one node saw of
//! it — the `Auth` and `Shred` frames, byte for byte — opens nothing at
//! another node, while the vault's devices sync through either.

use std::sync::{Arc, Mutex};

use vigil_crypto::{NodeId, X25519Identity};
use vigil_device::{MemStorage, MemoryKeyStore, Period, SnapshotPolicy, Vault};
use vigil_log::{Metric, Unit};
use vigil_node::Relay;
use vigil_proto::{
    Exchange, ExchangeError, FrameHandler, PROTOCOL_VERSION, ProtoError, Request, Response,
    decode_request, decode_response, encode_request,
};
use vigil_testkit::{node_id, rng};

const START: i64 = 1_790_035_200_000;
const MIN: i64 = 60_000;

/// One community node: its relay, its identity, and every request frame it
/// received (what a dishonest operator keeps).
struct Node {
    relay: Relay,
    id: NodeId,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    _dir: tempfile::TempDir,
}

/// A node with both roles (relay and alert recipient) and receipts.
fn node(seed: u8) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let config = vigil_node::NodeConfig {
        grant_key_seed: Some([seed; 32]),
        ..Default::default()
    };
    let relay = vigil_node::Node::open(dir.path(), &config)
        .unwrap()
        .with_receipts(&vigil_crypto::SigningIdentity::from_bytes([seed; 32]))
        .relay()
        .clone();
    Node {
        relay,
        id: node_id(X25519Identity::from_bytes([seed; 32]).public_key()),
        seen: Arc::default(),
        _dir: dir,
    }
}

/// A device's connection to `node`, which keeps a copy of each frame.
struct Conn {
    session: vigil_node::RelaySession,
    node: NodeId,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    now: i64,
}

impl Exchange for Conn {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        self.seen.lock().unwrap().push(request.to_vec());
        Ok(self.session.handle(request, self.now))
    }

    fn node(&self) -> NodeId {
        self.node
    }
}

/// Staff at `n` register a resident for the week: the ticket.
fn ticket(n: &Node, label: &str) -> vigil_device::Ticket {
    let mut r = rng(99);
    n.relay
        .issue_ticket(label, START + 7 * 86_400_000, START, &mut r)
        .unwrap()
        .ticket
}

fn conn(n: &Node, now: i64) -> Conn {
    Conn {
        session: n.relay.session(),
        node: n.id,
        seen: n.seen.clone(),
        now,
    }
}

/// The first frame `n` received that `pick` selects, as the node saw it.
fn captured(n: &Node, pick: impl Fn(&Request) -> bool) -> Vec<u8> {
    n.seen
        .lock()
        .unwrap()
        .iter()
        .find(|f| decode_request(f).is_ok_and(|r| pick(&r)))
        .expect("the node saw such a frame")
        .clone()
}

/// The reply `n` gives to the exact bytes `frame` on a fresh session (after
/// a `Hello`): what an operator replaying a captured frame gets.
fn replay(n: &Node, frame: &[u8]) -> Response {
    let mut s = n.relay.session();
    let hello = encode_request(&Request::Hello {
        version: PROTOCOL_VERSION,
    });
    s.handle(&hello, START + MIN);
    decode_response(&s.handle(frame, START + MIN)).unwrap()
}

#[test]
fn a_mailbox_key_seen_by_one_node_opens_nothing_at_another() {
    let a = node(0xa1);
    let b = node(0xb2);
    assert_ne!(a.id, b.id);
    let period = Period::days(START, 7);
    let phone_keys = MemoryKeyStore::new();
    let mut r = rng(15);
    let mut phone = Vault::create_with(
        Box::new(MemStorage::new()),
        period,
        Box::new(phone_keys.clone()),
        &mut r,
    )
    .unwrap();
    phone
        .record(Metric::HeartRate, 61.0, Unit::BeatsPerMinute, START)
        .unwrap();
    // The phone uses both nodes (each registered it with a ticket); the
    // tablet pairs through A.
    phone
        .redeem_ticket(&mut conn(&a, START), &ticket(&a, "Ana"))
        .unwrap();
    phone
        .redeem_ticket(&mut conn(&b, START), &ticket(&b, "Ana"))
        .unwrap();
    phone.sync(&mut conn(&a, START)).unwrap();
    phone.sync(&mut conn(&b, START)).unwrap();
    let joiner = X25519Identity::generate(&mut r);
    phone
        .offer_pairing(&mut conn(&a, START), &joiner.public_key(), START)
        .unwrap();
    let mut tablet = Vault::fetch_join(&mut conn(&a, START), &joiner)
        .unwrap()
        .confirm(
            Box::new(MemStorage::new()),
            Box::new(MemoryKeyStore::new()),
            &mut conn(&a, START),
            &mut r,
        )
        .unwrap();
    assert_eq!(tablet.log().len(), 1);

    // Each node saw the key it was given; replayed at the other node, the
    // captured `Auth` is refused. At its own node it still opens the
    // mailbox (so the refusal is about the node, not the frame).
    let is_auth = |q: &Request| matches!(q, Request::Auth { .. });
    let auth_at_a = captured(&a, is_auth);
    let auth_at_b = captured(&b, is_auth);
    assert_eq!(
        replay(&b, &auth_at_a),
        Response::Error(ProtoError::Unauthorized),
        "node A's copy of the mailbox key must not open the vault's mailbox at node B"
    );
    assert_eq!(
        replay(&a, &auth_at_b),
        Response::Error(ProtoError::Unauthorized)
    );
    assert_eq!(replay(&a, &auth_at_a), Response::Ok);
    assert_eq!(replay(&b, &auth_at_b), Response::Ok);
    assert_ne!(auth_at_a, auth_at_b, "each node sees its own mailbox key");

    // The devices still sync through each node: the tablet writes through
    // B, the phone reads it through B and answers through A.
    tablet
        .record(Metric::HeartRate, 62.0, Unit::BeatsPerMinute, START + MIN)
        .unwrap();
    tablet
        .sync_with(&mut conn(&b, START + MIN), SnapshotPolicy::Never)
        .unwrap();
    phone.sync(&mut conn(&b, START + MIN)).unwrap();
    assert_eq!(phone.log().len(), 2);
    phone
        .record(
            Metric::HeartRate,
            63.0,
            Unit::BeatsPerMinute,
            START + 2 * MIN,
        )
        .unwrap();
    phone.sync(&mut conn(&a, START + 2 * MIN)).unwrap();
    tablet.sync(&mut conn(&a, START + 2 * MIN)).unwrap();
    assert_eq!(tablet.log().len(), 3);
    assert_eq!(phone.heads(), tablet.heads());

    // The phone shreds through A. A's copy of that request, replayed at B,
    // deletes nothing there: the tablet still syncs through B.
    let vault = *phone.vault_id().as_bytes();
    phone
        .shred_with_node(&mut conn(&a, START + 3 * MIN), &phone_keys, START + 3 * MIN)
        .unwrap();
    let shred_at_a = captured(&a, |q| matches!(q, Request::Shred { .. }));
    assert_eq!(
        replay(&b, &shred_at_a),
        Response::Error(ProtoError::Unauthorized)
    );
    assert!(b.relay.store().mailbox(&vault).unwrap().is_some());
    tablet.sync(&mut conn(&b, START + 4 * MIN)).unwrap();
}

/// A grant for node A sent over a connection to node B would hand B node
/// A's alert key (B unwraps it), with which B could forge or delete that
/// grant's alerts at A. The device refuses, and B receives nothing of it.
#[test]
fn a_grant_or_alert_for_one_node_never_goes_to_another() {
    let a = node(0xa1);
    let b = node(0xb2);
    let (mut v, _) = vigil_testkit::mem_vault(Period::days(START, 7), 16);
    let grant_frames = |n: &Node| {
        n.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|f| {
                decode_request(f).is_ok_and(|q| {
                    matches!(q, Request::GrantKey | Request::Grant(_) | Request::Alert(_))
                })
            })
            .count()
    };
    let at_a = ticket(&a, "Ana, flat 12B");
    let to_b_for_a = v.enrol(
        &mut conn(&b, START),
        a.id.x25519(),
        &at_a,
        vigil_log::FeverRule::default(),
        START,
    );
    assert!(
        matches!(to_b_for_a, Err(vigil_device::SyncFailure::WrongNode)),
        "{to_b_for_a:?}"
    );
    assert_eq!(grant_frames(&b), 0, "node B saw a grant meant for node A");
    assert!(v.grants().unwrap().is_empty(), "no grant recorded");

    // Enrolled with A over A's connection; the alerts of a fever go to A
    // only.
    v.enrol(
        &mut conn(&a, START),
        a.id.x25519(),
        &at_a,
        vigil_log::FeverRule::default(),
        START,
    )
    .unwrap();
    for (i, c) in [38.4, 38.6, 38.7].into_iter().enumerate() {
        let t = START + 60 * MIN + i as i64 * 5 * MIN;
        v.record(Metric::BodyTemperature, c, Unit::Celsius, t)
            .unwrap();
    }
    assert!(!v.pending_alerts().unwrap().is_empty());
    let t = START + 2 * 60 * MIN;
    let to_b = v.send_alerts(&mut conn(&b, t), a.id.x25519(), t);
    assert!(
        matches!(to_b, Err(vigil_device::SyncFailure::WrongNode)),
        "{to_b:?}"
    );
    assert_eq!(grant_frames(&b), 0, "node B saw node A's alerts");
    let r = v.send_alerts(&mut conn(&a, t), a.id.x25519(), t).unwrap();
    assert!(r.delivered > 0);
    assert!(!a.relay.inbox().unwrap().is_empty());
}
