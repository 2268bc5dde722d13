//! Run a community node (relay role) on this machine and print its
//! enrolment code: `cargo run --example relay_node -- DATA_DIR [ADDR]`
//! (ADDR defaults to 127.0.0.1:4433). Ctrl-C stops it gracefully.
//!
//! The full `vigil-node` program (alerts, operator commands) comes later;
//! this is the relay as the tests and benchmarks run it.

use std::sync::Arc;

use vigil_net::{NodeIdentity, NodeServer, ServerConfig};
use vigil_node::{MailboxStore, Relay, RelayConfig};
use vigil_proto::FrameHandler;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!(
            "usage: relay_node DATA_DIR [ADDR]   e.g. relay_node /tmp/vigil-node 127.0.0.1:4433"
        );
        std::process::exit(2);
    };
    let addr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:4433".into())
        .parse()?;
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir)?;
    let identity = NodeIdentity::load_or_create(&dir)?;
    let relay = Relay::new(
        MailboxStore::open(&dir.join("relay"))?,
        RelayConfig::default(),
    );
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let factory: Arc<dyn Fn() -> Box<dyn FrameHandler> + Send + Sync> =
            Arc::new(move || Box::new(relay.session()));
        let server = NodeServer::spawn(&identity, addr, ServerConfig::default(), factory).await?;
        println!("node listening on {}", server.local_addr());
        println!(
            "enrolment code: {}",
            identity.enrolment_code(server.local_addr())
        );
        tokio::signal::ctrl_c().await?;
        println!("shutting down");
        server.shutdown().await;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
