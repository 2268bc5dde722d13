//! The seed corpus: a few valid frames and sequences per target, made by
//! playing honest devices against the harness (so the grant in a sequence
//! is wrapped to the key the relay really issues).

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_crypto::{
    Context, KeySchedule, Kind, RootKey, X25519Identity, X25519PublicKey, seal, wrap,
};
use vigil_proto::alert::{
    ALERT_START, AlertPayload, episode_id, grant_id, round_onset, seal_alert,
};
use vigil_proto::{
    AlertWire, BundleItem, GrantDeletion, GrantWire, PROTOCOL_VERSION, ProtoError, Request,
    Response, SnapshotItem, encode_request, encode_response,
};

use crate::relay::{Harness, join, node_id};

/// A deterministic RNG seeded from `bytes` (nonces and ephemeral keys in
/// the targets come from the input, so every crash reproduces).
pub fn rng_from(bytes: &[u8]) -> ChaCha20Rng {
    let mut seed = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        seed[i % 32] = seed[i % 32].rotate_left(3) ^ b;
    }
    seed[0] ^= (bytes.len() & 0xff) as u8;
    ChaCha20Rng::from_seed(seed)
}

/// Seeds per target, by target name.
pub fn all() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let (sequences, requests, responses) = sequences();
    let envelope = vec![
        vec![0, 0, 0],
        [&[1u8, 7, 0][..], b"37.2 C at 08:00"].concat(),
        [&[3u8, 0xff, 0][..], &[0x5a; 300]].concat(),
    ];
    let mut rng = rng_from(b"unwrap seed");
    let id = X25519Identity::from_bytes([0x24; 32]);
    let wrapped =
        wrap(&id.public_key(), &RootKey::generate(&mut rng), &mut rng).expect("a valid recipient");
    let unwrap = vec![
        [&[3u8, 1][..], wrapped.as_bytes()].concat(),
        vec![0, 0],
        vec![9, 4, 1, 2, 3],
    ];
    vec![
        ("request_frame", requests),
        ("response_frame", responses),
        ("envelope", envelope),
        ("unwrap_key", unwrap),
        ("relay_sequence", sequences),
    ]
}

/// One honest device's story, played against a fresh harness: its
/// encoded sequence, the frames sent and the answers received.
struct Story {
    h: Harness,
    records: Vec<(usize, Vec<u8>)>,
    answers: Vec<Vec<u8>>,
}

impl Story {
    fn new() -> Self {
        Story {
            h: Harness::new(),
            records: Vec::new(),
            answers: Vec::new(),
        }
    }

    fn send(&mut self, conn: usize, req: &Request) -> Response {
        let frame = encode_request(req);
        let resp = self.h.send(conn, &frame);
        self.records.push((conn, frame));
        self.answers.push(encode_response(&resp));
        resp
    }
}

fn hello() -> Request {
    Request::Hello {
        version: PROTOCOL_VERSION,
    }
}

/// Enrols a vault with ticket `ticket` (of the harness's [`crate::relay::TICKETS`])
/// and authenticates on connection `conn`, as a device's first contact.
fn enrol_vault(s: &mut Story, conn: usize, keys: &KeySchedule, ticket: usize) {
    let t = s.h.tickets()[ticket];
    let mailbox = keys.mailbox_key(&node_id());
    s.send(conn, &hello());
    let enrolled = s.send(
        conn,
        &Request::Enrol {
            ticket: t.id,
            secret: t.secret,
            vault: *keys.vault_id().as_bytes(),
            verifier: mailbox.verifier().to_bytes(),
            expires_ms: t.period_end_ms,
        },
    );
    assert!(
        matches!(enrolled, Response::Enrolled { .. }),
        "seed enrolment refused: {enrolled:?}"
    );
    auth(s, conn, keys);
}

/// A device of an enrolled vault on connection `conn`: `Register` confirms
/// its mailbox, `Auth` proves the key (a paired device's way in).
fn open_vault(s: &mut Story, conn: usize, keys: &KeySchedule, expires_ms: i64) {
    s.send(conn, &hello());
    let confirmed = s.send(
        conn,
        &Request::Register {
            vault: *keys.vault_id().as_bytes(),
            verifier: keys.mailbox_key(&node_id()).verifier().to_bytes(),
            expires_ms,
        },
    );
    assert_eq!(confirmed, Response::Ok, "seed register refused");
    auth(s, conn, keys);
}

fn auth(s: &mut Story, conn: usize, keys: &KeySchedule) {
    let ok = s.send(
        conn,
        &Request::Auth {
            vault: *keys.vault_id().as_bytes(),
            key: *keys.mailbox_key(&node_id()).expose_secret(),
        },
    );
    assert_eq!(ok, Response::Ok, "seed auth refused");
}

/// Seeds of one target.
type Seeds = Vec<Vec<u8>>;

