//! The FFI layer through its Rust API, with the key store an app would
//! implement (here a map in memory that can also misbehave like a buggy
//! platform keystore).

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use vigil_ffi::{KeyStore, KeyStoreError, Metric, OpenError, Vault, WriteError};

/// What the app's key store does on `load`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Honest,
    /// Returns the stored key with a byte cut off, or one too many.
    Truncated,
    Padded,
    /// The platform keystore is locked.
    Failing,
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
        *self.mode.lock().unwrap() = mode;
    }
}

impl KeyStore for AppKeys {
    fn load(&self) -> Result<Option<Vec<u8>>, KeyStoreError> {
        let key = self.key.lock().unwrap().clone();
        match *self.mode.lock().unwrap() {
            Mode::Honest => Ok(key),
            Mode::Truncated => Ok(key.map(|k| k[..31].to_vec())),
            Mode::Padded => Ok(key.map(|mut k| {
                k.push(0);
                k
            })),
            Mode::Failing => Err(KeyStoreError::Io {
                detail: "keystore locked".into(),
            }),
        }
    }
    fn store(&self, root: Vec<u8>) -> Result<(), KeyStoreError> {
        if *self.mode.lock().unwrap() == Mode::Failing {
            return Err(KeyStoreError::Io {
                detail: "keystore locked".into(),
            });
        }
        let mut key = self.key.lock().unwrap();
        if key.is_some() {
            return Err(KeyStoreError::Occupied {
                detail: "test".into(),
            });
        }
        *key = Some(root);
        Ok(())
    }
    fn destroy_key(&self) -> Result<(), KeyStoreError> {
        self.key.lock().unwrap().take();
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

/// A week that began yesterday, so `open` (which reads the system clock)
/// does not shred it.
fn create(dir: &std::path::Path, keys: &Arc<AppKeys>) -> (Arc<Vault>, i64) {
    let start = now_ms() - 86_400_000;
    let vault = Vault::create(dir.display().to_string(), start, 7, keys.clone()).unwrap();
    (vault, start)
}

/// Temperature Measurement, °C, no time stamp: FLOAT 376 × 10^-1.
const TEMP_37_6: [u8; 5] = [0x00, 0x78, 0x01, 0x00, 0xFF];
/// The same with the FLOAT's NaN mantissa (0x7FFFFF).
const TEMP_NAN: [u8; 5] = [0x00, 0xFF, 0xFF, 0x7F, 0x00];

#[test]
fn create_record_gatt_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    let (vault, start) = create(&dir, &keys);
    assert_eq!(keys.key.lock().unwrap().as_ref().map(Vec::len), Some(32));

    let id = vault
        .record(Metric::HeartRate, 72.0, start + 60_000)
        .unwrap();
    let got = vault
        .record_gatt(0x2A1C, TEMP_37_6.to_vec(), start + 120_000)
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].metric, Metric::BodyTemperature);
    assert_eq!(got[0].value, 37.6);
    assert_eq!(got[0].time_ms, start + 120_000);

    let status = vault.status().unwrap();
    assert_eq!(status.readings, 2);
    assert_eq!(status.period_start_ms, start);
    assert_eq!(status.period_end_ms, start + 7 * 86_400_000);
    drop(vault);

    let vault = Vault::open(dir.display().to_string(), keys.clone()).unwrap();
    let log = vault.log().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].id, id);
    assert_eq!(
        (log[1].metric, log[1].value),
        (Metric::BodyTemperature, 37.6)
    );
    assert_eq!(vault.status().unwrap().vault_id, status.vault_id);
}

