//! The resident's vault (docs/spec.md §8): it coordinates the components —
//! the [`Journal`] (the log at rest), [`SyncState`] (the relay), [`Alerts`]
//! (the fever capability), pairing and shredding — over one store and one
//! set of keys. Each component owns its state; the vault owns them.

use std::path::Path;

use vigil_crypto::rand_core::CryptoRng;
use vigil_crypto::{KeySchedule, RootKey, ShortAuthCode, VaultId, X25519Identity, X25519PublicKey};
use vigil_log::{
    ChangeHash, Day, DeviceId, FeverRule, HealthLog, LogError, Metric, Reading, ReadingId,
    Retraction, Severity, Symptom, Unit,
};
use vigil_proto::{
    Exchange, GrantDeletion, ProtoError, RedeemTicket, Registration, SyncError, Ticket, drive,
};

use crate::alerts::{AlertReport, AlertStatusReport, Alerts, DeliveredAlert, Grant, PendingAlert};
use crate::disclosure::{self, Disclosure};
use crate::error::{OpenError, SyncFailure, WriteError};
use crate::faults::Faults;
use crate::journal::{DEVICE_BLOB, Journal, Preloaded};
use crate::keystore::{KeyStore, KeyStoreError};
use crate::layout::{
    self, K_FORMAT, K_META, MetaRecord, OLDEST_READ_FORMAT, SMALL_RECORD, STORE_FORMAT, VaultCrypto,
};
use crate::pairing::{self, PendingJoin};
use crate::period::Period;
use crate::shred::{self, ShredError, Tombstone};
use crate::storage::{Batch, DEFAULT_LOCK_WAIT, SledStorage, Storage, StorageError};
use crate::sync::{SnapshotPolicy, SyncReport, SyncState};

/// What staff set in an enrolment ticket, as the node told the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// The label the node shows with the resident's alerts.
    pub label: String,
    /// The end of the period staff set, ms: the node serves the vault, and
    /// takes its alerts, until then.
    pub period_end_ms: i64,
}

/// One resident device's vault for one monitoring period.
pub struct Vault {
    storage: Box<dyn Storage>,
    crypto: VaultCrypto,
    period: Period,
    log: HealthLog,
    journal: Journal,
    sync: SyncState,
    alerts: Alerts,
    /// Injected bugs (simulation harness only; always empty otherwise).
    faults: Faults,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("vault_id", &self.crypto.vault_id())
            .field("device", &self.crypto.device())
            .field("period", &self.period)
            .field("readings", &self.log.len())
            .finish_non_exhaustive()
    }
}

fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(i64::MAX)
}

pub(crate) fn system_rng() -> Result<rand_chacha::ChaCha20Rng, OpenError> {
    use rand_chacha::rand_core::SeedableRng;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| {
        OpenError::Storage(StorageError::Io(std::io::Error::other(format!(
            "system randomness unavailable: {e}"
        ))))
    })?;
    Ok(rand_chacha::ChaCha20Rng::from_seed(seed))
}

/// A store sled refuses as damaged is, to the vault, a corrupted store: one
/// error, which names the way out ([`Vault::recover`]).
fn damaged(e: impl Into<OpenError>) -> OpenError {
    match e.into() {
        OpenError::Storage(StorageError::Damaged(e)) => OpenError::Corrupt(e.to_string()),
        OpenError::Storage(StorageError::Corrupt(m)) => OpenError::Corrupt(m),
        e => e,
    }
}

impl Vault {
    /// Creates a vault for `period` in `dir` (a sled store), its root in `key_store`.
    pub fn create<R: CryptoRng + ?Sized>(
        dir: &Path,
        period: Period,
        key_store: Box<dyn KeyStore>,
        rng: &mut R,
    ) -> Result<Vault, OpenError> {
        // A shredded vault's directory keeps its tombstone: a stale copy of
        // the app must not start a new vault over it.
        if SledStorage::read_tombstone(dir)?.is_some() {
            return Err(OpenError::AlreadyExists(dir.display().to_string()));
        }
        // Shred deletes the vault's directory's contents: it must hold only
        // what Vigil puts there, so a vault never starts among other files.
        if let Some(file) = SledStorage::foreign_entry(dir)? {
            return Err(OpenError::NotEmpty {
                dir: dir.display().to_string(),
                file,
            });
        }
        let storage = SledStorage::open(dir)?;
        Self::create_with(Box::new(storage), period, key_store, rng).map_err(|e| match e {
            OpenError::AlreadyExists(_) => OpenError::AlreadyExists(dir.display().to_string()),
            e => e,
        })
    }

    /// Creates a vault on any [`Storage`] (the simulation uses an in-memory one).
    pub fn create_with<R: CryptoRng + ?Sized>(
        storage: Box<dyn Storage>,
        period: Period,
        key_store: Box<dyn KeyStore>,
        rng: &mut R,
    ) -> Result<Vault, OpenError> {
        if period.end_ms <= period.start_ms {
            return Err(OpenError::InvalidPeriod {
                start_ms: period.start_ms,
                end_ms: period.end_ms,
            });
        }
        let root = RootKey::generate(rng);
        let mut key_store = key_store;
        Self::create_with_root(storage, period, Some(key_store.as_mut()), root, true, rng)
    }

