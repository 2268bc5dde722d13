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
    AlertWire, BundleItem, GrantWire, PROTOCOL_VERSION, Request, Response, SnapshotItem,
    encode_request, encode_response,
};

use crate::relay::{Harness, join};

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

/// Registers and authenticates a vault on connection `conn`.
fn open_vault(s: &mut Story, conn: usize, keys: &KeySchedule) {
    let end = s.h.now_ms() + 30 * 24 * 3_600_000;
    s.send(conn, &hello());
    s.send(
        conn,
        &Request::Register {
            vault: *keys.vault_id().as_bytes(),
            verifier: keys.mailbox_key().verifier().to_bytes(),
            expires_ms: end,
        },
    );
    s.send(
        conn,
        &Request::Auth {
            vault: *keys.vault_id().as_bytes(),
            key: *keys.mailbox_key().expose_secret(),
        },
    );
}

/// Seeds of one target.
type Seeds = Vec<Vec<u8>>;

/// The relay stories: (sequences, the request frames in them, the answers).
fn sequences() -> (Seeds, Seeds, Seeds) {
    let mut rng = rng_from(b"relay seeds");
    let mut stories = Vec::new();

    // Sync: two bundles, a pull, a snapshot over them, a pull again.
    let keys = KeySchedule::new(RootKey::generate(&mut rng));
    let vault = *keys.vault_id().as_bytes();
    let mut s = Story::new();
    open_vault(&mut s, 0, &keys);
    let device = [7u8; 16];
    for seq in 1..=2u64 {
        let ctx = Context::new("vigil/v1/bundle")
            .bytes(&vault)
            .bytes(&device)
            .u64(seq);
        let blob = seal(
            &keys.log_key(),
            Kind::LogBundle,
            &ctx,
            b"reading 37.1",
            &mut rng,
        )
        .expect("small");
        s.send(0, &Request::Push(BundleItem { device, seq, blob }));
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

    // Pairing: an offer on one connection, fetched on another.
    let mut s = Story::new();
    open_vault(&mut s, 0, &keys);
    let joiner = X25519Identity::from_bytes([0x11; 32]);
    let wrapped = wrap(&joiner.public_key(), keys.root(), &mut rng).expect("valid joiner");
    let slot = [0x33; 32];
    s.send(
        0,
        &Request::PairOffer {
            slot,
            wrapped: wrapped.as_bytes().to_vec(),
        },
    );
    s.send(2, &hello());
    s.send(2, &Request::PairFetch { slot });
    stories.push(s);

    // Alerts: a grant key, the grant, an alert twice, then a shred.
    let mut s = Story::new();
    s.send(1, &hello());
    let Response::GrantKey { public } = s.send(1, &Request::GrantKey) else {
        panic!("the relay issues grant keys");
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
        label: "Ana, flat 12B".into(),
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
    open_vault(&mut s, 0, &keys);
    let receipt = s.send(
        0,
        &Request::Shred {
            vault,
            key: *keys.mailbox_key().expose_secret(),
            grants: vec![gid],
            notice: vec![0xab; 64],
        },
    );
    assert!(
        matches!(receipt, Response::Receipt(_)),
        "seed shred refused: {receipt:?}"
    );
    s.send(
        0,
        &Request::Pull {
            have: vec![],
            max_bytes: 1024,
        },
    );
    stories.push(s);

    // Strangers: requests before hello, a wrong key, an unknown grant.
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
    s.send(
        0,
        &Request::Push(BundleItem {
            device,
            seq: 1,
            blob: vec![0; 16],
        }),
    );
    s.send(
        0,
        &Request::Alert(AlertWire {
            grant_id: [2; 16],
            episode: [3; 16],
            kind: 1,
            blob: vec![],
        }),
    );
    s.send(0, &Request::Hello { version: 9 });
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
