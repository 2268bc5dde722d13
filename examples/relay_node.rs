//! Run a community node on this machine and print its enrolment code:
//! `cargo run --example relay_node -- DATA_DIR [ADDR]` (ADDR defaults to
//! 127.0.0.1:4433). It relays, takes fever alerts, signs deletion receipts,
//! and sweeps expired vaults at start and every minute. Ctrl-C stops it.
//!
//! This is the node in a few dozen lines, as a library user would embed it.
//! Community staff run the `vigil-node` program instead (crates/vigil-cli:
//! `vigil-node serve`, `code`, `alerts`, `residents`, `sweep`).

use std::time::Duration;

use vigil::node::{LocalNode, ServerConfig};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

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
    let server = LocalNode::start(dir.as_ref(), addr, ServerConfig::default())?;
    println!(
        "sweep at start: {:?}",
        server.node().relay().sweep(now(), 0)?
    );
    println!("node listening on {}", server.local_addr());
    println!("enrolment code: {}", server.enrolment_code());

    // The sweep runs beside the server: it only needs the node's store.
    let node = server.node().clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(60));
            if let Err(e) = node.relay().sweep(now(), 0) {
                eprintln!("sweep: {e}");
            }
        }
    });
    server.wait_for_ctrl_c()?;
    println!("shutting down");
    server.shutdown();
    Ok(())
}
