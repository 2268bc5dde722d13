//! Many device connections through one shared client endpoint.

use std::time::Duration;

mod common;

use vigil_net::{ClientEndpoint, NetError, ServerConfig};
use vigil_proto::{Exchange, FrameHandler};

const CONNECT: Duration = Duration::from_secs(5);

/// Replies with the count of frames this connection has seen, then the frame.
struct Echo(u8);

impl FrameHandler for Echo {
    fn handle(&mut self, request: &[u8], _now_ms: i64) -> Vec<u8> {
        self.0 += 1;
        let mut out = vec![self.0];
        out.extend_from_slice(request);
        out
    }

    // These tests are about the transport, not admission.
    fn authenticated(&self) -> bool {
        true
    }
}

#[test]
fn connections_share_one_endpoint_and_stay_separate() {
    let node = common::start(
        ServerConfig {
            max_connections: 40,
            ..ServerConfig::default()
        },
        || Box::new(Echo(0)),
    );
    let code = node.code.clone();
    let shared = ClientEndpoint::new(code.addr, 1).unwrap();
    // Whatever the kernel granted (it caps the request at net.core.rmem_max).
    assert!(shared.recv_buffer_size().is_some_and(|b| b > 0));
    // A pin mismatch is reported as such. Checked while the node has room:
    // a full node refuses a connection before its certificate is seen.
    // From an endpoint of its own: the refused connection lingers in its
    // endpoint's count while it drains, which `shared`'s count below must
    // not see (it did, under load: 41).
    let mut wrong = code.clone();
    wrong.fingerprint[0] ^= 1;
    let other = ClientEndpoint::new(code.addr, 1).unwrap();
    let err = other.connect(&wrong, CONNECT).unwrap_err();
    assert!(matches!(err, NetError::FingerprintMismatch), "{err:?}");
    drop(other);
    let mut conns: Vec<_> = (0..40)
        .map(|_| shared.connect(&code, CONNECT).unwrap())
        .collect();
    assert_eq!(shared.open_connections(), 40);
    // Each connection has its own session at the node.
    for (i, c) in conns.iter_mut().enumerate() {
        assert_eq!(c.exchange(&[i as u8]).unwrap(), vec![1, i as u8]);
    }
    assert_eq!(conns[3].exchange(b"x").unwrap(), b"\x02x");
    // The node's connection limit refuses the 41st, as for a private endpoint.
    let err = shared.connect(&code, CONNECT).unwrap_err();
    assert!(matches!(err, NetError::Connect { .. }), "{err:?}");
    // Connections work from other threads, concurrently.
    let handles: Vec<_> = conns
        .drain(..20)
        .enumerate()
        .map(|(i, mut c)| std::thread::spawn(move || (i, c.exchange(b"t").unwrap())))
        .collect();
    for h in handles {
        let (i, reply) = h.join().unwrap();
        let seen = if i == 3 { 3 } else { 2 };
        assert_eq!(reply, vec![seen, b't']);
    }
    // Closing returns at once and frees the node's slot.
    for c in conns {
        c.close();
    }
    drop(shared);
    node.stop();
}
