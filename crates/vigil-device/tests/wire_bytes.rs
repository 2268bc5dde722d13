//! What a device sends and what a node keeps (issue 19; docs/spec.md §10,
//! §11): bundles are compressed, a backlog larger than the document goes
//! as the document, the node's store stays near one snapshot — and none of
//! it lets a relay or a bad payload in.

use std::io::Write;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_crypto::{Context, KeySchedule, Kind, NodeId, X25519Identity};
use vigil_device::{
    KeyStore, MemStorage, MemoryKeyStore, Period, SledStorage, SnapshotPolicy, Storage, Vault,
};
use vigil_log::{Day, Severity, Symptom};
use vigil_node::{MailboxStore, Relay, RelayConfig};
use vigil_proto::{BundleItem, Exchange, ExchangeError, FrameHandler, Response};

const START: i64 = 1_790_035_200_000;
const MIN: i64 = 60_000;

/// The relay in process; `sent` counts every byte the device sends, and
/// `snapshot_sent` those of relay snapshot uploads among them.
struct Direct {
    session: vigil_node::RelaySession,
    now: i64,
    sent: usize,
    snapshot_sent: usize,
}

impl Exchange for Direct {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        self.sent += request.len();
        if let Ok(vigil_proto::Request::PushSnapshot(_)) = vigil_proto::decode_request(request) {
            self.snapshot_sent += request.len();
        }
        Ok(self.session.handle(request, self.now))
    }

    fn node(&self) -> NodeId {
        vigil_testkit::node_id(X25519Identity::from_bytes([0x4e; 32]).public_key())
    }
}

fn conn(relay: &Relay) -> Direct {
    Direct {
        session: relay.session(),
        now: START,
        sent: 0,
        snapshot_sent: 0,
    }
}

/// A relay that edits what it serves.
struct Mitm<F: FnMut(&mut Response)> {
    inner: Direct,
    edit: F,
}

impl<F: FnMut(&mut Response)> Exchange for Mitm<F> {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        let raw = self.inner.exchange(request)?;
        let mut resp = vigil_proto::decode_response(&raw).unwrap();
        (self.edit)(&mut resp);
        Ok(vigil_proto::encode_response(&resp))
    }

    fn node(&self) -> NodeId {
        self.inner.node()
    }
}

fn relay(dir: &std::path::Path) -> Relay {
    Relay::new(MailboxStore::open(dir).unwrap(), RelayConfig::default())
}

/// A resident's first device, enrolled at the node, and its key store.
fn first_device(relay: &Relay, seed: u64) -> (Vault, MemoryKeyStore) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keys = MemoryKeyStore::new();
    let mut v = Vault::create_with(
        Box::new(MemStorage::new()),
        Period::days(START, 7),
        Box::new(keys.clone()),
        &mut rng,
    )
    .unwrap();
    let t = relay
        .issue_ticket("a resident", v.period().end_ms, START, &mut rng)
        .unwrap();
    v.redeem_ticket(&mut conn(relay), &t.ticket).unwrap();
    (v, keys)
}

/// A second device of `a`'s vault.
fn pair(relay: &Relay, a: &mut Vault, seed: u64) -> Vault {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let id = X25519Identity::generate(&mut rng);
    a.offer_pairing(&mut conn(relay), &id.public_key(), START)
        .unwrap();
    Vault::fetch_join(&mut conn(relay), &id)
        .unwrap()
        .confirm(
            Box::new(MemStorage::new()),
            Box::new(MemoryKeyStore::new()),
            &mut conn(relay),
            &mut rng,
        )
        .unwrap()
}

/// A band's readings for minutes `from..to` (temperature and heart rate
/// every minute, SpO2 and respiration every 5, steps every 15).
fn band(v: &mut Vault, from: i64, to: i64) {
    for m in from..to {
        for (metric, value) in vigil_testkit::wristband_readings(m, 5, 15) {
            v.record(metric, value, metric.unit(), START + m * MIN)
                .unwrap();
        }
    }
}

/// The size of the vault's whole log sealed as one snapshot (uncompressed
/// Automerge `save()` in an envelope): the reference of issue 19.
fn sealed_snapshot(v: &mut Vault) -> usize {
    vigil_crypto::sealed_len(v.export_automerge().len())
}

