//! One simulated resident: a vault in memory, a connection that records
//! what the node acknowledged, and the script of a day.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use vigil_crypto::NodeId;
use vigil_device::{MemStorage, MemoryKeyStore, Period, SyncFailure, Vault};
use vigil_log::{Day, FeverRule, Metric, Severity, Symptom, Unit};
use vigil_net::{ClientEndpoint, DeviceConnection, EnrolmentCode, NetError};
use vigil_proto::{Exchange, ExchangeError, Request, Response, decode_request, decode_response};

use super::measure::{
    Counts, Samples, connect_kind, failure_kind, needs_reconnect, proto_kind, transport_kind,
};

pub(crate) const MIN: i64 = 60_000;
pub(crate) const DAY: i64 = 86_400_000;

/// What a resident does in a day.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DayProfile {
    /// Syncs in the day, evenly spaced (one per hour by default).
    pub syncs: u32,
    /// Minutes between body-temperature readings (a wristband).
    pub temperature_every_min: u32,
    /// Minutes between heart-rate readings.
    pub heart_rate_every_min: u32,
    /// Minutes between SpO2 readings.
    pub spo2_every_min: u32,
    /// Share of residents who run a fever during the day, percent.
    pub fever_percent: f64,
}

impl Default for DayProfile {
    fn default() -> Self {
        DayProfile {
            syncs: 24,
            temperature_every_min: 5,
            heart_rate_every_min: 15,
            spo2_every_min: 60,
            fever_percent: 5.0,
        }
    }
}

impl DayProfile {
    /// Readings one resident records in the day.
    pub fn readings_per_day(&self) -> u64 {
        let per = |every: u32| {
            if every == 0 {
                0
            } else {
                1440 / u64::from(every)
            }
        };
        per(self.temperature_every_min) + per(self.heart_rate_every_min) + per(self.spo2_every_min)
    }

    fn slot_minutes(&self) -> i64 {
        1440 / i64::from(self.syncs.max(1))
    }
}

/// How staff name resident `i`.
pub(crate) fn resident_label(i: usize) -> String {
    format!("resident {i:05}, flat {}B", i % 40 + 1)
}

/// How residents open connections.
#[derive(Debug, Clone)]
pub(crate) enum Connector {
    /// All through one shared client endpoint.
    Shared(ClientEndpoint),
    /// Each with its own endpoint and runtime thread (`DeviceConnection::connect`).
    Private,
}

impl Connector {
    pub(crate) fn connect(
        &self,
        code: &EnrolmentCode,
        timeout: Duration,
    ) -> Result<DeviceConnection, NetError> {
        match self {
            Connector::Shared(e) => e.connect(code, timeout),
            Connector::Private => DeviceConnection::connect(code, timeout),
        }
    }
}

/// Run-wide counters and samples, shared by every worker thread.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Refusals and errors by kind.
    pub(crate) errors: Counts,
    pub(crate) connect_latency: Samples,
    pub(crate) enrol_latency: Samples,
    pub(crate) sync_latency: Samples,
    pub(crate) alert_latency: Samples,
    pub(crate) lag: Samples,
    pub(crate) requests: AtomicU64,
    pub(crate) bundles_acked: AtomicU64,
    pub(crate) snapshots_acked: AtomicU64,
    pub(crate) syncs_ok: AtomicU64,
    pub(crate) syncs_failed: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) readings: AtomicU64,
    pub(crate) alerts_acked: AtomicU64,
    pub(crate) alerts_stored: AtomicU64,
}

/// The resident's connection, wrapped to record what the node acknowledged:
/// the SHA-256 of every own bundle at the (seq) the node acked, and every
/// refusal by kind.
pub(crate) struct Link {
    pub(crate) conn: Option<DeviceConnection>,
    device: [u8; 16],
    /// seq → SHA-256 of the blob the node acknowledged at that seq.
    pub(crate) acked: BTreeMap<u64, [u8; 32]>,
    /// Alerts the node acknowledged as newly stored.
    pub(crate) alerts_stored: u64,
}

