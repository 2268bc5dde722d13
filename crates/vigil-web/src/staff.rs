//! Staff accounts: names and argon2id password hashes in `DATA/staff.json`
//! (mode 0600). A file, not the store, so `vigil-node staff add` works while
//! the node serves (the store is locked by the serving process); the
//! dashboard reads it at each login.

use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The staff file's name in the node's data directory.
pub const STAFF_FILE: &str = "staff.json";
/// Longest staff name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password, in bytes (argon2 takes any, but a megabyte would only
/// cost the server time).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a staff operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StaffError {
    /// The name is empty, too long, or has control characters or edge spaces.
    #[error("bad staff name: {0}")]
    BadName(String),
    /// The password is too short or too long.
    #[error("password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} bytes long")]
    BadPassword,
    /// `staff add` for a name already there.
    #[error("staff member `{0}` already exists (remove them first to reset the password)")]
    Exists(String),
    /// `staff remove` for a name not there.
    #[error("no staff member `{0}`")]
    Unknown(String),
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The file is not what this program writes.
    #[error("{} is corrupt: {why}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Hashing failed (no randomness, or argon2 refused the input).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// One staff member.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StaffMember {
    /// Their name, shown in the audit log.
    pub name: String,
    /// The argon2id hash in PHC form.
    hash: String,
    /// When they were added, ms.
    pub added_ms: i64,
}

impl std::fmt::Debug for StaffMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash stays out of logs.
        f.debug_struct("StaffMember")
            .field("name", &self.name)
            .field("added_ms", &self.added_ms)
            .finish()
    }
}

#[derive(Serialize, Deserialize, Default)]
struct File {
    staff: Vec<StaffMember>,
}

/// The staff accounts of one node.
#[derive(Debug, Clone)]
pub struct Staff {
    path: PathBuf,
}

/// A syntactically valid hash of a password no one has, checked when the name
/// is unknown so that a wrong name costs as long as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Bq3zqI1bW5QvYyq9pQz1bqzv0mKcXkqkqg9B0X2X7Q";

/// Checks a staff name: 1–64 characters, no control characters, no spaces
/// at either end.
pub fn check_name(name: &str) -> Result<(), StaffError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(StaffError::BadName(format!(
            "1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) || name.trim() != name {
        return Err(StaffError::BadName(
            "no control characters, no spaces at either end".into(),
        ));
    }
    Ok(())
}

impl Staff {
    /// The staff accounts kept in `data_dir`.
    pub fn in_dir(data_dir: &Path) -> Staff {
        Staff {
            path: data_dir.join(STAFF_FILE),
        }
    }

    fn io(&self, source: std::io::Error) -> StaffError {
        StaffError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn load(&self) -> Result<File, StaffError> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| StaffError::Corrupt {
                path: self.path.clone(),
                why: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
            Err(e) => Err(self.io(e)),
        }
    }

    fn save(&self, f: &File) -> Result<(), StaffError> {
        let bytes = serde_json::to_vec_pretty(f).map_err(|e| StaffError::Hash(e.to_string()))?;
        vigil_fs::write_atomic(&self.path, &bytes, vigil_fs::Mode::OwnerOnly)
            .map_err(|e| self.io(e))
    }

    /// Every staff member, in the order added.
    pub fn list(&self) -> Result<Vec<StaffMember>, StaffError> {
        Ok(self.load()?.staff)
    }

    /// Adds `name` with `password`, hashed with argon2id and a fresh salt.
    pub fn add(&self, name: &str, password: &str, now_ms: i64) -> Result<(), StaffError> {
        check_name(name)?;
        if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
            return Err(StaffError::BadPassword);
        }
        let mut f = self.load()?;
        if f.staff.iter().any(|s| s.name == name) {
            return Err(StaffError::Exists(name.to_owned()));
        }
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| StaffError::Hash(e.to_string()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| StaffError::Hash(e.to_string()))?;
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| StaffError::Hash(e.to_string()))?
            .to_string();
        f.staff.push(StaffMember {
            name: name.to_owned(),
            hash,
            added_ms: now_ms,
        });
        self.save(&f)
    }

    /// Removes `name` (their open sessions end at their next request).
    pub fn remove(&self, name: &str) -> Result<(), StaffError> {
        let mut f = self.load()?;
        let before = f.staff.len();
        f.staff.retain(|s| s.name != name);
        if f.staff.len() == before {
            return Err(StaffError::Unknown(name.to_owned()));
        }
        self.save(&f)
    }

    /// Whether `name` exists (sessions of removed staff end).
    pub fn exists(&self, name: &str) -> Result<bool, StaffError> {
        Ok(self.load()?.staff.iter().any(|s| s.name == name))
    }

    /// Whether `password` is `name`'s. An unknown name is checked against a
    /// dummy hash, so the answer takes as long either way.
    pub fn verify(&self, name: &str, password: &str) -> Result<bool, StaffError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Ok(false);
        }
        let f = self.load()?;
        let found = f.staff.iter().find(|s| s.name == name);
        let hash = Zeroizing::new(found.map_or(DUMMY_HASH.to_owned(), |s| s.hash.clone()));
        let parsed = PasswordHash::new(&hash).map_err(|e| StaffError::Corrupt {
            path: self.path.clone(),
            why: format!("hash of `{name}`: {e}"),
        })?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && found.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_verify_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = Staff::in_dir(dir.path());
        s.add("mei", "correct horse battery", 1).unwrap();
        assert!(matches!(
            s.add("mei", "another password", 2),
            Err(StaffError::Exists(_))
        ));
        assert!(matches!(
            s.add("x", "short", 2),
            Err(StaffError::BadPassword)
        ));
        assert!(matches!(
            s.add(" x", "long enough pw", 2),
            Err(StaffError::BadName(_))
        ));
        assert!(s.verify("mei", "correct horse battery").unwrap());
        assert!(!s.verify("mei", "wrong horse battery").unwrap());
        assert!(!s.verify("nobody", "correct horse battery").unwrap());
        let text = std::fs::read_to_string(dir.path().join(STAFF_FILE)).unwrap();
        assert!(text.contains("$argon2id$") && !text.contains("correct horse"));
        assert_eq!(s.list().unwrap().len(), 1);
        s.remove("mei").unwrap();
        assert!(!s.verify("mei", "correct horse battery").unwrap());
        assert!(matches!(s.remove("mei"), Err(StaffError::Unknown(_))));
    }
}
