//! `vigil-bench attack`: honest residents sync and alert while attackers,
//! on their own connections, try to knock the node over or slip past it.
//!
//! One run per scenario, each against a fresh node process (the
//! `vigil-node` program next to this executable, as `load` starts it):
//! first the honest residents alone (the baseline), then the same residents
//! (same seed, same script) with one attack running for the whole run. Each
//! scenario reports the honest sync and alert latency (p99), the node's peak
//! RSS (VmHWM) and disk growth, the forged grants and alerts the node
//! accepted, and the honest alerts it did not store, side by side with the
//! baseline. The honest side is `load`'s residents ([`crate::load::run`]
//! against the node as an external one), so whatever `load` learns (tickets
//! for enrolment, say) the attack run uses too.
//!
//! The attacks:
//!
//! - `register`: unauthenticated `Register` of made-up vaults, as fast as
//!   the node answers (each a mailbox on disk, expiring never);
//! - `grant-key`: unauthenticated `GrantKey` (each a key file on disk);
//! - `forge`: a made-up resident per round: grant key, a grant under a
//!   name staff would read, a level-3 fever alert;
//! - `big-frames`: frames of `--frame-mib` (17 MiB, the codec's maximum)
//!   that are not requests, read whole before any check;
//! - `garbage`: random bytes of random length;
//! - `pairing-spam`: a mailbox of its own (anyone may register), then
//!   4 KiB pairing offers at random slots;
//! - `have-list`: a mailbox of its own, then `Pull` with a `--have-entries`
//!   (a million) entry `have` list;
//! - `connections`: `--connections` connections from one address, held open.

mod attackers;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::Serialize;

pub use attackers::{AttackSizes, FORGED_LABEL};
use attackers::{Attacker, Tally};

use crate::load::{self, DayProfile, LoadConfig, LoadReport, NodeChoice};

/// One attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// Unauthenticated `Register` flood.
    Register,
    /// Unauthenticated `GrantKey` flood.
    GrantKey,
    /// Made-up residents: grant key, grant, fever alert.
    Forge,
    /// Oversized frames (17 MiB).
    BigFrames,
    /// Random bytes.
    Garbage,
    /// Pairing offers at random slots.
    PairingSpam,
    /// `Pull` with a million-entry `have` list.
    HaveList,
    /// Many connections from one address.
    Connections,
}

impl Attack {
    /// Every attack, in report order.
    pub const ALL: [Attack; 8] = [
        Attack::Register,
        Attack::GrantKey,
        Attack::Forge,
        Attack::BigFrames,
        Attack::Garbage,
        Attack::PairingSpam,
        Attack::HaveList,
        Attack::Connections,
    ];

    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Attack::Register => "register",
            Attack::GrantKey => "grant-key",
            Attack::Forge => "forge",
            Attack::BigFrames => "big-frames",
            Attack::Garbage => "garbage",
            Attack::PairingSpam => "pairing-spam",
            Attack::HaveList => "have-list",
            Attack::Connections => "connections",
        }
    }
}

