//! The node's front door, played by the attacker through the relay's frame
//! handler: node-wide caps (vaults, grant keys, pairing slots, disk), the
//! bound on a period's end, bounded lists and pull replies, and per-vault
//! locking (one vault's work never waits for another's).

use std::sync::mpsc;
use std::time::Duration;

use vigil_crypto::{KeySchedule, RootKey};
use vigil_node::{MailboxStore, Node, NodeConfig, Relay, RelayConfig};
use vigil_proto::{
    BundleItem, FrameHandler, PROTOCOL_VERSION, ProtoError, Request, Response, SnapshotItem,
    decode_response, encode_request,
};

struct Client {
    s: vigil_node::RelaySession,
    now_ms: i64,
    relay: Relay,
}

impl Client {
    fn new(relay: &Relay) -> Client {
        let mut c = Client {
            s: relay.session(),
            now_ms: 1_000,
            relay: relay.clone(),
        };
        assert!(matches!(
            c.call(Request::Hello {
                version: PROTOCOL_VERSION
            }),
            Response::HelloOk { .. }
        ));
        c
    }

    fn call(&mut self, r: Request) -> Response {
        decode_response(&self.s.handle(&encode_request(&r), self.now_ms)).unwrap()
    }

    /// Registers the vault: a new one with a staff ticket (`Enrol`, spec
    /// §15; `Enrolled` reads as `Ok`), one already here with `Register`.
    fn register(&mut self, keys: &KeySchedule, expires_ms: i64) -> Response {
        let vault = *keys.vault_id().as_bytes();
        let verifier = keys.mailbox_key(&this_node()).verifier().to_bytes();
        let store = self.relay.store();
        if store.mailbox(&vault).unwrap().is_some() || store.shred_marker(&vault).unwrap().is_some()
        {
            return self.call(Request::Register {
                vault,
                verifier,
                expires_ms,
            });
        }
        let mut rng =
            <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(
                u64::from(vault[0]),
            );
        let t = self
            .relay
            .issue_ticket("a resident", i64::MAX / 2, self.now_ms, &mut rng)
            .unwrap();
        match self.call(Request::Enrol {
            ticket: t.ticket.id,
            secret: *t.ticket.secret.expose_secret(),
            vault,
            verifier,
            expires_ms,
        }) {
            Response::Enrolled { .. } => Response::Ok,
            r => r,
        }
    }

    fn auth(&mut self, keys: &KeySchedule) -> Response {
        self.call(Request::Auth {
            vault: *keys.vault_id().as_bytes(),
            key: *keys.mailbox_key(&this_node()).expose_secret(),
        })
    }

    fn push(&mut self, device: u8, seq: u64, blob: Vec<u8>) -> Response {
        self.call(Request::Push(BundleItem {
            device: [device; 16],
            seq,
            blob,
        }))
    }
}

/// The node these relays are (the device derives its mailbox key for it).
fn this_node() -> vigil_crypto::NodeId {
    vigil_crypto::NodeId::new(
        vigil_crypto::X25519PublicKey::from_bytes([0x4e; 32]),
        [0xce; 32],
    )
}

fn keys(n: u8) -> KeySchedule {
    KeySchedule::new(RootKey::from_bytes([n; 32]))
}

/// A session registered and authenticated for `keys`' vault (period end 10 s).
fn authed(relay: &Relay, keys: &KeySchedule) -> Client {
    authed_until(relay, keys, 10_000)
}

fn authed_until(relay: &Relay, keys: &KeySchedule, expires_ms: i64) -> Client {
    let mut c = Client::new(relay);
    assert_eq!(c.register(keys, expires_ms), Response::Ok);
    assert_eq!(c.auth(keys), Response::Ok);
    c
}

fn relay(config: RelayConfig) -> Relay {
    Relay::new(MailboxStore::in_memory(), config)
}

fn full(what: &str, limit: u64) -> Response {
    Response::Error(ProtoError::NodeFull {
        what: what.into(),
        limit,
    })
}

#[test]
fn vault_cap_refuses_register_n_plus_1() {
    let relay = relay(RelayConfig {
        max_vaults: 3,
        ..RelayConfig::default()
    });
    let mut c = Client::new(&relay);
    for n in 1..=3 {
        assert_eq!(c.register(&keys(n), 10_000), Response::Ok, "vault {n}");
    }
    assert_eq!(c.register(&keys(4), 10_000), full("vaults", 3));
    // Confirming a vault already there takes no new place.
    assert_eq!(c.register(&keys(2), 10_000), Response::Ok);
    assert_eq!(relay.store().vaults().unwrap().len(), 3);
    // The sweep gives the places back.
    relay.sweep(20_000, 0).unwrap();
    c.now_ms = 20_000;
    assert_eq!(c.register(&keys(4), 30_000), Response::Ok);
    // A restarted relay counts what the store holds.
    let relay = Relay::new(
        relay.store().clone(),
        RelayConfig {
            max_vaults: 1,
            ..RelayConfig::default()
        },
    );
    let mut c = Client::new(&relay);
    c.now_ms = 20_000;
    assert_eq!(c.register(&keys(5), 30_000), full("vaults", 1));
}

