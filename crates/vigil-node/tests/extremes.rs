//! Extreme integers through the relay's frame handler (issue 15, finding 4):
//! every i64/u64 that comes off the wire or out of a stored record meets
//! checked or saturating arithmetic, so `i64::MIN`, `i64::MAX` and
//! `u64::MAX` get an answer, never a panic (tests build with overflow
//! checks on, so an unchecked `+` or `-` fails here).

use vigil_crypto::{AlertKey, KeySchedule, NodeId, RootKey, X25519PublicKey, wrap};
use vigil_node::{MailboxInfo, Node, NodeConfig, Relay, RelayConfig};
use vigil_proto::alert::{ALERT_END, ALERT_START, AlertPayload, grant_id, seal_alert};
use vigil_proto::{
    AlertWire, BundleItem, FrameHandler, GrantDeletion, GrantWire, PROTOCOL_VERSION, Request,
    Response, SnapshotItem, decode_response, encode_request,
};

const I64S: [i64; 7] = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
const U64S: [u64; 5] = [0, 1, u64::MAX / 2, u64::MAX - 1, u64::MAX];

fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(seed)
}

/// Sends `r` at `now_ms`; the reply must decode (no panic on the way).
fn call(s: &mut vigil_node::RelaySession, r: &Request, now_ms: i64) -> Response {
    decode_response(&s.handle(&encode_request(r), now_ms)).expect("a reply frame")
}

/// A session authenticated for vault `n`, which a staff ticket enrolled
/// (docs/spec.md §15): what `GrantKey` and `Grant` need.
fn enrolled(relay: &Relay, n: u8, now_ms: i64) -> vigil_node::RelaySession {
    let mut s = hello(relay, now_ms);
    let keys = KeySchedule::new(RootKey::from_bytes([n; 32]));
    let vault = *keys.vault_id().as_bytes();
    let mailbox = keys.mailbox_key(&node());
    let t = relay
        .issue_ticket("edge", i64::MAX, now_ms, &mut rng(u64::from(n)))
        .unwrap();
    let enrolled = call(
        &mut s,
        &Request::Enrol {
            ticket: t.ticket.id,
            secret: *t.ticket.secret.expose_secret(),
            vault,
            verifier: mailbox.verifier().to_bytes(),
            expires_ms: now_ms + 86_400_000,
        },
        now_ms,
    );
    assert!(
        matches!(enrolled, Response::Enrolled { .. }),
        "{enrolled:?}"
    );
    let authed = call(
        &mut s,
        &Request::Auth {
            vault,
            key: *mailbox.expose_secret(),
        },
        now_ms,
    );
    assert_eq!(authed, Response::Ok);
    s
}

fn hello(relay: &Relay, now_ms: i64) -> vigil_node::RelaySession {
    let mut s = relay.session();
    call(
        &mut s,
        &Request::Hello {
            version: PROTOCOL_VERSION,
        },
        now_ms,
    );
    s
}

fn node() -> NodeId {
    NodeId::new(X25519PublicKey::from_bytes([0x4e; 32]), [0xce; 32])
}

/// A session authenticated for a vault whose mailbox record says `info`
/// (written straight to the store, as a damaged or hostile store would).
fn authed(relay: &Relay, root: u8, info: MailboxInfo, now_ms: i64) -> vigil_node::RelaySession {
    let keys = KeySchedule::new(RootKey::from_bytes([root; 32]));
    let vault = *keys.vault_id().as_bytes();
    let mailbox = keys.mailbox_key(&node());
    relay
        .store()
        .put_mailbox(
            &vault,
            &MailboxInfo {
                verifier: mailbox.verifier().to_bytes(),
                ..info
            },
        )
        .unwrap();
    let mut s = hello(relay, now_ms);
    call(
        &mut s,
        &Request::Auth {
            vault,
            key: *mailbox.expose_secret(),
        },
        now_ms,
    );
    s
}

