//! The FFI layer played by a buggy or hostile app (issue 16, "Bad input"):
//! non-finite and extreme numbers, extreme times, 10 MB GATT packets, 1 MB
//! and NUL-bearing directory strings, a key store that returns garbage or
//! panics, degenerate periods, and two app threads or two `Vault` objects on
//! one directory. Each gets a typed error, never a panic or a hang, and
//! loses nothing: the vault opens afterwards with what it held.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use vigil_ffi::{KeyStore, KeyStoreError, Metric, OpenError, Vault, WriteError};

/// What the app's key store does on `load` and `store`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Honest,
    /// `load` returns no bytes at all.
    Empty,
    /// `load` returns 1 MB.
    Huge,
    /// `load` returns 32 bytes that are not this vault's key.
    Foreign,
    /// Every call panics (a bug in a Rust-side key store).
    Panic,
    /// `store` and `destroy_key` say Ok and do nothing (what a Python key store
    /// raising `KeyboardInterrupt` looks like from Rust: the generated
    /// callback swallows it and reports success).
    Silent,
}

#[derive(Debug)]
struct AppKeys {
    key: Mutex<Option<Vec<u8>>>,
    mode: Mutex<Mode>,
}

impl AppKeys {
    fn new() -> Arc<Self> {
        Arc::new(AppKeys {
            key: Mutex::new(None),
            mode: Mutex::new(Mode::Honest),
        })
    }
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }
    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl KeyStore for AppKeys {
    fn load(&self) -> Result<Option<Vec<u8>>, KeyStoreError> {
        let key = self.key.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match self.mode() {
            Mode::Honest => Ok(key),
            Mode::Empty => Ok(Some(Vec::new())),
            Mode::Huge => Ok(Some(vec![0xA5; 1 << 20])),
            Mode::Foreign => Ok(Some(vec![7; 32])),
            Mode::Panic => panic!("the app's key store has a bug"),
            Mode::Silent => Ok(key),
        }
    }
    fn store(&self, root: Vec<u8>) -> Result<(), KeyStoreError> {
        match self.mode() {
            Mode::Panic => panic!("the app's key store has a bug"),
            Mode::Silent => return Ok(()),
            _ => {}
        }
        let mut key = self.key.lock().unwrap_or_else(|p| p.into_inner());
        if key.is_some() {
            return Err(KeyStoreError::Occupied {
                detail: "test".into(),
            });
        }
        *key = Some(root);
        Ok(())
    }
    fn destroy_key(&self) -> Result<(), KeyStoreError> {
        match self.mode() {
            Mode::Panic => panic!("the app's key store has a bug"),
            Mode::Silent => return Ok(()),
            _ => {}
        }
        self.key.lock().unwrap_or_else(|p| p.into_inner()).take();
        Ok(())
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// A week that began yesterday, so `open` (which reads the system clock)
/// does not shred it.
fn create(dir: &std::path::Path, keys: &Arc<AppKeys>) -> (Arc<Vault>, i64) {
    let start = now_ms() - 86_400_000;
    let vault = Vault::create(path(dir), start, 7, keys.clone()).unwrap();
    (vault, start)
}

/// Temperature Measurement, °C, no time stamp: FLOAT 376 × 10^-1.
const TEMP_37_6: [u8; 5] = [0x00, 0x78, 0x01, 0x00, 0xFF];

fn invalid_code(r: Result<String, WriteError>) -> String {
    match r {
        Err(WriteError::Invalid { code, .. }) => code,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn non_finite_subnormal_and_huge_values_are_refused_and_record_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    let (vault, start) = create(&dir, &keys);
    vault.record(Metric::HeartRate, 70.0, start + 1).unwrap();

    let metrics = [
        Metric::BodyTemperature,
        Metric::HeartRate,
        Metric::SpO2,
        Metric::RespiratoryRate,
        Metric::Steps,
    ];
    let subnormal = f64::from_bits(1);
    assert!(subnormal > 0.0 && !subnormal.is_normal());
    for m in metrics {
        for v in [f64::NAN, -f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                invalid_code(vault.record(m, v, start + 2)),
                "not-finite",
                "{m:?} {v}"
            );
        }
        for v in [f64::MAX, f64::MIN, 1e300] {
            assert_eq!(
                invalid_code(vault.record(m, v, start + 2)),
                "out-of-range",
                "{m:?} {v}"
            );
        }
        // A tiny positive number is below every metric's range but steps'
        // (0 counts), where it is not a whole count.
        let tiny = if m == Metric::Steps {
            "fractional-count"
        } else {
            "out-of-range"
        };
        for (v, want) in [
            (subnormal, tiny),
            (f64::MIN_POSITIVE, tiny),
            (-subnormal, "out-of-range"),
        ] {
            assert_eq!(
                invalid_code(vault.record(m, v, start + 2)),
                want,
                "{m:?} {v:e}"
            );
        }
    }
    assert_eq!(vault.status().unwrap().readings, 1);
    drop(vault);
    let vault = Vault::open(path(&dir), keys).unwrap();
    assert_eq!(vault.log().unwrap().len(), 1);
}

#[test]
fn extreme_times_are_refused_or_kept_visible() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    let (vault, start) = create(&dir, &keys);

    assert_eq!(
        invalid_code(vault.record(Metric::HeartRate, 70.0, i64::MIN)),
        "negative-time"
    );
    match vault.record_gatt(0x2A1C, TEMP_37_6.to_vec(), i64::MIN) {
        Err(WriteError::Invalid { code, .. }) => assert_eq!(code, "negative-time"),
        other => panic!("expected Invalid(negative-time), got {other:?}"),
    }
    // The log takes any time from 0 on (a wristband's clock may be wrong);
    // what it took must then be listed, not silently hidden.
    vault.record(Metric::HeartRate, 71.0, start).unwrap();
    vault.record(Metric::HeartRate, 72.0, 0).unwrap();
    vault.record(Metric::HeartRate, 73.0, i64::MAX).unwrap();
    let got = vault
        .record_gatt(0x2A1C, TEMP_37_6.to_vec(), i64::MAX)
        .unwrap();
    assert_eq!(got[0].time_ms, i64::MAX);

    let check = |vault: &Vault| {
        let log = vault.log().unwrap();
        let times: Vec<i64> = log.iter().map(|r| r.time_ms).collect();
        assert_eq!(times, [0, start, i64::MAX, i64::MAX], "{log:?}");
        assert_eq!(vault.status().unwrap().readings, 4);
    };
    check(&vault);
    drop(vault);
    check(&Vault::open(path(&dir), keys).unwrap());
}

#[test]
fn huge_empty_and_unknown_gatt_packets_are_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    let (vault, start) = create(&dir, &keys);
    vault
        .record_gatt(0x2A1C, TEMP_37_6.to_vec(), start + 1)
        .unwrap();

    let ten_mb = 10 << 20;
    let mut packets: Vec<(u16, Vec<u8>)> = Vec::new();
    for c in [0x2A1C, 0x2A37, 0x2A5F, 0x0000, 0xFFFF, 0x2A35] {
        packets.push((c, Vec::new()));
        packets.push((c, vec![0x00; ten_mb]));
        packets.push((c, vec![0xFF; ten_mb]));
    }
    // A valid packet followed by 10 MB.
    let mut long = TEMP_37_6.to_vec();
    long.resize(ten_mb, 0);
    packets.push((0x2A1C, long));
    for (c, bytes) in packets {
        match vault.record_gatt(c, bytes, start + 2) {
            // The message names the fault, it does not echo the packet.
            Err(WriteError::Gatt { code, detail }) => {
                assert!(!code.is_empty());
                assert!(detail.len() < 1_000, "{c:#06x}: {} bytes", detail.len());
            }
            other => panic!("{c:#06x}: expected Gatt, got {other:?}"),
        }
    }
    assert_eq!(vault.status().unwrap().readings, 1);
    drop(vault);
    assert_eq!(
        Vault::open(path(&dir), keys).unwrap().log().unwrap().len(),
        1
    );
}

