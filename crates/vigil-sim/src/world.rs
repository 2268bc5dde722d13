//! The simulated world: devices, a node, a clock, faults, and invariants.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use vigil_crypto::{NodeId, SigningIdentity, X25519Identity};
use vigil_device::{KeyStore, MemoryKeyStore, OpenError, Period, Vault};
use vigil_log::{Day, FeverRule, Metric, ReadingId, Severity, Symptom};
use vigil_node::{MailboxStore, Node, NodeConfig, Relay, RelaySession};

use crate::canary::Canaries;
use crate::config::{Bug, Invariant, Scenario, SimConfig, SimReport};
use crate::net::{Faults, SimLink};
use crate::storage::SharedStorage;

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;
/// The period starts here in every run (virtual time).
const START: i64 = 1_790_035_200_000;

/// One resident device.
#[derive(Debug)]
struct Device {
    vault: Option<Vault>,
    storage: SharedStorage,
    keys: MemoryKeyStore,
    session: RelaySession,
    online: bool,
    skew_ms: i64,
    /// Every reading it acknowledged, with what it recorded, in order: a
    /// lost reading whose id was given again to another still counts as lost.
    acked: Vec<(ReadingId, (i64, Metric, f64))>,
    shredded: bool,
    /// Requests the network held back, delivered late (out of order).
    held: Vec<Vec<u8>>,
}

/// Everything in one simulated run, exposed read-only to invariants.
#[derive(Debug)]
pub struct World {
    devices: Vec<Device>,
    relay: Relay,
    /// The node's identity, as its enrolment code would give it.
    node_id: NodeId,
    tap: Arc<Mutex<Vec<Vec<u8>>>>,
    now_ms: i64,
    rng: ChaCha20Rng,
    log: Vec<String>,
    canaries: Canaries,
    node: NodeParts,
    faults: Faults,
    seed: u64,
    step: usize,
}

/// What survives a node restart: its store, its grant-key files, its keys.
#[derive(Debug)]
struct NodeParts {
    store: MailboxStore,
    dir: tempfile::TempDir,
    seed: [u8; 32],
    bug: Bug,
}

impl NodeParts {
    /// A node process: a fresh `Relay` (empty caches) over the kept state.
    fn start(&self) -> Relay {
        let config = NodeConfig {
            grant_key_seed: Some(self.seed),
            ..NodeConfig::default()
        };
        let grant_keys = self.dir.path().join(vigil_node::GRANT_KEYS_DIR);
        // The receipt key goes to the relay directly: `Node::with_receipts`
        // takes a reference and derives the key pair again from its bytes.
        let relay = Node::with_store(self.store.clone(), &grant_keys, &config)
            .expect("grant keys")
            .relay()
            .clone()
            .with_receipts(SigningIdentity::from_bytes([7; 32]));
        if self.bug == Bug::AlertDedupForgetsOnRestart {
            relay.with_forgetful_alert_dedup()
        } else {
            relay
        }
    }
}

/// A device's vault with the run's injected bug, if it is a device bug.
fn with_bug(mut v: Vault, bug: Bug, restarted: bool) -> Vault {
    match bug {
        Bug::SkipQueuedChanges => v.inject_fault(vigil_device::DeviceFault::SkipQueuedChanges),
        Bug::OwnSeqStuckAfterRestart if restarted => {
            v.inject_fault(vigil_device::DeviceFault::OwnSeqStuckAfterRestart)
        }
        Bug::FoldRemovesJournalFirst => {
            v.inject_fault(vigil_device::DeviceFault::FoldRemovesJournalFirst)
        }
        _ => {}
    }
    v
}

impl World {
    /// How many devices there are.
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// A device's vault, if it is running and not shredded.
    pub fn vault(&self, i: usize) -> Option<&Vault> {
        self.devices.get(i)?.vault.as_ref()
    }

    /// The node's relay (inbox, store) as it stands.
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// The virtual time, ms.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// When the monitoring period starts (virtual time, ms); it lasts 7 days.
    pub fn period_start_ms(&self) -> i64 {
        START
    }

    fn event(&mut self, e: String) {
        self.log.push(e);
    }
}

fn fresh_rng(rng: &mut ChaCha20Rng) -> ChaCha20Rng {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    ChaCha20Rng::from_seed(seed)
}

