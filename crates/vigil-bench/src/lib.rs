//! Vigil's benchmarks at community scale (step 8).
//!
//! [`load`] is the load generator: it plays N residents, each with its own
//! vault and its own QUIC connection, through a compressed "realistic day"
//! against one node on this machine, and reports handshakes per second,
//! bundles per second, fever-alert latency under load, the node's memory and
//! disk, every refusal and error by kind, and a durability check (every
//! bundle the node acknowledged is read back and compared).
//!
//! [`report`] runs every comparison the steps named side by side (the
//! workspace's benchmarks plus the simulation's seeds per second) and writes a
//! Markdown report with an SVG plot ([`svg`]) of sync time and bytes against
//! log size.
//!
//! The `vigil-bench` binary is a thin command line over this library
//! (`vigil-bench load --residents N ...`, `vigil-bench report`).
#![forbid(unsafe_code)]

pub mod load;
pub mod report;
pub mod svg;
