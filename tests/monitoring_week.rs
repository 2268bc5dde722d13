//! The README's week, checked: the story `examples/monitoring_week.rs`
//! tells (a node on loopback, a phone and a wristband paired through it, a
//! partition with conflicting edits, a fever that reaches the node's inbox,
//! the period's end and the shred), with each of its claims a test,
//! including what a curious node could do with its copy of the traffic.
//!
//! The week runs once per test binary ([`week`]) and each test checks one
//! property of what it recorded: running it per test would multiply the
//! suite's slowest part by twelve.
//!
//! Two clocks: the node reads the real clock (it checks grant windows and
//! period ends against now), so the period is placed around now; the
//! devices take every time as a parameter, so they live the compressed week
//! inside that period.

use std::error::Error;
use std::sync::OnceLock;

use vigil::node::InboxEntry;
use vigil::{
    Conflict, Day, Disclosure, FeverRule, FileKeyStore, Metric, OpenError, Period, ReadingId,
    Severity, Symptom, SyncReport, TOMBSTONE_FILE, Vault, X25519Identity,
};
use vigil::{DeviceConnection, ReceiptBody};
use vigil_crypto::{AlertKey, WrappedKey, unwrap};
use vigil_node::GrantKeys;
use vigil_proto::alert::{ALERT_END, ALERT_START, round_onset};
use vigil_proto::receipt::verify_receipt;
use vigil_proto::{Request, decode_request};
use vigil_testkit::{
    DAY, HOUR, MIN, connect, contains, files, period_start, rng, sled_home, sled_vault,
    tapped_node, wristband_readings,
};

type BoxResult<T> = Result<T, Box<dyn Error>>;

/// What the resident consents to share with the node, with every alert.
const LABEL: &str = "resident #0412, flat 12B";
/// The day (0-based) the wristband is cut off, and the day of the fever.
const PARTITION_DAY: i64 = 1;
const FEVER_DAY: i64 = 2;
/// The fever, in minutes of the fever day: 10:00 to 15:00 (as in the
/// step 2 benchmark).
const FEVER_MINUTES: std::ops::Range<i64> = 600..900;

/// How often the wristband measures, in minutes: temperature and heart
/// rate, SpO2 and respiratory rate, steps. A tenth-ish of the step 2
/// workload, for the debug test build; the story is the same.
const VITALS: i64 = 10;
const OXYGEN: i64 = 60;
const STEPS: i64 = 180;

/// The wristband's readings at minute `m` of the period (a multiple of
/// `VITALS`): the step 2 benchmark's, fever included.
fn readings_at(m: i64) -> Vec<(Metric, f64)> {
    wristband_readings(m, OXYGEN, STEPS)
}

/// The phone's evening check-in, one symptom a day.
fn evening_check_in(day: i64) -> (Symptom, Severity) {
    match day {
        0 => (Symptom::Fatigue, Severity::Mild),
        1 => (Symptom::Headache, Severity::Mild),
        2 => (Symptom::Chills, Severity::Moderate),
        3 => (Symptom::Fatigue, Severity::Moderate),
        4 => (Symptom::MuscleAche, Severity::Mild),
        5 => (Symptom::Fatigue, Severity::Mild),
        _ => (Symptom::Headache, Severity::None),
    }
}

/// One device: its vault and its connection to the node (none while it is
/// cut off).
struct Device {
    name: &'static str,
    vault: Vault,
    keys: FileKeyStore,
    conn: Option<DeviceConnection>,
}

impl Device {
    fn sync(&mut self) -> BoxResult<SyncReport> {
        let conn = self.conn.as_mut().ok_or("device is offline")?;
        Ok(self.vault.sync(conn)?)
    }
}

/// What a device's directory held after its shred.
#[derive(Debug)]
struct AfterShred {
    /// The files left under its directory.
    left: Vec<std::path::PathBuf>,
    only_tombstone: bool,
    key_file_exists: bool,
    opens_as_shredded: bool,
}

