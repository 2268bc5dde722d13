//! `vigil-bench load`'s command line, and the run it describes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use vigil_net::EnrolmentCode;

use super::{DayProfile, LoadConfig, NodeChoice};

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

/// What `--node` names.
enum NodeArg {
    /// A running node, by its enrolment code.
    Running(EnrolmentCode),
    /// Where the node started here listens.
    Listen(SocketAddr),
}

impl LoadArgs {
    /// The run these arguments describe.
    pub fn config(&self) -> Result<LoadConfig, String> {
        let mut c = self.run_config();
        match self.node_arg()? {
            Some(NodeArg::Running(code)) => {
                c.data = None;
                c.node = NodeChoice::External {
                    code,
                    pid: self.node_pid,
                    data: self.data.clone(),
                };
            }
            Some(NodeArg::Listen(addr)) => {
                c.listen = addr;
                (c.node, c.fallback_to_self) = self.node_to_start();
            }
            None => (c.node, c.fallback_to_self) = self.node_to_start(),
        }
        Ok(c)
    }

    /// Everything but the node.
    fn run_config(&self) -> LoadConfig {
        LoadConfig {
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
        }
    }

    fn node_arg(&self) -> Result<Option<NodeArg>, String> {
        let Some(s) = &self.node else {
            return Ok(None);
        };
        if s.trim().starts_with("vigil1/") {
            let code = s.parse().map_err(|e| format!("--node: {e}"))?;
            return Ok(Some(NodeArg::Running(code)));
        }
        let addr = s
            .parse()
            .map_err(|_| format!("--node: `{s}` is neither an enrolment code nor an address"))?;
        Ok(Some(NodeArg::Listen(addr)))
    }

    /// The node to start here, and whether to fall back to this
    /// executable's `serve-node` if it does not start (only for the sibling
    /// found by default, not a program the user named).
    fn node_to_start(&self) -> (NodeChoice, bool) {
        if self.in_process {
            (NodeChoice::InProcess, false)
        } else if let Some(p) = &self.node_bin {
            let program = Some(p.clone());
            (NodeChoice::Spawn { program }, false)
        } else if self.self_node {
            (NodeChoice::Spawn { program: None }, false)
        } else {
            let sibling = std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(|d| d.join("vigil-node")))
                .filter(|p| p.is_file());
            let fallback = sibling.is_some();
            (NodeChoice::Spawn { program: sibling }, fallback)
        }
    }
}
