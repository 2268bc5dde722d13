//! The relay's rules, through its frame handler: authentication, ordering,
//! quotas, snapshots, pairing slots, malformed frames, restarts.

use vigil_crypto::{KeySchedule, NodeId, RootKey, X25519PublicKey};
use vigil_node::{MailboxStore, Relay, RelayConfig};
use vigil_proto::{
    BundleItem, FrameHandler, PROTOCOL_VERSION, ProtoError, Request, Response, SnapshotItem,
    decode_response, encode_request,
};

/// The node these relays are (the relay itself never needs to know: it
/// compares verifiers; the device derives the key for it).
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

fn setup(relay: &Relay, keys: &KeySchedule) -> Client {
    let mut c = Client { s: relay.session() };
    assert_eq!(
        c.call(Request::Hello {
            version: PROTOCOL_VERSION
        }),
        Response::HelloOk {
            version: PROTOCOL_VERSION
        }
    );
    let vault = *keys.vault_id().as_bytes();
    enrol(&mut c, relay, keys, 10_000, 1_000 * 3_600_000);
    assert_eq!(
        c.call(Request::Auth {
            vault,
            key: *keys.mailbox_key(&this_node()).expose_secret()
        }),
        Response::Ok
    );
    c
}

/// Registers the vault's mailbox until `expires_ms`: with a ticket staff
/// issued until `ticket_end_ms` (spec §15) the first time, as a paired
/// device (`Register`, same verifier) after that.
fn enrol(c: &mut Client, relay: &Relay, keys: &KeySchedule, expires_ms: i64, ticket_end_ms: i64) {
    let vault = *keys.vault_id().as_bytes();
    let verifier = keys.mailbox_key(&this_node()).verifier().to_bytes();
    if relay.store().mailbox(&vault).unwrap().is_some() {
        let r = c.call(Request::Register {
            vault,
            verifier,
            expires_ms,
        });
        assert_eq!(r, Response::Ok);
        return;
    }
    let mut rng =
        <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(7);
    let t = relay
        .issue_ticket("a resident", ticket_end_ms, 1_000, &mut rng)
        .unwrap();
    let r = c.call(Request::Enrol {
        ticket: t.ticket.id,
        secret: *t.ticket.secret.expose_secret(),
        vault,
        verifier,
        expires_ms,
    });
    assert!(matches!(r, Response::Enrolled { .. }), "{r:?}");
}

fn push(c: &mut Client, seq: u64, blob: Vec<u8>) -> Response {
    c.call(Request::Push(BundleItem {
        device: [7; 16],
        seq,
        blob,
    }))
}

#[test]
fn authentication_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::new(
        MailboxStore::open(tmp.path()).unwrap(),
        RelayConfig::default(),
    );
    let keys = KeySchedule::new(RootKey::from_bytes([1; 32]));
    let other = KeySchedule::new(RootKey::from_bytes([2; 32]));
    drop(setup(&relay, &keys));
    let vault = *keys.vault_id().as_bytes();

    let mut c = Client { s: relay.session() };
    let err = |e| Response::Error(e);
    assert_eq!(
        c.call(Request::Auth {
            vault,
            key: [0; 32]
        }),
        err(ProtoError::HelloFirst)
    );
    c.call(Request::Hello {
        version: PROTOCOL_VERSION,
    });
    assert_eq!(
        c.call(Request::Hello { version: 99 }),
        err(ProtoError::UnsupportedVersion {
            supported: PROTOCOL_VERSION
        })
    );
    assert_eq!(push(&mut c, 1, vec![1]), err(ProtoError::NotAuthenticated));
    assert_eq!(
        c.call(Request::Auth {
            vault,
            key: *other.mailbox_key(&this_node()).expose_secret()
        }),
        err(ProtoError::Unauthorized)
    );
    assert_eq!(
        c.call(Request::Auth {
            vault: *other.vault_id().as_bytes(),
            key: *other.mailbox_key(&this_node()).expose_secret()
        }),
        err(ProtoError::UnknownVault)
    );
    assert_eq!(
        c.call(Request::Register {
            vault,
            verifier: other.mailbox_key(&this_node()).verifier().to_bytes(),
            expires_ms: 10_000
        }),
        err(ProtoError::AlreadyRegistered)
    );
    assert_eq!(push(&mut c, 1, vec![1]), err(ProtoError::NotAuthenticated));
    // Malformed frames get a typed error and the session goes on.
    assert!(matches!(
        decode_response(&c.s.handle(&[0xff, 0xff, 0xff], 0)).unwrap(),
        Response::Error(ProtoError::Malformed(_))
    ));
    let mut ok = encode_request(&Request::Hello {
        version: PROTOCOL_VERSION,
    });
    ok.push(0);
    assert!(matches!(
        decode_response(&c.s.handle(&ok, 0)).unwrap(),
        Response::Error(ProtoError::Malformed(_))
    ));
    assert_eq!(
        c.call(Request::Auth {
            vault,
            key: *keys.mailbox_key(&this_node()).expose_secret()
        }),
        Response::Ok
    );
}

