//! A damaged store is rebuilt from the node (issue 14, finding 6): each kind
//! of store file is corrupted in turn, open fails naming recover, and
//! `Vault::recover` brings back every reading the node acknowledged, keeps
//! the damaged files aside, and leaves a vault that syncs and shreds.

use std::path::{Path, PathBuf};

use vigil_device::{FileKeyStore, MARKER_FILE, Period, RecoverError, TOMBSTONE_FILE, Vault};
use vigil_log::{Metric, ReadingId, Unit};
use vigil_testkit::{
    DAY, LocalNode, MIN, connect, files, node, now_ms, period_start, register, rng,
};

/// A vault on disk that recorded readings (some annotated at length, so
/// that sled keeps large values in `blobs/`) and synced them to `n`.
fn synced_vault(tmp: &Path, n: &LocalNode) -> (PathBuf, FileKeyStore, Period, Vec<ReadingId>) {
    let dir = tmp.join("vault");
    let keys = FileKeyStore::new(tmp.join("vault.key"));
    let period = Period::days(period_start(), 7);
    let mut vault = Vault::create(&dir, period, Box::new(keys.clone()), &mut rng(14)).unwrap();
    vault.set_compact_every(8);
    let mut ids = vec![];
    let t0 = period.start_ms + DAY;
    for i in 0..40 {
        let id = vault
            .record(
                Metric::HeartRate,
                60.0 + f64::from(i % 30),
                Unit::BeatsPerMinute,
                t0 + i64::from(i) * MIN,
            )
            .unwrap();
        ids.push(id);
    }
    // Large changes after the last compaction stay as chunks, in sled's blobs.
    for (i, id) in ids.iter().enumerate().skip(35) {
        vault
            .annotate(*id, &format!("{i} {}", "n".repeat(1500)))
            .unwrap();
    }
    // Staff registered the resident; the ticket opens the mailbox.
    let mut conn = register(&mut vault, n);
    vault.sync(&mut conn).unwrap();
    drop(vault);
    // sled writes a snapshot file of its page table when it closes.
    let _ = Vault::open(&dir, &keys).unwrap();
    (dir, keys, period, ids)
}

/// Flips one byte in the middle of `file`.
fn flip(file: &Path) {
    let mut b = std::fs::read(file).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x5a;
    std::fs::write(file, b).unwrap();
}

/// Flips one byte of the first message in sled's `db` file, the one sled
/// reads at open. (sled 0.34.7 skips a damaged message past the last valid
/// one as a torn write, and most of `db` is dead space in LowSpace mode:
/// a byte flipped there goes unnoticed, by sled and so by the vault.)
fn flip_first_message(db: &Path) {
    let mut b = std::fs::read(db).unwrap();
    b[32] ^= 0x01;
    std::fs::write(db, b).unwrap();
}

/// The store file of `kind` in `dir`.
fn store_file(dir: &Path, kind: &str) -> PathBuf {
    let all = files(dir);
    let found = all.iter().find(|f| {
        let name = f.file_name().unwrap().to_str().unwrap();
        match kind {
            "blob" => f.parent().unwrap().ends_with("blobs"),
            "snap" => name.starts_with("snap.") && !name.ends_with(".generating"),
            other => name == other,
        }
    });
    found
        .unwrap_or_else(|| panic!("no {kind} file among {all:?}"))
        .clone()
}

fn corrupt_then_recover(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let n = node(&tmp.path().join("node"));
    let (dir, keys, period, ids) = synced_vault(tmp.path(), &n);
    // The resident's own file beside the store stays whatever Vigil does.
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    let file = store_file(&dir, kind);
    let rel = file.strip_prefix(&dir).unwrap().to_owned();
    if kind == "db" {
        flip_first_message(&file);
    } else if kind == "blob" {
        // Every blob: the reading journal's entries, removed by a fold,
        // leave dead leaf pages among them until sled reclaims them, and
        // a flipped dead page rightly goes unnoticed.
        for f in files(&dir)
            .iter()
            .filter(|f| f.parent().unwrap().ends_with("blobs"))
        {
            flip(f);
        }
    } else {
        flip(&file);
    }

    let err = Vault::open(&dir, &keys).expect_err("a damaged store does not open");
    assert!(err.to_string().contains("recover"), "{kind}: {err}");

    let (mut vault, report) =
        Vault::recover(&dir, &keys, &mut connect(n.enrolment_code()), None).unwrap();
    assert_eq!(vault.period(), period);
    for id in &ids {
        assert!(
            vault.log().reading(*id).is_some(),
            "{kind}: reading {id:?} recovered"
        );
    }
    assert_eq!(report.readings, ids.len());
    assert!(report.grants_lost);
    // The damaged files are kept aside, in Vigil's namespace in the vault directory.
    assert_eq!(report.damaged_dir.parent().unwrap(), dir);
    let aside = report.damaged_dir.file_name().unwrap().to_str().unwrap();
    assert!(aside.starts_with("vigil-damaged-"), "{aside}");
    assert!(
        report.damaged_dir.join(&rel).exists(),
        "{kind}: {rel:?} kept aside"
    );
    std::fs::write(report.damaged_dir.join("mine.txt"), b"also mine").unwrap();

    // The rebuilt vault records, reopens, syncs and shreds.
    let extra = vault
        .record(
            Metric::HeartRate,
            71.0,
            Unit::BeatsPerMinute,
            now_ms() - MIN,
        )
        .unwrap();
    drop(vault);
    let mut vault = Vault::open(&dir, &keys).unwrap();
    assert!(vault.log().reading(extra).is_some());
    let mut conn = connect(n.enrolment_code());
    vault.sync(&mut conn).unwrap();
    vault.shred_with_node(&mut conn, &keys, now_ms()).unwrap();
    let mut left: Vec<_> = files(&dir)
        .into_iter()
        .map(|f| f.strip_prefix(&dir).unwrap().to_owned())
        .collect();
    left.sort();
    let mut want = vec![
        PathBuf::from(TOMBSTONE_FILE),
        PathBuf::from("notes.txt"),
        PathBuf::from(aside).join("mine.txt"),
    ];
    want.sort();
    assert_eq!(
        left, want,
        "{kind}: the shred removes the kept-aside files, never the resident's"
    );
    assert!(!keys.path().exists(), "the key is destroyed");
}