/// What the week showed: everything the tests check, gathered while it
/// ran (the temporary directory is gone by the time they look).
#[derive(Debug)]
struct Week {
    start: i64,
    end: i64,
    vault_id: [u8; 16],
    codes_match: bool,
    band_opened_the_vault: bool,
    /// Readings the band recorded.
    recorded: usize,
    heads_equal: bool,
    views_equal: bool,
    phone_len: usize,
    retracted: usize,
    /// Conflicts on (phone, band) right after the heal, and after the
    /// resident resolved them.
    conflicts_seen: (usize, usize),
    conflicts_after: (usize, usize),
    /// Whether the cough check-in was among the conflicts, on (phone, band).
    cough_conflict: (bool, bool),
    inbox: Vec<InboxEntry>,
    /// The devices that delivered alerts, and the deliveries the node
    /// acknowledged without storing them again.
    senders: Vec<&'static str>,
    merged_acks: usize,
    fever_onset: Option<i64>,
    /// (lists its grant, alerts sent) for the phone and the band; whether
    /// the phone lists the pairing.
    phone_disclosed: (bool, usize),
    band_disclosed: (bool, usize),
    phone_disclosed_pairing: bool,
    canaries: Vec<String>,
    /// Canary occurrences in the node's files and received frames, before
    /// the shred.
    canary_hits: usize,
    mailbox: (i64, u64, u64),
    grant_labels: Vec<String>,
    /// The deletion receipts of (phone, band), when they verified.
    receipts: [Option<ReceiptBody>; 2],
    after_shred: [AfterShred; 2],
    node_keeps_nothing: bool,
    canary_after: usize,
    open_after_sweep: Vec<usize>,
}

/// The week, run on first use and shared by every test in this file.
fn week() -> &'static Week {
    static WEEK: OnceLock<Result<Week, String>> = OnceLock::new();
    WEEK.get_or_init(|| run().map_err(|e| e.to_string()))
        .as_ref()
        .unwrap_or_else(|e| panic!("the week failed: {e}"))
}

