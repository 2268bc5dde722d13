//! Loopback tests of the node endpoint and the device connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;
use common::Node;

use vigil_net::{DeviceConnection, EnrolmentCode, NetError, ServerConfig};
use vigil_proto::{CloseReason, Exchange, ExchangeError, FrameHandler};

const CONNECT: Duration = Duration::from_secs(5);

/// Replies with the count of frames this connection has seen, then the frame;
/// panics on `boom` to exercise handler failure; takes 300 ms over `slow`.
struct Echo {
    seen: u8,
}

impl FrameHandler for Echo {
    fn handle(&mut self, request: &[u8], now_ms: i64) -> Vec<u8> {
        assert!(request != b"boom", "handler asked to fail");
        if request == b"slow" {
            std::thread::sleep(Duration::from_millis(300));
        }
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!(
            (wall - now_ms).abs() < 60_000,
            "now_ms {now_ms} is not the wall clock"
        );
        self.seen += 1;
        let mut out = vec![self.seen];
        out.extend_from_slice(request);
        out
    }

    // These tests are about the transport, not admission.
    fn authenticated(&self) -> bool {
        true
    }
}

fn start(config: ServerConfig) -> Node {
    common::start(config, || Box::new(Echo { seen: 0 }))
}

#[test]
fn echo_round_trips_per_connection_and_concurrently() {
    let node = start(ServerConfig::default());
    let mut dev = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    assert_eq!(dev.exchange(b"hello").unwrap(), b"\x01hello");
    assert_eq!(dev.exchange(b"").unwrap(), b"\x02");
    // Large requests are pushes (other kinds are held to 128 KiB).
    let big = vigil_proto::encode_request(&vigil_proto::Request::Push(vigil_proto::BundleItem {
        device: [1; 16],
        seq: 1,
        blob: vec![0x5a; 2 * 1024 * 1024],
    }));
    let reply = dev.exchange(&big).unwrap();
    assert_eq!((reply[0], &reply[1..]), (3, &big[..]));
    assert_eq!(dev.bytes_sent(), 5 + big.len() as u64);
    assert_eq!(dev.bytes_received(), 6 + 1 + big.len() as u64 + 1);

    // Each connection has its own handler; several devices at once.
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let code = &node.code;
            s.spawn(move || {
                let mut dev = DeviceConnection::connect(code, CONNECT).unwrap();
                for i in 1..=10u8 {
                    assert_eq!(dev.exchange(&[t, i]).unwrap(), [i, t, i]);
                }
                dev.close();
            });
        }
    });
    dev.close();
    node.stop();
}

#[test]
fn wrong_fingerprint_is_refused_quickly() {
    let node = start(ServerConfig::default());
    let mut code = node.code.clone();
    code.fingerprint[0] ^= 1;
    let started = Instant::now();
    let err = DeviceConnection::connect(&code, CONNECT).unwrap_err();
    assert!(matches!(err, NetError::FingerprintMismatch), "{err:?}");
    assert!(started.elapsed() < CONNECT);
    node.stop();
}

