//! The narrow storage trait the vault writes through, its sled
//! implementation, and an in-memory one (docs/spec.md §8).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vigil_crypto::VaultId;

use crate::period::Period;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The store's files could not be opened or read as a store (damaged or truncated).
    #[error("the store is corrupted or unreadable: {0}")]
    Corrupt(String),
    /// sled refused the store's files as damaged.
    #[error("the store is corrupted or unreadable: {0}")]
    Damaged(#[source] sled::Error),
    /// An I/O error.
    #[error("store I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Another process, or another open vault in this process (sled's lock
    /// is per open file), held the store for longer than the open would wait.
    #[error(
        "the store in {dir} is in use by another process or another open vault in this process \
         (waited {waited_s} s): close the other before opening it again"
    )]
    Locked {
        /// The store's directory.
        dir: String,
        /// How long the open waited, whole seconds.
        waited_s: u64,
    },
    /// A blob name outside the store's naming rule (a bug, not bad data).
    #[error("invalid blob name {0:?}")]
    BadBlobName(String),
}

/// Key-value pairs in key order, as [`Storage::scan_prefix`] returns them.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A set of writes applied atomically.
#[derive(Debug, Default)]
pub struct Batch {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    /// Sets `key` to `value`.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), Some(value.into())));
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), None));
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[(Vec<u8>, Option<Vec<u8>>)] {
        &self.ops
    }
}

/// Ordered key-value storage. `apply` is atomic (all of a batch or none of
/// it survives a crash) and durable when it returns Ok. Only ciphertext and
/// non-sensitive metadata are ever given to it.
pub trait Storage: Send {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;
    /// Every (key, value) whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StorageError>;
    /// Applies `batch` atomically and durably.
    fn apply(&mut self, batch: Batch) -> Result<(), StorageError>;
    /// A named large value (the log snapshot), stored apart from the keys.
    fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Replaces a named large value atomically and durably: after a crash it
    /// holds either the old or the new value, whole.
    fn put_blob(&mut self, name: &str, value: &[u8]) -> Result<(), StorageError>;
    /// The tombstone, if the vault was shredded (or is being shredded).
    fn tombstone(&self) -> Result<Option<Vec<u8>>, StorageError>;
    /// Writes the tombstone atomically and durably. It survives [`Storage::destroy`].
    fn put_tombstone(&mut self, value: &[u8]) -> Result<(), StorageError>;
    /// Deletes everything but the tombstone. Idempotent.
    fn destroy(self: Box<Self>) -> Result<(), StorageError>;
    /// Marks the store as `vault`'s, for `period` (written once, at create
    /// or join). A store that is not a directory of files has nothing to mark.
    fn mark(&mut self, vault: VaultId, period: Period) -> Result<(), StorageError> {
        let _ = (vault, period);
        Ok(())
    }
}

/// The tombstone file's name in a sled store's directory.
pub const TOMBSTONE_FILE: &str = "vigil-tombstone";
/// The marker file naming the vault a directory holds: its id on the first
/// line, `period START_MS END_MS` on the second (docs/spec.md §8).
pub const MARKER_FILE: &str = "vigil-vault";
/// The prefix of the directories [`Vault::recover`](crate::Vault::recover)
/// moves a damaged store's files into (`vigil-damaged-1`, ...).
pub const DAMAGED_PREFIX: &str = "vigil-damaged-";

/// What the marker file says, as far as it is readable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Marker {
    /// The vault's id, hex (compared with the key's, never trusted alone).
    pub(crate) vault: Option<[u8; 16]>,
    /// The vault's period (absent from markers written before it was added).
    pub(crate) period: Option<Period>,
}

impl Marker {
    fn encode(vault: VaultId, period: Period) -> String {
        format!("{vault}\nperiod {} {}\n", period.start_ms, period.end_ms)
    }

