//! The node's mailbox store on sled (docs/spec.md §11). It holds verifiers,
//! sealed blobs and counters: nothing it could read.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::blobs::{BlobName, Blobs, PackEntry, Stored, pack_entry, pack_name, snapshot_name};
use crate::kv::{Kv, KvBatch};

use vigil_proto::{BundleItem, DeviceIdBytes, SnapshotItem, VaultIdBytes, VersionVector};

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled failed or the store is damaged.
    #[error("node store error: {0}")]
    Sled(#[source] sled::Error),
    /// Another process holds the store's lock (sled opens a store in one
    /// process only): a node is serving this data directory.
    #[error("node store error: {0}")]
    Locked(#[source] sled::Error),
    /// sled panicked while opening the store (it does on some damage).
    #[error("node store error: sled panicked while opening")]
    OpenPanicked,
    /// A stored record could not be decoded.
    #[error("node store record {0} is corrupted")]
    Corrupt(String),
    /// A blob file could not be read, written or removed.
    #[error("node store blob file error: {0}")]
    Io(#[source] std::io::Error),
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        // sled reports a held lock only as an I/O error of kind `Other`
        // whose text names it; recognised here, once, so callers can match.
        match &e {
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                StoreError::Locked(e)
            }
            _ => StoreError::Sled(e),
        }
    }
}

/// A mailbox's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Verifier of the mailbox key.
    pub verifier: [u8; 32],
    /// End of the vault's period, ms.
    pub expires_ms: i64,
    /// Bytes of blobs stored.
    pub bytes: u64,
    /// Number of blobs stored (bundles + snapshot).
    pub blobs: u64,
}

impl MailboxInfo {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(56);
        v.extend_from_slice(&self.verifier);
        v.extend_from_slice(&self.expires_ms.to_be_bytes());
        v.extend_from_slice(&self.bytes.to_be_bytes());
        v.extend_from_slice(&self.blobs.to_be_bytes());
        v
    }

    fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != 56 {
            return None;
        }
        let u = |r: std::ops::Range<usize>| -> [u8; 8] { b[r].try_into().unwrap_or_default() };
        Some(MailboxInfo {
            verifier: b[..32].try_into().ok()?,
            expires_ms: i64::from_be_bytes(u(32..40)),
            bytes: u64::from_be_bytes(u(40..48)),
            blobs: u64::from_be_bytes(u(48..56)),
        })
    }
}

/// What the node keeps of a vault shredded before its period's end, so
/// that a paired device's next `Register` cannot recreate the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShredMarker {
    /// Verifier of the shredded mailbox's key: only the vault's devices are
    /// told that it was shredded.
    pub verifier: [u8; 32],
    /// End of the vault's period, ms: the sweeper deletes the marker then.
    pub expires_ms: i64,
    /// The shredding device's sealed notice, handed to the other devices.
    pub notice: Vec<u8>,
}

impl ShredMarker {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(40 + self.notice.len());
        v.extend_from_slice(&self.verifier);
        v.extend_from_slice(&self.expires_ms.to_be_bytes());
        v.extend_from_slice(&self.notice);
        v
    }

    fn decode(b: &[u8]) -> Option<Self> {
        Some(ShredMarker {
            verifier: b.get(..32)?.try_into().ok()?,
            expires_ms: i64::from_be_bytes(b.get(32..40)?.try_into().ok()?),
            notice: b[40..].to_vec(),
        })
    }
}

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![prefix];
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// The directory, inside the store's, that holds the sealed blobs: a file
/// per snapshot, and per vault a pack of its bundles since that snapshot.
pub const SEALED_DIR: &str = "sealed";

/// sled's log segment for a new store: 16 KiB. With the blobs in files
/// and a record per vault (not per bundle), sled holds small records only,
/// and the space it has not reclaimed yet is counted in segments
/// (measured, three residents' week of hourly pushes: 229 KB beside the
/// blob files with 64 KiB segments, see `tests/disk.rs`). sled stores an
/// item over a quarter of a segment (4 KiB here) as a file of its own.
const SEGMENT_BYTES: usize = 16 * 1024;
/// The segments stores created before kept: 64 KiB, then sled's default.
/// sled opens a store only with its own segment size.
const EARLIER_SEGMENT_BYTES: [usize; 2] = [64 * 1024, 512 * 1024];

