//! Closing a vault (issue 19, open against Automerge's load): an explicit
//! close folds what waits in the journal and compacts the chunks stored
//! since the last snapshot, so the next open loads one document instead of
//! a snapshot followed by changes that Automerge applies one object walk at
//! a time. A vault dropped without a close (a kill) writes nothing more.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_device::{
    Batch, Entries, MemStorage, MemoryKeyStore, Period, Storage, StorageError, Vault,
};
use vigil_log::{Metric, Reading, Unit};
use vigil_testkit::disk_vault;

const START: i64 = 1_790_035_200_000;
const MIN: i64 = 60_000;

/// 300 readings: the 256th folds them into one stored chunk (under the
/// 16 KiB that compacts by itself), and 44 wait in the journal.
fn record_300(vault: &mut Vault) {
    for i in 0..300 {
        vault
            .record(
                Metric::HeartRate,
                60.0 + (i % 40) as f64,
                Unit::BeatsPerMinute,
                START + i * MIN,
            )
            .unwrap();
    }
}

fn all(vault: &Vault) -> Vec<Reading> {
    vault.log().readings(None, i64::MIN, i64::MAX, true)
}

/// The resident closes the app: the next open finds one snapshot, no chunk
/// after it and no journal entry, and every reading with its id.
#[test]
fn a_closed_vault_reopens_from_one_document() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let (mut vault, keys) = disk_vault(&dir, Period::days(START, 7), 1);
    record_300(&mut vault);
    assert_eq!(
        vault.pending_chunks(),
        1,
        "the setup leaves a chunk pending"
    );
    assert_eq!(vault.pending_readings(), 44, "and readings in the journal");
    vault.fold().unwrap();
    let before = all(&vault);
    vault.close().unwrap();

    let mut vault = Vault::open_at(&dir, &keys, START).unwrap();
    assert_eq!(vault.pending_chunks(), 0, "no chunk left to apply at open");
    assert_eq!(vault.pending_readings(), 0, "no journal left to replay");
    assert_eq!(all(&vault), before);
    // The vault goes on as before: the next reading is recorded and stays.
    vault
        .record(
            Metric::HeartRate,
            70.0,
            Unit::BeatsPerMinute,
            START + 400 * MIN,
        )
        .unwrap();
    drop(vault);
    let vault = Vault::open_at(&dir, &keys, START).unwrap();
    assert_eq!(vault.log().len(), 301);
}

/// Readings still in the journal at close are folded and compacted too.
#[test]
fn close_folds_the_journal_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let (mut vault, keys) = disk_vault(&dir, Period::days(START, 7), 1);
    record_300(&mut vault);
    let ids: Vec<_> = vault.log().staged().iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 44);
    vault.close().unwrap();
    let vault = Vault::open_at(&dir, &keys, START).unwrap();
    assert_eq!((vault.pending_chunks(), vault.pending_readings()), (0, 0));
    for id in ids {
        assert!(vault.log().reading(id).is_some(), "{id} lost at close");
    }
    assert_eq!(vault.log().len(), 300);
}

/// Pins the other way out: a vault dropped without a close (what a kill
/// leaves) writes nothing more, and the next open loads the snapshot, the
/// chunk after it and the journal, losing nothing.
#[test]
fn a_vault_dropped_without_close_writes_nothing_more() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let (mut vault, keys) = disk_vault(&dir, Period::days(START, 7), 1);
    record_300(&mut vault);
    drop(vault);
    let vault = Vault::open_at(&dir, &keys, START).unwrap();
    assert_eq!(vault.pending_chunks(), 1);
    assert_eq!(vault.pending_readings(), 44);
    assert_eq!(vault.log().len(), 300);
}

/// A close whose snapshot cannot be written returns the error, and loses
/// nothing: the next open loads what was stored before.
#[test]
fn a_close_that_cannot_write_its_snapshot_loses_nothing() {
    let keys = MemoryKeyStore::new();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let store = Failing::default();
    let mut vault = Vault::create_with(
        Box::new(store.clone()),
        Period::days(START, 7),
        Box::new(keys.clone()),
        &mut rng,
    )
    .unwrap();
    record_300(&mut vault);
    vault.fold().unwrap();
    let before = all(&vault);
    let pending = vault.pending_chunks();
    assert!(pending > 0);
    store.fail_blobs.store(true, Ordering::SeqCst);
    assert!(
        vault.close().is_err(),
        "the failed snapshot write is reported"
    );
    store.fail_blobs.store(false, Ordering::SeqCst);
    let vault = Vault::open_with(Box::new(store), &keys, &mut rng).unwrap();
    assert_eq!(
        vault.pending_chunks(),
        pending,
        "the chunks are still there"
    );
    assert_eq!(all(&vault), before);
}