    /// Creates a vault for an existing root (a paired device joining, or a
    /// recovered one), or a new one (`new_log`: this device starts the log).
    /// The root is written to `key_store`, unless it is `None` (recovery:
    /// the root came from the key store).
    pub(crate) fn create_with_root<R: CryptoRng + ?Sized>(
        mut storage: Box<dyn Storage>,
        period: Period,
        key_store: Option<&mut dyn KeyStore>,
        root: RootKey,
        new_log: bool,
        rng: &mut R,
    ) -> Result<Vault, OpenError> {
        if storage.get(K_FORMAT)?.is_some() || storage.tombstone()?.is_some() {
            return Err(OpenError::AlreadyExists("this store".into()));
        }
        let mut device = [0u8; 16];
        rng.fill_bytes(&mut device);
        let device = DeviceId(device);
        // The key first: a crash before the store is written leaves a key
        // without a vault (harmless), never a vault without its key.
        if let Some(key_store) = key_store {
            key_store.store(&root)?;
        }
        let mut crypto = VaultCrypto::new(KeySchedule::new(root), device, rng);
        storage.mark(crypto.vault_id(), period)?;
        // Beside the snapshot, for the next open to load it while sled
        // opens (a hint: the metadata below is what says which device).
        storage.put_blob(DEVICE_BLOB, &device.0)?;
        let mut log = if new_log {
            HealthLog::new(device)
        } else {
            HealthLog::empty(device)
        };
        // The snapshot first: until the metadata batch lands, this is not a
        // vault, and a second create simply overwrites the snapshot.
        let journal =
            Journal::create(storage.as_mut(), &mut crypto, &mut log).map_err(|e| match e {
                WriteError::Storage(s) => OpenError::Storage(s),
                e => OpenError::Corrupt(e.to_string()),
            })?;
        let mut batch = Batch::default();
        batch.put(
            K_META,
            layout::encode(&MetaRecord {
                vault: *crypto.vault_id().as_bytes(),
                device: device.0,
                period,
            }),
        );
        batch.put(K_FORMAT, STORE_FORMAT.to_be_bytes().to_vec());
        storage.apply(batch)?;
        Ok(Vault {
            storage,
            crypto,
            period,
            log,
            journal,
            sync: SyncState::new(period),
            alerts: Alerts::new(period),
            faults: Faults::default(),
        })
    }

    /// Opens the vault in `dir` with its key store, shredding it first if
    /// its period is over by the system clock (see [`Vault::open_at`]).
    pub fn open(dir: &Path, key_store: &dyn KeyStore) -> Result<Vault, OpenError> {
        Self::open_at(dir, key_store, system_now_ms())
    }

    /// Opens the vault in `dir` as of `now_ms`. A vault whose tombstone
    /// exists has its shred completed; a vault whose period is over at
    /// `now_ms` is shredded. Both return [`OpenError::Shredded`].
    pub fn open_at(dir: &Path, key_store: &dyn KeyStore, now_ms: i64) -> Result<Vault, OpenError> {
        Self::open_waiting(dir, key_store, now_ms, DEFAULT_LOCK_WAIT, &mut |_| {})
    }

    /// [`Vault::open_at`], waiting up to `timeout` while another process
    /// has the vault open; `on_wait` is called once if it has to wait (see
    /// [`SledStorage::open_waiting`]).
    pub fn open_waiting(
        dir: &Path,
        key_store: &dyn KeyStore,
        now_ms: i64,
        timeout: std::time::Duration,
        on_wait: &mut dyn FnMut(&Path),
    ) -> Result<Vault, OpenError> {
        if let Some(t) = SledStorage::read_tombstone(dir)? {
            return Err(OpenError::Shredded(shred::finish_dir(dir, key_store, &t)?));
        }
        if !dir.join("conf").exists() && !dir.join("db").exists() {
            // A marker without sled's files: they were lost, or moved aside
            // by a recovery cut short.
            if SledStorage::read_marker(dir).vault.is_some() {
                return Err(OpenError::Corrupt("the store's files are missing".into()));
            }
            return Err(OpenError::NotAVault(dir.display().to_string()));
        }
        // The key now, and on another thread the log's snapshot, while sled
        // opens its files here: sled's open is mostly waiting (its
        // threadpool reads each segment's header, it zeroes and fsyncs the
        // tail of its log), the snapshot's load is CPU. Whatever goes wrong
        // there, the open goes the usual way and reports it.
        let root = key_store.load();
        let (storage, early) = std::thread::scope(|s| {
            let early = std::thread::Builder::new()
                .name("vigil-open".into())
                .spawn_scoped(s, move || Early::start(dir, root));
            let storage = SledStorage::open_waiting(dir, timeout, on_wait);
            let early = match early {
                Ok(h) => h.join().unwrap_or(Early::Reload),
                Err(_) => Early::Reload,
            };
            (storage, early)
        });
        let storage = storage.map_err(damaged)?;
        let vault = Self::open_inner(Box::new(storage), key_store, &mut system_rng()?, early)
            .map_err(|e| {
                match damaged(e) {
                    // The marker is written before the metadata: with a
                    // marker, missing metadata is damage (or a create cut
                    // short), which recovery repairs, not the absence of a vault.
                    OpenError::NotAVault(_) if SledStorage::read_marker(dir).vault.is_some() => {
                        OpenError::Corrupt("the vault's metadata is missing".into())
                    }
                    OpenError::NotAVault(_) => OpenError::NotAVault(dir.display().to_string()),
                    e => e,
                }
            })?;
        if vault.is_due(now_ms) {
            return Err(OpenError::Shredded(vault.shred_now(key_store, now_ms)?));
        }
        Ok(vault)
    }