/// Seals `plain` as `device`'s bundle `seq` of the vault whose root `keys`
/// holds: what only a device of the vault (a broken or hostile one) can make.
fn seal_bundle(keys: &MemoryKeyStore, device: [u8; 16], seq: u64, plain: &[u8]) -> Vec<u8> {
    let ks = KeySchedule::new(keys.load().unwrap().unwrap());
    let ctx = Context::new("vigil/v1/bundle")
        .bytes(ks.vault_id().as_bytes())
        .bytes(&device)
        .u64(seq);
    vigil_crypto::seal(
        &ks.log_key(),
        Kind::LogBundle,
        &ctx,
        plain,
        &mut ChaCha20Rng::seed_from_u64(seq),
    )
    .unwrap()
}

/// Opens `device`'s bundle `seq` as its author's vault would.
fn open_bundle(keys: &MemoryKeyStore, device: [u8; 16], seq: u64, blob: &[u8]) -> Vec<u8> {
    let ks = KeySchedule::new(keys.load().unwrap().unwrap());
    let ctx = Context::new("vigil/v1/bundle")
        .bytes(ks.vault_id().as_bytes())
        .bytes(&device)
        .u64(seq);
    vigil_crypto::open(&ks.log_key(), Kind::LogBundle, &ctx, blob)
        .unwrap()
        .to_vec()
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn bundles_of(r: &mut Response) -> &mut Vec<BundleItem> {
    match r {
        Response::Bundles { bundles, .. } => bundles,
        // Callers check the kind first.
        _ => panic!("not a bundles reply"),
    }
}

fn is_bundles(r: &Response) -> bool {
    matches!(r, Response::Bundles { .. })
}

/// A device of the vault (broken or hostile) sealed a payload that
/// decompresses past the envelope limit, one that is not a compressed
/// stream at all, and one of an unknown format: each is rejected like a
/// tampered blob, the sync goes on, and the honest bundle arrives later.
#[test]
fn a_bomb_or_garbage_payload_is_rejected_and_sync_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay(tmp.path());
    let (mut a, keys) = first_device(&relay, 1);
    let mut b = pair(&relay, &mut a, 2);
    band(&mut a, 0, 20);
    a.sync(&mut conn(&relay)).unwrap();
    let good = a.log().view();
    let author = a.device_id().0;

    // 17 MiB of Automerge-looking bytes, deflated to a few KiB.
    let mut big = vec![0u8; 17 * 1024 * 1024];
    big[..4].copy_from_slice(&[0x85, 0x6f, 0x4a, 0x83]);
    let mut bomb = vec![0x01];
    bomb.extend_from_slice(&deflate(&big));
    drop(big);
    let mut garbage = vec![0x01];
    garbage.extend((0..600u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let unknown = vec![0x7f; 300];

    for (what, plain) in [("bomb", bomb), ("garbage", garbage), ("unknown", unknown)] {
        let mut m = Mitm {
            inner: conn(&relay),
            edit: |r: &mut Response| {
                if is_bundles(r) {
                    for item in bundles_of(r).iter_mut() {
                        if item.device == author {
                            item.blob = seal_bundle(&keys, author, item.seq, &plain);
                        }
                    }
                }
            },
        };
        let report = b
            .sync_with(&mut m, SnapshotPolicy::Never)
            .unwrap_or_else(|e| panic!("{what}: the sync failed: {e}"));
        assert!(report.rejected >= 1, "{what}: not rejected");
        assert_eq!(report.received, 0, "{what}: applied");
        assert!(
            b.log()
                .view()
                .readings
                .iter()
                .all(|r| good.readings.contains(r)),
            "{what}: foreign data entered the log"
        );
    }
    // Nothing lost: an honest sync brings A's readings.
    b.sync_with(&mut conn(&relay), SnapshotPolicy::Never)
        .unwrap();
    assert_eq!(b.log().view(), good);
}

/// The Automerge bytes of an opened log payload, decoded here from the
/// spec (docs/spec.md §10), not by the crate: `85 6f 4a 83...` as it is,
/// `01 || DEFLATE`, or `02 || stride || DEFLATE` of the bytes each minus the
/// byte `stride` before it. Returns the format byte too.
fn decode_payload(plain: &[u8]) -> (u8, Vec<u8>) {
    let inflate = |bytes: &[u8]| {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::DeflateDecoder::new(bytes), &mut out)
            .unwrap();
        out
    };
    let (format, raw) = match plain[0] {
        0x85 => (0x85, plain.to_vec()),
        0x01 => (0x01, inflate(&plain[1..])),
        0x02 => {
            let stride = plain[1] as usize;
            let mut out = inflate(&plain[2..]);
            for i in stride..out.len() {
                out[i] = out[i].wrapping_add(out[i - stride]);
            }
            (0x02, out)
        }
        other => panic!("unexpected bundle format {other:#04x}"),
    };
    assert_eq!(&raw[..4], &[0x85, 0x6f, 0x4a, 0x83]);
    (format, raw)
}

/// Bundles of the earlier formats — sealed before compression existed (raw
/// Automerge changes) and DEFLATE alone, as nodes and devices still hold
/// them — open and apply; and the bundles a device writes now, of band
/// readings, are the stride format.
#[test]
fn old_format_bundles_still_open() {
    for (seed, old) in [(3, 0x85u8), (40, 0x01)] {
        let tmp = tempfile::tempdir().unwrap();
        let relay = relay(tmp.path());
        let (mut a, keys) = first_device(&relay, seed);
        let mut b = pair(&relay, &mut a, seed + 1);
        band(&mut a, 0, 30);
        // No relay snapshot: B is to receive A's bundles themselves.
        a.sync_with(&mut conn(&relay), SnapshotPolicy::Never)
            .unwrap();
        let good = a.log().view();
        let author = a.device_id().0;
        let (mut reformatted, mut stride) = (0, 0);
        // The relay serves A's bundles re-sealed in the old format.
        let mut m = Mitm {
            inner: conn(&relay),
            edit: |r: &mut Response| {
                if is_bundles(r) {
                    for item in bundles_of(r).iter_mut() {
                        if item.device != author {
                            continue;
                        }
                        let plain = open_bundle(&keys, author, item.seq, &item.blob);
                        let (format, raw) = decode_payload(&plain);
                        stride += usize::from(format == 0x02);
                        let old_plain = if old == 0x85 {
                            raw
                        } else {
                            let mut p = vec![0x01];
                            p.extend_from_slice(&deflate(&raw));
                            p
                        };
                        item.blob = seal_bundle(&keys, author, item.seq, &old_plain);
                        reformatted += 1;
                    }
                }
            },
        };
        let report = b.sync_with(&mut m, SnapshotPolicy::Never).unwrap();
        assert!(reformatted >= 1);
        assert!(stride >= 1, "no bundle of readings in the stride format");
        assert_eq!(report.rejected, 0);
        assert_eq!(b.log().view(), good);
    }
}

/// A device offline for half a day pushes no more than about its document,
/// whatever its backlog of changes (those compressed, or the document when
/// that is smaller): every byte it sends in the sync (frames included) is
/// at most 1.2 times the sealed snapshot of its log.
#[test]
fn a_long_offline_backlog_goes_as_the_document() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay(tmp.path());
    let (mut a, _) = first_device(&relay, 5);
    a.sync(&mut conn(&relay)).unwrap();
    band(&mut a, 0, 720);
    let mut c = conn(&relay);
    let report = a.sync(&mut c).unwrap();
    assert_eq!(report.pushed, 1);
    let snapshot = sealed_snapshot(&mut a);
    assert!(
        c.sent as f64 <= 1.2 * snapshot as f64,
        "sent {} bytes for a sealed snapshot of {snapshot}",
        c.sent
    );
    // And what was pushed is the whole log: a new device gets it all.
    let mut b = pair(&relay, &mut a, 6);
    assert_eq!(b.log().view(), a.log().view());
    b.sync(&mut conn(&relay)).unwrap();
    assert_eq!(b.log().view(), a.log().view());
}

