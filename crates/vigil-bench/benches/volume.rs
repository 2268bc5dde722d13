//! Bytes a device uploads and a node keeps (issue 19), each beside the
//! Automerge reference measured in the same run.
//!
//! `cargo bench -p vigil-bench --bench volume` measures, through the public
//! [`Vault`] API against the real relay code:
//!
//! 1. **A band day.** A wristband records a body temperature and a heart
//!    rate every 30 s (2,880 of each, 5,760 readings) and syncs every 1 min,
//!    5 min, 15 min, 1 h, 6 h or 24 h. For each interval: every frame the
//!    device sends to the node (`Enrol` once, then `Hello`, `Auth`, `Push`,
//!    `Pull`, `PushSnapshot`... per sync, each sync a new session as after a
//!    reconnect), per reading; beside it, plaintext Automerge sync of the
//!    same log (`generate_sync_message` / `receive_sync_message` between the
//!    device's document and a node-side copy, with the sync state kept as
//!    Automerge persists it between connections), counting the device's
//!    messages. The hourly day is also run over loopback QUIC to give the
//!    UDP bytes (QUIC and TLS framing, handshakes, acknowledgements).
//!    Reference: Automerge's `save()` of the day's log, per reading.
//! 2. **A week's offline backlog.** The monitoring week (24,864 readings)
//!    recorded with no sync, then one sync: the bytes it pushes, against the
//!    week's sealed snapshot (the `PushSnapshot` frame a following
//!    `SnapshotPolicy::Always` sync sends).
//! 3. **Node disk per resident after a week.** Residents each record the
//!    week and sync hourly to one node store on disk; its size when closed
//!    (allocated blocks, as `du` counts; before any sweep), less an empty
//!    store's, per resident, against the week's sealed snapshot.
//!
//! Sizes count application frames (the request payloads), not QUIC, unless
//! a line says UDP. Without `--bench` it runs a quarter of a day and one
//! day, as a smoke test.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use automerge::AutoCommit;
use automerge::sync::{Message, State, SyncDoc};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_crypto::{NodeId, X25519Identity};
use vigil_device::{MemStorage, MemoryKeyStore, Period, SnapshotPolicy, Vault};
use vigil_log::Metric;
use vigil_node::{MailboxStore, Relay, RelayConfig, RelaySession};
use vigil_proto::{Exchange, ExchangeError, FrameHandler, Request, decode_request};

const START: i64 = 1_790_035_200_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// The band's sampling step.
const BAND_STEP: i64 = 30_000;

/// The node the in-process exchanges reach.
fn the_node() -> NodeId {
    vigil_testkit::node_id(X25519Identity::from_bytes([0x4e; 32]).public_key())
}

/// One connection to the relay, in process, at a time the benchmark sets.
struct Direct {
    session: RelaySession,
    now: i64,
}

impl Exchange for Direct {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        Ok(self.session.handle(request, self.now))
    }

    fn node(&self) -> NodeId {
        the_node()
    }
}

/// Frames and bytes the device sent, by request kind.
#[derive(Debug, Default, Clone)]
struct Tally {
    kinds: BTreeMap<&'static str, (u64, u64)>,
}

impl Tally {
    fn add(&mut self, frame: &[u8]) {
        let kind = match decode_request(frame) {
            Ok(Request::Hello { .. }) => "Hello",
            Ok(Request::Register { .. }) => "Register",
            Ok(Request::Enrol { .. }) => "Enrol",
            Ok(Request::Auth { .. }) => "Auth",
            Ok(Request::Push(_)) => "Push",
            Ok(Request::Pull { .. }) => "Pull",
            Ok(Request::PushSnapshot(_)) => "PushSnapshot",
            Ok(_) => "other",
            Err(_) => "undecoded",
        };
        let e = self.kinds.entry(kind).or_default();
        e.0 += 1;
        e.1 += frame.len() as u64;
    }

    fn total(&self) -> u64 {
        self.kinds.values().map(|k| k.1).sum()
    }

    fn bytes(&self, kind: &str) -> u64 {
        self.kinds.get(kind).map_or(0, |k| k.1)
    }