#[test]
fn ordering_idempotence_quota_snapshot_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = KeySchedule::new(RootKey::from_bytes([3; 32]));
    let config = RelayConfig {
        max_bytes_per_vault: 1000,
        max_blobs_per_vault: 4,
        ..Default::default()
    };
    {
        let relay = Relay::new(MailboxStore::open(tmp.path()).unwrap(), config);
        let mut c = setup(&relay, &keys);
        assert_eq!(
            push(&mut c, 1, vec![1; 100]),
            Response::Ack {
                device: [7; 16],
                seq: 1
            }
        );
        // A retry of the same bundle is acknowledged again; a different one conflicts.
        assert_eq!(
            push(&mut c, 1, vec![1; 100]),
            Response::Ack {
                device: [7; 16],
                seq: 1
            }
        );
        assert_eq!(
            push(&mut c, 1, vec![2; 100]),
            Response::Error(ProtoError::Conflict)
        );
        assert_eq!(
            push(&mut c, 3, vec![1; 10]),
            Response::Error(ProtoError::OutOfOrder {
                expected: 2,
                got: 3
            })
        );
        assert_eq!(
            push(&mut c, 2, vec![2; 100]),
            Response::Ack {
                device: [7; 16],
                seq: 2
            }
        );
        assert!(matches!(
            push(&mut c, 3, vec![3; 900]),
            Response::Error(ProtoError::QuotaExceeded { .. })
        ));
        assert_eq!(
            push(&mut c, 3, vec![3; 100]),
            Response::Ack {
                device: [7; 16],
                seq: 3
            }
        );
        assert_eq!(
            push(&mut c, 4, vec![4; 10]),
            Response::Ack {
                device: [7; 16],
                seq: 4
            }
        );
        let err = push(&mut c, 5, vec![5; 10]);
        assert!(
            matches!(err, Response::Error(ProtoError::QuotaExceeded { ref what, limit: 4 }) if what == "blobs"),
            "{err:?}"
        );
    }
    // Restart: everything acknowledged is there.
    let relay = Relay::new(MailboxStore::open(tmp.path()).unwrap(), config);
    let mut c = setup(&relay, &keys);
    let Response::Bundles {
        bundles,
        snapshot: None,
        more: false,
    } = c.call(Request::Pull {
        have: vec![],
        max_bytes: 1 << 20,
    })
    else {
        panic!()
    };
    assert_eq!(
        bundles.iter().map(|b| b.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    // Paged pulls.
    let Response::Bundles {
        bundles,
        more: true,
        ..
    } = c.call(Request::Pull {
        have: vec![],
        max_bytes: 150,
    })
    else {
        panic!()
    };
    assert_eq!(bundles.len(), 1);
    assert_eq!(
        c.call(Request::Pull {
            have: vec![([7; 16], 4)],
            max_bytes: 1 << 20
        }),
        Response::UpToDate
    );
    // A snapshot covering 1..=3 drops them; a pull from zero gets it plus bundle 4.
    assert!(matches!(
        c.call(Request::PushSnapshot(SnapshotItem {
            covers: vec![([7; 16], 9)],
            blob: vec![0; 50]
        })),
        Response::Error(ProtoError::Malformed(_))
    ));
    assert_eq!(
        c.call(Request::PushSnapshot(SnapshotItem {
            covers: vec![([7; 16], 3)],
            blob: vec![0; 50]
        })),
        Response::Ack {
            device: [0; 16],
            seq: 0
        }
    );
    let Response::Bundles {
        bundles,
        snapshot: Some(s),
        ..
    } = c.call(Request::Pull {
        have: vec![],
        max_bytes: 1 << 20,
    })
    else {
        panic!()
    };
    assert_eq!(s.covers, vec![([7; 16], 3)]);
    assert_eq!(bundles.iter().map(|b| b.seq).collect::<Vec<_>>(), vec![4]);
    let (_, info) = relay.store().vaults().unwrap()[0];
    assert_eq!((info.blobs, info.bytes), (2, 60));
    // A retried push of a bundle folded into the snapshot is still acknowledged.
    assert_eq!(
        push(&mut c, 2, vec![2; 100]),
        Response::Ack {
            device: [7; 16],
            seq: 2
        }
    );
}

#[test]
fn pairing_slots_expire() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::new(
        MailboxStore::open(tmp.path()).unwrap(),
        RelayConfig::default(),
    );
    let keys = KeySchedule::new(RootKey::from_bytes([4; 32]));
    let mut c = setup(&relay, &keys);
    assert_eq!(
        c.call(Request::PairOffer {
            slot: [9; 32],
            wrapped: vec![1, 2, 3]
        }),
        Response::Ok
    );
    let mut joiner = Client { s: relay.session() };
    joiner.call(Request::Hello {
        version: PROTOCOL_VERSION,
    });
    assert_eq!(
        joiner.call(Request::PairFetch { slot: [9; 32] }),
        Response::PairOffer {
            wrapped: vec![1, 2, 3]
        }
    );
    assert_eq!(
        joiner.call(Request::PairFetch { slot: [8; 32] }),
        Response::Error(ProtoError::NotFound)
    );
    let late = decode_response(&joiner.s.handle(
        &encode_request(&Request::PairFetch { slot: [9; 32] }),
        1_000 + 16 * 60_000,
    ))
    .unwrap();
    assert_eq!(late, Response::Error(ProtoError::NotFound));
}

