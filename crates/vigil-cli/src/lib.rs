//! Shared code of the `vigil` (resident) and `vigil-node` (community node)
//! programs. The programs are thin: every behaviour lives in the library
//! crates; this crate parses arguments, reads the clock and prints.

mod common;
pub mod node;
pub mod resident;