/// sled's page cache for the node's store: 128 MiB.
pub(crate) const NODE_CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// The record saying that blobs live in files ([`SEALED_DIR`]): a store
/// without it was written by the first layout (blobs inline in sled) and
/// is upgraded at open.
const LAYOUT_KEY: &[u8] = b"Flayout";
/// The record saying the current layout ([`LAYOUT_FILES`]). A new key, not
/// a new value of [`LAYOUT_KEY`]: the previous version takes any other
/// value there for blobs inline in sled, and its upgrade first removes
/// every file in [`SEALED_DIR`]. A store of the current layout keeps
/// [`LAYOUT_KEY`] at [`LAYOUT_FILES_1`] and a [`TRIPWIRE_KEY`] record, so
/// a node downgraded to the previous version refuses it (a corrupt bundle
/// record, before it removes any file) instead of emptying it.
const LAYOUT2_KEY: &[u8] = b"Flayout2";
/// [`LAYOUT2_KEY`]'s value: sealed blobs in files, a vault's bundles in
/// packs of entries with headers, one sled record ([`PackIndex`]) per
/// vault saying which packs and how far.
const LAYOUT_FILES: &[u8] = b"sealed-files-2";
/// A bundle record by the previous version's reading (prefix `b`) that
/// does not decode as a blob reference: see [`LAYOUT2_KEY`]. Nothing in
/// the current layout reads it.
const TRIPWIRE_KEY: &[u8] = b"b";
/// [`TRIPWIRE_KEY`]'s value (its first byte is neither reference tag).
const TRIPWIRE: &[u8] = b"sealed-files-2: bundles are in packs, not in records";
/// [`LAYOUT_KEY`]'s value for the first file layout: a sled record per
/// bundle saying where it is in a pack of bare blobs. Upgraded at open:
/// each record, rewritten with its sled leaf at every push, made sled take
/// about 110 KB per resident in a week, as much as the week's snapshot.
const LAYOUT_FILES_1: &[u8] = b"sealed-files-1";

/// A vault's bundles, at `k` + vault: the packs they are in, each with
/// the end of what its records acknowledged (a kill's torn tail lies past
/// it), and per device the highest seq snapshots dropped (entries at or
/// below it are dead bytes in a pack kept for a later one).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct PackIndex {
    packs: Vec<(BlobName, u64)>,
    gone: VersionVector,
}

impl PackIndex {
    fn gone(&self, device: &DeviceIdBytes) -> u64 {
        self.gone
            .iter()
            .find(|(d, _)| d == device)
            .map_or(0, |(_, s)| *s)
    }

    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        postcard::to_stdvec(self).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// What the store holds for a vault's blobs, for deleting it: the records
/// to remove, the blobs and bytes they count, and their files.
#[derive(Debug, Default)]
pub(crate) struct VaultBlobs {
    pub(crate) keys: Vec<Vec<u8>>,
    pub(crate) blobs: u64,
    pub(crate) bytes: u64,
    pub(crate) files: HashSet<BlobName>,
}

/// A snapshot's record in sled: what it covers, and where its blob is.
#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotRef {
    covers: VersionVector,
    /// [`Stored::encode`] of the blob.
    stored: Vec<u8>,
}

/// Mailboxes on sled, their sealed blobs in files beside it (blobs.rs).
/// Every write is flushed before it returns, so whatever the node
/// acknowledged survives a restart.
#[derive(Debug, Clone)]
pub struct MailboxStore {
    db: Kv,
    blobs: Blobs,
}