#[test]
fn a_pairing_slot_takes_one_offer_and_a_fetch_takes_it() {
    let relay = Relay::new(MailboxStore::in_memory(), RelayConfig::default());
    let mut c = setup(&relay, &KeySchedule::new(RootKey::from_bytes([4; 32])));
    let offer = |c: &mut Client, b: u8| {
        c.call(Request::PairOffer {
            slot: [9; 32],
            wrapped: vec![b; 3],
        })
    };
    assert_eq!(offer(&mut c, 1), Response::Ok);
    // Another vault that saw the joiner code comes second: refused, so the
    // first offer stands (first writer wins).
    let mut other = setup(&relay, &KeySchedule::new(RootKey::from_bytes([5; 32])));
    assert_eq!(offer(&mut other, 2), Response::Error(ProtoError::SlotTaken));
    assert_eq!(offer(&mut c, 3), Response::Error(ProtoError::SlotTaken));
    let mut joiner = Client { s: relay.session() };
    joiner.call(Request::Hello {
        version: PROTOCOL_VERSION,
    });
    assert_eq!(
        joiner.call(Request::PairFetch { slot: [9; 32] }),
        Response::PairOffer {
            wrapped: vec![1; 3]
        }
    );
    // Fetched means taken.
    assert_eq!(
        joiner.call(Request::PairFetch { slot: [9; 32] }),
        Response::Error(ProtoError::NotFound)
    );
    // An expired offer does not hold the slot.
    let store = MailboxStore::in_memory();
    assert!(store.put_pairing(&[7; 32], b"a", 1_000, 2_000).unwrap());
    assert!(!store.put_pairing(&[7; 32], b"b", 1_500, 2_500).unwrap());
    assert!(store.put_pairing(&[7; 32], b"c", 2_000, 3_000).unwrap());
    assert_eq!(
        store.take_pairing(&[7; 32], 2_100).unwrap(),
        Some(b"c".to_vec())
    );
    assert_eq!(store.take_pairing(&[7; 32], 2_100).unwrap(), None);
}