    /// `Push 24 × 31,200 B, Pull 24 × 1,440 B, ...`
    fn breakdown(&self) -> String {
        self.kinds
            .iter()
            .map(|(k, (n, b))| format!("{k} {n} × {} B", b / n.max(&1)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An exchange that tallies every request frame before passing it on.
struct Counted<'a> {
    inner: Direct,
    tally: &'a mut Tally,
}

impl Exchange for Counted<'_> {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        self.tally.add(request);
        self.inner.exchange(request)
    }

    fn node(&self) -> NodeId {
        self.inner.node()
    }
}

/// A relay over a store in `dir`.
fn relay(dir: &Path) -> Relay {
    Relay::new(
        MailboxStore::open(dir).expect("the node's store opens"),
        RelayConfig::default(),
    )
}

/// A session at `now` whose frames `tally` counts.
fn counted<'a>(relay: &Relay, now: i64, tally: &'a mut Tally) -> Counted<'a> {
    Counted {
        inner: Direct {
            session: relay.session(),
            now,
        },
        tally,
    }
}

/// A phone's vault in memory for eight days from START (the week and a day
/// to sync it in), its mailbox registered at the relay with a staff ticket.
fn enrolled_vault(relay: &Relay, tally: &mut Tally, rng: &mut ChaCha20Rng) -> Vault {
    let mut v = Vault::create_with(
        Box::new(MemStorage::new()),
        Period::days(START, 8),
        Box::new(MemoryKeyStore::new()),
        rng,
    )
    .expect("a vault in memory");
    let ticket = relay
        .issue_ticket("a resident", v.period().end_ms, START, rng)
        .expect("staff issue a ticket")
        .ticket;
    v.redeem_ticket(&mut counted(relay, START, tally), &ticket)
        .expect("the node takes the ticket");
    v
}

/// The band's readings at step `s` (every 30 s): temperature and heart rate.
fn band(s: i64) -> [(Metric, f64); 2] {
    [
        (Metric::BodyTemperature, 36.5 + (s % 7) as f64 * 0.05),
        (Metric::HeartRate, 60.0 + (s % 40) as f64),
    ]
}

/// The monitoring week's readings at minute `m` (step 2's workload).
fn week_minute(m: i64) -> Vec<(Metric, f64)> {
    vigil_testkit::wristband_readings(m, 5, 15)
}

/// Plaintext Automerge sync of the device's log to the node's copy, as
/// after a reconnect (each side keeps only what Automerge persists of its
/// sync state); returns the bytes of the device's messages.
struct PlainPeer {
    node_doc: AutoCommit,
    device_state: Vec<u8>,
    node_state: Vec<u8>,
}

impl PlainPeer {
    fn new() -> Self {
        PlainPeer {
            node_doc: AutoCommit::new(),
            device_state: State::new().encode(),
            node_state: State::new().encode(),
        }
    }