#[test]
fn register_may_not_ask_for_a_period_end_far_ahead() {
    let day = 86_400_000;
    let relay = relay(RelayConfig {
        max_period_ms: 30 * day,
        ..RelayConfig::default()
    });
    let mut c = Client::new(&relay);
    let latest = c.now_ms + 30 * day;
    for expires in [latest + 1, i64::MAX] {
        assert_eq!(
            c.register(&keys(1), expires),
            Response::Error(ProtoError::ExpiryTooFar { latest_ms: latest })
        );
    }
    assert!(relay.store().vaults().unwrap().is_empty());
    assert_eq!(c.register(&keys(1), latest), Response::Ok);
    // A vault already here keeps confirming its period if the bound shrinks.
    let stricter = Relay::new(
        relay.store().clone(),
        RelayConfig {
            max_period_ms: day,
            ..RelayConfig::default()
        },
    );
    let mut c = Client::new(&stricter);
    assert_eq!(c.register(&keys(1), latest), Response::Ok);
    assert!(matches!(
        c.register(&keys(2), latest),
        Response::Error(ProtoError::ExpiryTooFar { .. })
    ));
}

#[test]
fn lists_over_the_cap_are_refused() {
    let relay = relay(RelayConfig {
        max_devices_per_vault: 4,
        ..RelayConfig::default()
    });
    let k = keys(1);
    let mut c = authed(&relay, &k);
    let list = |n: usize| -> Vec<([u8; 16], u64)> {
        (0..n)
            .map(|i| {
                let mut d = [0u8; 16];
                d[..8].copy_from_slice(&(i as u64).to_be_bytes());
                (d, 1)
            })
            .collect()
    };
    let too_many = |what: &str| {
        Response::Error(ProtoError::TooManyEntries {
            what: what.into(),
            limit: 4,
        })
    };
    // The attacker's hundred-thousand-entry vector is refused by the codec
    // (over the wire bound, from its length prefix); one just over the
    // relay's cap by the relay.
    for n in [100_000, vigil_proto::MAX_VERSION_VECTOR + 1] {
        assert!(matches!(
            c.call(Request::Pull {
                have: list(n),
                max_bytes: 1 << 20
            }),
            Response::Error(ProtoError::Malformed(_))
        ));
    }
    for n in [5, vigil_proto::MAX_VERSION_VECTOR] {
        assert_eq!(
            c.call(Request::Pull {
                have: list(n),
                max_bytes: 1 << 20
            }),
            too_many("have")
        );
        assert_eq!(
            c.call(Request::PushSnapshot(SnapshotItem {
                covers: list(n),
                blob: vec![0; 10]
            })),
            too_many("covers")
        );
    }
    assert_eq!(
        c.call(Request::Pull {
            have: list(4),
            max_bytes: 1 << 20
        }),
        Response::UpToDate
    );
    // A shred may name a few grants, not enough to lock every vault.
    let mut stranger = Client::new(&relay);
    assert_eq!(
        stranger.call(Request::Shred {
            vault: [0; 16],
            key: [0; 32],
            grants: (0..=16u8)
                .map(|g| vigil_proto::GrantDeletion {
                    grant_id: [g; 16],
                    proof: [0; 32],
                })
                .collect(),
            notice: vec![],
        }),
        Response::Error(ProtoError::TooManyEntries {
            what: "grants".into(),
            limit: 16
        })
    );
    // Nor may one vault's pushes name more devices than that.
    for d in 1..=4 {
        assert!(matches!(c.push(d, 1, vec![d]), Response::Ack { .. }));
    }
    assert_eq!(
        c.push(5, 1, vec![5]),
        Response::Error(ProtoError::QuotaExceeded {
            what: "devices".into(),
            limit: 4
        })
    );
    assert!(matches!(c.push(4, 2, vec![4]), Response::Ack { .. }));
}

