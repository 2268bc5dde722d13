//! The load generator: N residents against one node.
//!
//! Each resident has its own vault (in memory: [`vigil_device::MemStorage`]
//! and [`vigil_device::MemoryKeyStore`], so 10,000 vaults fit without 10,000
//! sled instances; the node's store is the real one, on disk) and its own
//! QUIC connection (by default all through one shared
//! [`vigil_net::ClientEndpoint`]; `--private-endpoints` gives each its own, as
//! on a phone). Residents run on a bounded pool of OS threads
//! (`--concurrency`), since the device API is blocking.
//!
//! The run, in phases, each timed on its own:
//!
//! 1. **connect**: every resident opens its connection (handshakes/s);
//! 2. **enrol**: every resident grants the node the fever-alert capability;
//! 3. **day**: a day compressed into `--day-seconds`: per resident, one sync
//!    per hour (each resident at its own offset within the hour) carrying the
//!    hour's readings (temperature every 5 minutes, heart rate every 15, SpO2
//!    hourly: 408 readings a day), the daily check-in in the evening, and for
//!    ~5% of residents a fever (readings ≥ 37.3 °C 5 minutes apart): the
//!    alert latency is measured from just before `record` of the reading that
//!    confirms the episode to the node's `AlertAck` (its durable inbox write).
//!    Bundles/s counts pushes the node acknowledged;
//! 4. **verify**: every vault is pulled back over a fresh connection and each
//!    acknowledged bundle compared (SHA-256) with what was acknowledged; then
//!    the node is stopped and its store on disk checked the same way.
//!
//! Connection failures are retried with exponential backoff (as a device
//! would), broken connections are redialled, and every refusal and error is
//! counted by kind rather than aborting the run.
//!
//! The node reads the real clock, so the monitoring period is placed around
//! now (it starts at midnight UTC two days ago) and the simulated day is
//! yesterday.

mod measure;
mod node;
mod resident;
mod verify;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use vigil_device::Period;
use vigil_net::{ClientEndpoint, EnrolmentCode};

pub use measure::{
    DiskUse, Latency, ProcSample, disk_use, proc_sample, udp_port_drops, udp_receive_drops,
};
pub use node::{InProcessNode, NodeChoice, NodeExit, ServeNodeArgs, serve_node};
pub use resident::DayProfile;
pub use verify::{Durability, Tally};

use node::NodeHandle;
use resident::{Connector, Ctx, DAY, Resident, Stats};

/// Everything a load run needs.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Residents to play.
    pub residents: usize,
    /// The node.
    pub node: NodeChoice,
    /// When `node` is a `vigil-node` program that fails to start, run this
    /// executable's `serve-node` instead (and say so in the report).
    pub fallback_to_self: bool,
    /// Where a node started here listens.
    pub listen: SocketAddr,
    /// The data directory of a node started here (a fresh temporary one by
    /// default); must be empty.
    pub data: Option<PathBuf>,
    /// OS threads running residents.
    pub concurrency: usize,
    /// Residents connecting at once in the connect phase (`concurrency` if
    /// `None`).
    pub connect_concurrency: Option<usize>,
    /// Wall-clock length of the simulated day; 0 runs every step as soon as a
    /// thread is free (maximum throughput).
    pub day_seconds: f64,
    /// What a resident does in a day.
    pub profile: DayProfile,
    /// Seed of the residents' scripts (who runs a fever, when each syncs, values).
    pub seed: u64,
    /// Per connection attempt.
    pub connect_timeout: Duration,
    /// Attempts per resident in the connect phase (backoff in between).
    pub connect_attempts: u32,
    /// The node's connection limit, for a node started here (its default
    /// otherwise).
    pub node_max_connections: Option<usize>,
    /// All residents' connections through one shared client endpoint
    /// (otherwise each has its own socket and runtime thread).
    pub shared_endpoint: bool,
    /// Runtime threads of the shared client endpoint.
    pub network_threads: usize,
    /// Stop the node with SIGKILL rather than gracefully before reading its
    /// store (a crash: acknowledged writes must survive it too).
    pub kill_node: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            residents: 1000,
            node: NodeChoice::InProcess,
            fallback_to_self: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data: None,
            concurrency: 64,
            connect_concurrency: None,
            day_seconds: 60.0,
            profile: DayProfile::default(),
            seed: 1,
            connect_timeout: Duration::from_secs(10),
            connect_attempts: 6,
            node_max_connections: None,
            shared_endpoint: true,
            network_threads: 1,
            kill_node: false,
        }
    }
}

