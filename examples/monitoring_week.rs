//! A whole monitoring week on one machine, compressed into seconds:
//! `cargo run --release --example monitoring_week` (add `--quick`, or set
//! `VIGIL_QUICK=1`, for a lighter workload).
//!
//! In one process: a community node on loopback QUIC, a phone that creates
//! the period's vault and a wristband paired to it through the node. The
//! wristband measures every minute; the phone does daily check-ins. On day 2
//! the wristband is cut off and both devices edit the same check-in and the
//! same reading: the conflicts show after the heal and the resident
//! resolves them. On day 3 a fever reaches the node's inbox. At the
//! period's end both devices shred and the node deletes. `tests/
//! monitoring_week.rs` runs the same story and checks every claim.
//!
//! Two clocks: the node reads the real clock, so the period is placed
//! around now (it starts at midnight UTC two days ago); the devices take
//! every time as a parameter, so they live the compressed week inside it.

use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vigil::node::LocalNode;
use vigil::{
    Conflict, Day, DeviceConnection, EnrolmentCode, FeverRule, FileKeyStore, Metric, Period,
    ReadingId, Severity, SledStorage, Symptom, TicketCode, Vault, X25519Identity, verify_receipt,
};

type BoxResult<T> = Result<T, Box<dyn Error>>;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// What the resident consents to share with the node, with every alert.
const LABEL: &str = "resident #0412, flat 12B";
/// The day (0-based) the wristband is cut off, and the day of the fever.
const PARTITION_DAY: i64 = 1;
const FEVER_DAY: i64 = 2;

fn main() -> BoxResult<()> {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var("VIGIL_QUICK").is_ok_and(|v| v == "1");
    let began = Instant::now();
    let mut week = setup(if quick { 10 } else { 1 })?;
    pair_the_band(&mut week)?;
    for day in 0..7 {
        live_a_day(&mut week, day)?;
    }
    end_of_the_period(week)?;
    println!("\n(ran in {:.1} s)", began.elapsed().as_secs_f64());
    Ok(())
}

/// One device: its vault, its root key's file, its connection to the node
/// (none while it is out of reach).
struct Device {
    name: &'static str,
    vault: Vault,
    keys: FileKeyStore,
    dir: PathBuf,
    conn: Option<DeviceConnection>,
}

/// Everything the story carries from one act to the next.
struct Week {
    tmp: PathBuf,
    node: LocalNode,
    code: EnrolmentCode,
    /// The resident's enrolment ticket (its secret: the demo's own).
    ticket: String,
    start: i64,
    /// Minutes between the wristband's readings.
    every: i64,
    phone: Device,
    band: Option<Device>,
    /// The reading both devices edit during the partition.
    contested: Option<ReadingId>,
}

impl Week {
    fn band(&mut self) -> &mut Device {
        self.band.as_mut().expect("the band is paired first")
    }

    /// A device-side time as "day N HH:MM" of the period.
    fn at(&self, t: i64) -> String {
        let off = t - self.start;
        let (day, min) = (off.div_euclid(DAY) + 1, off.rem_euclid(DAY) / MIN);
        format!("day {day} {:02}:{:02}", min / 60, min % 60)
    }
}

fn connect(code: &EnrolmentCode) -> BoxResult<DeviceConnection> {
    Ok(DeviceConnection::connect(code, Duration::from_secs(5))?)
}

fn date(t: i64) -> String {
    let (y, m, d) = Day::of(t).ymd();
    format!("{y}-{m:02}-{d:02}")
}

