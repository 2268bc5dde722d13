//! Helpers shared by the integration tests: scanning what is left on disk.

#![allow(dead_code)] // Each test file uses its own subset.

use std::path::{Path, PathBuf};

/// Every file under `dir`, recursively (none if it does not exist).
pub(crate) fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Whether `needle` occurs in `hay`.
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

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
