//! The node under test: in this process, a child process, or already running.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use vigil_net::{EnrolmentCode, NodeIdentity, NodeServer, ServerConfig};
use vigil_node::{MailboxStore, Node, NodeConfig, Relay, RelayConfig};
use vigil_proto::Ticket;

use super::measure::{DiskUse, ProcSample, disk_use, proc_sample};

/// How long a spawned node may take to print its enrolment code.
const STARTUP: Duration = Duration::from_secs(60);
/// How long a stopping node may take before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// Which node the residents talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeChoice {
    /// The node runs in this process (the relay_node example's stack); its
    /// memory is this process's, residents included.
    InProcess,
    /// The node runs as a child process in a fresh data directory and is
    /// measured alone. `program: Some(path)` runs the `vigil-node` program
    /// (`path serve --data DIR --listen ADDR`); `None` runs this executable's
    /// hidden `serve-node` subcommand (the relay_node example's stack).
    Spawn {
        /// The `vigil-node` program, or `None` for `vigil-bench serve-node`.
        program: Option<PathBuf>,
    },
    /// A node that is already running.
    External {
        /// Its enrolment code.
        code: EnrolmentCode,
        /// Its process id, to sample its memory and CPU.
        pid: Option<u32>,
        /// Its data directory, to measure its disk use.
        data: Option<PathBuf>,
    },
}

/// A node in this process: the relay on sled, alerts, receipts, QUIC.
#[derive(Debug)]
pub struct InProcessNode {
    rt: tokio::runtime::Runtime,
    server: Option<NodeServer>,
    relay: Relay,
    code: EnrolmentCode,
}

impl InProcessNode {
    /// Starts a node with its data in `dir` (created if needed), listening on
    /// `listen`, refusing connections beyond `max_connections` (the server's
    /// default when `None`), exactly as the relay_node example does.
    pub fn start(
        dir: &Path,
        listen: SocketAddr,
        max_connections: Option<usize>,
    ) -> Result<InProcessNode, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let identity = NodeIdentity::load_or_create(dir).map_err(|e| e.to_string())?;
        let node = Node::open(dir, &NodeConfig::default())
            .map_err(|e| e.to_string())?
            .with_receipts(identity.signing());
        let relay = node.relay().clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("vigil-node")
            .build()
            .map_err(|e| e.to_string())?;
        let factory = node.handler_factory();
        // Every simulated resident connects from this one loopback address:
        // the per-address cap and Retry are for the Internet.
        let mut config = ServerConfig {
            max_connections_per_address: usize::MAX,
            retry_from: usize::MAX,
            ..ServerConfig::default()
        };
        if let Some(m) = max_connections {
            config.max_connections = m;
        }
        let server = rt
            .block_on(NodeServer::spawn(&identity, listen, config, factory))
            .map_err(|e| e.to_string())?;
        let code = identity.enrolment_code(server.local_addr());
        Ok(InProcessNode {
            rt,
            server: Some(server),
            relay,
            code,
        })
    }

    /// The node's enrolment code.
    pub fn code(&self) -> &EnrolmentCode {
        &self.code
    }

    /// Stops gracefully (drain, then close) and hands back the relay, whose
    /// store can then be inspected.
    pub fn stop(mut self) -> Relay {
        if let Some(server) = self.server.take() {
            self.rt.block_on(async {
                server.drain(Duration::from_secs(5)).await;
                server.shutdown().await;
            });
        }
        self.relay.clone()
    }
}

enum Kind {
    InProcess(Box<InProcessNode>),
    Child { child: Child, vigil_node: bool },
    External { pid: Option<u32> },
}

/// How the node ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeExit {
    /// How it was stopped: `graceful`, `SIGKILL`, `still running` (an
    /// external node), or `exited by itself` (a crash).
    pub how: String,
    /// Its exit status, for a child.
    pub status: Option<String>,
}

/// The node under test, with what is needed to measure and stop it.
pub(crate) struct NodeHandle {
    pub(crate) code: EnrolmentCode,
    /// What runs, in words, for the report.
    pub(crate) description: String,
    /// Notes for the report (a fallback taken, ...).
    pub(crate) notes: Vec<String>,
    pub(crate) data: Option<PathBuf>,
    pub(crate) log: Option<PathBuf>,
    kind: Kind,
    _tmp: Option<tempfile::TempDir>,
    /// The residents' enrolment tickets, in resident order, until the run
    /// takes them.
    pub(crate) tickets: Vec<Ticket>,
}