/// How the run was set up.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// Residents played.
    pub residents: usize,
    /// Resident threads.
    pub concurrency: usize,
    /// Residents connecting at once in the connect phase.
    pub connect_concurrency: usize,
    /// Length of the simulated day, seconds.
    pub day_seconds: f64,
    /// The day's script.
    pub profile: DayProfile,
    /// Readings per resident per day.
    pub readings_per_resident: u64,
    /// Residents scripted to run a fever.
    pub fever_residents: u64,
    /// The node under test.
    pub node: String,
    /// The node's enrolment code.
    pub node_code: String,
    /// Notes on the node (fallbacks taken).
    pub node_notes: Vec<String>,
    /// How residents connect.
    pub endpoint: String,
    /// Where the residents' vaults live.
    pub resident_storage: String,
    /// The scripts' seed.
    pub seed: u64,
    /// CPUs this machine has.
    pub cpus: usize,
    /// Seconds to create the vaults.
    pub setup_s: f64,
}

/// One timed phase in which every resident does one thing once.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    /// Residents that succeeded.
    pub ok: u64,
    /// Residents that did not.
    pub failed: u64,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
    /// Successes per second.
    pub per_s: f64,
    /// Per resident (successes only).
    pub latency: Latency,
    /// UDP datagrams dropped during the phase.
    pub udp_drops: UdpDrops,
}

/// UDP datagrams dropped (receive buffer full, mostly), from `/proc/net`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UdpDrops {
    /// By every socket on this machine (node and generator alike).
    pub machine: Option<u64>,
    /// By the node's socket (a node on this machine).
    pub node_socket: Option<u64>,
}

impl UdpDrops {
    fn now(port: u16) -> UdpDrops {
        UdpDrops {
            machine: udp_receive_drops(),
            node_socket: udp_port_drops(port),
        }
    }

    fn since(before: UdpDrops, port: u16) -> UdpDrops {
        let now = UdpDrops::now(port);
        let d = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
        UdpDrops {
            machine: d(before.machine, now.machine),
            node_socket: d(before.node_socket, now.node_socket),
        }
    }

    fn describe(&self) -> Option<String> {
        let m = self.machine?;
        Some(match self.node_socket {
            Some(n) => format!("{m} ({n} at the node's socket)"),
            None => m.to_string(),
        })
    }
}

/// The day phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DayResult {
    /// Wall-clock seconds.
    pub elapsed_s: f64,
    /// Syncs that completed.
    pub syncs_ok: u64,
    /// Syncs that failed (after a redial and retry).
    pub syncs_failed: u64,
    /// Bundles the node acknowledged (each (device, seq) once).
    pub bundles_acked: u64,
    /// Acknowledged bundles per second.
    pub bundles_per_s: f64,
    /// Bundles per second the script offers (residents × syncs / day).
    pub offered_bundles_per_s: Option<f64>,
    /// Relay snapshots acknowledged.
    pub snapshots_acked: u64,
    /// Requests sent (every round trip).
    pub requests: u64,
    /// Requests per second.
    pub requests_per_s: f64,
    /// Readings recorded.
    pub readings: u64,
    /// Readings recorded but not acknowledged by the node at the end.
    pub readings_unsynced: u64,
    /// Connections redialled after a failure.
    pub reconnects: u64,
    /// One whole sync (hello, register, auth, push, pull).
    pub sync_latency: Latency,
    /// How late steps started against their schedule (the generator or the
    /// node falling behind).
    pub schedule_lag: Latency,
    /// UDP datagrams dropped during the day.
    pub udp_drops: UdpDrops,
    /// CPU seconds this process (the residents) used during the day.
    pub generator_cpu_s: Option<f64>,
}

/// Fever alerts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AlertResult {
    /// Residents scripted to run a fever.
    pub fever_residents: u64,
    /// Of them, residents whose episode start the node stored.
    pub start_delivered: u64,
    /// Of them, residents whose episode end the node stored too.
    pub end_delivered: u64,
    /// Alerts still in residents' outboxes at the end.
    pub pending_at_end: u64,
    /// `record` of the confirming reading → the node's AlertAck.
    pub latency: Latency,
}

/// The node's resources.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeResult {
    /// What ran.
    pub description: String,
    /// Before any resident connected.
    pub idle: Option<ProcSample>,
    /// With every resident connected.
    pub connected: Option<ProcSample>,
    /// At the end of the day (its peak RSS is `peak_rss_bytes`).
    pub after_day: Option<ProcSample>,
    /// Peak resident set size (VmHWM), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// (RSS connected − RSS idle) / connections.
    pub rss_per_connection_bytes: Option<u64>,
    /// CPU seconds the node used during the day phase.
    pub day_cpu_s: Option<f64>,
    /// Disk use before the run.
    pub disk_idle: Option<DiskUse>,
    /// Disk use after the day.
    pub disk: Option<DiskUse>,
    /// Allocated disk bytes per resident (growth over the run).
    pub disk_per_resident_bytes: Option<u64>,
    /// How it stopped.
    pub exit: NodeExit,
    /// `Some` if the node process died during the run.
    pub died: Option<String>,
    /// ERROR and panic lines in the node's log.
    pub log_problems: Vec<String>,
    /// The node's log file, for a child.
    pub log: Option<PathBuf>,
}