impl MailboxStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        // A store just closed in this process may still be locked for a
        // moment (sled's flusher thread lets go of it asynchronously): retry
        // a lock refusal for up to 2 s. Another process's lock stays an error.
        let mut waited = std::time::Duration::ZERO;
        loop {
            match Self::open_once(dir) {
                Err(StoreError::Locked(_)) if waited < std::time::Duration::from_secs(2) => {
                    let step = std::time::Duration::from_millis(20);
                    std::thread::sleep(step);
                    waited += step;
                }
                r => return r,
            }
        }
    }

    fn open_once(dir: &Path) -> Result<Self, StoreError> {
        let sealed = dir.join(SEALED_DIR);
        // A node killed while sled wrote its snapshot at start would
        // otherwise never open again (see the function).
        for path in vigil_fs::remove_abandoned_sled_snapshots(dir).map_err(StoreError::Io)? {
            tracing::warn!(
                file = %path.display(),
                "removed a snapshot sled began and never committed (a kill or power cut during a start)"
            );
        }
        // sled caches up to 1 GiB of pages by default, which a node of
        // 10,000 residents fills; every write is flushed, so a smaller cache
        // costs only re-reads of cold mailboxes.
        let open = |segment: usize| {
            let dir = dir.to_owned();
            std::panic::catch_unwind(move || {
                sled::Config::new()
                    .path(dir)
                    .cache_capacity(NODE_CACHE_BYTES)
                    .segment_size(segment)
                    .open()
            })
            .map_err(|_| StoreError::OpenPanicked)
        };
        // sled refuses another segment size than a store's own (it says so
        // before it takes the lock or writes anything): a store created
        // before keeps its own.
        let mut opened = open(SEGMENT_BYTES)?;
        for earlier in EARLIER_SEGMENT_BYTES {
            match opened {
                Err(sled::Error::Unsupported(ref why)) if why.contains("io buffer size") => {
                    opened = open(earlier)?;
                }
                _ => break,
            }
        }
        let db = opened?;
        std::fs::create_dir_all(&sealed).map_err(StoreError::Io)?;
        let store = MailboxStore {
            db: Kv::Sled(db),
            blobs: Blobs::Files(sealed),
        };
        let unknown = || StoreError::Corrupt("store layout (unknown)".into());
        match store.db.get(LAYOUT2_KEY)?.as_deref() {
            Some(LAYOUT_FILES) => {}
            Some(_) => return Err(unknown()),
            None => match store.db.get(LAYOUT_KEY)?.as_deref() {
                Some(LAYOUT_FILES_1) => store.upgrade(Previous::Files1)?,
                None => store.upgrade(Previous::Inline)?,
                Some(_) => return Err(unknown()),
            },
        }
        store.remove_unreferenced()?;
        Ok(store)
    }

    /// Removes the blob files no record refers to: what a kill between a
    /// file and its record (or a record's removal and its file's) left.
    /// At open only, before any request is served.
    fn remove_unreferenced(&self) -> Result<(), StoreError> {
        let mut keep = HashSet::new();
        for (_, v) in self.db.scan_prefix(b"k")? {
            keep.extend(decode_index(&v)?.packs.into_iter().map(|(n, _)| n));
        }
        for (_, v) in self.db.scan_prefix(b"s")? {
            keep.insert(Stored::decode(&decode_snapshot_ref(&v)?.stored)?.file());
        }
        let removed = self.blobs.retain(&keep)?;
        if removed > 0 {
            tracing::info!(removed, "removed blob files a crash left without a record");
        }
        Ok(())
    }

    /// Moves the blobs of a store of an earlier layout into the current
    /// one: from inline in sled into files, or from the first file layout
    /// (a record per bundle) into packs with headers. Crash-safe: the new
    /// files are written first (durably, under names the earlier layout
    /// does not use), then one sled batch swaps the records and marks the
    /// layout; killed before that batch, the store is still the earlier
    /// layout whole, and the next open starts again (removing the files
    /// the earlier layout does not name first). The earlier layout's files
    /// go after the batch ([`MailboxStore::remove_unreferenced`]). A new
    /// store is marked at once.
    fn upgrade(&self, from: Previous) -> Result<(), StoreError> {
        let mut keep = HashSet::new();
        if from == Previous::Files1 {
            for (_, v) in self.db.scan_prefix(b"b")? {
                keep.insert(Stored::decode(&v)?.file());
            }
            for (_, v) in self.db.scan_prefix(b"s")? {
                keep.insert(Stored::decode(&decode_snapshot_ref(&v)?.stored)?.file());
            }
        }
        self.blobs.retain(&keep)?;
        let mut batch = KvBatch::default();
        let mut moved = 0u64;
        // Snapshots first: a vault's bundles go to the pack its snapshot
        // record names, and what it covers is dropped.
        let mut snapshots: HashMap<Vec<u8>, (Vec<u8>, VersionVector)> = HashMap::new();
        for r in self.db.range(b"s".to_vec(), b"t".to_vec()) {
            let (k, v) = r?;
            let vault = k.get(1..).unwrap_or_default().to_vec();
            if from == Previous::Files1 {
                let covers = decode_snapshot_ref(&v)?.covers;
                snapshots.insert(vault, (v, covers));
                continue;
            }
            let snap: SnapshotItem =
                postcard::from_bytes(&v).map_err(|_| StoreError::Corrupt("snapshot".into()))?;
            let stored = self
                .blobs
                .put_file(snapshot_name(&k, &snap.blob), &snap.blob)?;
            let record = encode_snapshot_ref(snap.covers.clone(), &stored)?;
            batch.insert(k.clone(), record.clone());
            snapshots.insert(vault, (record, snap.covers));
            moved += 1;
        }
        // Bundles in key order: a vault's in one pack, written at once.
        let mut pack: Option<(Vec<u8>, Vec<u8>)> = None;
        let finish =
            |pack: Option<(Vec<u8>, Vec<u8>)>, batch: &mut KvBatch| -> Result<(), StoreError> {
                let Some((vault, bytes)) = pack else {
                    return Ok(());
                };
                let (record, covers) = snapshots.get(&vault).cloned().unwrap_or_default();
                let name = pack_name(&vault, &record);
                let end = self.blobs.write_at(name, 0, &bytes)?;
                let index = PackIndex {
                    packs: vec![(name, end)],
                    gone: covers,
                };
                batch.insert(key(b'k', &[&vault]), index.encode()?);
                Ok(())
            };
        for r in self.db.range(b"b".to_vec(), b"c".to_vec()) {
            let (k, v) = r?;
            let (vault, device, seq) = bundle_key(&k)?;
            let blob = match from {
                Previous::Files1 => self.blobs.load(&Stored::decode(&v)?)?,
                Previous::Inline => v,
            };
            if pack.as_ref().is_some_and(|(v, _)| v.as_slice() != vault) {
                finish(pack.take(), &mut batch)?;
            }
            let (_, bytes) = pack.get_or_insert_with(|| (vault.to_vec(), Vec::new()));
            bytes.extend_from_slice(&pack_entry(&device, seq, &blob)?);
            batch.remove(k);
            moved += 1;
        }
        finish(pack.take(), &mut batch)?;
        batch.insert(LAYOUT_KEY.to_vec(), LAYOUT_FILES_1.to_vec());
        batch.insert(LAYOUT2_KEY.to_vec(), LAYOUT_FILES.to_vec());
        batch.insert(TRIPWIRE_KEY.to_vec(), TRIPWIRE.to_vec());
        self.db.apply(batch)?;
        self.db.flush()?;
        if moved > 0 {
            tracing::info!(
                moved,
                "moved the store's sealed blobs to the current layout"
            );
        }
        Ok(())
    }

    /// A store held in memory only: nothing survives the process. Clones
    /// share it, so a simulated node restart keeps its data. For the
    /// simulation harness and tests; a real node uses [`MailboxStore::open`].
    pub fn in_memory() -> Self {
        MailboxStore {
            db: Kv::Mem(Default::default()),
            blobs: Blobs::Mem(Default::default()),
        }
    }

    /// The store's size in bytes (on disk, for a store in a directory).
    pub fn size_on_disk(&self) -> u64 {
        self.db().size().saturating_add(self.blobs.size())
    }

    pub(crate) fn db(&self) -> &Kv {
        &self.db
    }

    pub(crate) fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// The mailbox of `vault`, if registered.
    pub fn mailbox(&self, vault: &VaultIdBytes) -> Result<Option<MailboxInfo>, StoreError> {
        match self.db.get(&key(b'v', &[vault]))? {
            None => Ok(None),
            Some(v) => MailboxInfo::decode(&v)
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt("mailbox".into())),
        }
    }

    /// Creates or replaces a mailbox record (durable).
    pub fn put_mailbox(&self, vault: &VaultIdBytes, info: &MailboxInfo) -> Result<(), StoreError> {
        self.db.insert(key(b'v', &[vault]), info.encode())?;
        self.db.flush()?;
        Ok(())
    }

    /// The shred marker of `vault`, if it was shredded early and its period
    /// has not been swept yet (docs/spec.md §11, §13).
    pub fn shred_marker(&self, vault: &VaultIdBytes) -> Result<Option<ShredMarker>, StoreError> {
        match self.db.get(&key(b'x', &[vault]))? {
            None => Ok(None),
            Some(v) => ShredMarker::decode(&v)
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt("shred marker".into())),
        }
    }

    /// Every shred marker (for the sweeper).
    pub fn shred_markers(&self) -> Result<Vec<(VaultIdBytes, ShredMarker)>, StoreError> {
        self.db
            .scan_prefix(b"x")?
            .into_iter()
            .map(|(k, v)| {
                let id: VaultIdBytes = k
                    .get(1..)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| StoreError::Corrupt("shred marker key".into()))?;
                let m = ShredMarker::decode(&v)
                    .ok_or_else(|| StoreError::Corrupt("shred marker".into()))?;
                Ok((id, m))
            })
            .collect()
    }

    /// Removes a shred marker (durable).
    pub fn remove_shred_marker(&self, vault: &VaultIdBytes) -> Result<(), StoreError> {
        self.db.remove(&key(b'x', &[vault]))?;
        self.db.flush()?;
        Ok(())
    }

    pub(crate) fn mailbox_key(vault: &VaultIdBytes) -> Vec<u8> {
        key(b'v', &[vault])
    }

    pub(crate) fn marker_key(vault: &VaultIdBytes) -> Vec<u8> {
        key(b'x', &[vault])
    }

    /// The highest bundle seq ever stored for a device (0 if none).
    pub fn highest(&self, vault: &VaultIdBytes, device: &DeviceIdBytes) -> Result<u64, StoreError> {
        Ok(self
            .db
            .get(&key(b'h', &[vault, device]))?
            .and_then(|v| v.as_slice().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// A stored bundle.
    pub fn bundle(
        &self,
        vault: &VaultIdBytes,
        device: &DeviceIdBytes,
        seq: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let index = self.index(vault)?;
        match self
            .live(&index)?
            .into_iter()
            .find(|e| e.device == *device && e.seq == seq)
        {
            None => Ok(None),
            Some(e) => self.blobs.load(&e.stored).map(Some),
        }
    }

    /// Appends a bundle and updates the counters, atomically and durably.
    pub fn append(
        &self,
        vault: &VaultIdBytes,
        b: &BundleItem,
        info: &MailboxInfo,
    ) -> Result<(), StoreError> {
        // The bytes first, durably: a record never refers to missing ones.
        // Into the pack of the vault's current snapshot (a new snapshot
        // starts a new pack).
        // The pack's committed end comes from its record: a tail a kill
        // left past it is cut by the write.
        let snap = self.db.get(&key(b's', &[vault]))?.unwrap_or_default();
        let name = pack_name(vault, &snap);
        let mut index = self.index(vault)?;
        let at = index
            .packs
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, end)| *end);
        let end = self
            .blobs
            .write_at(name, at, &pack_entry(&b.device, b.seq, &b.blob)?)?;
        match index.packs.iter_mut().find(|(n, _)| *n == name) {
            Some(p) => p.1 = end,
            None => index.packs.push((name, end)),
        }
        let mut batch = KvBatch::default();
        batch.insert(key(b'k', &[vault]), index.encode()?);
        batch.insert(key(b'h', &[vault, &b.device]), b.seq.to_be_bytes());
        batch.insert(key(b'v', &[vault]), info.encode());
        self.db.apply(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Every bundle of the vault in (device, seq) order.
    pub fn bundles<'a>(
        &'a self,
        vault: &'a VaultIdBytes,
    ) -> impl Iterator<Item = Result<BundleItem, StoreError>> + 'a {
        let (all, err) = match self.bundles_after(vault, &HashMap::new()) {
            Ok(it) => (Some(it), None),
            Err(e) => (None, Some(Err(e))),
        };
        err.into_iter().chain(all.into_iter().flatten())
    }

    /// The bundles of the vault that `have` lacks, in (device, seq) order,
    /// read lazily per device from the first missing seq: a device that is
    /// up to date costs the relay one scan of the vault's counters. `have`
    /// is a map, so a long vector costs a lookup per device held, not a scan.
    pub fn bundles_after<'a>(
        &'a self,
        vault: &'a VaultIdBytes,
        have: &HashMap<DeviceIdBytes, u64>,
    ) -> Result<impl Iterator<Item = Result<BundleItem, StoreError>> + use<'a>, StoreError> {
        let index = self.index(vault)?;
        let mut wanted: Vec<PackEntry> = self
            .live(&index)?
            .into_iter()
            .filter(|e| e.seq > have.get(&e.device).copied().unwrap_or(0))
            .collect();
        wanted.sort_by_key(|e| (e.device, e.seq));
        Ok(wanted.into_iter().map(move |e| {
            let blob = self.blobs.load(&e.stored)?;
            Ok(BundleItem {
                device: e.device,
                seq: e.seq,
                blob,
            })
        }))
    }

    /// A vault's [`PackIndex`] (empty if it has no bundles yet).
    fn index(&self, vault: &VaultIdBytes) -> Result<PackIndex, StoreError> {
        match self.db.get(&key(b'k', &[vault]))? {
            None => Ok(PackIndex::default()),
            Some(v) => decode_index(&v),
        }
    }

    /// The bundles `index` holds that no snapshot dropped, in pack order.
    fn live(&self, index: &PackIndex) -> Result<Vec<PackEntry>, StoreError> {
        let mut out = Vec::new();
        for (pack, end) in &index.packs {
            out.extend(
                self.blobs
                    .pack_entries(*pack, *end)?
                    .into_iter()
                    .filter(|e| e.seq > index.gone(&e.device)),
            );
        }
        Ok(out)
    }

    /// The stored snapshot, if any.
    pub fn snapshot(&self, vault: &VaultIdBytes) -> Result<Option<SnapshotItem>, StoreError> {
        let Some(r) = self.snapshot_ref(vault)? else {
            return Ok(None);
        };
        let blob = self.blobs.load(&Stored::decode(&r.stored)?)?;
        Ok(Some(SnapshotItem {
            covers: r.covers,
            blob,
        }))
    }

    fn snapshot_ref(&self, vault: &VaultIdBytes) -> Result<Option<SnapshotRef>, StoreError> {
        match self.db.get(&key(b's', &[vault]))? {
            None => Ok(None),
            Some(v) => decode_snapshot_ref(&v).map(Some),
        }
    }

    /// Every blob of a vault (its live bundles and its snapshot), with
    /// the records that name them and their files: what deleting it drops.
    pub(crate) fn vault_blobs(&self, vault: &VaultIdBytes) -> Result<VaultBlobs, StoreError> {
        let mut out = VaultBlobs::default();
        let k = key(b'k', &[vault]);
        if let Some(v) = self.db.get(&k)? {
            let index = decode_index(&v)?;
            for e in self.live(&index)? {
                out.blobs += 1;
                out.bytes += e.stored.len();
            }
            out.files.extend(index.packs.iter().map(|(n, _)| *n));
            out.keys.push(k);
        }
        if let Some(r) = self.snapshot_ref(vault)? {
            let s = Stored::decode(&r.stored)?;
            out.blobs += 1;
            out.bytes += s.len();
            out.files.insert(s.file());
            out.keys.push(key(b's', &[vault]));
        }
        Ok(out)
    }

    /// Stores a snapshot and drops the bundles it covers, atomically and
    /// durably — unless the resulting usage would fail `within_quota`, in
    /// which case nothing changes and `Ok(false)` is returned.
    pub fn put_snapshot(
        &self,
        vault: &VaultIdBytes,
        snap: &SnapshotItem,
        info: &mut MailboxInfo,
        within_quota: impl Fn(&MailboxInfo) -> bool,
    ) -> Result<bool, StoreError> {
        let old = self.snapshot_ref(vault)?;
        let mut batch = KvBatch::default();
        let mut bytes = info.bytes;
        let mut blobs = info.blobs;
        // Files to remove once the batch that drops their records is
        // durable: the old snapshot's, and the packs whose bundles are all
        // covered (a pack with a bundle left stays whole).
        let mut dropped = HashSet::new();
        let mut still = HashSet::new();
        if let Some(o) = &old {
            let s = Stored::decode(&o.stored)?;
            bytes = bytes.saturating_sub(s.len());
            blobs = blobs.saturating_sub(1);
            dropped.insert(s.file());
        }
        // What the snapshot drops, per device: up to what it covers, but
        // not past what the relay holds (a later bundle at a seq it claims
        // to cover is still stored, as it was before).
        let mut index = self.index(vault)?;
        let held: HashMap<_, _> = self.holdings(vault)?.into_iter().collect();
        let mut gone = index.gone.clone();
        for (d, c) in &snap.covers {
            let g = (*c).min(held.get(d).copied().unwrap_or(0));
            match gone.iter_mut().find(|(x, _)| x == d) {
                Some(e) => e.1 = e.1.max(g),
                None => gone.push((*d, g)),
            }
        }
        let next = PackIndex {
            packs: Vec::new(),
            gone,
        };
        for (pack, end) in std::mem::take(&mut index.packs) {
            let mut kept = false;
            for e in self.blobs.pack_entries(pack, end)? {
                let (was, is) = (e.seq > index.gone(&e.device), e.seq > next.gone(&e.device));
                if was && !is {
                    bytes = bytes.saturating_sub(e.stored.len());
                    blobs = blobs.saturating_sub(1);
                }
                kept |= is;
            }
            if kept {
                index.packs.push((pack, end));
                still.insert(pack);
            } else {
                dropped.insert(pack);
            }
        }
        let index = PackIndex {
            packs: index.packs,
            gone: next.gone,
        };
        let after = MailboxInfo {
            // Stored counters plus a wire size: saturated, a sum past
            // u64::MAX fails every quota instead of wrapping.
            bytes: bytes.saturating_add(snap.blob.len() as u64),
            blobs: blobs.saturating_add(1),
            ..*info
        };
        if !within_quota(&after) {
            return Ok(false);
        }
        let k = key(b's', &[vault]);
        let stored = self
            .blobs
            .put_file(snapshot_name(&k, &snap.blob), &snap.blob)?;
        // The same snapshot again (a retry) is the same file: it stays.
        dropped.retain(|n| *n != stored.file() && !still.contains(n));
        let record = encode_snapshot_ref(snap.covers.clone(), &stored)?;
        batch.insert(k, record);
        batch.insert(key(b'k', &[vault]), index.encode()?);
        batch.insert(key(b'v', &[vault]), after.encode());
        self.db.apply(batch)?;
        self.db.flush()?;
        *info = after;
        self.blobs.remove(&dropped);
        Ok(true)
    }

    /// Leaves a wrapped root at a pairing slot until `expires_ms`, unless
    /// the slot holds an offer that has not expired at `now_ms`: the first
    /// writer wins, so whoever saw a joiner code cannot replace the offer
    /// already there. Returns whether the offer was stored.
    pub fn put_pairing(
        &self,
        slot: &[u8; 32],
        wrapped: &[u8],
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .put_pairing_counted(slot, wrapped, now_ms, expires_ms)?
            .is_some())
    }

    /// [`MailboxStore::put_pairing`], saying whether the offer took an empty
    /// slot (`Some(true)`), replaced an expired offer (`Some(false)`), or
    /// was refused (`None`): what the node-wide count of offers needs.
    pub fn put_pairing_counted(
        &self,
        slot: &[u8; 32],
        wrapped: &[u8],
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<Option<bool>, StoreError> {
        let k = key(b'p', &[slot]);
        let mut v = expires_ms.to_be_bytes().to_vec();
        v.extend_from_slice(wrapped);
        let old = self.db.get(&k)?;
        if old
            .as_deref()
            .and_then(pairing_expiry)
            .is_some_and(|exp| now_ms < exp)
        {
            return Ok(None);
        }
        let was_empty = old.is_none();
        // Compare-and-swap against what was read: of two writers racing for
        // an empty (or expired) slot, one wins.
        if !self.db.compare_and_swap(k, old, v)? {
            return Ok(None);
        }
        self.db.flush()?;
        Ok(Some(was_empty))
    }

    /// How many pairing offers are stored (expired ones not yet swept
    /// included).
    pub fn pairing_count(&self) -> Result<u64, StoreError> {
        Ok(self.db.scan_prefix(b"p")?.len() as u64)
    }

    /// The wrapped root at a slot, if present and not expired at `now_ms`.
    pub fn pairing(&self, slot: &[u8; 32], now_ms: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(&key(b'p', &[slot]))?.and_then(|v| {
            let exp = pairing_expiry(&v)?;
            (now_ms < exp).then(|| v[8..].to_vec())
        }))
    }

    /// Takes the wrapped root from a slot: it is removed, so an offer is
    /// fetched once. An expired offer is removed too, and not returned.
    pub fn take_pairing(
        &self,
        slot: &[u8; 32],
        now_ms: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.take_pairing_counted(slot, now_ms)?.1)
    }

    /// [`MailboxStore::take_pairing`], saying also whether an offer (even
    /// an expired one) was removed.
    pub fn take_pairing_counted(
        &self,
        slot: &[u8; 32],
        now_ms: i64,
    ) -> Result<(bool, Option<Vec<u8>>), StoreError> {
        let Some(v) = self.db.take(&key(b'p', &[slot]))? else {
            return Ok((false, None));
        };
        self.db.flush()?;
        let offer = pairing_expiry(&v)
            .is_some_and(|exp| now_ms < exp)
            .then(|| v[8..].to_vec());
        Ok((true, offer))
    }

    /// Every registered vault (for the sweeper and the operator).
    pub fn vaults(&self) -> Result<Vec<(VaultIdBytes, MailboxInfo)>, StoreError> {
        self.db
            .scan_prefix(b"v")?
            .into_iter()
            .map(|(k, v)| {
                let id: VaultIdBytes = k
                    .get(1..)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| StoreError::Corrupt("vault key".into()))?;
                let info =
                    MailboxInfo::decode(&v).ok_or_else(|| StoreError::Corrupt("mailbox".into()))?;
                Ok((id, info))
            })
            .collect()
    }

    /// The version vector of what the relay holds for a vault.
    pub fn holdings(&self, vault: &VaultIdBytes) -> Result<VersionVector, StoreError> {
        Ok(self
            .db
            .scan_prefix(&key(b'h', &[vault]))?
            .into_iter()
            .map(|(k, v)| {
                (
                    k[17..33].try_into().unwrap_or_default(),
                    u64::from_be_bytes(v.as_slice().try_into().unwrap_or_default()),
                )
            })
            .collect())
    }
}