#[test]
fn hostile_directory_strings_are_refused_and_touch_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = AppKeys::new();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"the app's own data").unwrap();
    let start = now_ms() - 86_400_000;

    let dirs = [
        // 1 MB: far over PATH_MAX.
        path(&tmp.path().join("d".repeat(1 << 20))),
        // A component over NAME_MAX, under PATH_MAX.
        path(&tmp.path().join("n".repeat(300))),
        format!("{}/va\0ult", tmp.path().display()),
        "\0".into(),
        path(&file.join("vault")),
        path(&file),
        "/proc/vigil-vault".into(),
    ];
    for dir in &dirs {
        let shown = dir.chars().take(80).collect::<String>();
        match Vault::create(dir.clone(), start, 7, keys.clone()) {
            Err(OpenError::Storage { .. } | OpenError::NotEmpty { .. }) => {}
            other => panic!("create {shown:?}: expected Storage or NotEmpty, got {other:?}"),
        }
        match Vault::open(dir.clone(), keys.clone()) {
            Err(OpenError::Storage { .. } | OpenError::NotAVault { .. }) => {}
            other => panic!("open {shown:?}: expected Storage or NotAVault, got {other:?}"),
        }
    }
    // No key was handed out for a vault that does not exist, and the app's
    // file is intact.
    assert!(keys.key.lock().unwrap().is_none());
    assert_eq!(std::fs::read(&file).unwrap(), b"the app's own data");
    assert!(keys.key.lock().unwrap().is_none());
}