#[test]
fn pairing_slot_spam_stops_at_the_cap() {
    let relay = relay(RelayConfig {
        max_pairing_slots: 5,
        ..RelayConfig::default()
    });
    let day = 86_400_000;
    let mut spammer = authed_until(&relay, &keys(1), day);
    let offer = |c: &mut Client, slot: u8| {
        c.call(Request::PairOffer {
            slot: [slot; 32],
            wrapped: vec![slot; 82],
        })
    };
    for slot in 0..5 {
        assert_eq!(offer(&mut spammer, slot), Response::Ok);
    }
    for slot in 5..50 {
        assert_eq!(offer(&mut spammer, slot), full("pairing slots", 5));
    }
    // Taking an offer frees its slot.
    let mut joiner = Client::new(&relay);
    assert!(matches!(
        joiner.call(Request::PairFetch { slot: [0; 32] }),
        Response::PairOffer { .. }
    ));
    let mut resident = authed_until(&relay, &keys(2), day);
    assert_eq!(offer(&mut resident, 100), Response::Ok);
    assert_eq!(offer(&mut resident, 101), full("pairing slots", 5));
    // Expired offers swept free theirs.
    relay.sweep(1_000 + 16 * 60_000, 0).unwrap();
    assert_eq!(offer(&mut resident, 101), Response::Ok);
}

#[test]
fn disk_quota_refuses_a_push() {
    let relay = relay(RelayConfig {
        max_store_bytes: 150,
        ..RelayConfig::default()
    });
    let mut a = authed(&relay, &keys(1));
    let mut b = authed(&relay, &keys(2));
    assert!(matches!(a.push(1, 1, vec![1; 100]), Response::Ack { .. }));
    assert_eq!(b.push(2, 1, vec![2; 60]), full("disk bytes", 150));
    assert!(matches!(b.push(2, 1, vec![2; 50]), Response::Ack { .. }));
    // A snapshot that would grow the store past the cap is refused too.
    assert_eq!(
        b.call(Request::PushSnapshot(SnapshotItem {
            covers: vec![([2; 16], 1)],
            blob: vec![0; 60]
        })),
        full("disk bytes", 150)
    );
    // One that shrinks it is kept, and frees the difference.
    assert!(matches!(
        b.call(Request::PushSnapshot(SnapshotItem {
            covers: vec![([2; 16], 1)],
            blob: vec![0; 20]
        })),
        Response::Ack { .. }
    ));
    assert_eq!(relay.usage().unwrap().bytes, 120);
    assert!(matches!(b.push(2, 2, vec![2; 30]), Response::Ack { .. }));
    assert_eq!(b.push(2, 3, vec![2; 1]), full("disk bytes", 150));
    // After a restart the relay counts what the store holds.
    let again = Relay::new(
        relay.store().clone(),
        RelayConfig {
            max_store_bytes: 150,
            ..RelayConfig::default()
        },
    );
    let mut b2 = authed(&again, &keys(2));
    assert_eq!(b2.push(2, 3, vec![2; 1]), full("disk bytes", 150));
    // A shred gives the bytes back.
    let a_keys = keys(1);
    let node_signer = vigil_crypto::SigningIdentity::from_bytes([9; 32]);
    let again = again.with_receipts(node_signer);
    let mut s = Client::new(&again);
    assert!(matches!(
        s.call(Request::Shred {
            vault: *a_keys.vault_id().as_bytes(),
            key: *a_keys.mailbox_key(&this_node()).expose_secret(),
            grants: vec![],
            notice: vec![],
        }),
        Response::Receipt(_)
    ));
    assert!(matches!(b2.push(2, 3, vec![2; 100]), Response::Ack { .. }));
}

#[test]
fn grant_key_requests_stop_at_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        relay: RelayConfig {
            max_grant_keys: 2,
            ..RelayConfig::default()
        },
        grant_key_seed: Some([3; 32]),
    };
    let node = Node::in_memory(dir.path(), &config).unwrap();
    // Only an enrolled vault's session may ask (spec §15).
    let mut c = authed_until(node.relay(), &keys(1), 10 * 86_400_000);
    for _ in 0..2 {
        assert!(matches!(
            c.call(Request::GrantKey),
            Response::GrantKey { .. }
        ));
    }
    for _ in 0..20 {
        assert_eq!(c.call(Request::GrantKey), full("grant keys", 2));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    // A node restarted over the same directory counts the files there.
    let node = Node::in_memory(dir.path(), &config).unwrap();
    let mut c = authed_until(node.relay(), &keys(1), 10 * 86_400_000);
    assert_eq!(c.call(Request::GrantKey), full("grant keys", 2));
    // Unused keys swept after a day give their places back.
    node.relay().sweep(2 * 86_400_000, 0).unwrap();
    assert!(matches!(
        c.call(Request::GrantKey),
        Response::GrantKey { .. }
    ));
}

