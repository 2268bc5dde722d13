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
///
/// It trusts the app's implementation no further than it can check: a
/// panic in it (a bug in a Rust-side store) is an error, not an unwinding
/// through the vault; and `store` and `destroy_key` are read back, because a
/// foreign implementation can fail without saying so (a Python store that
/// raises `KeyboardInterrupt` or `SystemExit` is reported to Rust as a
/// success by UniFFI's generated callback, and a platform keystore may drop
/// a write). A vault created without its key in the store would lose every
/// reading at the next open; a shred that believes a key destroyed would
/// leave it readable.
pub(crate) struct Adapter(pub(crate) Arc<dyn KeyStore>);

/// Runs one call into the app's key store, turning a panic into an error.
fn guarded<T>(
    call: &str,
    f: impl FnOnce() -> Result<T, KeyStoreError>,
) -> Result<T, KeyStoreError> {
    // Unwind safety: nothing of Vigil's is borrowed across the call, and the
    // store's own state is the app's.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-text panic".into());
        Err(KeyStoreError::Unexpected {
            detail: format!("the key store panicked in {call}: {what}"),
        })
    })
}

impl Adapter {
    fn load_bytes(&self) -> Result<Option<Zeroizing<Vec<u8>>>, KeyStoreError> {
        Ok(guarded("load", || self.0.load())?.map(Zeroizing::new))
    }
}

impl vigil::KeyStore for Adapter {
    fn load(&self) -> Result<Option<vigil::RootKey>, vigil::KeyStoreError> {
        let Some(bytes) = self.load_bytes()? else {
            return Ok(None);
        };
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
        guarded("store", || self.0.store(root.expose_secret().to_vec()))?;
        let kept = self.load_bytes()?;
        if kept.as_deref().map(Vec::as_slice) != Some(root.expose_secret().as_slice()) {
            return Err(KeyStoreError::Io {
                detail: "the app's key store did not keep the root key it was given \
                         (it reported success; reading it back gave another value or none)"
                    .into(),
            }
            .into());
        }
        Ok(())
    }

    fn destroy(&self) -> Result<(), vigil::KeyStoreError> {
        guarded("destroy_key", || self.0.destroy_key())?;
        if self.load_bytes()?.is_some() {
            return Err(KeyStoreError::Io {
                detail: "the app's key store still holds a key after destroying it \
                         (it reported success)"
                    .into(),
            }
            .into());
        }
        Ok(())
    }
}
