//! Vigil's durable file writes, in one audited place.
//!
//! - [`write_atomic`] replaces a file so that, even after a crash or power
//!   loss, it holds either the old or the new content, whole: a temporary
//!   file in the same directory (created with its final permissions before
//!   any byte is written), fsync, rename over the target, fsync of the
//!   directory.
//! - [`write_new`] is the same, but refuses to replace an existing file.
//! - [`erase`] removes a file that held a secret: overwrite with zeros,
//!   fsync, remove, fsync of the directory, so its blocks do not return to
//!   the free list with the secret in them. It also erases the temporary
//!   files a crash in [`write_atomic`] could have left for that path.
//! - [`sync_dir`] makes renames and removals in a directory durable.
//! - [`remove_abandoned_sled_snapshots`] removes the snapshot a kill left
//!   half written in a sled store that nobody holds, which sled 0.34.7
//!   would read as its snapshot and refuse the store over.
//!
//! Built on tempfile's `NamedTempFile` (`persist` / `persist_noclobber`).
//! This crate depends on nothing of Vigil.

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Who may read a file [`write_atomic`] creates (on Unix; ignored elsewhere).
/// The process umask still applies, as it does to `File::create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Mode 0600: only the owner reads or writes. For secrets.
    OwnerOnly,
    /// Mode 0644: the owner writes, everyone reads.
    WorldReadable,
    /// Mode 0666 less the umask, as `File::create` makes files.
    Default,
}

impl Mode {
    #[cfg(unix)]
    fn bits(self) -> u32 {
        match self {
            Mode::OwnerOnly => 0o600,
            Mode::WorldReadable => 0o644,
            Mode::Default => 0o666,
        }
    }
}

/// Random characters in a temporary file's name.
const RAND_CHARS: usize = 6;
/// The suffix of every temporary file [`write_atomic`] creates.
const TMP_SUFFIX: &str = ".tmp";

/// The directory holding `path` (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The prefix of the temporary files for `path`: `.{file name}.`.
fn tmp_prefix(path: &Path) -> io::Result<OsString> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    Ok(prefix)
}

/// A temporary file beside `path`, named `.{name}.<random>.tmp`, created
/// with `mode`, holding `bytes`, synced.
fn staged(path: &Path, bytes: &[u8], mode: Mode) -> io::Result<tempfile::NamedTempFile> {
    let prefix = tmp_prefix(path)?;
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(&prefix)
        .suffix(TMP_SUFFIX)
        .rand_bytes(RAND_CHARS);
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(mode.bits()));
    #[cfg(not(unix))]
    let _ = mode;
    let mut tmp = builder.tempfile_in(parent(path))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// Replaces `path` with `bytes` atomically and durably: after a crash it
/// holds either its old content or `bytes`, whole. A new file gets `mode`
/// (set when the temporary file is created, before any byte is written);
/// a replaced file gets `mode` too. The directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Mode) -> io::Result<()> {
    let tmp = staged(path, bytes, mode)?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(parent(path))
}

/// Like [`write_atomic`], but fails with [`io::ErrorKind::AlreadyExists`]
/// (writing nothing) if `path` exists.
pub fn write_new(path: &Path, bytes: &[u8], mode: Mode) -> io::Result<()> {
    if fs::symlink_metadata(path).is_ok() {
        return Err(already_exists(path));
    }
    let tmp = staged(path, bytes, mode)?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    sync_dir(parent(path))
}

fn already_exists(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{} already exists", path.display()),
    )
}

/// Makes the directory's entries (renames, creations, removals) durable.
/// A no-op where directories cannot be synced (not Unix).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Erases a file that held a secret: overwrites it with zeros (its whole
/// length), fsyncs, removes it and fsyncs its directory. Temporary files a
/// crash in [`write_atomic`] left for `path` are erased the same way.
/// Idempotent: a missing file is already erased (`Ok`).
///
/// On copy-on-write or journalling file systems and flash storage the old
/// blocks may survive the overwrite; this is best effort below the file
/// system.
pub fn erase(path: &Path) -> io::Result<()> {
    let erased = erase_one(path)?;
    let leftovers = erase_leftovers(path)?;
    if erased || leftovers {
        sync_dir(parent(path))?;
    }
    Ok(())
}

/// Overwrites and removes one file; `false` if it did not exist.
fn erase_one(path: &Path) -> io::Result<bool> {
    let mut f = match fs::OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let zeros = [0u8; 4096];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(zeros.len() as u64)).unwrap_or(zeros.len());
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    drop(f);
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        other => other.map(|()| true),
    }
}

/// Erases `.{name}.<random>.tmp` files beside `path`; whether there were any.
fn erase_leftovers(path: &Path) -> io::Result<bool> {
    let prefix = tmp_prefix(path)?;
    let prefix = prefix.as_encoded_bytes();
    let entries = match fs::read_dir(parent(path)) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut found: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        if name.len() == prefix.len() + RAND_CHARS + TMP_SUFFIX.len()
            && name.starts_with(prefix)
            && name.ends_with(TMP_SUFFIX.as_bytes())
        {
            found.push(entry.path());
        }
    }
    let mut any = false;
    for p in found {
        any |= erase_one(&p)?;
    }
    Ok(any)
}

