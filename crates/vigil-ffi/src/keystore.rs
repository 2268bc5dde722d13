//! The root key's home, implemented by the app: the Android Keystore, the
//! iOS Keychain, or (in tests) a dictionary.

use std::sync::Arc;

use zeroize::Zeroizing;

/// A key store failure, as the app's implementation raises it (and as
/// Vigil reports the library's [`vigil::KeyStoreError`]).
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum KeyStoreError {
    /// What the store holds is not a Vigil root key.
    #[error("key store {detail} is corrupted (not a Vigil key)")]
    Corrupt {
        /// Which store, or what is wrong.
        detail: String,
    },
    /// The store already holds a key (it must refuse to overwrite it).
    #[error("key store {detail} already holds a key")]
    Occupied {
        /// Which store.
        detail: String,
    },
    /// The platform keystore failed (locked, unavailable, I/O).
    #[error("key store failed: {detail}")]
    Io {
        /// What failed.
        detail: String,
    },
    /// The app's implementation raised something else than a
    /// `KeyStoreError` (a bug in the app, reported, never a crash).
    #[error("the app's key store raised an unexpected error: {detail}")]
    Unexpected {
        /// What it raised.
        detail: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for KeyStoreError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        KeyStoreError::Unexpected { detail: e.reason }
    }
}

impl From<vigil::KeyStoreError> for KeyStoreError {
    fn from(e: vigil::KeyStoreError) -> Self {
        match e {
            vigil::KeyStoreError::Corrupt(detail) => KeyStoreError::Corrupt { detail },
            vigil::KeyStoreError::Occupied(detail) => KeyStoreError::Occupied { detail },
            // I/O, or a variant newer than this binding: its message says which.
            e => KeyStoreError::Io {
                detail: e.to_string(),
            },
        }
    }
}

impl From<KeyStoreError> for vigil::KeyStoreError {
    fn from(e: KeyStoreError) -> Self {
        match e {
            KeyStoreError::Corrupt { detail } => vigil::KeyStoreError::Corrupt(detail),
            KeyStoreError::Occupied { detail } => vigil::KeyStoreError::Occupied(detail),
            e @ (KeyStoreError::Io { .. } | KeyStoreError::Unexpected { .. }) => {
                vigil::KeyStoreError::Io {
                    path: "the app's key store".into(),
                    source: std::io::Error::other(e.to_string()),
                }
            }
        }
    }
}

/// Holds one vault's 32-byte root key; the app implements it. Vigil calls
/// it from the thread that called the vault.
#[uniffi::export(with_foreign)]
pub trait KeyStore: Send + Sync {
    /// The stored root key, or none.
    fn load(&self) -> Result<Option<Vec<u8>>, KeyStoreError>;
    /// Stores the root key; must raise `Occupied` if one is stored already.
    fn store(&self, root: Vec<u8>) -> Result<(), KeyStoreError>;
    /// Destroys the stored root key. Idempotent: no key is already destroyed.
    /// (Not `destroy`: every generated Kotlin object has a `destroy()` that
    /// frees its Rust side, and the two would clash.)
    fn destroy_key(&self) -> Result<(), KeyStoreError>;
}

/// The app's key store as the library's [`vigil::KeyStore`].
pub(crate) struct Adapter(pub(crate) Arc<dyn KeyStore>);

impl vigil::KeyStore for Adapter {
    fn load(&self) -> Result<Option<vigil::RootKey>, vigil::KeyStoreError> {
        let Some(bytes) = self.0.load()? else {
            return Ok(None);
        };
        let bytes = Zeroizing::new(bytes);
        // Garbage from the app (a truncated entry, another app's secret) is
        // a corrupt store, never a key Vigil would derive from.
        let root = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
            vigil::KeyStoreError::Corrupt(format!(
                "the app's key store returned {} bytes, not a 32-byte root key",
                bytes.len()
            ))
        })?;
        let root = Zeroizing::new(root);
        Ok(Some(vigil::RootKey::from_bytes(*root)))
    }

    fn store(&mut self, root: &vigil::RootKey) -> Result<(), vigil::KeyStoreError> {
        // The copy handed to the app is moved into UniFFI's buffer, which is
        // freed, not wiped: the app's platform keystore is where the key
        // lives, and it is the app's to protect (SECURITY.md).
        Ok(self.0.store(root.expose_secret().to_vec())?)
    }

    fn destroy(&self) -> Result<(), vigil::KeyStoreError> {
        Ok(self.0.destroy_key()?)
    }
}