    /// Opens a vault on any [`Storage`], drawing its randomness from `rng`.
    pub fn open_with<R: CryptoRng + ?Sized>(
        storage: Box<dyn Storage>,
        key_store: &dyn KeyStore,
        rng: &mut R,
    ) -> Result<Vault, OpenError> {
        Self::open_inner(storage, key_store, rng, Early::Reload)
    }

    /// [`Vault::open_with`], with what [`Early::start`] did before the
    /// store was open.
    fn open_inner<R: CryptoRng + ?Sized>(
        storage: Box<dyn Storage>,
        key_store: &dyn KeyStore,
        rng: &mut R,
        early: Early,
    ) -> Result<Vault, OpenError> {
        if let Some(t) = storage.tombstone()? {
            return Err(OpenError::Shredded(shred::finish(storage, key_store, &t)?));
        }
        let Some(format) = storage.get(K_FORMAT)? else {
            return Err(OpenError::NotAVault("this store".into()));
        };
        let format = <[u8; 4]>::try_from(format.as_slice())
            .map(u32::from_be_bytes)
            .map_err(|_| OpenError::Corrupt("format has the wrong length".into()))?;
        if format > STORE_FORMAT {
            return Err(OpenError::NewerFormat {
                found: format,
                supported: STORE_FORMAT,
            });
        }
        if format < OLDEST_READ_FORMAT {
            // Earlier layouts packed records differently (format 1) or kept
            // the alert outbox in the clear (format 2): never read as this one.
            return Err(OpenError::OlderFormat {
                found: format,
                supported: STORE_FORMAT,
            });
        }
        let meta: MetaRecord = layout::decode(
            &storage
                .get(K_META)?
                .ok_or_else(|| OpenError::Corrupt("vault metadata missing".into()))?,
            SMALL_RECORD,
        )
        .map_err(|e| OpenError::Corrupt(format!("vault metadata: {e}")))?;
        let vault_id = VaultId::from_bytes(meta.vault);
        let device = DeviceId(meta.device);
        // Keys made early are for the device the hint named: used only if
        // it is the one the metadata names.
        let (crypto, preloaded) = match early {
            Early::Ready(ready) if ready.0.device() == device => *ready,
            early => {
                let root = match early {
                    Early::Key(root) => root,
                    Early::Ready(..) | Early::Reload => key_store.load(),
                }?
                .ok_or(OpenError::MissingKey)?;
                let keys = KeySchedule::new(root);
                if keys.vault_id() != vault_id {
                    return Err(OpenError::WrongKey { expected: vault_id });
                }
                (VaultCrypto::new(keys, device, rng), None)
            }
        };
        if crypto.vault_id() != vault_id {
            return Err(OpenError::WrongKey { expected: vault_id });
        }
        let (mut log, mut journal) = Journal::load(storage.as_ref(), &crypto, preloaded)?;
        let sync = SyncState::load(storage.as_ref(), &crypto, &mut log, meta.period)?;
        let alerts = Alerts::load(storage.as_ref(), &crypto, meta.period)?;
        // Everything loaded is stored already.
        log.mark_all_saved();
        // The journal's readings last, staged with their ids: they are in
        // no chunk, snapshot or bundle yet.
        journal.replay(storage.as_ref(), &crypto, &mut log)?;
        let mut storage = storage;
        if format < STORE_FORMAT {
            // Format 3 is format 4 without a journal: mark the store 4
            // before this build writes its first entry, so a format-3 build
            // refuses it instead of ignoring the readings under `j/`.
            let mut batch = Batch::default();
            batch.put(K_FORMAT, STORE_FORMAT.to_be_bytes().to_vec());
            storage.apply(batch)?;
        }
        Ok(Vault {
            storage,
            crypto,
            period: meta.period,
            log,
            journal,
            sync,
            alerts,
            faults: Faults::default(),
        })
    }

    /// The vault's id.
    pub fn vault_id(&self) -> VaultId {
        self.crypto.vault_id()
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        self.crypto.device()
    }

    /// The monitoring period.
    pub fn period(&self) -> Period {
        self.period
    }

    /// The health log, for queries.
    pub fn log(&self) -> &HealthLog {
        &self.log
    }

    /// Compact automatically after this many stored chunks (0 disables).
    pub fn set_compact_every(&mut self, chunks: u64) {
        self.journal.set_compact_every(chunks);
    }

    /// Number of change chunks stored since the last snapshot.
    pub fn pending_chunks(&self) -> u64 {
        self.journal.since_snapshot()
    }

    /// Fold automatically once this many readings wait in the journal
    /// (0: only at sync, before other writes, and on [`Vault::fold`]).
    pub fn set_fold_every(&mut self, readings: u64) {
        self.journal.set_fold_every(readings);
    }

    /// Readings durable in the journal and not yet folded into the log's
    /// document (they are in every view already).
    pub fn pending_readings(&self) -> usize {
        Journal::pending_readings(&self.log)
    }

