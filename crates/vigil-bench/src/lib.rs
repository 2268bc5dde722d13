//! Vigil's benchmarks at community scale (step 8).
//!
//! [`load`] is the load generator: it plays N residents, each with its own
//! vault and its own QUIC connection, through a compressed "realistic day"
//! against one node on this machine, and reports handshakes per second,
//! bundles per second, fever-alert latency under load, the node's memory and
//! disk, every refusal and error by kind, and a durability check (every
//! bundle the node acknowledged is read back and compared).
//!
//! [`attack`] runs the same residents while attackers flood the node (one
//! attack per scenario, each beside the unattacked run) and reports what
//! the honest residents and the node's memory and disk felt, and what
//! forgeries the node accepted.
//!
//! [`ffi`] measures the app boundary (issue 16): GATT decoding beside
//! same-run references, `record_gatt` against `record`, and `record`
//! through the Python binding against the Rust call.
//!
//! [`report`] runs every comparison the steps named side by side (the
//! workspace's benchmarks plus the simulation's seeds per second) and writes a
//! Markdown report with an SVG plot ([`svg`]) of sync time and bytes against
//! log size.
//!
//! The `vigil-bench` binary is a thin command line over this library
//! (`vigil-bench load --residents N ...`, `vigil-bench report`).
//!
//! # Running
//!
//! ```text
//! cargo build --release -p vigil-bench -p vigil-cli --bin vigil-bench --bin vigil-node
//! target/release/vigil-bench load --residents 1000 --json load-1000.json
//! target/release/vigil-bench attack --out docs/perf/attack.md
//! target/release/vigil-bench load --residents 10000 --day-seconds 600 --network-threads 2
//! target/release/vigil-bench load --residents 10000 --day-seconds 0 --network-threads 2
//! crates/vigil-bench/run-load.sh target/load-results     # every run of the step-8 table
//! ```
//!
//! For `load`, the node runs as its own process (the `vigil-node` program when it sits
//! next to `vigil-bench`, else `vigil-bench serve-node`, the relay_node
//! example's stack) in a fresh data directory, so its memory (VmRSS/VmHWM)
//! and disk (`du` of its data directory) are its own; `--in-process` runs it
//! inside the generator, `--node CODE` targets a running node. The exit code
//! is 1 if the node died or lost an acknowledged bundle.
//!
//! # Reading the numbers
//!
//! - The generator and the node share the machine's cores: at saturation
//!   (`--day-seconds 0`) the table gives the CPU each used, which says which
//!   one bounded the run. The schedule lag says whether the offered load was
//!   served on time.
//! - Residents' vaults live in memory ([`vigil_device::MemStorage`] and
//!   [`vigil_device::MemoryKeyStore`]) so that 10,000 fit; the node's store is
//!   the real one, on disk.
//! - By default residents connect through one shared
//!   [`vigil_net::ClientEndpoint`] (one socket); `--private-endpoints` gives
//!   each its own socket and runtime thread, as on a phone.
//! - UDP drops are read from `/proc/net`: machine-wide and at the node's
//!   socket. A burst of concurrent handshakes overflows default-sized (208 KiB)
//!   receive buffers, which costs the affected handshakes a 1 s
//!   retransmission: compare `--connect-concurrency 8` with the default 64.
//! - The node's resident memory depends on the allocator: with glibc's
//!   dynamic mmap threshold its heap fragments (peak RSS several times its
//!   live heap); `MALLOC_MMAP_THRESHOLD_=131072` in the environment (inherited
//!   by a node started here) shows the difference.
#![forbid(unsafe_code)]

pub mod attack;
pub mod ffi;
pub mod load;
pub mod report;
pub mod svg;
