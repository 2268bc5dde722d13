//! Crypto-shredding on the device: what is left opens nothing, a shred
//! killed at any point completes on the next open, and the node forgets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use vigil_crypto::{KeySchedule, Kind, NodeId, X25519Identity};
use vigil_device::{
    FileKeyStore, KeyStore, MemStorage, MemoryKeyStore, OpenError, Period, TOMBSTONE_FILE,
    Tombstone, Vault,
};
use vigil_log::{FeverRule, Metric, Unit};
use vigil_node::{MailboxStore, Relay, RelayConfig};
use vigil_proto::{Exchange, ExchangeError, FrameHandler};

use vigil_testkit::{
    FOREIGN_FILES, TestChild, assert_foreign_files_intact, contains, files, node_id,
    put_foreign_files, seed_from_env,
};

const START: i64 = 1_790_035_200_000;
const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

#[test]
fn after_the_period_nothing_left_opens_the_copied_ciphertext() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keyfile = tmp.path().join("keys/root.key");
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut v = Vault::create(
        &dir,
        Period::days(START, 7),
        Box::new(FileKeyStore::new(&keyfile)),
        &mut rng,
    )
    .unwrap();
    v.set_compact_every(100);
    for i in 0..350 {
        v.record(
            Metric::BodyTemperature,
            36.5,
            Unit::Celsius,
            START + i * MIN,
        )
        .unwrap();
    }
    drop(v);
    // The attacker's copy: every file of the vault and of the key store.
    let copy: Vec<(PathBuf, Vec<u8>)> = files(&dir)
        .into_iter()
        .chain(files(&tmp.path().join("keys")))
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    let root = FileKeyStore::new(&keyfile).load().unwrap().unwrap();
    let keys = KeySchedule::new(root);
    let secrets = [
        *keys.root().expose_secret(),
        *keys.log_key().expose_secret(),
        *keys.store_key().expose_secret(),
        *keys.mailbox_key(&the_node()).expose_secret(),
    ];

    // The period ends: opening shreds.
    let err = Vault::open_at(&dir, &FileKeyStore::new(&keyfile), START + 7 * DAY).unwrap_err();
    let OpenError::Shredded(t) = err else {
        panic!("{err}")
    };
    assert_eq!(t.vault_id, keys.vault_id());
    // Only the tombstone is left; the key file is gone.
    let left = files(tmp.path());
    assert_eq!(left, vec![dir.join(TOMBSTONE_FILE)], "{left:?}");
    assert!(!keyfile.exists());
    let tomb = std::fs::read(&left[0]).unwrap();
    assert_eq!(Tombstone::decode(&tomb).unwrap(), t);
    for s in &secrets {
        assert!(!contains(&tomb, s));
    }
    // With what is left (the tombstone, an empty key store), nothing opens:
    // the copied snapshot and chunks need the log key, which only the root
    // gave, and the root is nowhere.
    assert!(FileKeyStore::new(&keyfile).load().unwrap().is_none());
    let copied_key_file = copy
        .iter()
        .find(|(p, _)| *p == keyfile)
        .map(|(_, b)| b.clone())
        .unwrap();
    assert!(
        contains(&copied_key_file, &secrets[0]),
        "the copy did hold the root"
    );
    let mut sealed = 0;
    for (p, b) in &copy {
        if p.file_name().and_then(|n| n.to_str()) == Some("vigil-snapshot.blob") {
            sealed += 1;
            // Every 32-byte window of everything left, tried as a log key.
            for w in tomb.windows(32) {
                let k = vigil_crypto::LogKey::from_bytes(w.try_into().unwrap());
                let ctx = vigil_crypto::Context::new("x");
                assert!(vigil_crypto::open(&k, Kind::LogSnapshot, &ctx, &b[8..]).is_err());
            }
        }
    }
    assert_eq!(sealed, 1);
    // A stale app cannot recreate a vault over the tombstone, and opening again is idempotent.
    assert!(matches!(
        Vault::create(
            &dir,
            Period::days(START, 7),
            Box::new(FileKeyStore::new(&keyfile)),
            &mut rng
        ),
        Err(OpenError::AlreadyExists(_))
    ));
    assert!(matches!(
        Vault::open_at(&dir, &FileKeyStore::new(&keyfile), START),
        Err(OpenError::Shredded(_))
    ));
}