    /// Folds the readings waiting in the journal into the log as one
    /// Automerge change, stored as one chunk in the same atomic batch that
    /// removes their journal entries. Sync, every other write and reading
    /// the heads fold by themselves, and so does a record that brings the
    /// journal to its size ([`Vault::set_fold_every`]); an app calls this
    /// on a timer to bound the journal in time as well. Nothing is lost if
    /// it fails: the readings stay in the journal.
    pub fn fold(&mut self) -> Result<(), WriteError> {
        self.journal.fold_in_memory(&mut self.log)?;
        self.persist()
    }

    /// Closes the vault: folds the readings waiting in the journal and,
    /// when chunks were stored since the last snapshot, compacts them, so
    /// the next open loads one document. Automerge applies the changes
    /// after a snapshot by walking the whole list of readings, however
    /// small they are: on a week's vault that was ~20 % of an open.
    ///
    /// Nothing is lost if this fails or is never called (a kill): the fold
    /// and the compaction are the ordinary ones, with their crash safety,
    /// and the next open then loads the snapshot, the chunks and the
    /// journal as before. Dropping a vault writes nothing, on purpose: a
    /// drop is what a crash looks like to the simulation and the tests.
    pub fn close(mut self) -> Result<(), WriteError> {
        self.fold()?;
        // `compact_every` 0 means the app wants no compaction at all.
        if self.journal.since_snapshot() > 0 && self.journal.compacts() {
            self.compact()?;
        }
        // A store made before the device's id was kept beside the snapshot
        // gets it now, for the next open to load the snapshot while sled
        // opens (see `Journal::preload`).
        let device = self.crypto.device();
        if self.storage.get_blob(DEVICE_BLOB)?.as_deref() != Some(&device.0[..]) {
            self.storage.put_blob(DEVICE_BLOB, &device.0)?;
        }
        Ok(())
    }

    // ---- writing the log ----

    /// Records a reading. When this returns Ok the reading is sealed and
    /// durably stored (see SECURITY.md for what "durably" means on sled).
    ///
    /// An alert this reading completes is queued as of `time_ms`: for a
    /// reading measured earlier and entered now, use
    /// [`Vault::record_received`], or the alert looks overdue at once.
    pub fn record(
        &mut self,
        metric: Metric,
        value: f64,
        unit: Unit,
        time_ms: i64,
    ) -> Result<ReadingId, WriteError> {
        self.record_received(metric, value, unit, time_ms, time_ms)
    }

    /// [`Vault::record`] of a reading measured at `time_ms` and entered at
    /// `now_ms` (a back-dated reading): an alert it completes is queued at
    /// `now_ms`, so its delivery deadline runs from when it could first be
    /// sent, not from when the fever was measured.
    pub fn record_received(
        &mut self,
        metric: Metric,
        value: f64,
        unit: Unit,
        time_ms: i64,
        now_ms: i64,
    ) -> Result<ReadingId, WriteError> {
        let reading = self.log.stage(metric, value, unit, time_ms)?;
        self.journal_append(&[reading])?;
        let id = reading.id;
        // The alert is evaluated now, on the staged reading: it never waits
        // for a fold.
        if metric == Metric::BodyTemperature {
            self.alerts.watch_fever(
                self.storage.as_mut(),
                &mut self.crypto,
                &self.log,
                value,
                now_ms,
            )?;
        }
        Ok(id)
    }

    /// Records what a wristband sent over Bluetooth GATT: the raw value of a
    /// Temperature (0x2A1C), Heart Rate (0x2A37) or PLX Continuous (0x2A5F)
    /// Measurement characteristic (docs/spec.md §6.1). The reading's time is
    /// the packet's own time stamp, read as UTC, when it has one, else
    /// `received_at_ms`. A malformed packet, a special value (NaN, ±INF, ...)
    /// or a value the log refuses records nothing; a packet with two values
    /// (SpO2 and pulse rate) records both or neither. Durable on Ok.
    pub fn record_gatt(
        &mut self,
        characteristic: u16,
        bytes: &[u8],
        received_at_ms: i64,
    ) -> Result<Vec<Reading>, WriteError> {
        let m = vigil_log::gatt::decode(characteristic, bytes)?;
        let time_ms = m.time_ms(received_at_ms);
        // Every value is checked before any is written, so that a packet
        // with two values records both or neither.
        let mut values = Vec::with_capacity(2);
        for (metric, value) in m.values() {
            values.push((metric, metric.validate(value, metric.unit())?));
        }
        if time_ms < 0 {
            return Err(LogError::NegativeTime(time_ms).into());
        }
        let mut recorded = Vec::with_capacity(values.len());
        for (metric, value) in values {
            match self.log.stage(metric, value, metric.unit(), time_ms) {
                Ok(r) => recorded.push(r),
                Err(e) => {
                    self.log.unstage_last(recorded.len());
                    return Err(e.into());
                }
            }
        }
        // Both values of a packet in one journal entry: both or neither.
        self.journal_append(&recorded)?;
        for r in &recorded {
            if r.metric == Metric::BodyTemperature {
                self.alerts.watch_fever(
                    self.storage.as_mut(),
                    &mut self.crypto,
                    &self.log,
                    r.value,
                    // Queued when it arrived, not when the packet says it
                    // was measured (a wristband's stored readings).
                    received_at_ms,
                )?;
            }
        }
        Ok(recorded)
    }

    /// Annotates a reading (durable on Ok).
    pub fn annotate(&mut self, id: ReadingId, text: &str) -> Result<(), WriteError> {
        self.fold_first()?;
        self.log.annotate(id, text)?;
        self.persist()
    }

