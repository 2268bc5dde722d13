//! Where the root key lives: never in sled (docs/spec.md §8, SECURITY.md).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use vigil_crypto::{RootKey, Zeroizing};

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
}

const MAGIC: &[u8; 4] = b"VGKS";
const VERSION: u8 = 1;
const FILE_LEN: usize = 4 + 1 + 32;

/// A key file: `"VGKS" | 01 | root (32)`, mode 0600, written atomically
/// (temporary file, fsync, rename, fsync of the directory).
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

    fn io(&self, e: std::io::Error) -> KeyStoreError {
        KeyStoreError::Io {
            path: self.path.display().to_string(),
            source: e,
        }
    }
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

    fn load(&self) -> Result<Option<RootKey>, KeyStoreError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        if bytes.len() != FILE_LEN || &bytes[..4] != MAGIC || bytes[4] != VERSION {
            return Err(KeyStoreError::Corrupt(self.path.display().to_string()));
        }
        let mut root = [0u8; 32];
        root.copy_from_slice(&bytes[5..]);
        Ok(Some(RootKey::from_bytes(root)))
    }

    fn store(&mut self, root: &RootKey) -> Result<(), KeyStoreError> {
        if self.path.exists() {
            return Err(KeyStoreError::Occupied(self.path.display().to_string()));
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        let mut buf = Zeroizing::new(Vec::with_capacity(FILE_LEN));
        buf.extend_from_slice(MAGIC);
        buf.push(VERSION);
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