    /// Parses what is readable; a damaged line is simply absent.
    fn parse(text: &str) -> Marker {
        let mut lines = text.lines();
        let vault = lines.next().and_then(|l| {
            let l = l.trim();
            let mut v = [0u8; 16];
            if l.len() != 32 || !l.is_ascii() {
                return None;
            }
            for (i, b) in v.iter_mut().enumerate() {
                *b = u8::from_str_radix(&l[2 * i..2 * i + 2], 16).ok()?;
            }
            Some(v)
        });
        let period = lines.next().and_then(|l| {
            let mut w = l.split_whitespace();
            if w.next()? != "period" {
                return None;
            }
            let start_ms = w.next()?.parse().ok()?;
            let end_ms = w.next()?.parse().ok()?;
            (w.next().is_none() && end_ms > start_ms).then_some(Period { start_ms, end_ms })
        });
        Marker { vault, period }
    }
}

/// Whether `name`, in a store's directory, is one of the files of the
/// store's layout: sled 0.34's (`conf`, `db`, `blobs/`, `snap.*`) and
/// Vigil's (`vigil-*`, their `.vigil-*.tmp` staging files and the
/// `vigil-damaged-<n>/` directories of a recovered store). Anything
/// else is the resident's, and no Vigil operation deletes it.
fn is_own(name: &std::ffi::OsStr, is_dir: bool) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    if is_dir {
        return name == "blobs" || name.starts_with(DAMAGED_PREFIX);
    }
    matches!(name, "conf" | "db")
        || name.starts_with("snap.")
        || name.starts_with("vigil-")
        || (name.starts_with(".vigil-") && name.ends_with(".tmp"))
}

/// [`Storage`] on sled 0.34.7. Durability: `apply` calls sled's `flush`,
/// which survives a process crash but, as it uses `sync_file_range` rather
/// than fsync, is not a power-loss guarantee (SECURITY.md).
///
/// Named blobs are files beside sled's, replaced by rename, because sled keeps
/// replaced large values in its files long after they are dead.
#[derive(Debug)]
pub struct SledStorage {
    db: sled::Db,
    dir: PathBuf,
}

/// How long [`SledStorage::open`] waits for a store another process holds.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);
/// How often a waiting open tries the lock again.
const LOCK_POLL: Duration = Duration::from_millis(25);

impl SledStorage {
    /// Opens (or creates) a store in `dir`, waiting up to
    /// [`DEFAULT_LOCK_WAIT`] while another process holds it.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        Self::open_waiting(dir, DEFAULT_LOCK_WAIT, &mut |_| {})
    }

    /// Opens (or creates) a store in `dir`. While another process holds it
    /// (sled locks its `db` file for as long as a store is open), tries
    /// again every few milliseconds for up to `timeout`, calling `on_wait`
    /// once when the wait begins; then fails with [`StorageError::Locked`].
    /// A second command on a busy vault thus waits its turn instead of
    /// losing what it was to write.
    pub fn open_waiting(
        dir: &Path,
        timeout: Duration,
        on_wait: &mut dyn FnMut(&Path),
    ) -> Result<Self, StorageError> {
        named(dir)?;
        let started = Instant::now();
        let mut waiting = false;
        loop {
            match Self::open_once(dir) {
                Err(StorageError::Io(e)) if is_lock_held(&e) => {
                    if started.elapsed() >= timeout {
                        return Err(StorageError::Locked {
                            dir: dir.display().to_string(),
                            waited_s: started.elapsed().as_secs(),
                        });
                    }
                    if !waiting {
                        waiting = true;
                        on_wait(dir);
                    }
                    std::thread::sleep(LOCK_POLL);
                }
                other => return other,
            }
        }
    }

    fn open_once(dir: &Path) -> Result<Self, StorageError> {
        owner_only_dir(dir)?;
        remove_abandoned_snapshots(dir)?;
        let path = dir.to_owned();
        let dir = dir.to_owned();
        // sled can panic on some damaged files instead of returning an error;
        // a damaged store must be an error, never a crash.
        let opened = std::panic::catch_unwind(move || {
            sled::Config::new()
                .path(dir)
                .mode(sled::Mode::LowSpace)
                // Small segments make large values (snapshots) separate blob
                // files, deleted when replaced, instead of garbage in the log.
                .segment_size(16 * 1024)
                .open()
        });
        match opened {
            Ok(Ok(db)) => {
                owner_only_files(&path)?;
                Ok(SledStorage { db, dir: path })
            }
            Ok(Err(e)) => Err(sled_err(e)),
            Err(_) => Err(StorageError::Corrupt("sled panicked while opening".into())),
        }
    }
}