impl Link {
    fn record(&mut self, stats: &Stats, push: Option<(u64, [u8; 32])>, response: &[u8]) {
        match decode_response(response) {
            Ok(Response::Ack { device, seq }) if device == self.device => {
                if let Some((s, hash)) = push
                    && s == seq
                    && self.acked.insert(seq, hash).is_none()
                {
                    stats.bundles_acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Response::Ack { .. }) => {
                stats.snapshots_acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Response::AlertAck { stored }) => {
                stats.alerts_acked.fetch_add(1, Ordering::Relaxed);
                if stored {
                    self.alerts_stored += 1;
                    stats.alerts_stored.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Response::Error(e)) => stats.errors.add(proto_kind(&e), 1),
            _ => {}
        }
    }
}

/// A [`Link`] with the run's stats, for one operation.
pub(crate) struct Recording<'a> {
    link: &'a mut Link,
    stats: &'a Stats,
    /// The node the link connects to (from the run's enrolment code).
    node: NodeId,
}

impl Exchange for Recording<'_> {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        let Some(conn) = self.link.conn.as_mut() else {
            return Err(ExchangeError::NotConnected);
        };
        let push = match decode_request(request) {
            Ok(Request::Push(b)) => Some((b.seq, Sha256::digest(&b.blob).into())),
            _ => None,
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        match conn.exchange(request) {
            Ok(response) => {
                self.link.record(self.stats, push, &response);
                Ok(response)
            }
            Err(e) => {
                self.stats.errors.add(transport_kind(&e), 1);
                Err(e)
            }
        }
    }

    fn node(&self) -> NodeId {
        self.node
    }
}

/// What stays fixed for a resident through the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Where in each slot this resident syncs, 0..1 of a slot.
    pub(crate) phase: f64,
    /// The slot in which a fever starts, for the ~5% who run one.
    pub(crate) fever_slot: Option<u32>,
}

/// Everything the run shares with a resident's step.
pub(crate) struct Ctx<'a> {
    pub(crate) code: &'a EnrolmentCode,
    pub(crate) connector: &'a Connector,
    pub(crate) connect_timeout: Duration,
    pub(crate) stats: &'a Stats,
    pub(crate) profile: &'a DayProfile,
    /// Start of the simulated day (ms since the epoch, in the past).
    pub(crate) day_start_ms: i64,
}

/// One simulated resident.
pub(crate) struct Resident {
    pub(crate) index: usize,
    pub(crate) vault: Vault,
    pub(crate) keys: MemoryKeyStore,
    pub(crate) link: Link,
    pub(crate) plan: Plan,
    rng: ChaCha20Rng,
    pub(crate) next_slot: u32,
    pub(crate) enrolled: bool,
    /// The ticket staff issued for this resident.
    pub(crate) ticket: Option<vigil_proto::Ticket>,
    pub(crate) readings: u64,
    pub(crate) readings_synced: u64,
}

impl std::fmt::Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resident")
            .field("index", &self.index)
            .field("vault", &self.vault)
            .finish_non_exhaustive()
    }
}

fn jitter(rng: &mut ChaCha20Rng, base: Duration) -> Duration {
    base + base.mul_f64(f64::from(rng.next_u32() % 1000) / 1000.0)
}

impl Resident {
    /// A resident with a fresh vault in memory (keys from system randomness,
    /// so vaults never collide with an earlier run's on a reused node), its
    /// script drawn from `seed`.
    pub(crate) fn new(
        index: usize,
        period: Period,
        seed: u64,
        profile: &DayProfile,
    ) -> Result<Resident, String> {
        let keys = MemoryKeyStore::new();
        let mut key_seed = [0u8; 32];
        getrandom::fill(&mut key_seed).map_err(|e| e.to_string())?;
        let vault = Vault::create_with(
            Box::new(MemStorage::new()),
            period,
            Box::new(keys.clone()),
            &mut ChaCha20Rng::from_seed(key_seed),
        )
        .map_err(|e| e.to_string())?;
        let mut rng =
            ChaCha20Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let phase = f64::from(rng.next_u32()) / (f64::from(u32::MAX) + 1.0);
        let fever = f64::from(rng.next_u32() % 100_000) < profile.fever_percent * 1000.0;
        // A fever needs the slot, the next one, and two more for its end.
        let fever_slot =
            (fever && profile.syncs >= 6).then(|| 1 + rng.next_u32() % (profile.syncs - 4));
        let device = vault.device_id().0;
        Ok(Resident {
            index,
            vault,
            keys,
            link: Link {
                conn: None,
                device,
                acked: BTreeMap::new(),
                alerts_stored: 0,
            },
            plan: Plan { phase, fever_slot },
            rng,
            next_slot: 0,
            enrolled: false,
            ticket: None,
            readings: 0,
            readings_synced: 0,
        })
    }