#[test]
fn early_shred_by_the_resident() {
    let keys = MemoryKeyStore::new();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let storage = MemStorage::new();
    let mut v = Vault::create_with(
        Box::new(storage),
        Period::days(START, 7),
        Box::new(keys.clone()),
        &mut rng,
    )
    .unwrap();
    v.record(Metric::HeartRate, 70.0, Unit::BeatsPerMinute, START)
        .unwrap();
    assert!(!v.is_due(START + DAY));
    let t = v.shred_now(&keys, START + DAY).unwrap();
    assert_eq!(t.shredded_at_ms, START + DAY);
    assert!(keys.load().unwrap().is_none());
}

/// The child: creates a vault, reports "ready", then shreds it.
#[test]
fn shred_child() {
    let Ok(dir) = std::env::var("VIGIL_SHRED_CHILD") else {
        return;
    };
    let dir = Path::new(&dir);
    let keys = FileKeyStore::new(dir.join("root.key"));
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut v = Vault::create(
        &dir.join("vault"),
        Period::days(START, 7),
        Box::new(keys.clone()),
        &mut rng,
    )
    .unwrap();
    v.set_compact_every(64);
    for i in 0..300 {
        v.record(Metric::SpO2, 97.0, Unit::Percent, START + i * MIN)
            .unwrap();
    }
    println!("ready");
    v.shred_now(&keys, START + 7 * DAY).unwrap();
    println!("done");
    std::thread::sleep(Duration::from_secs(10));
}

#[test]
fn a_shred_killed_at_any_point_completes_on_the_next_open() {
    let seed = seed_from_env("VIGIL_SHRED_SEED", "shred crash");
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut outcomes = [0usize; 2];
    for round in 0..20 {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = TestChild::spawn("shred_child", "VIGIL_SHRED_CHILD", tmp.path());
        assert!(
            child.wait_for_line(|l| l.contains("ready")).is_some(),
            "child died"
        );
        // Kill somewhere in the shred (it takes a few milliseconds).
        std::thread::sleep(Duration::from_micros(rng.next_u64() % 6000));
        child.kill();
        let keys = FileKeyStore::new(tmp.path().join("root.key"));
        let dir = tmp.path().join("vault");
        let tomb_before = dir.join(TOMBSTONE_FILE).exists();
        outcomes[usize::from(tomb_before)] += 1;
        // Any open after the period: the shred completes, never a readable vault.
        match Vault::open_at(&dir, &keys, START + 7 * DAY) {
            Err(OpenError::Shredded(_)) => {}
            other => panic!("round {round} (seed {seed}): {other:?}"),
        }
        assert!(
            keys.load().unwrap().is_none(),
            "round {round}: key survived"
        );
        assert_eq!(files(&dir), vec![dir.join(TOMBSTONE_FILE)], "round {round}");
        // Even opening "during" the period finds only the tombstone.
        assert!(matches!(
            Vault::open_at(&dir, &keys, START),
            Err(OpenError::Shredded(_))
        ));
    }
    eprintln!("rounds killed before / after the tombstone was written: {outcomes:?}");
}

/// Staff's ticket for a resident of the week starting at START.
fn ticket(relay: &Relay) -> vigil_device::Ticket {
    relay
        .issue_ticket(
            "a resident",
            START + 7 * DAY,
            START,
            &mut ChaCha20Rng::seed_from_u64(99),
        )
        .unwrap()
        .ticket
}

/// The vault's first device redeems a staff ticket: the node keeps its
/// mailbox from then on.
fn register(relay: &Relay, v: &mut Vault) {
    v.redeem_ticket(&mut Direct(relay.session(), START), &ticket(relay))
        .unwrap();
}

/// The identity of the node every test here reaches.
fn the_node() -> NodeId {
    node_id(X25519Identity::from_bytes([6; 32]).public_key())
}

struct Direct(vigil_node::RelaySession, i64);
impl Exchange for Direct {
    fn exchange(&mut self, r: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        Ok(self.0.handle(r, self.1))
    }

    fn node(&self) -> NodeId {
        the_node()
    }
}

