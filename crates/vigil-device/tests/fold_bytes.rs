//! A measurement, not a check (`cargo test --release -p vigil-device --test
//! fold_bytes -- --ignored --nocapture`): the bytes a phone sends to push an
//! hour of wristband readings (one every 30 s, body temperature and heart
//! rate in turn) in one sync, per reading.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_crypto::{NodeId, X25519Identity};
use vigil_device::{MemStorage, MemoryKeyStore, Period, SnapshotPolicy, Vault};
use vigil_log::{Metric, Unit};
use vigil_node::{MailboxStore, Relay, RelayConfig};
use vigil_proto::{Exchange, ExchangeError, FrameHandler};

const START: i64 = 1_790_035_200_000;

/// The in-process relay, counting the bytes the device sends.
struct Counting {
    session: vigil_node::RelaySession,
    sent: usize,
}

impl Exchange for Counting {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        self.sent += request.len();
        Ok(self.session.handle(request, START))
    }
    fn node(&self) -> NodeId {
        vigil_testkit::node_id(X25519Identity::from_bytes([0x4e; 32]).public_key())
    }
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn bytes_per_reading_for_an_hour_of_band_readings() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::new(
        MailboxStore::open(tmp.path()).unwrap(),
        RelayConfig::default(),
    );
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut v = Vault::create_with(
        Box::new(MemStorage::new()),
        Period::days(START, 7),
        Box::new(MemoryKeyStore::new()),
        &mut rng,
    )
    .unwrap();
    let t = relay
        .issue_ticket("r", v.period().end_ms, START, &mut rng)
        .unwrap();
    let mut c = Counting {
        session: relay.session(),
        sent: 0,
    };
    v.redeem_ticket(&mut c, &t.ticket).unwrap();
    v.sync_with(&mut c, SnapshotPolicy::Never).unwrap();
    // What an empty sync sends (the protocol's own bytes).
    let mut idle = Counting {
        session: relay.session(),
        sent: 0,
    };
    v.sync_with(&mut idle, SnapshotPolicy::Never).unwrap();
    for hour in 0..3i64 {
        for i in 0..120i64 {
            let time = START + hour * 3_600_000 + i * 30_000;
            if i % 2 == 0 {
                let t = 36.5 + (i % 5) as f64 * 0.1;
                v.record(Metric::BodyTemperature, t, Unit::Celsius, time)
                    .unwrap();
            } else {
                let hr = 60.0 + (i % 30) as f64;
                v.record(Metric::HeartRate, hr, Unit::BeatsPerMinute, time)
                    .unwrap();
            }
        }
        let mut c = Counting {
            session: relay.session(),
            sent: 0,
        };
        let r = v.sync_with(&mut c, SnapshotPolicy::Never).unwrap();
        println!(
            "figure: hour {hour}: sync sent {} B for 120 readings in {} bundle(s): {:.1} B/reading above an empty sync's {} B",
            c.sent,
            r.pushed,
            (c.sent - idle.sent) as f64 / 120.0,
            idle.sent
        );
    }
}