fn setup(config: &SimConfig) -> World {
    let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
    // The node's grant-key files (files by design, written with fsync)
    // go to memory where the system has it: on a disk, the run's four
    // fsyncs took longer than all its computing (the store is in memory
    // for the same reason, below).
    let dir = tempfile::Builder::new()
        .prefix("vigil-sim")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a temporary directory");
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    // The node's store lives in memory (clones share it): a node restart
    // keeps it, and the run pays no disk flushes.
    let node = NodeParts {
        store: MailboxStore::in_memory(),
        dir,
        seed,
        bug: config.bug,
    };
    let relay = node.start();
    // The node's identity: an X25519 key and the hash of the certificate a
    // device would pin (the simulation has no TLS; any fixed hash stands in).
    let node_public =
        X25519Identity::from_bytes(core::array::from_fn(|i| i as u8 ^ 0x5a)).public_key();
    let node_id = NodeId::new(
        node_public,
        Sha256::digest(b"vigil-sim node certificate").into(),
    );
    let tap = Arc::new(Mutex::new(Vec::new()));
    let mut w = World {
        devices: Vec::new(),
        relay,
        node_id,
        tap,
        now_ms: START,
        rng,
        log: Vec::new(),
        canaries: Canaries::default(),
        node,
        faults: faults_for(config.scenario),
        seed: config.seed,
        step: 0,
    };
    // The first device creates the vault and enrols with the node; the
    // others pair through the node.
    let period = Period::days(START, 7);
    let storage = SharedStorage::default();
    let keys = MemoryKeyStore::new();
    let mut vrng = fresh_rng(&mut w.rng);
    let mut first = Vault::create_with(
        Box::new(storage.clone()),
        period,
        Box::new(keys.clone()),
        &mut vrng,
    )
    .expect("create");
    // Staff register the resident: the ticket the first device enrols
    // with (its own RNG, so the run's stream is the same as before tickets).
    let ticket = w
        .relay
        .issue_ticket(
            "sim resident",
            period.end_ms,
            START,
            &mut ChaCha20Rng::seed_from_u64(config.seed ^ 0x7469_636b_6574),
        )
        .expect("ticket");
    let mut session = w.relay.session();
    {
        // The enrolment's link rolls its own RNG, and the run's stream then
        // advances as the three-request enrolment before tickets did (three
        // rolls per request on a fault-free link), so every seed still
        // replays the run it named before.
        let mut enrol_rng = ChaCha20Rng::seed_from_u64(config.seed ^ 0x0065_6e72_6f6c);
        let mut link = SimLink::new(
            &mut session,
            node_id,
            START,
            Faults::NONE,
            &mut enrol_rng,
            w.tap.clone(),
        );
        for _ in 0..9 {
            w.rng.next_u32();
        }
        first
            .enrol(
                &mut link,
                node_id.x25519(),
                &ticket.ticket,
                FeverRule::default(),
                START,
            )
            .expect("enrol");
    }
    w.devices.push(Device {
        vault: Some(with_bug(first, config.bug, false)),
        storage,
        keys,
        session,
        online: true,
        skew_ms: 0,
        acked: Vec::new(),
        shredded: false,
        held: Vec::new(),
    });
    for _ in 1..config.devices.clamp(2, 6) {
        let skew_ms = (w.rng.next_u64() % (4 * MIN as u64)) as i64 - 2 * MIN;
        let i = pair(&mut w, Faults::NONE, skew_ms).expect("pairing at setup");
        w.event(format!("paired device {i} skew {skew_ms}"));
    }
    w
}

