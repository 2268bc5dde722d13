//! Staff acknowledgement visible to the resident (issue 18): a device asks
//! the node, with a proof under its grant's alert key, whether staff
//! acknowledged its delivered alerts. Anyone else — a stranger with a grant
//! id read off the dashboard, or another resident's device — learns nothing.

use vigil_crypto::{AlertKey, NodeId, X25519Identity};
use vigil_node::{Node, NodeConfig, Relay};
use vigil_proto::alert::{ALERT_END, ALERT_START, grant_id};
use vigil_proto::{AlertState, AlertStatusQuery, ProtoError, Request, Response};
mod common;
use common::*;

fn status(relay: &Relay, grant_id: [u8; 16], proof: [u8; 32], episode: [u8; 16]) -> Response {
    Client::new(relay).call(Request::AlertStatus(AlertStatusQuery {
        grant_id,
        proof,
        alerts: vec![(episode, ALERT_START), (episode, ALERT_END)],
    }))
}

#[test]
fn only_the_grants_own_device_learns_that_staff_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        grant_key_seed: Some([6; 32]),
        ..Default::default()
    };
    let node = Node::open(tmp.path(), &config).unwrap();
    let relay = node.relay().clone();
    let node_id = NodeId::new(X25519Identity::from_bytes([6; 32]).public_key(), [7; 32]);
    let (_ana, ana_key) = resident(&relay, &node_id, 1);
    let (_bo, bo_key) = resident(&relay, &node_id, 2);
    let ana = grant_id(&ana_key);
    let bo = grant_id(&bo_key);
    let episode = [1; 16];

    // Before staff look: stored, not acknowledged; the end alert was never sent.
    assert_eq!(
        status(&relay, ana, ana_key.status_proof(&ana), episode),
        Response::AlertStatus(vec![
            AlertState {
                episode,
                kind: ALERT_START,
                stored: true,
                acked_ms: None,
            },
            AlertState {
                episode,
                kind: ALERT_END,
                stored: false,
                acked_ms: None,
            },
        ])
    );
    assert!(relay.ack_alert(&ana, &episode, ALERT_START, 5_000).unwrap());
    let Response::AlertStatus(states) = status(&relay, ana, ana_key.status_proof(&ana), episode)
    else {
        panic!("no status");
    };
    assert_eq!(states[0].acked_ms, Some(5_000));

    // A stranger who read Ana's grant id off the dashboard: no proof, a
    // garbage one, one under a key of their own, Bo's proof for Bo's grant
    // presented for Ana's, or Ana's deletion-style proof for another grant.
    // Each is refused exactly as an unknown grant is: nothing about Ana.
    let stranger = AlertKey::from_bytes([9; 32]);
    for (grant, proof) in [
        (ana, [0; 32]),
        (ana, stranger.status_proof(&ana)),
        (ana, bo_key.status_proof(&bo)),
        (ana, bo_key.status_proof(&ana)),
        (bo, ana_key.status_proof(&ana)),
        ([0xee; 16], stranger.status_proof(&[0xee; 16])),
    ] {
        assert_eq!(
            status(&relay, grant, proof, episode),
            Response::Error(ProtoError::UnknownGrant),
            "grant {grant:?} answered without its own proof"
        );
    }

    // Bo's own device sees Bo's alert only, unacknowledged: Ana's ack is hers.
    let Response::AlertStatus(states) = status(&relay, bo, bo_key.status_proof(&bo), [2; 16])
    else {
        panic!("no status");
    };
    assert_eq!(states[0].acked_ms, None);
    assert!(states[0].stored);
    // Asking Bo's grant about Ana's episode tells nothing of Ana's.
    let Response::AlertStatus(states) = status(&relay, bo, bo_key.status_proof(&bo), episode)
    else {
        panic!("no status");
    };
    assert!(states.iter().all(|s| !s.stored && s.acked_ms.is_none()));

    // Too many alerts in one question: a typed refusal.
    let reply = Client::new(&relay).call(Request::AlertStatus(AlertStatusQuery {
        grant_id: ana,
        proof: ana_key.status_proof(&ana),
        alerts: vec![(episode, ALERT_START); vigil_proto::MAX_ALERT_STATUS + 1],
    }));
    assert!(matches!(
        reply,
        Response::Error(ProtoError::TooManyEntries { .. })
    ));
}
