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

mod args;
mod markdown;
mod measure;
mod node;
mod pool;
mod resident;
mod results;
mod run;
mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub use args::LoadArgs;
pub use measure::{
    DiskUse, Latency, ProcSample, disk_use, proc_sample, udp_port_drops, udp_receive_drops,
};
pub use node::{InProcessNode, NodeChoice, NodeExit, ServeNodeArgs, serve_node};
pub(crate) use node::{NodeHandle, TicketPlan};
pub use resident::DayProfile;
pub use results::{AlertResult, DayResult, LoadReport, NodeResult, Phase, Setup, UdpDrops};
pub use run::run;
pub use verify::{Durability, Tally};

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

#[cfg(test)]
mod tests;
