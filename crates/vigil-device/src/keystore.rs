//! Where the root key lives: never in sled (docs/spec.md §8, SECURITY.md).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use vigil_crypto::{KeySchedule, RootKey, VaultId, Zeroizing};

/// A key-store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// The key file exists but is not a valid key file.
    #[error("key store {0} is corrupted (not a Vigil key file)")]
    Corrupt(String),
    /// The key store already holds a key (refusing to overwrite it).
    #[error("key store {0} already holds a key")]
    Occupied(String),
    /// An I/O error.
    #[error("key store I/O error at {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// What a shred did with the key store's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyFate {
    /// It was the shredded vault's key, and it is destroyed.
    Destroyed,
    /// The store held no key (already destroyed).
    Absent,
    /// It is another vault's key, or not a Vigil key: left untouched.
    Kept,
}

/// Holds one vault's root key. The default is a 0600 file
/// ([`FileKeyStore`]); a mobile app plugs in its platform keystore.
pub trait KeyStore: Send {
    /// The stored root, or `None` if there is none.
    fn load(&self) -> Result<Option<RootKey>, KeyStoreError>;
    /// Stores the root; refuses if one is already stored.
    fn store(&mut self, root: &RootKey) -> Result<(), KeyStoreError>;
    /// Destroys the stored root (overwrite, sync, remove). Idempotent: a
    /// store with no key is already destroyed.
    fn destroy(&self) -> Result<(), KeyStoreError>;
    /// Destroys the stored root only if it is `vault`'s: a shred must never
    /// destroy the key of a vault it is not shredding (a wrong `--key-file`).
    fn destroy_if(&self, vault: VaultId) -> Result<KeyFate, KeyStoreError> {
        match self.load() {
            Ok(None) => Ok(KeyFate::Absent),
            Ok(Some(root)) => {
                if KeySchedule::new(root).vault_id() != vault {
                    return Ok(KeyFate::Kept);
                }
                self.destroy()?;
                Ok(KeyFate::Destroyed)
            }
            Err(KeyStoreError::Corrupt(_)) => Ok(KeyFate::Kept),
            Err(e) => Err(e),
        }
    }
}

const MAGIC: &[u8; 4] = b"VGKS";
/// Version 1 held only the root; version 2 also names its vault.
const VERSION_1: u8 = 1;
const VERSION: u8 = 2;
const FILE_LEN_1: usize = 4 + 1 + 32;
const FILE_LEN: usize = 4 + 1 + 16 + 32;

/// A key file: `"VGKS" | 02 | vault id (16) | root (32)`, mode 0600, written
/// atomically (temporary file, fsync, rename, fsync of the directory).
/// Version 1 files (`"VGKS" | 01 | root`) are still read.
#[derive(Debug, Clone)]
pub struct FileKeyStore {
    path: PathBuf,
}

