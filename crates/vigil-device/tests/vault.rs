//! The vault at rest, under an attacker's eye and under bad input.

use std::path::Path;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_crypto::{KeySchedule, X25519Identity};
use vigil_device::{
    FileKeyStore, KeyStore, MemoryKeyStore, OpenError, Period, SledStorage, Storage, Vault,
    WriteError,
};
use vigil_log::{Day, LogError, Metric, Reading, ReadingId, Severity, Symptom, Unit};

use vigil_testkit::{contains, disk_vault, files, node_id};

const START: i64 = 1_790_035_200_000; // a UTC midnight
const MIN: i64 = 60_000;

#[test]
fn nothing_readable_at_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, keyfile) = (tmp.path().join("vault"), tmp.path().join("keys/root.key"));
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let period = Period::days(START, 7);
    let mut vault = Vault::create(
        &dir,
        period,
        Box::new(FileKeyStore::new(&keyfile)),
        &mut rng,
    )
    .unwrap();
    vault.set_compact_every(400);
    let mut canaries = vec![];
    let mut sample: Vec<ReadingId> = vec![];
    // A compressed week: temperature every 10 minutes, heart rate every 30.
    for i in 0..(7 * 144) {
        let t = START + i * 10 * MIN;
        let temp = 36.0 + (i % 17) as f64 * 0.1 + 0.01;
        let id = vault
            .record(Metric::BodyTemperature, temp, Unit::Celsius, t)
            .unwrap();
        if i % 3 == 0 {
            vault
                .record(
                    Metric::HeartRate,
                    61.0 + (i % 50) as f64,
                    Unit::BeatsPerMinute,
                    t,
                )
                .unwrap();
        }
        if i % 97 == 0 {
            let canary = format!("CANARY-{i:05}-after-a-hot-shower");
            vault.annotate(id, &canary).unwrap();
            canaries.push(canary);
            sample.push(id);
        }
    }
    vault
        .check_in(Day::of(START), Symptom::SoreThroat, Severity::Mild)
        .unwrap();
    let readings: Vec<Reading> = sample
        .iter()
        .map(|id| vault.log().reading(*id).unwrap())
        .collect();
    let view = vault.log().view();
    let root = FileKeyStore::new(&keyfile).load().unwrap().unwrap();
    let ks = KeySchedule::new(root);
    drop(vault);

    let files = files(&dir);
    assert!(!files.is_empty());
    let mut scanned = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        scanned += bytes.len();
        for c in &canaries {
            assert!(!contains(&bytes, c.as_bytes()), "canary in {}", f.display());
            assert!(
                !contains(&bytes, b"CANARY"),
                "canary prefix in {}",
                f.display()
            );
        }
        for r in &readings {
            assert!(
                !contains(&bytes, &r.encode()),
                "encoded reading in {}",
                f.display()
            );
            assert!(
                !contains(&bytes, &r.value.to_be_bytes()),
                "value in {}",
                f.display()
            );
            assert!(
                !contains(&bytes, &r.value.to_le_bytes()),
                "value in {}",
                f.display()
            );
        }
        for key in [
            *ks.root().expose_secret(),
            *ks.log_key().expose_secret(),
            *ks.store_key().expose_secret(),
            // The key for some node: this vault never synced, so no
            // mailbox key may be on disk, for any node.
            *ks.mailbox_key(&node_id(X25519Identity::from_bytes([1; 32]).public_key()))
                .expose_secret(),
        ] {
            assert!(!contains(&bytes, &key), "key bytes in {}", f.display());
        }
        assert!(
            !contains(&bytes, b"sore_throat"),
            "check-in in {}",
            f.display()
        );
        assert!(!contains(&bytes, b"body_temperature"));
    }
    assert!(scanned > 10_000, "scanned only {scanned} bytes");

    // And it all comes back with the key.
    let vault = Vault::open_at(&dir, &FileKeyStore::new(&keyfile), START).unwrap();
    assert_eq!(vault.log().view(), view);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keyfile).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn reopen_after_compaction_keeps_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let (mut vault, keys) = disk_vault(&dir, Period::days(START, 7), 2);
    vault.set_compact_every(50);
    let mut ids = vec![];
    for i in 0..230 {
        ids.push(
            vault
                .record(
                    Metric::SpO2,
                    95.0 + (i % 5) as f64,
                    Unit::Percent,
                    START + i * MIN,
                )
                .unwrap(),
        );
    }
    vault
        .retract(ids[3], "finger moved", START + 500 * MIN)
        .unwrap();
    assert!(vault.pending_chunks() < 50);
    let view = vault.log().view();
    drop(vault);
    let vault = Vault::open_at(&dir, &keys, START).unwrap();
    assert_eq!(vault.log().view(), view);
    assert_eq!(vault.log().len(), 230);
    assert!(vault.log().retraction(ids[3]).is_some());
    // New readings continue the sequence without clobbering stored ones.
    let mut vault = vault;
    vault
        .record(Metric::SpO2, 99.0, Unit::Percent, START + 999 * MIN)
        .unwrap();
    drop(vault);
    assert_eq!(Vault::open_at(&dir, &keys, START).unwrap().log().len(), 231);
}

