//! The log at rest on this device (docs/spec.md §8): a reading is sealed
//! and stored as a small journal entry (`j/`) before its write returns; the
//! readings of many entries are folded into the log as one Automerge change,
//! whose chunk is stored in the same atomic batch that removes the entries;
//! every other change is sealed and stored as a chunk before its write
//! returns; a sealed snapshot of the whole log replaces the chunks it covers
//! from time to time (compaction), and at an explicit close
//! ([`crate::Vault::close`]), so that an open after a close loads one
//! document.

use vigil_crypto::Zeroizing;
use vigil_log::{DeviceId, HealthLog, Reading};

use crate::error::{OpenError, WriteError};
use crate::faults::Faults;
use crate::layout::{
    self, JournalRecord, LOG_RECORD, LocalRecord, P_CHUNK, P_JOURNAL, SNAPSHOT_BLOB,
    SnapshotRecord, VaultCrypto, chunk_key, journal_key, parse_chunk_key, parse_journal_key,
};
use crate::storage::{Batch, SledStorage, Storage, StorageError};

/// The blob holding this device's id beside the snapshot: an open reads
/// it to load the snapshot while sled opens its files (see
/// [`Journal::preload`]). Only a hint: the store's metadata (in sled, in
/// the clear as well) says which device this is, and a snapshot loaded for
/// another id is not used.
pub(crate) const DEVICE_BLOB: &str = "device";

/// A snapshot loaded before the store was open (see [`Journal::preload`]).
pub(crate) struct Preloaded {
    /// The snapshot blob as it was read.
    blob: Vec<u8>,
    /// Its log.
    log: HealthLog,
}

/// By default, compact after this many stored change chunks.
pub const DEFAULT_COMPACT_EVERY: u64 = 256;

/// Compact, whatever the number of chunks, once the chunks since the last
/// snapshot hold this many sealed bytes: in practice after every second
/// fold of a full journal (256 readings, ~12 KB each). Counted in chunks
/// alone, compaction came 256 folds (65,536 readings) later, and sled (16
/// KiB segments: pages over ~4 KiB become blob files, dead ones reclaimed
/// late) grew to 35× the log on the week bench; at 16 KiB it is ~4×.
pub(crate) const DEFAULT_COMPACT_BYTES: u64 = 16 * 1024;

/// By default, fold once this many readings wait in the journal. Folding
/// 256 readings costs one change (~200 bytes of metadata) instead of 256;
/// the journal it replaces is ~130 bytes a reading, removed by the fold.
pub(crate) const DEFAULT_FOLD_EVERY: u64 = 256;

/// The chunk counter, the reading journal and the compaction schedule.
#[derive(Debug)]
pub(crate) struct Journal {
    /// Sequence number of the next stored chunk.
    next_seq: u64,
    /// Chunks stored since the last snapshot.
    since_snapshot: u64,
    /// Their sealed bytes.
    bytes_since_snapshot: u64,
    compact_every: u64,
    /// Number of the next journal entry.
    next_entry: u64,
    /// Entries whose readings are staged in the log (not folded).
    open_entries: Vec<u64>,
    /// Entries whose readings are folded into the log's document but whose
    /// chunk is not stored yet: removed only by the batch that stores it.
    folded_entries: Vec<u64>,
    fold_every: u64,
}

impl Journal {
    /// A new journal: its first snapshot is the (empty or new) log.
    pub(crate) fn create(
        storage: &mut dyn Storage,
        crypto: &mut VaultCrypto,
        log: &mut HealthLog,
    ) -> Result<Journal, WriteError> {
        let journal = Journal {
            next_seq: 1,
            since_snapshot: 0,
            bytes_since_snapshot: 0,
            compact_every: DEFAULT_COMPACT_EVERY,
            next_entry: 1,
            open_entries: Vec::new(),
            folded_entries: Vec::new(),
            fold_every: DEFAULT_FOLD_EVERY,
        };
        journal.write_snapshot(storage, crypto, log)?;
        Ok(journal)
    }