#[test]
fn a_damaged_conf_is_rebuilt_from_the_node() {
    corrupt_then_recover("conf");
}

#[test]
fn a_damaged_sled_snapshot_is_rebuilt_from_the_node() {
    corrupt_then_recover("snap");
}

#[test]
fn a_damaged_sled_blob_is_rebuilt_from_the_node() {
    corrupt_then_recover("blob");
}

#[test]
fn a_damaged_log_snapshot_is_rebuilt_from_the_node() {
    corrupt_then_recover("vigil-snapshot.blob");
}

#[test]
fn a_damaged_db_is_rebuilt_from_the_node() {
    corrupt_then_recover("db");
}

#[test]
fn the_period_comes_from_the_marker_or_the_caller() {
    let tmp = tempfile::tempdir().unwrap();
    let n = node(&tmp.path().join("node"));
    let (dir, keys, period, ids) = synced_vault(tmp.path(), &n);
    // A healthy vault is not recovered: that would drop what only it holds.
    let err = Vault::recover(&dir, &keys, &mut connect(n.enrolment_code()), None).unwrap_err();
    assert!(matches!(err, RecoverError::NotDamaged(_)), "{err}");
    flip(&store_file(&dir, "vigil-snapshot.blob"));
    // The marker names the vault and its period, nothing else.
    let marker = std::fs::read_to_string(dir.join(MARKER_FILE)).unwrap();
    assert!(marker.contains(&period.start_ms.to_string()), "{marker}");
    // A marker from before the period was added names only the vault.
    let first_line = marker.lines().next().unwrap();
    std::fs::write(dir.join(MARKER_FILE), format!("{first_line}\n")).unwrap();
    let err = Vault::recover(&dir, &keys, &mut connect(n.enrolment_code()), None).unwrap_err();
    assert!(matches!(err, RecoverError::PeriodUnknown), "{err}");
    std::fs::write(dir.join(MARKER_FILE), b"garbage").unwrap();
    let err = Vault::recover(&dir, &keys, &mut connect(n.enrolment_code()), None).unwrap_err();
    assert!(matches!(err, RecoverError::PeriodUnknown), "{err}");
    assert!(
        dir.join("conf").exists(),
        "nothing moved until the period is known"
    );
    let (vault, _) =
        Vault::recover(&dir, &keys, &mut connect(n.enrolment_code()), Some(period)).unwrap();
    assert_eq!(vault.period(), period);
    assert_eq!(vault.log().len(), ids.len());
}

#[test]
fn a_store_whose_sled_files_are_gone_is_rebuilt_too() {
    // What a recovery cut short after moving sled's files leaves: the
    // marker without them.
    let tmp = tempfile::tempdir().unwrap();
    let n = node(&tmp.path().join("node"));
    let (dir, keys, _, ids) = synced_vault(tmp.path(), &n);
    std::fs::remove_file(dir.join("conf")).unwrap();
    std::fs::remove_file(dir.join("db")).unwrap();
    let err = Vault::open(&dir, &keys).expect_err("no store");
    assert!(err.to_string().contains("recover"), "{err}");
    let (vault, report) =
        Vault::recover(&dir, &keys, &mut connect(n.enrolment_code()), None).unwrap();
    assert_eq!(vault.log().len(), ids.len());
    assert!(report.damaged_dir.join("vigil-snapshot.blob").exists());
}
