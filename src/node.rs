//! A community node run in-process (feature `node`): for examples, tests
//! and apps that embed one. Staff run the `vigil-node` program instead.
//!
//! ```no_run
//! use vigil::node::{LocalNode, ServerConfig};
//!
//! let node = LocalNode::start("/tmp/vigil-node".as_ref(), "127.0.0.1:0".parse()?, ServerConfig::default())?;
//! println!("enrolment code: {}", node.enrolment_code());
//! node.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::SocketAddr;
use std::path::Path;

pub use vigil_net::{NodeIdentity, NodeServer, ServerConfig};
pub use vigil_node::{
    GrantRecord, InboxEntry, IssuedTicket, LabelError, MailboxInfo, Node, NodeConfig, NodeError,
    Revoked, SweepReport, TicketError, TicketRecord, TicketState,
};

use crate::{EnrolmentCode, TicketCode};

/// Any free port on the loopback interface.
const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Why a [`LocalNode`] did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created or its store opened.
    #[error("opening the node's data directory")]
    Node(#[from] NodeError),
    /// The identity, or the endpoint.
    #[error("starting the node's endpoint")]
    Net(#[from] crate::NetError),
    /// The runtime or the directory.
    #[error("starting the node")]
    Io(#[from] std::io::Error),
}

/// A node serving on its own runtime, so that a program that is not async
/// can start one, talk to it through [`crate::DeviceConnection`], and stop it.
#[derive(Debug)]
pub struct LocalNode {
    node: Node,
    code: EnrolmentCode,
    server: NodeServer,
    // Declared last: the server's tasks live on it, so it drops after them.
    runtime: tokio::runtime::Runtime,
}

impl LocalNode {
    /// Opens (or creates) the node in `dir` with the default settings,
    /// signing deletion receipts with its identity, and serves on `addr`
    /// (port 0 picks a free one).
    pub fn start(dir: &Path, addr: SocketAddr, config: ServerConfig) -> Result<Self, StartError> {
        Self::start_with(dir, addr, &NodeConfig::default(), config)
    }

    /// Opens (or creates) the node in `dir` with the default settings and
    /// serves on a free loopback port: a node for examples and tests, which
    /// reach it through [`LocalNode::enrolment_code`].
    pub fn start_on_loopback(dir: &Path) -> Result<Self, StartError> {
        Self::start(dir, LOOPBACK, ServerConfig::default())
    }

    /// As [`LocalNode::start`], with the node's own settings (retention,
    /// a fixed grant-key seed for reproducible tests and benches, ...).
    pub fn start_with(
        dir: &Path,
        addr: SocketAddr,
        node_config: &NodeConfig,
        config: ServerConfig,
    ) -> Result<Self, StartError> {
        std::fs::create_dir_all(dir)?;
        let identity = NodeIdentity::load_or_create(dir)?;
        let node = Node::open(dir, node_config)?.with_receipts(identity.signing());
        // Two workers are plenty for a handful of devices on loopback.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let server = runtime.block_on(NodeServer::spawn(
            &identity,
            addr,
            config,
            node.handler_factory(),
        ))?;
        let code = identity.enrolment_code(server.local_addr());
        Ok(LocalNode {
            node,
            code,
            server,
            runtime,
        })
    }

    /// The node's stores: its inbox, grants, mailboxes, sweep.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// What a resident scans to reach this node.
    pub fn enrolment_code(&self) -> &EnrolmentCode {
        &self.code
    }

    /// Staff register a resident: a one-time ticket for `label` (what the
    /// inbox will show with the resident's alerts), valid until
    /// `period_end_ms`, as the code the resident enrols with.
    pub fn issue_ticket(&self, label: &str, period_end_ms: i64) -> Result<TicketCode, TicketError> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let issued =
            self.node
                .relay()
                .issue_ticket(label, period_end_ms, now_ms, &mut crate::os_rng())?;
        Ok(TicketCode {
            node: self.code.clone(),
            ticket: issued.ticket,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Blocks until the process receives Ctrl-C.
    pub fn wait_for_ctrl_c(&self) -> std::io::Result<()> {
        self.runtime.block_on(tokio::signal::ctrl_c())
    }

    /// Stops serving: no new connections, requests in flight answered.
    pub fn shutdown(self) {
        let LocalNode {
            server, runtime, ..
        } = self;
        runtime.block_on(server.shutdown());
    }
}