#[test]
fn online_device_gets_a_receipt_offline_one_shreds_alone_and_the_node_forgets() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = vigil_crypto::SigningIdentity::from_bytes([5; 32]);
    let verify = signer.verify_key();
    let node_pk = *the_node().x25519();
    let config = vigil_node::NodeConfig {
        grant_key_seed: Some([6; 32]),
        ..Default::default()
    };
    let relay = vigil_node::Node::open(tmp.path(), &config)
        .unwrap()
        .with_receipts(&signer)
        .relay()
        .clone();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let phone_keys = MemoryKeyStore::new();
    let mut phone = Vault::create_with(
        Box::new(MemStorage::new()),
        Period::days(START, 7),
        Box::new(phone_keys.clone()),
        &mut rng,
    )
    .unwrap();
    phone
        .enrol(
            &mut Direct(relay.session(), START),
            &node_pk,
            &ticket(&relay),
            FeverRule::default(),
            START,
        )
        .unwrap();
    let id = X25519Identity::generate(&mut rng);
    phone
        .offer_pairing(&mut Direct(relay.session(), START), &id.public_key(), START)
        .unwrap();
    let band_keys = MemoryKeyStore::new();
    let mut rng2 = ChaCha20Rng::seed_from_u64(70);
    let mut band = Vault::fetch_join(&mut Direct(relay.session(), START), &id)
        .unwrap()
        .confirm(
            Box::new(MemStorage::new()),
            Box::new(band_keys.clone()),
            &mut Direct(relay.session(), START),
            &mut rng2,
        )
        .unwrap();
    for i in 0..4 {
        band.record(
            Metric::BodyTemperature,
            38.5,
            Unit::Celsius,
            START + DAY + i * 5 * MIN,
        )
        .unwrap();
    }
    band.sync(&mut Direct(relay.session(), START + DAY))
        .unwrap();
    phone
        .sync(&mut Direct(relay.session(), START + DAY))
        .unwrap();
    phone
        .send_alerts(
            &mut Direct(relay.session(), START + DAY),
            &node_pk,
            START + DAY,
        )
        .unwrap();
    assert_eq!(relay.inbox().unwrap().len(), 1);
    let vault = *phone.vault_id().as_bytes();
    let mut both = vec![phone.device_id().0, band.device_id().0];
    both.sort_unstable();

    // The period ends. The phone is online: the node deletes at once and signs.
    let end = START + 7 * DAY;
    let t = phone
        .shred_with_node(&mut Direct(relay.session(), end), &phone_keys, end)
        .unwrap();
    let receipt = t.receipt.clone().expect("a receipt");
    let body = vigil_proto::receipt::verify_receipt(&verify, &receipt).unwrap();
    assert_eq!(body.vault, vault);
    // At least the relay snapshot: the snapshot policy (docs/spec.md §10)
    // lets the node drop the bundles it covers.
    assert!(
        body.blobs >= 1 && body.grants == 1 && body.alerts == 0 && body.kept_unseen_alerts == 1,
        "{body:?}"
    );
    assert_eq!(
        body.devices, both,
        "the receipt names the phone and the band, which had pushed bundles"
    );
    let mut forged = receipt.clone();
    forged[3] ^= 1;
    assert!(vigil_proto::receipt::verify_receipt(&verify, &forged).is_err());
    assert!(relay.store().mailbox(&vault).unwrap().is_none());
    // Staff never saw the fever: it stays, marked, until the sweep at the
    // period's end (plus grace) below.
    let kept = relay.inbox().unwrap();
    assert!(
        kept.len() == 1 && kept[0].monitoring_ended.is_some(),
        "{kept:?}"
    );
    assert!(relay.grants().unwrap().is_empty());

    // The band was offline: it shreds on its own clock, alone.
    assert!(band.is_due(end));
    let bt = band.shred_now(&band_keys, end + 3_600_000).unwrap();
    assert!(bt.receipt.is_none());
    let r = relay.sweep(end + 1, 0).unwrap();
    assert_eq!(r.mailboxes, 0, "already deleted by the shred request");
    assert!(relay.store().vaults().unwrap().is_empty());
    assert_eq!(r.alerts, 1, "the unseen alert goes at the period's end");
    assert!(relay.inbox().unwrap().is_empty());
}