/// An in-memory disk shared with the reopening, whose blob writes (the
/// snapshot) can be made to fail.
#[derive(Debug, Clone, Default)]
struct Failing {
    mem: Arc<Mutex<MemStorage>>,
    fail_blobs: Arc<AtomicBool>,
}

impl Storage for Failing {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.mem.lock().unwrap().get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StorageError> {
        self.mem.lock().unwrap().scan_prefix(prefix)
    }
    fn apply(&mut self, batch: Batch) -> Result<(), StorageError> {
        self.mem.lock().unwrap().apply(batch)
    }
    fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.mem.lock().unwrap().get_blob(name)
    }
    fn put_blob(&mut self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        if self.fail_blobs.load(Ordering::SeqCst) {
            return Err(StorageError::Io(std::io::Error::other("disk full")));
        }
        self.mem.lock().unwrap().put_blob(name, value)
    }
    fn tombstone(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.mem.lock().unwrap().tombstone()
    }
    fn put_tombstone(&mut self, value: &[u8]) -> Result<(), StorageError> {
        self.mem.lock().unwrap().put_tombstone(value)
    }
    fn destroy(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
}

/// The child of [`a_kill_during_close_loses_nothing`]: records a few
/// readings, closes, reopens, and again, until killed, printing `ok <id>`
/// after each durable record, so kills land inside closes too.
#[test]
fn close_child() {
    let Ok(dir) = std::env::var("VIGIL_CLOSE_CHILD") else {
        return; // Only meaningful when spawned by the test below.
    };
    let dir = std::path::Path::new(&dir);
    let keys = vigil_device::FileKeyStore::new(dir.join("root.key"));
    let store = dir.join("vault");
    let mut out = std::io::stdout().lock();
    loop {
        let mut vault = match Vault::open_at(&store, &keys, START) {
            Ok(v) => v,
            Err(_) => {
                let mut rng = ChaCha20Rng::seed_from_u64(7);
                Vault::create(
                    &store,
                    Period::days(START, 7),
                    Box::new(keys.clone()),
                    &mut rng,
                )
                .unwrap()
            }
        };
        // Folds every 13 readings, no compaction but the close's.
        vault.set_fold_every(13);
        vault.set_compact_every(1_000_000);
        let n = vault.log().len() as i64;
        for i in n..n + 30 {
            let id = vault
                .record(
                    Metric::HeartRate,
                    60.0 + (i % 100) as f64,
                    Unit::BeatsPerMinute,
                    START + i * 1000,
                )
                .unwrap();
            use std::io::Write;
            writeln!(out, "ok {id}").unwrap();
            out.flush().unwrap();
        }
        vault.close().unwrap();
        use std::io::Write;
        writeln!(out, "closed").unwrap();
        out.flush().unwrap();
    }
}

/// A kill -9 at any moment, inside a close's fold or compaction too, loses
/// no acknowledged reading: the close's compaction is the ordinary one.
/// Every other round kills in the few milliseconds after a close, while
/// the next open runs sled's recovery, which writes sled's snapshot file
/// (a kill there once left a store that did not open).
#[test]
fn a_kill_during_close_loses_nothing() {
    use rand_chacha::rand_core::Rng;
    sled_warnings_to_stderr();
    let tmp = tempfile::tempdir().unwrap();
    let seed = vigil_testkit::seed_from_env("VIGIL_CLOSE_SEED", "close kill test");
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut acked = Vec::new();
    let mut closes = 0;
    for round in 0..20 {
        let mut child =
            vigil_testkit::TestChild::spawn("close_child", "VIGIL_CLOSE_CHILD", tmp.path());
        let first = child
            .wait_for_line(|l| l.starts_with("ok "))
            .unwrap_or_else(|| panic!("round {round} (seed {seed}): child exited"));
        acked.push(first.trim_end()["ok ".len()..].to_owned());
        if round % 2 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1 + rng.next_u64() % 150));
        } else {
            // Into the open after a close (~5-10 ms on a debug build).
            let read = std::cell::RefCell::new(Vec::new());
            child
                .wait_for_line(|l| {
                    if let Some(id) = l.trim_end().strip_prefix("ok ") {
                        read.borrow_mut().push(id.to_owned());
                    }
                    l == "closed\n"
                })
                .unwrap_or_else(|| panic!("round {round} (seed {seed}): child exited"));
            acked.extend(read.into_inner());
            closes += 1;
            std::thread::sleep(std::time::Duration::from_micros(rng.next_u64() % 12_000));
        }
        let rest = child.kill();
        let mut lines: Vec<&str> = rest.split('\n').collect();
        lines.pop(); // empty, or torn by the kill
        acked.extend(
            lines
                .iter()
                .filter_map(|l| l.strip_prefix("ok "))
                .map(String::from),
        );
        closes += lines.iter().filter(|l| **l == "closed").count();
        let vault = Vault::open_at(
            &tmp.path().join("vault"),
            &vigil_device::FileKeyStore::new(tmp.path().join("root.key")),
            START,
        )
        .unwrap_or_else(|e| {
            panic!(
                "round {round} (seed {seed}): does not open: {e}\nits files: {}",
                keep_on_failure(tmp.path())
            )
        });
        let present: std::collections::HashSet<String> =
            all(&vault).iter().map(|r| r.id.to_string()).collect();
        for id in &acked {
            assert!(
                present.contains(id),
                "round {round} (seed {seed}): {id} lost"
            );
        }
    }
    assert!(closes > 0, "the children closed the vault (seed {seed})");
    eprintln!("{closes} closes, {} readings acknowledged", acked.len());
}

