//! Three devices of one resident sync through a real node over loopback QUIC.
//! The node keeps a copy of every frame it received (the attacker's view of
//! a curious relay), and that copy and its data directory are scanned for the
//! resident's data. Includes pairing, partitions, conflicting check-ins, a
//! node restart in the middle, and refusals.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil::X25519Identity;
use vigil::{Day, Metric, Severity, Symptom, Unit};
use vigil::{FileKeyStore, Period, SledStorage, SyncFailure, Vault};
use vigil_net::{
    DeviceConnection, EnrolmentCode, NetError, NodeIdentity, NodeServer, ServerConfig,
};
use vigil_node::{Node, NodeConfig};
use vigil_proto::{
    Exchange, PROTOCOL_VERSION, ProtoError, Request, Response, decode_response, encode_request,
};

use vigil_testkit::{contains, files, period_start};

const MIN: i64 = 60_000;

struct TestNode {
    rt: tokio::runtime::Runtime,
    server: Option<NodeServer>,
    dir: PathBuf,
    tap: Arc<Mutex<Vec<Vec<u8>>>>,
    code: EnrolmentCode,
    relay: vigil_node::Relay,
}

impl TestNode {
    fn start(dir: &Path, tap: Arc<Mutex<Vec<Vec<u8>>>>, port: u16) -> TestNode {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let identity = NodeIdentity::load_or_create(dir).unwrap();
        // sled holds a lock on its files; after a restart the old handle may
        // take a moment to drop.
        let mut node = None;
        for _ in 0..50 {
            match Node::open(dir, &NodeConfig::default()) {
                Ok(n) => {
                    node = Some(n);
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        let node = node.expect("relay store opens");
        let config = ServerConfig {
            frame_tap: Some(tap.clone()),
            ..ServerConfig::default()
        };
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let factory = node.handler_factory();
        let server = rt
            .block_on(NodeServer::spawn(&identity, addr, config, factory))
            .unwrap();
        let code = identity.enrolment_code(server.local_addr());
        TestNode {
            rt,
            server: Some(server),
            dir: dir.to_owned(),
            tap,
            code,
            relay: node.relay().clone(),
        }
    }

    fn stop(mut self) -> (PathBuf, Arc<Mutex<Vec<Vec<u8>>>>, u16) {
        let server = self.server.take().unwrap();
        let port = server.local_addr().port();
        self.rt.block_on(server.shutdown());
        self.rt.shutdown_timeout(Duration::from_secs(5));
        (self.dir, self.tap, port)
    }

    fn connect(&self) -> DeviceConnection {
        DeviceConnection::connect(&self.code, Duration::from_secs(5)).unwrap()
    }

    /// Staff issue a ticket and the vault's first device redeems it, so
    /// that the node keeps its mailbox (spec §15).
    fn register(&self, vault: &mut Vault) {
        let t = self
            .relay
            .issue_ticket(
                "a resident",
                vault.period().end_ms,
                period_start(),
                &mut ChaCha20Rng::seed_from_u64(5),
            )
            .unwrap();
        vault.redeem_ticket(&mut self.connect(), &t.ticket).unwrap();
    }
}

struct Device {
    vault: Vault,
}

fn new_device(base: &Path, name: &str) -> (Box<SledStorage>, Box<FileKeyStore>) {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    (
        Box::new(SledStorage::open(&dir.join("vault")).unwrap()),
        Box::new(FileKeyStore::new(base.join(format!("{name}.key")))),
    )
}

#[test]
fn three_devices_sync_through_a_blind_node() {
    let start = period_start();
    let tmp = tempfile::tempdir().unwrap();
    let node_dir = tmp.path().join("node");
    std::fs::create_dir_all(&node_dir).unwrap();
    let node = TestNode::start(&node_dir, Arc::new(Mutex::new(Vec::new())), 0);
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let period = Period::days(start, 7);

    // The phone starts the vault and records with canary annotations.
    let (storage, keys) = new_device(tmp.path(), "phone");
    let mut phone = Device {
        vault: Vault::create_with(storage, period, keys, &mut rng).unwrap(),
    };
    let mut canaries = vec![];
    let mut sample = vec![];
    for i in 0..120 {
        let id = phone
            .vault
            .record(
                Metric::BodyTemperature,
                36.61 + (i % 9) as f64 * 0.1,
                Unit::Celsius,
                start + i * MIN,
            )
            .unwrap();
        if i % 20 == 0 {
            let c = format!("CANARY-phone-{i}-hot-shower");
            phone.vault.annotate(id, &c).unwrap();
            canaries.push(c);
            sample.push(id);
        }
    }
    node.register(&mut phone.vault);
    let mut phone_conn = node.connect();
    phone.vault.sync(&mut phone_conn).unwrap();

    // Pair the tablet and the wristband through the node.
    let mut pair = |name: &str, phone: &mut Device, rng: &mut ChaCha20Rng| {
        let id = X25519Identity::generate(rng);
        let code = phone
            .vault
            .offer_pairing(&mut phone_conn, &id.public_key(), start)
            .unwrap();
        let (storage, keys) = new_device(tmp.path(), name);
        let mut conn = node.connect();
        let pending = Vault::fetch_join(&mut conn, &id).unwrap();
        assert_eq!(code, pending.code(), "both screens show the same code");
        let vault = pending.confirm(storage, keys, &mut conn, rng).unwrap();
        (Device { vault }, conn)
    };
    let (mut tablet, mut tablet_conn) = pair("tablet", &mut phone, &mut rng);
    let (mut band, band_conn) = pair("band", &mut phone, &mut rng);
    drop(band_conn);
    assert_eq!(tablet.vault.log().len(), 120);
    assert_eq!(band.vault.log().view(), phone.vault.log().view());

    // Partition: the band is offline; everyone edits, the same check-in
    // field on two devices.
    let day = Day::of(start);
    for i in 0..40 {
        band.vault
            .record(
                Metric::HeartRate,
                64.0 + (i % 7) as f64,
                Unit::BeatsPerMinute,
                start + (200 + i) * MIN,
            )
            .unwrap();
    }
    let r = sample[1];
    tablet
        .vault
        .annotate(r, "CANARY-tablet-after-stairs")
        .unwrap();
    canaries.push("CANARY-tablet-after-stairs".into());
    tablet
        .vault
        .check_in(day, Symptom::Cough, Severity::Mild)
        .unwrap();
    phone
        .vault
        .check_in(day, Symptom::Cough, Severity::Severe)
        .unwrap();
    phone
        .vault
        .check_in(day, Symptom::SoreThroat, Severity::Moderate)
        .unwrap();
    phone.vault.sync(&mut phone_conn).unwrap();

    // The node restarts in the middle: the tablet's connection breaks.
    let (dir, tap, port) = node.stop();
    assert!(matches!(
        tablet.vault.sync(&mut tablet_conn),
        Err(SyncFailure::Transport(_))
    ));
    let node = TestNode::start(&dir, tap, port);
    let mut tablet_conn = node.connect();
    tablet.vault.sync(&mut tablet_conn).unwrap();
    let mut band_conn = node.connect();
    band.vault.sync(&mut band_conn).unwrap();
    let mut phone_conn = node.connect();
    for _ in 0..2 {
        phone.vault.sync(&mut phone_conn).unwrap();
        tablet.vault.sync(&mut tablet_conn).unwrap();
        band.vault.sync(&mut band_conn).unwrap();
    }

    // Converged: identical heads and views, nothing lost, the conflict visible.
    let view = phone.vault.log().view();
    assert_eq!(view.readings.len(), 160);
    for d in [&mut tablet, &mut band] {
        assert_eq!(d.vault.log().view(), view);
        assert_eq!(d.vault.heads(), phone.vault.heads());
    }
    assert_eq!(band.vault.log().conflicts().len(), 1);
    // The tablet edited the annotation after seeing the phone's: no conflict.
    assert_eq!(
        view.annotations[&r],
        vec!["CANARY-tablet-after-stairs".to_owned()]
    );

    // Restart a device from disk: the synced state survived.
    drop(band);
    let (storage, keys) = {
        let dir = tmp.path().join("band");
        (
            Box::new(SledStorage::open(&dir.join("vault")).unwrap()),
            FileKeyStore::new(tmp.path().join("band.key")),
        )
    };
    let band = Vault::open_with(storage, &keys, &mut rng).unwrap();
    assert_eq!(band.log().view(), view);

    // The blind relay: nothing the node received or stored contains the
    // resident's data.
    let sample_readings: Vec<_> = sample
        .iter()
        .map(|id| phone.vault.log().reading(*id).unwrap())
        .collect();
    let (node_dir, tap, _) = node.stop();
    let frames = tap.lock().unwrap().clone();
    assert!(frames.len() > 20, "the tap saw the traffic");
    let mut blobs: Vec<Vec<u8>> = frames;
    for f in files(&node_dir) {
        blobs.push(std::fs::read(f).unwrap());
    }
    for b in &blobs {
        for c in &canaries {
            assert!(!contains(b, c.as_bytes()), "canary {c} visible to the node");
        }
        assert!(!contains(b, b"CANARY"));
        assert!(!contains(b, b"sore_throat"));
        for r in &sample_readings {
            assert!(!contains(b, &r.encode()));
            assert!(!contains(b, &r.value.to_be_bytes()));
        }
    }
}

fn raw(conn: &mut DeviceConnection, r: Request) -> Response {
    decode_response(&conn.exchange(&encode_request(&r)).unwrap()).unwrap()
}

#[test]
fn the_node_refuses_strangers_and_survives_garbage() {
    let start = period_start();
    let tmp = tempfile::tempdir().unwrap();
    let node = TestNode::start(tmp.path(), Arc::new(Mutex::new(Vec::new())), 0);
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let (storage, keys) = new_device(tmp.path(), "phone");
    let mut phone = Vault::create_with(storage, Period::days(start, 7), keys, &mut rng).unwrap();
    phone
        .record(Metric::SpO2, 97.0, Unit::Percent, start)
        .unwrap();
    node.register(&mut phone);
    phone.sync(&mut node.connect()).unwrap();
    let vault = *phone.vault_id().as_bytes();

    let mut c = node.connect();
    assert!(matches!(
        raw(
            &mut c,
            Request::Hello {
                version: PROTOCOL_VERSION
            }
        ),
        Response::HelloOk { .. }
    ));
    // Wrong mailbox key; unknown vault.
    assert_eq!(
        raw(
            &mut c,
            Request::Auth {
                vault,
                key: [7; 32]
            }
        ),
        Response::Error(ProtoError::Unauthorized)
    );
    assert_eq!(
        raw(
            &mut c,
            Request::Auth {
                vault: [9; 16],
                key: [7; 32]
            }
        ),
        Response::Error(ProtoError::UnknownVault)
    );
    // No new mailbox, and no grant key, without a staff ticket.
    assert_eq!(
        raw(
            &mut c,
            Request::Register {
                vault: [9; 16],
                verifier: [7; 32],
                expires_ms: start + 7 * 86_400_000
            }
        ),
        Response::Error(ProtoError::TicketRequired)
    );
    assert_eq!(
        raw(&mut c, Request::GrantKey),
        Response::Error(ProtoError::NotAuthenticated)
    );
    assert_eq!(
        raw(
            &mut c,
            Request::Pull {
                have: vec![],
                max_bytes: 1000
            }
        ),
        Response::Error(ProtoError::NotAuthenticated)
    );
    // Malformed frames: a typed error, and the node serves on.
    for garbage in [vec![], vec![0xff; 64], vec![1, 3, 0, 0]] {
        let resp = decode_response(&c.exchange(&garbage).unwrap()).unwrap();
        assert!(
            matches!(resp, Response::Error(ProtoError::Malformed(_))),
            "{resp:?}"
        );
    }
    phone
        .record(Metric::SpO2, 98.0, Unit::Percent, start + MIN)
        .unwrap();
    phone.sync(&mut node.connect()).unwrap();

    // A device pinned to another node's certificate refuses to talk.
    let other = NodeIdentity::load_or_create(&tmp.path().join("other-node")).unwrap();
    let mut wrong = node.code.clone();
    wrong.fingerprint = other.fingerprint();
    assert!(matches!(
        DeviceConnection::connect(&wrong, Duration::from_secs(5)),
        Err(NetError::FingerprintMismatch)
    ));
    drop(node.stop());
}
