//! One load run, phase by phase: start the node, make the vaults, connect,
//! enrol, the day, pull everything back, stop the node and read its store.
//!
//! [`Watched`] is the node with what was sampled of it between phases;
//! [`Cast`] is the residents with what they share (the endpoint, the
//! counters). Each phase is a method returning its part of the report.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use vigil_device::Period;
use vigil_net::{ClientEndpoint, DeviceConnection, EnrolmentCode};
use vigil_node::MailboxStore;

use super::node::{NodeHandle, TicketPlan};
use super::pool::{build, for_each, lock, run_day};
use super::resident::{Connector, Ctx, DAY, Resident, Stats, resident_label};

/// The residents' period: a week placed around now (the node checks it).
fn run_period() -> Period {
    Period::days(period_start(), 7)
}
use super::{
    AlertResult, DayResult, DiskUse, Durability, LoadConfig, LoadReport, NodeChoice, NodeResult,
    Phase, ProcSample, Setup, Tally, UdpDrops, proc_sample, verify,
};

/// Runs the whole load: start (or adopt) the node, connect, enrol, the day,
/// verify, stop. Errors only when the run cannot start (the node does not
/// come up, no vault can be made); everything that fails under load is
/// counted in the report instead.
pub fn run(config: &LoadConfig) -> Result<LoadReport, String> {
    let mut node = Watched::start(config)?;
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
    let cast = Cast::assemble(config, &mut node.handle, cpus)?;

    let connect = cast.connect();
    node.connected = node.handle.sample();
    node.check_alive();
    let enrol = cast.enrol();
    node.check_alive();
    let Day {
        day,
        alerts,
        generator,
    } = cast.day(&mut node);
    let setup = cast.setup(&node.handle, alerts.fever_residents, cpus);

    let by_pull = cast.pull_back()?;
    let (residents, stats) = cast.disband();
    node.check_alive();

    let (exit, store) = node.handle.stop(config.kill_node);
    let durability = durability(by_pull, &residents, &stats, store);
    Ok(LoadReport {
        setup,
        node: node.result(config, connect.ok, exit),
        connect,
        enrol,
        day,
        alerts,
        generator,
        errors: stats.errors.snapshot(),
        durability,
    })
}

/// The monitoring period starts at midnight UTC two days ago, so that the
/// simulated day (yesterday) is in the past for the node's real clock.
fn period_start() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    now - now.rem_euclid(DAY) - 2 * DAY
}

/// The node under test, and what was sampled of it between phases.
struct Watched {
    handle: NodeHandle,
    /// The first sign that it died, from the checks between phases.
    died: Option<String>,
    idle: Option<ProcSample>,
    disk_idle: Option<DiskUse>,
    connected: Option<ProcSample>,
    before_day: Option<ProcSample>,
    after_day: Option<ProcSample>,
    disk: Option<DiskUse>,
}

impl Watched {
    /// Starts (or adopts) the node and samples it idle.
    fn start(config: &LoadConfig) -> Result<Watched, String> {
        let handle = start_node(config)?;
        Ok(Watched {
            idle: handle.sample(),
            disk_idle: handle.disk(),
            handle,
            died: None,
            connected: None,
            before_day: None,
            after_day: None,
            disk: None,
        })
    }

    fn check_alive(&mut self) {
        if let Err(e) = self.handle.check_alive() {
            self.died.get_or_insert(e);
        }
    }

    /// Samples memory and disk at the end of the day.
    fn after_day(&mut self) {
        self.after_day = self.handle.sample();
        self.disk = self.handle.disk();
        self.check_alive();
    }

    fn result(&self, config: &LoadConfig, connected: u64, exit: super::NodeExit) -> NodeResult {
        let n = config.residents as u64;
        // An in-process node shares its memory with the residents.
        let rss_per_connection = match (self.idle, self.connected) {
            (Some(a), Some(b))
                if connected > 0 && !matches!(config.node, NodeChoice::InProcess) =>
            {
                Some(b.rss_bytes.saturating_sub(a.rss_bytes) / connected)
            }
            _ => None,
        };
        NodeResult {
            description: self.handle.description.clone(),
            idle: self.idle,
            connected: self.connected,
            after_day: self.after_day,
            peak_rss_bytes: self.after_day.map(|s| s.peak_rss_bytes),
            rss_per_connection_bytes: rss_per_connection,
            day_cpu_s: cpu_s(self.before_day, self.after_day),
            disk_idle: self.disk_idle,
            disk: self.disk,
            disk_per_resident_bytes: match (self.disk_idle, self.disk) {
                (Some(a), Some(b)) if n > 0 => {
                    Some(b.allocated_bytes.saturating_sub(a.allocated_bytes) / n)
                }
                _ => None,
            },
            exit,
            died: self.died.clone(),
            log_problems: self.handle.log_problems().into_iter().take(20).collect(),
            log: self.handle.log.clone(),
        }
    }
}