    /// The log of the snapshot of the store in `dir`, read and loaded
    /// without sled, so that an open does it while sled opens its files
    /// (on a week's vault, sled's open was a sixth of the whole).
    /// `crypto` is for the device the store's [`DEVICE_BLOB`] names.
    /// `None` if anything is missing or does not load: the open then reads
    /// the snapshot through the store as before, and reports what is wrong.
    /// [`Journal::load`] uses this only if the store, once open and locked,
    /// holds the same snapshot bytes and no chunk after it.
    pub(crate) fn preload(dir: &std::path::Path, crypto: &VaultCrypto) -> Option<Preloaded> {
        let blob = SledStorage::read_blob(dir, SNAPSHOT_BLOB).ok()??;
        let snap: SnapshotRecord = layout::decode(&blob, LOG_RECORD).ok()?;
        let doc = crypto.open_snapshot(snap.covered, &snap.sealed)?;
        let log = HealthLog::load_any(&doc, crypto.device()).ok()?;
        Some(Preloaded { blob, log })
    }

    /// Loads the log: the snapshot, then every chunk after it. The caller
    /// applies what other components stored, marks the log saved, then
    /// replays the journal ([`Journal::replay`]). `preloaded` is the log
    /// of the snapshot if [`Journal::preload`] loaded it (with `crypto`'s
    /// keys and device): used if the store still holds those very bytes
    /// (read now, under sled's lock, so a compaction by another process in
    /// between is seen) and no chunk after them.
    pub(crate) fn load(
        storage: &dyn Storage,
        crypto: &VaultCrypto,
        preloaded: Option<Preloaded>,
    ) -> Result<(HealthLog, Journal), OpenError> {
        let blob = storage
            .get_blob(SNAPSHOT_BLOB)?
            .ok_or_else(|| OpenError::Corrupt("snapshot missing".into()))?;
        let snap: SnapshotRecord = layout::decode(&blob, LOG_RECORD)
            .map_err(|e| OpenError::Corrupt(format!("snapshot truncated or malformed: {e}")))?;
        let preloaded = preloaded.filter(|p| p.blob == blob);
        let open_snapshot = || {
            crypto
                .open_snapshot(snap.covered, &snap.sealed)
                .ok_or_else(|| OpenError::Corrupt("snapshot does not decrypt".into()))
        };
        // Decrypted first, as before, unless it was already: a damaged
        // snapshot is reported before any damaged chunk.
        let doc = match preloaded {
            Some(_) => None,
            None => Some(open_snapshot()?),
        };
        let mut chunks = Zeroizing::new(Vec::new());
        let mut last = snap.covered;
        let mut count = 0;
        let mut bytes = 0;
        for (k, v) in storage.scan_prefix(P_CHUNK)? {
            let seq =
                parse_chunk_key(&k).ok_or_else(|| OpenError::Corrupt("bad chunk key".into()))?;
            if seq <= snap.covered {
                // Left over by a compaction whose removal had not finished: covered already.
                continue;
            }
            let chunk = crypto
                .open_chunk(seq, &v)
                .ok_or_else(|| OpenError::Corrupt(format!("change {seq} does not decrypt")))?;
            chunks.extend_from_slice(&chunk);
            last = seq;
            count += 1;
            bytes += v.len() as u64;
        }
        let log = match (preloaded, doc) {
            (Some(p), _) if chunks.is_empty() => p.log,
            // After a kill: the chunks applied to the snapshot's log, the
            // longer way of `load_log` (its load was paid for already, on
            // the other thread). Should they not apply, `load_log` decides.
            (Some(p), _) => {
                let mut log = p.log;
                match log.apply(&chunks) {
                    Ok(()) => log,
                    Err(_) => Self::load_log(&open_snapshot()?, chunks, crypto.device())?,
                }
            }
            (None, Some(doc)) => Self::load_log(&doc, chunks, crypto.device())?,
            (None, None) => Self::load_log(&open_snapshot()?, chunks, crypto.device())?,
        };
        let journal = Journal {
            next_seq: last + 1,
            since_snapshot: count,
            bytes_since_snapshot: bytes,
            compact_every: DEFAULT_COMPACT_EVERY,
            next_entry: 1,
            open_entries: Vec::new(),
            folded_entries: Vec::new(),
            fold_every: DEFAULT_FOLD_EVERY,
        };
        Ok((log, journal))
    }