/// Removes the snapshot files sled began and never committed (see
/// [`vigil_fs::remove_abandoned_sled_snapshots`]), which sled would
/// otherwise read as the store's snapshot and refuse the store over.
fn remove_abandoned_snapshots(dir: &Path) -> Result<(), StorageError> {
    for path in vigil_fs::remove_abandoned_sled_snapshots(dir).map_err(io_err)? {
        tracing::warn!(
            file = %path.display(),
            "removed a snapshot sled began and never committed (a kill or power cut during an open)"
        );
    }
    Ok(())
}

/// Narrows what sled made with the process's umask (conf, db, snap.*,
/// blobs/) to the owner: the 0700 directory already keeps others out, but a
/// copy of the directory (a backup, `cp -r`) should not widen it. Files sled
/// makes later are narrowed at the next open.
fn owner_only_files(dir: &Path) -> Result<(), StorageError> {
    owner_only_below(dir, true)
}

/// `top`: only the store's own entries are touched there (the resident's
/// files beside them keep their modes); below `blobs/` everything is sled's.
fn owner_only_below(dir: &Path, top: bool) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(dir).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let meta = entry.metadata().map_err(io_err)?;
            if top && !is_own(&entry.file_name(), meta.is_dir()) {
                continue;
            }
            let mode = meta.permissions().mode();
            if meta.is_dir() {
                owner_only_below(&entry.path(), false)?;
            }
            // Symlinks are left alone: following one could chmod a file
            // that is not the vault's.
            if mode & 0o077 != 0 && !meta.file_type().is_symlink() {
                let narrow = if meta.is_dir() { 0o700 } else { 0o600 };
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(narrow))
                    .map_err(io_err)?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (dir, top);
    Ok(())
}

/// Creates the vault directory as 0700, or narrows an existing one to it:
/// what a vault holds is nobody else's business, even sealed (sled creates
/// its own files with the process's umask; inside a 0700 directory no other
/// user can reach them).
/// An empty path names no directory: the OS reads it as missing, sled as
/// the working directory. A store there would land among the app's own
/// files (and a shred would delete what looks like Vigil's there).
fn named(dir: &Path) -> Result<(), StorageError> {
    if dir.as_os_str().is_empty() {
        return Err(StorageError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the vault's directory is an empty path",
        )));
    }
    Ok(())
}

fn owner_only_dir(dir: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        match std::fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err)?,
            Err(e) => return Err(io_err(e)),
            Ok(m) if m.is_dir() && m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(io_err)?;
            }
            // A symlink or a file: sled reports what it finds.
            Ok(_) => {}
        }
    }
    Ok(())
}