#[test]
fn a_stale_device_after_the_period_cannot_resurrect_the_mailbox() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::new(
        MailboxStore::open(tmp.path()).unwrap(),
        RelayConfig::default(),
    );
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let keys = MemoryKeyStore::new();
    let mut v = Vault::create_with(
        Box::new(MemStorage::new()),
        Period::days(START, 7),
        Box::new(keys),
        &mut rng,
    )
    .unwrap();
    v.record(Metric::SpO2, 97.0, Unit::Percent, START).unwrap();
    register(&relay, &mut v);
    v.sync(&mut Direct(relay.session(), START)).unwrap();
    let end = START + 7 * DAY;
    assert_eq!(relay.sweep(end, 0).unwrap().mailboxes, 1);
    // A device that missed its own shred (say, a restored backup) reconnects.
    v.record(Metric::SpO2, 96.0, Unit::Percent, START + MIN)
        .unwrap();
    let err = v.sync(&mut Direct(relay.session(), end + DAY)).unwrap_err();
    assert!(err.to_string().contains("period is over"), "{err}");
    assert!(relay.store().vaults().unwrap().is_empty());
    assert_eq!(relay.store().bundles(v.vault_id().as_bytes()).count(), 0);
}

// ---- Vigil deletes only what Vigil made (issue 14, finding 1) ----

/// The resident's own files, which no Vigil operation may touch.

#[test]
fn a_directory_holding_foreign_files_is_refused_at_create_and_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("documents");
    put_foreign_files(&dir);
    let keyfile = tmp.path().join("root.key");
    let created = Vault::create(
        &dir,
        Period::days(START, 7),
        Box::new(FileKeyStore::new(&keyfile)),
        &mut ChaCha20Rng::seed_from_u64(7),
    );
    assert!(
        created.is_err(),
        "a vault was created over the resident's files"
    );
    assert_foreign_files_intact(&dir);
    let left = files(&dir);
    assert_eq!(left.len(), FOREIGN_FILES.len(), "nothing added: {left:?}");
    assert!(!keyfile.exists(), "no key stored for a vault not created");
}

/// A vault in `dir` (created empty), with a reading, then the resident's
/// files dropped beside it.
fn vault_with_foreign_files(dir: &Path, keyfile: &Path, seed: u64) -> Vault {
    let mut v = Vault::create(
        dir,
        Period::days(START, 7),
        Box::new(FileKeyStore::new(keyfile)),
        &mut ChaCha20Rng::seed_from_u64(seed),
    )
    .unwrap();
    v.record(Metric::BodyTemperature, 36.6, Unit::Celsius, START + MIN)
        .unwrap();
    put_foreign_files(dir);
    v
}

#[test]
fn no_shred_path_deletes_foreign_files() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = |n: &str| FileKeyStore::new(tmp.path().join(format!("{n}.key")));
    let dir = |n: &str| tmp.path().join(n);

    // The resident shreds early, offline.
    let v = vault_with_foreign_files(&dir("now"), keys("now").path(), 1);
    v.shred_now(&keys("now"), START + DAY).unwrap();
    // The resident shreds early and the node cannot be reached.
    struct Silent;
    impl Exchange for Silent {
        fn exchange(&mut self, _: &[u8]) -> Result<Vec<u8>, ExchangeError> {
            Err(ExchangeError::NotConnected)
        }

        fn node(&self) -> NodeId {
            the_node()
        }
    }
    let v = vault_with_foreign_files(&dir("node"), keys("node").path(), 2);
    v.shred_with_node(&mut Silent, &keys("node"), START + DAY)
        .unwrap();
    // The period ends: opening shreds.
    drop(vault_with_foreign_files(&dir("end"), keys("end").path(), 3));
    assert!(matches!(
        Vault::open_at(&dir("end"), &keys("end"), START + 7 * DAY),
        Err(OpenError::Shredded(_))
    ));
    // A shred interrupted right after its tombstone, resumed by the next open.
    let v = vault_with_foreign_files(&dir("resumed"), keys("resumed").path(), 4);
    let t = Tombstone {
        vault_id: v.vault_id(),
        period: v.period(),
        shredded_at_ms: START + DAY,
        receipt: None,
        receipt_sha256: None,
    };
    drop(v);
    std::fs::write(dir("resumed").join(TOMBSTONE_FILE), t.encode()).unwrap();
    assert!(matches!(
        Vault::open_at(&dir("resumed"), &keys("resumed"), START + DAY),
        Err(OpenError::Shredded(_))
    ));

    for n in ["now", "node", "end", "resumed"] {
        assert_foreign_files_intact(&dir(n));
        let mut left: Vec<PathBuf> = files(&dir(n));
        left.sort();
        let mut want: Vec<PathBuf> = FOREIGN_FILES.iter().map(|(f, _)| dir(n).join(f)).collect();
        want.push(dir(n).join(TOMBSTONE_FILE));
        want.sort();
        assert_eq!(
            left, want,
            "{n}: the vault's own files gone, the resident's kept"
        );
        assert!(
            !keys(n).path().exists(),
            "{n}: the vault's own key destroyed"
        );
    }
}