    /// The log of a snapshot and the chunks after it. Loaded as one
    /// document (Automerge reads a save followed by changes), so the decoded
    /// view is built once, not once for the snapshot and again for the
    /// chunks. A snapshot that is not a log yet (a joining device's, before
    /// its first sync), or whose chunks do not load with it, takes the
    /// longer way: the snapshot alone, then the chunks applied, which keeps
    /// changes waiting for their dependencies and reports what is damaged.
    fn load_log(
        doc: &[u8],
        chunks: Zeroizing<Vec<u8>>,
        device: DeviceId,
    ) -> Result<HealthLog, OpenError> {
        if !chunks.is_empty() {
            let mut whole = Zeroizing::new(Vec::with_capacity(doc.len() + chunks.len()));
            whole.extend_from_slice(doc);
            whole.extend_from_slice(&chunks);
            if let Ok(log) = HealthLog::load_any(&whole, device)
                && log.is_initialised()
            {
                return Ok(log);
            }
        }
        let mut log = HealthLog::load_any(doc, device)
            .map_err(|e| OpenError::Corrupt(format!("snapshot: {e}")))?;
        if !chunks.is_empty() {
            log.apply(&chunks)
                .map_err(|e| OpenError::Corrupt(format!("changes: {e}")))?;
        }
        Ok(log)
    }

    /// Stages every journal entry's readings in the log, in order, with
    /// their ids. A reading the log already holds is skipped (idempotent):
    /// with the fold's atomic batch that cannot happen, but a replay must
    /// never show a reading twice. An entry that does not open is damage.
    pub(crate) fn replay(
        &mut self,
        storage: &dyn Storage,
        crypto: &VaultCrypto,
        log: &mut HealthLog,
    ) -> Result<(), OpenError> {
        for (k, v) in storage.scan_prefix(P_JOURNAL)? {
            let n = parse_journal_key(&k)
                .ok_or_else(|| OpenError::Corrupt("bad journal key".into()))?;
            let rec: JournalRecord = crypto
                .open_record(LocalRecord::Journal(n), &v)
                .ok_or_else(|| OpenError::Corrupt(format!("journal entry {n} does not open")))?;
            for bytes in &rec.readings {
                let r = Reading::decode(bytes).ok_or_else(|| {
                    OpenError::Corrupt(format!("journal entry {n} holds a malformed reading"))
                })?;
                // Checked against the document when the log's view is
                // next needed, not here: open decodes no reading.
                log.restage_deferred(r)
                    .map_err(|e| OpenError::Corrupt(format!("journal entry {n}: {e}")))?;
            }
            self.open_entries.push(n);
            self.next_entry = self.next_entry.max(n + 1);
        }
        Ok(())
    }

    /// Fold once this many readings are staged (0: only when asked, at sync
    /// and before other writes).
    pub(crate) fn set_fold_every(&mut self, readings: u64) {
        self.fold_every = readings;
    }