fn make_vault(dir: &Path, keys: &MemoryKeyStore, n: i64) -> Vault {
    // Seeded by the path so that two vaults never share a root.
    let seed = dir
        .to_string_lossy()
        .bytes()
        .fold(3u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut v = Vault::create(
        dir,
        Period::days(START, 7),
        Box::new(keys.clone()),
        &mut rng,
    )
    .unwrap();
    // Folded two readings at a time, so the store holds several chunks
    // for the tamper checks below (not only journal entries).
    v.set_fold_every(2);
    for i in 0..n {
        v.record(
            Metric::HeartRate,
            70.0,
            Unit::BeatsPerMinute,
            START + i * MIN,
        )
        .unwrap();
    }
    v
}

#[test]
fn bad_input_errors_are_clear_and_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let keys = MemoryKeyStore::new();
    let mut vault = make_vault(&dir, &keys, 20);

    // Refused values leave nothing behind.
    for (m, v, u) in [
        (Metric::BodyTemperature, f64::NAN, Unit::Celsius),
        (Metric::BodyTemperature, 101.0, Unit::Fahrenheit),
        (Metric::HeartRate, 900.0, Unit::BeatsPerMinute),
    ] {
        assert!(matches!(
            vault.record(m, v, u, START),
            Err(WriteError::Invalid(_))
        ));
    }
    let unknown = ReadingId {
        device: vault.device_id(),
        seq: 999,
    };
    assert!(matches!(
        vault.annotate(unknown, "x"),
        Err(WriteError::Invalid(LogError::UnknownReading(_)))
    ));
    assert_eq!(vault.log().len(), 20);
    drop(vault);

    // Missing key.
    let err = Vault::open_at(&dir, &MemoryKeyStore::new(), START).unwrap_err();
    assert!(matches!(err, OpenError::MissingKey), "{err}");
    // Wrong key: another vault's.
    let other_keys = MemoryKeyStore::new();
    drop(make_vault(&tmp.path().join("other"), &other_keys, 0));
    let err = Vault::open_at(&dir, &other_keys, START).unwrap_err();
    assert!(matches!(err, OpenError::WrongKey { .. }), "{err}");
    assert!(err.to_string().contains("another vault"));
    // Not a vault; already a vault.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(matches!(
        Vault::open_at(&empty, &keys, START),
        Err(OpenError::NotAVault(_))
    ));
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    assert!(matches!(
        Vault::create(
            &dir,
            Period::days(START, 7),
            Box::new(MemoryKeyStore::new()),
            &mut rng
        ),
        Err(OpenError::AlreadyExists(_))
    ));
    assert!(matches!(
        Vault::create(
            &tmp.path().join("p"),
            Period {
                start_ms: 5,
                end_ms: 5
            },
            Box::new(MemoryKeyStore::new()),
            &mut rng
        ),
        Err(OpenError::InvalidPeriod { .. })
    ));
    // After all that, the vault opens with everything.
    assert_eq!(Vault::open_at(&dir, &keys, START).unwrap().log().len(), 20);

    // A newer format version is refused, and nothing is touched.
    {
        let mut s = SledStorage::open(&dir).unwrap();
        let mut b = vigil_device::Batch::default();
        b.put(
            b"m/format".to_vec(),
            (vigil_device::STORE_FORMAT + 1).to_be_bytes().to_vec(),
        );
        s.apply(b).unwrap();
    }
    let err = Vault::open_at(&dir, &keys, START).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::NewerFormat { found, supported }
                if found == vigil_device::STORE_FORMAT + 1 && supported == vigil_device::STORE_FORMAT
        ),
        "{err}"
    );
    // An older format (its records laid out otherwise) is refused by name,
    // not misread. (Format 3, the one before the reading journal, differs
    // only by having no journal and still opens: tests/journal.rs.)
    {
        let mut s = SledStorage::open(&dir).unwrap();
        let mut b = vigil_device::Batch::default();
        b.put(
            b"m/format".to_vec(),
            (vigil_device::STORE_FORMAT - 2).to_be_bytes().to_vec(),
        );
        s.apply(b).unwrap();
    }
    let err = Vault::open_at(&dir, &keys, START).unwrap_err();
    assert!(matches!(err, OpenError::OlderFormat { .. }), "{err}");
    {
        let mut s = SledStorage::open(&dir).unwrap();
        let mut b = vigil_device::Batch::default();
        b.put(
            b"m/format".to_vec(),
            vigil_device::STORE_FORMAT.to_be_bytes().to_vec(),
        );
        s.apply(b).unwrap();
    }
    assert_eq!(Vault::open_at(&dir, &keys, START).unwrap().log().len(), 20);

    // A tampered change is detected, not applied, not a panic.
    let original = {
        let s = SledStorage::open(&dir).unwrap();
        s.scan_prefix(b"c/").unwrap()
    };
    {
        let mut s = SledStorage::open(&dir).unwrap();
        let (k, mut v) = original[5].clone();
        v[40] ^= 1;
        let mut b = vigil_device::Batch::default();
        b.put(k, v);
        s.apply(b).unwrap();
    }
    let err = Vault::open_at(&dir, &keys, START).unwrap_err();
    assert!(matches!(err, OpenError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("does not decrypt"), "{err}");
    // Restoring the blob (e.g. from a backup) restores the vault: nothing was overwritten.
    {
        let mut s = SledStorage::open(&dir).unwrap();
        let mut b = vigil_device::Batch::default();
        b.put(original[5].0.clone(), original[5].1.clone());
        s.apply(b).unwrap();
    }
    assert_eq!(Vault::open_at(&dir, &keys, START).unwrap().log().len(), 20);

    // A truncated or missing snapshot file is Corrupt, and the rest is untouched.
    let snap = dir.join("vigil-snapshot.blob");
    let saved = std::fs::read(&snap).unwrap();
    std::fs::write(&snap, &saved[..saved.len() / 2]).unwrap();
    assert!(matches!(
        Vault::open_at(&dir, &keys, START),
        Err(OpenError::Corrupt(_))
    ));
    std::fs::remove_file(&snap).unwrap();
    let err = Vault::open_at(&dir, &keys, START).unwrap_err();
    assert!(err.to_string().contains("snapshot missing"), "{err}");
    std::fs::write(&snap, &saved).unwrap();
    assert_eq!(Vault::open_at(&dir, &keys, START).unwrap().log().len(), 20);
}

