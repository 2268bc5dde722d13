//! The simulated network between a device and the node: the real relay
//! code behind an `Exchange` that can drop requests, lose replies, deliver
//! a request twice, or hold a request back and deliver it late, after newer
//! ones (reordering), as the seed decides. Time passes between steps (the
//! virtual clock), which is the network's delay at this granularity.

use std::sync::{Arc, Mutex};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::Rng;
use vigil_crypto::NodeId;
use vigil_node::RelaySession;
use vigil_proto::{Exchange, ExchangeError, FrameHandler};

/// Per-link fault rates, in parts per thousand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Faults {
    pub(crate) drop_request: u32,
    pub(crate) lose_reply: u32,
    pub(crate) duplicate: u32,
    /// Held back: the device sees a timeout, the node gets it later.
    pub(crate) hold: u32,
}

impl Faults {
    pub(crate) const NONE: Faults = Faults {
        drop_request: 0,
        lose_reply: 0,
        duplicate: 0,
        hold: 0,
    };
}

/// One device's connection: a relay session, the node's clock, faults.
pub(crate) struct SimLink<'a> {
    pub(crate) session: &'a mut RelaySession,
    /// The node behind the session (the simulated node's identity).
    pub(crate) node: NodeId,
    pub(crate) now_ms: i64,
    pub(crate) faults: Faults,
    pub(crate) rng: &'a mut ChaCha20Rng,
    /// Every request frame the node received (the curious node's copy).
    pub(crate) tap: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Injected bug: acknowledge some pushes without storing them.
    pub(crate) drop_acked: bool,
    /// Where held-back requests wait (None: this link never holds).
    pub(crate) held: Option<&'a mut Vec<Vec<u8>>>,
}

impl<'a> SimLink<'a> {
    /// A link with `faults` that stores what it acknowledges and holds
    /// nothing back (no injected bug, no partition).
    pub(crate) fn new(
        session: &'a mut RelaySession,
        node: NodeId,
        now_ms: i64,
        faults: Faults,
        rng: &'a mut ChaCha20Rng,
        tap: Arc<Mutex<Vec<Vec<u8>>>>,
    ) -> Self {
        SimLink {
            session,
            node,
            now_ms,
            faults,
            rng,
            tap,
            drop_acked: false,
            held: None,
        }
    }
}

/// A simulated network failure: what a real transport would report as a
/// lost or unanswered exchange.
fn simulated(what: &'static str) -> ExchangeError {
    ExchangeError::Io {
        context: "simulated",
        source: std::io::Error::new(std::io::ErrorKind::TimedOut, what),
    }
}

impl Exchange for SimLink<'_> {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        let roll = |rng: &mut ChaCha20Rng| rng.next_u32() % 1000;
        // Late arrivals first: requests held back earlier reach the node
        // now, after the ones sent since (their replies go nowhere).
        if let Some(held) = self.held.as_deref_mut()
            && !held.is_empty()
            && roll(self.rng) < 300
        {
            for late in std::mem::take(held) {
                self.tap
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(late.clone());
                let _ = self.session.handle(&late, self.now_ms);
            }
        }
        if roll(self.rng) < self.faults.drop_request {
            return Err(simulated("request dropped"));
        }
        if let Some(held) = self.held.as_deref_mut()
            && roll(self.rng) < self.faults.hold
        {
            held.push(request.to_vec());
            return Err(simulated("request delayed"));
        }
        if self.drop_acked
            && roll(self.rng) < 100
            && let Ok(vigil_proto::Request::Push(b)) = vigil_proto::decode_request(request)
        {
            return Ok(vigil_proto::encode_response(&vigil_proto::Response::Ack {
                device: b.device,
                seq: b.seq,
            }));
        }
        self.tap
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request.to_vec());
        let mut reply = self.session.handle(request, self.now_ms);
        if roll(self.rng) < self.faults.duplicate {
            // The network delivered the request twice; the second reply wins.
            reply = self.session.handle(request, self.now_ms);
        }
        if roll(self.rng) < self.faults.lose_reply {
            return Err(simulated("reply lost"));
        }
        Ok(reply)
    }

    fn node(&self) -> NodeId {
        self.node
    }
}
