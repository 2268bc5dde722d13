//! What the node's store costs on disk (issue 19): a community node pays
//! for its disk, so the store must stay near the bytes it holds for its
//! residents, not grow with every push and replaced snapshot. And the
//! layout that achieves it keeps every guarantee: nothing acknowledged is
//! lost across a restart, a crash's leftovers are cleaned, and a store
//! written by an earlier version opens with everything in it.

use std::path::Path;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use vigil_node::{MailboxInfo, MailboxStore, SEALED_DIR};
use vigil_proto::{BundleItem, SnapshotItem};

/// (apparent, allocated) bytes of every file under `dir`, as `du` counts.
fn dir_bytes(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut sum = (0, 0);
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            let (a, b) = dir_bytes(&p);
            sum = (sum.0 + a, sum.1 + b);
        } else if let Ok(m) = e.metadata() {
            sum = (sum.0 + m.len(), sum.1 + m.blocks() * 512);
        }
    }
    sum
}

/// Sealed blobs are ciphertext: random bytes model them.
fn blob(rng: &mut ChaCha20Rng, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    rng.fill_bytes(&mut v);
    v
}

fn vault(i: u64) -> [u8; 16] {
    let mut v = [7u8; 16];
    v[..8].copy_from_slice(&i.to_be_bytes());
    v
}

const DEVICE: [u8; 16] = [2; 16];
const BUNDLE: usize = 2_050;

fn mailbox() -> MailboxInfo {
    MailboxInfo {
        verifier: [1; 32],
        expires_ms: 1 << 50,
        bytes: 0,
        blobs: 0,
    }
}

/// A week of `residents` syncing hourly, as the device does (sync.rs):
/// a ~2 KB bundle an hour, and a relay snapshot replacing the bundles
/// whenever the node's bytes pass 7/8 of the document (which grows to
/// ~120 KB; the snapshot is it compressed) and the bundles since the last
/// snapshot are at least its size. Returns the live blob bytes.
fn week(store: &MailboxStore, residents: u64, rng: &mut ChaCha20Rng) -> u64 {
    let n = residents as usize;
    for i in 0..residents {
        store.put_mailbox(&vault(i), &mailbox()).unwrap();
    }
    let (mut snap, mut since) = (vec![0u64; n], vec![0u64; n]);
    for h in 1..=168u64 {
        for i in 0..n {
            let v = vault(i as u64);
            let mut info = store.mailbox(&v).unwrap().unwrap();
            info.bytes += BUNDLE as u64;
            info.blobs += 1;
            let b = BundleItem {
                device: DEVICE,
                seq: h,
                blob: blob(rng, BUNDLE),
            };
            store.append(&v, &b, &info).unwrap();
            since[i] += BUNDLE as u64;
            let doc = 123_000 * h / 168 + 2_000;
            if snap[i] + since[i] > doc - doc / 8 && since[i] >= snap[i] {
                let len = doc * 55 / 100;
                let s = SnapshotItem {
                    covers: vec![(DEVICE, h)],
                    blob: blob(rng, len as usize),
                };
                assert!(store.put_snapshot(&v, &s, &mut info, |_| true).unwrap());
                (snap[i], since[i]) = (len, 0);
            }
        }
    }
    (0..residents)
        .map(|i| store.mailbox(&vault(i)).unwrap().unwrap().bytes)
        .sum()
}

/// The store's allocated bytes, less an empty store's, over its live blob
/// bytes, after a week of `residents` (the store closed, as `du` sees it).
fn disk_over_live(residents: u64) -> f64 {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    drop(MailboxStore::open(&empty).unwrap());
    let dir = tmp.path().join("node");
    let mut rng = ChaCha20Rng::seed_from_u64(residents);
    let live = {
        let store = MailboxStore::open(&dir).unwrap();
        week(&store, residents, &mut rng)
    };
    let used = dir_bytes(&dir).1.saturating_sub(dir_bytes(&empty).1);
    used as f64 / live as f64
}

