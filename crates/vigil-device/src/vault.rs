//! The resident's vault: the health log, its keys and its encrypted store
//! (docs/spec.md §8).

use std::path::Path;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use vigil_crypto::rand_core::CryptoRng;
use vigil_crypto::{Context, KeySchedule, Kind, LogKey, RootKey, VaultId, open, seal};
use vigil_log::{Day, DeviceId, HealthLog, LogError, Metric, ReadingId, Severity, Symptom, Unit};

use crate::keystore::{KeyStore, KeyStoreError};
use crate::storage::{Batch, SledStorage, Storage, StorageError};

/// The store format version this build writes and the highest it reads.
pub const STORE_FORMAT: u32 = 1;
/// By default, compact after this many stored change chunks.
pub const DEFAULT_COMPACT_EVERY: u64 = 256;

const K_FORMAT: &[u8] = b"m/format";
const K_VAULT: &[u8] = b"m/vault";
const K_DEVICE: &[u8] = b"m/device";
const K_PERIOD: &[u8] = b"m/period";
/// The snapshot is a named blob, not a key: see [`Storage::put_blob`].
const SNAPSHOT_BLOB: &str = "snapshot";
const P_CHUNK: &[u8] = b"c/";
/// Bundles received from other devices, stored as received (sealed).
pub(crate) const P_RECEIVED: &[u8] = b"r/";

/// A monitoring period, in ms since the Unix epoch (UTC), `start <= t < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// First instant of the period.
    pub start_ms: i64,
    /// First instant after the period.
    pub end_ms: i64,
}

impl Period {
    /// A period of `days` days from `start_ms`.
    pub fn days(start_ms: i64, days: u32) -> Self {
        Period {
            start_ms,
            end_ms: start_ms + i64::from(days) * 86_400_000,
        }
    }
}

/// Why a vault could not be created or opened. Opening never writes, so
/// nothing already stored is lost whatever the error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The key store holds no root key for this vault.
    #[error(
        "no key for this vault in the key store (was it shredded, or is this the wrong key store?)"
    )]
    MissingKey,
    /// The key store holds a root, but of another vault.
    #[error("the key store holds the key of another vault (expected vault {expected})")]
    WrongKey {
        /// The vault the store belongs to.
        expected: VaultId,
    },
    /// The vault was shredded (now, or earlier): only its tombstone remains.
    #[error("this vault was shredded at the end of its period (vault {}, shredded at {} ms)", .0.vault_id, .0.shredded_at_ms)]
    Shredded(crate::shred::Tombstone),
    /// A shred could not complete; opening again retries it.
    #[error(transparent)]
    Shred(#[from] crate::shred::ShredError),
    /// The directory holds no vault.
    #[error("no vault found in {0}")]
    NotAVault(String),
    /// The directory already holds a vault.
    #[error("a vault already exists in {0}")]
    AlreadyExists(String),
    /// Written by a newer version of Vigil.
    #[error("the vault uses store format {found}; this build reads up to {supported}")]
    NewerFormat {
        /// Format found.
        found: u32,
        /// Highest format this build reads.
        supported: u32,
    },
    /// Stored data failed to decrypt or decode.
    #[error("the vault store is corrupted: {0}")]
    Corrupt(String),
    /// The period is empty or reversed.
    #[error("invalid monitoring period: end {end_ms} is not after start {start_ms}")]
    InvalidPeriod {
        /// Start.
        start_ms: i64,
        /// End.
        end_ms: i64,
    },
    /// The storage layer failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The key store failed.
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
}

/// Why a write to the vault failed. On a storage error the change stays
/// pending in memory and is written with the next successful write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The input was refused (bad value, unknown reading, ...).
    #[error(transparent)]
    Invalid(#[from] LogError),
    /// The storage layer failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The change was too large to seal.
    #[error("change too large to store: {0}")]
    TooLarge(String),
}