/// The entries of the working directory (the crate's, under `cargo test`).
fn cwd_entries() -> Vec<std::ffi::OsString> {
    let mut v: Vec<_> = std::fs::read_dir(".")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    v.sort();
    v
}

#[test]
fn an_empty_directory_string_is_refused_and_writes_nothing_in_the_working_directory() {
    let keys = AppKeys::new();
    let before = cwd_entries();
    // "" names no directory; a store there would land in the process's
    // working directory, among the app's own files.
    match Vault::create(String::new(), now_ms(), 7, keys.clone()) {
        Err(OpenError::Storage { detail }) => assert!(detail.contains("empty"), "{detail}"),
        other => panic!("create \"\": expected Storage, got {other:?}"),
    }
    match Vault::open(String::new(), keys.clone()) {
        Err(OpenError::Storage { .. } | OpenError::NotAVault { .. }) => {}
        other => panic!("open \"\": expected Storage or NotAVault, got {other:?}"),
    }
    assert_eq!(cwd_entries(), before);
    assert!(keys.key.lock().unwrap().is_none());
}

#[test]
fn a_key_store_returning_garbage_is_a_typed_error_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    let (vault, start) = create(&dir, &keys);
    vault.record(Metric::SpO2, 97.0, start + 1).unwrap();
    drop(vault);

    for (mode, len) in [(Mode::Empty, "0 bytes"), (Mode::Huge, "1048576 bytes")] {
        keys.set(mode);
        match Vault::open(path(&dir), keys.clone()) {
            Err(OpenError::KeyStore {
                source: KeyStoreError::Corrupt { detail },
            }) => assert!(detail.contains(len), "{detail}"),
            other => panic!("{mode:?}: expected KeyStore(Corrupt), got {other:?}"),
        }
    }
    keys.set(Mode::Foreign);
    assert!(
        matches!(
            Vault::open(path(&dir), keys.clone()),
            Err(OpenError::WrongKey { .. })
        ),
        "a 32-byte key of another vault is the wrong key"
    );
    keys.set(Mode::Honest);
    let vault = Vault::open(path(&dir), keys).unwrap();
    assert_eq!(vault.log().unwrap().len(), 1);
}

#[test]
fn a_key_store_that_panics_is_a_typed_error_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    let (vault, start) = create(&dir, &keys);
    vault.record(Metric::HeartRate, 64.0, start + 1).unwrap();
    drop(vault);

    keys.set(Mode::Panic);
    match Vault::open(path(&dir), keys.clone()) {
        Err(OpenError::KeyStore { source }) => {
            let detail = source.to_string();
            assert!(
                detail.contains("panicked") && detail.contains("has a bug"),
                "{detail}"
            );
        }
        other => panic!("open: expected KeyStore, got {other:?}"),
    }
    let fresh = tmp.path().join("fresh");
    match Vault::create(path(&fresh), start, 7, keys.clone()) {
        Err(OpenError::KeyStore { source }) => {
            let detail = source.to_string();
            assert!(
                detail.contains("panicked") && detail.contains("has a bug"),
                "{detail}"
            );
        }
        other => panic!("create: expected KeyStore, got {other:?}"),
    }

    keys.set(Mode::Honest);
    let vault = Vault::open(path(&dir), keys).unwrap();
    assert_eq!(vault.log().unwrap().len(), 1);
    // The create that failed left nothing in the way of a new one.
    let other = AppKeys::new();
    Vault::create(path(&fresh), start, 7, other.clone()).unwrap();
    assert!(other.key.lock().unwrap().is_some());
}

#[test]
fn a_key_store_that_silently_drops_the_key_fails_the_create() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    keys.set(Mode::Silent);
    // A vault whose key was never stored would lose every reading at the
    // next open: the create must fail instead.
    let start = now_ms() - 86_400_000;
    match Vault::create(path(&dir), start, 7, keys.clone()) {
        Err(OpenError::KeyStore { source }) => {
            assert!(source.to_string().contains("did not keep"), "{source}")
        }
        other => panic!("expected KeyStore, got {other:?}"),
    }
    keys.set(Mode::Honest);
    let vault = Vault::create(path(&dir), start, 7, keys.clone()).unwrap();
    vault.record(Metric::HeartRate, 70.0, start + 1).unwrap();
    drop(vault);
    assert_eq!(
        Vault::open(path(&dir), keys).unwrap().log().unwrap().len(),
        1
    );
}