#[test]
fn opening_a_shredded_vault_with_another_vaults_key_leaves_that_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir1, key1) = (tmp.path().join("v1"), tmp.path().join("v1.key"));
    let (dir2, key2) = (tmp.path().join("v2"), tmp.path().join("v2.key"));
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let v1 = Vault::create(
        &dir1,
        Period::days(START, 7),
        Box::new(FileKeyStore::new(&key1)),
        &mut rng,
    )
    .unwrap();
    let mut v2 = Vault::create(
        &dir2,
        Period::days(START, 7),
        Box::new(FileKeyStore::new(&key2)),
        &mut rng,
    )
    .unwrap();
    v2.record(Metric::BodyTemperature, 36.6, Unit::Celsius, START + MIN)
        .unwrap();
    let id2 = v2.vault_id();
    drop(v2);
    v1.shred_now(&FileKeyStore::new(&key1), START + DAY)
        .unwrap();
    let before = std::fs::read(&key2).unwrap();

    // The resident points vault 1's directory at vault 2's key file.
    let err = Vault::open_at(&dir1, &FileKeyStore::new(&key2), START + DAY).unwrap_err();
    assert!(err.to_string().contains("shredded"), "{err}");
    assert_eq!(
        std::fs::read(&key2).unwrap(),
        before,
        "vault 2's key intact"
    );
    let v2 = Vault::open_at(&dir2, &FileKeyStore::new(&key2), START + DAY).unwrap();
    assert_eq!(v2.vault_id(), id2);
    assert_eq!(v2.log().len(), 1);
}

// ---- Shred reaches every device and the node (issue 14, finding 4) ----

/// A phone and a tablet paired on `relay`, in memory; the phone then
/// shreds early, telling the node. The vault's id and the tablet.
fn paired_then_phone_shreds(relay: &Relay, seed: u64) -> ([u8; 16], Vault) {
    let (phone, phone_keys, tablet) = paired_on(
        relay,
        seed,
        Box::new(MemStorage::new()),
        Box::new(MemoryKeyStore::new()),
    );
    let vault = *phone.vault_id().as_bytes();
    phone
        .shred_with_node(
            &mut Direct(relay.session(), START + DAY),
            &phone_keys,
            START + DAY,
        )
        .unwrap();
    (vault, tablet)
}

fn signing_relay() -> Relay {
    Relay::new(MailboxStore::in_memory(), RelayConfig::default())
        .with_receipts(vigil_crypto::SigningIdentity::from_bytes([9; 32]))
}

/// A phone on `relay` with one reading, and a tablet paired to it whose
/// store is `storage` and root goes to `tablet_keys`.
fn paired_on(
    relay: &Relay,
    seed: u64,
    storage: Box<dyn vigil_device::Storage>,
    tablet_keys: Box<dyn KeyStore>,
) -> (Vault, MemoryKeyStore, Vault) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let phone_keys = MemoryKeyStore::new();
    let mut phone = Vault::create_with(
        Box::new(MemStorage::new()),
        Period::days(START, 7),
        Box::new(phone_keys.clone()),
        &mut rng,
    )
    .unwrap();
    phone
        .record(Metric::SpO2, 97.0, Unit::Percent, START)
        .unwrap();
    register(relay, &mut phone);
    let id = X25519Identity::generate(&mut rng);
    phone
        .offer_pairing(&mut Direct(relay.session(), START), &id.public_key(), START)
        .unwrap();
    let tablet = Vault::fetch_join(&mut Direct(relay.session(), START), &id)
        .unwrap()
        .confirm(
            storage,
            tablet_keys,
            &mut Direct(relay.session(), START),
            &mut rng,
        )
        .unwrap();
    (phone, phone_keys, tablet)
}

