//! The node endpoint's front door, played by the attacker on loopback: the
//! pre-authentication budget, per-address connection limits and address
//! validation (QUIC Retry) when busy.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

mod common;

use vigil_net::{ClientEndpoint, DeviceConnection, NetError, ServerConfig};
use vigil_proto::{CloseReason, Exchange, ExchangeError, FrameHandler};

const CONNECT: Duration = Duration::from_secs(5);

/// Authenticates the connection on the frame `auth`; answers every frame
/// with its length (be64), so a reply never carries the request back.
struct Door {
    authed: bool,
}

impl FrameHandler for Door {
    fn handle(&mut self, request: &[u8], _now_ms: i64) -> Vec<u8> {
        if request == b"auth" {
            self.authed = true;
        }
        (request.len() as u64).to_be_bytes().to_vec()
    }

    fn authenticated(&self) -> bool {
        self.authed
    }
}

fn start(config: ServerConfig) -> common::Node {
    common::start(config, || Box::new(Door { authed: false }))
}

fn len(n: usize) -> Vec<u8> {
    (n as u64).to_be_bytes().to_vec()
}

/// The node's reason for a reset stream or a closed connection.
fn reason(e: &ExchangeError) -> Option<CloseReason> {
    match e {
        ExchangeError::Refused(r) | ExchangeError::Closed(r) => Some(*r),
        _ => None,
    }
}

#[test]
fn an_unauthenticated_megabyte_is_refused_unread() {
    let node = start(ServerConfig::default());
    let mut dev = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    assert_eq!(dev.exchange(b"hello").unwrap(), len(5));
    let before = dev.udp_bytes_sent();
    let err = dev.exchange(&vec![7; 1 << 20]).unwrap_err();
    assert_eq!(reason(&err), Some(CloseReason::PreAuthLimit), "{err}");
    assert!(err.to_string().contains("before authentication"), "{err}");
    // The node's flow control never let the stranger send it all.
    let sent = dev.udp_bytes_sent() - before;
    assert!(sent < 512 * 1024, "{sent} bytes went on the wire");
    // The connection goes on; once it authenticates, the limits lift (for
    // the kinds that carry blobs: a push).
    assert_eq!(dev.exchange(b"auth").unwrap(), len(4));
    let push = vigil_proto::encode_request(&vigil_proto::Request::Push(vigil_proto::BundleItem {
        device: [1; 16],
        seq: 1,
        blob: vec![7; 1 << 20],
    }));
    assert_eq!(dev.exchange(&push).unwrap(), len(push.len()));
    dev.close();
    node.stop();
}

#[test]
fn the_pre_authentication_budget_counts_requests_and_bytes() {
    let node = start(ServerConfig {
        pre_auth_requests: 3,
        ..ServerConfig::default()
    });
    let mut dev = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    for _ in 0..3 {
        assert_eq!(dev.exchange(b"knock").unwrap(), len(5));
    }
    let err = dev.exchange(b"knock").unwrap_err();
    assert_eq!(reason(&err), Some(CloseReason::PreAuthLimit), "{err}");
    // A device that authenticates in its budget is not counted further.
    let mut dev = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    assert_eq!(dev.exchange(b"auth").unwrap(), len(4));
    for _ in 0..10 {
        assert_eq!(dev.exchange(b"sync").unwrap(), len(4));
    }
    dev.close();

    let node2 = start(ServerConfig {
        pre_auth_max_frame: 40 * 1024,
        pre_auth_bytes: 100 * 1024,
        ..ServerConfig::default()
    });
    let mut dev = DeviceConnection::connect(&node2.code, CONNECT).unwrap();
    for _ in 0..2 {
        assert_eq!(dev.exchange(&[1; 40 * 1024]).unwrap(), len(40 * 1024));
    }
    // 80 KiB read so far: a third 40 KiB frame would pass 100 KiB.
    let err = dev.exchange(&[1; 40 * 1024]).unwrap_err();
    assert_eq!(reason(&err), Some(CloseReason::PreAuthLimit), "{err}");
    node.stop();
    node2.stop();
}