/// Ten residents' week, each of their snapshots replacing the bundles it
/// covers: the node's disk stays within 1.5 times what it holds for them
/// (on main it was about 2.5 to 3 times: sled keeps overwritten and removed
/// values until it rewrites their segments, and rewrites whole leaves).
#[test]
fn the_store_stays_near_its_live_bytes_after_snapshots_replace_bundles() {
    let r = disk_over_live(10);
    assert!(r <= 1.5, "the store takes {r:.2}x its live bytes on disk");
}

/// One resident: what dead space costs is not hidden by a node's scale.
#[test]
fn one_residents_store_stays_near_its_live_bytes() {
    let r = disk_over_live(1);
    assert!(r <= 2.0, "the store takes {r:.2}x its live bytes on disk");
}

/// Every bundle, the snapshot and the counters of vault `i` read back as
/// written, bundles by `bundles` and the snapshot by `bundle`.
fn reads_back(store: &MailboxStore, v: &[u8; 16], bundles: &[BundleItem], snap: &SnapshotItem) {
    let got: Vec<BundleItem> = store.bundles(v).map(Result::unwrap).collect();
    assert_eq!(got, bundles);
    for b in bundles {
        assert_eq!(
            store.bundle(v, &b.device, b.seq).unwrap().as_ref(),
            Some(&b.blob)
        );
    }
    assert_eq!(store.snapshot(v).unwrap().as_ref(), Some(snap));
}

/// A store written by the previous version (blobs inline in sled), with
/// the leftovers of an upgrade killed half-way (stray and temporary files
/// where blobs now go): it opens with every bundle and snapshot, and keeps
/// them across the next reopens.
#[test]
fn a_store_of_the_previous_layout_opens_with_everything_after_an_interrupted_upgrade() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let v = vault(1);
    let bundles: Vec<BundleItem> = (4..=6)
        .map(|seq| BundleItem {
            device: DEVICE,
            seq,
            blob: blob(&mut rng, 300 * seq as usize),
        })
        .collect();
    let snap = SnapshotItem {
        covers: vec![(DEVICE, 3)],
        blob: blob(&mut rng, 40_000),
    };
    {
        // The previous layout, record by record (store.rs before blobs
        // moved out of sled).
        let db = sled::open(&dir).unwrap();
        let mut info = mailbox();
        info.bytes = (snap.blob.len() + bundles.iter().map(|b| b.blob.len()).sum::<usize>()) as u64;
        info.blobs = 4;
        db.insert([&b"v"[..], &v].concat(), info_bytes(&info))
            .unwrap();
        db.insert([&b"h"[..], &v, &DEVICE].concat(), &6u64.to_be_bytes())
            .unwrap();
        for b in &bundles {
            let k = [&b"b"[..], &v, &b.device, &b.seq.to_be_bytes()].concat();
            db.insert(k, b.blob.as_slice()).unwrap();
        }
        db.insert(
            [&b"s"[..], &v].concat(),
            postcard::to_stdvec(&snap).unwrap(),
        )
        .unwrap();
        db.flush().unwrap();
    }
    // What a kill during the upgrade leaves: files nothing refers to yet.
    let sealed = dir.join(SEALED_DIR);
    std::fs::create_dir_all(&sealed).unwrap();
    std::fs::write(sealed.join("0123456789abcdef0123456789abcdef"), b"half").unwrap();
    std::fs::write(sealed.join(".0123.abcdef.tmp"), b"partial").unwrap();
    for _ in 0..3 {
        let store = MailboxStore::open(&dir).unwrap();
        reads_back(&store, &v, &bundles, &snap);
        let info = store.mailbox(&v).unwrap().unwrap();
        assert_eq!(info.blobs, 4);
        assert_eq!(store.highest(&v, &DEVICE).unwrap(), 6);
    }
    // The leftovers are gone; what remains is what the records use.
    let names: Vec<String> = std::fs::read_dir(&sealed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with('.') || n.starts_with("0123"))
    );
    assert_eq!(
        names.len(),
        2,
        "the snapshot's file and the bundles' pack: {names:?}"
    );
}

fn info_bytes(i: &MailboxInfo) -> Vec<u8> {
    let mut v = i.verifier.to_vec();
    v.extend_from_slice(&i.expires_ms.to_be_bytes());
    v.extend_from_slice(&i.bytes.to_be_bytes());
    v.extend_from_slice(&i.blobs.to_be_bytes());
    v
}