    /// Retracts a reading with a reason (durable on Ok).
    pub fn retract(&mut self, id: ReadingId, reason: &str, time_ms: i64) -> Result<(), WriteError> {
        self.fold_first()?;
        self.log.retract(id, reason, time_ms)?;
        self.persist()
    }

    /// Takes back a reading's retraction (durable on Ok): it counts again
    /// in views, statistics and the fever rule, so alerts are evaluated
    /// anew at `now_ms` (a fever it completes is alerted now). Returns the
    /// retraction removed.
    pub fn unretract(&mut self, id: ReadingId, now_ms: i64) -> Result<Retraction, WriteError> {
        self.fold_first()?;
        let r = self.log.unretract(id)?;
        self.persist()?;
        self.evaluate_alerts(now_ms)?;
        Ok(r)
    }

    /// Sets a check-in value, or resolves a conflict (durable on Ok).
    pub fn check_in(
        &mut self,
        day: Day,
        symptom: Symptom,
        severity: Severity,
    ) -> Result<(), WriteError> {
        self.fold_first()?;
        self.log.check_in(day, symptom, severity)?;
        self.persist()
    }

    /// Seals freshly staged readings as one journal entry, durably; folds
    /// when the journal is full. On a failed write they are unstaged
    /// (nothing recorded), so Ok means durable and Err means absent.
    fn journal_append(&mut self, readings: &[Reading]) -> Result<(), WriteError> {
        let due =
            match self
                .journal
                .append(self.storage.as_mut(), &mut self.crypto, &self.log, readings)
            {
                Ok(due) => due,
                Err(e) => {
                    self.log.unstage_last(readings.len());
                    return Err(e);
                }
            };
        if due {
            // The readings are durable already; a failed fold leaves them
            // in the journal for the next one, so it is logged, not returned
            // (an Err would tell the caller a durable reading was not
            // recorded, and a retry would record it twice).
            if let Err(e) = self.fold() {
                tracing::warn!(error = %e, "fold failed; will retry");
            }
        }
        Ok(())
    }

    /// Before any other change: commit the staged readings first, so the
    /// document's change order keeps every reading before what refers to
    /// it (annotation, retraction). In memory only: the write that follows
    /// stores both in one chunk and removes the journal entries.
    fn fold_first(&mut self) -> Result<(), WriteError> {
        self.journal.fold_in_memory(&mut self.log)
    }

    /// Stores every change not yet stored (and removes the journal entries
    /// folded into them); compacts when it is due.
    fn persist(&mut self) -> Result<(), WriteError> {
        let due = self.journal.persist(
            self.storage.as_mut(),
            &mut self.crypto,
            &mut self.log,
            &self.faults,
        )?;
        if due {
            // The change is already durable; a failed compaction only delays
            // compaction, so it is logged, not returned.
            if let Err(e) = self.compact() {
                tracing::warn!(error = %e, "compaction failed; will retry");
            }
        }
        Ok(())
    }

    /// Writes one sealed snapshot of the whole log, then drops the chunks it
    /// covers, and the received bundles it holds.
    fn compact(&mut self) -> Result<(), WriteError> {
        let mut batch = self.journal.compact(
            self.storage.as_mut(),
            &mut self.crypto,
            &mut self.log,
            &self.faults,
        )?;
        // Received bundles are in the snapshot too, unless some change still
        // waits for a dependency (Automerge keeps those out of `save()`).
        let forget = self.log.missing_deps() == 0;
        if forget {
            SyncState::forget_received(self.storage.as_ref(), &mut batch)?;
        }
        self.storage.apply(batch)?;
        if forget {
            self.sync.received_folded();
        }
        Ok(())
    }