impl SledStorage {
    /// Reads the tombstone of the store in `dir` without opening sled.
    pub fn read_tombstone(dir: &Path) -> Result<Option<Vec<u8>>, StorageError> {
        match std::fs::read(dir.join(TOMBSTONE_FILE)) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    /// What the marker file in `dir` says (all absent if there is none or
    /// it is unreadable).
    pub(crate) fn read_marker(dir: &Path) -> Marker {
        std::fs::read(dir.join(MARKER_FILE))
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map_or_else(Marker::default, |t| Marker::parse(&t))
    }

    /// Moves the store's files in `dir` (sled's, the blobs, staging files)
    /// into a new `vigil-damaged-<n>/` inside it, and returns its path. The
    /// marker, the tombstone, the CLI's files and the resident's files stay.
    pub(crate) fn move_aside(dir: &Path) -> Result<PathBuf, StorageError> {
        let mut n = 1u32;
        let aside = loop {
            let p = dir.join(format!("{DAMAGED_PREFIX}{n}"));
            match std::fs::symlink_metadata(&p) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break p,
                Err(e) => return Err(io_err(e)),
                Ok(_) => n += 1,
            }
        };
        {
            let mut b = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(&aside).map_err(io_err)?;
        }
        for e in std::fs::read_dir(dir).map_err(io_err)? {
            let e = e.map_err(io_err)?;
            let is_dir = e.file_type().map_err(io_err)?.is_dir();
            let name = e.file_name();
            let Some(n) = name.to_str() else { continue };
            let store_file = if is_dir {
                n == "blobs"
            } else {
                matches!(n, "conf" | "db")
                    || n.starts_with("snap.")
                    || (n.starts_with("vigil-") && n.ends_with(".blob"))
                    || (n.starts_with(".vigil-") && n.ends_with(".tmp"))
            };
            if store_file {
                std::fs::rename(e.path(), aside.join(&name)).map_err(io_err)?;
            }
        }
        vigil_fs::sync_dir(&aside).map_err(io_err)?;
        vigil_fs::sync_dir(dir).map_err(io_err)?;
        Ok(aside)
    }

    /// The first entry of `dir` that is not of a store's layout, if any: a
    /// vault is created only in an empty directory or one Vigil made.
    pub fn foreign_entry(dir: &Path) -> Result<Option<String>, StorageError> {
        named(dir)?;
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(e)),
        };
        for e in entries {
            let e = e.map_err(io_err)?;
            let is_dir = e.file_type().map_err(io_err)?.is_dir();
            if !is_own(&e.file_name(), is_dir) {
                return Ok(Some(e.file_name().to_string_lossy().into_owned()));
            }
        }
        Ok(None)
    }

    /// Deletes every file of the store's layout in `dir` but the tombstone,
    /// without opening sled (also finishing a shred that was interrupted).
    /// Anything else in `dir` is the resident's and is left where it is.
    pub fn destroy_dir(dir: &Path) -> Result<(), StorageError> {
        named(dir)?;
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(e)),
        };
        for e in entries {
            let e = e.map_err(io_err)?;
            let is_dir = e.file_type().map_err(io_err)?.is_dir();
            if e.file_name() == TOMBSTONE_FILE || !is_own(&e.file_name(), is_dir) {
                continue;
            }
            let p = e.path();
            if is_dir
                && e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(DAMAGED_PREFIX))
            {
                // A recovered store's damaged files: the same layout, one
                // level down, and the resident's files in it stay too.
                Self::destroy_dir(&p)?;
                if std::fs::read_dir(&p).map_err(io_err)?.next().is_none() {
                    std::fs::remove_dir(&p).map_err(io_err)?;
                }
            } else if is_dir {
                // sled names its blob files by number; anything else in
                // `blobs/` is not sled's, so the directory then stays.
                for b in std::fs::read_dir(&p).map_err(io_err)? {
                    let b = b.map_err(io_err)?;
                    let numbered = b
                        .file_name()
                        .to_str()
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
                    if numbered && b.file_type().map_err(io_err)?.is_file() {
                        std::fs::remove_file(b.path()).map_err(io_err)?;
                    }
                }
                if std::fs::read_dir(&p).map_err(io_err)?.next().is_none() {
                    std::fs::remove_dir(&p).map_err(io_err)?;
                }
            } else {
                std::fs::remove_file(&p).map_err(io_err)?;
            }
        }
        vigil_fs::sync_dir(dir).map_err(io_err)
    }

    /// The named blob `name` of the store in `dir`, read without opening
    /// sled (and without its lock): for what an open may load while sled
    /// opens, and checks against [`Storage::get_blob`] once it has.
    pub(crate) fn read_blob(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = blob_path(dir, name)?;
        match std::fs::read(path) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    fn write_atomic(&self, path: &Path, value: &[u8]) -> Result<(), StorageError> {
        vigil_fs::write_atomic(path, value, vigil_fs::Mode::OwnerOnly).map_err(io_err)
    }

    fn blob_path(&self, name: &str) -> Result<PathBuf, StorageError> {
        blob_path(&self.dir, name)
    }
}