/// A store at `dir` holding, for vault `v`, three acknowledged bundles of
/// `bundle` bytes and a snapshot of `snapshot` bytes, then closed.
fn store_three_bundles_and_a_snapshot(
    dir: &Path,
    v: &[u8; 16],
    rng: &mut ChaCha20Rng,
    bundle: usize,
    snapshot: usize,
) -> (Vec<BundleItem>, SnapshotItem) {
    let bundles: Vec<BundleItem> = (1..=3)
        .map(|seq| BundleItem {
            device: DEVICE,
            seq,
            blob: blob(rng, bundle),
        })
        .collect();
    let snap = SnapshotItem {
        covers: vec![],
        blob: blob(rng, snapshot),
    };
    let store = MailboxStore::open(dir).unwrap();
    store.put_mailbox(v, &mailbox()).unwrap();
    let mut info = mailbox();
    for b in &bundles {
        info.bytes += b.blob.len() as u64;
        info.blobs += 1;
        store.append(v, b, &info).unwrap();
    }
    assert!(store.put_snapshot(v, &snap, &mut info, |_| true).unwrap());
    (bundles, snap)
}

/// A kill between a blob's file and its record (or between a record's
/// removal and its file's) leaves a file nothing refers to: the next open
/// removes it, and keeps every acknowledged blob.
#[test]
fn files_a_crash_left_without_a_record_are_removed_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let v = vault(2);
    let (bundles, snap) = store_three_bundles_and_a_snapshot(&dir, &v, &mut rng, 5_000, 9_000);
    let sealed = dir.join(SEALED_DIR);
    let before = std::fs::read_dir(&sealed).unwrap().count();
    std::fs::write(
        sealed.join("ffffffffffffffffffffffffffffffff"),
        blob(&mut rng, 5_000),
    )
    .unwrap();
    std::fs::write(sealed.join(".ffff.zzzzzz.tmp"), b"torn").unwrap();
    let store = MailboxStore::open(&dir).unwrap();
    reads_back(&store, &v, &bundles, &snap);
    assert_eq!(std::fs::read_dir(&sealed).unwrap().count(), before);
}

/// A replaced snapshot and the bundles it covers leave the disk with their
/// records, and a deleted vault leaves nothing behind in the blob files.
#[test]
fn replaced_and_deleted_blobs_leave_the_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let store = MailboxStore::open(&dir).unwrap();
    let v = vault(3);
    store.put_mailbox(&v, &mailbox()).unwrap();
    let mut info = mailbox();
    for seq in 1..=10 {
        let b = BundleItem {
            device: DEVICE,
            seq,
            blob: blob(&mut rng, 3_000),
        };
        info.bytes += 3_000;
        info.blobs += 1;
        store.append(&v, &b, &info).unwrap();
    }
    let sealed = dir.join(SEALED_DIR);
    let count = || std::fs::read_dir(&sealed).unwrap().count();
    assert_eq!(count(), 1, "the bundles go to one pack");
    // A snapshot covering 8 of them: the pack stays for 9 and 10.
    let s = SnapshotItem {
        covers: vec![(DEVICE, 8)],
        blob: blob(&mut rng, 20_000),
    };
    assert!(store.put_snapshot(&v, &s, &mut info, |_| true).unwrap());
    assert_eq!(count(), 2);
    for seq in [9, 10] {
        assert!(store.bundle(&v, &DEVICE, seq).unwrap().is_some());
    }
    // Bundle 11 goes to a new pack, and a snapshot covering 10 drops the
    // first pack and the first snapshot.
    let b = BundleItem {
        device: DEVICE,
        seq: 11,
        blob: blob(&mut rng, 3_000),
    };
    info.bytes += 3_000;
    info.blobs += 1;
    store.append(&v, &b, &info).unwrap();
    assert_eq!(count(), 3);
    let s = SnapshotItem {
        covers: vec![(DEVICE, 10)],
        blob: blob(&mut rng, 20_000),
    };
    assert!(store.put_snapshot(&v, &s, &mut info, |_| true).unwrap());
    assert_eq!(count(), 2, "the last snapshot and bundle 11's pack");
    assert_eq!(store.bundle(&v, &DEVICE, 11).unwrap(), Some(b.blob));
    // The same snapshot again (a retry) keeps its file.
    let again = store.snapshot(&v).unwrap().unwrap();
    assert!(store.put_snapshot(&v, &again, &mut info, |_| true).unwrap());
    assert_eq!(store.snapshot(&v).unwrap(), Some(again));
    assert_eq!(count(), 2);
    let r = store.delete_vault(&v).unwrap();
    assert_eq!((r.blobs, r.bytes), (2, 23_000));
    assert_eq!(count(), 0);
}