/// Runs the week and gathers what it showed.
fn run() -> BoxResult<Week> {
    let tmp = tempfile::Builder::new().prefix("vigil-week-").tempdir()?;
    let mut rng = rng(0x3ee4);

    // ---- The node, keeping a copy of every request frame it receives, as
    // a curious node could: the canary scan covers what it saw, not only
    // what it kept.
    let node_dir = tmp.path().join("node");
    let (local, tap) = tapped_node(&node_dir);
    let code = local.enrolment_code().clone();
    let relay = local.node().relay();

    let start = period_start();
    let period = Period::days(start, 7);
    let end = period.end_ms;

    // ---- The phone creates the vault and grants the node fever alerts.
    let rule = FeverRule::default();
    let (vault, keys) = sled_vault(tmp.path(), "phone", period, 1);
    let mut phone = Device {
        name: "phone",
        vault,
        keys,
        conn: Some(connect(&code)),
    };
    let vault_id = phone.vault.vault_id();
    let phone_conn = phone.conn.as_mut().ok_or("phone offline")?;
    phone
        .vault
        .enrol(phone_conn, &code.node_public, LABEL, rule, start)?;

    // ---- The wristband pairs through the node, then enrols too (grants
    // live in each device's store, not in the log) so it can send alerts.
    let band_identity = X25519Identity::generate(&mut rng);
    let phone_code =
        phone
            .vault
            .offer_pairing(phone_conn, &band_identity.public_key(), start + MIN)?;
    let mut band_conn = connect(&code);
    let (storage, keys) = sled_home(tmp.path(), "band");
    let (vault, band_code) = Vault::join(
        Box::new(storage),
        Box::new(keys.clone()),
        &band_identity,
        &mut band_conn,
        &mut rng,
    )?;
    let mut band = Device {
        name: "band",
        vault,
        keys,
        conn: Some(band_conn),
    };
    let band_conn = band.conn.as_mut().ok_or("band offline")?;
    band.vault
        .enrol(band_conn, &code.node_public, LABEL, rule, start + 2 * MIN)?;

    // ---- The week.
    let mut recorded = 0usize;
    // The reading both devices will edit during the partition: day 1, 20:00.
    let mut contested: Option<ReadingId> = None;
    let mut canaries: Vec<String> = vec![];
    let mut conflicts_seen = (0, 0);
    let mut conflicts_after = (usize::MAX, usize::MAX);
    let mut cough_conflict = (false, false);
    let mut inbox_len = 0usize;
    let mut senders: Vec<&'static str> = vec![];
    let mut merged_acks = 0usize;
    let mut fever_onset: Option<i64> = None;
    for day in 0..7 {
        let day_start = start + day * DAY;
        if day == PARTITION_DAY
            && let Some(c) = band.conn.take()
        {
            c.close();
        }
        for hour in 0..24 {
            let hour_start = day_start + hour * HOUR;
            for m in (hour * 60..hour * 60 + 60).step_by(VITALS as usize) {
                let t = day_start + m * MIN;
                for (metric, value) in readings_at(day * 1440 + m) {
                    let id = band.vault.record(metric, value, metric.unit(), t)?;
                    recorded += 1;
                    if day == 0 && m == 20 * 60 && metric == Metric::BodyTemperature {
                        contested = Some(id);
                    }
                }
            }
            let tick = hour_start + HOUR - MIN;

            // Day 2: the same check-in and the same reading, edited apart.
            if day == PARTITION_DAY && (hour == 9 || hour == 10) {
                let r = contested.ok_or("no contested reading")?;
                let today = Day::of(day_start);
                if hour == 9 {
                    let mut tag = [0u8; 4];
                    getrandom::fill(&mut tag)?;
                    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
                    let note = format!("CANARY-{tag}: measured right after a hot shower");
                    phone
                        .vault
                        .check_in(today, Symptom::Cough, Severity::Severe)?;
                    phone.vault.annotate(r, &note)?;
                    canaries.push(note);
                } else {
                    let note = "CANARY-band: strap was loose";
                    band.vault.check_in(today, Symptom::Cough, Severity::Mild)?;
                    band.vault.annotate(r, note)?;
                    band.vault.retract(r, "off-wrist reading", hour_start)?;
                    canaries.push(note.to_owned());
                }
            }
            // The heal, at the end of day 2.
            if day == PARTITION_DAY && hour == 23 {
                band.conn = Some(connect(&code));
                band.sync()?;
                phone.sync()?;
                let cough = |c: &Conflict| matches!(c, Conflict::CheckIn { symptom, .. } if *symptom == Symptom::Cough);
                let (on_phone, on_band) =
                    (phone.vault.log().conflicts(), band.vault.log().conflicts());
                conflicts_seen = (on_phone.len(), on_band.len());
                cough_conflict = (on_phone.iter().any(cough), on_band.iter().any(cough));
                // The resident decides on the phone: setting a value again
                // resolves its conflict.
                let rid = contested.ok_or("no contested reading")?;
                phone
                    .vault
                    .check_in(Day::of(day_start), Symptom::Cough, Severity::Moderate)?;
                phone.vault.annotate(rid, &canaries[0])?;
                phone.sync()?;
                band.sync()?;
                conflicts_after = (
                    phone.vault.log().conflicts().len(),
                    band.vault.log().conflicts().len(),
                );
            }

            // Hourly: the band syncs and sends what is due; every 6 hours
            // the phone does too; in the evening the phone's check-in.
            if hour == 21 {
                let (s, sev) = evening_check_in(day);
                phone.vault.check_in(Day::of(day_start), s, sev)?;
            }
            let mut devices = vec![&mut band];
            if hour % 6 == 5 {
                devices.push(&mut phone);
            }
            for d in devices {
                let Some(conn) = d.conn.as_mut() else {
                    continue;
                };
                d.vault.sync(conn)?;
                let r = d.vault.send_alerts(conn, &code.node_public, tick)?;
                if r.delivered == 0 && r.pending == 0 {
                    continue;
                }
                let inbox = relay.inbox()?;
                if inbox.len() > inbox_len {
                    let episodes = d.vault.log().fever_episodes(&rule);
                    let e = episodes.last().ok_or("an alert without an episode")?;
                    fever_onset.get_or_insert(e.onset_ms);
                } else {
                    merged_acks += r.delivered;
                }
                if !senders.contains(&d.name) {
                    senders.push(d.name);
                }
                inbox_len = inbox.len();
            }
        }
    }

    // ---- The end of the period (device time): a last sync, then shred.
    for _ in 0..2 {
        band.sync()?;
        phone.sync()?;
    }
    assert!(phone.vault.is_due(end) && band.vault.is_due(end));
    let heads_equal = phone.vault.heads() == band.vault.heads();
    let view = phone.vault.log().view();
    let views_equal = view == band.vault.log().view();
    let disclosed = |d: &[Disclosure]| {
        let grant = d
            .iter()
            .any(|x| matches!(x, Disclosure::Grant { label, .. } if label == LABEL));
        let sent = d
            .iter()
            .filter(|x| matches!(x, Disclosure::AlertSent { .. }))
            .count();
        (grant, sent)
    };
    let phone_disclosures = phone.vault.disclosures()?;

    // What the node holds, before anyone deletes anything.
    let mailbox = relay
        .store()
        .mailbox(vault_id.as_bytes())?
        .ok_or("the node holds no mailbox for the vault")?;
    let frames: Vec<Vec<u8>> = tap.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut canary_hits = 0usize;
    for f in files(&node_dir) {
        let b = std::fs::read(f)?;
        canary_hits += canaries
            .iter()
            .filter(|c| contains(&b, c.as_bytes()))
            .count();
        canary_hits += usize::from(contains(&b, b"CANARY"));
    }
    for f in &frames {
        canary_hits += usize::from(contains(f, b"CANARY"));
    }
    let phone_len = phone.vault.log().len();
    let band_disclosed = disclosed(&band.vault.disclosures()?);
    let band_opened_the_vault = band.vault.vault_id() == vault_id;
    let inbox = relay.inbox()?;
    let grant_labels = relay.grants()?.into_iter().map(|g| g.grant.label).collect();

    // Shred: shred_with_node asks the node to delete first and keeps its
    // signed receipt in the tombstone; neither call checks the clock (a
    // resident may also shred early), so the compressed end is enough.
    let mut receipts = vec![];
    let mut after_shred = vec![];
    for mut d in [phone, band] {
        let mut conn = d.conn.take().ok_or("device offline")?;
        let t = d.vault.shred_with_node(&mut conn, &d.keys, end)?;
        conn.close();
        receipts.push(
            t.receipt
                .as_deref()
                .and_then(|r| verify_receipt(&code.receipt_key, r).ok()),
        );
        let home = tmp.path().join(d.name);
        let key = tmp.path().join(format!("{}.key", d.name));
        let left = files(&home);
        after_shred.push(AfterShred {
            only_tombstone: left == [home.join("vault").join(TOMBSTONE_FILE)],
            left,
            key_file_exists: key.exists(),
            opens_as_shredded: matches!(
                Vault::open(&home.join("vault"), &FileKeyStore::new(&key)),
                Err(OpenError::Shredded(_))
            ),
        });
    }
    // The node's own deletion at the period's end: its sweeper runs on a
    // timer against the real clock, and the real end is days away, so it
    // is called here with the end's time. It would delete the mailbox and
    // grant had the devices not asked; here it finds the leftovers.
    relay.sweep(end, 0)?;
    // A curious node's copy of the grants it received: does anything left
    // in its directory still unwrap their alert keys?
    let keys_left = GrantKeys::open(&node_dir.join("grant-keys"), [0; 32])?;
    let grants = frames.iter().filter_map(|f| match decode_request(f) {
        Ok(Request::Grant(g)) => Some(g),
        _ => None,
    });
    let mut open_after_sweep = vec![];
    for (i, g) in grants.enumerate() {
        let unwraps = keys_left.load(&g.grant_key).is_some_and(|k| {
            WrappedKey::from_slice(&g.wrapped_key).is_ok_and(|w| unwrap::<AlertKey>(&k, &w).is_ok())
        });
        if unwraps {
            open_after_sweep.push(i);
        }
    }
    let node_keeps_nothing = relay.store().mailbox(vault_id.as_bytes())?.is_none()
        && relay.store().vaults()?.is_empty()
        && relay.grants()?.is_empty()
        && relay.inbox()?.is_empty()
        && files(&node_dir.join("grant-keys")).is_empty();
    let mut canary_after = 0;
    for f in files(&node_dir) {
        canary_after += usize::from(contains(&std::fs::read(f)?, b"CANARY"));
    }

    drop(keys_left);
    local.shutdown();
    tmp.close()?;
    let [phone_receipt, band_receipt] = <[_; 2]>::try_from(receipts).map_err(|_| "two receipts")?;
    let after_shred = <[_; 2]>::try_from(after_shred).map_err(|_| "two devices")?;
    Ok(Week {
        start,
        end,
        vault_id: *vault_id.as_bytes(),
        codes_match: phone_code == band_code,
        band_opened_the_vault,
        recorded,
        heads_equal,
        views_equal,
        phone_len,
        retracted: view.retractions.len(),
        conflicts_seen,
        conflicts_after,
        cough_conflict,
        inbox,
        senders,
        merged_acks,
        fever_onset,
        phone_disclosed: disclosed(&phone_disclosures),
        band_disclosed,
        phone_disclosed_pairing: phone_disclosures
            .iter()
            .any(|x| matches!(x, Disclosure::Pairing { .. })),
        canaries,
        canary_hits,
        mailbox: (mailbox.expires_ms, mailbox.blobs, mailbox.bytes),
        grant_labels,
        receipts: [phone_receipt, band_receipt],
        after_shred,
        node_keeps_nothing,
        canary_after,
        open_after_sweep,
    })
}

