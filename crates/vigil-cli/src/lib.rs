//! Shared code of the `vigil` (resident) and `vigil-node` (community node)
//! programs. The programs are thin: every behaviour lives in the library
//! crates; this crate parses arguments, reads the clock and prints.

mod common;
pub mod node;
pub mod resident;

/// Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not an
/// API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// The resident CLI's state file (`vigil-cli.json`), and the node code it
    /// remembers: garbage is refused, never a panic.
    pub fn state_file(bytes: &[u8]) {
        if let Some(state) = crate::resident::context::parse_state(bytes)
            && let Some(code) = state.node
        {
            let _ = crate::resident::context::parse_node_code(&code);
        }
    }
}