    fn recording<'a>(
        &'a mut self,
        stats: &'a Stats,
        node: NodeId,
    ) -> (&'a mut Vault, Recording<'a>) {
        (
            &mut self.vault,
            Recording {
                link: &mut self.link,
                stats,
                node,
            },
        )
    }

    /// Connects, retrying up to `attempts` times with exponential backoff
    /// (100 ms doubling to 5 s, jittered) as a device would. Each failed
    /// attempt is counted by kind; `false` if every attempt failed.
    pub(crate) fn connect(&mut self, ctx: &Ctx<'_>, attempts: u32, measure: bool) -> bool {
        let mut backoff = Duration::from_millis(100);
        for attempt in 0..attempts {
            let started = Instant::now();
            match ctx.connector.connect(ctx.code, ctx.connect_timeout) {
                Ok(c) => {
                    if measure {
                        ctx.stats.connect_latency.push(started.elapsed());
                    } else {
                        ctx.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    self.link.conn = Some(c);
                    return true;
                }
                Err(e) => {
                    ctx.stats.errors.add(connect_kind(&e), 1);
                    if attempt + 1 < attempts {
                        std::thread::sleep(jitter(&mut self.rng, backoff));
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        ctx.stats.errors.add("gave up: connect", 1);
        false
    }

    /// Runs `op` over the connection; on a transport failure reconnects and
    /// tries once more. Failures are counted as `failed: <what>`.
    fn with_retry<T>(
        &mut self,
        ctx: &Ctx<'_>,
        what: &str,
        mut op: impl FnMut(&mut Vault, &mut Recording<'_>) -> Result<T, SyncFailure>,
    ) -> Option<T> {
        for attempt in 0..2 {
            if self.link.conn.is_none() && !self.connect(ctx, 3, false) {
                break;
            }
            let (vault, mut rec) = self.recording(ctx.stats, ctx.code.node_id());
            match op(vault, &mut rec) {
                Ok(v) => return Some(v),
                Err(e) => {
                    let kind = failure_kind(&e);
                    if kind.starts_with("device") {
                        ctx.stats.errors.add(kind, 1);
                    }
                    if needs_reconnect(&e) && attempt == 0 {
                        // A real device drops a broken connection and dials again.
                        self.link.conn = None;
                        let pause = jitter(&mut self.rng, Duration::from_millis(100));
                        std::thread::sleep(pause);
                        continue;
                    }
                    if needs_reconnect(&e) {
                        self.link.conn = None;
                    }
                    break;
                }
            }
        }
        ctx.stats.errors.add(format!("failed: {what}"), 1);
        None
    }

    /// Enrols with the resident's ticket: the mailbox, and the node's
    /// fever-alert capability.
    pub(crate) fn enrol(&mut self, ctx: &Ctx<'_>) -> bool {
        let node = ctx.code.node_public;
        let now = ctx.day_start_ms;
        let Some(ticket) = self.ticket.take() else {
            ctx.stats.errors.add("failed: enrol (no ticket)", 1);
            return false;
        };
        let started = Instant::now();
        let ok = self
            .with_retry(ctx, "enrol", |vault, rec| {
                vault.enrol(rec, &node, &ticket, FeverRule::default(), now)
            })
            .is_some();
        self.ticket = Some(ticket);
        if ok {
            ctx.stats.enrol_latency.push(started.elapsed());
            self.enrolled = true;
        }
        ok
    }

    fn record(&mut self, ctx: &Ctx<'_>, metric: Metric, value: f64, unit: Unit, t: i64) {
        match self.vault.record(metric, value, unit, t) {
            Ok(_) => {
                self.readings += 1;
                ctx.stats.readings.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => ctx.stats.errors.add("device: record", 1),
        }
    }

    /// Sends pending alerts; `Some(delivered)` unless the send failed.
    fn send_alerts(&mut self, ctx: &Ctx<'_>, now: i64) -> Option<usize> {
        let node = ctx.code.node_public;
        let r = self.with_retry(ctx, "alerts", |vault, rec| {
            vault.send_alerts(rec, &node, now)
        })?;
        Some(r.delivered)
    }

    /// One slot of the day: the readings of its minutes, the check-in in the
    /// evening slot, a fever where planned (with the alert latency
    /// measured), then a sync and any pending alerts. Returns whether more
    /// slots remain.
    pub(crate) fn step(&mut self, ctx: &Ctx<'_>) -> bool {
        let p = ctx.profile;
        let slot = self.next_slot;
        self.next_slot += 1;
        if !self.enrolled {
            // A device that could not enrol earlier tries again.
            self.enrol(ctx);
        }
        let len = p.slot_minutes();
        let first = i64::from(slot) * len;
        let fever_here = self.plan.fever_slot == Some(slot);
        let mut fever_readings = 0;
        for m in first..first + len {
            let t = ctx.day_start_ms + m * MIN;
            let due = |every: u32| every > 0 && m % i64::from(every) == 0;
            if due(p.temperature_every_min) {
                let normal = 36.4 + f64::from(self.rng.next_u32() % 50) / 100.0;
                if fever_here {
                    fever_readings += 1;
                    let value = 38.0 + f64::from(fever_readings.min(6)) / 10.0;
                    if fever_readings == 2 && self.enrolled {
                        // The reading that confirms the episode: latency to
                        // the node's durable inbox write (its AlertAck).
                        let started = Instant::now();
                        self.record(ctx, Metric::BodyTemperature, value, Unit::Celsius, t);
                        if let Some(n) = self.send_alerts(ctx, t)
                            && n > 0
                        {
                            ctx.stats.alert_latency.push(started.elapsed());
                        }
                    } else {
                        self.record(ctx, Metric::BodyTemperature, value, Unit::Celsius, t);
                    }
                } else {
                    self.record(ctx, Metric::BodyTemperature, normal, Unit::Celsius, t);
                }
            }
            if due(p.heart_rate_every_min) {
                let hr = 58.0 + f64::from(self.rng.next_u32() % 40);
                self.record(ctx, Metric::HeartRate, hr, Unit::BeatsPerMinute, t);
            }
            if due(p.spo2_every_min) {
                let spo2 = 95.0 + f64::from(self.rng.next_u32() % 5);
                self.record(ctx, Metric::SpO2, spo2, Unit::Percent, t);
            }
        }
        let evening = (u64::from(p.syncs) * 20 / 24) as u32;
        if slot == evening {
            let t = ctx.day_start_ms + first * MIN;
            for (s, sev) in [
                (Symptom::Cough, Severity::None),
                (Symptom::Fatigue, Severity::Mild),
                (Symptom::Headache, Severity::None),
            ] {
                if self.vault.check_in(Day::of(t), s, sev).is_err() {
                    ctx.stats.errors.add("device: check-in", 1);
                }
            }
        }
        let started = Instant::now();
        let synced = self
            .with_retry(ctx, "sync", |vault, rec| vault.sync(rec))
            .is_some();
        if synced {
            ctx.stats.sync_latency.push(started.elapsed());
            ctx.stats.syncs_ok.fetch_add(1, Ordering::Relaxed);
            self.readings_synced = self.readings;
        } else {
            ctx.stats.syncs_failed.fetch_add(1, Ordering::Relaxed);
        }
        let now = ctx.day_start_ms + (first + len) * MIN;
        if self.enrolled
            && self
                .vault
                .pending_alerts()
                .map(|a| !a.is_empty())
                .unwrap_or(false)
        {
            self.send_alerts(ctx, now);
        }
        self.next_slot < p.syncs
    }
}
