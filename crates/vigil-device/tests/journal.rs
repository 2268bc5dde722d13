//! The reading journal (docs/spec.md §8): a reading is durable on Ok as one
//! small sealed journal entry, and readings are folded into the log's
//! Automerge document in batches (one change for many readings) — at sync,
//! before any other write, at N readings, or when the app asks.

use vigil_device::{Period, SledStorage, Storage, Vault};
use vigil_log::{Metric, Unit};
use vigil_testkit::disk_vault;

const START: i64 = 1_790_035_200_000;
const MIN: i64 = 60_000;

fn record_hr(vault: &mut Vault, i: i64) -> vigil_log::ReadingId {
    vault
        .record(
            Metric::HeartRate,
            60.0 + (i % 40) as f64,
            Unit::BeatsPerMinute,
            START + i * MIN,
        )
        .unwrap()
}

/// How many Automerge changes the exported document holds.
fn changes(vault: &mut Vault) -> usize {
    let doc = automerge::AutoCommit::load(&vault.export_automerge()).unwrap();
    let mut doc = doc;
    doc.get_changes(&[]).len()
}

/// The whole point: many readings cost one Automerge change, not one each.
/// (Before the journal, every reading was its own change and its own chunk.)
#[test]
fn readings_fold_into_one_change() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut vault, _keys) = disk_vault(&tmp.path().join("v"), Period::days(START, 7), 1);
    vault.set_compact_every(0);
    let before = changes(&mut vault);
    let chunks_before = vault.pending_chunks();
    for i in 0..50 {
        record_hr(&mut vault, i);
    }
    // Every reading is visible at once, before any fold.
    assert_eq!(vault.log().len(), 50);
    assert_eq!(vault.pending_readings(), 50);
    assert_eq!(
        vault.pending_chunks(),
        chunks_before,
        "no chunk per reading"
    );
    vault.fold().unwrap();
    assert_eq!(vault.pending_readings(), 0);
    assert_eq!(vault.pending_chunks(), chunks_before + 1);
    assert_eq!(
        changes(&mut vault),
        before + 1,
        "fifty readings, one change"
    );
    assert_eq!(vault.log().len(), 50);
}

/// Durable on Ok: readings not folded yet survive a vault dropped without
/// any goodbye, keep their ids, and the next reading continues the sequence.
#[test]
fn unfolded_readings_survive_a_crash_with_their_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let (mut vault, keys) = disk_vault(&dir, Period::days(START, 7), 2);
    let ids: Vec<_> = (0..7).map(|i| record_hr(&mut vault, i)).collect();
    assert_eq!(vault.pending_readings(), 7);
    drop(vault);
    let mut vault = Vault::open_at(&dir, &keys, START).unwrap();
    for id in &ids {
        assert!(vault.log().reading(*id).is_some(), "{id} lost");
    }
    assert_eq!(vault.pending_readings(), 7, "replayed as pending");
    let next = record_hr(&mut vault, 7);
    assert_eq!(next.seq, ids[6].seq + 1, "ids continue after a replay");
    vault.fold().unwrap();
    drop(vault);
    let vault = Vault::open_at(&dir, &keys, START).unwrap();
    assert_eq!(vault.log().len(), 8);
    assert_eq!(vault.pending_readings(), 0, "the fold removed the journal");
}

/// Replaying the journal is idempotent: an entry whose readings are already
/// in the log (as if a fold's removal had been lost) adds nothing twice.
#[test]
fn replay_skips_readings_already_folded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let (mut vault, keys) = disk_vault(&dir, Period::days(START, 7), 3);
    for i in 0..5 {
        record_hr(&mut vault, i);
    }
    drop(vault);
    let entries = SledStorage::open(&dir).unwrap().scan_prefix(b"j/").unwrap();
    assert_eq!(entries.len(), 5, "one journal entry per reading");
    let mut vault = Vault::open_at(&dir, &keys, START).unwrap();
    vault.fold().unwrap();
    drop(vault);
    {
        let mut s = SledStorage::open(&dir).unwrap();
        assert!(s.scan_prefix(b"j/").unwrap().is_empty());
        let mut b = vigil_device::Batch::default();
        for (k, v) in entries {
            b.put(k, v);
        }
        s.apply(b).unwrap();
    }
    let mut vault = Vault::open_at(&dir, &keys, START).unwrap();
    assert_eq!(vault.log().len(), 5, "no reading twice");
    assert_eq!(vault.pending_readings(), 0);
    let next = record_hr(&mut vault, 5);
    assert_eq!(next.seq, 6);
}

/// The fold happens by itself at N pending readings, before any other
/// write (so the change order keeps readings before their annotations),
/// and before a sync or the heads are read.
#[test]
fn folds_happen_without_being_asked() {
    let (mut vault, _keys) = vigil_testkit::mem_vault(Period::days(START, 7), 4);
    vault.set_fold_every(10);
    for i in 0..9 {
        record_hr(&mut vault, i);
    }
    assert_eq!(vault.pending_readings(), 9);
    record_hr(&mut vault, 9);
    assert_eq!(vault.pending_readings(), 0, "folded at 10");
    let id = record_hr(&mut vault, 10);
    vault.annotate(id, "after a run").unwrap();
    assert_eq!(vault.pending_readings(), 0, "folded before the annotation");
    record_hr(&mut vault, 11);
    let heads = vault.heads();
    assert_eq!(vault.pending_readings(), 0, "folded before the heads");
    assert_eq!(vault.heads(), heads);
}

