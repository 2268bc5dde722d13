//! Run a community node on this machine and print its enrolment code:
//! `cargo run --example relay_node -- DATA_DIR [ADDR]` (ADDR defaults to
//! 127.0.0.1:4433). It relays, takes fever alerts, signs deletion receipts,
//! and sweeps expired vaults at start and every minute. Ctrl-C stops it.
//!
//! This is the node in a few dozen lines, as a library user would embed it.
//! Community staff run the `vigil-node` program instead (crates/vigil-cli:
//! `vigil-node serve`, `code`, `alerts`, `residents`, `sweep`).

use vigil_net::{NodeIdentity, NodeServer, ServerConfig};
use vigil_node::{Node, NodeConfig};

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
    let node = Node::open(&dir, &NodeConfig::default())?.with_receipts(identity.signing());
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    };
    println!("sweep at start: {:?}", node.sweep(now(), 0)?);
    let sweeper = node.clone();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let server = NodeServer::spawn(
            &identity,
            addr,
            ServerConfig::default(),
            node.handler_factory(),
        )
        .await?;
        println!("node listening on {}", server.local_addr());
        println!(
            "enrolment code: {}",
            identity.enrolment_code(server.local_addr())
        );
        let sweeping = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                let s = sweeper.clone();
                let _ = tokio::task::spawn_blocking(move || s.sweep(now(), 0)).await;
            }
        });
        tokio::signal::ctrl_c().await?;
        sweeping.abort();
        println!("shutting down");
        server.shutdown().await;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
