//! A node endpoint on loopback for the transport tests, serving whatever
//! frame handler a test brings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_net::{EnrolmentCode, NodeIdentity, NodeServer, ServerConfig};
use vigil_proto::FrameHandler;

/// A node on its own tokio runtime (worker threads in the background).
pub(crate) struct Node {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) server: NodeServer,
    pub(crate) code: EnrolmentCode,
    _dir: tempfile::TempDir,
}

/// Starts a node with a fresh identity on a free loopback port, giving
/// each connection the handler `handler` makes.
pub(crate) fn start(
    config: ServerConfig,
    handler: impl Fn() -> Box<dyn FrameHandler> + Send + Sync + 'static,
) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let identity = NodeIdentity::load_or_create(dir.path()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = rt
        .block_on(NodeServer::spawn(
            &identity,
            addr,
            config,
            Arc::new(handler),
        ))
        .unwrap();
    let code = identity.enrolment_code(server.local_addr());
    Node {
        rt,
        server,
        code,
        _dir: dir,
    }
}

impl Node {
    /// Shuts the node down, which must not wait out the connections' idle
    /// timeout.
    pub(crate) fn stop(self) {
        let started = Instant::now();
        self.rt.block_on(self.server.shutdown());
        assert!(started.elapsed() < Duration::from_secs(6));
    }
}