/// Two devices, one of which pushes its backlog as the document, still
/// converge, and a conflicting check-in stays a visible conflict.
#[test]
fn devices_converge_and_conflicts_stay_visible_across_document_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay(tmp.path());
    let (mut a, _) = first_device(&relay, 7);
    let mut b = pair(&relay, &mut a, 8);
    band(&mut a, 0, 360);
    band(&mut b, 1000, 1010);
    let day = Day::of(START);
    a.check_in(day, Symptom::Cough, Severity::Mild).unwrap();
    b.check_in(day, Symptom::Cough, Severity::Severe).unwrap();
    for _ in 0..2 {
        a.sync(&mut conn(&relay)).unwrap();
        b.sync(&mut conn(&relay)).unwrap();
    }
    assert_eq!(a.log().view(), b.log().view());
    assert_eq!(a.heads(), b.heads());
    assert_eq!(a.log().conflicts().len(), 1);
    assert_eq!(b.log().conflicts().len(), 1);
}

/// A relay cannot make a device take another vault's document bundle in
/// place of one of its own vault's.
#[test]
fn another_vaults_document_bundle_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay(tmp.path());
    let (mut a, _) = first_device(&relay, 9);
    let mut b = pair(&relay, &mut a, 10);
    let (mut stranger, _) = first_device(&relay, 11);
    band(&mut stranger, 0, 240);
    // Without relay snapshots, so the node keeps the bundles to steal.
    stranger
        .sync_with(&mut conn(&relay), SnapshotPolicy::Never)
        .unwrap();
    let stolen: Vec<BundleItem> = relay
        .store()
        .bundles(stranger.vault_id().as_bytes())
        .map(|x| x.unwrap())
        .collect();
    assert!(!stolen.is_empty());
    band(&mut a, 0, 10);
    a.sync_with(&mut conn(&relay), SnapshotPolicy::Never)
        .unwrap();
    let good = a.log().view();
    let author = a.device_id().0;
    let mut m = Mitm {
        inner: conn(&relay),
        edit: |r: &mut Response| {
            if is_bundles(r) {
                for item in bundles_of(r).iter_mut() {
                    if item.device == author {
                        item.blob = stolen[stolen.len() - 1].blob.clone();
                    }
                }
            }
        },
    };
    let report = b.sync_with(&mut m, SnapshotPolicy::Never).unwrap();
    assert!(report.rejected >= 1);
    assert!(
        b.log()
            .view()
            .readings
            .iter()
            .all(|r| good.readings.contains(r)),
        "the other vault's readings entered the log"
    );
    b.sync_with(&mut conn(&relay), SnapshotPolicy::Never)
        .unwrap();
    assert_eq!(b.log().view(), good);
}