/// Everything a load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// How the run was set up.
    pub setup: Setup,
    /// Opening every connection.
    pub connect: Phase,
    /// Every resident granting the alert capability.
    pub enrol: Phase,
    /// The day.
    pub day: DayResult,
    /// Fever alerts.
    pub alerts: AlertResult,
    /// The node.
    pub node: NodeResult,
    /// This process (residents, and the node when in-process).
    pub generator: Option<ProcSample>,
    /// Refusals and errors by kind: `connect: …` per failed attempt,
    /// `refused: …` per request the node refused, `transport: …` per failed
    /// exchange, `failed: …` per operation that failed after its retry,
    /// `gave up: connect` per resident that exhausted its attempts.
    pub errors: BTreeMap<String, u64>,
    /// The durability check.
    pub durability: Durability,
}

impl LoadReport {
    /// Whether the node stayed up and lost nothing it acknowledged.
    pub fn passed(&self) -> bool {
        self.node.died.is_none() && self.durability.passed
    }
}

fn period_start() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    now - now.rem_euclid(DAY) - 2 * DAY
}

/// Runs `f` on every resident, from `threads` threads.
fn for_each(threads: usize, residents: &[Mutex<Resident>], f: impl Fn(&mut Resident) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, residents.len().max(1)) {
            s.spawn(|| {
                while let Some(r) = residents.get(next.fetch_add(1, Ordering::Relaxed)) {
                    f(&mut r.lock().unwrap_or_else(|p| p.into_inner()));
                }
            });
        }
    });
}

/// Builds `n` values from `threads` threads.
fn build<T: Send>(
    threads: usize,
    n: usize,
    f: impl Fn(usize) -> Result<T, String> + Sync,
) -> Result<Vec<T>, String> {
    let out: Vec<Mutex<Option<Result<T, String>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, n.max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(slot) = out.get(i) else { break };
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(f(i));
                }
            });
        }
    });
    out.into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| Err("not built".into()))
        })
        .collect()
}

/// The day: every resident's slots at their scheduled instants, from
/// `threads` threads, earliest due first.
fn run_day(residents: &[Mutex<Resident>], ctx: &Ctx<'_>, threads: usize, day: Duration) {
    let slots = ctx.profile.syncs.max(1);
    let slot_len = day / slots;
    let phases: Vec<f64> = residents
        .iter()
        .map(|r| r.lock().unwrap_or_else(|p| p.into_inner()).plan.phase)
        .collect();
    let start = Instant::now();
    let due = |slot: u32, i: usize| start + slot_len.mul_f64(f64::from(slot) + phases[i]);
    let queue: Mutex<BinaryHeap<Reverse<(Instant, u32, usize)>>> = Mutex::new(
        (0..residents.len())
            .map(|i| Reverse((due(0, i), 0, i)))
            .collect(),
    );
    let remaining = AtomicUsize::new(residents.len());
    let wake = Condvar::new();
    let worker = || {
        loop {
            let (at, i) = {
                let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if remaining.load(Ordering::Acquire) == 0 {
                        return;
                    }
                    let now = Instant::now();
                    match q.peek() {
                        Some(Reverse((at, _, _))) if *at <= now => {
                            let Some(Reverse((at, _, i))) = q.pop() else {
                                continue;
                            };
                            break (at, i);
                        }
                        Some(Reverse((at, _, _))) => {
                            let wait = *at - now;
                            q = wake
                                .wait_timeout(q, wait)
                                .unwrap_or_else(|p| p.into_inner())
                                .0;
                        }
                        None => {
                            q = wake
                                .wait_timeout(q, Duration::from_millis(50))
                                .unwrap_or_else(|p| p.into_inner())
                                .0;
                        }
                    }
                }
            };
            ctx.stats.lag.push(at.elapsed());
            let mut r = residents[i].lock().unwrap_or_else(|p| p.into_inner());
            if r.step(ctx) {
                let slot = r.next_slot;
                drop(r);
                queue
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Reverse((due(slot, i), slot, i)));
                wake.notify_one();
            } else {
                drop(r);
                if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    wake.notify_all();
                }
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, residents.len().max(1)) {
            s.spawn(worker);
        }
    });
}

fn phase(ok: u64, failed: u64, elapsed: Duration, latency: Latency, udp_drops: UdpDrops) -> Phase {
    let secs = elapsed.as_secs_f64();
    Phase {
        ok,
        failed,
        elapsed_s: secs,
        per_s: if secs > 0.0 { ok as f64 / secs } else { 0.0 },
        latency,
        udp_drops,
    }
}

