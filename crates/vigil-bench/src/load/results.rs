//! What a load run measured: the report's types, serialised as the
//! `--json` output (field names and order are part of that format).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{
    DayProfile, DiskUse, Durability, Latency, NodeExit, ProcSample, udp_port_drops,
    udp_receive_drops,
};

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

impl Phase {
    /// A phase from its counts and timing (the rate is 0 for no time).
    pub(crate) fn timed(
        ok: u64,
        failed: u64,
        elapsed: Duration,
        latency: Latency,
        udp_drops: UdpDrops,
    ) -> Phase {
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
    /// The counters now, machine-wide and at `port`.
    pub(crate) fn now(port: u16) -> UdpDrops {
        UdpDrops {
            machine: udp_receive_drops(),
            node_socket: udp_port_drops(port),
        }
    }

    /// What was dropped since `before`.
    pub(crate) fn since(before: UdpDrops, port: u16) -> UdpDrops {
        let now = UdpDrops::now(port);
        let d = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
        UdpDrops {
            machine: d(before.machine, now.machine),
            node_socket: d(before.node_socket, now.node_socket),
        }
    }

    /// `12 (3 at the node's socket)`, if the machine's count is known.
    pub(crate) fn describe(&self) -> Option<String> {
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