#[test]
fn extreme_sync_integers_get_answers_not_panics() {
    let config = RelayConfig {
        max_bytes_per_vault: u64::MAX,
        max_blobs_per_vault: u64::MAX,
        pairing_ttl_ms: i64::MAX,
        max_pull_bytes: u32::MAX,
        ..RelayConfig::default()
    };
    let relay = Relay::new(vigil_node::MailboxStore::in_memory(), config);
    for (i, &now) in [0, 1_000, i64::MAX - 1].iter().enumerate() {
        // Registration with every expiry.
        for (j, &expires_ms) in I64S.iter().enumerate() {
            let mut s = hello(&relay, now);
            call(
                &mut s,
                &Request::Register {
                    vault: [u8::try_from(i * 16 + j).unwrap(); 16],
                    verifier: [1; 32],
                    expires_ms,
                },
                now,
            );
        }
        // Stored counters at their limits, then pushes, snapshots, pulls
        // and pairing offers with extreme values.
        for (k, &counter) in U64S.iter().enumerate() {
            let info = MailboxInfo {
                verifier: [0; 32],
                expires_ms: i64::MAX,
                bytes: counter,
                blobs: counter,
            };
            let mut s = authed(&relay, 100 + u8::try_from(i * 8 + k).unwrap(), info, now);
            let device = [7; 16];
            for &seq in &U64S {
                call(
                    &mut s,
                    &Request::Push(BundleItem {
                        device,
                        seq,
                        blob: vec![1; 40],
                    }),
                    now,
                );
            }
            for &seq in &U64S {
                call(
                    &mut s,
                    &Request::PushSnapshot(SnapshotItem {
                        covers: vec![(device, seq)],
                        blob: vec![2; 40],
                    }),
                    now,
                );
                call(
                    &mut s,
                    &Request::Pull {
                        have: vec![(device, seq), ([8; 16], seq)],
                        max_bytes: u32::MAX,
                    },
                    now,
                );
            }
            call(
                &mut s,
                &Request::PairOffer {
                    slot: [u8::try_from(k).unwrap(); 32],
                    wrapped: vec![3; 82],
                },
                now,
            );
        }
    }
    // A stored highest seq of u64::MAX (a record no honest push makes).
    let mut s = authed(
        &relay,
        250,
        MailboxInfo {
            verifier: [0; 32],
            expires_ms: i64::MAX,
            bytes: 0,
            blobs: 0,
        },
        0,
    );
    let vault = *KeySchedule::new(RootKey::from_bytes([250; 32]))
        .vault_id()
        .as_bytes();
    let top = BundleItem {
        device: [9; 16],
        seq: u64::MAX,
        blob: vec![4; 40],
    };
    let info = relay.store().mailbox(&vault).unwrap().unwrap();
    relay.store().append(&vault, &top, &info).unwrap();
    for &seq in &U64S {
        call(
            &mut s,
            &Request::Push(BundleItem {
                device: [9; 16],
                seq,
                blob: vec![5; 40],
            }),
            0,
        );
    }
    // The sweeper over all of it, at extreme times and graces.
    for &now in &I64S {
        for &grace in &I64S {
            relay.sweep(now, grace).unwrap();
        }
    }
}

#[test]
fn extreme_grant_and_alert_integers_get_answers_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        grant_key_seed: Some([6; 32]),
        ..Default::default()
    };
    let relay = Node::open(tmp.path(), &config)
        .unwrap()
        .with_receipts(&vigil_crypto::SigningIdentity::from_bytes([5; 32]))
        .relay()
        .clone();
    let now = 1_000;
    let windows = [
        (i64::MIN, i64::MAX),
        (i64::MIN, i64::MIN + 1),
        (i64::MAX - 1, i64::MAX),
        (0, i64::MAX),
    ];
    let durations = [0, 1, i64::MAX];
    let mut n = 0u8;
    for &(from, until) in &windows {
        for &recovery_ms in &durations {
            n += 1;
            let mut s = enrolled(&relay, n, now);
            let Response::GrantKey { public } = call(&mut s, &Request::GrantKey, now) else {
                panic!("no grant key");
            };
            // The attacker's own grant: it holds the alert key, so it can
            // seal alerts with any onset.
            let key = AlertKey::from_bytes([n; 32]);
            let id = grant_id(&key);
            let wrapped = wrap(&X25519PublicKey::from_bytes(public), &key, &mut rng(1)).unwrap();
            let granted = call(
                &mut s,
                &Request::Grant(GrantWire {
                    grant_id: id,
                    grant_key: public,
                    wrapped_key: wrapped.as_bytes().to_vec(),
                    threshold_c: 38.0,
                    confirm_count: 2,
                    confirm_window_ms: i64::MAX,
                    recovery_ms,
                    valid_from_ms: from,
                    valid_until_ms: until,
                    label: "edge".into(),
                }),
                now,
            );
            assert_eq!(granted, Response::Ok, "window {from}..{until}");
            for (e, &onset_ms) in I64S.iter().enumerate() {
                for kind in [ALERT_START, ALERT_END] {
                    let episode = [u8::try_from(e).unwrap(); 16];
                    let payload = AlertPayload {
                        onset_ms,
                        level: 2,
                        kind,
                    };
                    let blob = seal_alert(&key, &id, &episode, &payload, &mut rng(2)).unwrap();
                    for at in [now, i64::MIN, i64::MAX] {
                        call(
                            &mut s,
                            &Request::Alert(AlertWire {
                                grant_id: id,
                                episode,
                                kind,
                                blob: blob.clone(),
                            }),
                            at,
                        );
                    }
                }
            }
            call(
                &mut s,
                &Request::Shred {
                    vault: [n; 16],
                    key: [0; 32],
                    grants: vec![GrantDeletion {
                        grant_id: id,
                        proof: [0; 32],
                    }],
                    notice: vec![],
                },
                now,
            );
        }
    }
    for &now in &I64S {
        for &grace in &I64S {
            relay.sweep(now, grace).unwrap();
        }
    }
}