/// The blob of bundle `seq` in the kill test (its bytes derive from it).
fn kill_blob(seq: u64) -> Vec<u8> {
    let mut rng = ChaCha20Rng::seed_from_u64(seq);
    blob(&mut rng, 1_000 + (seq as usize * 397) % 6_000)
}

const KILL_ENV: &str = "VIGIL_NODE_DISK_KILL_CHILD";

/// The child of the kill test: appends bundles and every fifth time a
/// snapshot covering all but the last two, printing each one acknowledged
/// (`Ok` returned) until it is killed.
#[test]
#[ignore = "the kill test's child process"]
fn kill_child() {
    let Ok(dir) = std::env::var(KILL_ENV) else {
        return;
    };
    let store = MailboxStore::open(Path::new(&dir)).unwrap();
    let v = vault(9);
    if store.mailbox(&v).unwrap().is_none() {
        store.put_mailbox(&v, &mailbox()).unwrap();
    }
    let mut seq = store.highest(&v, &DEVICE).unwrap();
    loop {
        seq += 1;
        let b = BundleItem {
            device: DEVICE,
            seq,
            blob: kill_blob(seq),
        };
        let mut info = store.mailbox(&v).unwrap().unwrap();
        info.bytes += b.blob.len() as u64;
        info.blobs += 1;
        store.append(&v, &b, &info).unwrap();
        println!("bundle {seq}");
        if seq.is_multiple_of(5) {
            let s = SnapshotItem {
                covers: vec![(DEVICE, seq - 2)],
                blob: kill_blob(1_000_000 + seq),
            };
            assert!(store.put_snapshot(&v, &s, &mut info, |_| true).unwrap());
            println!("snapshot {}", seq - 2);
        }
    }
}