/// What a failed round leaves, for its report: the store's files with
/// their sizes, and with `VIGIL_CLOSE_KEEP=<dir>` a copy of the whole
/// directory there (the temporary one is deleted as the test unwinds).
fn keep_on_failure(dir: &std::path::Path) -> String {
    fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path.strip_prefix(base).unwrap_or(&path).display();
            match e.metadata() {
                Ok(m) if m.is_dir() => walk(&path, base, out),
                Ok(m) => out.push(format!("{rel} ({} B)", m.len())),
                Err(_) => out.push(format!("{rel} (?)")),
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    let mut report = files.join(", ");
    if let Some(keep) = std::env::var_os("VIGIL_CLOSE_KEEP") {
        let keep = std::path::Path::new(&keep).join(format!("kept-{}", std::process::id()));
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(dir)
            .arg(&keep)
            .status();
        report.push_str(&format!("\nkept in {} ({copied:?})", keep.display()));
    }
    report
}

/// sled reports through the `log` crate which of its files it refused
/// (its snapshot, a segment, its config); the test shows it on stderr.
fn sled_warnings_to_stderr() {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, m: &log::Metadata) -> bool {
            m.level() <= log::Level::Warn
        }
        fn log(&self, r: &log::Record) {
            if self.enabled(r.metadata()) {
                eprintln!("[{} {}] {}", r.level(), r.target(), r.args());
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    // Another test of this binary may have set it already: either is fine.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

/// The device's id as the store keeps it beside its snapshot (not secret:
/// sled's metadata holds it in the clear too).
fn device_file(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("vigil-device.blob")
}

/// An open loads the snapshot while sled opens its files, which needs the
/// device's id before sled can give it: a new vault writes it beside the
/// snapshot, and a close writes it for a store made by an older build.
#[test]
fn the_device_id_is_kept_beside_the_snapshot_for_the_next_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let (mut vault, keys) = disk_vault(&dir, Period::days(START, 7), 1);
    let device = vault.device_id();
    assert_eq!(std::fs::read(device_file(&dir)).unwrap(), device.0);
    record_300(&mut vault);
    let before = all(&vault);
    vault.close().unwrap();
    // A store from a build that did not write it.
    std::fs::remove_file(device_file(&dir)).unwrap();
    let vault = Vault::open_at(&dir, &keys, START).unwrap();
    assert_eq!(all(&vault), before);
    vault.close().unwrap();
    assert_eq!(std::fs::read(device_file(&dir)).unwrap(), device.0);
    let vault = Vault::open_at(&dir, &keys, START).unwrap();
    assert_eq!((vault.device_id(), all(&vault)), (device, before));
}

/// The id beside the snapshot is a hint, never trusted: another device's
/// id or garbage there opens the vault as the store's metadata says, with
/// every reading, and the vault goes on recording as itself.
#[test]
fn a_wrong_device_id_beside_the_snapshot_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let (mut vault, keys) = disk_vault(&dir, Period::days(START, 7), 1);
    let device = vault.device_id();
    record_300(&mut vault);
    let before = all(&vault);
    vault.close().unwrap();
    for hint in [vec![0x5a; 16], vec![1, 2, 3], Vec::new()] {
        std::fs::write(device_file(&dir), &hint).unwrap();
        let vault = Vault::open_at(&dir, &keys, START).unwrap();
        assert_eq!((vault.device_id(), all(&vault)), (device, before.clone()));
    }
    let mut vault = Vault::open_at(&dir, &keys, START).unwrap();
    let id = vault
        .record(
            Metric::HeartRate,
            71.0,
            Unit::BeatsPerMinute,
            START + 500 * MIN,
        )
        .unwrap();
    assert_eq!(id.device, device);
    drop(vault);
    let vault = Vault::open_at(&dir, &keys, START).unwrap();
    assert_eq!(vault.log().reading(id).map(|r| r.id), Some(id));
}

/// sled's committed snapshot files in `dir` (`snap.<lsn>`, 16 hex digits),
/// the newest last.
fn sled_snapshots(dir: &std::path::Path) -> Vec<(u64, std::path::PathBuf)> {
    let mut snaps: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let lsn = u64::from_str_radix(name.strip_prefix("snap.")?, 16).ok()?;
            Some((lsn, p))
        })
        .collect();
    snaps.sort();
    snaps
}