/// Pairs a new device through device 0 and the node, over links with
/// `faults`; returns its index.
fn pair(w: &mut World, faults: Faults, skew_ms: i64) -> Result<usize, String> {
    let now = w.now_ms;
    let id = X25519Identity::generate(&mut w.rng);
    {
        let d0 = &mut w.devices[0];
        let vault = d0.vault.as_mut().ok_or("device 0 is down")?;
        let mut link = SimLink::new(
            &mut d0.session,
            w.node_id,
            now,
            faults,
            &mut w.rng,
            w.tap.clone(),
        );
        vault
            .offer_pairing(&mut link, &id.public_key(), now)
            .map_err(|e| format!("offer: {e}"))?;
    }
    let storage = SharedStorage::default();
    let keys = MemoryKeyStore::new();
    let mut session = w.relay.session();
    let mut jrng = fresh_rng(&mut w.rng);
    let vault = {
        let mut link = SimLink::new(
            &mut session,
            w.node_id,
            now,
            faults,
            &mut w.rng,
            w.tap.clone(),
        );
        // The simulated resident compares the codes and confirms.
        Vault::fetch_join(&mut link, &id)
            .map_err(|e| format!("join: {e}"))?
            .confirm(
                Box::new(storage.clone()),
                Box::new(keys.clone()),
                &mut link,
                &mut jrng,
            )
            .map_err(|e| format!("join: {e}"))?
    };
    let vault = with_bug(vault, w.node.bug, false);
    w.devices.push(Device {
        vault: Some(vault),
        storage,
        keys,
        session,
        online: true,
        skew_ms,
        acked: Vec::new(),
        shredded: false,
        held: Vec::new(),
    });
    Ok(w.devices.len() - 1)
}

fn faults_for(s: Scenario) -> Faults {
    match s {
        Scenario::Week => Faults {
            drop_request: 30,
            lose_reply: 30,
            duplicate: 20,
            hold: 20,
        },
        Scenario::Conflicts => Faults {
            drop_request: 50,
            lose_reply: 50,
            duplicate: 50,
            hold: 40,
        },
        Scenario::FeverWhileOffline | Scenario::ShredWhilePartitioned => Faults {
            drop_request: 20,
            lose_reply: 20,
            duplicate: 10,
            hold: 10,
        },
    }
}

/// One random step.
fn step(w: &mut World, config: &SimConfig, n: usize) {
    w.step = n;
    // Spread the steps over six and a half days; the heal comes before the end.
    let span = (13 * DAY / config.steps.max(1) as i64).max(2);
    w.now_ms = (w.now_ms + 1 + (w.rng.next_u64() % span as u64) as i64)
        .min(START + 7 * DAY - 3 * 60 * MIN);
    if let Some(workload) = config.workload
        && workload(w, n)
    {
        return;
    }
    let count = w.devices.len();
    let mut d = (w.rng.next_u64() % count as u64) as usize;
    let op = w.rng.next_u32() % 100;
    // The fever: scenario-dependent, on a chosen device, on day 3.
    let fever_device = match config.scenario {
        Scenario::FeverWhileOffline => count - 1,
        _ => 0,
    };
    let in_fever =
        (START + 2 * DAY + 8 * 60 * MIN..START + 2 * DAY + 16 * 60 * MIN).contains(&w.now_ms);
    if in_fever && op < 25 {
        d = fever_device;
    }
    if w.devices[d].shredded {
        return;
    }
    if w.devices[d].vault.is_none() {
        w.restart_device(d);
        return;
    }
    match op {
        0..=39 => {
            let temp = if in_fever && d == fever_device {
                38.3
            } else {
                36.4 + (w.rng.next_u32() % 8) as f64 * 0.1
            };
            let (metric, value) = if op < 25 {
                (Metric::BodyTemperature, temp)
            } else {
                (Metric::HeartRate, 55.0 + (w.rng.next_u32() % 60) as f64)
            };
            let _ = w.record(d, metric, value, 0);
            // A fever is measured twice, 5 minutes apart (the debounce).
            if metric == Metric::BodyTemperature && value >= 37.3 {
                let _ = w.record(d, metric, value, 5 * MIN);
            }
        }
        40..=47 => {
            let Some(vault) = w.devices[d].vault.as_ref() else {
                return;
            };
            let readings = vault.log().readings(None, i64::MIN, i64::MAX, true);
            if !readings.is_empty() {
                let r = readings[(w.rng.next_u64() % readings.len() as u64) as usize].id;
                let _ = if op < 45 {
                    w.annotate(d, r)
                } else {
                    w.retract(d, r)
                };
            }
        }
        48..=57 => {
            let day = Day::of(START + (w.rng.next_u64() % 3) as i64 * DAY);
            let symptom = Symptom::ALL[(w.rng.next_u32() % 3) as usize];
            let sev = [
                Severity::None,
                Severity::Mild,
                Severity::Moderate,
                Severity::Severe,
            ][(w.rng.next_u32() % 4) as usize];
            let _ = w.check_in(d, day, symptom, sev);
        }
        58..=84 => {
            let _ = w.sync(d);
        }
        85..=90 => {
            let on = !w.devices[d].online;
            w.set_online(d, on);
        }
        // Half the crashes land inside a fold (before its batch); the others
        // kill a device whose journal holds the readings since its last sync.
        91..=94 if n.is_multiple_of(2) => w.crash_mid_fold(d),
        91..=94 => w.crash(d),
        97..=98 if w.devices.len() < 6 && w.devices[0].online && !w.devices[0].shredded => {
            // A new device pairs while others may be partitioned.
            let faults = w.faults;
            match pair(w, faults, 0) {
                Ok(i) => w.event(format!("step {n}: device {i} paired")),
                // A join that failed half-way leaves a store the device
                // would retry from; the simulation simply drops it.
                Err(e) => w.event(format!("step {n}: pairing failed: {e}")),
            }
        }
        95..=96 => w.restart_node(),
        _ => {}
    }
    if config.scenario == Scenario::FeverWhileOffline && in_fever {
        w.devices[fever_device].online = false;
    }
}

