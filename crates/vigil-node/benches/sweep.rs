//! Node sweep time for many expired vaults (step 5).
//!
//! `cargo bench -p vigil-node --bench sweep` registers 10,000 vaults (each
//! with a mailbox and one 302-byte bundle), all past their period, plus 100
//! live ones, and times one `sweep`. Without `--bench`: 100 vaults.

use std::time::Instant;

use vigil_node::{MailboxInfo, MailboxStore, Relay, RelayConfig};
use vigil_proto::BundleItem;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: u32 = if full { 10_000 } else { 100 };
    let tmp = tempfile::tempdir().unwrap();
    let store = MailboxStore::open(tmp.path()).unwrap();
    let vault = |i: u32, expires_ms: i64| {
        let mut v = [0u8; 16];
        v[..4].copy_from_slice(&i.to_be_bytes());
        let info = MailboxInfo {
            verifier: [1; 32],
            expires_ms,
            bytes: 302,
            blobs: 1,
        };
        store.put_mailbox(&v, &info).unwrap();
        let b = BundleItem {
            device: [2; 16],
            seq: 1,
            blob: vec![0x5a; 302],
        };
        store.append(&v, &b, &info).unwrap();
    };
    for i in 0..n {
        vault(i, 1_000);
    }
    for i in n..n + 100 {
        vault(i, i64::MAX);
    }
    let relay = Relay::new(store, RelayConfig::default());
    let t = Instant::now();
    let r = relay.sweep(2_000, 0).unwrap();
    let took = t.elapsed();
    assert_eq!(r.mailboxes, u64::from(n));
    assert_eq!(relay.store().vaults().unwrap().len(), 100);
    println!(
        "| node sweep of {n} expired vaults (100 live kept) | {:.0} ms ({:.0} vaults/s) |",
        took.as_secs_f64() * 1e3,
        f64::from(n) / took.as_secs_f64()
    );
    println!(
        "figure: sweep_vaults_per_s {:.0}",
        f64::from(n) / took.as_secs_f64()
    );
}