/// A day synced hourly leaves the node holding at most 1.5 times the
/// sealed snapshot of the log for this vault, before any sweep.
#[test]
fn the_node_keeps_about_one_snapshot_per_vault() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay(tmp.path());
    let (mut a, _) = first_device(&relay, 12);
    for hour in 0..24 {
        band(&mut a, hour * 60, (hour + 1) * 60);
        a.sync(&mut conn(&relay)).unwrap();
    }
    let stored = relay
        .store()
        .mailbox(a.vault_id().as_bytes())
        .unwrap()
        .unwrap()
        .bytes;
    let snapshot = sealed_snapshot(&mut a);
    assert!(
        stored as f64 <= 1.5 * snapshot as f64,
        "the node keeps {stored} bytes for a sealed snapshot of {snapshot}"
    );
}

/// The relay snapshot rule as a resident's data plan and the node's disk
/// see it, over 40 hours of a band synced hourly: no relay snapshot while
/// the node holds under 32 KiB for the vault (a small log's bundles are
/// cheap to keep and to download, and re-uploading a still-small log
/// several times was most of a first day's bytes: 2.9 × `save()`); once
/// past it, a snapshot when the node's bytes pass 7/8 of the log, spaced by
/// at least the previous one's bytes in bundles, after which the node keeps
/// at most 1.1 × the log's sealed snapshot; and every byte sent, frames
/// included, stays within 2 × Automerge's `save()` of the log.
#[test]
fn hourly_bundles_keep_the_node_under_the_log_and_snapshots_spaced() {
    const FLOOR: u64 = 32 * 1024;
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay(tmp.path());
    let (mut a, _) = first_device(&relay, 13);
    let mut c = conn(&relay);
    a.sync(&mut c).unwrap();
    let (mut bundles_since, mut last, mut snapshots) = (0, 0, 0);
    let mut max_after = 0f64;
    let mut stored_before = 0;
    for hour in 0..40 {
        band(&mut a, hour * 60, (hour + 1) * 60);
        let (sent, snapshot_sent) = (c.sent, c.snapshot_sent);
        let report = a.sync(&mut c).unwrap();
        let snapshot = c.snapshot_sent - snapshot_sent;
        // Every frame but the snapshot's: the bundles and their overhead.
        bundles_since += c.sent - sent - snapshot;
        if report.uploaded_snapshot {
            assert!(
                stored_before >= FLOOR - 4096,
                "hour {hour}: a relay snapshot while the node held {stored_before} bytes"
            );
            snapshots += 1;
            assert!(
                last <= bundles_since,
                "hour {hour}: a snapshot after {bundles_since} bytes of bundles, the previous was {last}"
            );
            (last, bundles_since) = (snapshot, 0);
        }
        let stored = relay
            .store()
            .mailbox(a.vault_id().as_bytes())
            .unwrap()
            .unwrap()
            .bytes;
        if snapshots > 0 {
            let ratio = stored as f64 / sealed_snapshot(&mut a) as f64;
            max_after = max_after.max(ratio);
        }
        stored_before = stored;
    }
    assert!(snapshots >= 1, "no relay snapshot in 40 hours");
    assert!(
        max_after <= 1.1,
        "after the first snapshot the node kept up to {max_after:.3} times the log"
    );
    let save = a.export_automerge().len();
    assert!(
        c.sent as f64 <= 2.0 * save as f64,
        "sent {} bytes for a save() of {save}",
        c.sent
    );
}