/// Operations a workload performs, each as one step's event (used by the
/// built-in scenarios and by [`Workload`]s). A device that is down, shredded
/// or (for `sync`) offline refuses with an error; nothing panics.
impl World {
    fn running(&mut self, d: usize) -> Result<&mut Vault, String> {
        let dev = self
            .devices
            .get_mut(d)
            .ok_or_else(|| format!("no device {d}"))?;
        dev.vault
            .as_mut()
            .ok_or_else(|| format!("device {d} is down or shredded"))
    }

    /// A device's local clock: the virtual time plus its skew.
    pub fn local_now(&self, d: usize) -> i64 {
        self.now_ms + self.devices.get(d).map_or(0, |dev| dev.skew_ms)
    }

    /// A number from the run's random stream (so workloads stay
    /// deterministic).
    pub fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Device `d` records a reading `offset_ms` after its local now; a
    /// reading it acknowledges must survive the run.
    pub fn record(
        &mut self,
        d: usize,
        metric: Metric,
        value: f64,
        offset_ms: i64,
    ) -> Result<ReadingId, String> {
        let n = self.step;
        let t = (self.local_now(d) + offset_ms).clamp(START, START + 7 * DAY - 1);
        let res = self
            .running(d)?
            .record(metric, value, metric.unit(), t)
            .map_err(|e| e.to_string());
        match &res {
            Ok(id) => {
                self.devices[d].acked.push((*id, (t, metric, value)));
                self.event(format!("step {n}: device {d} recorded {id}"));
            }
            Err(e) => self.event(format!("step {n}: device {d} record failed: {e}")),
        }
        res
    }

    /// Device `d` annotates a reading with a fresh canary (a string the
    /// node must never see in plaintext).
    pub fn annotate(&mut self, d: usize, reading: ReadingId) -> Result<(), String> {
        let canary = format!("CANARY-{}-{}", self.seed, self.canaries.len());
        let res = self.running(d)?.annotate(reading, &canary);
        self.canaries.push(canary);
        let n = self.step;
        self.event(format!("step {n}: device {d} annotated {reading}: {res:?}"));
        res.map_err(|e| e.to_string())
    }

    /// Device `d` retracts a reading, giving a fresh canary as the reason.
    pub fn retract(&mut self, d: usize, reading: ReadingId) -> Result<(), String> {
        let canary = format!("CANARY-{}-{}", self.seed, self.canaries.len());
        let now = self.local_now(d);
        let res = self.running(d)?.retract(reading, &canary, now);
        self.canaries.push(canary);
        let n = self.step;
        self.event(format!("step {n}: device {d} retracted {reading}: {res:?}"));
        res.map_err(|e| e.to_string())
    }

    /// Device `d` checks in a symptom for a day.
    pub fn check_in(
        &mut self,
        d: usize,
        day: Day,
        symptom: Symptom,
        severity: Severity,
    ) -> Result<(), String> {
        let res = self.running(d)?.check_in(day, symptom, severity);
        let n = self.step;
        self.event(format!(
            "step {n}: device {d} check-in {day} {symptom} {severity}: {}",
            res.is_ok()
        ));
        res.map_err(|e| e.to_string())
    }