#[test]
fn truncated_or_garbage_store_files_give_errors_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, damage) in ["truncate", "garbage", "zero-conf"].iter().enumerate() {
        let keys = MemoryKeyStore::new();
        let dir = tmp.path().join(format!("v{i}"));
        drop(make_vault(&dir, &keys, 30));
        let backup = tmp.path().join(format!("backup{i}"));
        copy_dir(&dir, &backup);
        for f in files(&dir) {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            let len = std::fs::metadata(&f).unwrap().len();
            match *damage {
                "truncate" if name == "db" => std::fs::OpenOptions::new()
                    .write(true)
                    .open(&f)
                    .unwrap()
                    .set_len(len / 3)
                    .unwrap(),
                "garbage" if name == "db" => {
                    std::fs::write(&f, vec![0xa5u8; len as usize]).unwrap()
                }
                "zero-conf" if name == "conf" => std::fs::write(&f, b"").unwrap(),
                _ => {}
            }
        }
        // Whatever sled makes of it: a typed error or a vault that is intact — never a panic.
        match Vault::open_at(&dir, &keys, START) {
            Err(e) => assert!(!e.to_string().is_empty()),
            Ok(v) => assert!(v.log().len() <= 30),
        }
        // The backup copy still opens in full.
        assert_eq!(
            Vault::open_at(&backup, &keys, START).unwrap().log().len(),
            30,
            "{damage}"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// postcard's encoding of an unsigned integer (LEB128), as the old plaintext
/// records wrote counts.
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = vec![];
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// postcard's encoding of a signed integer (zigzag, then LEB128).
fn zigzag(n: i64) -> Vec<u8> {
    varint(((n << 1) ^ (n >> 63)) as u64)
}

/// Every file under `dir`, read now (`None` for a file that is gone).
fn read_all(paths: &[&Path]) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = vec![];
    for p in paths {
        let fs = if p.is_dir() {
            files(p)
        } else {
            vec![p.to_path_buf()]
        };
        for f in fs {
            if let Ok(b) = std::fs::read(&f) {
                out.push((f, b));
            }
        }
    }
    out
}

/// A week enrolled with a node, a fever (≥ 39 °C) whose alerts are queued,
/// sent and acknowledged, then a shred with the node's receipt: neither the
/// live store (while the alerts wait and after they left) nor what the shred
/// leaves says when the fever began, how high it was, how many alerts there
/// were, or which metric.
#[test]
fn no_fever_fact_at_rest_live_or_after_shred() {
    use vigil_testkit::{DAY, HOUR, date, enrol, node, period_start, sled_vault};
    let tmp = tempfile::tempdir().unwrap();
    let n = node(&tmp.path().join("node"));
    let code = n.enrolment_code().clone();
    let start = period_start();
    let (mut vault, keys) = sled_vault(tmp.path(), "phone", Period::days(start, 7), 11);
    let home = tmp.path().join("phone");
    let keyfile = tmp.path().join("phone.key");
    let label = "Ana Costa, flat 12B";
    let mut conn = enrol(&mut vault, &n, label, start);
    let grant = vault.grants().unwrap()[0].grant_id;

    // Day 1, 10:00-15:00: a fever peaking at 39.3 °C; normal otherwise.
    let fever_from = start + 10 * HOUR;
    let fever_to = start + 15 * HOUR;
    let mut t = start;
    while t < start + 7 * DAY {
        let temp = if (fever_from..fever_to).contains(&t) {
            38.6 + ((t - fever_from) / (10 * MIN) % 8) as f64 * 0.1
        } else {
            36.4 + ((t / (10 * MIN)) % 7) as f64 * 0.1
        };
        vault
            .record(Metric::BodyTemperature, temp, Unit::Celsius, t)
            .unwrap();
        if (t / (10 * MIN)) % 3 == 0 {
            vault
                .record(Metric::HeartRate, 70.0, Unit::BeatsPerMinute, t)
                .unwrap();
        }
        t += 10 * MIN;
    }
    assert!(
        !vault.pending_alerts().unwrap().is_empty(),
        "the fever queued alerts"
    );
    // The store while alerts wait in the outbox.
    let waiting = read_all(&[&home]);

    let now = vigil_testkit::now_ms();
    vault.sync(&mut conn).unwrap();
    let report = vault
        .send_alerts(&mut conn, &code.node_public, now)
        .unwrap();
    assert!(report.delivered >= 1, "{report:?}");
    assert!(vault.pending_alerts().unwrap().is_empty());
    // Each alert's level is the peak so far: the start's below 39 °C, the end's not.
    let (mut onset, mut levels) = (None, vec![]);
    for d in vault.disclosures().unwrap() {
        if let vigil_device::Disclosure::AlertSent {
            onset_ms, level, ..
        } = d
        {
            onset = Some(onset_ms);
            levels.push(level);
        }
    }
    let onset = onset.expect("an alert was sent");
    assert_eq!(levels.iter().max(), Some(&3), "peak ≥ 39 °C");
    let sent = read_all(&[&home]);

    let t = vault.shred_with_node(&mut conn, &keys, now).unwrap();
    let receipt = t.receipt.clone().expect("the node signed a receipt");
    let body = vigil_proto::receipt::verify_receipt(&code.receipt_key, &receipt).unwrap();
    assert!(body.alerts + body.kept_unseen_alerts >= 1, "{body:?}");
    let left = read_all(&[&home, &keyfile]);
    assert!(!left.is_empty(), "the tombstone remains");

    // What must not be found, with why.
    let (h, m) = (onset.rem_euclid(DAY) / HOUR, onset.rem_euclid(HOUR) / MIN);
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("onset be64".into(), onset.to_be_bytes().to_vec()),
        ("onset le64".into(), onset.to_le_bytes().to_vec()),
        ("onset decimal".into(), onset.to_string().into_bytes()),
        (
            "onset seconds".into(),
            (onset / 1000).to_string().into_bytes(),
        ),
        (
            "onset RFC 3339".into(),
            format!("{}T{h:02}:{m:02}", date(onset)).into_bytes(),
        ),
        ("outbox key by grant".into(), [&b"a/"[..], &grant].concat()),
        ("marker key by grant".into(), [&b"A/"[..], &grant].concat()),
        ("the receipt".into(), receipt.clone()),
        (
            "the receipt's body".into(),
            receipt[..receipt.len() - 64].to_vec(),
        ),
        ("alert count then node".into(), {
            let mut v = varint(body.alerts);
            v.extend_from_slice(&varint(body.kept_unseen_alerts));
            v.extend_from_slice(&body.node);
            v
        }),
        ("label".into(), label.as_bytes().to_vec()),
    ];
    for level in &levels {
        let mut v = zigzag(onset);
        v.push(*level);
        needles.push((format!("onset then level {level}"), v));
    }
    for name in [
        "body_temperature",
        "BodyTemperature",
        "heart_rate",
        "HeartRate",
    ] {
        needles.push((format!("metric {name}"), name.as_bytes().to_vec()));
    }
    let mut found = vec![];
    for (when, files) in [("waiting", &waiting), ("sent", &sent), ("shredded", &left)] {
        for (f, bytes) in files {
            for (what, needle) in &needles {
                if contains(bytes, needle) {
                    found.push(format!("{what} in {} ({when})", f.display()));
                }
            }
        }
    }
    assert!(found.is_empty(), "found at rest:\n{}", found.join("\n"));
    assert!(waiting.iter().map(|(_, b)| b.len()).sum::<usize>() > 10_000);
    n.shutdown();
}

