//! Where the node keeps sealed blobs, out of sled (issue 19): in files in
//! the store's [`crate::SEALED_DIR`]. A snapshot is a file of its own; a
//! vault's bundles since its last snapshot are appended to one pack file
//! (an hourly bundle is ~2 KB: a file each would take a 4 KiB block each),
//! each bundle behind a header saying its device, seq and length. sled
//! keeps a reference per snapshot and, per vault, which packs and how far
//! (a record per bundle, rewritten with its leaf at every push, cost sled
//! about as much as the bundles).
//!
//! Why not in sled: sled 0.34 writes a value inside its tree leaf, rewrites
//! the whole leaf as neighbours change, and keeps overwritten and removed
//! versions until it rewrites their segment. A node whose blobs are
//! replaced by relay snapshots every day took 2.5 to 15 times its live
//! bytes on disk.
//!
//! Crash safety: a blob's bytes are durable (a snapshot file: temporary
//! file, fsync, rename, fsync of the directory; a bundle: written to its
//! pack, fsync) before the sled batch that refers to them (a pack's record
//! names its committed end), and a file is removed only after the batch
//! that drops its last record is flushed. A kill in between leaves bytes
//! nothing refers to (a file, or a pack's tail past its committed end),
//! never a record without its bytes; the next open removes the files
//! ([`crate::MailboxStore::open`]), and the next write to a pack cuts its
//! tail first.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::StoreError;

/// A blob file's name: 16 bytes of hash, written as 32 hex characters.
pub(crate) type BlobName = [u8; 16];

/// A hash of `parts`, as a file name.
fn hash_name(parts: &[&[u8]]) -> BlobName {
    let mut h = Sha256::new();
    h.update(b"vigil-node sealed blob v1");
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut n = [0; 16];
    n.copy_from_slice(&d[..16]);
    n
}

/// The file of the snapshot `bytes` stored under the record `key`: the key
/// keeps two vaults from sharing a file (deleting one cannot take the
/// other's), the bytes put a replacement in a new file (the old one stays
/// whole until the batch that drops it is durable).
pub(crate) fn snapshot_name(key: &[u8], bytes: &[u8]) -> BlobName {
    hash_name(&[b"snapshot", key, bytes])
}

/// The pack the next bundles of `vault` go to, while its snapshot record is
/// `snapshot` (empty if none): a new snapshot starts a new pack, so the
/// packs whose bundles it covers can go whole. ("pack2": packs of entries
/// with headers; the first file layout's packs of bare blobs hashed
/// "pack", so a conversion never writes over the pack it reads.)
pub(crate) fn pack_name(vault: &[u8], snapshot: &[u8]) -> BlobName {
    hash_name(&[b"pack2", vault, snapshot])
}

/// A pack entry's header: the device, the seq (8 bytes, big-endian) and
/// the blob's length (4 bytes, big-endian), before the blob.
pub(crate) const ENTRY_HEADER: usize = 28;

/// A pack entry: `blob` prefixed with its header.
pub(crate) fn pack_entry(device: &[u8; 16], seq: u64, blob: &[u8]) -> Result<Vec<u8>, StoreError> {
    let len = u32::try_from(blob.len())
        .map_err(|_| StoreError::Corrupt("a bundle too long for a pack".into()))?;
    let mut v = Vec::with_capacity(ENTRY_HEADER + blob.len());
    v.extend_from_slice(device);
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(blob);
    Ok(v)
}

fn damaged() -> StoreError {
    StoreError::Corrupt("blob pack missing, short or damaged".into())
}

/// The entries whose headers tile `[0, end)` of `pack`, each header read
/// by `read` at its position.
fn tile(
    pack: BlobName,
    end: u64,
    mut read: impl FnMut(u64, &mut [u8; ENTRY_HEADER]) -> Result<(), StoreError>,
) -> Result<Vec<PackEntry>, StoreError> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < end {
        let offset = pos
            .checked_add(ENTRY_HEADER as u64)
            .filter(|o| *o <= end)
            .ok_or_else(damaged)?;
        let mut h = [0; ENTRY_HEADER];
        read(pos, &mut h)?;
        let (device, rest) = h.split_at(16);
        let (seq, len) = rest.split_at(8);
        let device: [u8; 16] = device.try_into().map_err(|_| damaged())?;
        let seq = u64::from_be_bytes(seq.try_into().map_err(|_| damaged())?);
        let len = u64::from(u32::from_be_bytes(len.try_into().map_err(|_| damaged())?));
        pos = offset
            .checked_add(len)
            .filter(|e| *e <= end)
            .ok_or_else(damaged)?;
        out.push(PackEntry {
            device,
            seq,
            stored: Stored::Packed { pack, offset, len },
        });
    }
    Ok(out)
}

/// A bundle in a pack, as its header says.
#[derive(Debug, Clone)]
pub(crate) struct PackEntry {
    pub(crate) device: [u8; 16],
    pub(crate) seq: u64,
    pub(crate) stored: Stored,
}

