//! One-time X25519 keys the node issues for grants (docs/spec.md §13).
//!
//! A grant's alert key is wrapped to a key the node issues for that grant
//! alone. Its secret lives in its own small file — never in sled, which does
//! not erase — and is overwritten and removed when the grant ends, so a copy
//! of the grant (or of the node's whole data directory) stops unwrapping.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_crypto::{X25519Identity, Zeroizing};

/// The directory of one-time grant keys.
#[derive(Debug)]
pub struct GrantKeys {
    dir: PathBuf,
    rng: Mutex<ChaCha20Rng>,
    // Key files in `dir`, for the node-wide cap (counted at open, then
    // kept up to date by `issue` and `destroy`).
    count: AtomicU64,
    // Serialises destroys, so one file is counted out once.
    destroying: Mutex<()>,
}

fn name(public: &[u8; 32]) -> String {
    format!("{}.key", hex::encode(public))
}

impl GrantKeys {
    /// Opens (or creates) the directory; `seed` seeds the key generator
    /// (the node passes system randomness, tests a fixed seed).
    pub fn open(dir: &Path, seed: [u8; 32]) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut count = 0;
        for e in fs::read_dir(dir)? {
            if e?.file_name().to_str().is_some_and(|n| n.ends_with(".key")) {
                count += 1;
            }
        }
        Ok(GrantKeys {
            dir: dir.to_owned(),
            rng: Mutex::new(ChaCha20Rng::from_seed(seed)),
            count: AtomicU64::new(count),
            destroying: Mutex::new(()),
        })
    }

    /// How many key files the directory holds (issued and not destroyed).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// Issues a new key at `now_ms`: `be64(created) || secret (32)`, mode 0600, synced.
    pub fn issue(&self, now_ms: i64) -> std::io::Result<[u8; 32]> {
        let id = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            X25519Identity::generate(&mut *rng)
        };
        let public = *id.public_key().as_bytes();
        let mut bytes = Zeroizing::new(now_ms.to_be_bytes().to_vec());
        bytes.extend_from_slice(id.expose_secret());
        let path = self.dir.join(name(&public));
        vigil_fs::write_new(&path, &bytes, vigil_fs::Mode::OwnerOnly)?;
        self.count.fetch_add(1, Ordering::AcqRel);
        Ok(public)
    }

    /// The secret for `public`, if it still exists.
    pub fn load(&self, public: &[u8; 32]) -> Option<X25519Identity> {
        let b = Zeroizing::new(fs::read(self.dir.join(name(public))).ok()?);
        let secret: [u8; 32] = b.get(8..40)?.try_into().ok()?;
        let id = X25519Identity::from_bytes(secret);
        (id.public_key().as_bytes() == public).then_some(id)
    }

    /// Overwrites and removes the key for `public`. Idempotent.
    pub fn destroy(&self, public: &[u8; 32]) -> std::io::Result<()> {
        let _one = self.destroying.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.dir.join(name(public));
        let existed = path.exists();
        vigil_fs::erase(&path)?;
        if existed {
            crate::limits::release(&self.count, 1);
        }
        Ok(())
    }

    /// Destroys keys issued before `older_than_ms` that no grant uses
    /// (issued, but the device never sent its grant). Returns how many.
    pub fn sweep_unused(
        &self,
        used: &HashSet<[u8; 32]>,
        older_than_ms: i64,
    ) -> std::io::Result<u64> {
        let mut n = 0;
        for e in fs::read_dir(&self.dir)? {
            let e = e?;
            let Some(stem) = e
                .file_name()
                .to_str()
                .and_then(|s| s.strip_suffix(".key"))
                .map(str::to_owned)
            else {
                continue;
            };
            let mut public = [0u8; 32];
            if hex::decode_to_slice(&stem, &mut public).is_err() {
                continue;
            }
            if used.contains(&public) {
                continue;
            }
            let created = fs::read(e.path())
                .ok()
                .and_then(|b| {
                    b.get(..8)
                        .and_then(|x| x.try_into().ok())
                        .map(i64::from_be_bytes)
                })
                .unwrap_or(i64::MIN);
            if created < older_than_ms {
                self.destroy(&public)?;
                n += 1;
            }
        }
        Ok(n)
    }
}