    /// Seals `readings` (just staged in the log) as the next journal entry
    /// and applies it durably. Returns whether a fold is now due. On error
    /// the caller unstages them: nothing was recorded.
    pub(crate) fn append(
        &mut self,
        storage: &mut dyn Storage,
        crypto: &mut VaultCrypto,
        log: &HealthLog,
        readings: &[Reading],
    ) -> Result<bool, WriteError> {
        let n = self.next_entry;
        let rec = JournalRecord {
            readings: readings.iter().map(|r| r.encode().to_vec()).collect(),
        };
        let sealed = crypto.seal_record(LocalRecord::Journal(n), &rec)?;
        let mut batch = Batch::default();
        batch.put(journal_key(n), sealed);
        storage.apply(batch)?;
        self.next_entry += 1;
        self.open_entries.push(n);
        Ok(self.fold_every > 0 && log.staged().len() as u64 >= self.fold_every)
    }

    /// Commits the staged readings into the log as one change, in memory
    /// only: their entries stay until [`Journal::persist`] stores the chunk
    /// (and removes them in the same batch). Safe at any time, even if that
    /// write then fails: the entries still hold the readings.
    pub(crate) fn fold_in_memory(&mut self, log: &mut HealthLog) -> Result<(), WriteError> {
        log.fold()?;
        self.folded_entries.append(&mut self.open_entries);
        Ok(())
    }

    /// Readings waiting in the journal, not folded yet.
    pub(crate) fn pending_readings(log: &HealthLog) -> usize {
        log.staged().len()
    }

    /// Compact after this many chunks (0: never).
    pub(crate) fn set_compact_every(&mut self, chunks: u64) {
        self.compact_every = chunks;
    }

    /// Whether compaction is enabled (`compact_every` is not 0).
    pub(crate) fn compacts(&self) -> bool {
        self.compact_every > 0
    }

    /// Chunks stored since the last snapshot.
    pub(crate) fn since_snapshot(&self) -> u64 {
        self.since_snapshot
    }

    /// Seals and stores every change not yet stored, as one chunk, and
    /// removes the journal entries folded into it in the same atomic batch.
    /// Returns whether a compaction is now due.
    pub(crate) fn persist(
        &mut self,
        storage: &mut dyn Storage,
        crypto: &mut VaultCrypto,
        log: &mut HealthLog,
        faults: &Faults,
    ) -> Result<bool, WriteError> {
        let (chunk, heads) = log.unsaved();
        if chunk.is_empty() && self.folded_entries.is_empty() {
            return Ok(false);
        }
        let mut batch = Batch::default();
        let stored = !chunk.is_empty();
        let mut sealed_len = 0;
        if stored {
            let sealed = crypto.seal_chunk(self.next_seq, &chunk)?;
            sealed_len = sealed.len() as u64;
            batch.put(chunk_key(self.next_seq), sealed);
        }
        if faults.fold_removes_journal_first() && !self.folded_entries.is_empty() {
            let mut early = Batch::default();
            for n in &self.folded_entries {
                early.remove(journal_key(*n));
            }
            storage.apply(early)?;
        }
        for n in &self.folded_entries {
            batch.remove(journal_key(*n));
        }
        if !self.folded_entries.is_empty() && faults.crash_before_fold_batch() {
            return Err(WriteError::Storage(StorageError::Io(
                std::io::Error::other("injected crash before the fold's batch"),
            )));
        }
        storage.apply(batch)?;
        self.folded_entries.clear();
        if !stored {
            return Ok(false);
        }
        log.mark_saved(heads);
        self.next_seq += 1;
        self.since_snapshot += 1;
        self.bytes_since_snapshot += sealed_len;
        // Disabled (0) means never, by count or by size.
        Ok(self.compact_every > 0
            && (self.since_snapshot >= self.compact_every
                || self.bytes_since_snapshot >= DEFAULT_COMPACT_BYTES))
    }

    /// Seals the whole log as the snapshot blob; returns the last chunk seq
    /// it covers.
    fn write_snapshot(
        &self,
        storage: &mut dyn Storage,
        crypto: &mut VaultCrypto,
        log: &mut HealthLog,
    ) -> Result<u64, WriteError> {
        let covered = self.next_seq - 1;
        let sealed = crypto.seal_snapshot(covered, &layout::save_log(log))?;
        storage.put_blob(
            SNAPSHOT_BLOB,
            &layout::encode(&SnapshotRecord { covered, sealed }),
        )?;
        Ok(covered)
    }