/// Removes the snapshot files a sled 0.34.7 store began and never
/// committed, and returns their paths; only while no process holds the
/// store (else nothing is touched).
///
/// sled writes the snapshot of its page table only while it opens
/// (`advance_snapshot` in its pagecache/snapshot.rs): it creates
/// `snap.<lsn>.generating`, writes and fsyncs it, and renames it to
/// `snap.<lsn>`; the rename is the commit. But the snapshot it reads at
/// open is the last name in sort order among its `get_snapshot_files`
/// (config.rs), which leaves out only a `.in___motion` suffix, not
/// `.generating`. A kill or power cut between the create and the rename
/// leaves an empty or torn `snap.<newer lsn>.generating` beside the
/// committed `snap.<older lsn>`; it sorts last, fails its length or CRC
/// check, and every later open fails with `Corruption { at: None }` though
/// nothing committed is damaged.
///
/// Such a file holds nothing that is not in the committed snapshot and the
/// log after it (sled replays the log from the committed snapshot and
/// writes the newer one again), so removing it loses nothing. A damaged
/// committed `snap.<lsn>` is left alone: that is damage, for the caller to
/// report.
///
/// A `.generating` file of an open in progress is that open's: sled holds
/// an exclusive lock on its `db` file for as long as a store is open, and
/// the same lock, taken here on a handle of our own and released before
/// returning, tells whether anyone does (another process, or another open
/// store in this one).
pub fn remove_abandoned_sled_snapshots(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let db = match fs::File::open(dir.join("db")) {
        Ok(f) => f,
        // No store yet (sled makes `db` before any snapshot), or a `db`
        // sled will report on itself.
        Err(_) => return Ok(Vec::new()),
    };
    match db.try_lock() {
        Ok(()) => {}
        // Held: the open in progress owns its files. Or not lockable
        // here: leave everything to sled.
        Err(fs::TryLockError::WouldBlock) | Err(fs::TryLockError::Error(_)) => {
            return Ok(Vec::new());
        }
    }
    let mut removed = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let abandoned = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("snap.") && n.ends_with(".generating"));
        if abandoned && e.file_type()?.is_file() {
            fs::remove_file(e.path())?;
            removed.push(e.path());
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    // The lock goes with the handle, before sled takes it on its own.
    drop(db);
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_atomic_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"first, and longer than the second", Mode::Default).unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            b"first, and longer than the second"
        );
        write_atomic(&path, b"second", Mode::Default).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(names(dir.path()), ["state.json"]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_content_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        write_atomic(&path, b"old content", Mode::Default).unwrap();
        // Replacing a file by a directory's name fails at the rename, after
        // the temporary file was written: the old file must be untouched.
        let target = dir.path().join("sub");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("x"), b"x").unwrap();
        assert!(write_atomic(&target, b"new", Mode::Default).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old content");
        assert_eq!(names(dir.path()), ["blob", "sub"]);
    }

    #[test]
    fn a_bare_file_name_lives_in_the_current_directory() {
        assert_eq!(parent(Path::new("a.key")), Path::new("."));
        assert_eq!(parent(Path::new("d/a.key")), Path::new("d"));
    }

    #[cfg(unix)]
    #[test]
    fn owner_only_files_are_mode_0600_even_when_replacing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        write_atomic(&path, b"secret", Mode::OwnerOnly).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"secret 2", Mode::OwnerOnly).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        write_new(&dir.path().join("new.key"), b"s", Mode::OwnerOnly).unwrap();
        let mode = fs::metadata(dir.path().join("new.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn other_modes_never_grant_more_than_asked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.der");
        write_atomic(&path, b"public", Mode::WorldReadable).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o644, 0, "{mode:o}");
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
    }

    #[test]
    fn write_new_refuses_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.key");
        write_new(&path, b"first", Mode::OwnerOnly).unwrap();
        let e = write_new(&path, b"second", Mode::OwnerOnly).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(names(dir.path()), ["a.key"]);
    }

    #[test]
    fn erase_removes_the_file_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.key");
        write_atomic(&path, &[7u8; 10_000], Mode::OwnerOnly).unwrap();
        erase(&path).unwrap();
        assert!(!path.exists());
        erase(&path).unwrap();
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn erase_of_a_missing_file_or_directory_is_ok() {
        let dir = tempfile::tempdir().unwrap();
        erase(&dir.path().join("never.key")).unwrap();
        erase(&dir.path().join("no-such-dir").join("never.key")).unwrap();
    }

    #[test]
    fn erase_overwrites_before_removing() {
        // A second hard link sees the blocks the erased name pointed at.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.key");
        write_atomic(&path, b"the secret", Mode::OwnerOnly).unwrap();
        let witness = dir.path().join("witness");
        fs::hard_link(&path, &witness).unwrap();
        erase(&path).unwrap();
        assert!(!path.exists());
        assert_eq!(fs::read(&witness).unwrap(), [0u8; 10]);
    }

    #[test]
    fn erase_also_erases_leftover_temporaries_of_that_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.key");
        fs::write(dir.path().join(".a.key.Xy12Ab.tmp"), b"half a secret").unwrap();
        fs::write(dir.path().join(".b.key.Xy12Ab.tmp"), b"other").unwrap();
        fs::write(dir.path().join("a.key.tmp"), b"not ours").unwrap();
        erase(&path).unwrap();
        assert_eq!(names(dir.path()), [".b.key.Xy12Ab.tmp", "a.key.tmp"]);
    }
}