fn refused_shredded(err: &vigil_device::SyncFailure) -> bool {
    matches!(
        err,
        vigil_device::SyncFailure::Protocol(vigil_proto::SyncError::Refused(
            vigil_proto::ProtoError::VaultShredded { .. }
        ))
    )
}

#[test]
fn a_device_offline_at_an_early_shred_shreds_itself_on_its_next_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = signing_relay();
    let (storage, tablet_keys) = vigil_testkit::sled_home(tmp.path(), "tablet");
    let (phone, phone_keys, mut tablet) =
        paired_on(&relay, 21, Box::new(storage), Box::new(tablet_keys.clone()));
    let vault = *phone.vault_id().as_bytes();
    let at = START + DAY;
    phone
        .shred_with_node(&mut Direct(relay.session(), at), &phone_keys, at)
        .unwrap();
    assert!(relay.store().mailbox(&vault).unwrap().is_none());

    // The tablet was offline; it records, then syncs a day later.
    tablet
        .record(Metric::SpO2, 96.0, Unit::Percent, START + 2 * DAY)
        .unwrap();
    let err = tablet
        .sync(&mut Direct(relay.session(), START + 2 * DAY))
        .unwrap_err();
    let vigil_device::SyncFailure::ShreddedElsewhere(t) = err else {
        panic!("{err:?}");
    };
    assert_eq!(t.shredded_at_ms, at);
    assert!(err_text_names_another_device(&t));
    tablet.finish_shred(&tablet_keys).unwrap();
    let left = files(tmp.path());
    assert_eq!(
        left,
        vec![tmp.path().join("tablet").join("vault").join(TOMBSTONE_FILE)],
        "only the tombstone is left"
    );
    assert!(matches!(
        Vault::open_at(
            &tmp.path().join("tablet").join("vault"),
            &tablet_keys,
            START + 3 * DAY
        ),
        Err(OpenError::Shredded(_))
    ));
    // The mailbox was never recreated, and nothing was pushed.
    assert!(relay.store().mailbox(&vault).unwrap().is_none());
    assert_eq!(relay.store().bundles(&vault).count(), 0);

    // The marker lasts until the period's end; the sweeper then deletes it.
    let end = START + 7 * DAY;
    assert_eq!(relay.sweep(end - 1, 0).unwrap().shred_markers, 0);
    assert_eq!(relay.sweep(end, 0).unwrap().shred_markers, 1);
    assert!(relay.store().shred_markers().unwrap().is_empty());
}

fn err_text_names_another_device(t: &Tombstone) -> bool {
    vigil_device::SyncFailure::ShreddedElsewhere(t.clone())
        .to_string()
        .contains("shredded on another device")
}

/// A node that answers `Register` with a shred refusal carrying `notice`.
struct Liar(vigil_node::RelaySession, Vec<u8>);
impl Exchange for Liar {
    fn exchange(&mut self, r: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        if let Ok(vigil_proto::Request::Register { .. }) = vigil_proto::decode_request(r) {
            return Ok(vigil_proto::encode_response(&vigil_proto::Response::Error(
                vigil_proto::ProtoError::VaultShredded {
                    notice: self.1.clone(),
                },
            )));
        }
        Ok(self.0.handle(r, START + 2 * DAY))
    }

    fn node(&self) -> NodeId {
        the_node()
    }
}

#[test]
fn a_lying_node_cannot_make_a_device_shred_with_a_forged_or_replayed_notice() {
    let relay = signing_relay();
    // Another vault's genuine notice, for the replay.
    let (other_vault, _) = paired_then_phone_shreds(&relay, 31);
    let replayed = relay
        .store()
        .shred_marker(&other_vault)
        .unwrap()
        .unwrap()
        .notice;
    assert!(!replayed.is_empty());

    let tablet_keys = MemoryKeyStore::new();
    let (_phone, _, mut tablet) = paired_on(
        &relay,
        32,
        Box::new(MemStorage::new()),
        Box::new(tablet_keys.clone()),
    );
    let mut forged = replayed.clone();
    forged[40] ^= 1;
    for notice in [replayed, forged, vec![], vec![0; 400]] {
        let err = tablet
            .sync(&mut Liar(relay.session(), notice.clone()))
            .unwrap_err();
        assert!(refused_shredded(&err), "{err:?}");
        assert!(tablet_keys.load().unwrap().is_some(), "the key stays");
    }
    // Everything is still there and syncs with an honest node.
    assert_eq!(tablet.log().len(), 1);
    tablet
        .sync(&mut Direct(relay.session(), START + 2 * DAY))
        .unwrap();
}