/// A band synced every minute: each bundle carries a few readings in the
/// smallest blob (302 bytes), so the node's bytes outgrow the log (240
/// bundles, 72 KB, for a log whose snapshot is ~5 KB); the byte budget
/// alone keeps the node, after every sync, under the 32 KiB floor or 1.5
/// times the log's sealed snapshot, whichever is larger, with relay
/// snapshots.
#[test]
fn minute_bundles_still_bring_relay_snapshots() {
    const FLOOR: u64 = 32 * 1024;
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay(tmp.path());
    let (mut a, _) = first_device(&relay, 14);
    let mut c = conn(&relay);
    let mut snapshots = 0;
    for minute in 0..240 {
        band(&mut a, minute, minute + 1);
        snapshots += usize::from(a.sync(&mut c).unwrap().uploaded_snapshot);
        let stored = relay
            .store()
            .mailbox(a.vault_id().as_bytes())
            .unwrap()
            .unwrap()
            .bytes;
        let bound = FLOOR.max(sealed_snapshot(&mut a) as u64 * 3 / 2);
        assert!(
            stored <= bound,
            "minute {minute}: the node keeps {stored} bytes, over {bound}"
        );
    }
    assert!(snapshots >= 1);
}

/// A second device that records nothing but receives a day of hourly
/// bundles (~25 KiB): what it received goes into its own local snapshot
/// once it passes 16 KiB, so each open loads one document instead of
/// applying every received bundle again, and the store does not keep the
/// same changes twice. Reopened, it holds what the first device holds.
#[test]
fn received_bundles_are_folded_into_the_local_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay(tmp.path());
    let (mut a, _) = first_device(&relay, 16);
    let dir = tmp.path().join("b");
    let b_keys = MemoryKeyStore::new();
    let mut rng = ChaCha20Rng::seed_from_u64(17);
    let id = X25519Identity::generate(&mut rng);
    a.offer_pairing(&mut conn(&relay), &id.public_key(), START)
        .unwrap();
    let mut b = Vault::fetch_join(&mut conn(&relay), &id)
        .unwrap()
        .confirm(
            Box::new(SledStorage::open(&dir).unwrap()),
            Box::new(b_keys.clone()),
            &mut conn(&relay),
            &mut rng,
        )
        .unwrap();
    for hour in 0..24 {
        band(&mut a, hour * 60, (hour + 1) * 60);
        a.sync(&mut conn(&relay)).unwrap();
        b.sync(&mut conn(&relay)).unwrap();
    }
    drop(b);
    let store = SledStorage::open(&dir).unwrap();
    let received: usize = store
        .scan_prefix(b"r/")
        .unwrap()
        .iter()
        .map(|(_, v)| v.len())
        .sum::<usize>()
        + store.get(b"R/snapshot").unwrap().map_or(0, |v| v.len());
    drop(store);
    assert!(
        received <= 16 * 1024 + 2048,
        "{received} bytes of received blobs kept beside the log"
    );
    let mut b = Vault::open_at(&dir, &b_keys, START).unwrap();
    assert_eq!(b.log().view(), a.log().view());
    assert_eq!(b.heads(), a.heads());
}

