//! Helpers shared by Vigil's tests and benches (dev-only; only
//! dev-dependencies point here): the clocks, a period placed around now,
//! scanning a directory for plaintext, a node on loopback and vaults built
//! the way the tests build them.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil::node::{LocalNode, ServerConfig};
use vigil::{
    Day, DeviceConnection, EnrolmentCode, FileKeyStore, MemStorage, MemoryKeyStore, Period,
    SledStorage, Vault,
};

/// A minute, in ms.
pub const MIN: i64 = 60_000;
/// An hour, in ms.
pub const HOUR: i64 = 60 * MIN;
/// A day, in ms.
pub const DAY: i64 = 24 * HOUR;

/// Real time, ms since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The node checks periods against its real clock, so tests that go through
/// a real node place the period around now: it starts at midnight UTC two
/// days ago.
pub fn period_start() -> i64 {
    let now = now_ms();
    now - now.rem_euclid(DAY) - 2 * DAY
}

/// The civil date (UTC) of `ms`, as `YYYY-MM-DD`.
pub fn date(ms: i64) -> String {
    let (y, m, d) = Day::of(ms).ymd();
    format!("{y}-{m:02}-{d:02}")
}

/// Every file under `dir`, recursively and sorted (none if it does not
/// exist).
pub fn files(dir: &Path) -> Vec<PathBuf> {
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
    out.sort();
    out
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The files under `dir` in which `needle` appears in plaintext.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|f| std::fs::read(f).is_ok_and(|b| contains(&b, needle)))
        .collect()
}

/// A seeded RNG, so a failing test replays.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Every request frame a node received (the "attacker's copy").
pub type Tap = Arc<Mutex<Vec<Vec<u8>>>>;

/// A node on loopback with its data in `dir`, keeping a copy of every
/// request frame it receives.
pub fn tapped_node(dir: &Path) -> (LocalNode, Tap) {
    let tap = Tap::default();
    let config = ServerConfig {
        frame_tap: Some(tap.clone()),
        ..ServerConfig::default()
    };
    let node = LocalNode::start(dir, loopback(), config).expect("the node starts");
    (node, tap)
}

/// A node on loopback with its data in `dir`.
pub fn node(dir: &Path) -> LocalNode {
    LocalNode::start(dir, loopback(), ServerConfig::default()).expect("the node starts")
}

fn loopback() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A connection to the node behind `code`.
pub fn connect(code: &EnrolmentCode) -> DeviceConnection {
    DeviceConnection::connect(code, Duration::from_secs(10)).expect("the node answers")
}

/// A vault in memory over `period`, with its key store.
pub fn mem_vault(period: Period, seed: u64) -> (Vault, MemoryKeyStore) {
    let keys = MemoryKeyStore::new();
    let vault = Vault::create_with(
        Box::new(MemStorage::new()),
        period,
        Box::new(keys.clone()),
        &mut rng(seed),
    )
    .expect("a vault in memory");
    (vault, keys)
}

/// A vault on disk in `dir/NAME/vault`, its root in `dir/NAME.key`.
pub fn sled_vault(dir: &Path, name: &str, period: Period, seed: u64) -> (Vault, FileKeyStore) {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).expect("the device's directory");
    let keys = FileKeyStore::new(dir.join(format!("{name}.key")));
    let storage = SledStorage::open(&home.join("vault")).expect("the store opens");
    let vault = Vault::create_with(
        Box::new(storage),
        period,
        Box::new(keys.clone()),
        &mut rng(seed),
    )
    .expect("a vault on disk");
    (vault, keys)
}