/// kill -9 at arbitrary points of appends and snapshot replacements, five
/// times over one store: every acknowledged bundle the snapshot does not
/// cover reads back whole, the snapshot covers at least the last one
/// acknowledged, and the store keeps working.
#[test]
fn a_kill_during_appends_and_snapshots_loses_nothing_acknowledged() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let exe = std::env::current_exe().unwrap();
    for round in 0..5u64 {
        let mut child = std::process::Command::new(&exe)
            .args(["--exact", "kill_child", "--include-ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(KILL_ENV, &dir)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (mut acked, mut covered) = (0u64, 0u64);
        let mut lines = 0;
        for line in out.lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("bundle ") {
                acked = n.parse().unwrap();
            } else if let Some(n) = line.strip_prefix("snapshot ") {
                covered = n.parse().unwrap();
            } else {
                continue;
            }
            lines += 1;
            if lines == 7 + round * 5 {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let store = MailboxStore::open(&dir).unwrap();
        let v = vault(9);
        assert!(store.highest(&v, &DEVICE).unwrap() >= acked);
        let snap = store.snapshot(&v).unwrap();
        let snap_covers = snap.as_ref().map_or(0, |s| s.covers[0].1);
        assert!(snap_covers >= covered, "round {round}");
        if let Some(s) = &snap {
            assert_eq!(s.blob, kill_blob(1_000_000 + snap_covers + 2));
        }
        for seq in snap_covers + 1..=acked {
            assert_eq!(
                store.bundle(&v, &DEVICE, seq).unwrap(),
                Some(kill_blob(seq)),
                "round {round}, bundle {seq}"
            );
        }
        let got: Vec<u64> = store.bundles(&v).map(|b| b.unwrap().seq).collect();
        assert!(got.iter().all(|s| *s > snap_covers));
    }
}

/// Allocated bytes of the blob files alone.
fn sealed_bytes(dir: &Path) -> u64 {
    dir_bytes(&dir.join(SEALED_DIR)).1
}

/// Three residents' week: what the store keeps beside the blob files
/// (sled's records, its dead versions and unreclaimed segments) stays
/// under 40 KiB per resident, a third of a week's snapshot. A record per
/// bundle, rewritten with its leaf at every push, took about 110 KiB per
/// resident: more than the bundles' bytes beside a week's snapshot.
#[test]
fn a_few_residents_store_keeps_little_beside_their_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    drop(MailboxStore::open(&empty).unwrap());
    let dir = tmp.path().join("node");
    let mut rng = ChaCha20Rng::seed_from_u64(33);
    {
        let store = MailboxStore::open(&dir).unwrap();
        week(&store, 3, &mut rng);
    }
    let beside = dir_bytes(&dir)
        .1
        .saturating_sub(sealed_bytes(&dir))
        .saturating_sub(dir_bytes(&empty).1);
    assert!(
        beside <= 3 * 40 * 1024,
        "the store keeps {beside} bytes beside its blob files for 3 residents"
    );
}

/// A store of the first file layout (`sealed-files-1`: a sled record per
/// bundle pointing into its pack, packs of bare blobs), as the previous
/// version wrote it: every bundle, the snapshot and the counters read
/// back, across reopens, and new bundles append after them.
#[test]
fn a_store_of_the_first_file_layout_opens_with_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let sealed = dir.join(SEALED_DIR);
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let v = vault(4);
    let bundles: Vec<BundleItem> = (4..=7)
        .map(|seq| BundleItem {
            device: DEVICE,
            seq,
            blob: blob(&mut rng, 700 * seq as usize),
        })
        .collect();
    let snap = SnapshotItem {
        covers: vec![(DEVICE, 3)],
        blob: blob(&mut rng, 30_000),
    };
    {
        // With the 64 KiB segments that version gave new stores.
        let db = sled::Config::new()
            .path(&dir)
            .segment_size(64 * 1024)
            .open()
            .unwrap();
        std::fs::create_dir_all(&sealed).unwrap();
        let (pack, file) = ([0xaa; 16], [0xbb; 16]);
        let mut packed = Vec::new();
        // A covered bundle's bytes left at the pack's head (its record
        // went with the snapshot that covers it).
        packed.extend_from_slice(&blob(&mut rng, 900));
        for b in &bundles {
            let mut r = vec![2u8];
            r.extend_from_slice(&pack);
            r.extend_from_slice(&(packed.len() as u64).to_be_bytes());
            r.extend_from_slice(&(b.blob.len() as u64).to_be_bytes());
            db.insert([&b"b"[..], &v, &b.device, &b.seq.to_be_bytes()].concat(), r)
                .unwrap();
            packed.extend_from_slice(&b.blob);
        }
        std::fs::write(sealed.join(hex::encode(pack)), &packed).unwrap();
        std::fs::write(sealed.join(hex::encode(file)), &snap.blob).unwrap();
        let mut stored = vec![1u8];
        stored.extend_from_slice(&(snap.blob.len() as u64).to_be_bytes());
        stored.extend_from_slice(&file);
        #[derive(serde::Serialize)]
        struct SnapshotRef {
            covers: Vec<([u8; 16], u64)>,
            stored: Vec<u8>,
        }
        let record = postcard::to_stdvec(&SnapshotRef {
            covers: snap.covers.clone(),
            stored,
        })
        .unwrap();
        db.insert([&b"s"[..], &v].concat(), record).unwrap();
        let mut info = mailbox();
        info.bytes = (snap.blob.len() + bundles.iter().map(|b| b.blob.len()).sum::<usize>()) as u64;
        info.blobs = 5;
        db.insert([&b"v"[..], &v].concat(), info_bytes(&info))
            .unwrap();
        db.insert([&b"h"[..], &v, &DEVICE].concat(), &7u64.to_be_bytes())
            .unwrap();
        db.insert(&b"Flayout"[..], &b"sealed-files-1"[..]).unwrap();
        db.flush().unwrap();
    }
    for round in 0..3u64 {
        let store = MailboxStore::open(&dir).unwrap();
        let mut all = bundles.clone();
        for seq in 8..8 + round {
            all.push(BundleItem {
                device: DEVICE,
                seq,
                blob: kill_blob(seq),
            });
        }
        reads_back(&store, &v, &all, &snap);
        assert_eq!(store.highest(&v, &DEVICE).unwrap(), 7 + round);
        let mut info = store.mailbox(&v).unwrap().unwrap();
        assert_eq!(info.blobs, 5 + round);
        let b = BundleItem {
            device: DEVICE,
            seq: 8 + round,
            blob: kill_blob(8 + round),
        };
        info.bytes += b.blob.len() as u64;
        info.blobs += 1;
        store.append(&v, &b, &info).unwrap();
    }
}

