//! Sync and pairing through the real relay code, in process (no sockets):
//! the protocol and the device logic, without the QUIC driver.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_crypto::X25519Identity;
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

impl Exchange for Direct {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        if self.offline {
            return Err(ExchangeError("offline".into()));
        }
        Ok(self.session.handle(request, self.now))
    }
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
            .offer_pairing(&mut conn(&relay), &id.public_key())
            .unwrap();
        let (v, code2) = Vault::join(
            Box::new(MemStorage::new()),
            Box::new(MemoryKeyStore::new()),
            &id,
            &mut conn(&relay),
            rng,
        )
        .unwrap();
        assert_eq!(code, code2);
        v
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