fn bundle(keys: &KeySchedule, device: [u8; 16], seq: u64, rng: &mut ChaCha20Rng) -> Request {
    let vault = *keys.vault_id().as_bytes();
    let ctx = Context::new("vigil/v1/bundle")
        .bytes(&vault)
        .bytes(&device)
        .u64(seq);
    let blob = seal(&keys.log_key(), Kind::LogBundle, &ctx, b"reading 37.1", rng).expect("small");
    Request::Push(BundleItem { device, seq, blob })
}

/// The relay stories: (sequences, the request frames in them, the answers).
fn sequences() -> (Seeds, Seeds, Seeds) {
    let mut rng = rng_from(b"relay seeds");
    let mut stories = Vec::new();
    let ana = 0;
    let bo = 1;
    let revoked = 2;

    // Sync: enrol with Ana's ticket, two bundles, a pull on a connection
    // without Auth, a snapshot over them, a pull again.
    let keys = KeySchedule::new(RootKey::generate(&mut rng));
    let vault = *keys.vault_id().as_bytes();
    let mut s = Story::new();
    enrol_vault(&mut s, 0, &keys, ana);
    let device = [7u8; 16];
    for seq in 1..=2u64 {
        s.send(0, &bundle(&keys, device, seq, &mut rng));
    }
    s.send(1, &hello());
    s.send(
        1,
        &Request::Pull {
            have: vec![],
            max_bytes: 1 << 20,
        },
    );
    let ctx = Context::new("vigil/v1/snapshot").bytes(&vault);
    let blob = seal(&keys.log_key(), Kind::LogSnapshot, &ctx, b"doc", &mut rng).expect("small");
    s.send(
        0,
        &Request::PushSnapshot(SnapshotItem {
            covers: vec![(device, 2)],
            blob,
        }),
    );
    s.send(
        0,
        &Request::Pull {
            have: vec![(device, 1)],
            max_bytes: 1 << 20,
        },
    );
    stories.push(s);

    // Pairing: the enrolled device offers the wrapped root on one
    // connection; the joiner fetches it on another, then gets in with
    // `Register` (confirming) and `Auth`, and pulls.
    let mut s = Story::new();
    enrol_vault(&mut s, 0, &keys, ana);
    let end = s.h.tickets()[ana].period_end_ms;
    s.send(0, &bundle(&keys, device, 1, &mut rng));
    let joiner = X25519Identity::from_bytes([0x11; 32]);
    let wrapped = wrap(&joiner.public_key(), keys.root(), &mut rng).expect("valid joiner");
    let slot = [0x33; 32];
    let offered = s.send(
        0,
        &Request::PairOffer {
            slot,
            wrapped: wrapped.as_bytes().to_vec(),
        },
    );
    assert_eq!(offered, Response::Ok, "seed pairing offer refused");
    s.send(2, &hello());
    s.send(2, &Request::PairFetch { slot });
    open_vault(&mut s, 2, &keys, end);
    s.send(
        2,
        &Request::Pull {
            have: vec![],
            max_bytes: 1 << 20,
        },
    );
    stories.push(s);

    // Alerts: enrol, a grant key, the grant, an alert twice (the second on
    // a connection that proved nothing), strangers' shreds (the wrong
    // mailbox key; an unknown vault naming the grant with a made-up
    // proof) that delete nothing, then the vault's own shred with proof.
    let mut s = Story::new();
    enrol_vault(&mut s, 1, &keys, ana);
    let Response::GrantKey { public } = s.send(1, &Request::GrantKey) else {
        panic!("the relay issues grant keys to an enrolled vault");
    };
    let alert_key = keys.alert_key(&X25519PublicKey::from_bytes(public));
    let wrapped =
        wrap(&X25519PublicKey::from_bytes(public), &alert_key, &mut rng).expect("valid node key");
    let gid = grant_id(&alert_key);
    let now = s.h.now_ms();
    let grant = GrantWire {
        grant_id: gid,
        grant_key: public,
        wrapped_key: wrapped.as_bytes().to_vec(),
        threshold_c: 38.0,
        confirm_count: 2,
        confirm_window_ms: 3_600_000,
        recovery_ms: 3_600_000,
        valid_from_ms: now - 3_600_000,
        valid_until_ms: now + 7 * 24 * 3_600_000,
        label: "a label the device chose".into(),
    };
    // The seeds are only worth their bytes if the relay accepts them.
    assert_eq!(
        s.send(1, &Request::Grant(grant)),
        Response::Ok,
        "seed grant refused"
    );
    let onset = round_onset(now);
    let episode = episode_id(&alert_key, onset);
    let payload = AlertPayload {
        onset_ms: onset,
        level: 2,
        kind: ALERT_START,
    };
    let blob = seal_alert(&alert_key, &gid, &episode, &payload, &mut rng).expect("small");
    let alert = Request::Alert(AlertWire {
        grant_id: gid,
        episode,
        kind: ALERT_START,
        blob,
    });
    assert_eq!(
        s.send(1, &alert),
        Response::AlertAck { stored: true },
        "seed alert refused"
    );
    s.send(2, &hello());
    s.send(2, &alert);
    // Another device of the vault (a tablet) connects.
    s.send(0, &hello());
    auth(&mut s, 0, &keys);
    let proof = alert_key.shred_proof(&keys.vault_id(), &gid);
    let wrong_key = s.send(
        2,
        &Request::Shred {
            vault,
            key: [0x99; 32],
            grants: vec![GrantDeletion {
                grant_id: gid,
                proof,
            }],
            notice: vec![0xab; 64],
        },
    );
    assert_eq!(
        wrong_key,
        Response::Error(ProtoError::Unauthorized),
        "a shred with the wrong key"
    );
    let stranger = s.send(
        2,
        &Request::Shred {
            vault: [0x66; 16],
            key: [0x99; 32],
            grants: vec![GrantDeletion {
                grant_id: gid,
                proof: [0x77; 32],
            }],
            notice: vec![],
        },
    );
    assert!(
        matches!(&stranger, Response::Receipt(_)),
        "a stranger's shred of nothing: {stranger:?}"
    );
    assert_eq!(
        s.send(2, &alert),
        Response::AlertAck { stored: false },
        "the grant outlived the stranger's shred"
    );
    let receipt = s.send(
        1,
        &Request::Shred {
            vault,
            key: *keys.mailbox_key(&node_id()).expose_secret(),
            grants: vec![GrantDeletion {
                grant_id: gid,
                proof,
            }],
            notice: vec![0xab; 64],
        },
    );
    assert!(
        matches!(receipt, Response::Receipt(_)),
        "seed shred refused: {receipt:?}"
    );
    s.send(1, &alert);
    s.send(
        1,
        &Request::Pull {
            have: vec![],
            max_bytes: 1024,
        },
    );
    // The tablet's session, opened before the shred, gets no grant key.
    assert!(
        matches!(
            s.send(0, &Request::GrantKey),
            Response::Error(ProtoError::VaultShredded { .. })
        ),
        "a grant key after the shred"
    );
    stories.push(s);

    // Strangers: requests before hello, a wrong key, an unknown grant, a
    // new vault without a ticket, a wrong ticket secret, a revoked ticket,
    // a grant key without a vault.
    let mut s = Story::new();
    s.send(
        0,
        &Request::Pull {
            have: vec![],
            max_bytes: 10,
        },
    );
    s.send(0, &hello());
    s.send(
        0,
        &Request::Auth {
            vault,
            key: [1; 32],
        },
    );
    s.send(0, &bundle(&keys, device, 1, &mut rng));
    s.send(
        0,
        &Request::Alert(AlertWire {
            grant_id: [2; 16],
            episode: [3; 16],
            kind: 1,
            blob: vec![],
        }),
    );
    let verifier = keys.mailbox_key(&node_id()).verifier().to_bytes();
    let end = s.h.now_ms() + 24 * 3_600_000;
    s.send(
        0,
        &Request::Register {
            vault,
            verifier,
            expires_ms: end,
        },
    );
    for (t, secret) in [(ana, [0x42; 32]), (revoked, s.h.tickets()[revoked].secret)] {
        let id = s.h.tickets()[t].id;
        s.send(
            0,
            &Request::Enrol {
                ticket: id,
                secret,
                vault,
                verifier,
                expires_ms: end,
            },
        );
    }
    s.send(0, &Request::GrantKey);
    s.send(0, &Request::Hello { version: 9 });
    stories.push(s);

    // Bo's short ticket: a second vault enrols and pushes, then its period
    // ends (ten minutes): no grant key, no more pushes, no enrolment again.
    let other = KeySchedule::new(RootKey::generate(&mut rng));
    let mut s = Story::new();
    enrol_vault(&mut s, 0, &keys, ana);
    enrol_vault(&mut s, 1, &other, bo);
    s.send(1, &bundle(&other, device, 1, &mut rng));
    s.send(0, &bundle(&keys, device, 1, &mut rng));
    while s.h.now_ms() <= s.h.tickets()[bo].period_end_ms {
        s.send(
            1,
            &Request::Pull {
                have: vec![(device, 1)],
                max_bytes: 1024,
            },
        );
    }
    s.send(1, &Request::GrantKey);
    s.send(1, &bundle(&other, device, 2, &mut rng));
    stories.push(s);

    let mut sequences = Vec::new();
    let mut requests = Vec::new();
    let mut responses = Vec::new();
    for s in stories {
        sequences.push(join(&s.records));
        requests.extend(s.records.into_iter().map(|(_, f)| f));
        responses.extend(s.answers);
    }
    requests.sort();
    requests.dedup();
    responses.sort();
    responses.dedup();
    (sequences, requests, responses)
}