/// CPU seconds used between two samples of a process.
fn cpu_s(before: Option<ProcSample>, after: Option<ProcSample>) -> Option<f64> {
    match (before, after) {
        (Some(a), Some(b)) => Some(b.cpu_ms.saturating_sub(a.cpu_ms) as f64 / 1e3),
        _ => None,
    }
}

/// Starts the node `config` names, falling back to this executable's
/// `serve-node` when allowed; notes the allocator settings it inherits,
/// which change its memory a lot (see the crate docs).
fn start_node(config: &LoadConfig) -> Result<NodeHandle, String> {
    let plan = TicketPlan {
        labels: (0..config.residents).map(resident_label).collect(),
        period_end_ms: run_period().end_ms,
    };
    let start = |choice: &NodeChoice| {
        NodeHandle::start(
            choice,
            &plan,
            config.listen,
            config.data.as_deref(),
            config.node_max_connections,
        )
    };
    let mut notes = vec![];
    let mut node = match start(&config.node) {
        Ok(node) => node,
        Err(e) if config.fallback_to_self && matches!(config.node, NodeChoice::Spawn { .. }) => {
            notes.push(format!(
                "the vigil-node program did not start ({e}); ran vigil-bench serve-node instead"
            ));
            start(&NodeChoice::Spawn { program: None })?
        }
        Err(e) => return Err(e),
    };
    node.notes.append(&mut notes);
    for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("MALLOC_")) {
        node.notes.push(format!(
            "environment: {k}={v} (inherited by a node started here)"
        ));
    }
    Ok(node)
}

/// The residents, and what they share: the node's code, the client
/// endpoint, the counters.
struct Cast<'a> {
    config: &'a LoadConfig,
    residents: Vec<Mutex<Resident>>,
    stats: Stats,
    connector: Connector,
    code: EnrolmentCode,
    day_start_ms: i64,
    /// Seconds it took to make the vaults.
    setup_s: f64,
}

/// The day phase's part of the report.
struct Day {
    day: DayResult,
    alerts: AlertResult,
    /// This process at the end of the day.
    generator: Option<ProcSample>,
}

/// Counters at the start of the day, to report the day's share.
struct DayStart {
    generator: Option<ProcSample>,
    drops: UdpDrops,
    requests: u64,
    bundles_acked: u64,
    at: Instant,
}