#[test]
fn sweeper_deletes_expired_vaults_only_and_is_restart_safe() {
    let tmp = tempfile::tempdir().unwrap();
    let mut vaults = vec![];
    {
        let relay = Relay::new(
            MailboxStore::open(tmp.path()).unwrap(),
            RelayConfig::default(),
        );
        for i in 0..6u8 {
            let keys = KeySchedule::new(RootKey::from_bytes([10 + i; 32]));
            let vault = *keys.vault_id().as_bytes();
            let mut c = Client { s: relay.session() };
            c.call(Request::Hello {
                version: PROTOCOL_VERSION,
            });
            // Vaults 0..3 end at 1_500, the others at 100_000.
            let expires_ms = if i < 3 { 1_500 } else { 100_000 };
            enrol(&mut c, &relay, &keys, expires_ms, expires_ms);
            c.call(Request::Auth {
                vault,
                key: *keys.mailbox_key(&this_node()).expose_secret(),
            });
            assert_eq!(
                push(&mut c, 1, vec![i; 300]),
                Response::Ack {
                    device: [7; 16],
                    seq: 1
                }
            );
            vaults.push(vault);
        }
        // With a grace of 500 ms nothing is due at 1_900.
        assert_eq!(relay.sweep(1_900, 500).unwrap().mailboxes, 0);
        let r = relay.sweep(2_000, 500).unwrap();
        assert_eq!((r.mailboxes, r.blobs, r.bytes), (3, 3, 900));
    }
    // After a restart: the swept ones stay gone, the others are intact, and
    // sweeping again deletes nothing more.
    let relay = Relay::new(
        MailboxStore::open(tmp.path()).unwrap(),
        RelayConfig::default(),
    );
    let left: Vec<_> = relay
        .store()
        .vaults()
        .unwrap()
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(left.len(), 3);
    for v in &vaults[3..] {
        assert!(left.contains(v));
        assert_eq!(relay.store().bundles(v).count(), 1);
    }
    for v in &vaults[..3] {
        assert_eq!(relay.store().bundles(v).count(), 0);
        assert!(relay.store().holdings(v).unwrap().is_empty());
    }
    assert_eq!(
        relay.sweep(2_000, 500).unwrap(),
        vigil_node::SweepReport::default()
    );
}

/// One sealed alert for `episode` under `key`'s grant.
fn alert_frame(key: &vigil_crypto::AlertKey, episode: u8, onset_ms: i64) -> Request {
    use vigil_proto::alert::{ALERT_START, AlertPayload, grant_id, seal_alert};
    let grant = grant_id(key);
    let episode = [episode; 16];
    let payload = AlertPayload {
        onset_ms,
        level: 2,
        kind: ALERT_START,
    };
    let mut rng = <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(
        u64::from(episode[0]),
    );
    Request::Alert(vigil_proto::AlertWire {
        grant_id: grant,
        episode,
        kind: ALERT_START,
        blob: seal_alert(key, &grant, &episode, &payload, &mut rng).unwrap(),
    })
}