#[test]
fn nan_reading_is_a_typed_error_and_records_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    let (vault, start) = create(&dir, &keys);

    match vault.record(Metric::BodyTemperature, f64::NAN, start + 1) {
        Err(WriteError::Invalid { code, .. }) => assert_eq!(code, "not-finite"),
        other => panic!("expected Invalid(not-finite), got {other:?}"),
    }
    match vault.record_gatt(0x2A1C, TEMP_NAN.to_vec(), start + 1) {
        Err(WriteError::Gatt { code, .. }) => assert_eq!(code, "nan"),
        other => panic!("expected Gatt(nan), got {other:?}"),
    }
    match vault.record_gatt(0x2A1C, TEMP_37_6[..4].to_vec(), start + 1) {
        Err(WriteError::Gatt { code, .. }) => assert_eq!(code, "truncated"),
        other => panic!("expected Gatt(truncated), got {other:?}"),
    }
    match vault.record(Metric::HeartRate, 72.0, -1) {
        Err(WriteError::Invalid { code, .. }) => assert_eq!(code, "negative-time"),
        other => panic!("expected Invalid(negative-time), got {other:?}"),
    }
    assert!(vault.log().unwrap().is_empty());
    assert_eq!(vault.status().unwrap().readings, 0);
    drop(vault);
    let vault = Vault::open(dir.display().to_string(), keys).unwrap();
    assert!(vault.log().unwrap().is_empty());
}

#[test]
fn a_key_of_the_wrong_length_from_the_app_is_a_corrupt_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keys = AppKeys::new();
    let (vault, start) = create(&dir, &keys);
    vault.record(Metric::SpO2, 97.0, start + 1).unwrap();
    drop(vault);

    // A Vigil root is 32 bytes: anything else is damage, never a key to
    // cut or pad into one.
    for mode in [Mode::Truncated, Mode::Padded] {
        keys.set(mode);
        match Vault::open(dir.display().to_string(), keys.clone()) {
            Err(OpenError::KeyStore {
                source: KeyStoreError::Corrupt { detail },
            }) => assert!(detail.contains("bytes"), "{detail}"),
            other => panic!("{mode:?}: expected KeyStore(Corrupt), got {other:?}"),
        }
    }
    keys.set(Mode::Failing);
    match Vault::open(dir.display().to_string(), keys.clone()) {
        Err(OpenError::KeyStore {
            source: KeyStoreError::Io { detail },
        }) => assert!(detail.contains("keystore locked"), "{detail}"),
        other => panic!("expected KeyStore(Io), got {other:?}"),
    }
    // Nothing was lost: the honest store opens it with its reading.
    keys.set(Mode::Honest);
    let vault = Vault::open(dir.display().to_string(), keys).unwrap();
    assert_eq!(vault.log().unwrap().len(), 1);
}

#[test]
fn create_refuses_a_bad_period_a_failing_store_and_an_existing_vault() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = AppKeys::new();
    let dir = tmp.path().join("a").display().to_string();
    match Vault::create(dir.clone(), 1_790_000_000_000, 0, keys.clone()) {
        Err(OpenError::InvalidPeriod { start_ms, end_ms }) => assert_eq!(start_ms, end_ms),
        other => panic!("expected InvalidPeriod, got {other:?}"),
    }
    keys.set(Mode::Failing);
    match Vault::create(dir.clone(), 1_790_000_000_000, 7, keys.clone()) {
        Err(OpenError::KeyStore {
            source: KeyStoreError::Io { .. },
        }) => {}
        other => panic!("expected KeyStore(Io), got {other:?}"),
    }
    keys.set(Mode::Honest);
    // Closed first: a vault still open elsewhere is refused as in use
    // (after sled's lock wait), which is another test's matter.
    drop(create(&tmp.path().join("b"), &keys));
    let again = Vault::create(
        tmp.path().join("b").display().to_string(),
        now_ms(),
        7,
        AppKeys::new(),
    );
    assert!(
        matches!(again, Err(OpenError::AlreadyExists { .. })),
        "{again:?}"
    );
}

#[test]
fn one_vault_shared_by_app_threads_keeps_every_reading() {
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
                    vault
                        .record(Metric::HeartRate, 60.0 + i as f64, at)
                        .unwrap();
                    vault.record_gatt(0x2A1C, TEMP_37_6.to_vec(), at).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(vault.status().unwrap().readings, 80);
    drop(vault);
    let vault = Vault::open(dir.display().to_string(), keys).unwrap();
    assert_eq!(vault.log().unwrap().len(), 80);
}