/// Where a blob is, as its sled record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stored {
    /// A file of its own (snapshots).
    File { len: u64, name: BlobName },
    /// `len` bytes at `offset` in a pack file (bundles).
    Packed {
        pack: BlobName,
        offset: u64,
        len: u64,
    },
}

impl Stored {
    /// The record's bytes: tag 1, length, name; or tag 2, pack, offset,
    /// length.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(33);
        match self {
            Stored::File { len, name } => {
                v.push(1);
                v.extend_from_slice(&len.to_be_bytes());
                v.extend_from_slice(name);
            }
            Stored::Packed { pack, offset, len } => {
                v.push(2);
                v.extend_from_slice(pack);
                v.extend_from_slice(&offset.to_be_bytes());
                v.extend_from_slice(&len.to_be_bytes());
            }
        }
        v
    }

    pub(crate) fn decode(v: &[u8]) -> Result<Stored, StoreError> {
        let bad = || StoreError::Corrupt("blob reference".into());
        let u = |b: &[u8]| -> Result<u64, StoreError> {
            Ok(u64::from_be_bytes(b.try_into().map_err(|_| bad())?))
        };
        match v.split_first() {
            Some((1, r)) if r.len() == 24 => Ok(Stored::File {
                len: u(&r[..8])?,
                name: r[8..].try_into().map_err(|_| bad())?,
            }),
            Some((2, r)) if r.len() == 32 => Ok(Stored::Packed {
                pack: r[..16].try_into().map_err(|_| bad())?,
                offset: u(&r[16..24])?,
                len: u(&r[24..])?,
            }),
            _ => Err(bad()),
        }
    }

    /// The blob's length.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Stored::File { len, .. } | Stored::Packed { len, .. } => *len,
        }
    }

    /// The file it is in.
    pub(crate) fn file(&self) -> BlobName {
        match self {
            Stored::File { name, .. } => *name,
            Stored::Packed { pack, .. } => *pack,
        }
    }
}

/// The blob files, or a map for a store in memory (clones share it).
#[derive(Debug, Clone)]
pub(crate) enum Blobs {
    Files(PathBuf),
    Mem(Arc<Mutex<HashMap<BlobName, Vec<u8>>>>),
}

type MemFiles = HashMap<BlobName, Vec<u8>>;

