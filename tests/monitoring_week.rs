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
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;

use vigil::node::{InboxEntry, LocalNode};
use vigil::{
    Conflict, Day, Disclosure, FeverRule, FileKeyStore, Metric, OpenError, Period, ReadingId,
    Severity, Symptom, SyncReport, TOMBSTONE_FILE, Vault, X25519Identity,
};
use vigil::{DeviceConnection, EnrolmentCode, ReceiptBody, TicketCode};
use vigil_crypto::{AlertKey, WrappedKey, unwrap};
use vigil_node::{GrantKeys, Relay};
use vigil_proto::alert::{ALERT_END, ALERT_START, round_onset};
use vigil_proto::receipt::verify_receipt;
use vigil_proto::{Request, decode_request};
use vigil_testkit::{
    DAY, HOUR, MIN, Tap, connect, contains, files, period_start, rng, sled_home, sled_vault,
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

/// Runs the week, act by act, and gathers what it showed.
fn run() -> BoxResult<Week> {
    let tmp = tempfile::Builder::new().prefix("vigil-week-").tempdir()?;
    let mut rng = rng(0x3ee4);
    let start = period_start();
    let period = Period::days(start, 7);
    let node = start_node(tmp.path(), period);
    let end = period.end_ms;
    let rule = FeverRule::default();

    let mut phone = create_phone(tmp.path(), &node, period, rule)?;
    let vault_id = phone.vault.vault_id();
    let (mut band, codes_match) = pair_band(tmp.path(), &node, &mut phone, start, rule, &mut rng)?;
    let days = live_the_days(&node, &mut phone, &mut band, start, rule)?;
    let devices = end_the_period(&mut phone, &mut band, end)?;
    let held = what_the_node_holds(&node, vault_id.as_bytes(), &days.canaries)?;
    let band_opened_the_vault = band.vault.vault_id() == vault_id;
    let (receipts, after_shred) = shred_both(tmp.path(), &node, [phone, band], end)?;
    let swept = sweep(&node, vault_id.as_bytes(), &held.frames, end)?;

    node.local.shutdown();
    tmp.close()?;
    Ok(Week {
        start,
        end,
        vault_id: *vault_id.as_bytes(),
        codes_match,
        band_opened_the_vault,
        recorded: days.recorded,
        heads_equal: devices.heads_equal,
        views_equal: devices.views_equal,
        phone_len: devices.phone_len,
        retracted: devices.retracted,
        conflicts_seen: days.heal.seen,
        conflicts_after: days.heal.after,
        cough_conflict: days.heal.cough,
        inbox: held.inbox,
        senders: days.alerts.senders,
        merged_acks: days.alerts.merged_acks,
        fever_onset: days.alerts.fever_onset,
        phone_disclosed: devices.phone_disclosed,
        band_disclosed: devices.band_disclosed,
        phone_disclosed_pairing: devices.phone_disclosed_pairing,
        canaries: days.canaries,
        canary_hits: held.canary_hits,
        mailbox: held.mailbox,
        grant_labels: held.grant_labels,
        receipts,
        after_shred,
        node_keeps_nothing: swept.keeps_nothing,
        canary_after: swept.canary_after,
        open_after_sweep: swept.open_grants,
    })
}

/// The story's node: a local node that keeps a copy of every request frame
/// it receives, as a curious node could, so the canary scan covers what it
/// saw, not only what it kept.
struct Node {
    dir: PathBuf,
    local: LocalNode,
    tap: Tap,
    code: EnrolmentCode,
    /// The resident's enrolment ticket, as staff handed it out.
    ticket: String,
}

impl Node {
    fn relay(&self) -> &Relay {
        self.local.node().relay()
    }
}

/// Act 1: the node starts.
/// Staff register the resident for the period: the ticket handed out with
/// the wristband.
fn start_node(tmp: &Path, period: Period) -> Node {
    let dir = tmp.join("node");
    let (local, tap) = tapped_node(&dir);
    let code = local.enrolment_code().clone();
    let ticket = local
        .issue_ticket(LABEL, period.end_ms)
        .expect("staff issue a ticket")
        .to_string();
    Node {
        dir,
        local,
        tap,
        code,
        ticket,
    }
}

/// Act 1, continued: the phone creates the vault and grants the node fever
/// alerts.
fn create_phone(tmp: &Path, node: &Node, period: Period, rule: FeverRule) -> BoxResult<Device> {
    let (vault, keys) = sled_vault(tmp, "phone", period, 1);
    let mut phone = Device {
        name: "phone",
        vault,
        keys,
        conn: Some(connect(&node.code)),
    };
    let conn = phone.conn.as_mut().ok_or("phone offline")?;
    let ticket: TicketCode = node.ticket.parse()?;
    phone.vault.enrol(
        conn,
        &node.code.node_public,
        &ticket.ticket,
        rule,
        period.start_ms,
    )?;
    Ok(phone)
}

/// Act 2: the wristband pairs through the node, then enrols too (grants
/// live in each device's store, not in the log) so it can send alerts.
/// Returns the band and whether both screens showed the same code.
fn pair_band(
    tmp: &Path,
    node: &Node,
    phone: &mut Device,
    start: i64,
    rule: FeverRule,
    rng: &mut ChaCha20Rng,
) -> BoxResult<(Device, bool)> {
    let band_identity = X25519Identity::generate(rng);
    let phone_conn = phone.conn.as_mut().ok_or("phone offline")?;
    let phone_code =
        phone
            .vault
            .offer_pairing(phone_conn, &band_identity.public_key(), start + MIN)?;
    let mut band_conn = connect(&node.code);
    let (storage, keys) = sled_home(tmp, "band");
    // The band holds the fetched root unused until the resident has
    // compared the codes; here they match, so the band confirms.
    let pending = Vault::fetch_join(&mut band_conn, &band_identity)?;
    let band_code = pending.code();
    if band_code != phone_code {
        pending.reject();
        return Err("the pairing codes differ".into());
    }
    let vault = pending.confirm(
        Box::new(storage),
        Box::new(keys.clone()),
        &mut band_conn,
        rng,
    )?;
    let mut band = Device {
        name: "band",
        vault,
        keys,
        conn: Some(band_conn),
    };
    let band_conn = band.conn.as_mut().ok_or("band offline")?;
    // The same ticket: one vault, one grant, on each of its devices.
    let ticket: TicketCode = node.ticket.parse()?;
    band.vault.enrol(
        band_conn,
        &node.code.node_public,
        &ticket.ticket,
        rule,
        start + 2 * MIN,
    )?;
    Ok((band, phone_code == band_code))
}

/// What the seven days showed.
struct Days {
    /// Readings the band recorded.
    recorded: usize,
    /// The canary notes written during the partition.
    canaries: Vec<String>,
    heal: Heal,
    alerts: Alerts,
}

/// Acts 3 to 6, hour by hour as they interleave: the band's readings and
/// the phone's evening check-ins every day; on the partition day the band
/// is cut off, both devices edit the same things apart, and at its end the
/// heal and the resident's resolution; hourly syncs and the alerts they
/// send once the fever starts.
fn live_the_days(
    node: &Node,
    phone: &mut Device,
    band: &mut Device,
    start: i64,
    rule: FeverRule,
) -> BoxResult<Days> {
    let mut recorded = 0usize;
    // The reading both devices will edit during the partition: day 1, 20:00.
    let mut contested: Option<ReadingId> = None;
    let mut canaries: Vec<String> = vec![];
    let mut heal = Heal {
        seen: (0, 0),
        after: (usize::MAX, usize::MAX),
        cough: (false, false),
    };
    let mut alerts = Alerts::default();
    for day in 0..7 {
        let day_start = start + day * DAY;
        if day == PARTITION_DAY
            && let Some(c) = band.conn.take()
        {
            c.close();
        }
        for hour in 0..24 {
            let hour_start = day_start + hour * HOUR;
            recorded += record_hour(band, day, day_start, hour, &mut contested)?;
            if day == PARTITION_DAY && (hour == 9 || hour == 10) {
                let r = contested.ok_or("no contested reading")?;
                canaries.push(edit_apart(phone, band, r, day_start, hour)?);
            }
            if day == PARTITION_DAY && hour == 23 {
                let r = contested.ok_or("no contested reading")?;
                heal = heal_and_resolve(node, phone, band, r, day_start, &canaries[0])?;
            }
            if hour == 21 {
                let (s, sev) = evening_check_in(day);
                phone.vault.check_in(Day::of(day_start), s, sev)?;
            }
            sync_and_alert(
                node,
                phone,
                band,
                hour,
                hour_start + HOUR - MIN,
                rule,
                &mut alerts,
            )?;
        }
    }
    Ok(Days {
        recorded,
        canaries,
        heal,
        alerts,
    })
}

/// Act 3: the band's readings for one hour of `day`; notes the reading
/// the partition will contest. Returns how many it recorded.
fn record_hour(
    band: &mut Device,
    day: i64,
    day_start: i64,
    hour: i64,
    contested: &mut Option<ReadingId>,
) -> BoxResult<usize> {
    let mut recorded = 0;
    for m in (hour * 60..hour * 60 + 60).step_by(VITALS as usize) {
        let t = day_start + m * MIN;
        for (metric, value) in readings_at(day * 1440 + m) {
            let id = band.vault.record(metric, value, metric.unit(), t)?;
            recorded += 1;
            if day == 0 && m == 20 * 60 && metric == Metric::BodyTemperature {
                *contested = Some(id);
            }
        }
    }
    Ok(recorded)
}

/// Act 4, the partition: the same check-in and the same reading, edited
/// apart, the phone at 09:00 and the cut-off band at 10:00. Returns the
/// canary note written.
fn edit_apart(
    phone: &mut Device,
    band: &mut Device,
    contested: ReadingId,
    day_start: i64,
    hour: i64,
) -> BoxResult<String> {
    let today = Day::of(day_start);
    if hour == 9 {
        let mut tag = [0u8; 4];
        getrandom::fill(&mut tag)?;
        let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let note = format!("CANARY-{tag}: measured right after a hot shower");
        phone
            .vault
            .check_in(today, Symptom::Cough, Severity::Severe)?;
        phone.vault.annotate(contested, &note)?;
        Ok(note)
    } else {
        let note = "CANARY-band: strap was loose";
        band.vault.check_in(today, Symptom::Cough, Severity::Mild)?;
        band.vault.annotate(contested, note)?;
        band.vault
            .retract(contested, "off-wrist reading", day_start + hour * HOUR)?;
        Ok(note.to_owned())
    }
}

/// Conflicts on (phone, band) right after the heal and after the resident
/// resolved them, and whether the cough check-in was among them.
struct Heal {
    seen: (usize, usize),
    after: (usize, usize),
    cough: (bool, bool),
}

/// Act 5, at the end of the partition day: the band reconnects, both
/// sync, and the resident resolves the conflicts on the phone.
fn heal_and_resolve(
    node: &Node,
    phone: &mut Device,
    band: &mut Device,
    contested: ReadingId,
    day_start: i64,
    phone_note: &str,
) -> BoxResult<Heal> {
    band.conn = Some(connect(&node.code));
    band.sync()?;
    phone.sync()?;
    let cough =
        |c: &Conflict| matches!(c, Conflict::CheckIn { symptom, .. } if *symptom == Symptom::Cough);
    let (on_phone, on_band) = (phone.vault.log().conflicts(), band.vault.log().conflicts());
    let seen = (on_phone.len(), on_band.len());
    let cough = (on_phone.iter().any(cough), on_band.iter().any(cough));
    // The resident decides on the phone: setting a value again resolves
    // its conflict.
    phone
        .vault
        .check_in(Day::of(day_start), Symptom::Cough, Severity::Moderate)?;
    phone.vault.annotate(contested, phone_note)?;
    phone.sync()?;
    band.sync()?;
    let after = (
        phone.vault.log().conflicts().len(),
        band.vault.log().conflicts().len(),
    );
    Ok(Heal { seen, after, cough })
}

/// What the alert deliveries showed.
#[derive(Default)]
struct Alerts {
    /// The inbox's length after the last delivery.
    inbox_len: usize,
    /// The devices that delivered alerts, and the deliveries the node
    /// acknowledged without storing them again.
    senders: Vec<&'static str>,
    merged_acks: usize,
    fever_onset: Option<i64>,
}

/// Act 6: hourly the band syncs and sends the alerts that are due (none
/// until the fever); every 6 hours the phone does too. A device that is
/// cut off skips its turn.
fn sync_and_alert(
    node: &Node,
    phone: &mut Device,
    band: &mut Device,
    hour: i64,
    tick: i64,
    rule: FeverRule,
    alerts: &mut Alerts,
) -> BoxResult<()> {
    let mut devices = vec![band];
    if hour % 6 == 5 {
        devices.push(phone);
    }
    for d in devices {
        let Some(conn) = d.conn.as_mut() else {
            continue;
        };
        d.vault.sync(conn)?;
        let r = d.vault.send_alerts(conn, &node.code.node_public, tick)?;
        if r.delivered == 0 && r.pending == 0 {
            continue;
        }
        let inbox = node.relay().inbox()?;
        if inbox.len() > alerts.inbox_len {
            let episodes = d.vault.log().fever_episodes(&rule);
            let e = episodes.last().ok_or("an alert without an episode")?;
            alerts.fever_onset.get_or_insert(e.onset_ms);
        } else {
            alerts.merged_acks += r.delivered;
        }
        if !alerts.senders.contains(&d.name) {
            alerts.senders.push(d.name);
        }
        alerts.inbox_len = inbox.len();
    }
    Ok(())
}

/// What the devices showed at the period's end.
struct Converged {
    heads_equal: bool,
    views_equal: bool,
    phone_len: usize,
    retracted: usize,
    phone_disclosed: (bool, usize),
    band_disclosed: (bool, usize),
    phone_disclosed_pairing: bool,
}

/// Act 7: the end of the period (device time): a last sync, then what the
/// devices hold and disclosed.
fn end_the_period(phone: &mut Device, band: &mut Device, end: i64) -> BoxResult<Converged> {
    for _ in 0..2 {
        band.sync()?;
        phone.sync()?;
    }
    assert!(phone.vault.is_due(end) && band.vault.is_due(end));
    let heads_equal = phone.vault.heads() == band.vault.heads();
    let view = phone.vault.log().view();
    let views_equal = view == band.vault.log().view();
    let phone_disclosures = phone.vault.disclosures()?;
    Ok(Converged {
        heads_equal,
        views_equal,
        phone_len: phone.vault.log().len(),
        retracted: view.retractions.len(),
        phone_disclosed: disclosed(&phone_disclosures),
        band_disclosed: disclosed(&band.vault.disclosures()?),
        phone_disclosed_pairing: phone_disclosures
            .iter()
            .any(|x| matches!(x, Disclosure::Pairing { .. })),
    })
}

/// Whether a disclosure log lists the node's grant, and how many alerts
/// it lists as sent.
fn disclosed(d: &[Disclosure]) -> (bool, usize) {
    let grant = d
        .iter()
        .any(|x| matches!(x, Disclosure::Grant { label, .. } if label == LABEL));
    let sent = d
        .iter()
        .filter(|x| matches!(x, Disclosure::AlertSent { .. }))
        .count();
    (grant, sent)
}

/// What the node held before anyone deleted anything.
struct Held {
    mailbox: (i64, u64, u64),
    /// The node's copy of every request frame it received so far.
    frames: Vec<Vec<u8>>,
    canary_hits: usize,
    inbox: Vec<InboxEntry>,
    grant_labels: Vec<String>,
}

/// Act 7, the node's side: its mailbox, grants and inbox, and the canary
/// notes found in its files and in the frames it received.
fn what_the_node_holds(node: &Node, vault_id: &[u8; 16], canaries: &[String]) -> BoxResult<Held> {
    let relay = node.relay();
    let mailbox = relay
        .store()
        .mailbox(vault_id)?
        .ok_or("the node holds no mailbox for the vault")?;
    let frames: Vec<Vec<u8>> = node.tap.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut canary_hits = 0usize;
    for f in files(&node.dir) {
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
    Ok(Held {
        mailbox: (mailbox.expires_ms, mailbox.blobs, mailbox.bytes),
        frames,
        canary_hits,
        inbox: relay.inbox()?,
        grant_labels: relay.grants()?.into_iter().map(|g| g.grant.label).collect(),
    })
}

/// Act 8, the shred: `shred_with_node` asks the node to delete first and
/// keeps its signed receipt in the tombstone; neither call checks the
/// clock (a resident may also shred early), so the compressed end is
/// enough. Returns the receipts that verified and what each device's
/// directory held after, for (phone, band).
fn shred_both(
    tmp: &Path,
    node: &Node,
    devices: [Device; 2],
    end: i64,
) -> BoxResult<([Option<ReceiptBody>; 2], [AfterShred; 2])> {
    let mut receipts = vec![];
    let mut after_shred = vec![];
    for mut d in devices {
        let mut conn = d.conn.take().ok_or("device offline")?;
        let t = d.vault.shred_with_node(&mut conn, &d.keys, end)?;
        conn.close();
        receipts.push(
            t.receipt
                .as_deref()
                .and_then(|r| verify_receipt(&node.code.receipt_key, r).ok()),
        );
        let home = tmp.join(d.name);
        let key = tmp.join(format!("{}.key", d.name));
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
    let receipts = <[_; 2]>::try_from(receipts).map_err(|_| "two receipts")?;
    let after_shred = <[_; 2]>::try_from(after_shred).map_err(|_| "two devices")?;
    Ok((receipts, after_shred))
}

/// What the node kept after the shred and its sweep.
struct Swept {
    /// No mailbox, vault, grant, alert or grant key is left.
    keeps_nothing: bool,
    canary_after: usize,
    /// The indices of the copied grant frames whose alert key still
    /// unwraps with what is left in the node's directory.
    open_grants: Vec<usize>,
}

/// Act 9, the node's sweep at the period's end: its sweeper runs on a
/// timer against the real clock, and the real end is days away, so it is
/// called here with the end's time. It would delete the mailbox and grant
/// had the devices not asked; here it finds the leftovers. Then a curious
/// node's copy of the grants it received (`frames`): does anything left in
/// its directory still unwrap their alert keys?
fn sweep(node: &Node, vault_id: &[u8; 16], frames: &[Vec<u8>], end: i64) -> BoxResult<Swept> {
    let relay = node.relay();
    relay.sweep(end, 0)?;
    let keys_left = GrantKeys::open(&node.dir.join("grant-keys"), [0; 32])?;
    let grants = frames.iter().filter_map(|f| match decode_request(f) {
        Ok(Request::Grant(g)) => Some(g),
        _ => None,
    });
    let mut open_grants = vec![];
    for (i, g) in grants.enumerate() {
        let unwraps = keys_left.load(&g.grant_key).is_some_and(|k| {
            WrappedKey::from_slice(&g.wrapped_key).is_ok_and(|w| unwrap::<AlertKey>(&k, &w).is_ok())
        });
        if unwraps {
            open_grants.push(i);
        }
    }
    let keeps_nothing = relay.store().mailbox(vault_id)?.is_none()
        && relay.store().vaults()?.is_empty()
        && relay.grants()?.is_empty()
        && relay.inbox()?.is_empty()
        && files(&node.dir.join("grant-keys")).is_empty();
    let mut canary_after = 0;
    for f in files(&node.dir) {
        canary_after += usize::from(contains(&std::fs::read(f)?, b"CANARY"));
    }
    Ok(Swept {
        keeps_nothing,
        canary_after,
        open_grants,
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
    // Staff never acknowledged the two alerts: the shred keeps them,
    // marked, until the sweep at the period's end (issue 14, finding 5).
    assert_eq!(
        (phone.grants, phone.alerts, phone.kept_unseen_alerts),
        (1, 0, 2)
    );
    // The band's finds nothing left to delete. The same two alerts still
    // wait, but its receipt does not count them: the grant and its key are
    // gone, so nothing proves the band's claim to it any more, and a count
    // given without proof would tell anyone who names a grant id whether
    // its resident had an unseen fever (spec §13).
    assert_eq!(
        (
            band.blobs,
            band.grants,
            band.alerts,
            band.kept_unseen_alerts
        ),
        (0, 0, 0, 0)
    );
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
