//! The log at rest on this device (docs/spec.md §8): every change is sealed
//! and stored as a chunk before a write returns; a sealed snapshot of the
//! whole log replaces the chunks it covers from time to time (compaction).

use vigil_log::HealthLog;

use crate::error::{OpenError, WriteError};
use crate::layout::{
    self, LOG_RECORD, P_CHUNK, SNAPSHOT_BLOB, SnapshotRecord, VaultCrypto, chunk_key,
    parse_chunk_key,
};
use crate::storage::{Batch, Storage};

/// By default, compact after this many stored change chunks.
pub const DEFAULT_COMPACT_EVERY: u64 = 256;

/// The chunk counter and the compaction schedule.
#[derive(Debug)]
pub(crate) struct Journal {
    /// Sequence number of the next stored chunk.
    next_seq: u64,
    /// Chunks stored since the last snapshot.
    since_snapshot: u64,
    compact_every: u64,
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
            compact_every: DEFAULT_COMPACT_EVERY,
        };
        journal.write_snapshot(storage, crypto, log)?;
        Ok(journal)
    }

    /// Loads the log: the snapshot, then every chunk after it. The caller
    /// applies what other components stored, then marks the log saved.
    pub(crate) fn load(
        storage: &dyn Storage,
        crypto: &VaultCrypto,
    ) -> Result<(HealthLog, Journal), OpenError> {
        let blob = storage
            .get_blob(SNAPSHOT_BLOB)?
            .ok_or_else(|| OpenError::Corrupt("snapshot missing".into()))?;
        let snap: SnapshotRecord = layout::decode(&blob, LOG_RECORD)
            .map_err(|e| OpenError::Corrupt(format!("snapshot truncated or malformed: {e}")))?;
        let doc = crypto
            .open_snapshot(snap.covered, &snap.sealed)
            .ok_or_else(|| OpenError::Corrupt("snapshot does not decrypt".into()))?;
        let mut log = HealthLog::load_any(&doc, crypto.device())
            .map_err(|e| OpenError::Corrupt(format!("snapshot: {e}")))?;
        let mut pending = Vec::new();
        let mut last = snap.covered;
        let mut count = 0;
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
            pending.extend_from_slice(&chunk);
            last = seq;
            count += 1;
        }
        if !pending.is_empty() {
            log.apply(&pending)
                .map_err(|e| OpenError::Corrupt(format!("changes: {e}")))?;
        }
        let journal = Journal {
            next_seq: last + 1,
            since_snapshot: count,
            compact_every: DEFAULT_COMPACT_EVERY,
        };
        Ok((log, journal))
    }

    /// Compact after this many chunks (0: never).
    pub(crate) fn set_compact_every(&mut self, chunks: u64) {
        self.compact_every = chunks;
    }

    /// Chunks stored since the last snapshot.
    pub(crate) fn since_snapshot(&self) -> u64 {
        self.since_snapshot
    }

    /// Seals and stores every change not yet stored, as one chunk. Returns
    /// whether a compaction is now due.
    pub(crate) fn persist(
        &mut self,
        storage: &mut dyn Storage,
        crypto: &mut VaultCrypto,
        log: &mut HealthLog,
    ) -> Result<bool, WriteError> {
        let (chunk, heads) = log.unsaved();
        if chunk.is_empty() {
            return Ok(false);
        }
        let seq = self.next_seq;
        let sealed = crypto.seal_chunk(seq, &chunk)?;
        let mut batch = Batch::default();
        batch.put(chunk_key(seq), sealed);
        storage.apply(batch)?;
        log.mark_saved(heads);
        self.next_seq += 1;
        self.since_snapshot += 1;
        Ok(self.compact_every > 0 && self.since_snapshot >= self.compact_every)
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
        let sealed = crypto.seal_snapshot(covered, &log.save())?;
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
    ) -> Result<Batch, WriteError> {
        let every = std::mem::replace(&mut self.compact_every, 0);
        let persisted = self.persist(storage, crypto, log);
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
        Ok(batch)
    }
}