#[test]
fn a_shred_keeps_an_alert_staff_have_not_seen_until_they_do() {
    use vigil_crypto::{AlertKey, SigningIdentity, X25519PublicKey, wrap};
    use vigil_node::{Node, NodeConfig};
    const HOUR: i64 = 3_600_000;
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
    let keys = KeySchedule::new(RootKey::from_bytes([9; 32]));
    let vault = *keys.vault_id().as_bytes();
    let mut c = setup(&relay, &keys);

    // A grant for a period of ten hours, from a one-time key the node issued.
    let Response::GrantKey { public } = c.call(Request::GrantKey) else {
        panic!("no grant key");
    };
    let alert_key = AlertKey::from_bytes([3; 32]);
    let grant_id = vigil_proto::alert::grant_id(&alert_key);
    let mut rng =
        <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(1);
    let wrapped = wrap(&X25519PublicKey::from_bytes(public), &alert_key, &mut rng).unwrap();
    let period_end = 10 * HOUR;
    let grant = Request::Grant(vigil_proto::GrantWire {
        grant_id,
        grant_key: public,
        wrapped_key: wrapped.as_bytes().to_vec(),
        threshold_c: 38.0,
        confirm_count: 2,
        confirm_window_ms: HOUR,
        recovery_ms: HOUR,
        valid_from_ms: 0,
        valid_until_ms: period_end,
        label: "Gil, flat 4".into(),
    });
    assert_eq!(c.call(grant), Response::Ok);
    // Two fevers: staff saw the first, not the second.
    for (episode, onset) in [(1, 0), (2, 3 * HOUR)] {
        assert_eq!(
            c.call(alert_frame(&alert_key, episode, onset)),
            Response::AlertAck { stored: true }
        );
    }
    assert!(relay.ack_alert(&grant_id, &[1; 16], 1, 2_000).unwrap());
    let key_file = tmp
        .path()
        .join(vigil_node::GRANT_KEYS_DIR)
        .join(format!("{}.key", hex_of(&public)));
    assert!(key_file.exists());

    // The resident shreds early.
    let Response::Receipt(receipt) = c.call(Request::Shred {
        vault,
        key: *keys.mailbox_key(&this_node()).expose_secret(),
        grants: vec![vigil_proto::GrantDeletion {
            grant_id,
            proof: alert_key.shred_proof(&keys.vault_id(), &grant_id),
        }],
        notice: vec![],
    }) else {
        panic!("no receipt");
    };
    let body = vigil_proto::receipt::verify_receipt(&verify, &receipt).unwrap();
    assert_eq!(
        (body.grants, body.alerts, body.kept_unseen_alerts),
        (1, 1, 1),
        "{body:?}"
    );
    assert!(relay.store().mailbox(&vault).unwrap().is_none());
    assert!(relay.grants().unwrap().is_empty());
    assert!(!key_file.exists(), "the grant's one-time key is destroyed");
    let inbox = relay.inbox().unwrap();
    assert_eq!(inbox.len(), 1, "the unseen fever stays: {inbox:?}");
    assert_eq!(inbox[0].episode, [2; 16]);
    assert!(inbox[0].acked_ms.is_none());
    let marked = inbox[0].monitoring_ended.expect("marked");
    assert_eq!((marked.at_ms, marked.period_end_ms), (1_000, period_end));
    // It is not deleted by a sweep before the period's end plus grace.
    assert_eq!(relay.sweep(period_end, HOUR).unwrap().alerts, 0);
    assert_eq!(relay.inbox().unwrap().len(), 1);

    // Staff acknowledge it: it goes at once.
    assert!(relay.ack_alert(&grant_id, &[2; 16], 1, 3_000).unwrap());
    assert!(relay.inbox().unwrap().is_empty());

    // Had they not, the sweep after the period's end plus grace removes it.
    let keys2 = KeySchedule::new(RootKey::from_bytes([10; 32]));
    let vault2 = *keys2.vault_id().as_bytes();
    let mut c2 = setup(&relay, &keys2);
    let Response::GrantKey { public: public2 } = c2.call(Request::GrantKey) else {
        panic!("no grant key");
    };
    let alert_key2 = AlertKey::from_bytes([4; 32]);
    let grant_id2 = vigil_proto::alert::grant_id(&alert_key2);
    let wrapped2 = wrap(&X25519PublicKey::from_bytes(public2), &alert_key2, &mut rng).unwrap();
    assert_eq!(
        c2.call(Request::Grant(vigil_proto::GrantWire {
            grant_id: grant_id2,
            grant_key: public2,
            wrapped_key: wrapped2.as_bytes().to_vec(),
            threshold_c: 38.0,
            confirm_count: 2,
            confirm_window_ms: HOUR,
            recovery_ms: HOUR,
            valid_from_ms: 0,
            valid_until_ms: period_end,
            label: "Ana, flat 9".into(),
        })),
        Response::Ok
    );
    assert_eq!(
        c2.call(alert_frame(&alert_key2, 3, HOUR)),
        Response::AlertAck { stored: true }
    );
    let Response::Receipt(_) = c2.call(Request::Shred {
        vault: vault2,
        key: *keys2.mailbox_key(&this_node()).expose_secret(),
        grants: vec![vigil_proto::GrantDeletion {
            grant_id: grant_id2,
            proof: alert_key2.shred_proof(&keys2.vault_id(), &grant_id2),
        }],
        notice: vec![],
    }) else {
        panic!("no receipt");
    };
    assert_eq!(relay.inbox().unwrap().len(), 1);
    assert_eq!(relay.sweep(period_end + HOUR - 1, HOUR).unwrap().alerts, 0);
    assert_eq!(relay.sweep(period_end + HOUR, HOUR).unwrap().alerts, 1);
    assert!(relay.inbox().unwrap().is_empty());
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A device whose session authenticated before another device shredded the
/// vault is told, with the notice, on its next request (not "unknown vault").
#[test]
fn a_session_open_across_a_shred_is_told_of_it() {
    use vigil_crypto::SigningIdentity;
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::new(
        MailboxStore::open(tmp.path()).unwrap(),
        RelayConfig::default(),
    )
    .with_receipts(SigningIdentity::from_bytes([5; 32]));
    let keys = KeySchedule::new(RootKey::from_bytes([9; 32]));
    let mut tablet = setup(&relay, &keys);
    let mut phone = setup(&relay, &keys);
    assert!(matches!(
        phone.call(Request::Shred {
            vault: *keys.vault_id().as_bytes(),
            key: *keys.mailbox_key(&this_node()).expose_secret(),
            grants: vec![],
            notice: b"sealed notice".to_vec(),
        }),
        Response::Receipt(_)
    ));
    assert_eq!(
        tablet.call(Request::Pull {
            have: vec![],
            max_bytes: 1 << 20
        }),
        Response::Error(ProtoError::VaultShredded {
            notice: b"sealed notice".to_vec()
        })
    );
}