    /// Device `d` syncs with the node and sends its pending alerts, over a
    /// link with the scenario's faults (or the injected bug's).
    pub fn sync(&mut self, d: usize) -> Result<(), String> {
        if !self.devices.get(d).is_some_and(|dev| dev.online) {
            return Err(format!("device {d} is offline"));
        }
        let n = self.step;
        let now = self.now_ms;
        let local_now = self.local_now(d);
        let node_id = self.node_id;
        let drop_acked = self.node.bug == Bug::RelayDropsAckedBundles;
        let dev = &mut self.devices[d];
        let Some(vault) = dev.vault.as_mut() else {
            return Err(format!("device {d} is down or shredded"));
        };
        let mut link = SimLink {
            session: &mut dev.session,
            node: node_id,
            now_ms: now,
            faults: self.faults,
            rng: &mut self.rng,
            tap: self.tap.clone(),
            drop_acked,
            held: Some(&mut dev.held),
        };
        let r = vault.sync(&mut link).map(|r| (r.pushed, r.received));
        let a = vault
            .send_alerts(&mut link, node_id.x25519(), local_now)
            .map(|r| r.delivered);
        let ok = r.is_ok() && a.is_ok();
        self.event(format!("step {n}: device {d} sync {r:?} alerts {a:?}"));
        if ok {
            Ok(())
        } else {
            Err("sync failed".into())
        }
    }

    /// Cuts device `d` off the network (`false`) or reconnects it.
    pub fn set_online(&mut self, d: usize, online: bool) {
        if let Some(dev) = self.devices.get_mut(d) {
            dev.online = online;
            let n = self.step;
            self.event(format!("step {n}: device {d} online={online}"));
        }
    }

    /// Device `d` crashes: its vault is dropped without a goodbye; what its
    /// storage acknowledged stays.
    pub fn crash(&mut self, d: usize) {
        let Some(dev) = self.devices.get_mut(d) else {
            return;
        };
        let journal = dev.vault.as_ref().map_or(0, |v| v.pending_readings());
        dev.vault = None;
        if self.node.bug == Bug::VectorAheadOfReceivedAfterRestart {
            // Received bundles (`r/`) and the relay snapshot (`R/`).
            dev.storage
                .lose_keys(|k| k.starts_with(b"r/") || k.starts_with(b"R/"));
        }
        let n = self.step;
        self.event(format!(
            "step {n}: device {d} crashed ({journal} readings in its journal)"
        ));
    }

    /// Device `d` crashes inside a fold of its journal: the readings are
    /// committed in memory, and the process dies before the batch that
    /// stores their chunk and removes their journal entries. Every reading
    /// it acknowledged must survive all the same.
    pub fn crash_mid_fold(&mut self, d: usize) {
        if let Some(v) = self.devices.get_mut(d).and_then(|dev| dev.vault.as_mut()) {
            v.inject_fault(vigil_device::DeviceFault::CrashBeforeFoldBatch);
            let folded = v.fold();
            let n = self.step;
            self.event(format!("step {n}: device {d} fold cut short: {folded:?}"));
        }
        self.crash(d);
    }

    /// A crashed device `d` starts again from its storage.
    pub fn restart_device(&mut self, d: usize) {
        let n = self.step;
        let bug = self.node.bug;
        let Some(dev) = self.devices.get_mut(d) else {
            return;
        };
        if dev.vault.is_some() || dev.shredded {
            return;
        }
        let mut r = fresh_rng(&mut self.rng);
        match Vault::open_with(Box::new(dev.storage.clone()), &dev.keys, &mut r) {
            Ok(v) => {
                dev.vault = Some(with_bug(v, bug, true));
                self.event(format!("step {n}: device {d} restarted"));
            }
            Err(e) => self.event(format!("step {n}: device {d} failed to reopen: {e}")),
        }
    }

    /// The node crashes and restarts: sessions and in-memory state are
    /// lost, its store stays.
    pub fn restart_node(&mut self) {
        self.relay = self.node.start();
        for dev in &mut self.devices {
            dev.session = self.relay.session();
        }
        if self.node.bug == Bug::NodeForgetsInboxOnRestart {
            for e in self.relay.inbox().unwrap_or_default() {
                let _ = self
                    .relay
                    .store()
                    .forget_alert(&e.grant_id, &e.episode, e.kind);
            }
        }
        let n = self.step;
        self.event(format!("step {n}: node restarted"));
    }
}