#[test]
fn pairing_shows_the_same_code_on_both_screens_and_the_band_opens_the_vault() {
    let w = week();
    assert!(w.codes_match, "the 6-digit codes differ");
    assert!(w.band_opened_the_vault);
}

#[test]
fn the_devices_converge_to_equal_heads_and_views() {
    let w = week();
    assert!(w.heads_equal, "heads differ");
    assert!(w.views_equal, "views differ");
}

#[test]
fn offline_edits_merge_and_no_reading_is_lost() {
    let w = week();
    assert_eq!(
        w.phone_len, w.recorded,
        "the phone lacks some of the band's readings"
    );
    assert_eq!(w.retracted, 1, "the band's retraction during the partition");
}

#[test]
fn the_partitions_conflicts_show_on_both_devices_and_resolve() {
    let w = week();
    assert_eq!(
        w.conflicts_seen,
        (2, 2),
        "conflicts on (phone, band) after the heal"
    );
    assert_eq!(
        w.cough_conflict,
        (true, true),
        "the cough check-in conflict"
    );
    assert_eq!(w.conflicts_after, (0, 0), "conflicts left after resolving");
}

#[test]
fn the_fever_reaches_the_node_inbox_once() {
    let w = week();
    let kinds: Vec<u8> = w.inbox.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [ALERT_START, ALERT_END],
        "fever started, fever ended"
    );
    let onset = w.fever_onset.map(round_onset);
    let expected = round_onset(w.start + FEVER_DAY * DAY + FEVER_MINUTES.start * MIN);
    for e in &w.inbox {
        assert_eq!(Some(e.onset_ms), onset, "the onset the device saw");
        assert_eq!(e.onset_ms, expected);
        assert_eq!(e.level, 2);
    }
    // Both devices sent the alerts; the second copy of each was
    // acknowledged, not stored again.
    assert_eq!(w.senders.len(), 2, "{:?}", w.senders);
    assert_eq!(w.merged_acks, 2);
}