#[test]
fn a_key_store_that_silently_keeps_the_key_fails_the_shred() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    // A week that ended yesterday: opening it shreds it.
    let start = now_ms() - 8 * 86_400_000;
    drop(Vault::create(path(&dir), start, 7, keys.clone()).unwrap());
    keys.set(Mode::Silent);
    match Vault::open(path(&dir), keys.clone()) {
        Err(OpenError::Shred { detail }) => assert!(detail.contains("still holds"), "{detail}"),
        other => panic!("expected Shred, got {other:?}"),
    }
    assert!(keys.key.lock().unwrap().is_some());
    // An honest store lets the next open finish the shred.
    keys.set(Mode::Honest);
    match Vault::open(path(&dir), keys.clone()) {
        Err(OpenError::Shredded { .. }) => {}
        other => panic!("expected Shredded, got {other:?}"),
    }
    assert!(keys.key.lock().unwrap().is_none());
}

#[test]
fn degenerate_periods_are_refused_and_the_directory_stays_usable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    let now = now_ms();
    for (start, days) in [
        (now, 0),
        (i64::MAX, 7),
        (i64::MAX, 0),
        (i64::MAX, u32::MAX),
        (i64::MAX - 1, 0),
    ] {
        match Vault::create(path(&dir), start, days, keys.clone()) {
            Err(OpenError::InvalidPeriod { start_ms, end_ms }) => {
                assert_eq!(start_ms, start);
                assert!(end_ms <= start_ms);
            }
            other => panic!("({start}, {days}): expected InvalidPeriod, got {other:?}"),
        }
    }
    assert!(keys.key.lock().unwrap().is_none(), "no key for no vault");
    // u32::MAX days (11.7 million years) fits in i64 ms: a valid period.
    let vault = Vault::create(path(&dir), now - 86_400_000, u32::MAX, keys.clone()).unwrap();
    let status = vault.status().unwrap();
    assert_eq!(
        status.period_end_ms,
        now - 86_400_000 + i64::from(u32::MAX) * 86_400_000
    );
    vault.record(Metric::Steps, 1_000.0, now).unwrap();
    drop(vault);
    assert_eq!(
        Vault::open(path(&dir), keys).unwrap().log().unwrap().len(),
        1
    );
}

#[test]
fn one_vault_object_shared_by_threads_writing_reading_and_misbehaving() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    let (vault, start) = create(&dir, &keys);
    let threads: Vec<_> = (0..4i64)
        .map(|t| {
            let vault = vault.clone();
            std::thread::spawn(move || {
                for i in 0..10i64 {
                    let at = start + t * 1_000 + i;
                    match t {
                        0 => drop(vault.record(Metric::HeartRate, 60.0, at).unwrap()),
                        1 => drop(vault.record_gatt(0x2A1C, TEMP_37_6.to_vec(), at).unwrap()),
                        // Bad input from one thread does not disturb the others.
                        2 => {
                            vault.record(Metric::HeartRate, f64::NAN, at).unwrap_err();
                            vault.record_gatt(0x2A37, vec![0xFF; 4096], at).unwrap_err();
                        }
                        _ => {
                            let n = vault.log().unwrap().len();
                            assert!(n <= 20);
                            assert!(vault.status().unwrap().readings <= 20);
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(vault.log().unwrap().len(), 20);
    drop(vault);
    assert_eq!(
        Vault::open(path(&dir), keys).unwrap().log().unwrap().len(),
        20
    );
}

#[test]
fn the_same_directory_as_two_vault_objects_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    let (first, start) = create(&dir, &keys);
    first.record(Metric::HeartRate, 61.0, start + 1).unwrap();

    // Two app threads open and create the directory while `first` holds
    // it: each waits its bounded turn, then is refused as in use.
    let tries: Vec<_> = (0..2)
        .map(|i| {
            let (dir, keys) = (path(&dir), keys.clone());
            std::thread::spawn(move || {
                if i == 0 {
                    Vault::open(dir, keys).map(drop)
                } else {
                    Vault::create(dir, start, 7, AppKeys::new()).map(drop)
                }
            })
        })
        .collect();
    for t in tries {
        match t.join().unwrap() {
            // Clearly: not only "another process", which sends the app's
            // developer looking in the wrong place.
            Err(OpenError::Storage { detail }) => assert!(
                detail.contains("in use") && detail.contains("another open vault in this process"),
                "{detail}"
            ),
            other => panic!("expected Storage(in use), got {other:?}"),
        }
    }
    // The first object was not disturbed, and keeps writing.
    first.record(Metric::HeartRate, 62.0, start + 2).unwrap();
    assert_eq!(first.log().unwrap().len(), 2);
    drop(first);

    // Closed, the directory opens, with everything.
    let second = Vault::open(path(&dir), keys).unwrap();
    assert_eq!(second.log().unwrap().len(), 2);
}