/// Where the store in `dir` keeps its blob `name`.
fn blob_path(dir: &Path, name: &str) -> Result<PathBuf, StorageError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        return Err(StorageError::BadBlobName(name.to_owned()));
    }
    Ok(dir.join(format!("vigil-{name}.blob")))
}

/// Whether sled refused to open because another process holds the store:
/// sled 0.34.7 reports it only as an I/O error with this text.
fn is_lock_held(e: &std::io::Error) -> bool {
    e.to_string().contains("could not acquire lock")
}

fn io_err(e: std::io::Error) -> StorageError {
    StorageError::Io(e)
}

fn sled_err(e: sled::Error) -> StorageError {
    match e {
        sled::Error::Io(e) => StorageError::Io(e),
        other => StorageError::Damaged(other),
    }
}

impl Storage for SledStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get(key).map_err(sled_err)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StorageError> {
        self.db
            .scan_prefix(prefix)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(sled_err))
            .collect()
    }

    fn apply(&mut self, batch: Batch) -> Result<(), StorageError> {
        // A single insert is atomic by itself and cheaper than a batch.
        if let [(k, Some(v))] = batch.ops.as_slice() {
            self.db
                .insert(k.as_slice(), v.as_slice())
                .map_err(sled_err)?;
            self.db.flush().map_err(sled_err)?;
            return Ok(());
        }
        let mut b = sled::Batch::default();
        for (k, v) in batch.ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.db.apply_batch(b).map_err(sled_err)?;
        self.db.flush().map_err(sled_err)?;
        Ok(())
    }

    fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        match std::fs::read(self.blob_path(name)?) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    fn put_blob(&mut self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        let path = self.blob_path(name)?;
        self.write_atomic(&path, value)
    }

    fn tombstone(&self) -> Result<Option<Vec<u8>>, StorageError> {
        Self::read_tombstone(&self.dir)
    }

    fn put_tombstone(&mut self, value: &[u8]) -> Result<(), StorageError> {
        let path = self.dir.join(TOMBSTONE_FILE);
        self.write_atomic(&path, value)
    }

    fn mark(&mut self, vault: VaultId, period: Period) -> Result<(), StorageError> {
        let path = self.dir.join(MARKER_FILE);
        self.write_atomic(&path, Marker::encode(vault, period).as_bytes())
    }

    fn destroy(self: Box<Self>) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        // Close sled first so nothing writes behind the deletion.
        drop(self);
        Self::destroy_dir(&dir)
    }
}

/// In-memory [`Storage`] for tests: every applied batch is "durable".
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    blobs: BTreeMap<String, Vec<u8>>,
    tombstone: Option<Vec<u8>>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Storage for MemStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.map.get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StorageError> {
        Ok(self
            .map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn apply(&mut self, batch: Batch) -> Result<(), StorageError> {
        for (k, v) in batch.ops {
            match v {
                Some(v) => self.map.insert(k, v),
                None => self.map.remove(&k),
            };
        }
        Ok(())
    }

    fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.blobs.get(name).cloned())
    }

    fn put_blob(&mut self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        self.blobs.insert(name.to_owned(), value.to_vec());
        Ok(())
    }

    fn tombstone(&self) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.tombstone.clone())
    }

    fn put_tombstone(&mut self, value: &[u8]) -> Result<(), StorageError> {
        self.tombstone = Some(value.to_vec());
        Ok(())
    }

    fn destroy(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
}