#[test]
fn pull_replies_are_bounded_in_bundles() {
    let relay = relay(RelayConfig {
        max_pull_bundles: 2,
        ..RelayConfig::default()
    });
    let mut c = authed(&relay, &keys(1));
    for seq in 1..=5 {
        assert!(matches!(c.push(1, seq, vec![1]), Response::Ack { .. }));
    }
    let Response::Bundles {
        bundles,
        more: true,
        ..
    } = c.call(Request::Pull {
        have: vec![],
        max_bytes: 1 << 20,
    })
    else {
        panic!("expected a partial reply")
    };
    assert_eq!(bundles.iter().map(|b| b.seq).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn a_session_is_authenticated_by_its_mailbox_key_only() {
    let relay = relay(RelayConfig::default());
    let k = keys(1);
    let mut c = Client::new(&relay);
    assert!(!c.s.authenticated());
    assert_eq!(c.register(&k, 10_000), Response::Ok);
    assert!(!c.s.authenticated(), "Register alone proves nothing");
    assert_eq!(
        c.call(Request::Auth {
            vault: *k.vault_id().as_bytes(),
            key: [0; 32]
        }),
        Response::Error(ProtoError::Unauthorized)
    );
    assert!(!c.s.authenticated());
    assert_eq!(c.auth(&k), Response::Ok);
    assert!(c.s.authenticated());
}

/// Two vaults whose locks are distinct (the shard of a vault is keyed by
/// a per-relay secret, so the pair is looked for, not assumed).
fn two_unrelated_vaults(relay: &Relay) -> (KeySchedule, KeySchedule) {
    let a = keys(1);
    (2..=255)
        .map(keys)
        .find(|b| !relay.share_a_lock(a.vault_id().as_bytes(), b.vault_id().as_bytes()))
        .map(|b| (a, b))
        .expect("some vault's lock is not vault A's")
}

#[test]
fn one_vaults_lock_does_not_hold_up_another() {
    let relay = relay(RelayConfig::default());
    let (a, b) = two_unrelated_vaults(&relay);
    let mut ca = authed(&relay, &a);
    let mut cb = authed(&relay, &b);
    assert!(matches!(ca.push(1, 1, vec![1]), Response::Ack { .. }));
    let held = relay.lock_vault(a.vault_id().as_bytes());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = cb.push(2, 1, vec![2; 10]);
        let p = cb.call(Request::Pull {
            have: vec![],
            max_bytes: 1 << 20,
        });
        tx.send((r, p)).unwrap();
    });
    // A deadlock guard, not a speed assertion: with one relay-wide lock the
    // push for vault B would wait for vault A's lock forever.
    let (r, p) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("vault B's requests waited for vault A's lock");
    assert!(matches!(r, Response::Ack { seq: 1, .. }), "{r:?}");
    assert!(matches!(p, Response::Bundles { ref bundles, .. } if bundles.len() == 1));
    drop(held);
    assert!(matches!(ca.push(1, 2, vec![1]), Response::Ack { .. }));
}

#[test]
fn many_threads_on_many_vaults_lose_no_push() {
    let relay = relay(RelayConfig::default());
    const VAULTS: u8 = 8;
    const PUSHES: u64 = 40;
    std::thread::scope(|s| {
        for v in 1..=VAULTS {
            let relay = &relay;
            s.spawn(move || {
                // Two sessions (devices) per vault, racing each other too.
                let k = keys(v);
                let mut c1 = authed(relay, &k);
                let mut c2 = authed(relay, &k);
                for seq in 1..=PUSHES {
                    assert!(matches!(c1.push(1, seq, vec![v; 10]), Response::Ack { .. }));
                    assert!(matches!(c2.push(2, seq, vec![v; 7]), Response::Ack { .. }));
                }
            });
        }
    });
    let mut total = 0;
    for v in 1..=VAULTS {
        let mut c = authed(&relay, &keys(v));
        let Response::Bundles {
            bundles,
            more: false,
            ..
        } = c.call(Request::Pull {
            have: vec![],
            max_bytes: 1 << 20,
        })
        else {
            panic!("vault {v}: expected every bundle")
        };
        assert_eq!(bundles.len() as u64, 2 * PUSHES, "vault {v}");
        assert!(bundles.iter().all(|b| b.blob.iter().all(|x| *x == v)));
        total += bundles.iter().map(|b| b.blob.len() as u64).sum::<u64>();
    }
    let usage = relay.usage().unwrap();
    assert_eq!(usage.bytes, total);
    assert_eq!(usage.vaults, u64::from(VAULTS));
    let stored: u64 = relay
        .store()
        .vaults()
        .unwrap()
        .iter()
        .map(|(_, i)| i.bytes)
        .sum();
    assert_eq!(stored, total);
}
