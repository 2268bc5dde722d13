//! The setup the grant-proof tests share: a relay session speaking frames,
//! and a resident enrolled with a grant and one unseen fever alert.
#![allow(dead_code)] // each test file uses its own subset

use vigil_crypto::{AlertKey, KeySchedule, NodeId, RootKey, wrap};
use vigil_node::Relay;
use vigil_proto::alert::{ALERT_START, AlertPayload, grant_id, seal_alert};
use vigil_proto::{
    AlertWire, FrameHandler, GrantWire, PROTOCOL_VERSION, Request, Response, decode_response,
    encode_request,
};

pub(crate) const HOUR: i64 = 3_600_000;
pub(crate) const NOW: i64 = 1_000;

pub(crate) fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(seed)
}

pub(crate) struct Client(pub(crate) vigil_node::RelaySession);

impl Client {
    pub(crate) fn new(relay: &Relay) -> Client {
        let mut c = Client(relay.session());
        c.call(Request::Hello {
            version: PROTOCOL_VERSION,
        });
        c
    }

    pub(crate) fn call(&mut self, r: Request) -> Response {
        decode_response(&self.0.handle(&encode_request(&r), NOW)).unwrap()
    }
}

/// A resident's vault on the node: a mailbox, a grant and one fever alert
/// staff have not seen. Returns the vault's keys and its alert key.
pub(crate) fn resident(relay: &Relay, node: &NodeId, root: u8) -> (KeySchedule, AlertKey) {
    let keys = KeySchedule::new(RootKey::from_bytes([root; 32]));
    let vault = *keys.vault_id().as_bytes();
    let mut c = Client::new(relay);
    let mailbox = keys.mailbox_key(node);
    // Staff registered the resident (docs/spec.md §15): the ticket creates
    // the mailbox, and the authenticated session may give the grant.
    let t = relay
        .issue_ticket(
            &format!("resident {root}"),
            10 * HOUR,
            NOW,
            &mut rng(100 + u64::from(root)),
        )
        .unwrap();
    assert!(matches!(
        c.call(Request::Enrol {
            ticket: t.ticket.id,
            secret: *t.ticket.secret.expose_secret(),
            vault,
            verifier: mailbox.verifier().to_bytes(),
            expires_ms: 10 * HOUR,
        }),
        Response::Enrolled { .. }
    ));
    assert_eq!(
        c.call(Request::Auth {
            vault,
            key: *mailbox.expose_secret(),
        }),
        Response::Ok
    );
    let Response::GrantKey { public } = c.call(Request::GrantKey) else {
        panic!("no grant key");
    };
    let alert_key = keys.alert_key(node.x25519());
    let id = grant_id(&alert_key);
    let wrapped = wrap(
        &vigil_crypto::X25519PublicKey::from_bytes(public),
        &alert_key,
        &mut rng(u64::from(root)),
    )
    .unwrap();
    assert_eq!(
        c.call(Request::Grant(GrantWire {
            grant_id: id,
            grant_key: public,
            wrapped_key: wrapped.as_bytes().to_vec(),
            threshold_c: 38.0,
            confirm_count: 2,
            confirm_window_ms: HOUR,
            recovery_ms: HOUR,
            valid_from_ms: 0,
            valid_until_ms: 10 * HOUR,
            label: format!("resident {root}"),
        })),
        Response::Ok
    );
    let episode = [root; 16];
    let payload = AlertPayload {
        onset_ms: 0,
        level: 2,
        kind: ALERT_START,
    };
    let blob = seal_alert(&alert_key, &id, &episode, &payload, &mut rng(7)).unwrap();
    assert_eq!(
        c.call(Request::Alert(AlertWire {
            grant_id: id,
            episode,
            kind: ALERT_START,
            blob,
        })),
        Response::AlertAck { stored: true }
    );
    (keys, alert_key)
}