/// A journal entry under another number, or garbage, is refused as
/// corruption rather than silently dropped or misread.
#[test]
fn a_tampered_journal_entry_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let (mut vault, keys) = disk_vault(&dir, Period::days(START, 7), 5);
    for i in 0..2 {
        record_hr(&mut vault, i);
    }
    drop(vault);
    {
        let mut s = SledStorage::open(&dir).unwrap();
        let e = s.scan_prefix(b"j/").unwrap();
        // Entry 1's sealed bytes under entry 2's key: its context differs.
        let mut b = vigil_device::Batch::default();
        b.put(e[1].0.clone(), e[0].1.clone());
        s.apply(b).unwrap();
    }
    let err = Vault::open_at(&dir, &keys, START).unwrap_err();
    assert!(matches!(err, vigil_device::OpenError::Corrupt(_)), "{err}");
}

/// A store with a journal says format 4, so an older build (format 3)
/// refuses it instead of ignoring `j/`; a format-3 store (no journal) still
/// opens, and is marked format 4 before its first journal entry.
#[test]
fn format_four_and_format_three_upgrade() {
    assert_eq!(vigil_device::STORE_FORMAT, 4);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let (mut vault, keys) = disk_vault(&dir, Period::days(START, 7), 6);
    record_hr(&mut vault, 0);
    vault.fold().unwrap();
    drop(vault);
    let format = |dir: &std::path::Path| {
        let s = SledStorage::open(dir).unwrap();
        u32::from_be_bytes(s.get(b"m/format").unwrap().unwrap().try_into().unwrap())
    };
    assert_eq!(format(&dir), 4);
    {
        let mut s = SledStorage::open(&dir).unwrap();
        let mut b = vigil_device::Batch::default();
        b.put(b"m/format".to_vec(), 3u32.to_be_bytes().to_vec());
        s.apply(b).unwrap();
    }
    let mut vault = Vault::open_at(&dir, &keys, START).unwrap();
    assert_eq!(vault.log().len(), 1);
    record_hr(&mut vault, 1);
    drop(vault);
    assert_eq!(format(&dir), 4, "upgraded before the journal was written");
}

/// A crash inside a fold, before its batch (the chunk and the removal of
/// the entries it covers) is applied, loses nothing.
#[cfg(feature = "fault-injection")]
#[test]
fn a_crash_inside_a_fold_loses_nothing() {
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;
    let keys = vigil_device::MemoryKeyStore::new();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let shared = SharedMem::default();
    let mut vault = Vault::create_with(
        Box::new(shared.clone()),
        Period::days(START, 7),
        Box::new(keys.clone()),
        &mut rng,
    )
    .unwrap();
    let ids: Vec<_> = (0..6).map(|i| record_hr(&mut vault, i)).collect();
    vault.inject_fault(vigil_device::DeviceFault::CrashBeforeFoldBatch);
    assert!(vault.fold().is_err(), "the injected crash stops the fold");
    drop(vault);
    let vault = Vault::open_with(Box::new(shared), &keys, &mut rng).unwrap();
    for id in &ids {
        assert!(vault.log().reading(*id).is_some(), "{id} lost");
    }
    assert_eq!(vault.log().len(), 6);
}

/// A store shared between a vault and its reopening (an in-memory disk).
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Default)]
struct SharedMem(std::sync::Arc<std::sync::Mutex<vigil_device::MemStorage>>);

#[cfg(feature = "fault-injection")]
impl Storage for SharedMem {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, vigil_device::StorageError> {
        self.0.lock().unwrap().get(key)
    }
    fn scan_prefix(
        &self,
        prefix: &[u8],
    ) -> Result<vigil_device::Entries, vigil_device::StorageError> {
        self.0.lock().unwrap().scan_prefix(prefix)
    }
    fn apply(&mut self, batch: vigil_device::Batch) -> Result<(), vigil_device::StorageError> {
        self.0.lock().unwrap().apply(batch)
    }
    fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, vigil_device::StorageError> {
        self.0.lock().unwrap().get_blob(name)
    }
    fn put_blob(&mut self, name: &str, value: &[u8]) -> Result<(), vigil_device::StorageError> {
        self.0.lock().unwrap().put_blob(name, value)
    }
    fn tombstone(&self) -> Result<Option<Vec<u8>>, vigil_device::StorageError> {
        self.0.lock().unwrap().tombstone()
    }
    fn put_tombstone(&mut self, value: &[u8]) -> Result<(), vigil_device::StorageError> {
        self.0.lock().unwrap().put_tombstone(value)
    }
    fn destroy(self: Box<Self>) -> Result<(), vigil_device::StorageError> {
        Ok(())
    }
}