    /// The log's Automerge heads (equal on two devices that hold the same
    /// changes). Folds the journal first, so the heads cover every reading.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.fold_quietly();
        let mut h = self.log.heads();
        h.sort();
        h
    }

    /// The plaintext log as a compact Automerge document, for the resident's
    /// own use (export). This is plaintext: it is never written by the vault.
    pub fn export_automerge(&mut self) -> Vec<u8> {
        self.fold_quietly();
        self.log.save()
    }

    /// Folds for a caller that cannot return a write error: the in-memory
    /// fold cannot fail for want of storage, so the document holds every
    /// reading either way; if storing its chunk fails, the readings stay in
    /// the journal (durable) and the next write stores the chunk.
    fn fold_quietly(&mut self) {
        if let Err(e) = self.fold() {
            tracing::warn!(error = %e, "fold failed; the journal keeps the readings");
        }
    }

    // ---- sync and pairing ----

    /// Syncs with the node: pushes this device's new changes as one sealed
    /// bundle and pulls what the version vector lacks.
    pub fn sync(&mut self, conn: &mut dyn Exchange) -> Result<SyncReport, SyncFailure> {
        self.sync_with(conn, SnapshotPolicy::Auto)
    }

    /// [`Vault::sync`] with a choice of when to upload a relay snapshot.
    pub fn sync_with(
        &mut self,
        conn: &mut dyn Exchange,
        policy: SnapshotPolicy,
    ) -> Result<SyncReport, SyncFailure> {
        self.sync_registering(conn, policy, true, true)
    }

    /// [`Vault::sync_with`]; `register`: confirm the mailbox at the node
    /// before authenticating (see [`PendingJoin::confirm`] for when not);
    /// `fold_received`: compact what was received into the local snapshot
    /// if it is worth it now (a join leaves it to the next sync).
    fn sync_registering(
        &mut self,
        conn: &mut dyn Exchange,
        policy: SnapshotPolicy,
        register: bool,
        fold_received: bool,
    ) -> Result<SyncReport, SyncFailure> {
        // Every reading goes out, folded: the bundle carries one change for
        // the readings since the last sync, not one per reading.
        self.fold()?;
        let r = self.sync.sync(
            self.storage.as_mut(),
            &mut self.crypto,
            &mut self.log,
            conn,
            policy,
            &self.faults,
            register,
        );
        match r {
            Err(SyncFailure::Protocol(SyncError::Refused(ProtoError::VaultShredded {
                ref notice,
            }))) => match self.crypto.open_shred_notice(notice) {
                Some(at_ms) => Err(SyncFailure::ShreddedElsewhere(self.shred_in_place(at_ms)?)),
                // Not sealed by a device of this vault: a lying node. Keep
                // everything and report the refusal as it came.
                None => {
                    tracing::warn!("shred notice does not open; vault kept");
                    r
                }
            },
            Ok(report) => {
                // What other devices sent is applied again at every open
                // until a local snapshot holds it: past the bytes that make
                // a compaction due for our own chunks, fold it in (the
                // same compaction, so the same crash safety). Not while a
                // change waits for a dependency: `save()` leaves it out,
                // so the received records would stay, and so would the
                // reason to compact.
                if fold_received
                    && self.journal.compacts()
                    && self.sync.received_worth_folding()
                    && self.log.missing_deps() == 0
                    && let Err(e) = self.compact()
                {
                    tracing::warn!(error = %e, "compaction failed; will retry");
                }
                Ok(report)
            }
            r => r,
        }
    }

    /// Another device shredded the vault: writes the tombstone (from now on
    /// the vault never opens) and deletes the store. The key is destroyed by
    /// [`Vault::finish_shred`] or, failing that, by the next open, which
    /// finds the tombstone (the vault holds no key store of its own).
    fn shred_in_place(&mut self, shredded_at_ms: i64) -> Result<Tombstone, SyncFailure> {
        let t = Tombstone {
            vault_id: self.vault_id(),
            period: self.period,
            shredded_at_ms,
            receipt_sha256: None,
            receipt: None,
        };
        self.storage.put_tombstone(&t.encode())?;
        let storage = std::mem::replace(&mut self.storage, Box::new(crate::MemStorage::new()));
        storage.destroy()?;
        Ok(t)
    }

    /// After [`SyncFailure::ShreddedElsewhere`]: destroys this vault's key in
    /// `key_store` (only if it is this vault's) and drops the vault, whose
    /// keys and log are zeroized.
    pub fn finish_shred(self, key_store: &dyn KeyStore) -> Result<(), ShredError> {
        key_store.destroy_if(self.vault_id())?;
        Ok(())
    }

    /// First device: syncs (uploading a snapshot, so the joiner needs one
    /// download, unless the node holds one that covers nearly all: see
    /// [`SnapshotPolicy::Join`]), then leaves the period's root, wrapped to
    /// `joiner`, at the node, and returns the code the resident compares
    /// on both screens.
    pub fn offer_pairing(
        &mut self,
        conn: &mut dyn Exchange,
        joiner: &X25519PublicKey,
        now_ms: i64,
    ) -> Result<ShortAuthCode, SyncFailure> {
        self.sync_with(conn, SnapshotPolicy::Join)?;
        let mut batch = Batch::default();
        disclosure::disclose(
            self.storage.as_ref(),
            &mut self.crypto,
            &mut batch,
            &Disclosure::Pairing {
                at_ms: now_ms,
                joiner: *joiner,
            },
        )?;
        self.storage.apply(batch)?;
        pairing::offer(&mut self.crypto, self.period, conn, joiner)
    }

    /// The code the resident compares while pairing `joiner` (the one
    /// [`Vault::offer_pairing`] returns), e.g. to show it again.
    pub fn pairing_code(&self, joiner: &X25519PublicKey) -> ShortAuthCode {
        self.crypto.keys().pairing_code(joiner)
    }

    /// Joining device, step 1: takes the offer left for `identity` from the
    /// node and opens it. Nothing is stored or synced: show
    /// [`PendingJoin::code`], and only if the resident confirms that the
    /// first device shows the same code, call [`PendingJoin::confirm`].
    pub fn fetch_join(
        conn: &mut dyn Exchange,
        identity: &X25519Identity,
    ) -> Result<PendingJoin, SyncFailure> {
        pairing::fetch(conn, identity)
    }

    // ---- fever alerts ----    // ---- fever alerts ----

    /// The grants this device made.
    pub fn grants(&self) -> Result<Vec<Grant>, StorageError> {
        Ok(self.alerts.grants().to_vec())
    }

    /// Everything that ever left this device, oldest first.
    pub fn disclosures(&self) -> Result<Vec<Disclosure>, StorageError> {
        disclosure::disclosures(self.storage.as_ref(), &self.crypto)
    }

    /// Enrols with `node` using the staff `ticket` (docs/spec.md §15):
    /// registers the vault's mailbox and grants the node the fever-alert
    /// capability for this period under `rule`. The label the node shows
    /// with the alerts is the one staff set in the ticket, and the grant
    /// ends at the ticket's period end at the latest: the returned grant
    /// says both. The grant is recorded in the disclosure log before it is
    /// sent; alerts already due are queued. Another device of the vault may
    /// enrol with the same ticket.
    pub fn enrol(
        &mut self,
        conn: &mut dyn Exchange,
        node: &X25519PublicKey,
        ticket: &Ticket,
        rule: FeverRule,
        now_ms: i64,
    ) -> Result<Grant, SyncFailure> {
        // The node that unwraps the alert key must be the one it is for.
        if conn.node().x25519() != node {
            return Err(SyncFailure::WrongNode);
        }
        let grant = self.alerts.enrol(
            self.storage.as_mut(),
            &mut self.crypto,
            conn,
            node,
            ticket,
            rule,
            now_ms,
        )?;
        self.evaluate_alerts(now_ms)?;
        Ok(grant)
    }

    /// Registers the vault's mailbox at the node with the staff `ticket`,
    /// without a fever-alert grant (docs/spec.md §15): from then on the
    /// vault's devices sync through the node. A later [`Vault::enrol`] with
    /// the same ticket adds the grant.
    pub fn redeem_ticket(
        &mut self,
        conn: &mut dyn Exchange,
        ticket: &Ticket,
    ) -> Result<Enrolment, SyncFailure> {
        let mailbox = self.crypto.keys().mailbox_key(&conn.node());
        let mut conv = RedeemTicket::new(
            *self.crypto.vault_id().as_bytes(),
            ticket,
            Registration {
                verifier: mailbox.verifier().to_bytes(),
                expires_ms: self.period.end_ms,
            },
        );
        drive(&mut conv, conn, |_| Ok::<(), SyncFailure>(()))?;
        let (label, period_end_ms) = conv.enrolled().ok_or_else(|| {
            SyncFailure::Protocol(SyncError::Unexpected(
                "the node did not answer the ticket".into(),
            ))
        })?;
        Ok(Enrolment {
            label: label.to_owned(),
            period_end_ms,
        })
    }

    /// Evaluates every grant's rule over the merged log and queues an alert
    /// for each episode start (and end) not alerted yet. Called on every
    /// body-temperature reading and before alerts are sent.
    pub fn evaluate_alerts(&mut self, now_ms: i64) -> Result<usize, WriteError> {
        self.alerts
            .evaluate(self.storage.as_mut(), &mut self.crypto, &self.log, now_ms)
    }

    /// Alerts not yet acknowledged by their node (the delivery watch: see
    /// [`PendingAlert::overdue`]).
    pub fn pending_alerts(&self) -> Result<Vec<PendingAlert>, StorageError> {
        Alerts::pending(self.storage.as_ref(), &self.crypto)
    }

    /// Evaluates the rule, then sends every pending alert for `node` over
    /// `conn`, removing each from the outbox once the node acknowledges it.
    pub fn send_alerts(
        &mut self,
        conn: &mut dyn Exchange,
        node: &X25519PublicKey,
        now_ms: i64,
    ) -> Result<AlertReport, SyncFailure> {
        if conn.node().x25519() != node {
            return Err(SyncFailure::WrongNode);
        }
        self.evaluate_alerts(now_ms)?;
        self.alerts
            .deliver(self.storage.as_mut(), &mut self.crypto, conn, node, now_ms)
    }

    /// Alerts their node confirmed (by onset), each with when staff
    /// acknowledged it if the node said so ([`Vault::refresh_alert_status`]).
    pub fn delivered_alerts(&self) -> Result<Vec<DeliveredAlert>, StorageError> {
        Alerts::delivered(self.storage.as_ref(), &self.crypto)
    }

    /// Asks `node` over `conn` whether staff acknowledged this device's
    /// delivered alerts not yet known acknowledged, and stores the answer
    /// durably (docs/spec.md §12). A node that will not tell (an older one,
    /// or one refusing the question) leaves them unknown and fails nothing;
    /// only a transport or protocol failure is an error. Call it after
    /// [`Vault::send_alerts`]; with nothing to ask, nothing is sent.
    pub fn refresh_alert_status(
        &mut self,
        conn: &mut dyn Exchange,
        node: &X25519PublicKey,
    ) -> Result<AlertStatusReport, SyncFailure> {
        // The proof is for this node's grant: never shown to another node.
        if conn.node().x25519() != node {
            return Err(SyncFailure::WrongNode);
        }
        self.alerts
            .refresh_status(self.storage.as_mut(), &mut self.crypto, conn, node)
    }

    // ---- shredding ----

    /// Whether the period is over at `now_ms` (the app's timer calls this,
    /// then [`Vault::shred_now`]).
    pub fn is_due(&self, now_ms: i64) -> bool {
        self.period.is_over(now_ms)
    }

    /// Shreds the vault now (at the end of the period, or early at the
    /// resident's request): tombstone, key destruction, store deletion.
    pub fn shred_now(self, key_store: &dyn KeyStore, now_ms: i64) -> Result<Tombstone, ShredError> {
        self.shred_with_receipt(key_store, now_ms, None)
    }

    /// Shreds the vault, first asking the node behind `conn` to delete the
    /// mailbox and this device's grants at once. The node's signed receipt
    /// goes into the tombstone. If the node cannot be reached the shred goes
    /// ahead anyway (the node's sweeper deletes at the period's end).
    pub fn shred_with_node(
        mut self,
        conn: &mut dyn Exchange,
        key_store: &dyn KeyStore,
        now_ms: i64,
    ) -> Result<Tombstone, ShredError> {
        let node = conn.node();
        // This node's grants, each with the proof that this vault holds it
        // (the node deletes a grant only with it, spec §13); other nodes'
        // grants are none of its business.
        let vault_id = self.vault_id();
        let grants = self
            .alerts
            .grants()
            .iter()
            .filter(|g| g.node == *node.x25519())
            .map(|g| GrantDeletion {
                grant_id: g.grant_id,
                proof: self
                    .crypto
                    .keys()
                    .alert_key(&g.node)
                    .shred_proof(&vault_id, &g.grant_id),
            })
            .collect();
        // The mailbox key for the node behind `conn`, and only that node.
        let mailbox = self.crypto.keys().mailbox_key(&node);
        // The other devices learn of the shred from this notice, which only
        // the vault's keys open: the node relays it but cannot forge it.
        let notice = self.crypto.seal_shred_notice(now_ms).unwrap_or_default();
        let receipt = match shred::request_deletion(
            conn,
            self.vault_id(),
            mailbox.expose_secret(),
            grants,
            notice,
        ) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "node not told to delete; its sweeper will");
                None
            }
        };
        self.shred_with_receipt(key_store, now_ms, receipt)
    }

    fn shred_with_receipt(
        self,
        key_store: &dyn KeyStore,
        now_ms: i64,
        receipt: Option<Vec<u8>>,
    ) -> Result<Tombstone, ShredError> {
        let t = Tombstone {
            vault_id: self.vault_id(),
            period: self.period,
            shredded_at_ms: now_ms,
            receipt_sha256: receipt.as_deref().map(Tombstone::receipt_digest),
            receipt,
        };
        // Dropping the rest of the vault zeroizes every key and the log.
        let Vault { storage, .. } = self;
        shred::shred(storage, key_store, &t)
    }

    // ---- simulation only ----

    /// Injects `fault` into this vault until it is dropped.
    #[cfg(feature = "fault-injection")]
    pub fn inject_fault(&mut self, fault: crate::DeviceFault) {
        self.faults.inject(fault);
    }
}

