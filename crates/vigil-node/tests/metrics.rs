//! The node's metrics after traffic through the in-process relay: the text
//! parses as Prometheus exposition, the counters count what happened, and
//! no label names a vault or a resident.

use std::collections::BTreeMap;

use vigil_crypto::{KeySchedule, NodeId, RootKey, X25519PublicKey};
use vigil_node::{MailboxStore, Relay, RelayConfig};
use vigil_proto::{
    BundleItem, FrameHandler, PROTOCOL_VERSION, ProtoError, Request, Response, decode_response,
    encode_request,
};

fn this_node() -> NodeId {
    NodeId::new(X25519PublicKey::from_bytes([0x4e; 32]), [0xce; 32])
}

struct Client {
    s: vigil_node::RelaySession,
}

impl Client {
    fn call(&mut self, r: Request) -> Response {
        decode_response(&self.s.handle(&encode_request(&r), 1_000)).unwrap()
    }
}

/// Parses Prometheus text: `name{labels} value` lines, comments skipped.
/// Panics on a line that is neither (so a format change fails the test).
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        assert!(m.insert(series.to_owned(), v).is_none(), "twice: {line}");
    }
    m
}

#[test]
fn traffic_shows_in_the_metrics_without_naming_anyone() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::new(
        MailboxStore::open(tmp.path()).unwrap(),
        RelayConfig::default(),
    );
    let before = parse(&relay.encode_metrics().unwrap());
    assert_eq!(before["vigil_node_connections_total"], 0.0);

    let keys = KeySchedule::new(RootKey::from_bytes([1; 32]));
    let vault = *keys.vault_id().as_bytes();
    let verifier = keys.mailbox_key(&this_node()).verifier().to_bytes();
    let mut rng =
        <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(7);
    let t = relay
        .issue_ticket("Ana, flat 12B", 3_600_000_000, 1_000, &mut rng)
        .unwrap();
    let mut c = Client { s: relay.session() };
    let hello = Request::Hello {
        version: PROTOCOL_VERSION,
    };
    assert!(matches!(c.call(hello.clone()), Response::HelloOk { .. }));
    let r = c.call(Request::Enrol {
        ticket: t.ticket.id,
        secret: *t.ticket.secret.expose_secret(),
        vault,
        verifier,
        expires_ms: 3_600_000_000,
    });
    assert!(matches!(r, Response::Enrolled { .. }), "{r:?}");
    // A wrong key, then the right one.
    let other = KeySchedule::new(RootKey::from_bytes([2; 32]));
    let bad = c.call(Request::Auth {
        vault,
        key: *other.mailbox_key(&this_node()).expose_secret(),
    });
    assert_eq!(bad, Response::Error(ProtoError::Unauthorized));
    let ok = c.call(Request::Auth {
        vault,
        key: *keys.mailbox_key(&this_node()).expose_secret(),
    });
    assert_eq!(ok, Response::Ok);
    for seq in 1..=3 {
        let r = c.call(Request::Push(BundleItem {
            device: [7; 16],
            seq,
            blob: vec![seq as u8; 100],
        }));
        assert!(matches!(r, Response::Ack { .. }), "{r:?}");
    }
    // Out of order: refused.
    let r = c.call(Request::Push(BundleItem {
        device: [7; 16],
        seq: 9,
        blob: vec![0; 10],
    }));
    assert!(matches!(r, Response::Error(ProtoError::OutOfOrder { .. })));
    // A malformed frame on a second connection, which then closes.
    let mut d = Client { s: relay.session() };
    d.s.handle(&[0xff, 0xff, 0xff], 1_000);
    drop(d);
    relay.sweep(2_000, 0).unwrap();

    let text = relay.encode_metrics().unwrap();
    let m = parse(&text);
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in\n{text}"));
    assert_eq!(get("vigil_node_connections_total"), 2.0);
    assert_eq!(get("vigil_node_connections_open"), 1.0);
    assert_eq!(
        get("vigil_node_requests_total{kind=\"push\",result=\"ok\"}"),
        3.0
    );
    assert_eq!(
        get("vigil_node_requests_total{kind=\"push\",result=\"refused\"}"),
        1.0
    );
    assert_eq!(
        get("vigil_node_requests_total{kind=\"auth\",result=\"ok\"}"),
        1.0
    );
    assert_eq!(
        get("vigil_node_requests_total{kind=\"malformed\",result=\"refused\"}"),
        1.0
    );
    assert_eq!(
        get("vigil_node_refusals_total{reason=\"unauthorized\"}"),
        1.0
    );
    assert_eq!(
        get("vigil_node_refusals_total{reason=\"out_of_order\"}"),
        1.0
    );
    assert_eq!(get("vigil_node_refusals_total{reason=\"malformed\"}"), 1.0);
    assert_eq!(get("vigil_node_bundles_stored_total"), 3.0);
    assert_eq!(get("vigil_node_bytes_stored_total"), 300.0);
    assert_eq!(get("vigil_node_vaults"), 1.0);
    assert!(get("vigil_node_blob_bytes") >= 300.0);
    assert!(get("vigil_node_store_size_bytes") > 0.0);
    assert_eq!(get("vigil_node_sweeps_total{result=\"ok\"}"), 1.0);
    assert_eq!(get("vigil_node_alerts_unacknowledged"), 0.0);
    // Nothing names the vault, the resident or the ticket.
    for secret in [
        hex::encode(vault),
        hex::encode(&vault[..4]),
        "Ana".to_owned(),
        hex::encode(t.ticket.id),
    ] {
        assert!(!text.contains(&secret), "{secret} in\n{text}");
    }
}