/// Which tickets staff issue before the residents start: one per label,
/// until `period_end_ms`.
#[derive(Debug, Clone)]
pub(crate) struct TicketPlan {
    pub(crate) labels: Vec<String>,
    pub(crate) period_end_ms: i64,
}

/// Issues the plan's tickets on the store in `dir`, with no node serving
/// it yet (a fresh data directory), the cap raised to fit them.
fn issue_on_store(dir: &Path, plan: &TicketPlan) -> Result<Vec<Ticket>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let config = NodeConfig {
        relay: RelayConfig {
            max_tickets: (plan.labels.len() as u64).max(RelayConfig::default().max_tickets),
            ..RelayConfig::default()
        },
        grant_key_seed: None,
    };
    let node = Node::open(dir, &config).map_err(|e| e.to_string())?;
    let tickets = issue_with(node.relay(), plan)?;
    drop(node);
    Ok(tickets)
}

fn issue_with(relay: &Relay, plan: &TicketPlan) -> Result<Vec<Ticket>, String> {
    let mut rng = vigil_crypto::rand_core::UnwrapErr(getrandom::SysRng);
    let now = now_ms();
    plan.labels
        .iter()
        .map(|l| {
            relay
                .issue_ticket(l, plan.period_end_ms, now, &mut rng)
                .map(|t| t.ticket)
                .map_err(|e| format!("issuing a ticket: {e}"))
        })
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Asks the vigil-node serving `data` for the plan's tickets over its admin
/// socket (`residents_add`, docs/spec.md §14).
fn issue_over_admin(data: &Path, plan: &TicketPlan) -> Result<Vec<Ticket>, String> {
    let path = data.join("admin.sock");
    let stream = std::os::unix::net::UnixStream::connect(&path)
        .map_err(|e| format!("issuing tickets: cannot reach {}: {e}", path.display()))?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    let mut out = Vec::with_capacity(plan.labels.len());
    for label in &plan.labels {
        let req = serde_json::json!({
            "op": "residents_add",
            "label": label,
            "period_end_ms": plan.period_end_ms,
        });
        writeln!(writer, "{req}").map_err(|e| format!("admin socket: {e}"))?;
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("admin socket: {e}"))?;
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("admin socket: {e}"))?;
        let ok = v
            .get("ok")
            .ok_or_else(|| format!("the node refused a ticket: {line}"))?;
        let hex32 = |k: &str, n: usize| -> Result<Vec<u8>, String> {
            ok.get(k)
                .and_then(|x| x.as_str())
                .and_then(|x| hex::decode(x).ok())
                .filter(|b| b.len() == n)
                .ok_or_else(|| format!("admin socket: bad {k} in {line}"))
        };
        let id: [u8; 16] = hex32("id", 16)?.try_into().unwrap_or_default();
        let secret: [u8; 32] = hex32("secret", 32)?.try_into().unwrap_or_default();
        out.push(Ticket {
            id,
            secret: vigil_proto::TicketSecret::from_bytes(secret),
        });
    }
    Ok(out)
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("code", &self.code.to_string())
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// Where the node keeps its data, and the directory to remove at the end.
fn data_dir(data: Option<&Path>) -> Result<(PathBuf, Option<tempfile::TempDir>), String> {
    match data {
        Some(d) => {
            if d.exists()
                && std::fs::read_dir(d)
                    .map(|mut r| r.next().is_some())
                    .unwrap_or(false)
            {
                return Err(format!(
                    "{} is not empty: the durability check needs a fresh node",
                    d.display()
                ));
            }
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
            Ok((d.to_path_buf(), None))
        }
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("vigil-bench-")
                .tempdir()
                .map_err(|e| e.to_string())?;
            let d = tmp.path().join("node");
            std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
            Ok((d, Some(tmp)))
        }
    }
}

/// `PROGRAM serve --data DIR --listen ADDR`, with the connection limit in a
/// config file next to the data (vigil-node takes it only from there).
fn vigil_node_command(
    program: &Path,
    dir: &Path,
    listen: SocketAddr,
    max_connections: Option<usize>,
) -> Result<Command, String> {
    let mut cmd = Command::new(program);
    cmd.arg("serve")
        .arg("--data")
        .arg(dir)
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--log-level")
        .arg("warn");
    // Every simulated resident connects from one loopback address: the
    // per-address cap and Retry are for the Internet.
    let mut limits = format!(
        "[limits]\nmax_connections_per_address = {}\nretry_from = {}\n",
        u32::MAX,
        u32::MAX
    );
    if let Some(m) = max_connections {
        limits.push_str(&format!("max_connections = {m}\n"));
    }
    let config = dir.with_extension("toml");
    std::fs::write(&config, limits).map_err(|e| e.to_string())?;
    cmd.arg("--config").arg(config);
    Ok(cmd)
}

