//! The node's mailbox store on sled (docs/spec.md §11). It holds verifiers,
//! sealed blobs and counters: nothing it could read.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::blobs::{BlobName, Blobs, Stored, pack_name, snapshot_name};
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

/// sled's log segment for a new store: 64 KiB. With the blobs in files,
/// sled holds small records only, and the space it has not reclaimed yet
/// is counted in segments (measured, a week of hourly pushes: 1 MB for ten
/// residents with 512 KiB segments, 330 KB with 64 KiB).
const SEGMENT_BYTES: usize = 64 * 1024;
/// sled's default segment, which stores created before kept.
const OLD_SEGMENT_BYTES: usize = 512 * 1024;

/// sled's page cache for the node's store: 128 MiB.
pub(crate) const NODE_CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// The record saying that blobs live in files ([`SEALED_DIR`]): a store
/// without it was written by the previous layout (blobs inline in sled)
/// and is upgraded at open.
const LAYOUT_KEY: &[u8] = b"Flayout";
/// [`LAYOUT_KEY`]'s value: sealed blobs in files.
const LAYOUT_FILES: &[u8] = b"sealed-files-1";

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
        // before keeps sled's default.
        let db = match open(SEGMENT_BYTES)? {
            Err(sled::Error::Unsupported(why)) if why.contains("io buffer size") => {
                open(OLD_SEGMENT_BYTES)??
            }
            r => r?,
        };
        std::fs::create_dir_all(&sealed).map_err(StoreError::Io)?;
        let store = MailboxStore {
            db: Kv::Sled(db),
            blobs: Blobs::Files(sealed),
        };
        if store.db.get(LAYOUT_KEY)?.as_deref() == Some(LAYOUT_FILES) {
            store.remove_unreferenced()?;
        } else {
            store.upgrade()?;
        }
        Ok(store)
    }

    /// Removes the blob files no record refers to: what a kill between a
    /// file and its record (or a record's removal and its file's) left.
    /// At open only, before any request is served.
    fn remove_unreferenced(&self) -> Result<(), StoreError> {
        let mut keep = HashSet::new();
        for (_, v) in self.db.scan_prefix(b"b")? {
            keep.insert(Stored::decode(&v)?.file());
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

    /// Moves the blobs of a store of the previous layout (inline in sled)
    /// into files. Crash-safe: the files are written first (durably), then
    /// one sled batch swaps every record for its reference and marks the
    /// layout; killed before that batch, the store is still the previous
    /// layout whole, and the next open starts again (removing the files
    /// written so far first). A new store is marked at once.
    fn upgrade(&self) -> Result<(), StoreError> {
        self.blobs.retain(&HashSet::new())?;
        let mut batch = KvBatch::default();
        let mut moved = 0u64;
        // Snapshots first: a vault's bundles go to the pack its new
        // snapshot record names.
        let mut snapshots: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for r in self.db.range(b"s".to_vec(), b"t".to_vec()) {
            let (k, v) = r?;
            let snap: SnapshotItem =
                postcard::from_bytes(&v).map_err(|_| StoreError::Corrupt("snapshot".into()))?;
            let stored = self
                .blobs
                .put_file(snapshot_name(&k, &snap.blob), &snap.blob)?;
            let record = encode_snapshot_ref(snap.covers, &stored)?;
            batch.insert(k.clone(), record.clone());
            snapshots.insert(k.get(1..).unwrap_or_default().to_vec(), record);
            moved += 1;
        }
        for r in self.db.range(b"b".to_vec(), b"c".to_vec()) {
            let (k, blob) = r?;
            let vault = k.get(1..17).unwrap_or_default();
            let snap = snapshots.get(vault).map(Vec::as_slice).unwrap_or_default();
            let stored = self.blobs.append(pack_name(vault, snap), &blob)?;
            batch.insert(k, stored.encode());
            moved += 1;
        }
        batch.insert(LAYOUT_KEY.to_vec(), LAYOUT_FILES.to_vec());
        self.db.apply(batch)?;
        self.db.flush()?;
        if moved > 0 {
            tracing::info!(moved, "moved the store's sealed blobs into files");
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
        match self
            .db
            .get(&key(b'b', &[vault, device, &seq.to_be_bytes()]))?
        {
            None => Ok(None),
            Some(v) => self.blobs.load(&Stored::decode(&v)?).map(Some),
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
        let k = key(b'b', &[vault, &b.device, &b.seq.to_be_bytes()]);
        let snap = self.db.get(&key(b's', &[vault]))?.unwrap_or_default();
        let stored = self.blobs.append(pack_name(vault, &snap), &b.blob)?;
        let mut batch = KvBatch::default();
        batch.insert(k, stored.encode());
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
        let wanted: Vec<_> = self
            .holdings(vault)?
            .into_iter()
            .filter_map(|(device, highest)| {
                let from = have.get(&device).copied().unwrap_or(0).saturating_add(1);
                (from <= highest).then_some((device, from, highest))
            })
            .collect();
        Ok(wanted.into_iter().flat_map(move |(device, from, highest)| {
            let start = key(b'b', &[vault, &device, &from.to_be_bytes()]);
            let end = key(
                b'b',
                &[vault, &device, &highest.saturating_add(1).to_be_bytes()],
            );
            self.db.range(start, end).map(move |r| {
                let (k, v) = r?;
                let seq = k
                    .get(33..41)
                    .and_then(|s| s.try_into().ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| StoreError::Corrupt("bundle key".into()))?;
                let blob = self.blobs.load(&Stored::decode(&v)?)?;
                Ok(BundleItem { device, seq, blob })
            })
        }))
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

    /// The record key, length and file of every blob of a vault: its
    /// bundles and its snapshot.
    pub(crate) fn blob_refs(
        &self,
        vault: &VaultIdBytes,
    ) -> Result<Vec<(Vec<u8>, u64, BlobName)>, StoreError> {
        let mut out = Vec::new();
        for (k, v) in self.db.scan_prefix(&key(b'b', &[vault]))? {
            let s = Stored::decode(&v)?;
            out.push((k, s.len(), s.file()));
        }
        if let Some(r) = self.snapshot_ref(vault)? {
            let s = Stored::decode(&r.stored)?;
            out.push((key(b's', &[vault]), s.len(), s.file()));
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
        let covers: HashMap<_, _> = snap.covers.iter().copied().collect();
        let covered = |d: &DeviceIdBytes| covers.get(d).copied().unwrap_or(0);
        for (k, v) in self.db.scan_prefix(&key(b'b', &[vault]))? {
            let (device, seq) = k
                .get(17..33)
                .and_then(|d| d.try_into().ok())
                .zip(k.get(33..41).and_then(|s| s.try_into().ok()))
                .map(|(d, s): (DeviceIdBytes, [u8; 8])| (d, u64::from_be_bytes(s)))
                .ok_or_else(|| StoreError::Corrupt("bundle key".into()))?;
            let s = Stored::decode(&v)?;
            if seq <= covered(&device) {
                batch.remove(k);
                bytes = bytes.saturating_sub(s.len());
                blobs = blobs.saturating_sub(1);
                dropped.insert(s.file());
            } else {
                still.insert(s.file());
            }
        }
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
        batch.insert(k, encode_snapshot_ref(snap.covers.clone(), &stored)?);
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

fn decode_snapshot_ref(v: &[u8]) -> Result<SnapshotRef, StoreError> {
    postcard::from_bytes(v).map_err(|_| StoreError::Corrupt("snapshot".into()))
}