/// Runs the whole load: start (or adopt) the node, connect, enrol, the day,
/// verify, stop. Errors only when the run cannot start (the node does not
/// come up, no vault can be made); everything that fails under load is
/// counted in the report instead.
pub fn run(config: &LoadConfig) -> Result<LoadReport, String> {
    let n = config.residents;
    let mut notes = vec![];
    let mut node = match NodeHandle::start(
        &config.node,
        config.listen,
        config.data.as_deref(),
        config.node_max_connections,
    ) {
        Ok(node) => node,
        Err(e) if config.fallback_to_self && matches!(config.node, NodeChoice::Spawn { .. }) => {
            notes.push(format!(
                "the vigil-node program did not start ({e}); ran vigil-bench serve-node instead"
            ));
            NodeHandle::start(
                &NodeChoice::Spawn { program: None },
                config.listen,
                config.data.as_deref(),
                config.node_max_connections,
            )?
        }
        Err(e) => return Err(e),
    };
    node.notes.append(&mut notes);
    // Allocator settings change the node's memory a lot (see the crate docs).
    for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("MALLOC_")) {
        node.notes.push(format!(
            "environment: {k}={v} (inherited by a node started here)"
        ));
    }
    let idle = node.sample();
    let disk_idle = node.disk();
    let stats = Stats::default();
    let period = Period::days(period_start(), 7);
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());

    // Vaults.
    let started = Instant::now();
    let residents: Vec<Mutex<Resident>> = build(cpus, n, |i| {
        Resident::new(i, period, config.seed, &config.profile)
    })?
    .into_iter()
    .map(Mutex::new)
    .collect();
    let setup_s = started.elapsed().as_secs_f64();

    let connector = if config.shared_endpoint {
        Connector::Shared(
            ClientEndpoint::new(node.code.addr, config.network_threads)
                .map_err(|e| e.to_string())?,
        )
    } else {
        Connector::Private
    };
    let endpoint_desc = if let Connector::Shared(e) = &connector {
        format!(
            "one shared client endpoint ({} runtime thread(s), receive buffer {})",
            config.network_threads,
            e.recv_buffer_size()
                .map_or("unknown".into(), |b| format!("{} KiB", b / 1024))
        )
    } else {
        "a private endpoint and runtime thread per resident".into()
    };
    let code = node.code.clone();
    let ctx = Ctx {
        code: &code,
        connector: &connector,
        connect_timeout: config.connect_timeout,
        stats: &stats,
        profile: &config.profile,
        day_start_ms: period.start_ms + DAY,
    };
    let mut died = None;

    // 1. Connect.
    let port = code.addr.port();
    let drops = UdpDrops::now(port);
    let started = Instant::now();
    let connect_concurrency = config.connect_concurrency.unwrap_or(config.concurrency);
    for_each(connect_concurrency, &residents, |r| {
        r.connect(&ctx, config.connect_attempts, true);
    });
    let drops = UdpDrops::since(drops, port);
    let connect_elapsed = started.elapsed();
    let connected = residents
        .iter()
        .filter(|r| r.lock().is_ok_and(|r| r.link.conn.is_some()))
        .count() as u64;
    let connect = phase(
        connected,
        n as u64 - connected,
        connect_elapsed,
        stats.connect_latency.summary(),
        drops,
    );
    let with_all = node.sample();
    if let Err(e) = node.check_alive() {
        died.get_or_insert(e);
    }

    // 2. Enrol.
    let drops = UdpDrops::now(port);
    let started = Instant::now();
    for_each(config.concurrency, &residents, |r| {
        r.enrol(&ctx);
    });
    let drops = UdpDrops::since(drops, port);
    let enrolled = residents
        .iter()
        .filter(|r| r.lock().is_ok_and(|r| r.enrolled))
        .count() as u64;
    let enrol = phase(
        enrolled,
        n as u64 - enrolled,
        started.elapsed(),
        stats.enrol_latency.summary(),
        drops,
    );
    if let Err(e) = node.check_alive() {
        died.get_or_insert(e);
    }

    // 3. The day.
    let before_day = node.sample();
    let generator_before = proc_sample(None);
    let drops = UdpDrops::now(port);
    let requests_before = stats.requests.load(Ordering::Relaxed);
    let acked_before = stats.bundles_acked.load(Ordering::Relaxed);
    let started = Instant::now();
    run_day(
        &residents,
        &ctx,
        config.concurrency,
        Duration::from_secs_f64(config.day_seconds.max(0.0)),
    );
    let day_elapsed = started.elapsed();
    let day_drops = UdpDrops::since(drops, port);
    let after_day = node.sample();
    let disk = node.disk();
    if let Err(e) = node.check_alive() {
        died.get_or_insert(e);
    }
    let generator = proc_sample(None);
    let secs = day_elapsed.as_secs_f64().max(1e-9);
    let bundles = stats.bundles_acked.load(Ordering::Relaxed) - acked_before;
    let requests = stats.requests.load(Ordering::Relaxed) - requests_before;
    let mut readings_unsynced = 0;
    let mut alerts = AlertResult {
        latency: stats.alert_latency.summary(),
        ..AlertResult::default()
    };
    for r in &residents {
        let mut r = r.lock().unwrap_or_else(|p| p.into_inner());
        readings_unsynced += r.readings - r.readings_synced;
        if r.plan.fever_slot.is_some() {
            alerts.fever_residents += 1;
            alerts.start_delivered += u64::from(r.link.alerts_stored >= 1);
            alerts.end_delivered += u64::from(r.link.alerts_stored >= 2);
        }
        alerts.pending_at_end += r.vault.pending_alerts().map_or(0, |a| a.len() as u64);
        // The residents leave; the verification dials afresh.
        if let Some(c) = r.link.conn.take() {
            c.close();
        }
    }
    let day = DayResult {
        elapsed_s: day_elapsed.as_secs_f64(),
        syncs_ok: stats.syncs_ok.load(Ordering::Relaxed),
        syncs_failed: stats.syncs_failed.load(Ordering::Relaxed),
        bundles_acked: bundles,
        bundles_per_s: bundles as f64 / secs,
        offered_bundles_per_s: (config.day_seconds > 0.0)
            .then(|| (n as f64) * f64::from(config.profile.syncs) / config.day_seconds),
        snapshots_acked: stats.snapshots_acked.load(Ordering::Relaxed),
        requests,
        requests_per_s: requests as f64 / secs,
        readings: stats.readings.load(Ordering::Relaxed),
        readings_unsynced,
        reconnects: stats.reconnects.load(Ordering::Relaxed),
        sync_latency: stats.sync_latency.summary(),
        schedule_lag: stats.lag.summary(),
        udp_drops: day_drops,
        generator_cpu_s: match (generator_before, generator) {
            (Some(a), Some(b)) => Some(b.cpu_ms.saturating_sub(a.cpu_ms) as f64 / 1e3),
            _ => None,
        },
    };

    // 4. Verify: pull every vault back over fresh connections.
    let verifier = ClientEndpoint::new(node.code.addr, config.network_threads.max(1))
        .map_err(|e| e.to_string())?;
    let by_pull = Mutex::new(Tally::default());
    for_each(config.concurrency, &residents, |r| {
        let mut t = Tally::default();
        let mut conn = None;
        let mut backoff = Duration::from_millis(100);
        for _ in 0..config.connect_attempts.max(1) {
            match verifier.connect(&code, config.connect_timeout) {
                Ok(c) => {
                    conn = Some(c);
                    break;
                }
                Err(_) => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        match conn {
            Some(mut c) => {
                t.merge(verify::check_by_pull(r, &mut c));
                c.close();
            }
            None => {
                t.residents += 1;
                t.unreadable += 1;
                t.examples
                    .push(format!("resident {}: no connection to pull back", r.index));
            }
        }
        by_pull.lock().unwrap_or_else(|p| p.into_inner()).merge(t);
    });
    drop(verifier);
    drop(connector);
    if let Err(e) = node.check_alive() {
        died.get_or_insert(e);
    }

    // 5. Stop the node and read its store.
    let (exit, store) = node.stop(config.kill_node);
    let mut durability = Durability {
        by_pull: by_pull.into_inner().unwrap_or_else(|p| p.into_inner()),
        alerts_acked_stored: stats.alerts_stored.load(Ordering::Relaxed),
        ..Durability::default()
    };
    match store {
        Some(Ok(store)) => {
            let mut t = Tally::default();
            for r in &residents {
                let r = r.lock().unwrap_or_else(|p| p.into_inner());
                t.merge(verify::check_in_store(&r, &store));
            }
            durability.in_store = Some(t);
            match store.inbox() {
                Ok(inbox) => durability.inbox_alerts = Some(inbox.len() as u64),
                Err(e) => durability.store_error = Some(e.to_string()),
            }
        }
        Some(Err(e)) => durability.store_error = Some(e),
        None => {}
    }
    durability.passed = durability.by_pull.passed()
        && durability.in_store.as_ref().is_none_or(Tally::passed)
        && durability.store_error.is_none()
        && durability
            .inbox_alerts
            .is_none_or(|i| i >= durability.alerts_acked_stored);

    let rss_per_connection = match (idle, with_all) {
        (Some(a), Some(b)) if connected > 0 && !matches!(config.node, NodeChoice::InProcess) => {
            Some(b.rss_bytes.saturating_sub(a.rss_bytes) / connected)
        }
        _ => None,
    };
    let node_result = NodeResult {
        description: node.description.clone(),
        idle,
        connected: with_all,
        after_day,
        peak_rss_bytes: after_day.map(|s| s.peak_rss_bytes),
        rss_per_connection_bytes: rss_per_connection,
        day_cpu_s: match (before_day, after_day) {
            (Some(a), Some(b)) => Some(b.cpu_ms.saturating_sub(a.cpu_ms) as f64 / 1e3),
            _ => None,
        },
        disk_idle,
        disk,
        disk_per_resident_bytes: match (disk_idle, disk) {
            (Some(a), Some(b)) if n > 0 => {
                Some(b.allocated_bytes.saturating_sub(a.allocated_bytes) / n as u64)
            }
            _ => None,
        },
        exit,
        died,
        log_problems: node.log_problems().into_iter().take(20).collect(),
        log: node.log.clone(),
    };
    Ok(LoadReport {
        setup: Setup {
            residents: n,
            concurrency: config.concurrency,
            connect_concurrency,
            day_seconds: config.day_seconds,
            profile: config.profile.clone(),
            readings_per_resident: config.profile.readings_per_day(),
            fever_residents: alerts.fever_residents,
            node: node.description.clone(),
            node_code: node.code.to_string(),
            node_notes: node.notes.clone(),
            endpoint: endpoint_desc,
            resident_storage: "vaults in memory (MemStorage + MemoryKeyStore), not sled".into(),
            seed: config.seed,
            cpus,
            setup_s,
        },
        connect,
        enrol,
        day,
        alerts,
        node: node_result,
        generator,
        errors: stats.errors.snapshot(),
        durability,
    })
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn lat(l: &Latency) -> String {
    if l.count == 0 {
        return "–".into();
    }
    format!(
        "{:.1} / {:.1} ms (max {:.1}, n={})",
        l.p50_ms, l.p99_ms, l.max_ms, l.count
    )
}

impl LoadReport {
    /// The report as a Markdown table, with the setup above and the
    /// refusals below.
    pub fn markdown(&self) -> String {
        let s = &self.setup;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "### Load: {} residents, concurrency {}, day {} s\n",
            s.residents, s.concurrency, s.day_seconds
        );
        let _ = writeln!(o, "- node: {}", s.node);
        for note in &s.node_notes {
            let _ = writeln!(o, "- note: {note}");
        }
        let _ = writeln!(
            o,
            "- residents: {}; {}; {} readings and {} syncs each, {} scripted fevers; seed {}",
            s.resident_storage,
            s.endpoint,
            s.readings_per_resident,
            s.profile.syncs,
            s.fever_residents,
            s.seed
        );
        let _ = writeln!(
            o,
            "- machine: {} CPUs; vaults made in {:.1} s\n",
            s.cpus, s.setup_s
        );
        let _ = writeln!(o, "| metric | value |\n|---|---|");
        let mut row = |k: &str, v: String| {
            let _ = writeln!(o, "| {k} | {v} |");
        };
        let c = &self.connect;
        row(
            "handshakes/s (connect phase)",
            format!(
                "{:.0} ({} of {} connected in {:.1} s, {} at once)",
                c.per_s, c.ok, s.residents, c.elapsed_s, s.connect_concurrency
            ),
        );
        row("handshake latency p50 / p99", lat(&c.latency));
        if let Some(d) = c.udp_drops.describe() {
            row("UDP datagrams dropped, connect phase", d);
        }
        let e = &self.enrol;
        row(
            "enrolments/s",
            format!(
                "{:.0} ({} of {} in {:.1} s)",
                e.per_s, e.ok, s.residents, e.elapsed_s
            ),
        );
        let d = &self.day;
        row(
            "bundles/s (day phase)",
            format!(
                "{:.0} acked{} ({} bundles in {:.1} s)",
                d.bundles_per_s,
                d.offered_bundles_per_s
                    .map(|x| format!(", {x:.0} offered"))
                    .unwrap_or_default(),
                d.bundles_acked,
                d.elapsed_s
            ),
        );
        row(
            "requests/s (day phase)",
            format!("{:.0} ({} requests)", d.requests_per_s, d.requests),
        );
        row(
            "syncs ok / failed",
            format!("{} / {}", d.syncs_ok, d.syncs_failed),
        );
        row("sync latency p50 / p99", lat(&d.sync_latency));
        row("schedule lag p50 / p99", lat(&d.schedule_lag));
        if let Some(x) = d.udp_drops.describe() {
            row("UDP datagrams dropped, day phase", x);
        }
        if let Some(cpu) = d.generator_cpu_s {
            row(
                "generator CPU during the day",
                format!(
                    "{cpu:.1} s ({:.0}% of one core)",
                    100.0 * cpu / d.elapsed_s.max(1e-9)
                ),
            );
        }
        let a = &self.alerts;
        row(
            "alert latency p50 / p99 (record → AlertAck)",
            lat(&a.latency),
        );
        row(
            "fever alerts stored (start / end of episode)",
            format!(
                "{} / {} of {} fever residents; {} pending at end",
                a.start_delivered, a.end_delivered, a.fever_residents, a.pending_at_end
            ),
        );
        row(
            "readings recorded / not acked at end",
            format!("{} / {}", d.readings, d.readings_unsynced),
        );
        let nd = &self.node;
        if let Some(p) = nd.peak_rss_bytes {
            row("node peak RSS (VmHWM)", mib(p));
        }
        if let (Some(i), Some(c)) = (nd.idle, nd.connected) {
            row(
                "node RSS idle → all connected",
                format!(
                    "{} → {}{}",
                    mib(i.rss_bytes),
                    mib(c.rss_bytes),
                    nd.rss_per_connection_bytes
                        .map(|b| format!(" ({:.1} KiB per connection)", b as f64 / 1024.0))
                        .unwrap_or_default()
                ),
            );
        }
        if let Some(a) = nd.after_day {
            row(
                "node RSS after the day / threads",
                format!("{} / {}", mib(a.rss_bytes), a.threads),
            );
        }
        if let Some(cpu) = nd.day_cpu_s {
            row(
                "node CPU during the day",
                format!(
                    "{cpu:.1} s ({:.0}% of one core)",
                    100.0 * cpu / d.elapsed_s.max(1e-9)
                ),
            );
        }
        if let Some(disk) = nd.disk {
            row(
                "node disk (du / apparent)",
                format!(
                    "{} / {} in {} files{}",
                    mib(disk.allocated_bytes),
                    mib(disk.apparent_bytes),
                    disk.files,
                    nd.disk_per_resident_bytes
                        .map(|b| format!(" ({:.1} KiB per resident)", b as f64 / 1024.0))
                        .unwrap_or_default()
                ),
            );
        }
        if let Some(g) = self.generator {
            row(
                "generator peak RSS",
                format!("{} ({} threads)", mib(g.peak_rss_bytes), g.threads),
            );
        }
        row(
            "node stayed up",
            match &nd.died {
                None => format!("yes; stopped: {}", nd.exit.how),
                Some(why) => format!("**NO**: {why}"),
            },
        );
        let du = &self.durability;
        let p = &du.by_pull;
        row(
            "durability: pulled back over fresh connections",
            format!(
                "{}: {} acked, {} present, {} in a snapshot, {} missing, {} altered, {} unreadable",
                if p.passed() { "pass" } else { "**FAIL**" },
                p.acked,
                p.present,
                p.covered_by_snapshot,
                p.missing,
                p.altered,
                p.unreadable
            ),
        );
        match (&du.in_store, &du.store_error) {
            (Some(t), _) => row(
                "durability: node store after stop",
                format!(
                    "{}: {} acked, {} present, {} in a snapshot, {} missing, {} altered; inbox {} alerts for {} acked as stored",
                    if t.passed() { "pass" } else { "**FAIL**" },
                    t.acked,
                    t.present,
                    t.covered_by_snapshot,
                    t.missing,
                    t.altered,
                    du.inbox_alerts.map_or("?".into(), |i| i.to_string()),
                    du.alerts_acked_stored
                ),
            ),
            (None, Some(e)) => row(
                "durability: node store after stop",
                format!("**not read**: {e}"),
            ),
            (None, None) => row("durability: node store after stop", "not local".into()),
        }
        let _ = writeln!(o);
        if self.errors.is_empty() {
            let _ = writeln!(o, "Refusals and errors: none.");
        } else {
            let _ = writeln!(o, "Refusals and errors by kind:\n");
            for (k, v) in &self.errors {
                let _ = writeln!(o, "- {k}: {v}");
            }
        }
        for ex in du.by_pull.examples.iter().chain(
            du.in_store
                .as_ref()
                .map(|t| t.examples.iter())
                .into_iter()
                .flatten(),
        ) {
            let _ = writeln!(o, "- durability problem: {ex}");
        }
        for l in &nd.log_problems {
            let _ = writeln!(o, "- node log: {l}");
        }
        o
    }
}

/// Arguments of `vigil-bench load`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Examples:
  vigil-bench load --residents 1000 --json load-1000.json
  vigil-bench load --residents 10000 --concurrency 128 --day-seconds 120
  vigil-bench load --residents 200 --day-seconds 0          # as fast as the node goes
  vigil-bench load --residents 500 --node vigil1/127.0.0.1:4433/...   # a running node

By default the node runs as a separate process (the vigil-node program when it sits next to \
this executable, else `vigil-bench serve-node`, the relay_node example's stack) in a fresh \
temporary data directory, so its memory and disk are its own. The exit code is 1 if the node \
died or lost an acknowledged bundle.")]
pub struct LoadArgs {
    /// Residents to play.
    #[arg(long, value_name = "N")]
    pub residents: usize,
    /// A running node's enrolment code (vigil1/...), or the address for the
    /// node started here to listen on [default: 127.0.0.1:0].
    #[arg(long, value_name = "ADDR|CODE")]
    pub node: Option<String>,
    /// OS threads playing residents (each resident's calls are blocking).
    #[arg(long, value_name = "C", default_value_t = 64)]
    pub concurrency: usize,
    /// Residents connecting at once in the connect phase [default: C].
    #[arg(long, value_name = "N")]
    pub connect_concurrency: Option<usize>,
    /// Wall-clock seconds of the simulated day; 0 = as fast as possible.
    #[arg(long, value_name = "S", default_value_t = 60.0)]
    pub day_seconds: f64,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Run the node in this process (its memory then includes the residents').
    #[arg(long, conflicts_with = "node_bin")]
    pub in_process: bool,
    /// The vigil-node program to start (`PATH serve --data DIR --listen ADDR`).
    #[arg(long, value_name = "PATH")]
    pub node_bin: Option<PathBuf>,
    /// Run `vigil-bench serve-node` as the node process even if a vigil-node
    /// program sits next to this executable.
    #[arg(long, conflicts_with_all = ["node_bin", "in_process"])]
    pub self_node: bool,
    /// With a running node (--node CODE): its process id, to sample memory.
    #[arg(long, value_name = "PID")]
    pub node_pid: Option<u32>,
    /// With a running node: its data directory, to measure disk use; for a
    /// node started here: where to put its data (must be empty).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Seed of the residents' scripts.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of residents who run a fever, percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 5.0)]
    pub fever_percent: f64,
    /// Syncs per resident in the day.
    #[arg(long, default_value_t = 24)]
    pub syncs: u32,
    /// Seconds allowed per connection attempt.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Connection attempts per resident in the connect phase.
    #[arg(long, default_value_t = 6)]
    pub connect_attempts: u32,
    /// The node's connection limit (a node started here), to see its refusals.
    #[arg(long, value_name = "N")]
    pub node_max_connections: Option<usize>,
    /// Give each resident its own client endpoint and runtime thread (as on
    /// a phone) instead of one shared endpoint; needs ~3 file descriptors
    /// and a thread per resident.
    #[arg(long)]
    pub private_endpoints: bool,
    /// Runtime threads of the shared client endpoint.
    #[arg(long, default_value_t = 1)]
    pub network_threads: usize,
    /// Stop the node with SIGKILL instead of gracefully before checking its store.
    #[arg(long)]
    pub kill_node: bool,
}

impl LoadArgs {
    /// The run these arguments describe.
    pub fn config(&self) -> Result<LoadConfig, String> {
        let mut c = LoadConfig {
            residents: self.residents,
            concurrency: self.concurrency.max(1),
            connect_concurrency: self.connect_concurrency.map(|c| c.max(1)),
            day_seconds: self.day_seconds,
            seed: self.seed,
            connect_timeout: Duration::from_secs_f64(self.connect_timeout.max(0.1)),
            connect_attempts: self.connect_attempts.max(1),
            node_max_connections: self.node_max_connections,
            shared_endpoint: !self.private_endpoints,
            network_threads: self.network_threads.max(1),
            kill_node: self.kill_node,
            data: self.data.clone(),
            profile: DayProfile {
                syncs: self.syncs.max(1),
                fever_percent: self.fever_percent,
                ..DayProfile::default()
            },
            ..LoadConfig::default()
        };
        let code = match &self.node {
            Some(s) if s.trim().starts_with("vigil1/") => Some(
                s.parse::<EnrolmentCode>()
                    .map_err(|e| format!("--node: {e}"))?,
            ),
            Some(s) => {
                c.listen = s.parse().map_err(|_| {
                    format!("--node: `{s}` is neither an enrolment code nor an address")
                })?;
                None
            }
            None => None,
        };
        c.node = if let Some(code) = code {
            c.data = None;
            NodeChoice::External {
                code,
                pid: self.node_pid,
                data: self.data.clone(),
            }
        } else if self.in_process {
            NodeChoice::InProcess
        } else if let Some(p) = &self.node_bin {
            NodeChoice::Spawn {
                program: Some(p.clone()),
            }
        } else if self.self_node {
            NodeChoice::Spawn { program: None }
        } else {
            let sibling = std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(|d| d.join("vigil-node")))
                .filter(|p| p.is_file());
            c.fallback_to_self = sibling.is_some();
            NodeChoice::Spawn { program: sibling }
        };
        Ok(c)
    }
}

/// `vigil-bench load`: runs, prints the Markdown report, writes the JSON.
pub fn main(args: LoadArgs) -> Result<ExitCode, String> {
    let config = args.config()?;
    let report = run(&config)?;
    println!("{}", report.markdown());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