fn endpoint(ip: &str) -> ClientEndpoint {
    let addr: SocketAddr = format!("{ip}:0").parse().unwrap();
    ClientEndpoint::bind(addr, 1).unwrap()
}

#[test]
fn one_address_gets_only_its_share_of_connections() {
    let node = start(ServerConfig {
        max_connections_per_address: 2,
        ..ServerConfig::default()
    });
    let here = endpoint("127.0.0.1");
    let mut first = here.connect(&node.code, CONNECT).unwrap();
    let _second = here.connect(&node.code, CONNECT).unwrap();
    let err = here.connect(&node.code, CONNECT).unwrap_err();
    assert!(matches!(err, NetError::Connect { .. }), "{err:?}");
    // Another address still gets in.
    let elsewhere = endpoint("127.0.0.2");
    let mut other = elsewhere.connect(&node.code, CONNECT).unwrap();
    assert_eq!(other.exchange(b"hi").unwrap(), len(2));
    assert_eq!(first.exchange(b"hi").unwrap(), len(2));
    // A connection that closes gives its place back.
    first.close();
    let deadline = Instant::now() + CONNECT;
    let mut again = loop {
        match here.connect(&node.code, CONNECT) {
            Ok(d) => break d,
            Err(e) if Instant::now() < deadline => drop(e),
            Err(e) => panic!("the place was never given back: {e}"),
        }
    };
    assert_eq!(again.exchange(b"hi").unwrap(), len(2));
    node.stop();
}

#[test]
fn a_busy_node_validates_addresses_with_retry() {
    let node = start(ServerConfig {
        retry_from: 1,
        ..ServerConfig::default()
    });
    let mut first = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    assert_eq!(first.exchange(b"a").unwrap(), len(1));
    assert_eq!(node.server.retries(), 0, "not busy yet");
    let mut second = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    assert_eq!(second.exchange(b"b").unwrap(), len(1));
    assert_eq!(node.server.retries(), 1, "busy: the address was validated");
    node.stop();
}

#[test]
fn address_validation_can_be_always_on() {
    let node = start(ServerConfig {
        retry_from: 0,
        ..ServerConfig::default()
    });
    let mut dev = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    assert_eq!(dev.exchange(b"a").unwrap(), len(1));
    assert_eq!(node.server.retries(), 1);
    node.stop();
}

/// A resident turned attacker, authenticated, sends a megabyte `Pull` (a
/// million-entry `have` list): only bundle and snapshot pushes may be large,
/// so the node resets the stream after the first small part, unread, while
/// a megabyte push still goes through whole.
#[test]
fn an_authenticated_megabyte_is_read_only_for_a_push() {
    use vigil_proto::{BundleItem, MAX_SMALL_REQUEST, Request, encode_request};
    let tap = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let node = start(ServerConfig {
        frame_tap: Some(tap.clone()),
        ..ServerConfig::default()
    });
    let mut dev = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    assert_eq!(dev.exchange(b"auth").unwrap(), len(4));
    // A Pull whose have list claims (and carries) a megabyte.
    let mut pull = encode_request(&Request::Pull {
        have: vec![],
        max_bytes: 0,
    });
    pull.extend(std::iter::repeat_n(0u8, 1 << 20));
    let err = dev.exchange(&pull).unwrap_err();
    assert_eq!(reason(&err), Some(CloseReason::FrameTooLarge), "{err}");
    // The node stopped reading at the Pull's limit and never handled it.
    // (How much of the megabyte left the device before the reset arrived is
    // scheduling: quinn's stream window lets a sender get the whole of it
    // out on a loaded machine, so that is not what this test can claim.)
    let handled: Vec<usize> = tap.lock().unwrap().iter().map(Vec::len).collect();
    assert!(
        handled.iter().all(|&n| n <= MAX_SMALL_REQUEST),
        "the node handled a request over the small limit: {handled:?}"
    );
    // The connection stays usable, and a megabyte push is read whole.
    let push = encode_request(&Request::Push(BundleItem {
        device: [1; 16],
        seq: 1,
        blob: vec![9; 1 << 20],
    }));
    assert_eq!(dev.exchange(&push).unwrap(), len(push.len()));
}
