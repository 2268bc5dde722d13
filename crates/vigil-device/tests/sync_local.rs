//! Sync and pairing through the real relay code, in process (no sockets):
//! the protocol and the device logic, without the QUIC driver.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_crypto::{NodeId, X25519Identity};
use vigil_device::{MemStorage, MemoryKeyStore, Period, SnapshotPolicy, Vault};
use vigil_log::{Day, Metric, Severity, Symptom, Unit};
use vigil_node::{MailboxStore, Relay, RelayConfig};
use vigil_proto::{Exchange, ExchangeError, FrameHandler};

const START: i64 = 1_790_035_200_000;
const MIN: i64 = 60_000;

struct Direct {
    session: vigil_node::RelaySession,
    now: i64,
    offline: bool,
}

/// The identity of the node the tests here reach.
fn the_node() -> NodeId {
    vigil_testkit::node_id(X25519Identity::from_bytes([0x4e; 32]).public_key())
}

impl Exchange for Direct {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        if self.offline {
            return Err(ExchangeError::NotConnected);
        }
        Ok(self.session.handle(request, self.now))
    }

    fn node(&self) -> NodeId {
        the_node()
    }
}

/// The vault's first device redeems a staff ticket: the node keeps its
/// mailbox from then on (docs/spec.md §15).
fn register(relay: &Relay, v: &mut Vault) {
    let t = relay
        .issue_ticket(
            "a resident",
            v.period().end_ms,
            START,
            &mut ChaCha20Rng::seed_from_u64(v.vault_id().as_bytes()[0].into()),
        )
        .unwrap();
    v.redeem_ticket(&mut conn(relay), &t.ticket).unwrap();
}

fn conn(relay: &Relay) -> Direct {
    Direct {
        session: relay.session(),
        now: START,
        offline: false,
    }
}

#[test]
fn three_devices_converge_through_the_relay() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::new(
        MailboxStore::open(tmp.path()).unwrap(),
        RelayConfig::default(),
    );
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let period = Period::days(START, 7);
    let mut phone = Vault::create_with(
        Box::new(MemStorage::new()),
        period,
        Box::new(MemoryKeyStore::new()),
        &mut rng,
    )
    .unwrap();
    register(&relay, &mut phone);
    for i in 0..50 {
        phone
            .record(
                Metric::BodyTemperature,
                36.5,
                Unit::Celsius,
                START + i * MIN,
            )
            .unwrap();
    }
    // Pair the tablet and the wristband.
    let mut join = |rng: &mut ChaCha20Rng| {
        let id = X25519Identity::generate(rng);
        let code = phone
            .offer_pairing(&mut conn(&relay), &id.public_key(), START)
            .unwrap();
        let pending = Vault::fetch_join(&mut conn(&relay), &id).unwrap();
        assert_eq!(code, pending.code());
        pending
            .confirm(
                Box::new(MemStorage::new()),
                Box::new(MemoryKeyStore::new()),
                &mut conn(&relay),
                rng,
            )
            .unwrap()
    };
    let mut tablet = join(&mut rng);
    let mut band = join(&mut rng);
    assert_eq!(tablet.log().len(), 50);
    assert_eq!(band.period(), period);

    // Partitioned edits, including the same check-in field on two devices.
    let day = Day::of(START);
    for i in 0..30 {
        band.record(
            Metric::HeartRate,
            70.0,
            Unit::BeatsPerMinute,
            START + (100 + i) * MIN,
        )
        .unwrap();
    }
    let r = tablet.log().readings(None, START, START + 10 * MIN, false)[0].id;
    tablet.annotate(r, "after a hot shower").unwrap();
    tablet
        .check_in(day, Symptom::Cough, Severity::Mild)
        .unwrap();
    phone
        .check_in(day, Symptom::Cough, Severity::Severe)
        .unwrap();
    band.sync(&mut conn(&relay)).unwrap();
    phone.sync(&mut conn(&relay)).unwrap();
    tablet.sync(&mut conn(&relay)).unwrap();
    // A second round so everyone has everyone's.
    for v in [&mut band, &mut phone, &mut tablet] {
        v.sync(&mut conn(&relay)).unwrap();
    }
    let view = phone.log().view();
    assert_eq!(view.readings.len(), 80);
    assert_eq!(tablet.log().view(), view);
    assert_eq!(band.log().view(), view);
    assert_eq!(phone.heads(), tablet.heads());
    assert_eq!(phone.heads(), band.heads());
    assert_eq!(phone.log().conflicts().len(), 1);

    // Offline sync fails cleanly; the outbox keeps the bundle for later.
    band.record(
        Metric::HeartRate,
        71.0,
        Unit::BeatsPerMinute,
        START + 500 * MIN,
    )
    .unwrap();
    let mut off = conn(&relay);
    off.offline = true;
    assert!(band.sync(&mut off).is_err());
    band.sync(&mut conn(&relay)).unwrap();
    phone
        .sync_with(&mut conn(&relay), SnapshotPolicy::Always)
        .unwrap();
    assert_eq!(phone.log().len(), 81);
}