/// A closed vault with 300 readings, reopened once so that sled has
/// written a snapshot of its own (sled writes one only while it opens).
fn closed_vault_with_a_sled_snapshot(
    dir: &std::path::Path,
) -> (Vec<Reading>, vigil_device::MemoryKeyStore, u64) {
    let (mut vault, keys) = disk_vault(dir, Period::days(START, 7), 1);
    record_300(&mut vault);
    vault.close().unwrap();
    let vault = Vault::open_at(dir, &keys, START).unwrap();
    let before = all(&vault);
    assert_eq!(before.len(), 300);
    drop(vault);
    let snaps = sled_snapshots(dir);
    let (lsn, _) = snaps.last().expect("sled wrote a snapshot at open");
    (before, keys, *lsn)
}

/// A kill while sled writes its snapshot during an open (sled 0.34.7
/// writes `snap.<lsn>.generating`, fsyncs it, then renames it) leaves the
/// new file empty or torn beside the committed `snap.<older lsn>`. sled's
/// own recovery then reads the torn file, as its name sorts last, and
/// refuses the store as corrupted, though nothing committed is damaged:
/// the resident would find a vault that does not open after a power cut
/// or a kill while the app starts. Every reading must come back instead.
#[test]
fn a_sled_snapshot_torn_by_a_kill_during_open_is_not_read() {
    sled_warnings_to_stderr();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let (before, keys, lsn) = closed_vault_with_a_sled_snapshot(&dir);
    let committed = std::fs::read(&sled_snapshots(&dir).last().unwrap().1).unwrap();
    // Killed right after the create, then part way through the write.
    for torn in [Vec::new(), committed[..committed.len() / 2].to_vec()] {
        let generating = dir.join(format!("snap.{:016X}.generating", lsn + 4096));
        std::fs::write(&generating, &torn).unwrap();
        let vault = Vault::open_at(&dir, &keys, START).unwrap_or_else(|e| {
            panic!(
                "a torn {} B snapshot left by a kill: {e}\nits files: {}",
                torn.len(),
                keep_on_failure(&dir)
            )
        });
        assert_eq!(all(&vault), before, "every reading is back");
        drop(vault);
        assert!(!generating.exists(), "the torn file is gone");
    }
}

/// The torn file is removed only while no other open holds the store: a
/// snapshot another open is writing is its own, half written on purpose.
/// And a committed snapshot that is damaged is still damage, reported as
/// such (for `vigil recover`), never set aside silently.
#[test]
fn only_an_abandoned_sled_snapshot_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let (before, keys, lsn) = closed_vault_with_a_sled_snapshot(&dir);
    let generating = dir.join(format!("snap.{:016X}.generating", lsn + 4096));

    let holder = Vault::open_at(&dir, &keys, START).unwrap();
    std::fs::write(&generating, b"").unwrap();
    let second = Vault::open_waiting(
        &dir,
        &keys,
        START,
        std::time::Duration::from_millis(100),
        &mut |_| {},
    );
    assert!(
        matches!(
            second,
            Err(vigil_device::OpenError::Storage(
                StorageError::Locked { .. }
            ))
        ),
        "the store is in use"
    );
    assert!(
        generating.exists(),
        "a file of the open that holds the store"
    );
    drop(holder);
    std::fs::remove_file(&generating).unwrap();

    // The newest committed snapshot cut short: sled's data, damaged.
    let (_, newest) = sled_snapshots(&dir).pop().unwrap();
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    match Vault::open_at(&dir, &keys, START) {
        Err(vigil_device::OpenError::Corrupt(_)) => {}
        Err(e) => panic!("a damaged committed snapshot: {e}"),
        Ok(v) => panic!(
            "a damaged committed snapshot opened, {} readings",
            all(&v).len()
        ),
    }
    assert!(newest.exists(), "left where it is, for recover");
    std::fs::write(&newest, &bytes).unwrap();
    let vault = Vault::open_at(&dir, &keys, START).unwrap();
    assert_eq!(all(&vault), before);
}
