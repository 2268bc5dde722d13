//! Authenticated deletion (issue 15, finding 2): a grant is deleted only on
//! proof from the vault that holds it. Grant ids are printed publicly
//! (`vigil-node alerts --json`, `vigil enrol --json`), so knowing one must
//! not be enough to erase a resident's grant and unseen fever.

use vigil_crypto::{AlertKey, NodeId, SigningIdentity, VaultId, X25519Identity};
use vigil_node::{Node, NodeConfig, Relay};
use vigil_proto::alert::grant_id;
use vigil_proto::receipt::{ReceiptBody, verify_receipt};
use vigil_proto::{GrantDeletion, Request, Response};

mod common;
use common::*;

/// Sends `Shred` on a fresh session; the receipt's body.
fn shred(
    relay: &Relay,
    verify: &vigil_crypto::VerifyKey,
    vault: [u8; 16],
    key: [u8; 32],
    grants: Vec<GrantDeletion>,
) -> ReceiptBody {
    let reply = Client::new(relay).call(Request::Shred {
        vault,
        key,
        grants,
        notice: vec![],
    });
    let Response::Receipt(r) = reply else {
        panic!("no receipt: {reply:?}");
    };
    verify_receipt(verify, &r).unwrap()
}

/// The grant is there, with its unseen alert, untouched.
fn intact(relay: &Relay, id: &[u8; 16]) {
    assert!(
        relay
            .grants()
            .unwrap()
            .iter()
            .any(|g| g.grant.grant_id == *id),
        "the grant was deleted"
    );
    let inbox = relay.inbox().unwrap();
    let alert = inbox
        .iter()
        .find(|e| e.grant_id == *id)
        .expect("the unseen alert was deleted");
    assert!(alert.acked_ms.is_none());
    assert!(
        alert.monitoring_ended.is_none(),
        "the alert was marked as if the resident had shredded"
    );
}

fn nothing(body: &ReceiptBody) {
    assert_eq!(
        (body.grants, body.alerts, body.kept_unseen_alerts),
        (0, 0, 0),
        "{body:?}"
    );
}

#[test]
fn a_grant_id_alone_deletes_nothing_and_the_vaults_own_proof_does() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = SigningIdentity::from_bytes([5; 32]);
    let verify = signer.verify_key();
    let config = NodeConfig {
        grant_key_seed: Some([6; 32]),
        ..Default::default()
    };
    let node = Node::open(tmp.path(), &config)
        .unwrap()
        .with_receipts(&signer);
    let relay = node.relay().clone();
    let node_id = NodeId::new(X25519Identity::from_bytes([6; 32]).public_key(), [7; 32]);
    let (ana, ana_alert_key) = resident(&relay, &node_id, 1);
    let id = grant_id(&ana_alert_key);

    // An attacker read the grant id off `vigil-node alerts --json` and asks
    // for its deletion under a made-up vault: without a proof, with a
    // garbage one, or with a proof under a key of the attacker's own.
    let made_up = [0xee; 16];
    let own_key = AlertKey::from_bytes([9; 32]);
    for proof in [
        [0; 32],
        [0xff; 32],
        own_key.shred_proof(&VaultId::from_bytes(made_up), &id),
    ] {
        let body = shred(
            &relay,
            &verify,
            made_up,
            [0; 32],
            vec![GrantDeletion {
                grant_id: id,
                proof,
            }],
        );
        nothing(&body);
        intact(&relay, &id);
    }

    // A real resident of this node (Ben, whose mailbox key opens his own
    // mailbox) lists Ana's grant in his own shred: his mailbox goes, Ana's
    // grant stays. Nor does a proof Ana made for her own vault work in
    // another vault's request.
    let (ben, ben_alert_key) = resident(&relay, &node_id, 2);
    let ana_proof = ana_alert_key.shred_proof(&ana.vault_id(), &id);
    let body = shred(
        &relay,
        &verify,
        *ben.vault_id().as_bytes(),
        *ben.mailbox_key(&node_id).expose_secret(),
        vec![
            GrantDeletion {
                grant_id: id,
                proof: [1; 32],
            },
            GrantDeletion {
                grant_id: id,
                proof: ana_proof,
            },
        ],
    );
    nothing(&body);
    intact(&relay, &id);
    assert!(
        relay
            .store()
            .mailbox(ben.vault_id().as_bytes())
            .unwrap()
            .is_none()
    );
    let _ = ben_alert_key;

    // Ana's own shred, with her proof, deletes her grant; the fever staff
    // have not seen stays, marked (issue 14).
    let body = shred(
        &relay,
        &verify,
        *ana.vault_id().as_bytes(),
        *ana.mailbox_key(&node_id).expose_secret(),
        vec![GrantDeletion {
            grant_id: id,
            proof: ana_proof,
        }],
    );
    assert_eq!((body.grants, body.kept_unseen_alerts), (1, 1), "{body:?}");
    assert!(
        !relay
            .grants()
            .unwrap()
            .iter()
            .any(|g| g.grant.grant_id == id)
    );
    let kept = relay.inbox().unwrap();
    let alert = kept.iter().find(|e| e.grant_id == id).unwrap();
    assert!(alert.monitoring_ended.is_some());
}

/// After the node swept the mailbox (or it never existed), the vault's
/// proof alone still deletes its grant: the proof, not the mailbox, is
/// what authorises it.
#[test]
fn a_vault_without_a_mailbox_deletes_its_grant_with_its_proof() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = SigningIdentity::from_bytes([5; 32]);
    let config = NodeConfig {
        grant_key_seed: Some([6; 32]),
        ..Default::default()
    };
    let node = Node::open(tmp.path(), &config)
        .unwrap()
        .with_receipts(&signer);
    let relay = node.relay().clone();
    let node_id = NodeId::new(X25519Identity::from_bytes([6; 32]).public_key(), [7; 32]);
    let (keys, alert_key) = resident(&relay, &node_id, 3);
    let id = grant_id(&alert_key);
    let vault = *keys.vault_id().as_bytes();
    relay.store().delete_vault(&vault).unwrap();
    let body = shred(
        &relay,
        &signer.verify_key(),
        vault,
        [0; 32],
        vec![GrantDeletion {
            grant_id: id,
            proof: alert_key.shred_proof(&keys.vault_id(), &id),
        }],
    );
    assert_eq!((body.grants, body.kept_unseen_alerts), (1, 1), "{body:?}");
    assert!(relay.grants().unwrap().is_empty());
}
