//! Week sync, side by side (step 3).
//!
//! `cargo bench --bench sync` builds the monitoring week (24,864 readings,
//! step 2's workload) on a phone, then over ONE loopback QUIC connection to a
//! local node measures:
//!
//! 1. E2EE: a freshly paired device joins and syncs the week through the
//!    blind relay (`Vault::join`: pairing fetch, snapshot download, open);
//! 2. plaintext Automerge sync (`generate_sync_message` /
//!    `receive_sync_message`) of the same log against a node-side copy, on
//!    the same connection;
//!
//! and reports time, bytes and their ratios, then the node's sequential
//! handshake rate and bundle pushes per second. Without `--bench` it runs one
//! day, as a smoke test. Both devices keep their store in memory, so the
//! comparison is of protocols, not disks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use automerge::AutoCommit;
use automerge::sync::{Message, State, SyncDoc};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil::crypto::X25519Identity;
use vigil::device::{MemStorage, MemoryKeyStore, Period, SnapshotPolicy, Vault};
use vigil::log::Metric;
use vigil_net::{DeviceConnection, NodeIdentity, NodeServer, ServerConfig};
use vigil_node::{MailboxStore, Relay, RelayConfig};
use vigil_proto::{
    BundleItem, Exchange, FrameHandler, PROTOCOL_VERSION, Request, Response, decode_response,
    encode_request,
};

/// The node checks periods against its real clock, so the period is
/// placed around now: it starts at midnight UTC two days ago.
fn period_start() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    now - now.rem_euclid(86_400_000) - 2 * 86_400_000
}
const MIN: i64 = 60_000;
/// Frames for the plaintext Automerge peer start with this byte, which no
/// Vigil frame can (its first byte is the protocol version, 1).
const AM_TAG: u8 = 0xA5;

fn workload(days: i64) -> Vec<(Metric, f64, i64)> {
    let start = period_start();
    let mut out = Vec::new();
    for m in 0..days * 1440 {
        let t = start + m * MIN;
        let fever = m / 1440 == 2 && (600..900).contains(&(m % 1440));
        out.push((
            Metric::BodyTemperature,
            if fever { 38.2 } else { 36.5 } + (m % 7) as f64 * 0.05,
            t,
        ));
        out.push((Metric::HeartRate, 60.0 + (m % 40) as f64, t));
        if m % 5 == 0 {
            out.push((Metric::SpO2, 95.0 + (m % 5) as f64, t));
            out.push((Metric::RespiratoryRate, 12.0 + (m % 6) as f64, t));
        }
        if m % 15 == 0 {
            out.push((Metric::Steps, ((m * 37) % 1500) as f64, t));
        }
    }
    out
}

/// One connection's handler: Vigil's relay, or a plaintext Automerge peer
/// holding the same log, chosen by the frame's first byte.
struct BenchHandler {
    relay: vigil_node::RelaySession,
    master: Arc<Mutex<AutoCommit>>,
    doc: Option<AutoCommit>,
    state: State,
}

impl FrameHandler for BenchHandler {
    fn handle(&mut self, request: &[u8], now_ms: i64) -> Vec<u8> {
        if request.first() != Some(&AM_TAG) {
            return self.relay.handle(request, now_ms);
        }
        // The node's plaintext copy, forked from a preloaded one on first use
        // (the fork is counted in the plaintext time).
        let master = &self.master;
        let doc = self
            .doc
            .get_or_insert_with(|| master.lock().expect("not poisoned").fork());
        if request.len() > 1 {
            let msg = Message::decode(&request[1..]).expect("client sends valid messages");
            doc.sync()
                .receive_sync_message(&mut self.state, msg)
                .expect("applies");
        }
        doc.sync()
            .generate_sync_message(&mut self.state)
            .map(Message::encode)
            .unwrap_or_default()
    }
}

struct AmOverVigil<'a>(&'a mut DeviceConnection);

fn am_sync(conn: &mut DeviceConnection) -> AutoCommit {
    let conn = AmOverVigil(conn);
    let mut doc = AutoCommit::new();
    let mut state = State::new();
    loop {
        let out = doc.sync().generate_sync_message(&mut state);
        let sent = out.is_some();
        let mut frame = vec![AM_TAG];
        if let Some(m) = out {
            frame.extend_from_slice(&m.encode());
        }
        let reply = conn.0.exchange(&frame).expect("exchange");
        if !reply.is_empty() {
            let m = Message::decode(&reply).expect("server message");
            doc.sync()
                .receive_sync_message(&mut state, m)
                .expect("applies");
        } else if !sent {
            break;
        }
    }
    doc
}

fn counters(c: &DeviceConnection) -> u64 {
    c.bytes_sent() + c.bytes_received()
}