#[test]
fn silent_peer_times_out() {
    // A bound UDP socket that never answers: the handshake cannot complete.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let code = EnrolmentCode {
        addr: silent.local_addr().unwrap(),
        node_public: vigil_crypto::X25519PublicKey::from_bytes([9; 32]),
        fingerprint: [0; 32],
        receipt_key: vigil_crypto::VerifyKey::from_bytes([0; 32]),
    };
    let started = Instant::now();
    let err = DeviceConnection::connect(&code, Duration::from_millis(300)).unwrap_err();
    assert!(matches!(err, NetError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn oversized_request_resets_only_its_stream() {
    let node = start(ServerConfig {
        max_frame: 1024,
        ..ServerConfig::default()
    });
    let mut dev = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    let mut other = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    assert_eq!(dev.exchange(&[1; 1024]).unwrap().len(), 1025);
    for size in [1025, 64 * 1024] {
        let err = dev.exchange(&vec![2; size]).unwrap_err();
        assert_eq!(reason(&err), Some(CloseReason::FrameTooLarge), "{err}");
        assert!(err.to_string().contains("request frame too large"), "{err}");
    }
    // Same connection, same handler (the rejected frames never reached it).
    assert_eq!(dev.exchange(b"ok").unwrap(), b"\x02ok");
    assert_eq!(other.exchange(b"ok").unwrap(), b"\x01ok");
    node.stop();
}

#[test]
fn frame_tap_records_every_request() {
    let tap = Arc::new(Mutex::new(Vec::new()));
    let node = start(ServerConfig {
        frame_tap: Some(tap.clone()),
        ..ServerConfig::default()
    });
    let mut dev = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    dev.exchange(b"first").unwrap();
    dev.exchange(b"second").unwrap();
    dev.close();
    node.stop();
    assert_eq!(
        *tap.lock().unwrap(),
        vec![b"first".to_vec(), b"second".to_vec()]
    );
}

#[test]
fn connection_limit_refuses_extra_devices() {
    let node = start(ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    });
    let mut dev = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    let err = DeviceConnection::connect(&node.code, CONNECT).unwrap_err();
    assert!(matches!(err, NetError::Connect { .. }), "{err:?}");
    assert_eq!(dev.exchange(b"x").unwrap(), b"\x01x");
    // Once the first device leaves, its slot is free again.
    dev.close();
    let deadline = Instant::now() + CONNECT;
    let mut again = loop {
        match DeviceConnection::connect(&node.code, CONNECT) {
            Ok(d) => break d,
            Err(e) if Instant::now() < deadline => drop(e),
            Err(e) => panic!("slot never freed: {e}"),
        }
    };
    assert_eq!(again.exchange(b"y").unwrap(), b"\x01y");
    node.stop();
}

/// The node's reason for a reset stream or a closed connection.
fn reason(e: &ExchangeError) -> Option<CloseReason> {
    match e {
        ExchangeError::Refused(r) | ExchangeError::Closed(r) => Some(*r),
        _ => None,
    }
}

#[test]
fn handler_panic_closes_only_that_connection() {
    let node = start(ServerConfig::default());
    let mut dev = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    let err = dev.exchange(b"boom").unwrap_err();
    assert_eq!(reason(&err), Some(CloseReason::HandlerFailed), "{err}");
    assert!(err.to_string().contains("node handler failed"), "{err}");
    assert!(dev.exchange(b"again").is_err());
    let mut other = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    assert_eq!(other.exchange(b"fine").unwrap(), b"\x01fine");
    node.stop();
}

#[test]
fn shutdown_closes_devices_with_a_reason() {
    let node = start(ServerConfig::default());
    let mut dev = DeviceConnection::connect(&node.code, CONNECT).unwrap();
    dev.exchange(b"before").unwrap();
    let code = node.code.clone();
    node.stop();
    let err = dev.exchange(b"after").unwrap_err();
    assert_eq!(reason(&err), Some(CloseReason::ShuttingDown), "{err}");
    assert!(err.to_string().contains("node shutting down"), "{err}");
    assert!(DeviceConnection::connect(&code, Duration::from_millis(300)).is_err());
}

#[test]
fn drain_lets_requests_in_flight_finish_and_refuses_new_devices() {
    let node = start(ServerConfig::default());
    let code = node.code.clone();
    let mut dev = DeviceConnection::connect(&code, CONNECT).unwrap();
    dev.exchange(b"warm").unwrap();
    let started = Instant::now();
    while node.server.in_flight() > 0 {
        assert!(
            started.elapsed() < CONNECT,
            "the first request stays in flight"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let slow = std::thread::spawn(move || {
        let r = dev.exchange(b"slow");
        (r, dev)
    });
    let started = Instant::now();
    while node.server.in_flight() == 0 {
        assert!(
            started.elapsed() < CONNECT,
            "the slow request never arrived"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(node.rt.block_on(node.server.drain(Duration::from_secs(5))));
    assert_eq!(node.server.in_flight(), 0);
    // The request in flight got its whole answer.
    let (r, dev) = slow.join().unwrap();
    assert_eq!(r.unwrap(), b"\x02slow");
    dev.close();
    // A new device is refused while the node drains.
    assert!(DeviceConnection::connect(&code, Duration::from_millis(300)).is_err());
    node.stop();
}