/// A kill after a bundle's bytes reached its pack but before the record
/// that acknowledges them leaves a tail nothing refers to: the next open
/// and append keep every acknowledged bundle and read the new one back.
#[test]
fn a_torn_pack_tail_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let v = vault(5);
    let mut bundles: Vec<BundleItem> = (1..=3)
        .map(|seq| BundleItem {
            device: DEVICE,
            seq,
            blob: blob(&mut rng, 1_500),
        })
        .collect();
    let mut info = mailbox();
    {
        let store = MailboxStore::open(&dir).unwrap();
        store.put_mailbox(&v, &mailbox()).unwrap();
        for b in &bundles {
            info.bytes += b.blob.len() as u64;
            info.blobs += 1;
            store.append(&v, b, &info).unwrap();
        }
    }
    let sealed = dir.join(SEALED_DIR);
    let pack = std::fs::read_dir(&sealed)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&pack)
        .unwrap();
    std::io::Write::write_all(&mut f, &blob(&mut rng, 777)).unwrap();
    drop(f);
    let store = MailboxStore::open(&dir).unwrap();
    let got: Vec<BundleItem> = store.bundles(&v).map(Result::unwrap).collect();
    assert_eq!(got, bundles);
    let b = BundleItem {
        device: DEVICE,
        seq: 4,
        blob: blob(&mut rng, 1_200),
    };
    info.bytes += b.blob.len() as u64;
    info.blobs += 1;
    store.append(&v, &b, &info).unwrap();
    bundles.push(b);
    drop(store);
    let store = MailboxStore::open(&dir).unwrap();
    let got: Vec<BundleItem> = store.bundles(&v).map(Result::unwrap).collect();
    assert_eq!(got, bundles);
}

/// A pack cut short (damage, not a kill: the records say its bytes were
/// durable) is a typed error on read, not a panic or wrong bytes.
#[test]
fn a_pack_cut_short_is_a_corrupt_store_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let v = vault(6);
    let store = MailboxStore::open(&dir).unwrap();
    store.put_mailbox(&v, &mailbox()).unwrap();
    let mut info = mailbox();
    for seq in 1..=3 {
        let b = BundleItem {
            device: DEVICE,
            seq,
            blob: blob(&mut rng, 2_000),
        };
        info.bytes += 2_000;
        info.blobs += 1;
        store.append(&v, &b, &info).unwrap();
    }
    let pack = std::fs::read_dir(dir.join(SEALED_DIR))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let f = std::fs::OpenOptions::new().write(true).open(&pack).unwrap();
    f.set_len(3_000).unwrap();
    drop(f);
    let all: Result<Vec<BundleItem>, _> = store.bundles(&v).collect();
    assert!(
        matches!(all, Err(vigil_node::StoreError::Corrupt(_))),
        "{all:?}"
    );
    assert!(matches!(
        store.bundle(&v, &DEVICE, 3),
        Err(vigil_node::StoreError::Corrupt(_))
    ));
    // Nor does the next push paper over the hole: it is refused.
    let b = BundleItem {
        device: DEVICE,
        seq: 4,
        blob: blob(&mut rng, 2_000),
    };
    info.bytes += 2_000;
    info.blobs += 1;
    let r = store.append(&v, &b, &info);
    assert!(
        matches!(r, Err(vigil_node::StoreError::Corrupt(_))),
        "{r:?}"
    );
}