/// A relay that tampers with what it serves.
struct Mitm<F: FnMut(&mut vigil_proto::Response)> {
    inner: Direct,
    edit: F,
}

impl<F: FnMut(&mut vigil_proto::Response)> Exchange for Mitm<F> {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        let raw = self.inner.exchange(request)?;
        let mut resp = vigil_proto::decode_response(&raw).unwrap();
        (self.edit)(&mut resp);
        Ok(vigil_proto::encode_response(&resp))
    }

    fn node(&self) -> NodeId {
        self.inner.node()
    }
}

fn bundles_of(r: &mut vigil_proto::Response) -> &mut [vigil_proto::BundleItem] {
    match r {
        vigil_proto::Response::Bundles { bundles, .. } => bundles,
        _ => &mut [],
    }
}

fn two_devices(relay: &Relay, seed: u64) -> (Vault, Vault) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut a = Vault::create_with(
        Box::new(MemStorage::new()),
        Period::days(START, 7),
        Box::new(MemoryKeyStore::new()),
        &mut rng,
    )
    .unwrap();
    a.record(Metric::SpO2, 97.0, Unit::Percent, START).unwrap();
    register(relay, &mut a);
    let id = X25519Identity::generate(&mut rng);
    a.offer_pairing(&mut conn(relay), &id.public_key(), START)
        .unwrap();
    let b = Vault::fetch_join(&mut conn(relay), &id)
        .unwrap()
        .confirm(
            Box::new(MemStorage::new()),
            Box::new(MemoryKeyStore::new()),
            &mut conn(relay),
            &mut rng,
        )
        .unwrap();
    (a, b)
}

#[test]
fn tampered_moved_and_replayed_blobs_are_rejected_or_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::new(
        MailboxStore::open(tmp.path()).unwrap(),
        RelayConfig::default(),
    );
    let (mut a, mut b) = two_devices(&relay, 5);
    // Another vault on the same node, whose blobs a relay could substitute.
    let (mut stranger, _) = two_devices(&relay, 6);
    for i in 0..3 {
        stranger
            .record(Metric::SpO2, 91.0, Unit::Percent, START + i * MIN)
            .unwrap();
        // No relay snapshot: the node keeps the bundles the relay here swaps in.
        stranger
            .sync_with(&mut conn(&relay), SnapshotPolicy::Never)
            .unwrap();
    }
    // A pushes three bundles.
    for i in 0..3 {
        a.record(
            Metric::HeartRate,
            60.0 + i as f64,
            Unit::BeatsPerMinute,
            START + (10 + i) * MIN,
        )
        .unwrap();
        a.sync_with(&mut conn(&relay), SnapshotPolicy::Never)
            .unwrap();
    }
    let good = a.log().view();
    let stolen: Vec<vigil_proto::BundleItem> = relay
        .store()
        .bundles(stranger.vault_id().as_bytes())
        .map(|b| b.unwrap())
        .collect();
    assert!(!stolen.is_empty());

    type Edit = Box<dyn FnMut(&mut vigil_proto::Response)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "bit flip",
            Box::new(|r| {
                if let Some(b) = bundles_of(r).first_mut() {
                    let n = b.blob.len();
                    b.blob[n / 2] ^= 0x10;
                }
            }),
        ),
        (
            "moved to another slot",
            Box::new(|r| {
                let bundles = bundles_of(r);
                if bundles.len() >= 2 {
                    bundles[0].blob = bundles[1].blob.clone();
                }
            }),
        ),
        (
            "from another vault",
            Box::new(move |r| {
                if let Some(b) = bundles_of(r).first_mut() {
                    b.blob = stolen[0].blob.clone();
                }
            }),
        ),
    ];
    for (what, edit) in edits {
        let mut m = Mitm {
            inner: conn(&relay),
            edit,
        };
        let report = b.sync_with(&mut m, SnapshotPolicy::Never).unwrap();
        assert!(report.rejected >= 1, "{what}: not rejected");
        assert_eq!(report.received, 0, "{what}: a bad bundle was applied");
        assert!(b.log().len() <= good.readings.len());
        assert!(
            b.log()
                .view()
                .readings
                .iter()
                .all(|r| good.readings.contains(r)),
            "{what}: foreign data entered the log"
        );
    }
    // An honest sync then brings everything.
    b.sync_with(&mut conn(&relay), SnapshotPolicy::Never)
        .unwrap();
    assert_eq!(b.log().view(), good);
    // A replay of old bundles is ignored without even being opened.
    let mut replay = Mitm {
        inner: conn(&relay),
        edit: |r: &mut vigil_proto::Response| {
            if let vigil_proto::Response::UpToDate = r {
                *r = vigil_proto::Response::Bundles {
                    snapshot: None,
                    bundles: vec![vigil_proto::BundleItem {
                        device: [0; 16],
                        seq: 1,
                        blob: vec![1; 400],
                    }],
                    more: false,
                };
            }
        },
    };
    let report = b.sync_with(&mut replay, SnapshotPolicy::Never).unwrap();
    assert_eq!((report.received, report.rejected), (0, 1));
    assert_eq!(b.log().view(), good);
}