impl<'a> Cast<'a> {
    /// Makes every resident's vault (on every CPU) and the endpoint they
    /// connect through.
    fn assemble(
        config: &'a LoadConfig,
        node: &mut NodeHandle,
        cpus: usize,
    ) -> Result<Self, String> {
        let period = run_period();
        let started = Instant::now();
        let tickets = std::mem::take(&mut node.tickets);
        if tickets.len() != config.residents {
            return Err(format!(
                "{} tickets for {} residents",
                tickets.len(),
                config.residents
            ));
        }
        let mut tickets: Vec<Option<vigil_proto::Ticket>> = tickets.into_iter().map(Some).collect();
        let residents: Vec<Mutex<Resident>> = build(cpus, config.residents, |i| {
            Resident::new(i, period, config.seed, &config.profile)
        })?
        .into_iter()
        .zip(tickets.iter_mut())
        .map(|(mut r, t)| {
            r.ticket = t.take();
            Mutex::new(r)
        })
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
        Ok(Cast {
            config,
            residents,
            stats: Stats::default(),
            connector,
            code: node.code.clone(),
            day_start_ms: period.start_ms + DAY,
            setup_s,
        })
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            code: &self.code,
            connector: &self.connector,
            connect_timeout: self.config.connect_timeout,
            stats: &self.stats,
            profile: &self.config.profile,
            day_start_ms: self.day_start_ms,
        }
    }

    fn port(&self) -> u16 {
        self.code.addr.port()
    }

    fn connect_concurrency(&self) -> usize {
        let c = self.config;
        c.connect_concurrency.unwrap_or(c.concurrency)
    }

    /// Residents for whom `f` holds.
    fn count(&self, f: impl Fn(&Resident) -> bool) -> u64 {
        self.residents
            .iter()
            .filter(|r| r.lock().is_ok_and(|r| f(&r)))
            .count() as u64
    }

    /// Runs `f` on every resident from `threads` threads: how long it took
    /// and the UDP datagrams dropped meanwhile.
    fn timed(&self, threads: usize, f: impl Fn(&mut Resident) + Sync) -> (Duration, UdpDrops) {
        let drops = UdpDrops::now(self.port());
        let started = Instant::now();
        for_each(threads, &self.residents, f);
        let drops = UdpDrops::since(drops, self.port());
        (started.elapsed(), drops)
    }

    /// Phase 1: every resident opens its connection.
    fn connect(&self) -> Phase {
        let ctx = self.ctx();
        let attempts = self.config.connect_attempts;
        let (elapsed, drops) = self.timed(self.connect_concurrency(), |r| {
            r.connect(&ctx, attempts, true);
        });
        let ok = self.count(|r| r.link.conn.is_some());
        let latency = self.stats.connect_latency.summary();
        Phase::timed(ok, self.len() - ok, elapsed, latency, drops)
    }

    /// Phase 2: every resident grants the node the fever-alert capability.
    fn enrol(&self) -> Phase {
        let ctx = self.ctx();
        let (elapsed, drops) = self.timed(self.config.concurrency, |r| {
            r.enrol(&ctx);
        });
        let ok = self.count(|r| r.enrolled);
        let latency = self.stats.enrol_latency.summary();
        Phase::timed(ok, self.len() - ok, elapsed, latency, drops)
    }

    fn len(&self) -> u64 {
        self.residents.len() as u64
    }

    /// Phase 3: the day; then the residents leave (their connections close).
    fn day(&self, node: &mut Watched) -> Day {
        node.before_day = node.handle.sample();
        let start = DayStart {
            generator: proc_sample(None),
            drops: UdpDrops::now(self.port()),
            requests: self.stats.requests.load(Ordering::Relaxed),
            bundles_acked: self.stats.bundles_acked.load(Ordering::Relaxed),
            at: Instant::now(),
        };
        let day = Duration::from_secs_f64(self.config.day_seconds.max(0.0));
        run_day(&self.residents, &self.ctx(), self.config.concurrency, day);
        let elapsed = start.at.elapsed();
        let drops = UdpDrops::since(start.drops, self.port());
        node.after_day();
        let generator = proc_sample(None);
        let (alerts, readings_unsynced) = self.leave();
        let mut day = self.day_result(&start, elapsed, generator);
        day.udp_drops = drops;
        day.readings_unsynced = readings_unsynced;
        Day {
            day,
            alerts,
            generator,
        }
    }

    /// The day's figures from the counters (drops and unsynced readings
    /// are the caller's).
    fn day_result(
        &self,
        start: &DayStart,
        elapsed: Duration,
        generator: Option<ProcSample>,
    ) -> DayResult {
        let (s, c) = (&self.stats, self.config);
        let secs = elapsed.as_secs_f64().max(1e-9);
        let bundles = s.bundles_acked.load(Ordering::Relaxed) - start.bundles_acked;
        let requests = s.requests.load(Ordering::Relaxed) - start.requests;
        DayResult {
            elapsed_s: elapsed.as_secs_f64(),
            syncs_ok: s.syncs_ok.load(Ordering::Relaxed),
            syncs_failed: s.syncs_failed.load(Ordering::Relaxed),
            bundles_acked: bundles,
            bundles_per_s: bundles as f64 / secs,
            offered_bundles_per_s: (c.day_seconds > 0.0)
                .then(|| (c.residents as f64) * f64::from(c.profile.syncs) / c.day_seconds),
            snapshots_acked: s.snapshots_acked.load(Ordering::Relaxed),
            requests,
            requests_per_s: requests as f64 / secs,
            readings: s.readings.load(Ordering::Relaxed),
            readings_unsynced: 0,
            reconnects: s.reconnects.load(Ordering::Relaxed),
            sync_latency: s.sync_latency.summary(),
            schedule_lag: s.lag.summary(),
            udp_drops: UdpDrops::default(),
            generator_cpu_s: cpu_s(start.generator, generator),
        }
    }

    /// Tallies the alerts and the readings never acknowledged, and closes
    /// every connection: the verification dials afresh.
    fn leave(&self) -> (AlertResult, u64) {
        let mut readings_unsynced = 0;
        let mut alerts = AlertResult {
            latency: self.stats.alert_latency.summary(),
            ..AlertResult::default()
        };
        for r in &self.residents {
            let mut r = lock(r);
            readings_unsynced += r.readings - r.readings_synced;
            if r.plan.fever_slot.is_some() {
                alerts.fever_residents += 1;
                alerts.start_delivered += u64::from(r.link.alerts_stored >= 1);
                alerts.end_delivered += u64::from(r.link.alerts_stored >= 2);
            }
            alerts.pending_at_end += r.vault.pending_alerts().map_or(0, |a| a.len() as u64);
            if let Some(c) = r.link.conn.take() {
                c.close();
            }
        }
        (alerts, readings_unsynced)
    }

    /// Phase 4: every vault pulled back over fresh connections and compared.
    fn pull_back(&self) -> Result<Tally, String> {
        let c = self.config;
        let verifier = ClientEndpoint::new(self.code.addr, c.network_threads.max(1))
            .map_err(|e| e.to_string())?;
        let by_pull = Mutex::new(Tally::default());
        for_each(c.concurrency, &self.residents, |r| {
            let mut t = Tally::default();
            match self.dial(&verifier) {
                Some(mut conn) => {
                    t.merge(verify::check_by_pull(r, &mut conn));
                    conn.close();
                }
                None => {
                    t.residents += 1;
                    t.unreadable += 1;
                    t.examples
                        .push(format!("resident {}: no connection to pull back", r.index));
                }
            }
            lock(&by_pull).merge(t);
        });
        Ok(by_pull.into_inner().unwrap_or_else(|p| p.into_inner()))
    }

    /// A fresh connection through `endpoint`, with backoff between attempts.
    fn dial(&self, endpoint: &ClientEndpoint) -> Option<DeviceConnection> {
        let mut backoff = Duration::from_millis(100);
        for _ in 0..self.config.connect_attempts.max(1) {
            match endpoint.connect(&self.code, self.config.connect_timeout) {
                Ok(c) => return Some(c),
                Err(_) => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        None
    }

    fn endpoint_description(&self) -> String {
        match &self.connector {
            Connector::Shared(e) => format!(
                "one shared client endpoint ({} runtime thread(s), receive buffer {})",
                self.config.network_threads,
                e.recv_buffer_size()
                    .map_or("unknown".into(), |b| format!("{} KiB", b / 1024))
            ),
            Connector::Private => "a private endpoint and runtime thread per resident".into(),
        }
    }

    fn setup(&self, node: &NodeHandle, fever_residents: u64, cpus: usize) -> Setup {
        let c = self.config;
        Setup {
            residents: c.residents,
            concurrency: c.concurrency,
            connect_concurrency: self.connect_concurrency(),
            day_seconds: c.day_seconds,
            profile: c.profile.clone(),
            readings_per_resident: c.profile.readings_per_day(),
            fever_residents,
            node: node.description.clone(),
            node_code: node.code.to_string(),
            node_notes: node.notes.clone(),
            endpoint: self.endpoint_description(),
            resident_storage: "vaults in memory (MemStorage + MemoryKeyStore), not sled".into(),
            seed: c.seed,
            cpus,
            setup_s: self.setup_s,
        }
    }

    /// Closes the shared endpoint (before the node stops); keeps what the
    /// store check and the report still need.
    fn disband(self) -> (Vec<Mutex<Resident>>, Stats) {
        drop(self.connector);
        (self.residents, self.stats)
    }
}

/// Phase 5, the durability verdict: the pull-back, then the node's store on disk
/// (when it is local) read the same way, and its alert inbox.
fn durability(
    by_pull: Tally,
    residents: &[Mutex<Resident>],
    stats: &Stats,
    store: Option<Result<MailboxStore, String>>,
) -> Durability {
    let mut d = Durability {
        by_pull,
        alerts_acked_stored: stats.alerts_stored.load(Ordering::Relaxed),
        ..Durability::default()
    };
    match store {
        Some(Ok(store)) => {
            let mut t = Tally::default();
            for r in residents {
                t.merge(verify::check_in_store(&lock(r), &store));
            }
            d.in_store = Some(t);
            match store.inbox() {
                Ok(inbox) => d.inbox_alerts = Some(inbox.len() as u64),
                Err(e) => d.store_error = Some(e.to_string()),
            }
        }
        Some(Err(e)) => d.store_error = Some(e),
        None => {}
    }
    d.passed = d.by_pull.passed()
        && d.in_store.as_ref().is_none_or(Tally::passed)
        && d.store_error.is_none()
        && d.inbox_alerts.is_none_or(|i| i >= d.alerts_acked_stored);
    d
}