/// The figures of issue 19 for one day of band readings (run with
/// `cargo test -p vigil-device --test wire_bytes -- --ignored --nocapture`):
/// ratios, so any machine gives the same ones.
#[test]
#[ignore = "a measurement, not a check"]
fn measure_a_day() {
    measure(1);
}

/// The same figures for a week (24,864 readings; a few minutes unoptimised).
#[test]
#[ignore = "a measurement, not a check"]
fn measure_a_week() {
    measure(7);
}

fn measure(days: i64) {
    let minutes = days * 1440;
    let readings_per_day: usize = (0..minutes)
        .map(|m| vigil_testkit::wristband_readings(m, 5, 15).len())
        .sum();
    // A device offline for the period, then one sync.
    let tmp = tempfile::tempdir().unwrap();
    let relay1 = relay(tmp.path());
    let (mut a, _) = first_device(&relay1, 20);
    a.sync(&mut conn(&relay1)).unwrap();
    band(&mut a, 0, minutes);
    let mut c = conn(&relay1);
    a.sync(&mut c).unwrap();
    let snap = sealed_snapshot(&mut a);
    println!(
        "offline {days} day(s): sent {} bytes, sealed snapshot {snap}: {:.2}x",
        c.sent,
        c.sent as f64 / snap as f64
    );
    // The same day synced hourly: every frame the device sends.
    let tmp = tempfile::tempdir().unwrap();
    let relay2 = relay(tmp.path());
    let (mut b, _) = first_device(&relay2, 21);
    let (mut sent, mut snapshot_sent, mut snapshots) = (0, 0, 0);
    for hour in 0..24 * days {
        band(&mut b, hour * 60, (hour + 1) * 60);
        let mut c = conn(&relay2);
        snapshots += usize::from(b.sync(&mut c).unwrap().uploaded_snapshot);
        sent += c.sent;
        snapshot_sent += c.snapshot_sent;
    }
    let save = b.export_automerge().len();
    let per = |x: usize| x as f64 / readings_per_day as f64;
    println!(
        "hourly, {days} day(s): {readings_per_day} readings, sent {sent} bytes ({:.1} B/reading, {snapshots} relay snapshots of {snapshot_sent} bytes, {:.1} B/reading without them); save() {save} ({:.1} B/reading): {:.2}x",
        per(sent),
        per(sent - snapshot_sent),
        per(save),
        sent as f64 / save as f64
    );
    let stored = relay2
        .store()
        .mailbox(b.vault_id().as_bytes())
        .unwrap()
        .unwrap()
        .bytes;
    let snap = sealed_snapshot(&mut b);
    println!(
        "node after {days} day(s) hourly: {stored} bytes of blobs, sealed snapshot {snap}: {:.2}x; store directory {} bytes (sled, one vault)",
        stored as f64 / snap as f64,
        relay2.store().size_on_disk()
    );
}

/// The node's disk for many residents: ten vaults, each a day of band
/// readings synced hourly, on one node. Counts the blob bytes the relay
/// accounts (sealed bundles and snapshots) and the store directory (sled's
/// files, all of them).
#[test]
#[ignore = "a measurement, not a check"]
fn measure_node_disk_for_ten_residents() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay(tmp.path());
    let mut vaults: Vec<Vault> = (0..10).map(|i| first_device(&relay, 100 + i).0).collect();
    for hour in 0..24 {
        for v in &mut vaults {
            band(v, hour * 60, (hour + 1) * 60);
            v.sync(&mut conn(&relay)).unwrap();
        }
    }
    let blobs: u64 = vaults
        .iter()
        .map(|v| {
            relay
                .store()
                .mailbox(v.vault_id().as_bytes())
                .unwrap()
                .unwrap()
                .bytes
        })
        .sum();
    let snap: usize = vaults.iter_mut().map(sealed_snapshot).sum();
    let dir = relay.store().size_on_disk();
    println!(
        "ten residents, a day hourly: blobs {blobs} bytes ({:.2}x the sealed snapshots, {snap}); store directory {dir} bytes ({:.2}x)",
        blobs as f64 / snap as f64,
        dir as f64 / snap as f64
    );
}