impl FileKeyStore {
    /// A key store at `path` (the file need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The vault and root in the key file at `path`, `None` if there is none.
    fn read(&self, path: &Path) -> Result<Option<(VaultId, RootKey)>, KeyStoreError> {
        let bytes = match fs::read(path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        parse_key_file(&bytes)
            .map(Some)
            .ok_or_else(|| KeyStoreError::Corrupt(path.display().to_string()))
    }

    fn io(&self, e: std::io::Error) -> KeyStoreError {
        KeyStoreError::Io {
            path: self.path.display().to_string(),
            source: e,
        }
    }
}

/// A key file's vault and root; `None` if the bytes are not a Vigil key file
/// (wrong magic, version or length, or a vault id that is not the root's).
pub(crate) fn parse_key_file(bytes: &[u8]) -> Option<(VaultId, RootKey)> {
    if bytes.len() < 5 || &bytes[..4] != MAGIC {
        return None;
    }
    let (named, root) = match (bytes[4], bytes.len()) {
        (VERSION_1, FILE_LEN_1) => (None, &bytes[5..]),
        (VERSION, FILE_LEN) => (Some(&bytes[5..21]), &bytes[21..]),
        _ => return None,
    };
    let mut r = Zeroizing::new([0u8; 32]);
    r.copy_from_slice(root);
    let root = RootKey::from_bytes(*r);
    let vault = KeySchedule::new(RootKey::from_bytes(*root.expose_secret())).vault_id();
    // A file whose name and root disagree is damaged, not some vault's key.
    if named.is_some_and(|n| n != vault.as_bytes()) {
        return None;
    }
    Some((vault, root))
}

impl KeyStore for FileKeyStore {
    fn destroy(&self) -> Result<(), KeyStoreError> {
        // Overwrite in place before unlinking, so the key's blocks do not
        // simply return to the free list with the key in them. `key.tmp` is
        // where versions before vigil-fs staged the key.
        for path in [self.path.with_extension("tmp"), self.path.clone()] {
            vigil_fs::erase(&path).map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    fn destroy_if(&self, vault: VaultId) -> Result<KeyFate, KeyStoreError> {
        // `key.tmp` (see `destroy`) is erased only if it too is this vault's.
        let mut fate = KeyFate::Absent;
        for path in [self.path.with_extension("tmp"), self.path.clone()] {
            let main = path == self.path;
            // A destroy interrupted after its overwrite leaves zeros: no
            // one's key, so finishing the destroy loses nothing.
            let blank = fs::read(&path).is_ok_and(|b| Zeroizing::new(b).iter().all(|&x| x == 0));
            if blank {
                vigil_fs::erase(&path).map_err(|e| self.io(e))?;
                if main {
                    fate = KeyFate::Destroyed;
                }
                continue;
            }
            match self.read(&path) {
                Ok(None) => {}
                Ok(Some((v, _))) if v == vault => {
                    vigil_fs::erase(&path).map_err(|e| self.io(e))?;
                    if main {
                        fate = KeyFate::Destroyed;
                    }
                }
                Ok(Some(_)) | Err(KeyStoreError::Corrupt(_)) => {
                    if main {
                        fate = KeyFate::Kept;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(fate)
    }

    fn load(&self) -> Result<Option<RootKey>, KeyStoreError> {
        Ok(self.read(&self.path)?.map(|(_, root)| root))
    }

    fn store(&mut self, root: &RootKey) -> Result<(), KeyStoreError> {
        if self.path.exists() {
            return Err(KeyStoreError::Occupied(self.path.display().to_string()));
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        let vault = KeySchedule::new(RootKey::from_bytes(*root.expose_secret())).vault_id();
        let mut buf = Zeroizing::new(Vec::with_capacity(FILE_LEN));
        buf.extend_from_slice(MAGIC);
        buf.push(VERSION);
        buf.extend_from_slice(vault.as_bytes());
        buf.extend_from_slice(root.expose_secret());
        vigil_fs::write_atomic(&self.path, &buf, vigil_fs::Mode::OwnerOnly).map_err(|e| self.io(e))
    }
}

/// An in-memory key store for tests and simulations. Clones share the key,
/// so a test can "reopen" a vault with the same store.
#[derive(Debug, Clone, Default)]
pub struct MemoryKeyStore {
    key: Arc<Mutex<Option<Zeroizing<[u8; 32]>>>>,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl KeyStore for MemoryKeyStore {
    fn destroy(&self) -> Result<(), KeyStoreError> {
        // Dropping the Zeroizing wipes the bytes.
        self.key.lock().unwrap_or_else(|p| p.into_inner()).take();
        Ok(())
    }

    fn load(&self) -> Result<Option<RootKey>, KeyStoreError> {
        let guard = self.key.lock().unwrap_or_else(|p| p.into_inner());
        Ok(guard.as_ref().map(|k| RootKey::from_bytes(**k)))
    }

    fn store(&mut self, root: &RootKey) -> Result<(), KeyStoreError> {
        let mut guard = self.key.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_some() {
            return Err(KeyStoreError::Occupied("memory".into()));
        }
        *guard = Some(Zeroizing::new(*root.expose_secret()));
        Ok(())
    }
}