/// This executable's `serve-node --data DIR --listen ADDR`.
fn serve_node_command(
    dir: &Path,
    listen: SocketAddr,
    max_connections: Option<usize>,
) -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.arg("serve-node")
        .arg("--data")
        .arg(dir)
        .arg("--listen")
        .arg(listen.to_string());
    if let Some(m) = max_connections {
        cmd.arg("--max-connections").arg(m.to_string());
    }
    Ok(cmd)
}

impl NodeHandle {
    /// Starts (or adopts) the node, with the tickets of `plan` issued.
    pub(crate) fn start(
        choice: &NodeChoice,
        plan: &TicketPlan,
        listen: SocketAddr,
        data: Option<&Path>,
        max_connections: Option<usize>,
    ) -> Result<NodeHandle, String> {
        match choice {
            NodeChoice::External { code, pid, data } => Ok(NodeHandle {
                code: code.clone(),
                description: format!("external node at {}", code.addr),
                notes: vec![],
                data: data.clone(),
                log: None,
                kind: Kind::External { pid: *pid },
                _tmp: None,
                tickets: match data {
                    Some(d) => issue_over_admin(d, plan)?,
                    None => {
                        return Err("an external node needs --data DIR: residents enrol with \
                                    tickets, issued through its admin socket"
                            .into());
                    }
                },
            }),
            NodeChoice::InProcess => Self::in_process(listen, data, max_connections, plan),
            NodeChoice::Spawn { program } => {
                Self::child(program.as_deref(), listen, data, max_connections, plan)
            }
        }
    }

    fn in_process(
        listen: SocketAddr,
        data: Option<&Path>,
        max_connections: Option<usize>,
        plan: &TicketPlan,
    ) -> Result<NodeHandle, String> {
        let (dir, tmp) = data_dir(data)?;
        let tickets = issue_on_store(&dir, plan)?;
        let node = InProcessNode::start(&dir, listen, max_connections)?;
        Ok(NodeHandle {
            code: node.code().clone(),
            description: "in-process node (relay_node example's stack); memory is the \
                          whole process, residents included"
                .into(),
            notes: vec![],
            data: Some(dir),
            log: None,
            kind: Kind::InProcess(Box::new(node)),
            _tmp: tmp,
            tickets,
        })
    }

    /// A node process: `program` (a vigil-node) or, without one, this
    /// executable's `serve-node`; its stderr goes to a log next to its data.
    fn child(
        program: Option<&Path>,
        listen: SocketAddr,
        data: Option<&Path>,
        max_connections: Option<usize>,
        plan: &TicketPlan,
    ) -> Result<NodeHandle, String> {
        let (dir, tmp) = data_dir(data)?;
        // Staff register the residents before the node serves (its store
        // admits one process).
        let tickets = issue_on_store(&dir, plan)?;
        let log = dir.with_extension("stderr.log");
        let (cmd, description) = match program {
            Some(p) => (
                vigil_node_command(p, &dir, listen, max_connections)?,
                format!("vigil-node process ({})", p.display()),
            ),
            None => (
                serve_node_command(&dir, listen, max_connections)?,
                "node process (vigil-bench serve-node: the relay_node example's stack)".to_owned(),
            ),
        };
        let (child, code) = spawn(cmd, &log)?;
        Ok(NodeHandle {
            code,
            description,
            notes: vec![],
            data: Some(dir),
            log: Some(log),
            kind: Kind::Child {
                child,
                vigil_node: program.is_some(),
            },
            _tmp: tmp,
            tickets,
        })
    }

    /// The node process's memory and CPU now (this process's when in-process).
    pub(crate) fn sample(&self) -> Option<ProcSample> {
        match &self.kind {
            Kind::InProcess(_) => proc_sample(None),
            Kind::Child { child, .. } => proc_sample(Some(child.id())),
            Kind::External { pid } => pid.and_then(|p| proc_sample(Some(p))),
        }
    }

    /// The node's process id, when it runs in a process of its own.
    pub(crate) fn pid(&self) -> Option<u32> {
        match &self.kind {
            Kind::InProcess(_) => None,
            Kind::Child { child, .. } => Some(child.id()),
            Kind::External { pid } => *pid,
        }
    }