fn heal(w: &mut World) -> Vec<String> {
    let mut failures = Vec::new();
    for d in 0..w.devices.len() {
        w.devices[d].online = true;
        if w.devices[d].vault.is_none() && !w.devices[d].shredded {
            let dev = &mut w.devices[d];
            let mut r = fresh_rng(&mut w.rng);
            match Vault::open_with(Box::new(dev.storage.clone()), &dev.keys, &mut r) {
                Ok(v) => dev.vault = Some(with_bug(v, w.node.bug, true)),
                Err(e) => failures.push(format!("device {d} does not reopen after the heal: {e}")),
            }
        }
    }
    let node_id = w.node_id;
    for round in 0..3 {
        for d in 0..w.devices.len() {
            let now = w.now_ms;
            let tap = w.tap.clone();
            let dev = &mut w.devices[d];
            let Some(vault) = dev.vault.as_mut() else {
                continue;
            };
            let mut link = SimLink::new(
                &mut dev.session,
                node_id,
                now,
                Faults::NONE,
                &mut w.rng,
                tap,
            );
            if let Err(e) = vault.sync(&mut link) {
                failures.push(format!("heal round {round}: device {d} sync failed: {e}"));
            }
            if let Err(e) = vault.send_alerts(&mut link, node_id.x25519(), now) {
                failures.push(format!("heal round {round}: device {d} alerts failed: {e}"));
            }
        }
    }
    failures
}

fn check(w: &mut World) -> Vec<String> {
    let mut failures = Vec::new();
    let views: Vec<_> = w
        .devices
        .iter()
        .filter_map(|d| d.vault.as_ref().map(|v| v.log().view()))
        .collect();
    let heads: Vec<_> = w
        .devices
        .iter_mut()
        .filter_map(|d| d.vault.as_mut().map(|v| v.heads()))
        .collect();
    if views.windows(2).any(|p| p[0] != p[1]) {
        failures.push("devices' views differ after the heal".into());
    }
    if heads.windows(2).any(|p| p[0] != p[1]) {
        failures.push("devices' heads differ after the heal".into());
    }
    if let Some(view) = views.first() {
        let present: BTreeMap<ReadingId, (i64, Metric, f64)> = view
            .readings
            .iter()
            .map(|r| (r.id, (r.time_ms, r.metric, r.value)))
            .collect();
        for (d, dev) in w.devices.iter().enumerate() {
            for (id, what) in &dev.acked {
                if present.get(id) != Some(what) {
                    failures.push(format!("reading {id} acknowledged by device {d} is lost"));
                }
            }
        }
    }
    // The node never holds a plaintext canary.
    {
        let tap = w.tap.lock().unwrap_or_else(|p| p.into_inner());
        for c in w.canaries.found_in_any(tap.iter().map(Vec::as_slice)) {
            failures.push(format!("the node received canary {c} in plaintext"));
        }
    }
    // Fever episodes in the merged log reach the inbox once; no alert without one.
    if let Some(v) = w.devices[0].vault.as_ref() {
        let episodes = v.log().fever_episodes(&FeverRule::default());
        let inbox = w.relay.inbox().unwrap_or_default();
        let starts: Vec<_> = inbox
            .iter()
            .filter(|e| e.kind == vigil_proto::alert::ALERT_START)
            .collect();
        // Every episode of the merged log reached the inbox. Devices that saw
        // different parts of the log may place an onset differently: an
        // alert counts for an episode if its onset lies within the episode's
        // span (give or take the recovery time), and the node merges alerts
        // closer than that (see the step-6 note on what remains possible).
        let tolerance = FeverRule::default().recovery_ms;
        let spans = |eps: &[vigil_log::FeverEpisode]| -> Vec<(i64, i64)> {
            eps.iter()
                .map(|e| {
                    let a = vigil_proto::alert::round_onset(e.onset_ms) - tolerance;
                    (a, e.end_ms.unwrap_or(i64::MAX / 2) + tolerance)
                })
                .collect()
        };
        // Once: the node merges alerts for one episode, so no two start
        // alerts lie closer than the recovery time (or share an episode id).
        for (i, a) in starts.iter().enumerate() {
            for b in &starts[i + 1..] {
                if a.episode == b.episode || (a.onset_ms - b.onset_ms).abs() < tolerance {
                    failures.push(format!(
                        "the episode from {} reached the inbox twice (onsets {} and {})",
                        a.onset_ms.min(b.onset_ms),
                        a.onset_ms,
                        b.onset_ms
                    ));
                }
            }
        }
        let merged = spans(&episodes);
        for (a, z) in &merged {
            if *a + tolerance >= START + 7 * DAY {
                continue;
            }
            if !starts.iter().any(|e| (*a..=*z).contains(&e.onset_ms)) {
                failures.push(format!(
                    "the episode from {} never reached the inbox",
                    a + tolerance
                ));
            }
        }
        // No alert without a fever: counting readings retracted after the
        // alert had left.
        let ever = spans(
            &v.log()
                .fever_episodes_including_retracted(&FeverRule::default()),
        );
        for e in &starts {
            if !ever.iter().any(|(a, z)| (*a..=*z).contains(&e.onset_ms)) {
                failures.push(format!(
                    "alert at {} has no fever in the merged log",
                    e.onset_ms
                ));
            }
        }
    }
    failures
}

