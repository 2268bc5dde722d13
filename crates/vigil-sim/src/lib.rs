//! A deterministic simulation of one resident's devices and a community
//! node, in the spirit of FoundationDB's simulator: the real sans-I/O sync,
//! alert and shred code, a virtual clock, a faulty in-process network, and
//! device and node crashes — all driven by one seed. The same seed replays
//! the same run exactly; every run ends with its invariants checked and a
//! hash of its event log (the determinism check compares two runs' hashes).
//!
//! ```
//! use vigil_sim::{Scenario, SimConfig, run};
//! let config = SimConfig { seed: 7, steps: 120, scenario: Scenario::Week, ..SimConfig::default() };
//! let report = run(&config, &[]);
//! assert!(report.failures.is_empty(), "{:?}", report.failures);
//! ```
#![forbid(unsafe_code)]

mod canary;
mod config;
mod net;
mod storage;
mod world;

pub use config::{Bug, Invariant, Scenario, SimConfig, SimReport, Workload};
pub use world::{World, run};