impl Blobs {
    fn mem(m: &Mutex<MemFiles>) -> std::sync::MutexGuard<'_, MemFiles> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(dir: &std::path::Path, name: &BlobName) -> PathBuf {
        dir.join(hex::encode(name))
    }

    /// Keeps `bytes` in the file `name`, durably, before this returns (so
    /// before its record). A file already there holds the same bytes: the
    /// name hashes them, and files appear only by rename, whole.
    pub(crate) fn put_file(&self, name: BlobName, bytes: &[u8]) -> Result<Stored, StoreError> {
        match self {
            Blobs::Files(dir) => {
                let p = Self::path(dir, &name);
                if !p.exists() {
                    vigil_fs::write_atomic(&p, bytes, vigil_fs::Mode::Default)
                        .map_err(StoreError::Io)?;
                }
            }
            Blobs::Mem(m) => {
                Self::mem(m).insert(name, bytes.to_vec());
            }
        }
        Ok(Stored::File {
            len: bytes.len() as u64,
            name,
        })
    }

    /// Writes `bytes` into the pack `pack` at `at` (the end its record
    /// says is committed), durably, before this returns; returns the new
    /// end. Whatever lay past `at` is cut first: the tail a kill left
    /// between a pack's write and the record that acknowledges it. Callers
    /// serialise writes to a pack (the relay's vault lock).
    pub(crate) fn write_at(
        &self,
        pack: BlobName,
        at: u64,
        bytes: &[u8],
    ) -> Result<u64, StoreError> {
        let end = at.saturating_add(bytes.len() as u64);
        match self {
            Blobs::Files(dir) => {
                let p = Self::path(dir, &pack);
                let created = !p.exists();
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&p)
                    .map_err(StoreError::Io)?;
                // Shorter than what its record acknowledged is damage:
                // refused, not zero-filled.
                match f.metadata().map_err(StoreError::Io)?.len() {
                    len if len < at => return Err(damaged()),
                    len if len > at => f.set_len(at).map_err(StoreError::Io)?,
                    _ => {}
                }
                f.seek(SeekFrom::Start(at)).map_err(StoreError::Io)?;
                f.write_all(bytes).map_err(StoreError::Io)?;
                f.sync_data().map_err(StoreError::Io)?;
                if created {
                    vigil_fs::sync_dir(dir).map_err(StoreError::Io)?;
                }
            }
            Blobs::Mem(m) => {
                let mut g = Self::mem(m);
                let f = g.entry(pack).or_default();
                let at = usize::try_from(at).map_err(|_| damaged())?;
                if f.len() < at {
                    return Err(damaged());
                }
                f.truncate(at);
                f.extend_from_slice(bytes);
            }
        }
        Ok(end)
    }

    /// The entries of the pack `pack` up to its committed `end`, headers
    /// only (the blobs are read by [`Blobs::load`]). A pack shorter than
    /// `end`, or whose headers do not tile it, is damage.
    pub(crate) fn pack_entries(
        &self,
        pack: BlobName,
        end: u64,
    ) -> Result<Vec<PackEntry>, StoreError> {
        match self {
            Blobs::Files(dir) => {
                let mut f = open_existing(&Self::path(dir, &pack), damaged)?;
                if f.metadata().map_err(StoreError::Io)?.len() < end {
                    return Err(damaged());
                }
                tile(pack, end, |pos, h| {
                    f.seek(SeekFrom::Start(pos)).map_err(StoreError::Io)?;
                    f.read_exact(h).map_err(StoreError::Io)
                })
            }
            Blobs::Mem(m) => {
                let g = Self::mem(m);
                let f = g.get(&pack).ok_or_else(damaged)?;
                if (f.len() as u64) < end {
                    return Err(damaged());
                }
                tile(pack, end, |pos, h| {
                    let start = usize::try_from(pos).map_err(|_| damaged())?;
                    let src = f
                        .get(start..start.saturating_add(ENTRY_HEADER))
                        .ok_or_else(damaged)?;
                    h.copy_from_slice(src);
                    Ok(())
                })
            }
        }
    }

    /// The blob a record refers to: a missing or short file is damage.
    pub(crate) fn load(&self, s: &Stored) -> Result<Vec<u8>, StoreError> {
        let (name, offset, len) = match *s {
            Stored::File { len, name } => (name, 0, len),
            Stored::Packed { pack, offset, len } => (pack, offset, len),
        };
        let missing = || StoreError::Corrupt("blob file missing or short".into());
        let size = usize::try_from(len).map_err(|_| missing())?;
        match self {
            Blobs::Files(dir) => {
                let mut f = open_existing(&Self::path(dir, &name), missing)?;
                let flen = f.metadata().map_err(StoreError::Io)?.len();
                if offset.checked_add(len).is_none_or(|end| end > flen) {
                    return Err(missing());
                }
                f.seek(SeekFrom::Start(offset)).map_err(StoreError::Io)?;
                let mut v = vec![0; size];
                f.read_exact(&mut v).map_err(StoreError::Io)?;
                Ok(v)
            }
            Blobs::Mem(m) => {
                let g = Self::mem(m);
                let f = g.get(&name).ok_or_else(missing)?;
                let start = usize::try_from(offset).map_err(|_| missing())?;
                f.get(start..start.saturating_add(size))
                    .map(<[u8]>::to_vec)
                    .ok_or_else(missing)
            }
        }
    }

    /// Removes files whose last record is gone (durably dropped). Failures
    /// are logged only: a file left behind is removed at the next open.
    pub(crate) fn remove(&self, names: &HashSet<BlobName>) {
        if names.is_empty() {
            return;
        }
        match self {
            Blobs::Files(dir) => {
                for n in names {
                    if let Err(e) = std::fs::remove_file(Self::path(dir, n))
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        tracing::warn!(error = %e, "could not remove a blob file");
                    }
                }
                if let Err(e) = vigil_fs::sync_dir(dir) {
                    tracing::warn!(error = %e, "could not sync the blob directory");
                }
            }
            Blobs::Mem(m) => {
                let mut g = Self::mem(m);
                for n in names {
                    g.remove(n);
                }
            }
        }
    }

    /// Removes every file but `keep` (a crash's leftovers: files whose
    /// record never came or is gone, torn temporary files). Only at open,
    /// before any request: a write in flight has its file before its record.
    pub(crate) fn retain(&self, keep: &HashSet<BlobName>) -> Result<u64, StoreError> {
        let Blobs::Files(dir) = self else {
            return Ok(0);
        };
        let mut removed = 0;
        for e in std::fs::read_dir(dir).map_err(StoreError::Io)? {
            let e = e.map_err(StoreError::Io)?;
            let name = e.file_name();
            let kept = name
                .to_str()
                .and_then(|s| hex::decode(s).ok())
                .and_then(|b| BlobName::try_from(b.as_slice()).ok())
                .is_some_and(|n| keep.contains(&n));
            if !kept && e.file_type().map_err(StoreError::Io)?.is_file() {
                std::fs::remove_file(e.path()).map_err(StoreError::Io)?;
                removed += 1;
            }
        }
        if removed > 0 {
            vigil_fs::sync_dir(dir).map_err(StoreError::Io)?;
        }
        Ok(removed)
    }

    /// Bytes of the blob files (their lengths).
    pub(crate) fn size(&self) -> u64 {
        match self {
            Blobs::Files(dir) => std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum(),
            Blobs::Mem(m) => Self::mem(m).values().map(|v| v.len() as u64).sum(),
        }
    }
}

/// Opens a blob file a record names: a file that is not there is the
/// store's damage (`gone`), any other failure an I/O error.
fn open_existing(
    path: &std::path::Path,
    gone: impl FnOnce() -> StoreError,
) -> Result<std::fs::File, StoreError> {
    match std::fs::File::open(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(gone()),
        Err(e) => Err(StoreError::Io(e)),
    }
}