    fn sync(&mut self, device_save: &[u8]) -> u64 {
        let mut doc = AutoCommit::load(device_save).expect("the device's document loads");
        let mut ds = State::decode(&self.device_state).expect("a persisted state");
        let mut ns = State::decode(&self.node_state).expect("a persisted state");
        let mut sent = 0;
        loop {
            let out = doc.sync().generate_sync_message(&mut ds);
            let mut progressed = false;
            if let Some(m) = out {
                let wire = m.encode();
                sent += wire.len() as u64;
                let m = Message::decode(&wire).expect("decodes");
                self.node_doc
                    .sync()
                    .receive_sync_message(&mut ns, m)
                    .expect("the node applies it");
                progressed = true;
            }
            if let Some(r) = self.node_doc.sync().generate_sync_message(&mut ns) {
                let r = Message::decode(&r.encode()).expect("decodes");
                doc.sync()
                    .receive_sync_message(&mut ds, r)
                    .expect("the device applies it");
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        assert_eq!(
            doc.get_heads().len(),
            self.node_doc.get_heads().len(),
            "plaintext sync converged"
        );
        self.device_state = ds.encode();
        self.node_state = ns.encode();
        sent
    }
}

/// One band day synced every `interval` minutes.
struct DayRun {
    interval_min: i64,
    readings: u64,
    syncs: u64,
    vigil: Tally,
    plain_bytes: u64,
    save_bytes: u64,
}

fn band_day(interval_min: i64, day_min: i64, rng: &mut ChaCha20Rng) -> DayRun {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let relay = relay(tmp.path());
    let mut vigil = Tally::default();
    let mut v = enrolled_vault(&relay, &mut vigil, rng);
    let mut plain = PlainPeer::new();
    let (mut plain_bytes, mut syncs, mut readings) = (0, 0, 0);
    let steps = day_min * MIN / BAND_STEP;
    let mut sync = |v: &mut Vault, now: i64, vigil: &mut Tally| {
        v.sync(&mut counted(&relay, now, vigil))
            .expect("the sync succeeds");
        plain_bytes += plain.sync(&v.export_automerge());
        syncs += 1;
    };
    for s in 0..steps {
        let t = START + s * BAND_STEP;
        if s > 0 && (t - START) % (interval_min * MIN) == 0 {
            sync(&mut v, t, &mut vigil);
        }
        for (m, value) in band(s) {
            v.record(m, value, m.unit(), t).expect("recorded");
            readings += 1;
        }
    }
    sync(&mut v, START + day_min * MIN, &mut vigil);
    DayRun {
        interval_min,
        readings,
        syncs,
        vigil,
        plain_bytes,
        save_bytes: v.export_automerge().len() as u64,
    }
}

/// The hourly band day over loopback QUIC, a new connection per sync:
/// (app bytes, UDP bytes, readings, save() bytes).
fn band_day_quic(day_min: i64, rng: &mut ChaCha20Rng) -> (u64, u64, u64, u64) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let node = vigil_testkit::node(tmp.path());
    // The node checks periods against its real clock.
    let start = vigil_testkit::period_start();
    let mut v = Vault::create_with(
        Box::new(MemStorage::new()),
        Period::days(start, 7),
        Box::new(MemoryKeyStore::new()),
        rng,
    )
    .expect("a vault in memory");
    let conn = vigil_testkit::register(&mut v, &node);
    let (mut app, mut udp) = (conn.bytes_sent(), conn.udp_bytes_sent());
    conn.close();
    let mut readings = 0;
    let steps = day_min * MIN / BAND_STEP;
    let mut sync = |v: &mut Vault| {
        let mut c = vigil_testkit::connect(node.enrolment_code());
        v.sync(&mut c).expect("the sync succeeds");
        app += c.bytes_sent();
        udp += c.udp_bytes_sent();
        c.close();
    };
    for s in 0..steps {
        let t = start + s * BAND_STEP;
        if s > 0 && (t - start) % HOUR == 0 {
            sync(&mut v);
        }
        for (m, value) in band(s) {
            v.record(m, value, m.unit(), t).expect("recorded");
            readings += 1;
        }
    }
    sync(&mut v);
    let save = v.export_automerge().len() as u64;
    (app, udp, readings, save)
}

/// A week recorded offline, then one sync: (its tally, the snapshot frame's
/// size, readings).
fn backlog(days: i64, rng: &mut ChaCha20Rng) -> (Tally, u64, u64) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let relay = relay(tmp.path());
    let mut setup = Tally::default();
    let mut v = enrolled_vault(&relay, &mut setup, rng);
    let mut readings = 0;
    for m in 0..days * 1440 {
        for (metric, value) in week_minute(m) {
            v.record(metric, value, metric.unit(), START + m * MIN)
                .expect("recorded");
            readings += 1;
        }
    }
    let end = START + days * DAY;
    let mut pushed = Tally::default();
    v.sync(&mut counted(&relay, end, &mut pushed))
        .expect("the backlog sync succeeds");
    let mut snap = Tally::default();
    v.sync_with(
        &mut counted(&relay, end + MIN, &mut snap),
        SnapshotPolicy::Always,
    )
    .expect("the snapshot sync succeeds");
    (pushed, snap.bytes("PushSnapshot"), readings)
}

/// (apparent, allocated) bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut sum = (0, 0);
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            let (a, b) = dir_bytes(&p);
            sum = (sum.0 + a, sum.1 + b);
        } else if let Ok(m) = e.metadata() {
            sum = (sum.0 + m.len(), sum.1 + m.blocks() * 512);
        }
    }
    sum
}