/// The expiry at the head of a stored pairing offer.
fn pairing_expiry(v: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

fn encode_snapshot_ref(covers: VersionVector, stored: &Stored) -> Result<Vec<u8>, StoreError> {
    let stored = stored.encode();
    postcard::to_stdvec(&SnapshotRef { covers, stored })
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode_index(v: &[u8]) -> Result<PackIndex, StoreError> {
    postcard::from_bytes(v).map_err(|_| StoreError::Corrupt("pack index".into()))
}

/// The layout a store is upgraded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Previous {
    /// Blobs inline in sled.
    Inline,
    /// [`LAYOUT_FILES_1`].
    Files1,
}

/// The (vault, device, seq) of an earlier layout's bundle record key.
fn bundle_key(k: &[u8]) -> Result<(&[u8], DeviceIdBytes, u64), StoreError> {
    let bad = || StoreError::Corrupt("bundle key".into());
    let vault = k.get(1..17).ok_or_else(bad)?;
    let device = k
        .get(17..33)
        .and_then(|d| d.try_into().ok())
        .ok_or_else(bad)?;
    let seq = k
        .get(33..41)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(bad)?;
    Ok((vault, device, seq))
}

fn decode_snapshot_ref(v: &[u8]) -> Result<SnapshotRef, StoreError> {
    postcard::from_bytes(v).map_err(|_| StoreError::Corrupt("snapshot".into()))
}