/// One resident device's vault for one monitoring period.
pub struct Vault {
    pub(crate) storage: Box<dyn Storage>,
    pub(crate) keys: KeySchedule,
    pub(crate) log_key: LogKey,
    pub(crate) device: DeviceId,
    pub(crate) period: Period,
    pub(crate) log: HealthLog,
    /// Sequence number of the next stored chunk.
    next_seq: u64,
    /// Chunks stored since the last snapshot.
    chunks_since_snapshot: u64,
    compact_every: u64,
    pub(crate) rng: ChaCha20Rng,
    /// Whether an evaluation saw a fever episode still open (so every
    /// temperature reading, high or not, may end it).
    pub(crate) episode_open: bool,
    /// Injected bugs (simulation harness only).
    #[cfg(feature = "fault-injection")]
    pub(crate) faults: Vec<crate::DeviceFault>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("vault_id", &self.keys.vault_id())
            .field("device", &self.device)
            .field("period", &self.period)
            .field("readings", &self.log.len())
            .finish_non_exhaustive()
    }
}

fn chunk_key(seq: u64) -> Vec<u8> {
    let mut k = P_CHUNK.to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn chunk_ctx(vault: VaultId, device: DeviceId, seq: u64) -> Context {
    Context::new("vigil/v1/chunk")
        .bytes(vault.as_bytes())
        .bytes(&device.0)
        .u64(seq)
}

fn snapshot_ctx(vault: VaultId, device: DeviceId, covered: u64) -> Context {
    Context::new("vigil/v1/snapshot")
        .bytes(vault.as_bytes())
        .bytes(&device.0)
        .u64(covered)
}

fn fixed<const N: usize>(v: Option<Vec<u8>>, what: &str) -> Result<[u8; N], OpenError> {
    v.ok_or_else(|| OpenError::Corrupt(format!("{what} missing")))?
        .try_into()
        .map_err(|_| OpenError::Corrupt(format!("{what} has the wrong length")))
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
        Self::create_with_root(storage, period, key_store, root, true, rng)
    }

    /// Creates a vault for an existing root (a paired device joining), or a
    /// new one (`new_log`: this device starts the log).
    pub(crate) fn create_with_root<R: CryptoRng + ?Sized>(
        storage: Box<dyn Storage>,
        period: Period,
        mut key_store: Box<dyn KeyStore>,
        root: RootKey,
        new_log: bool,
        rng: &mut R,
    ) -> Result<Vault, OpenError> {
        if storage.get(K_FORMAT)?.is_some() || storage.tombstone()?.is_some() {
            return Err(OpenError::AlreadyExists("this store".into()));
        }
        let mut device = [0u8; 16];
        rng.fill_bytes(&mut device);
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        // The key first: a crash before the store is written leaves a key
        // without a vault (harmless), never a vault without its key.
        key_store.store(&root)?;
        let keys = KeySchedule::new(root);
        let device = DeviceId(device);
        let mut vault = Vault {
            log_key: keys.log_key(),
            keys,
            device,
            period,
            log: if new_log {
                HealthLog::new(device)
            } else {
                HealthLog::empty(device)
            },
            storage,
            next_seq: 1,
            chunks_since_snapshot: 0,
            compact_every: DEFAULT_COMPACT_EVERY,
            rng: ChaCha20Rng::from_seed(seed),
            episode_open: false,
            #[cfg(feature = "fault-injection")]
            faults: Vec::new(),
        };
        let mut batch = Batch::default();
        let mut p = period.start_ms.to_be_bytes().to_vec();
        p.extend_from_slice(&period.end_ms.to_be_bytes());
        batch.put(K_VAULT, vault.keys.vault_id().as_bytes().to_vec());
        batch.put(K_DEVICE, device.0.to_vec());
        batch.put(K_PERIOD, p);
        // The snapshot first: until the metadata batch lands, this is not a
        // vault, and a second create simply overwrites the snapshot.
        vault.write_snapshot().map_err(|e| match e {
            WriteError::Storage(s) => OpenError::Storage(s),
            e => OpenError::Corrupt(e.to_string()),
        })?;
        batch.put(K_FORMAT, STORE_FORMAT.to_be_bytes().to_vec());
        vault.storage.apply(batch)?;
        Ok(vault)
    }

    /// Opens the vault in `dir` with its key store, shredding it first if
    /// its period is over by the system clock (see [`Vault::open_at`]).
    pub fn open(dir: &Path, key_store: &dyn KeyStore) -> Result<Vault, OpenError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(i64::MAX);
        Self::open_at(dir, key_store, now)
    }

    /// Opens the vault in `dir` as of `now_ms`. A vault whose tombstone
    /// exists has its shred completed; a vault whose period is over at
    /// `now_ms` is shredded. Both return [`OpenError::Shredded`].
    pub fn open_at(dir: &Path, key_store: &dyn KeyStore, now_ms: i64) -> Result<Vault, OpenError> {
        if let Some(t) = SledStorage::read_tombstone(dir)? {
            return Err(OpenError::Shredded(crate::shred::finish_dir(
                dir, key_store, &t,
            )?));
        }
        let vault = Self::open_unchecked(dir, key_store)?;
        if vault.is_due(now_ms) {
            return Err(OpenError::Shredded(vault.shred_now(key_store, now_ms)?));
        }
        Ok(vault)
    }

    fn open_unchecked(dir: &Path, key_store: &dyn KeyStore) -> Result<Vault, OpenError> {
        if !dir.join("conf").exists() && !dir.join("db").exists() {
            return Err(OpenError::NotAVault(dir.display().to_string()));
        }
        let storage = SledStorage::open(dir)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| OpenError::Storage(StorageError::Io(e.to_string())))?;
        Self::open_with(
            Box::new(storage),
            key_store,
            &mut ChaCha20Rng::from_seed(seed),
        )
        .map_err(|e| match e {
            OpenError::NotAVault(_) => OpenError::NotAVault(dir.display().to_string()),
            e => e,
        })
    }

    /// Opens a vault on any [`Storage`], drawing its randomness from `rng`.
    pub fn open_with<R: CryptoRng + ?Sized>(
        storage: Box<dyn Storage>,
        key_store: &dyn KeyStore,
        rng: &mut R,
    ) -> Result<Vault, OpenError> {
        if let Some(t) = storage.tombstone()? {
            return Err(OpenError::Shredded(crate::shred::finish(
                storage, key_store, &t,
            )?));
        }
        let Some(format) = storage.get(K_FORMAT)? else {
            return Err(OpenError::NotAVault("this store".into()));
        };
        let format = u32::from_be_bytes(fixed::<4>(Some(format), "format")?);
        if format > STORE_FORMAT {
            return Err(OpenError::NewerFormat {
                found: format,
                supported: STORE_FORMAT,
            });
        }
        let vault_id = VaultId::from_bytes(fixed::<16>(storage.get(K_VAULT)?, "vault id")?);
        let device = DeviceId(fixed::<16>(storage.get(K_DEVICE)?, "device id")?);
        let p = fixed::<16>(storage.get(K_PERIOD)?, "period")?;
        let period = Period {
            start_ms: i64::from_be_bytes(p[..8].try_into().unwrap_or_default()),
            end_ms: i64::from_be_bytes(p[8..].try_into().unwrap_or_default()),
        };
        let root = key_store.load()?.ok_or(OpenError::MissingKey)?;
        let keys = KeySchedule::new(root);
        if keys.vault_id() != vault_id {
            return Err(OpenError::WrongKey { expected: vault_id });
        }
        let log_key = keys.log_key();

        let snap = storage
            .get_blob(SNAPSHOT_BLOB)?
            .ok_or_else(|| OpenError::Corrupt("snapshot missing".into()))?;
        if snap.len() < 8 {
            return Err(OpenError::Corrupt("snapshot truncated".into()));
        }
        let covered = u64::from_be_bytes(snap[..8].try_into().unwrap_or_default());
        let doc = open(
            &log_key,
            Kind::LogSnapshot,
            &snapshot_ctx(vault_id, device, covered),
            &snap[8..],
        )
        .map_err(|_| OpenError::Corrupt("snapshot does not decrypt".into()))?;
        let mut log = HealthLog::load_any(&doc, device)
            .map_err(|e| OpenError::Corrupt(format!("snapshot: {e}")))?;

        let mut pending = Vec::new();
        let mut last = covered;
        let mut count = 0;
        for (k, v) in storage.scan_prefix(P_CHUNK)? {
            let seq = u64::from_be_bytes(
                k[P_CHUNK.len()..]
                    .try_into()
                    .map_err(|_| OpenError::Corrupt("bad chunk key".into()))?,
            );
            if seq <= covered {
                // Left over by a compaction whose removal had not finished: covered already.
                continue;
            }
            let chunk = open(
                &log_key,
                Kind::LogBundle,
                &chunk_ctx(vault_id, device, seq),
                &v,
            )
            .map_err(|_| OpenError::Corrupt(format!("change {seq} does not decrypt")))?;
            pending.extend_from_slice(&chunk);
            last = seq;
            count += 1;
        }
        for (k, v) in storage.scan_prefix(P_RECEIVED)? {
            if k == crate::sync::K_RELAY_SNAPSHOT {
                let doc = crate::sync::open_relay_snapshot(&log_key, vault_id, &v)
                    .ok_or_else(|| OpenError::Corrupt("relay snapshot does not decrypt".into()))?;
                log.apply(&doc)
                    .map_err(|e| OpenError::Corrupt(format!("relay snapshot: {e}")))?;
                continue;
            }
            let (author, seq) = crate::sync::parse_received_key(&k)
                .ok_or_else(|| OpenError::Corrupt("bad received-bundle key".into()))?;
            let chunk = open(
                &log_key,
                Kind::LogBundle,
                &crate::sync::bundle_ctx(vault_id, author, seq),
                &v,
            )
            .map_err(|_| OpenError::Corrupt(format!("received bundle {seq} does not decrypt")))?;
            pending.extend_from_slice(&chunk);
        }
        if !pending.is_empty() {
            log.apply(&pending)
                .map_err(|e| OpenError::Corrupt(format!("changes: {e}")))?;
        }
        let (_, heads) = log.unsaved();
        log.mark_saved(heads);
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Ok(Vault {
            storage,
            log_key,
            keys,
            device,
            period,
            log,
            next_seq: last + 1,
            chunks_since_snapshot: count,
            compact_every: DEFAULT_COMPACT_EVERY,
            rng: ChaCha20Rng::from_seed(seed),
            episode_open: true,
            #[cfg(feature = "fault-injection")]
            faults: Vec::new(),
        })
    }

    /// Consumes the vault, dropping (and so zeroizing) every key and the
    /// decrypted log, and hands back its storage.
    pub(crate) fn into_storage(self) -> Box<dyn Storage> {
        let Vault { storage, .. } = self;
        storage
    }

    /// The vault's id.
    pub fn vault_id(&self) -> VaultId {
        self.keys.vault_id()
    }

    /// This device's id.
    pub fn device_id(&self) -> DeviceId {
        self.device
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
        self.compact_every = chunks;
    }

    /// Records a reading. When this returns Ok the reading is sealed and
    /// durably stored (see SECURITY.md for what "durably" means on sled).
    pub fn record(
        &mut self,
        metric: Metric,
        value: f64,
        unit: Unit,
        time_ms: i64,
    ) -> Result<ReadingId, WriteError> {
        let id = self.log.record(metric, value, unit, time_ms)?;
        self.persist()?;
        if metric == Metric::BodyTemperature {
            self.watch_fever(value, time_ms)?;
        }
        Ok(id)
    }

    /// Annotates a reading (durable on Ok).
    pub fn annotate(&mut self, id: ReadingId, text: &str) -> Result<(), WriteError> {
        self.log.annotate(id, text)?;
        self.persist()
    }

    /// Retracts a reading with a reason (durable on Ok).
    pub fn retract(&mut self, id: ReadingId, reason: &str, time_ms: i64) -> Result<(), WriteError> {
        self.log.retract(id, reason, time_ms)?;
        self.persist()
    }

    /// Sets a check-in value, or resolves a conflict (durable on Ok).
    pub fn check_in(
        &mut self,
        day: Day,
        symptom: Symptom,
        severity: Severity,
    ) -> Result<(), WriteError> {
        self.log.check_in(day, symptom, severity)?;
        self.persist()
    }

    /// Seals and stores every change not yet stored, as one chunk.
    pub(crate) fn persist(&mut self) -> Result<(), WriteError> {
        let (chunk, heads) = self.log.unsaved();
        if chunk.is_empty() {
            return Ok(());
        }
        let seq = self.next_seq;
        let sealed = seal(
            &self.log_key,
            Kind::LogBundle,
            &chunk_ctx(self.keys.vault_id(), self.device, seq),
            &chunk,
            &mut self.rng,
        )
        .map_err(|e| WriteError::TooLarge(e.to_string()))?;
        let mut batch = Batch::default();
        batch.put(chunk_key(seq), sealed);
        self.storage.apply(batch)?;
        self.log.mark_saved(heads);
        self.next_seq += 1;
        self.chunks_since_snapshot += 1;
        if self.compact_every > 0 && self.chunks_since_snapshot >= self.compact_every {
            // The reading is already durable; a failed compaction only delays
            // compaction, so it is logged, not returned.
            if let Err(e) = self.compact() {
                tracing::warn!(error = %e, "compaction failed; will retry");
            }
        }
        Ok(())
    }

    /// Seals the whole log and stores it as the snapshot blob; returns the
    /// last chunk seq it covers.
    fn write_snapshot(&mut self) -> Result<u64, WriteError> {
        let covered = self.next_seq - 1;
        let doc = self.log.save();
        let sealed = seal(
            &self.log_key,
            Kind::LogSnapshot,
            &snapshot_ctx(self.keys.vault_id(), self.device, covered),
            &doc,
            &mut self.rng,
        )
        .map_err(|e| WriteError::TooLarge(e.to_string()))?;
        let mut v = covered.to_be_bytes().to_vec();
        v.extend_from_slice(&sealed);
        self.storage.put_blob(SNAPSHOT_BLOB, &v)?;
        Ok(covered)
    }

    /// Writes one sealed snapshot of the whole log, then drops the chunks it
    /// covers. A crash in between leaves covered chunks, which open ignores.
    pub fn compact(&mut self) -> Result<(), WriteError> {
        self.persist_pending_only()?;
        let covered = self.write_snapshot()?;
        let mut batch = Batch::default();
        for (k, _) in self.storage.scan_prefix(P_CHUNK)? {
            if k.len() == P_CHUNK.len() + 8
                && u64::from_be_bytes(k[P_CHUNK.len()..].try_into().unwrap_or_default()) <= covered
            {
                batch.remove(k);
            }
        }
        // Received bundles are in the snapshot too, unless some change still
        // waits for a dependency (Automerge keeps those out of `save()`).
        if self.log.missing_deps() == 0 {
            for (k, _) in self.storage.scan_prefix(P_RECEIVED)? {
                batch.remove(k);
            }
        }
        self.storage.apply(batch)?;
        self.chunks_since_snapshot = 0;
        Ok(())
    }

    fn persist_pending_only(&mut self) -> Result<(), WriteError> {
        let every = std::mem::replace(&mut self.compact_every, 0);
        let r = self.persist();
        self.compact_every = every;
        r
    }

    /// The log's Automerge heads (equal on two devices that hold the same changes).
    pub fn heads(&mut self) -> Vec<vigil_log::ChangeHash> {
        let mut h = self.log.heads();
        h.sort();
        h
    }

    /// The plaintext log as a compact Automerge document, for the resident's
    /// own use (export). This is plaintext: it is never written by the vault.
    pub fn export_automerge(&mut self) -> Vec<u8> {
        self.log.save()
    }

    /// Number of change chunks stored since the last snapshot.
    pub fn pending_chunks(&self) -> u64 {
        self.chunks_since_snapshot
    }

    /// A fresh random value from the vault's RNG (for callers that need one).
    pub fn random_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}