/// The node, the period, and the phone's vault with its grant to the node.
fn setup(every: i64) -> BoxResult<Week> {
    let tmp = std::env::temp_dir().join(format!("vigil-week-{}", std::process::id()));
    println!(
        "Vigil: a monitoring week on one machine (a reading every {every} min, in {})",
        tmp.display()
    );
    let node = LocalNode::start_on_loopback(&tmp.join("node"))?;
    let code = node.enrolment_code().clone();
    println!(
        "\nsetup\n  node    listening on {} (QUIC, TLS 1.3 pinned by the enrolment code)",
        node.local_addr()
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let start = now - now.rem_euclid(DAY) - 2 * DAY;
    let period = Period::days(start, 7);
    println!(
        "  period  {} to {} (UTC), around the real now; the devices live it compressed",
        date(period.start_ms),
        date(period.end_ms)
    );

    let dir = tmp.join("phone");
    let keys = FileKeyStore::new(tmp.join("phone.key"));
    let vault = Vault::create(
        &dir.join("vault"),
        period,
        Box::new(keys.clone()),
        &mut vigil::os_rng(),
    )?;
    let mut phone = Device {
        name: "phone",
        vault,
        keys,
        dir,
        conn: Some(connect(&code)?),
    };
    // Staff register the resident and hand out the ticket with the band.
    let ticket = node.issue_ticket(LABEL, period.end_ms)?;
    println!(
        "  staff   registered the resident as {LABEL:?}: ticket {}…",
        &ticket.to_string()[..40]
    );
    let rule = FeverRule::default();
    let conn = phone.conn.as_mut().ok_or("phone offline")?;
    let grant = phone
        .vault
        .enrol(conn, &code.node_public, &ticket.ticket, rule, start)?;
    println!(
        "  phone   created the vault {} and granted the node fever alerts (≥ {} °C, shown to staff as {:?})",
        phone.vault.vault_id(),
        rule.threshold_c,
        grant.label
    );
    Ok(Week {
        tmp,
        node,
        code,
        ticket: ticket.to_string(),
        start,
        every,
        phone,
        band: None,
        contested: None,
    })
}

/// The band shows its key; the phone leaves the root wrapped to it at the
/// node; both show a code; the band enrols too, so it can alert itself.
fn pair_the_band(w: &mut Week) -> BoxResult<()> {
    let identity = X25519Identity::generate(&mut vigil::os_rng());
    let conn = w.phone.conn.as_mut().ok_or("phone offline")?;
    let phone_code = w
        .phone
        .vault
        .offer_pairing(conn, &identity.public_key(), w.start + MIN)?;
    let dir = w.tmp.join("band");
    std::fs::create_dir_all(&dir)?;
    let keys = FileKeyStore::new(w.tmp.join("band.key"));
    let mut conn = connect(&w.code)?;
    let storage = SledStorage::open(&dir.join("vault"))?;
    // The band holds the fetched root unused until the codes are compared.
    let pending = Vault::fetch_join(&mut conn, &identity)?;
    let band_code = pending.code();
    let same = if phone_code == band_code {
        "match"
    } else {
        "MISMATCH"
    };
    println!("  pairing phone shows {phone_code}, band shows {band_code}: {same}");
    if phone_code != band_code {
        pending.reject();
        return Err("the pairing codes differ: not joining".into());
    }
    let mut vault = pending.confirm(
        Box::new(storage),
        Box::new(keys.clone()),
        &mut conn,
        &mut vigil::os_rng(),
    )?;
    // The band enrols with the same ticket: it belongs to the vault.
    let ticket: TicketCode = w.ticket.parse()?;
    vault.enrol(
        &mut conn,
        &w.code.node_public,
        &ticket.ticket,
        FeverRule::default(),
        w.start + 2 * MIN,
    )?;
    println!(
        "  band    joined vault {} and enrolled with the node",
        vault.vault_id()
    );
    w.band = Some(Device {
        name: "band",
        vault,
        keys,
        dir,
        conn: Some(conn),
    });
    Ok(())
}

/// One day: the band measures all day and syncs hourly, the phone every six
/// hours; day 2 has the partition, day 3 the fever.
fn live_a_day(w: &mut Week, day: i64) -> BoxResult<()> {
    let day_start = w.start + day * DAY;
    let title = match day {
        PARTITION_DAY => ": partition",
        FEVER_DAY => ": fever",
        _ => "",
    };
    println!("\nday {} ({}){title}", day + 1, date(day_start));
    if day == PARTITION_DAY {
        if let Some(c) = w.band().conn.take() {
            c.close();
        }
        println!("  band    out of reach from 00:00: records on, syncs nothing");
    }
    let mut recorded = 0;
    for hour in 0..24 {
        recorded += measure_an_hour(w, day, hour)?;
        match (day, hour) {
            (PARTITION_DAY, 9) => phone_edits_apart(w, day_start)?,
            (PARTITION_DAY, 10) => band_edits_apart(w, day_start + hour * HOUR)?,
            (PARTITION_DAY, 23) => heal_and_resolve(w, day_start)?,
            _ => {}
        }
        if hour == 21 {
            let (symptom, severity) = evening_check_in(day);
            w.phone
                .vault
                .check_in(Day::of(day_start), symptom, severity)?;
        }
        let tick = day_start + hour * HOUR + HOUR - MIN;
        sync_and_alert(w, true, tick)?;
        if hour % 6 == 5 {
            sync_and_alert(w, false, tick)?;
        }
    }
    let (s, sev) = evening_check_in(day);
    println!(
        "  band    {recorded} readings; phone 21:00 check-in {} = {}; the phone's log holds {} readings",
        s.name(),
        sev.name(),
        w.phone.vault.log().len()
    );
    Ok(())
}

/// The band's readings for one hour; returns how many.
fn measure_an_hour(w: &mut Week, day: i64, hour: i64) -> BoxResult<usize> {
    let (every, day_start) = (w.every, w.start + day * DAY);
    let mut n = 0;
    for m in (hour * 60..hour * 60 + 60).step_by(every as usize) {
        let t = day_start + m * MIN;
        for (metric, value) in readings_at(day, m, every) {
            let id = w.band().vault.record(metric, value, metric.unit(), t)?;
            if day == 0 && m == 20 * 60 && metric == Metric::BodyTemperature {
                w.contested = Some(id);
            }
            n += 1;
        }
    }
    Ok(n)
}

/// What the band measures at minute `m` of a day: temperature and heart
/// rate every time, SpO2 and respiratory rate hourly-ish, steps less often;
/// on the fever day 38.2 °C and up from 10:00 to 15:00.
fn readings_at(day: i64, m: i64, every: i64) -> Vec<(Metric, f64)> {
    let fever = day == FEVER_DAY && (600..900).contains(&m);
    let temp = if fever { 38.2 } else { 36.5 } + (m % 7) as f64 * 0.05;
    let mut v = vec![
        (Metric::BodyTemperature, temp),
        (Metric::HeartRate, 60.0 + (m % 40) as f64),
    ];
    if m % (5 * every) == 0 {
        v.push((Metric::SpO2, 95.0 + (m % 5) as f64));
        v.push((Metric::RespiratoryRate, 12.0 + (m % 6) as f64));
    }
    if m % (15 * every) == 0 {
        v.push((Metric::Steps, ((m * 37) % 1500) as f64));
    }
    v
}

/// The phone's evening check-in, one symptom a day.
fn evening_check_in(day: i64) -> (Symptom, Severity) {
    match day {
        0 | 5 => (Symptom::Fatigue, Severity::Mild),
        1 => (Symptom::Headache, Severity::Mild),
        2 => (Symptom::Chills, Severity::Moderate),
        3 => (Symptom::Fatigue, Severity::Moderate),
        4 => (Symptom::MuscleAche, Severity::Mild),
        _ => (Symptom::Headache, Severity::None),
    }
}

/// The phone's cough check-in on the partition day and its note on the
/// contested reading: made apart, then made again to resolve the conflicts.
fn phone_sets_cough(w: &mut Week, day_start: i64, severity: Severity) -> BoxResult<()> {
    let r = w.contested.ok_or("no contested reading")?;
    w.phone
        .vault
        .check_in(Day::of(day_start), Symptom::Cough, severity)?;
    w.phone
        .vault
        .annotate(r, "measured right after a hot shower")?;
    Ok(())
}

/// During the partition, 09:00: the phone's check-in and note.
fn phone_edits_apart(w: &mut Week, day_start: i64) -> BoxResult<()> {
    phone_sets_cough(w, day_start, Severity::Severe)?;
    println!("  phone   09:00 check-in cough = severe; a note on the day 1 20:00 temperature");
    Ok(())
}

/// 10:00: the band's, on the same day and the same reading, which it retracts.
fn band_edits_apart(w: &mut Week, at: i64) -> BoxResult<()> {
    let r = w.contested.ok_or("no contested reading")?;
    let band = w.band();
    band.vault
        .check_in(Day::of(at), Symptom::Cough, Severity::Mild)?;
    band.vault.annotate(r, "strap was loose")?;
    band.vault.retract(r, "off-wrist reading", at)?;
    println!(
        "  band    10:00 check-in cough = mild; its own note on the same reading, which it retracts"
    );
    Ok(())
}

/// 23:59: the band is back; both see the conflicts; the resident decides on
/// the phone (setting a value again resolves its conflict).
fn heal_and_resolve(w: &mut Week, day_start: i64) -> BoxResult<()> {
    w.band().conn = Some(connect(&w.code)?);
    let r = sync(w.band())?;
    let p = sync(&mut w.phone)?;
    println!(
        "  heal    23:59 the band pushes {} bundle(s) and pulls {}; the phone pulls {}",
        r.pushed, r.received, p.received
    );
    for c in w.phone.vault.log().conflicts() {
        println!("  conflict (on both) {}", describe(&c));
    }
    phone_sets_cough(w, day_start, Severity::Moderate)?;
    sync(&mut w.phone)?;
    sync(w.band())?;
    let left = (
        w.phone.vault.log().conflicts().len(),
        w.band().vault.log().conflicts().len(),
    );
    println!(
        "  resolve cough = moderate and the phone's note; conflicts left: {} on the phone, {} on the band",
        left.0, left.1
    );
    Ok(())
}

fn describe(c: &Conflict) -> String {
    match c {
        Conflict::CheckIn {
            day,
            symptom,
            values,
        } => {
            let v: Vec<&str> = values.iter().map(|s| s.name()).collect();
            format!(
                "{} on {}: {}",
                symptom.name(),
                date(day.start_ms()),
                v.join(" | ")
            )
        }
        Conflict::Annotation { values, .. } => {
            format!("note on the reading: {}", values.join(" | "))
        }
    }
}

fn sync(d: &mut Device) -> BoxResult<vigil::SyncReport> {
    let conn = d.conn.as_mut().ok_or("device is offline")?;
    Ok(d.vault.sync(conn)?)
}

/// A device's regular sync, then the alerts that are due; the node's inbox
/// is shown when it grows.
fn sync_and_alert(w: &mut Week, band: bool, tick: i64) -> BoxResult<()> {
    let inbox_before = w.node.node().relay().inbox()?.len();
    let at = w.at(tick);
    let node_public = w.code.node_public;
    let d = if band { w.band() } else { &mut w.phone };
    let Some(conn) = d.conn.as_mut() else {
        return Ok(());
    };
    d.vault.sync(conn)?;
    let r = d.vault.send_alerts(conn, &node_public, tick)?;
    if r.delivered > 0 {
        println!("  {:<7} {at}: sent {} fever alert(s)", d.name, r.delivered);
    }
    for e in w.node.node().relay().inbox()?.iter().skip(inbox_before) {
        println!(
            "  node    inbox +1: {}, {:?}, onset {}, level {}",
            e.describe(),
            e.label,
            w.at(e.onset_ms),
            e.level
        );
    }
    Ok(())
}

/// A last sync; what the node learned; both devices shred with the node's
/// signed receipt; the node sweeps.
fn end_of_the_period(mut w: Week) -> BoxResult<()> {
    let end = w.phone.vault.period().end_ms;
    println!(
        "\nend of the period ({} 00:00 UTC by the devices' clock)",
        date(end)
    );
    for _ in 0..2 {
        sync(w.band())?;
        sync(&mut w.phone)?;
    }
    let band = w.band.take().ok_or("no band")?;
    let equal = w.phone.vault.log().view() == band.vault.log().view();
    println!(
        "  both    the period is over: {}; views equal: {equal}; {} readings",
        w.phone.vault.is_due(end),
        w.phone.vault.log().len()
    );
    let inbox: Vec<_> = w
        .node
        .node()
        .relay()
        .inbox()?
        .iter()
        .map(|e| e.describe())
        .collect();
    let vault_id = w.phone.vault.vault_id();
    if let Some(m) = w.node.node().store().mailbox(vault_id.as_bytes())? {
        println!(
            "  node    learned: a mailbox of {} opaque blob(s), {} bytes; the grant {LABEL:?}; alerts: {}",
            m.blobs,
            m.bytes,
            inbox.join(", ")
        );
    }
    for device in [w.phone, band] {
        shred(device, &w.code, end)?;
    }
    let swept = w.node.node().relay().sweep(end, 0)?;
    println!(
        "  node    sweep at the period's end: {} mailbox(es), {} grant(s) left to delete",
        swept.mailboxes, swept.grants
    );
    w.node.shutdown();
    std::fs::remove_dir_all(&w.tmp)?;
    Ok(())
}

/// Shreds one device, asking the node to delete first, and shows its receipt.
fn shred(d: Device, code: &EnrolmentCode, end: i64) -> BoxResult<()> {
    let mut conn = match d.conn {
        Some(c) => c,
        None => connect(code)?,
    };
    let t = d.vault.shred_with_node(&mut conn, &d.keys, end)?;
    conn.close();
    let receipt = t.receipt.as_deref().ok_or("no receipt")?;
    let r = verify_receipt(&code.receipt_key, receipt)?;
    let left = std::fs::read_dir(d.dir.join("vault"))?.count();
    println!(
        "  {:<7} shredded: root destroyed, {left} file (the tombstone) left; the node's signed receipt: {} blob(s), {} grant(s), {} alert(s) deleted",
        d.name, r.blobs, r.grants, r.alerts
    );
    Ok(())
}