impl PendingJoin {
    /// Joining device, step 2, once the resident has confirmed that both
    /// screens show the same code: creates this device's vault in `storage`
    /// with the received root (written to `key_store`) and syncs the whole
    /// log.
    pub fn confirm<R: CryptoRng + ?Sized>(
        self,
        storage: Box<dyn Storage>,
        key_store: Box<dyn KeyStore>,
        conn: &mut dyn Exchange,
        rng: &mut R,
    ) -> Result<Vault, SyncFailure> {
        let PendingJoin { root, period, .. } = self;
        let mut key_store = key_store;
        let mut vault =
            Vault::create_with_root(storage, period, Some(key_store.as_mut()), root, false, rng)?;
        // The offer came through the vault's mailbox, so the node the joiner
        // fetched it from has the mailbox: `Auth` proves the key there, and
        // a `Register` first (which never creates a mailbox: that takes a
        // staff ticket) would only add a round trip. A node that does not
        // know the vault (another one than the offer's) is asked again with
        // `Register`, so the joiner gets the answer any sync there gets
        // (`TicketRequired`, which the app explains), not a bare `UnknownVault`.
        // What the join received is stored as it came; folding it into a
        // local snapshot (saving and sealing the whole log again, a third
        // of a week's join) waits for the next sync, off the pairing screen.
        match vault.sync_registering(conn, SnapshotPolicy::Never, false, false) {
            Err(SyncFailure::Protocol(SyncError::Refused(ProtoError::UnknownVault))) => {
                vault.sync_registering(conn, SnapshotPolicy::Never, true, false)?;
            }
            r => {
                r?;
            }
        }
        Ok(vault)
    }
}