/// What the previous version (the first file layout) does at open with a
/// store it finds, step by step as its store.rs did: with `Flayout` other
/// than `sealed-files-1` it "upgrades" from blobs inline in sled, whose
/// first step removes every file in `sealed/`; with `sealed-files-1` it
/// decodes every `b` record (tag 2: pack reference) before it removes the
/// files they do not name. Returns whether it would remove blob files
/// (`false`: it stops with a corrupt-record error first).
fn previous_version_would_remove_files(dir: &Path) -> bool {
    let db = sled::Config::new()
        .path(dir)
        .segment_size(16 * 1024)
        .open()
        .unwrap();
    if db.get(b"Flayout").unwrap().as_deref() != Some(&b"sealed-files-1"[..]) {
        return true;
    }
    db.scan_prefix(b"b").all(|r| {
        let (_, v) = r.unwrap();
        matches!(v.split_first(), Some((2, rest)) if rest.len() == 32)
            || matches!(v.split_first(), Some((1, rest)) if rest.len() == 24)
    })
}

/// A node downgraded to the previous version after this one converted or
/// created its store: the previous version refuses the store (a corrupt
/// record) instead of removing the packs it does not know as blob files.
#[test]
fn the_previous_version_refuses_a_converted_store_instead_of_removing_its_packs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let v = vault(7);
    {
        let store = MailboxStore::open(&dir).unwrap();
        store.put_mailbox(&v, &mailbox()).unwrap();
        let mut info = mailbox();
        let b = BundleItem {
            device: DEVICE,
            seq: 1,
            blob: blob(&mut rng, 1_000),
        };
        info.bytes += 1_000;
        info.blobs += 1;
        store.append(&v, &b, &info).unwrap();
    }
    assert!(!previous_version_would_remove_files(&dir));
    // And this version still opens it, whole.
    let store = MailboxStore::open(&dir).unwrap();
    assert_eq!(store.bundles(&v).count(), 1);
}

/// A store marked with a layout this version does not know (a later
/// version's) is a typed error at open, and nothing in it is touched.
#[test]
fn a_store_of_an_unknown_layout_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    drop(MailboxStore::open(&dir).unwrap());
    let sealed = dir.join(SEALED_DIR);
    std::fs::write(sealed.join("00000000000000000000000000000000"), b"x").unwrap();
    {
        let db = sled::Config::new()
            .path(&dir)
            .segment_size(16 * 1024)
            .open()
            .unwrap();
        db.insert(&b"Flayout2"[..], &b"sealed-files-9"[..]).unwrap();
        db.flush().unwrap();
    }
    let r = MailboxStore::open(&dir);
    assert!(
        matches!(r, Err(vigil_node::StoreError::Corrupt(_))),
        "{r:?}"
    );
    assert_eq!(std::fs::read_dir(&sealed).unwrap().count(), 1);
}

/// A node killed (or losing power) while it starts: sled 0.34.7 writes its
/// snapshot only while it opens, as `snap.<lsn>.generating` renamed to
/// `snap.<lsn>` once fsynced, yet reads whichever `snap.` name sorts last.
/// The empty or torn file such a kill leaves must not make the store
/// refuse to open: staff restart the node and every acknowledged blob is
/// there.
#[test]
fn a_sled_snapshot_torn_by_a_kill_during_start_is_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let v = vault(3);
    let (bundles, snap) = store_three_bundles_and_a_snapshot(&dir, &v, &mut rng, 2_000, 4_000);
    // Opened once more, so that sled has committed a snapshot of its own.
    drop(MailboxStore::open(&dir).unwrap());
    let newest = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().ok()?;
            u64::from_str_radix(name.strip_prefix("snap.")?, 16).ok()
        })
        .max()
        .expect("sled committed a snapshot at open");
    let committed = std::fs::read(dir.join(format!("snap.{newest:016X}"))).unwrap();
    for torn in [Vec::new(), committed[..committed.len() / 2].to_vec()] {
        let generating = dir.join(format!("snap.{:016X}.generating", newest + 4096));
        std::fs::write(&generating, &torn).unwrap();
        let store = MailboxStore::open(&dir).unwrap_or_else(|e| {
            panic!("a torn {} B sled snapshot left by a kill: {e}", torn.len())
        });
        reads_back(&store, &v, &bundles, &snap);
        drop(store);
        assert!(!generating.exists(), "the torn file is gone");
    }
}