/// Everything a vault writes is the resident's alone: the directory 0700,
/// the files Vigil writes 0600, also for a directory the resident made
/// with the usual 0755, and the tombstone left after a shred.
#[cfg(unix)]
#[test]
fn a_vault_is_owner_only_on_disk() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("fresh");
    let made = tmp.path().join("made");
    std::fs::create_dir(&made).unwrap();
    std::fs::set_permissions(&made, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (i, dir) in [&fresh, &made].into_iter().enumerate() {
        let (mut v, keys) = disk_vault(dir, Period::days(START, 7), 40 + i as u64);
        v.record(Metric::BodyTemperature, 36.8, Unit::Celsius, START + MIN)
            .unwrap();
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
        for f in ["vigil-snapshot.blob", "vigil-vault"] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        drop(v);
        // A file the resident put beside the store keeps its mode.
        let notes = dir.join("notes.txt");
        std::fs::write(&notes, b"mine").unwrap();
        std::fs::set_permissions(&notes, std::fs::Permissions::from_mode(0o644)).unwrap();
        // sled's own files too, once the vault has been opened.
        let v2 = Vault::open_at(dir, &keys, START + MIN).unwrap();
        let mut seen = 0;
        assert_eq!(mode(&notes), 0o644, "not Vigil's to change");
        std::fs::remove_file(&notes).unwrap();
        for e in walk(dir) {
            let m = mode(&e);
            assert_eq!(m & 0o077, 0, "{} is {m:o}", e.display());
            seen += 1;
        }
        assert!(seen >= 4, "sled's conf and db among them");
        let v = v2;
        v.shred_now(&keys, START + 2 * MIN).unwrap();
        assert_eq!(mode(&dir.join("vigil-tombstone")), 0o600);
        assert_eq!(mode(dir), 0o700);
    }
}

/// Every path below `dir`.
#[cfg(unix)]
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}
