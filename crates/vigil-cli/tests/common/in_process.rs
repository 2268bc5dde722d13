//! A community node on loopback inside the test process (the relay's own
//! API for staff actions), for tests of the `vigil` program's network
//! commands.

use std::path::Path;

use super::{DAY, real_now, rfc3339, run, vigil};

/// A community node on loopback, in this process.
pub(crate) struct Node {
    pub(crate) code: String,
    pub(crate) relay: vigil_node::Relay,
    server: Option<vigil_net::NodeServer>,
    rt: tokio::runtime::Runtime,
}

impl Node {
    pub(crate) fn start(dir: &Path) -> Node {
        let identity = vigil_net::NodeIdentity::load_or_create(dir).unwrap();
        let config = vigil_node::NodeConfig {
            grant_key_seed: Some([7; 32]),
            ..Default::default()
        };
        let node = vigil_node::Node::open(dir, &config)
            .unwrap()
            .with_receipts(identity.signing());
        let relay = node.relay().clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let factory = node.handler_factory();
        let server = rt
            .block_on(vigil_net::NodeServer::spawn(
                &identity,
                "127.0.0.1:0".parse().unwrap(),
                vigil_net::ServerConfig::default(),
                factory,
            ))
            .unwrap();
        let code = identity.enrolment_code(server.local_addr()).to_string();
        Node {
            code,
            relay,
            server: Some(server),
            rt,
        }
    }
}

impl Node {
    /// Staff register a resident labelled `label`: the ticket (as text).
    pub(crate) fn ticket(&self, label: &str) -> String {
        let t = self
            .relay
            .issue_ticket(
                label,
                real_now() + 14 * DAY,
                real_now(),
                &mut vigil_crypto::rand_core::UnwrapErr(getrandom::SysRng),
            )
            .unwrap();
        let code: vigil_net::EnrolmentCode = self.code.parse().unwrap();
        vigil_net::TicketCode {
            node: code,
            ticket: t.ticket,
        }
        .to_string()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

/// The node checks periods against its real clock: the vault's period
/// starts two days ago at midnight UTC, and "now" is the real time.
pub(crate) fn live_vault(dir: &Path) -> i64 {
    let now = real_now();
    let start = now - now.rem_euclid(DAY) - 2 * DAY;
    run(vigil(dir), ["init", "--start", &rfc3339(start)]).ok();
    start
}