/// Arguments of `vigil-bench attack`.
#[derive(Debug, Clone, clap::Args)]
pub struct AttackArgs {
    /// Honest residents.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub residents: usize,
    /// Wall-clock seconds of the residents' simulated day (per scenario).
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub day_seconds: f64,
    /// Share of residents who run a fever, percent (their alerts are timed).
    #[arg(long, value_name = "PERCENT", default_value_t = 30.0)]
    pub fever_percent: f64,
    /// Attacks to run, comma-separated [default: all].
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub attacks: Vec<Attack>,
    /// Attacker threads per attack, each with its own connection.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub threads: usize,
    /// Size of one oversized frame, MiB (capped at the codec's 17 MiB).
    #[arg(long, value_name = "MIB", default_value_t = 17.0)]
    pub frame_mib: f64,
    /// Entries in one `have` list.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub have_entries: usize,
    /// Connections the connection flood holds open.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub connections: usize,
    /// The vigil-node program [default: the one next to this executable,
    /// else this executable's serve-node].
    #[arg(long, value_name = "PATH")]
    pub node_bin: Option<PathBuf>,
    /// Seed of the residents' scripts and the attackers' bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the Markdown report here too (docs/perf/attack.md).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the figures as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// One scenario's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// The attack, or `None` for the baseline.
    pub attack: Option<Attack>,
    /// Wall-clock seconds of the scenario.
    pub elapsed_s: f64,
    /// Honest syncs: p99, ms (0 when none completed).
    pub sync_p99_ms: f64,
    /// Honest syncs completed / failed.
    pub syncs_ok: u64,
    /// Honest syncs that failed.
    pub syncs_failed: u64,
    /// Honest alert latency p99, ms.
    pub alert_p99_ms: f64,
    /// Residents scripted to run a fever.
    pub fever_residents: u64,
    /// Of them, residents whose episode start the node stored.
    pub alerts_delivered: u64,
    /// Honest alerts still in outboxes at the end.
    pub alerts_pending: u64,
    /// Residents that never connected or enrolled.
    pub residents_locked_out: u64,
    /// The node's peak RSS (VmHWM), bytes.
    pub node_peak_rss_bytes: Option<u64>,
    /// The node's user CPU seconds over the scenario.
    pub node_user_s: Option<f64>,
    /// This process's user CPU seconds (residents and attackers).
    pub generator_user_s: Option<f64>,
    /// Growth of the node's data directory, allocated bytes.
    pub node_disk_growth_bytes: Option<u64>,
    /// Grants in the node's store that attackers made.
    pub forged_grants: Option<u64>,
    /// Inbox entries in the node's store under attackers' grants.
    pub forged_alerts: Option<u64>,
    /// Whether the node process died.
    pub node_died: Option<String>,
    /// The machine's 1-minute load average at the scenario's end (other
    /// work on the machine moves the latencies).
    pub load_average: Option<f64>,
    /// Attack requests sent.
    pub attack_requests: u64,
    /// Attack bytes sent.
    pub attack_bytes: u64,
    /// Most attack connections open at once (connection flood).
    pub attack_peak_connections: u64,
    /// The node's answers to the attackers, by kind.
    pub attack_answers: BTreeMap<String, u64>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct AttackReport {
    /// The command line that produced it.
    pub command: String,
    /// CPU model, cores, RAM.
    pub machine: String,
    /// Honest residents.
    pub residents: usize,
    /// Seconds of their simulated day.
    pub day_seconds: f64,
    /// Fever share, percent.
    pub fever_percent: f64,
    /// Attack sizes.
    pub sizes: AttackSizes,
    /// The node program.
    pub node: String,
    /// Baseline first, then one per attack.
    pub scenarios: Vec<Scenario>,
    /// Total wall-clock seconds.
    pub elapsed_s: f64,
}

/// `vigil-bench attack`: runs every scenario, prints the Markdown report
/// and writes it (and the JSON) where asked.
pub fn main(args: AttackArgs) -> Result<ExitCode, String> {
    let started = Instant::now();
    let attacks: Vec<Attack> = if args.attacks.is_empty() {
        Attack::ALL.to_vec()
    } else {
        args.attacks.clone()
    };
    let sizes = AttackSizes {
        threads: args.threads.max(1),
        frame_bytes: ((args.frame_mib * 1024.0 * 1024.0) as usize).min(vigil_proto::MAX_FRAME),
        have_entries: args.have_entries,
        connections: args.connections,
    };
    let program = args.node_bin.clone().or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("vigil-node")))
            .filter(|p| p.is_file())
    });
    let node = program.as_ref().map_or_else(
        || "vigil-bench serve-node (no vigil-node next to vigil-bench)".to_owned(),
        |p| format!("vigil-node process ({})", p.display()),
    );
    let mut scenarios = Vec::new();
    for attack in std::iter::once(None).chain(attacks.iter().copied().map(Some)) {
        let name = attack.map_or("baseline", Attack::name);
        eprintln!("attack: scenario {name} ...");
        let s = scenario(&args, &sizes, program.clone(), attack)?;
        eprintln!(
            "attack: {name}: sync p99 {:.1} ms, alert p99 {:.1} ms, peak RSS {}, disk +{}",
            s.sync_p99_ms,
            s.alert_p99_ms,
            opt_mib(s.node_peak_rss_bytes),
            opt_mib(s.node_disk_growth_bytes)
        );
        scenarios.push(s);
    }
    let report = AttackReport {
        command: command_line(),
        machine: crate::report::machine(),
        residents: args.residents,
        day_seconds: args.day_seconds,
        fever_percent: args.fever_percent,
        sizes,
        node,
        scenarios,
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    let md = report.markdown();
    println!("{md}");
    if let Some(path) = &args.out {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, &md).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn command_line() -> String {
    let mut args = std::env::args();
    let exe = args
        .next()
        .map(|a| {
            PathBuf::from(a)
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    std::iter::once(exe)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

/// User CPU seconds of a process (`None`: this one), from `/proc/PID/stat`.
fn user_s(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or_else(|| "/proc/self/stat".into(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name: utime is field 14.
    let after = stat.rsplit_once(')')?.1;
    let ticks: u64 = after.split_whitespace().nth(11)?.parse().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The 1-minute load average, from `/proc/loadavg`.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One scenario: a fresh node, the attackers (if any) for the whole run,
/// the honest residents, then the node's figures.
fn scenario(
    args: &AttackArgs,
    sizes: &AttackSizes,
    program: Option<PathBuf>,
    attack: Option<Attack>,
) -> Result<Scenario, String> {
    let started = Instant::now();
    let listen = SocketAddr::from(([127, 0, 0, 1], 0));
    // The attacks that need a mailbox play residents turned attackers: staff
    // gave each attacker thread a ticket (a stranger without one is refused
    // before any of it). The honest residents' tickets are issued by `load`
    // through the admin socket.
    let insiders = match attack {
        Some(Attack::PairingSpam | Attack::HaveList) => sizes.threads,
        _ => 0,
    };
    let plan = load::TicketPlan {
        labels: (0..insiders).map(|i| format!("attacker {i}")).collect(),
        period_end_ms: now_ms() + 7 * 86_400_000,
    };
    let mut handle =
        load::NodeHandle::start(&NodeChoice::Spawn { program }, &plan, listen, None, None)?;
    let pid = handle.pid();
    let disk_before = handle.disk();
    let node_user_before = user_s(pid);
    let generator_user_before = user_s(None);
    let code = handle.code.clone();
    let stop = AtomicBool::new(false);
    let tally = Tally::default();
    let config = LoadConfig {
        residents: args.residents,
        node: NodeChoice::External {
            code: code.clone(),
            pid,
            data: handle.data.clone(),
        },
        concurrency: args.residents.clamp(1, 16),
        day_seconds: args.day_seconds,
        profile: DayProfile {
            fever_percent: args.fever_percent,
            ..DayProfile::default()
        },
        seed: args.seed,
        ..LoadConfig::default()
    };
    let report: Result<LoadReport, String> = std::thread::scope(|scope| {
        let threads = match attack {
            None => 0,
            Some(Attack::Connections) => 1,
            Some(_) => sizes.threads,
        };
        for i in 0..threads {
            let a = Attacker {
                attack: attack.expect("threads only with an attack"),
                code: &code,
                sizes,
                stop: &stop,
                tally: &tally,
                rng: ChaCha20Rng::seed_from_u64(args.seed ^ (0xA77A_C000 + i as u64)),
                ticket: handle.tickets.get(i),
            };
            scope.spawn(move || a.run());
        }
        if threads > 0 {
            // The attack is under way before the first resident connects.
            std::thread::sleep(Duration::from_secs(1));
        }
        let r = load::run(&config);
        stop.store(true, Ordering::Relaxed);
        r
    });
    let report = report?;
    let died = handle.check_alive().err();
    let peak = handle.sample().map(|s| s.peak_rss_bytes);
    let node_user = user_s(pid).zip(node_user_before).map(|(a, b)| a - b);
    let generator_user = user_s(None).zip(generator_user_before).map(|(a, b)| a - b);
    let disk_growth = handle
        .disk()
        .zip(disk_before)
        .map(|(a, b)| a.allocated_bytes.saturating_sub(b.allocated_bytes));
    let (_exit, store) = handle.stop(false);
    let forged_ids = tally
        .forged_grants
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let (forged_grants, forged_alerts) = match store {
        Some(Ok(store)) => forged_in_store(&store, &forged_ids),
        _ => (None, None),
    };
    let fever = report.alerts.fever_residents;
    Ok(Scenario {
        attack,
        elapsed_s: started.elapsed().as_secs_f64(),
        sync_p99_ms: report.day.sync_latency.p99_ms,
        syncs_ok: report.day.syncs_ok,
        syncs_failed: report.day.syncs_failed,
        alert_p99_ms: report.alerts.latency.p99_ms,
        fever_residents: fever,
        alerts_delivered: report.alerts.start_delivered,
        alerts_pending: report.alerts.pending_at_end,
        residents_locked_out: report.connect.failed + report.enrol.failed,
        node_peak_rss_bytes: peak,
        node_user_s: node_user,
        generator_user_s: generator_user,
        node_disk_growth_bytes: disk_growth,
        forged_grants,
        forged_alerts,
        node_died: died.or(report.node.died.clone()),
        load_average: load_average(),
        attack_requests: tally.requests.load(Ordering::Relaxed),
        attack_bytes: tally.bytes_sent.load(Ordering::Relaxed),
        attack_peak_connections: tally.peak_connections.load(Ordering::Relaxed),
        attack_answers: tally.answers(),
    })
}

/// Grants attackers made (by id, or by the label they gave) and inbox
/// entries under them, as the node's store holds them after the run.
fn forged_in_store(
    store: &vigil_node::MailboxStore,
    ids: &HashSet<[u8; 16]>,
) -> (Option<u64>, Option<u64>) {
    let forged = |id: &[u8; 16], label: &str| ids.contains(id) || label.starts_with(FORGED_LABEL);
    let grants = store.grants().ok().map(|g| {
        g.iter()
            .filter(|g| forged(&g.grant.grant_id, &g.grant.label))
            .count() as u64
    });
    let alerts = store
        .inbox()
        .ok()
        .map(|i| i.iter().filter(|e| forged(&e.grant_id, &e.label)).count() as u64);
    (grants, alerts)
}

fn opt_mib(b: Option<u64>) -> String {
    b.map_or_else(
        || "–".into(),
        |b| format!("{:.1} MiB", b as f64 / 1048576.0),
    )
}

fn opt_n(n: Option<u64>) -> String {
    n.map_or_else(|| "–".into(), |n| n.to_string())
}

fn ratio(x: f64, base: f64) -> String {
    if base > 0.0 && x > 0.0 {
        format!(" ({:.1}×)", x / base)
    } else {
        String::new()
    }
}

impl AttackReport {
    /// The report as Markdown: setup, one table of scenarios, then the
    /// node's answers to each attack.
    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "# Attack benchmark\n");
        let _ = writeln!(o, "Produced by:\n\n```text\n{}\n```\n", self.command);
        let _ = writeln!(o, "- Machine: {}", self.machine);
        let _ = writeln!(o, "- Node: {}", self.node);
        let _ = writeln!(
            o,
            "- Honest side: {} residents (`load`'s), a day of {} s, {}% with a fever; \
             each scenario a fresh node",
            self.residents, self.day_seconds, self.fever_percent
        );
        let _ = writeln!(
            o,
            "- Attack sizes: {} threads per attack, frames of {:.1} MiB, `have` lists of {} \
             entries, {} connections",
            self.sizes.threads,
            self.sizes.frame_bytes as f64 / 1048576.0,
            self.sizes.have_entries,
            self.sizes.connections
        );
        let _ = writeln!(o, "- Whole run: {:.0} s\n", self.elapsed_s);
        let base = self.scenarios.iter().find(|s| s.attack.is_none());
        let (bs, ba) = base.map_or((0.0, 0.0), |b| (b.sync_p99_ms, b.alert_p99_ms));
        let _ = writeln!(
            o,
            "Targets: honest p99s within 2× of the baseline, peak RSS bounded by config, \
             disk bounded by quota, forged grants and alerts 0, honest alerts lost 0.\n"
        );
        let _ = writeln!(
            o,
            "| scenario | honest sync p99 | honest alert p99 | node peak RSS | node disk growth \
             | forged grants / alerts accepted | honest alerts lost (pending) | syncs ok / failed \
             | residents locked out | node user CPU | generator user CPU | load average |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for s in &self.scenarios {
            let name = s.attack.map_or("baseline (no attack)", Attack::name);
            let lost = s.fever_residents.saturating_sub(s.alerts_delivered);
            let died = if s.node_died.is_some() {
                " **node died**"
            } else {
                ""
            };
            let _ = writeln!(
                o,
                "| {name}{died} | {:.1} ms{} | {:.1} ms{} | {} | {} | {} / {} | {lost} of {} ({}) \
                 | {} / {} | {} | {} | {} | {} |",
                s.sync_p99_ms,
                ratio(s.sync_p99_ms, bs),
                s.alert_p99_ms,
                ratio(s.alert_p99_ms, ba),
                opt_mib(s.node_peak_rss_bytes),
                opt_mib(s.node_disk_growth_bytes),
                opt_n(s.forged_grants),
                opt_n(s.forged_alerts),
                s.fever_residents,
                s.alerts_pending,
                s.syncs_ok,
                s.syncs_failed,
                s.residents_locked_out,
                s.node_user_s
                    .map_or_else(|| "–".into(), |u| format!("{u:.1} s")),
                s.generator_user_s
                    .map_or_else(|| "–".into(), |u| format!("{u:.1} s")),
                s.load_average
                    .map_or_else(|| "–".into(), |l| format!("{l:.1}")),
            );
        }
        let _ = writeln!(
            o,
            "\nCPU: {} (user CPU seconds of the node process and of this process, residents \
             and attackers together, per scenario; the machine's 1-minute load average at the \
             scenario's end: above the core count, other work shared the cores and the \
             latencies say as much about it as about the attack).\n",
            self.machine
        );
        let _ = writeln!(o, "## What the node answered the attackers\n");
        for s in self.scenarios.iter().filter(|s| s.attack.is_some()) {
            let name = s.attack.map_or("", Attack::name);
            let _ = writeln!(
                o,
                "- **{name}** ({:.0} s; {} requests, {}{}): {}",
                s.elapsed_s,
                s.attack_requests,
                opt_mib(Some(s.attack_bytes)),
                if s.attack_peak_connections > 0 {
                    format!(
                        ", {} connections open at once at most",
                        s.attack_peak_connections
                    )
                } else {
                    String::new()
                },
                s.attack_answers
                    .iter()
                    .map(|(k, v)| format!("{k} × {v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        o
    }
}

/// Wall-clock time, ms (the ticket's period end).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
