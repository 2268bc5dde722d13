//! Helpers shared by Vigil's tests and benches (dev-only; only
//! dev-dependencies point here): the clocks, a period placed around now,
//! scanning a directory for plaintext, a node on loopback and vaults built
//! the way the tests build them.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
pub use vigil::node::LocalNode;
use vigil::node::{NodeConfig, ServerConfig};
use vigil::{
    Day, DeviceConnection, EnrolmentCode, FeverRule, FileKeyStore, MemStorage, MemoryKeyStore,
    Metric, NodeId, Period, SledStorage, TicketCode, Vault, X25519PublicKey,
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

/// The wristband's readings at minute `m` of a period (the step 2
/// workload, shared by the week test and the benches): temperature and
/// heart rate every call, SpO2 and respiratory rate when `m` is a multiple
/// of `oxygen_every`, steps when a multiple of `steps_every`; a fever on
/// day 3 (index 2) from 10:00 to 15:00, peaking at 38.5 °C.
pub fn wristband_readings(m: i64, oxygen_every: i64, steps_every: i64) -> Vec<(Metric, f64)> {
    let fever = m / 1440 == 2 && (600..900).contains(&(m % 1440));
    let temp = if fever { 38.2 } else { 36.5 } + (m % 7) as f64 * 0.05;
    let mut v = vec![
        (Metric::BodyTemperature, temp),
        (Metric::HeartRate, 60.0 + (m % 40) as f64),
    ];
    if m % oxygen_every == 0 {
        v.push((Metric::SpO2, 95.0 + (m % 5) as f64));
        v.push((Metric::RespiratoryRate, 12.0 + (m % 6) as f64));
    }
    if m % steps_every == 0 {
        v.push((Metric::Steps, ((m * 37) % 1500) as f64));
    }
    v
}

/// The identity of an in-process node whose X25519 key is `public`, for
/// tests that reach a relay without TLS: the certificate hash is a stand-in
/// derived from the key, so distinct keys make distinct nodes.
pub fn node_id(public: X25519PublicKey) -> NodeId {
    let cert = core::array::from_fn(|i| public.as_bytes()[i] ^ 0xce);
    NodeId::new(public, cert)
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
    LocalNode::start_on_loopback(dir).expect("the node starts")
}

/// A node on loopback with its data in `dir` and the given settings (a
/// fixed grant-key seed, say), keeping a copy of every request frame it
/// receives. Its identity is in `dir` too:
/// [`NodeIdentity::load_or_create`](vigil::node::NodeIdentity::load_or_create)
/// on `dir` returns it.
pub fn tapped_node_with(dir: &Path, node_config: &NodeConfig) -> (LocalNode, Tap) {
    let tap = Tap::default();
    let config = ServerConfig {
        frame_tap: Some(tap.clone()),
        ..ServerConfig::default()
    };
    let node =
        LocalNode::start_with(dir, loopback(), node_config, config).expect("the node starts");
    (node, tap)
}

fn loopback() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A connection to the node behind `code`.
pub fn connect(code: &EnrolmentCode) -> DeviceConnection {
    DeviceConnection::connect(code, Duration::from_secs(10)).expect("the node answers")
}

/// Staff register a resident labelled `label` at `node` for `vault`'s
/// period: the ticket the resident enrols with.
pub fn ticket(node: &LocalNode, vault: &Vault, label: &str) -> TicketCode {
    node.issue_ticket(label, vault.period().end_ms)
        .expect("staff issue a ticket")
}

/// Enrols `vault` with `node` for fever alerts under the default rule, with
/// a ticket staff issued for `label`, at `now_ms`; the connection stays
/// open for what the test sends next.
pub fn enrol(vault: &mut Vault, node: &LocalNode, label: &str, now_ms: i64) -> DeviceConnection {
    let t = ticket(node, vault, label);
    let mut conn = connect(&t.node);
    vault
        .enrol(
            &mut conn,
            &t.node.node_public,
            &t.ticket,
            FeverRule::default(),
            now_ms,
        )
        .expect("the node takes the grant");
    conn
}

/// Registers `vault`'s mailbox at `node` with a ticket (no grant), so that
/// it may sync there; returns the connection.
pub fn register(vault: &mut Vault, node: &LocalNode) -> DeviceConnection {
    let t = ticket(node, vault, "a resident");
    let mut conn = connect(&t.node);
    vault
        .redeem_ticket(&mut conn, &t.ticket)
        .expect("the node takes the ticket");
    conn
}

/// A vault on disk in `dir`, made as an app makes one ([`Vault::create`]),
/// with its root in memory: for tests and benches that reopen the store.
pub fn disk_vault(dir: &Path, period: Period, seed: u64) -> (Vault, MemoryKeyStore) {
    let keys = MemoryKeyStore::new();
    let vault = Vault::create(dir, period, Box::new(keys.clone()), &mut rng(seed))
        .expect("a vault on disk");
    (vault, keys)
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

/// A device's store on disk in `dir/NAME/vault` and its root's key file
/// `dir/NAME.key`, for [`Vault::create_with`] or [`Vault::join`]; nothing
/// else is written under `dir/NAME`, so a test can check what a shred
/// leaves there.
pub fn sled_home(dir: &Path, name: &str) -> (SledStorage, FileKeyStore) {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).expect("the device's directory");
    let keys = FileKeyStore::new(dir.join(format!("{name}.key")));
    let storage = SledStorage::open(&home.join("vault")).expect("the store opens");
    (storage, keys)
}

/// A vault on disk in `dir/NAME/vault`, its root in `dir/NAME.key` (see
/// [`sled_home`]).
pub fn sled_vault(dir: &Path, name: &str, period: Period, seed: u64) -> (Vault, FileKeyStore) {
    let (storage, keys) = sled_home(dir, name);
    let vault = Vault::create_with(
        Box::new(storage),
        period,
        Box::new(keys.clone()),
        &mut rng(seed),
    )
    .expect("a vault on disk");
    (vault, keys)
}

/// The seed of a randomised test: `$VAR` if set (to replay a failure), else
/// the clock. It is printed as "`WHAT` seed N (replay with VAR=N)", since
/// only the failing run knows it.
pub fn seed_from_env(var: &str, what: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{what} seed {seed} (replay with {var}={seed})");
    seed
}

/// A test re-run as a child process that the parent kills at a chosen
/// moment: this same test binary, running only one test, which finds its
/// directory in an environment variable (crash-safety tests).
#[derive(Debug)]
pub struct TestChild {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl TestChild {
    /// Runs the test `name` of this binary with `var` set to `dir`, its
    /// stdout piped to the parent and its stderr dropped.
    pub fn spawn(name: &str, var: &str, dir: &Path) -> TestChild {
        let exe = std::env::current_exe().expect("the test binary");
        let mut child = Command::new(exe)
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(var, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the child starts");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        TestChild { child, stdout }
    }

    /// Reads lines until one satisfies `wanted`, and returns it; `None` if
    /// the child exits first.
    pub fn wait_for_line(&mut self, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let mut line = String::new();
        while !wanted(&line) {
            line.clear();
            if self
                .stdout
                .read_line(&mut line)
                .expect("the child's stdout")
                == 0
            {
                return None;
            }
        }
        Some(line)
    }

    /// Kills the child (SIGKILL on Unix, so nothing of it runs after) and
    /// returns what it printed that was not read yet.
    pub fn kill(mut self) -> String {
        self.child.kill().expect("the child is killed");
        self.child.wait().expect("the child is reaped");
        let mut rest = String::new();
        self.stdout
            .read_to_string(&mut rest)
            .expect("the child's stdout");
        rest
    }
}

/// Files of the resident's own, to plant where a vault is asked to live:
/// no Vigil operation may touch them (init refuses, shred skips them).
pub const FOREIGN_FILES: [(&str, &str); 2] = [
    ("thesis/ch1.txt", "Chapter 1. Four years of work."),
    ("notes.txt", "call the landlord"),
];

/// Plants [`FOREIGN_FILES`] in `dir`.
pub fn put_foreign_files(dir: &Path) {
    for (name, text) in FOREIGN_FILES {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().expect("a file under dir")).expect("plant a dir");
        std::fs::write(p, text).expect("plant a file");
    }
}

/// Asserts every one of [`FOREIGN_FILES`] is still in `dir`, unchanged.
#[track_caller]
pub fn assert_foreign_files_intact(dir: &Path) {
    for (name, text) in FOREIGN_FILES {
        let got = std::fs::read_to_string(dir.join(name));
        assert_eq!(got.ok().as_deref(), Some(text), "{name} in {dir:?}");
    }
}