#[test]
fn disclosure_logs_list_the_grant_the_pairing_and_the_alerts_sent() {
    let w = week();
    assert_eq!(
        w.phone_disclosed,
        (true, 2),
        "the phone's (grant, alerts sent)"
    );
    assert_eq!(
        w.band_disclosed,
        (true, 2),
        "the band's (grant, alerts sent)"
    );
    assert!(w.phone_disclosed_pairing);
}

#[test]
fn the_node_stores_and_receives_ciphertext_only() {
    let w = week();
    assert!(!w.canaries.is_empty());
    assert_eq!(
        w.canary_hits, 0,
        "a canary note in the node's files or frames"
    );
}

#[test]
fn the_node_learns_only_a_mailbox_the_grant_label_and_the_alerts() {
    let w = week();
    assert_eq!(w.grant_labels, [LABEL]);
    assert_eq!(
        w.mailbox.0, w.end,
        "the mailbox expires at the period's end"
    );
    assert!(w.inbox.iter().all(|e| e.label == LABEL));
}

#[test]
fn deletion_receipts_verify_under_the_enrolment_codes_key() {
    let w = week();
    let [Some(phone), Some(band)] = &w.receipts else {
        panic!("both deletion receipts verify: {:?}", w.receipts);
    };
    let (_, blobs, bytes) = w.mailbox;
    assert_eq!(phone.vault, w.vault_id);
    assert_eq!(phone.blobs, blobs);
    // The receipt counts stored records (the snapshot's with its
    // version-vector header), the mailbox counts blob bytes only.
    assert!(phone.bytes >= bytes);
    assert_eq!((phone.grants, phone.alerts), (1, 2));
    // The band's finds nothing left.
    assert_eq!((band.blobs, band.grants), (0, 0));
}

fn assert_only_tombstone(after: &AfterShred) {
    assert!(after.only_tombstone, "left: {:?}", after.left);
    assert!(!after.key_file_exists, "the root key file is still there");
    assert!(
        after.opens_as_shredded,
        "the vault does not open as shredded"
    );
}

#[test]
fn shred_leaves_only_the_phones_tombstone() {
    assert_only_tombstone(&week().after_shred[0]);
}

#[test]
fn shred_leaves_only_the_bands_tombstone() {
    assert_only_tombstone(&week().after_shred[1]);
}

#[test]
fn after_shred_and_sweep_the_node_keeps_nothing_that_opens() {
    let w = week();
    assert!(
        w.node_keeps_nothing,
        "a mailbox, grant, alert or grant key is left"
    );
    assert_eq!(w.canary_after, 0, "a canary after the shred");
    assert!(
        w.open_after_sweep.is_empty(),
        "copied grant frames that still unwrap: {:?}",
        w.open_after_sweep
    );
}