fn shred(w: &mut World, config: &SimConfig) -> Vec<String> {
    let mut failures = Vec::new();
    let end = START + 7 * DAY;
    w.now_ms = end;
    for d in 0..w.devices.len() {
        let partitioned = config.scenario == Scenario::ShredWhilePartitioned && d % 2 == 1;
        let dev = &mut w.devices[d];
        let Some(vault) = dev.vault.take() else {
            continue;
        };
        let local_end = end + dev.skew_ms.max(0);
        let res = if partitioned {
            vault.shred_now(&dev.keys, local_end)
        } else {
            let mut link = SimLink::new(
                &mut dev.session,
                w.node_id,
                end,
                Faults::NONE,
                &mut w.rng,
                w.tap.clone(),
            );
            vault.shred_with_node(&mut link, &dev.keys, local_end)
        };
        dev.shredded = true;
        if let Err(e) = res {
            failures.push(format!("device {d} shred failed: {e}"));
        }
        if dev.keys.load().ok().flatten().is_some() {
            failures.push(format!("device {d} still holds its root after the shred"));
        }
        let mut r = fresh_rng(&mut w.rng);
        if !matches!(
            Vault::open_with(Box::new(dev.storage.clone()), &dev.keys, &mut r),
            Err(OpenError::Shredded(_))
        ) {
            failures.push(format!("device {d} opens after the shred"));
        }
    }
    if let Err(e) = w.relay.sweep(end, 0) {
        failures.push(format!("node sweep failed: {e}"));
    }
    if !w
        .relay
        .store()
        .vaults()
        .map(|v| v.is_empty())
        .unwrap_or(false)
    {
        failures.push("the node still holds a mailbox after the period".into());
    }
    if !w.relay.grants().map(|g| g.is_empty()).unwrap_or(false) {
        failures.push("the node still holds a grant after the period".into());
    }
    failures
}

/// Runs one seed with the built-in invariants and `extra` ones.
pub fn run(config: &SimConfig, extra: &[Invariant]) -> SimReport {
    let mut w = setup(config);
    let mut failures = Vec::new();
    let mut scanned = 0;
    for n in 0..config.steps {
        step(&mut w, config, n);
        // At every step: nothing the node received so far holds a canary.
        let tap = w.tap.lock().unwrap_or_else(|p| p.into_inner());
        for f in &tap[scanned..] {
            for c in w.canaries.found_in(f) {
                failures.push(format!(
                    "step {n}: the node received canary {c} in plaintext"
                ));
            }
        }
        scanned = tap.len();
    }
    failures.extend(heal(&mut w));
    failures.extend(check(&mut w));
    let readings = w
        .devices
        .iter()
        .find_map(|d| d.vault.as_ref())
        .map_or(0, |v| v.log().len());
    let alerts = w.relay.inbox().map_or(0, |i| i.len());
    for inv in extra {
        if let Err(e) = inv(&w) {
            failures.push(e);
        }
    }
    failures.extend(shred(&mut w, config));
    let mut h = Sha256::new();
    for e in &w.log {
        h.update(e.as_bytes());
        h.update([0]);
    }
    SimReport {
        seed: config.seed,
        events: w.log.len(),
        hash: h.finalize().into(),
        failures,
        readings,
        alerts,
    }
}