fn main() {
    let start = period_start();
    let full = std::env::args().any(|a| a == "--bench");
    let days = if full { 7 } else { 1 };
    let week = workload(days);
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);

    // The phone records the week and pushes it (one bundle and a snapshot).
    let mut phone = Vault::create_with(
        Box::new(MemStorage::new()),
        Period::days(start, 7),
        Box::new(MemoryKeyStore::new()),
        &mut rng,
    )
    .unwrap();
    for (m, v, t) in &week {
        phone.record(*m, *v, m.unit(), *t).unwrap();
    }
    let plain_doc = phone.export_automerge();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let identity = NodeIdentity::load_or_create(&tmp.path().join("node")).unwrap();
    let relay = Relay::new(
        MailboxStore::open(&tmp.path().join("relay")).unwrap(),
        RelayConfig::default(),
    );
    let relay2 = relay.clone();
    let master = Arc::new(Mutex::new(AutoCommit::load(&plain_doc).expect("loads")));
    let factory: Arc<dyn Fn() -> Box<dyn FrameHandler> + Send + Sync> = Arc::new(move || {
        Box::new(BenchHandler {
            relay: relay2.session(),
            master: master.clone(),
            doc: None,
            state: State::new(),
        })
    });
    let config = ServerConfig {
        max_connections: 100_000,
        ..ServerConfig::default()
    };
    let server = rt
        .block_on(NodeServer::spawn(
            &identity,
            "127.0.0.1:0".parse().unwrap(),
            config,
            factory,
        ))
        .unwrap();
    let code = identity.enrolment_code(server.local_addr());
    let connect = || DeviceConnection::connect(&code, Duration::from_secs(10)).unwrap();

    let mut c = connect();
    let t = Instant::now();
    phone.sync_with(&mut c, SnapshotPolicy::Always).unwrap();
    let push_time = t.elapsed();
    let push_bytes = counters(&c);
    let tablet_id = X25519Identity::generate(&mut rng);
    phone
        .offer_pairing(&mut c, &tablet_id.public_key(), start)
        .unwrap();
    c.close();

    // 1 and 2 on one connection.
    let mut conn = connect();
    let before = counters(&conn);
    let t = Instant::now();
    let (mut tablet, _) = Vault::join(
        Box::new(MemStorage::new()),
        Box::new(MemoryKeyStore::new()),
        &tablet_id,
        &mut conn,
        &mut rng,
    )
    .unwrap();
    let e2ee_time = t.elapsed();
    let e2ee_bytes = counters(&conn) - before;
    assert_eq!(tablet.log().len(), week.len());
    assert_eq!(tablet.log().view(), phone.log().view());

    let before = counters(&conn);
    let t = Instant::now();
    let mut plain = am_sync(&mut conn);
    let plain_time = t.elapsed();
    let plain_bytes = counters(&conn) - before;
    assert_eq!(plain.get_heads().len(), tablet.heads().len());
    conn.close();

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "## Week sync to a new device over one loopback QUIC connection ({days} days, {} readings)\n",
        week.len()
    );
    println!("| sync | time | bytes on the wire |");
    println!("|---|---:|---:|");
    println!(
        "| Vigil E2EE: pair fetch + snapshot download + open | {:.1} ms | {e2ee_bytes} |",
        ms(e2ee_time)
    );
    println!(
        "| plaintext Automerge sync protocol | {:.1} ms | {plain_bytes} |",
        ms(plain_time)
    );
    println!(
        "| ratio E2EE / plaintext | {:.2}× | {:.2}× |",
        e2ee_time.as_secs_f64() / plain_time.as_secs_f64(),
        e2ee_bytes as f64 / plain_bytes as f64
    );
    println!(
        "| (phone's first push of the week: bundle + snapshot) | {:.1} ms | {push_bytes} |\n",
        ms(push_time)
    );

    // Handshakes: connects from 4 threads; only the handshakes are timed
    // (each DeviceConnection also starts its own runtime thread, included).
    let n = if full { 400 } else { 20 };
    let t = Instant::now();
    let held: Vec<Vec<DeviceConnection>> = (0..4)
        .map(|_| {
            let code = code.clone();
            std::thread::spawn(move || {
                (0..n / 4)
                    .map(|_| DeviceConnection::connect(&code, Duration::from_secs(10)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let hs = n as f64 / t.elapsed().as_secs_f64();
    drop(held);

    // Bundle pushes: 4 devices of one vault... each its own vault, pushing
    // 320-byte sealed-size bundles in sequence on its own connection.
    let per = if full { 2000 } else { 50 };
    let devices = 4;
    let t = Instant::now();
    let handles: Vec<_> = (0..devices)
        .map(|d| {
            let code = code.clone();
            std::thread::spawn(move || {
                let mut c = DeviceConnection::connect(&code, Duration::from_secs(10)).unwrap();
                let call = |c: &mut DeviceConnection, r: Request| {
                    decode_response(&c.exchange(&encode_request(&r)).unwrap()).unwrap()
                };
                call(
                    &mut c,
                    Request::Hello {
                        version: PROTOCOL_VERSION,
                    },
                );
                let vault = [d as u8 + 1; 16];
                let key = [d as u8 + 7; 32];
                let verifier = {
                    use sha2::Digest;
                    let mut h = sha2::Sha256::new();
                    h.update(b"vigil/v1/mailbox-verifier");
                    h.update(key);
                    <[u8; 32]>::from(h.finalize())
                };
                call(
                    &mut c,
                    Request::Register {
                        vault,
                        verifier,
                        expires_ms: i64::MAX,
                    },
                );
                call(&mut c, Request::Auth { vault, key });
                for seq in 1..=per {
                    let r = call(
                        &mut c,
                        Request::Push(BundleItem {
                            device: [9; 16],
                            seq,
                            blob: vec![0x5a; 302],
                        }),
                    );
                    assert!(matches!(r, Response::Ack { .. }), "{r:?}");
                }
                c.close();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let pushes = (devices * per) as f64 / t.elapsed().as_secs_f64();
    println!("## Node throughput (loopback, one process)\n");
    println!("| figure | value |");
    println!("|---|---:|");
    println!("| QUIC handshakes (4 client threads, {n} connections) | {hs:.0}/s |");
    println!("| durable bundle pushes, {devices} connections × {per} | {pushes:.0}/s |");
    rt.block_on(server.shutdown());
}