#[test]
fn a_stranger_cannot_learn_or_lift_the_shred_marker() {
    let relay = signing_relay();
    let (vault, _tablet) = paired_then_phone_shreds(&relay, 22);
    let mut s = relay.session();
    let ask = |s: &mut vigil_node::RelaySession, r: vigil_proto::Request| {
        vigil_proto::decode_response(&s.handle(&vigil_proto::encode_request(&r), START + DAY))
            .unwrap()
    };
    ask(
        &mut s,
        vigil_proto::Request::Hello {
            version: vigil_proto::PROTOCOL_VERSION,
        },
    );
    for r in [
        vigil_proto::Request::Register {
            vault,
            verifier: [1; 32],
            expires_ms: START + 7 * DAY,
        },
        vigil_proto::Request::Auth {
            vault,
            key: [1; 32],
        },
    ] {
        assert_eq!(
            ask(&mut s, r),
            vigil_proto::Response::Error(vigil_proto::ProtoError::Unauthorized)
        );
    }
    assert!(relay.store().mailbox(&vault).unwrap().is_none());
}

/// The record of delivered alerts and staff's acknowledgements (issue 18)
/// is health data: sealed on disk, and gone with the rest at the shred. A
/// thief holding the disk before the shred finds no episode in the clear;
/// after it, nothing but the tombstone.
#[test]
fn delivered_alerts_and_staff_acknowledgements_are_sealed_and_shredded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let keyfile = tmp.path().join("keys/root.key");
    let config = vigil_node::NodeConfig {
        grant_key_seed: Some([6; 32]),
        ..Default::default()
    };
    let relay = vigil_node::Node::open(&tmp.path().join("node"), &config)
        .unwrap()
        .relay()
        .clone();
    let node_pk = *the_node().x25519();
    let mut v = Vault::create(
        &dir,
        Period::days(START, 7),
        Box::new(FileKeyStore::new(&keyfile)),
        &mut ChaCha20Rng::seed_from_u64(31),
    )
    .unwrap();
    v.enrol(
        &mut Direct(relay.session(), START),
        &node_pk,
        &ticket(&relay),
        FeverRule::default(),
        START,
    )
    .unwrap();
    for i in 0..4 {
        v.record(
            Metric::BodyTemperature,
            38.5,
            Unit::Celsius,
            START + DAY + i * 5 * MIN,
        )
        .unwrap();
    }
    let t = START + DAY + HOUR_MS;
    assert_eq!(
        v.send_alerts(&mut Direct(relay.session(), t), &node_pk, t)
            .unwrap()
            .delivered,
        1
    );
    let inbox = relay.inbox().unwrap();
    let e = &inbox[0];
    assert!(
        relay
            .ack_alert(&e.grant_id, &e.episode, e.kind, t + MIN)
            .unwrap()
    );
    v.refresh_alert_status(&mut Direct(relay.session(), t + 2 * MIN), &node_pk)
        .unwrap();
    let d = v.delivered_alerts().unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].staff_acked_ms, Some(t + MIN));
    drop(v);
    // On disk: the record exists (sealed), and no episode id is in the clear.
    assert!(vigil_testkit::files_containing(&dir, &e.episode).is_empty());
    let v = Vault::open_at(&dir, &FileKeyStore::new(&keyfile), t + 3 * MIN).unwrap();
    assert_eq!(v.delivered_alerts().unwrap(), d, "kept across opens");
    v.shred_now(&FileKeyStore::new(&keyfile), t + 4 * MIN)
        .unwrap();
    let left = files(&dir);
    assert_eq!(left, vec![dir.join(TOMBSTONE_FILE)], "{left:?}");
    let tomb = std::fs::read(&left[0]).unwrap();
    assert!(!contains(&tomb, &e.episode));
    assert!(!keyfile.exists());
}

const HOUR_MS: i64 = 60 * MIN;