    /// Writes a snapshot of the whole log (after storing what is pending) and
    /// returns the removal of the chunks it covers, for the caller to add to
    /// and apply. A crash before that leaves covered chunks, which load skips.
    pub(crate) fn compact(
        &mut self,
        storage: &mut dyn Storage,
        crypto: &mut VaultCrypto,
        log: &mut HealthLog,
        faults: &Faults,
    ) -> Result<Batch, WriteError> {
        let every = std::mem::replace(&mut self.compact_every, 0);
        let persisted = self.persist(storage, crypto, log, faults);
        self.compact_every = every;
        persisted?;
        let covered = self.write_snapshot(storage, crypto, log)?;
        let mut batch = Batch::default();
        for (k, _) in storage.scan_prefix(P_CHUNK)? {
            if parse_chunk_key(&k).is_some_and(|seq| seq <= covered) {
                batch.remove(k);
            }
        }
        self.since_snapshot = 0;
        self.bytes_since_snapshot = 0;
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyStore, MemoryKeyStore, Period, Vault};
    use rand_chacha::rand_core::SeedableRng;
    use vigil_crypto::KeySchedule;
    use vigil_log::{Metric, Unit};

    const START: i64 = 1_790_035_200_000;

    fn record(vault: &mut Vault, n: i64, from: i64) {
        for i in from..from + n {
            vault
                .record(
                    Metric::HeartRate,
                    60.0 + (i % 40) as f64,
                    Unit::BeatsPerMinute,
                    START + i * 60_000,
                )
                .unwrap();
        }
    }

    /// A snapshot loaded early is used only while the store holds those
    /// very bytes: had another process compacted in between (a new
    /// snapshot, its chunks removed), the early log would lack what the
    /// removed chunks held. And after a kill, the chunks after the
    /// snapshot are applied to it.
    #[test]
    fn an_early_snapshot_is_used_only_while_the_store_holds_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("v");
        let keys = MemoryKeyStore::new();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let mut v = Vault::create(
            &dir,
            Period::days(START, 7),
            Box::new(keys.clone()),
            &mut rng,
        )
        .unwrap();
        let device = v.device_id();
        record(&mut v, 300, 0);
        v.close().unwrap();
        let crypto = VaultCrypto::new(
            KeySchedule::new(keys.load().unwrap().unwrap()),
            device,
            &mut rng,
        );
        let early = Journal::preload(&dir, &crypto).unwrap();
        assert_eq!(early.log.len(), 300);

        // Another process records and compacts before this open locks the store.
        let mut v = Vault::open_at(&dir, &keys, START).unwrap();
        record(&mut v, 10, 300);
        v.close().unwrap();
        let storage = SledStorage::open(&dir).unwrap();
        let (log, _) = Journal::load(&storage, &crypto, Some(early)).unwrap();
        assert_eq!(log.len(), 310, "the stale early snapshot was used");
        drop(storage);

        // A kill after a fold: the snapshot, then a chunk of 256 readings.
        let early = Journal::preload(&dir, &crypto).unwrap();
        let mut v = Vault::open_at(&dir, &keys, START).unwrap();
        record(&mut v, 300, 310);
        assert_eq!(v.pending_chunks(), 1);
        drop(v);
        let storage = SledStorage::open(&dir).unwrap();
        let (log, journal) = Journal::load(&storage, &crypto, Some(early)).unwrap();
        assert_eq!((log.len(), journal.since_snapshot()), (310 + 256, 1));
        let (plain, _) = Journal::load(&storage, &crypto, None).unwrap();
        assert_eq!(
            log.readings(None, i64::MIN, i64::MAX, true),
            plain.readings(None, i64::MIN, i64::MAX, true)
        );
    }
}
