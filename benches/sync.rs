//! Week sync, side by side (step 3).
//!
//! `cargo bench --bench sync` builds 1, 2, 4 and 7 days of the monitoring
//! week (the week is 24,864 readings, step 2's workload) on a phone, then for
//! each size, over ONE loopback QUIC connection to a local node, measures:
//!
//! 1. E2EE: a freshly paired device joins and syncs the week through the
//!    blind relay (`Vault::fetch_join` + `confirm`: pairing fetch, snapshot download, open);
//! 2. plaintext Automerge sync (`generate_sync_message` /
//!    `receive_sync_message`) of the same log against a node-side copy, on
//!    the same connection;
//!
//! and reports time, bytes and their ratios, then the node's sequential
//! handshake rate and bundle pushes per second. Without `--bench` it runs one
//! day, as a smoke test. Both devices keep their store in memory, so the
//! comparison is of protocols, not disks.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use automerge::AutoCommit;
use automerge::sync::{Message, State, SyncDoc};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil::X25519Identity;
use vigil::{EnrolmentCode, Metric};
use vigil::{MemStorage, MemoryKeyStore, Period, SnapshotPolicy, Vault};
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
        for (metric, value) in vigil_testkit::wristband_readings(m, 5, 15) {
            out.push((metric, value, t));
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

    // The benchmark measures sync, not admission: its peers are trusted.
    fn authenticated(&self) -> bool {
        true
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

/// One size's side-by-side measurement.
struct SizePoint {
    readings: usize,
    e2ee: Duration,
    e2ee_bytes: u64,
    plain: Duration,
    plain_bytes: u64,
    push: Duration,
    push_bytes: u64,
    /// The E2EE time's first part: the pairing fetch (`Vault::fetch_join`);
    /// the rest is `confirm` (create the store, then Hello, Auth, Pull and
    /// open the snapshot).
    fetch: Duration,
}

/// A phone records `days` of the workload and pushes it; a freshly paired
/// tablet joins (E2EE), then the plaintext Automerge peer syncs the same log,
/// both on ONE new connection.
fn measure(
    days: i64,
    connect: &dyn Fn() -> DeviceConnection,
    master: &Mutex<AutoCommit>,
    relay: &Relay,
    rng: &mut ChaCha20Rng,
) -> SizePoint {
    let start = period_start();
    let week = workload(days);
    let mut phone = Vault::create_with(
        Box::new(MemStorage::new()),
        Period::days(start, 7),
        Box::new(MemoryKeyStore::new()),
        rng,
    )
    .unwrap();
    for (m, v, t) in &week {
        phone.record(*m, *v, m.unit(), *t).unwrap();
    }
    // The node's plaintext copy of this log (the plaintext baseline's server).
    *master.lock().unwrap() = AutoCommit::load(&phone.export_automerge()).expect("loads");

    let mut c = connect();
    // Staff registered the resident (untimed).
    let ticket = relay
        .issue_ticket("bench", start + 7 * 86_400_000, start, rng)
        .unwrap();
    phone.redeem_ticket(&mut c, &ticket.ticket).unwrap();
    let t = Instant::now();
    phone.sync_with(&mut c, SnapshotPolicy::Always).unwrap();
    let push = t.elapsed();
    let push_bytes = counters(&c);
    c.close();

    // Median of three rounds: each a new tablet joining (E2EE), then the
    // plaintext peer syncing the same log, on one new connection.
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let tablet_id = X25519Identity::generate(rng);
        let mut c = connect();
        phone
            .offer_pairing(&mut c, &tablet_id.public_key(), start)
            .unwrap();
        c.close();
        let mut conn = connect();
        let before = counters(&conn);
        let t = Instant::now();
        let pending = Vault::fetch_join(&mut conn, &tablet_id).unwrap();
        let fetch = t.elapsed();
        let mut tablet = pending
            .confirm(
                Box::new(MemStorage::new()),
                Box::new(MemoryKeyStore::new()),
                &mut conn,
                rng,
            )
            .unwrap();
        let e2ee = t.elapsed();
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
        rounds.push((e2ee, e2ee_bytes, plain_time, plain_bytes, fetch));
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let e2ee = median(rounds.iter().map(|r| r.0).collect());
    let plain_time = median(rounds.iter().map(|r| r.2).collect());
    let fetch = median(rounds.iter().map(|r| r.4).collect());
    let (e2ee_bytes, plain_bytes) = (rounds[0].1, rounds[0].3);
    SizePoint {
        readings: week.len(),
        e2ee,
        e2ee_bytes,
        plain: plain_time,
        plain_bytes,
        push,
        push_bytes,
        fetch,
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[i64] = if full { &[1, 2, 4, 7] } else { &[1] };
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let node = BenchNode::start(tmp.path());
    let code = &node.code;
    let connect = || DeviceConnection::connect(code, Duration::from_secs(10)).unwrap();

    let points: Vec<(i64, SizePoint)> = sizes
        .iter()
        .map(|&days| {
            let p = measure(days, &connect, &node.master, &node.relay, &mut rng);
            (days, p)
        })
        .collect();
    print_sizes(&points);

    let n = if full { 400 } else { 20 };
    let hs = handshakes(code, n);
    let per = if full { 2000 } else { 50 };
    let devices = 4;
    let pushes = bundle_pushes(code, &node.relay, devices, per, &mut rng);
    print_throughput(n, hs, devices, per, pushes);
    node.rt.block_on(node.server.shutdown());
}

/// A node on loopback whose connections are served by [`BenchHandler`]:
/// Vigil's relay, or the plaintext peer holding a copy of `master`.
struct BenchNode {
    server: NodeServer,
    code: EnrolmentCode,
    master: Arc<Mutex<AutoCommit>>,
    relay: Relay,
    rt: tokio::runtime::Runtime,
}

impl BenchNode {
    /// Starts the node with its identity and relay store under `dir`.
    fn start(dir: &Path) -> BenchNode {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let identity = NodeIdentity::load_or_create(&dir.join("node")).unwrap();
        let relay = Relay::new(
            MailboxStore::open(&dir.join("relay")).unwrap(),
            RelayConfig::default(),
        );
        let master = Arc::new(Mutex::new(AutoCommit::new()));
        let master2 = master.clone();
        let relay2 = relay.clone();
        let factory: Arc<dyn Fn() -> Box<dyn FrameHandler> + Send + Sync> = Arc::new(move || {
            Box::new(BenchHandler {
                relay: relay.session(),
                master: master2.clone(),
                doc: None,
                state: State::new(),
            })
        });
        // Its 400 held connections all come from loopback: the per-address
        // cap and Retry are for the Internet, not this measurement.
        let config = ServerConfig {
            max_connections: 100_000,
            max_connections_per_address: usize::MAX,
            retry_from: usize::MAX,
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
        BenchNode {
            server,
            code,
            master,
            relay: relay2,
            rt,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The side-by-side table, one row per size, and its `figure:` lines, then
/// the largest size's ratios.
fn print_sizes(points: &[(i64, SizePoint)]) {
    println!("## Sync to a new device over one loopback QUIC connection, by log size\n");
    println!(
        "| days | readings | E2EE time | plaintext time | time ratio | E2EE bytes | plaintext bytes | bytes ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (days, p) in points {
        println!(
            "| {days} | {} | {:.1} ms | {:.1} ms | {:.2}× | {} | {} | {:.2}× |",
            p.readings,
            ms(p.e2ee),
            ms(p.plain),
            p.e2ee.as_secs_f64() / p.plain.as_secs_f64(),
            p.e2ee_bytes,
            p.plain_bytes,
            p.e2ee_bytes as f64 / p.plain_bytes as f64
        );
        // Machine-readable lines for `vigil-bench report` (plot and table).
        println!(
            "figure: sync_point {} {:.3} {} {:.3} {}",
            p.readings,
            ms(p.e2ee),
            p.e2ee_bytes,
            ms(p.plain),
            p.plain_bytes
        );
    }
    println!("\nE2EE time by part (medians of the three rounds):\n");
    println!("| days | pairing fetch | confirm (store, Hello, Auth, Pull, open) |");
    println!("|---:|---:|---:|");
    for (days, p) in points {
        println!(
            "| {days} | {:.1} ms | {:.1} ms |",
            ms(p.fetch),
            ms(p.e2ee.saturating_sub(p.fetch))
        );
    }
    let (days, w) = points.last().expect("at least one size");
    println!(
        "\nE2EE = pair fetch + snapshot download + open (`Vault::fetch_join` + `confirm`); plaintext = Automerge's \
         sync protocol against a node-side copy of the log. The phone's first push of the \
         {days}-day log (bundle + snapshot) took {:.1} ms and {} bytes.\n",
        ms(w.push),
        w.push_bytes
    );
    println!(
        "figure: week_sync_time_ratio {:.3}",
        w.e2ee.as_secs_f64() / w.plain.as_secs_f64()
    );
    println!(
        "figure: week_sync_bytes_ratio {:.3}",
        w.e2ee_bytes as f64 / w.plain_bytes as f64
    );
}

/// Handshakes per second: `n` connects from 4 threads; only the handshakes
/// are timed (each DeviceConnection also starts its own runtime thread,
/// included).
fn handshakes(code: &EnrolmentCode, n: usize) -> f64 {
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
    hs
}

/// Bundle pushes per second: `devices` devices, each its own vault, push
/// `per` bundles each in sequence on their own connections.
fn bundle_pushes(
    code: &EnrolmentCode,
    relay: &Relay,
    devices: usize,
    per: u64,
    rng: &mut ChaCha20Rng,
) -> f64 {
    // Staff registered the residents (untimed).
    let tickets: Vec<vigil::Ticket> = (0..devices)
        .map(|d| {
            relay
                .issue_ticket(&format!("device {d}"), i64::MAX, 0, rng)
                .unwrap()
                .ticket
        })
        .collect();
    let t = Instant::now();
    let handles: Vec<_> = tickets
        .into_iter()
        .enumerate()
        .map(|(d, ticket)| {
            let code = code.clone();
            std::thread::spawn(move || push_bundles(&code, &ticket, d, per))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    (devices as u64 * per) as f64 / t.elapsed().as_secs_f64()
}

/// Device `d` registers a mailbox of its own, then pushes `per` 320-byte
/// sealed-size bundles, each acknowledged.
fn push_bundles(code: &EnrolmentCode, ticket: &vigil::Ticket, d: usize, per: u64) {
    let mut c = DeviceConnection::connect(code, Duration::from_secs(10)).unwrap();
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
        Request::Enrol {
            ticket: ticket.id,
            secret: *ticket.secret.expose_secret(),
            vault,
            verifier,
            // A week from now: a node keeps a mailbox at most `max_period`.
            expires_ms: period_start() + 9 * 86_400_000,
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
}

/// The node's throughput table and its `figure:` lines.
fn print_throughput(n: usize, hs: f64, devices: usize, per: u64, pushes: f64) {
    println!("## Node throughput (loopback, one process)\n");
    println!("| figure | value |");
    println!("|---|---:|");
    println!("| QUIC handshakes (4 client threads, {n} connections) | {hs:.0}/s |");
    println!("| durable bundle pushes, {devices} connections × {per} | {pushes:.0}/s |");
    println!("figure: handshakes_per_s {hs:.0}");
    println!("figure: pushes_per_s {pushes:.0}");
}
