//! Helpers shared by the integration tests: the device crate's helpers for
//! scanning what is left on disk, and the period placed around now.

#![allow(dead_code)] // Each test file uses its own subset.

#[path = "../../crates/vigil-device/tests/common/mod.rs"]
mod disk;
pub(crate) use disk::{contains, files};

/// The node checks periods against its real clock, so tests that go through
/// a real node place the period around now: it starts at midnight UTC two
/// days ago.
pub(crate) fn period_start() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    now - now.rem_euclid(86_400_000) - 2 * 86_400_000
}