    /// The node's disk use now, if its data directory is known.
    pub(crate) fn disk(&self) -> Option<DiskUse> {
        self.data.as_deref().map(disk_use)
    }

    /// `Err` with a description if the node process has exited.
    pub(crate) fn check_alive(&mut self) -> Result<(), String> {
        if let Kind::Child { child, .. } = &mut self.kind
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(format!("node process exited during the run: {status}"));
        }
        Ok(())
    }

    /// Stops the node (SIGKILL when `kill`), and opens its store for the
    /// after-stop check when it is local.
    pub(crate) fn stop(&mut self, kill: bool) -> (NodeExit, Option<Result<MailboxStore, String>>) {
        let kind = std::mem::replace(&mut self.kind, Kind::External { pid: None });
        match kind {
            Kind::External { pid } => {
                self.kind = Kind::External { pid };
                (
                    NodeExit {
                        how: "still running".into(),
                        status: None,
                    },
                    None,
                )
            }
            Kind::InProcess(node) => {
                let relay = node.stop();
                (
                    NodeExit {
                        how: "graceful".into(),
                        status: None,
                    },
                    Some(Ok(relay.store().clone())),
                )
            }
            Kind::Child {
                mut child,
                vigil_node,
            } => {
                let exit = stop_child(&mut child, vigil_node, kill);
                let store = self
                    .data
                    .as_ref()
                    .map(|d| Self::open_store(&d.join("relay")));
                (exit, store)
            }
        }
    }

    /// Opens a stopped node's store, waiting up to 10 s for its lock (a wrapper
    /// may exit before the node it ran).
    fn open_store(dir: &Path) -> Result<MailboxStore, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match MailboxStore::open(dir) {
                Ok(s) => return Ok(s),
                Err(e) if Instant::now() < deadline && e.to_string().contains("lock") => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Error and panic lines in the node's log (a child's stderr).
    pub(crate) fn log_problems(&self) -> Vec<String> {
        let Some(log) = &self.log else {
            return vec![];
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("ERROR") || l.contains("panicked"))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        if let Kind::Child { child, .. } = &mut self.kind {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `cmd` with stdin piped (closing it stops `serve-node`), stderr to
/// `log`, and waits for an enrolment code on stdout.
fn spawn(mut cmd: Command, log: &Path) -> Result<(Child, EnrolmentCode), String> {
    let stderr = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("starting {cmd:?}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keep reading after the code, so the pipe never fills.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(code) = line
                .split_whitespace()
                .filter(|w| w.starts_with("vigil1/"))
                .find_map(|w| w.parse::<EnrolmentCode>().ok())
            {
                let _ = tx.send(code);
            }
        }
    });
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Ok(code) = rx.recv_timeout(Duration::from_millis(100)) {
            return Ok((child, code));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{cmd:?} exited ({status}) without printing an enrolment code; see {}",
                log.display()
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{cmd:?} printed no enrolment code within {STARTUP:?}"
            ));
        }
    }
}

fn stop_child(child: &mut Child, vigil_node: bool, kill: bool) -> NodeExit {
    if let Ok(Some(status)) = child.try_wait() {
        return NodeExit {
            how: "exited by itself".into(),
            status: Some(status.to_string()),
        };
    }
    let how = if kill {
        let _ = child.kill();
        "SIGKILL"
    } else if vigil_node {
        // SIGTERM asks vigil-node to drain and stop.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        "graceful"
    } else {
        // serve-node stops when its stdin closes.
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.flush();
        }
        "graceful"
    };
    let deadline = Instant::now() + STOP_WAIT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return NodeExit {
                    how: how.into(),
                    status: Some(status.to_string()),
                };
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let status = child.wait().ok().map(|s| s.to_string());
                return NodeExit {
                    how: format!("{how}, then SIGKILL after {STOP_WAIT:?}"),
                    status,
                };
            }
        }
    }
}

/// Arguments of the hidden `serve-node` subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeNodeArgs {
    /// The node's data directory.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// UDP address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Refuse connections beyond this many.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
}

/// Runs a node until stdin closes (the parent exited or asked it to stop),
/// printing `enrolment code: CODE` once it listens.
pub fn serve_node(args: ServeNodeArgs) -> Result<std::process::ExitCode, String> {
    let node = InProcessNode::start(&args.data, args.listen, args.max_connections)?;
    let mut out = std::io::stdout();
    writeln!(out, "enrolment code: {}", node.code()).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    let stdin = std::io::stdin();
    while stdin.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
        line.clear();
    }
    drop(node.stop());
    Ok(std::process::ExitCode::SUCCESS)
}