/// Every request frame of a sync, kept for a breakdown.
struct Recording {
    inner: Direct,
    frames: Vec<Vec<u8>>,
}

impl Exchange for Recording {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ExchangeError> {
        self.frames.push(request.to_vec());
        self.inner.exchange(request)
    }

    fn node(&self) -> NodeId {
        self.inner.node()
    }
}

fn deflate_at(bytes: &[u8], level: u32) -> usize {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(bytes).unwrap();
    e.finish().unwrap().len()
}

/// Where one hourly sync's bytes go (issue 19's upload target), for the
/// monitoring week's band (temperature and heart rate every minute, SpO2 and
/// respiration every 5, steps every 15: 148 readings an hour) and for the
/// bench's band (temperature and heart rate every 30 s: 240 an hour): the
/// bundle's Automerge changes, compressed (with DEFLATE alone, at the
/// default and the best level, and as sent), padded, sealed, in its `Push`
/// frame, and the conversation's other frames.
#[test]
#[ignore = "a measurement, not a check"]
fn measure_an_hourly_sync() {
    type Readings = fn(i64) -> Vec<(vigil_log::Metric, f64)>;
    let week: Readings = |m| vigil_testkit::wristband_readings(m, 5, 15);
    let bench: Readings = |m| {
        vec![
            (
                vigil_log::Metric::BodyTemperature,
                36.5 + (m % 7) as f64 * 0.05,
            ),
            (vigil_log::Metric::HeartRate, 60.0 + (m % 40) as f64),
        ]
    };
    // The bench's band records every 30 s: two steps a minute.
    for (name, readings, per_minute) in [("week band", week, 1), ("bench band", bench, 2)] {
        let tmp = tempfile::tempdir().unwrap();
        let relay = relay(tmp.path());
        let (mut a, keys) = first_device(&relay, 30);
        a.sync(&mut conn(&relay)).unwrap();
        for hour in 0..4i64 {
            let mut n = 0;
            for step in hour * 60 * per_minute..(hour + 1) * 60 * per_minute {
                for (metric, value) in readings(step) {
                    a.record(
                        metric,
                        value,
                        metric.unit(),
                        START + step * MIN / per_minute,
                    )
                    .unwrap();
                    n += 1;
                }
            }
            let mut rec = Recording {
                inner: conn(&relay),
                frames: Vec::new(),
            };
            a.sync_with(&mut rec, SnapshotPolicy::Never).unwrap();
            let mut others = Vec::new();
            let mut total = 0;
            for f in &rec.frames {
                total += f.len();
                match vigil_proto::decode_request(f).unwrap() {
                    vigil_proto::Request::Push(b) => {
                        let plain = open_bundle(&keys, b.device, b.seq, &b.blob);
                        let (format, raw) = decode_payload(&plain);
                        println!(
                            "figure: {name}, hour {hour}: {n} readings; bundle: Automerge changes {} B, DEFLATE alone {} B (best level {}), payload (format {format:02x}) {} B, padded {} B (+{} B padding), sealed {} B, Push frame {} B",
                            raw.len(),
                            deflate_at(&raw, 6),
                            deflate_at(&raw, 9),
                            plain.len(),
                            vigil_crypto::bucket_len(plain.len()),
                            vigil_crypto::bucket_len(plain.len()) - plain.len() - 4,
                            b.blob.len(),
                            f.len()
                        );
                    }
                    other => {
                        let kind = format!("{other:?}");
                        let kind = kind.split([' ', '(', '{']).next().unwrap_or("?").to_owned();
                        others.push(format!("{kind} {} B", f.len()));
                    }
                }
            }
            println!(
                "figure: {name}, hour {hour}: the rest of the conversation: {}; all {total} B, {:.1} B/reading",
                others.join(", "),
                total as f64 / n as f64
            );
        }
        let save = a.export_automerge().len();
        println!(
            "figure: {name}: save() after 4 hours {save} B, {:.1} B/reading",
            save as f64 / (readings_count(readings, per_minute, 4)) as f64
        );
    }
}

fn readings_count(
    readings: fn(i64) -> Vec<(vigil_log::Metric, f64)>,
    per_minute: i64,
    hours: i64,
) -> usize {
    (0..hours * 60 * per_minute)
        .map(|s| readings(s).len())
        .sum()
}