/// `residents` each record `days` of the week and sync hourly to one node
/// store: the store's (apparent, allocated) bytes when closed, less an empty
/// store's, per resident.
fn node_disk(residents: u64, days: i64, rng: &mut ChaCha20Rng) -> (f64, f64) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let empty = tmp.path().join("empty");
    drop(MailboxStore::open(&empty).expect("an empty store"));
    let dir = tmp.path().join("node");
    {
        let relay = relay(&dir);
        for _ in 0..residents {
            let mut tally = Tally::default();
            let mut v = enrolled_vault(&relay, &mut tally, rng);
            for h in 0..days * 24 {
                for m in h * 60..(h + 1) * 60 {
                    for (metric, value) in week_minute(m) {
                        v.record(metric, value, metric.unit(), START + m * MIN)
                            .expect("recorded");
                    }
                }
                v.sync(&mut counted(&relay, START + (h + 1) * HOUR, &mut tally))
                    .expect("the sync succeeds");
            }
        }
    }
    let (a, b) = dir_bytes(&dir);
    let (ea, eb) = dir_bytes(&empty);
    let n = residents as f64;
    (
        a.saturating_sub(ea) as f64 / n,
        b.saturating_sub(eb) as f64 / n,
    )
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let mut rng = ChaCha20Rng::seed_from_u64(19);
    let t0 = Instant::now();
    // A band day (a quarter of one in the smoke run).
    let (day_min, intervals): (i64, &[i64]) = if full {
        (1440, &[1, 5, 15, 60, 360, 1440])
    } else {
        (360, &[15, 60, 360])
    };
    let runs: Vec<DayRun> = intervals
        .iter()
        .map(|&i| band_day(i, day_min, &mut rng))
        .collect();
    println!(
        "## Bytes a device uploads per reading, by sync interval ({} h of a band: temperature and heart rate every 30 s)\n",
        day_min / 60
    );
    println!(
        "| sync every | syncs | readings | Vigil E2EE bytes | per reading | plaintext Automerge sync bytes | per reading | E2EE / plaintext | Automerge save() per reading |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &runs {
        let n = r.readings as f64;
        let v = r.vigil.total() as f64 / n;
        let p = r.plain_bytes as f64 / n;
        println!(
            "| {} min | {} | {} | {} | {v:.1} | {} | {p:.1} | {:.2}× | {:.1} |",
            r.interval_min,
            r.syncs,
            r.readings,
            r.vigil.total(),
            r.plain_bytes,
            v / p,
            r.save_bytes as f64 / n
        );
        println!("figure: interval_point {} {v:.3} {p:.3}", r.interval_min);
    }
    println!("\nVigil frames the device sent, by kind (frames × mean bytes):\n");
    for r in &runs {
        println!("- every {} min: {}", r.interval_min, r.vigil.breakdown());
    }

    let (app, udp, readings, save) = band_day_quic(day_min, &mut rng);
    let per = app as f64 / readings as f64;
    let save_per = save as f64 / readings as f64;
    println!(
        "\nThe hourly day over loopback QUIC (a new connection per sync, registration included): \
         {app} bytes of frames ({per:.1} per reading), {udp} bytes of UDP payload ({:.1} per reading); \
         Automerge save() of the day's log: {save} bytes ({save_per:.1} per reading).\n",
        udp as f64 / readings as f64
    );
    println!(
        "figure: upload_ratio {:.3} {per:.2} {save_per:.2}",
        per / save_per
    );
    println!(
        "figure: upload_udp_per_reading {:.2}",
        udp as f64 / readings as f64
    );

    let days = if full { 7 } else { 1 };
    let (pushed, snapshot, week_readings) = backlog(days, &mut rng);
    // `VIGIL_NODE_RESIDENTS=1,3,10` measures the node's disk at each of
    // those counts (after the default's, so its rows and figure stay as
    // they were).
    let residents = if full { 3 } else { 1 };
    let extra: Vec<u64> = std::env::var("VIGIL_NODE_RESIDENTS")
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default();
    let (apparent, allocated) = node_disk(residents, days, &mut rng);
    println!(
        "## A week offline, and what a node keeps ({days} day(s), {week_readings} readings)\n"
    );
    println!("| figure | bytes | / the sealed snapshot |");
    println!("|---|---:|---:|");
    println!("| the sealed snapshot (`PushSnapshot` frame after the week) | {snapshot} | 1.00× |");
    println!(
        "| the offline backlog's sync: every frame sent ({}) | {} | {:.2}× |",
        pushed.breakdown(),
        pushed.total(),
        pushed.total() as f64 / snapshot as f64
    );
    println!(
        "| node disk per resident, synced hourly, before the sweep ({residents} residents; allocated, as `du`) | {allocated:.0} | {:.2}× |",
        allocated / snapshot as f64
    );
    println!(
        "| the same, apparent file sizes | {apparent:.0} | {:.2}× |",
        apparent / snapshot as f64
    );
    println!(
        "figure: backlog_ratio {:.3} {} {snapshot}",
        pushed.total() as f64 / snapshot as f64,
        pushed.total()
    );
    println!(
        "figure: node_disk_ratio {:.3} {allocated:.0} {snapshot}",
        allocated / snapshot as f64
    );
    for n in extra {
        let (apparent, allocated) = node_disk(n, days, &mut rng);
        println!(
            "figure: node_disk_residents {n} {:.3} {:.3} {allocated:.0} {apparent:.0} {snapshot}",
            allocated / snapshot as f64,
            apparent / snapshot as f64
        );
    }
    println!("\n(volume: {:.1} s wall)\n", t0.elapsed().as_secs_f64());
}