/// What an open did while sled opened the store (see
/// [`Vault::open_waiting`]).
enum Early {
    /// The key as the key store gave it: nothing else was done (no device
    /// id beside the snapshot, or no randomness for the keys).
    Key(Result<Option<RootKey>, KeyStoreError>),
    /// The keys for the device the id beside the snapshot names, and the
    /// snapshot's log if it loaded (boxed: the keys' state is ~5 KiB).
    Ready(Box<(VaultCrypto, Option<Preloaded>)>),
    /// Nothing: the key is loaded again (a failed thread, or an open that
    /// did not start early).
    Reload,
}

impl Early {
    /// Makes the keys for the device named beside the snapshot in `dir`,
    /// and loads the snapshot's log with them.
    fn start(dir: &Path, root: Result<Option<RootKey>, KeyStoreError>) -> Early {
        let root = match root {
            Ok(Some(root)) => root,
            other => return Early::Key(other),
        };
        let device = match SledStorage::read_blob(dir, DEVICE_BLOB) {
            Ok(Some(d)) => match <[u8; 16]>::try_from(d.as_slice()) {
                Ok(d) => DeviceId(d),
                Err(_) => return Early::Key(Ok(Some(root))),
            },
            _ => return Early::Key(Ok(Some(root))),
        };
        let Ok(mut rng) = system_rng() else {
            return Early::Key(Ok(Some(root)));
        };
        let crypto = VaultCrypto::new(KeySchedule::new(root), device, &mut rng);
        let preloaded = Journal::preload(dir, &crypto);
        Early::Ready(Box::new((crypto, preloaded)))
    }
}
