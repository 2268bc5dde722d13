//! A resident's week in a few steps, against a community node started in
//! this process: staff register the resident (an enrolment ticket), the
//! resident creates the vault, records, enrols with the ticket, syncs,
//! records a fever (the alert reaches the node's inbox, under the label
//! staff set), then shreds.
//!
//! Run with `cargo run --example quickstart`.

use std::error::Error;
use std::time::Duration;

use vigil::node::LocalNode;
use vigil::{DeviceConnection, FeverRule, FileKeyStore, Metric, Period, Vault, verify_receipt};

const MIN: i64 = 60_000;
const DAY: i64 = 24 * 60 * MIN;

fn main() -> Result<(), Box<dyn Error>> {
    let tmp = std::env::temp_dir().join(format!("vigil-quickstart-{}", std::process::id()));

    // The community node: relay, fever-alert inbox, deletion receipts.
    let node = LocalNode::start_on_loopback(&tmp.join("node"))?;
    let code = node.enrolment_code().clone();
    println!("node:  listening on {}", node.local_addr());

    // The node checks the period against its clock, so it contains now.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let start = now.as_millis() as i64 - DAY;
    let period = Period::days(start, 7);

    // 1. Create: the vault in a directory, its root key in a file beside it.
    let keys = FileKeyStore::new(tmp.join("phone.key"));
    let mut vault = Vault::create(
        &tmp.join("phone"),
        period,
        Box::new(keys.clone()),
        &mut vigil::os_rng(),
    )?;
    println!("phone: created vault {}", vault.vault_id());

    // 2. Record: a morning's readings.
    for (i, temp) in [36.6, 36.8, 36.7].into_iter().enumerate() {
        let t = start + (8 * 60 + 10 * i as i64) * MIN;
        vault.record(
            Metric::BodyTemperature,
            temp,
            Metric::BodyTemperature.unit(),
            t,
        )?;
    }
    vault.record(
        Metric::HeartRate,
        64.0,
        Metric::HeartRate.unit(),
        start + 490 * MIN,
    )?;
    println!("phone: recorded {} readings", vault.log().len());

    // 3. Enrol: staff register the resident and hand out a one-time ticket;
    // with it the node keeps the vault's mailbox and may receive fever
    // alerts for this period, nothing else.
    let ticket = node.issue_ticket("Ana, flat 12B", period.end_ms)?;
    println!("staff: ticket for \"Ana, flat 12B\" issued");
    let mut conn = DeviceConnection::connect(&ticket.node, Duration::from_secs(5))?;
    let rule = FeverRule::default();
    let grant = vault.enrol(
        &mut conn,
        &code.node_public,
        &ticket.ticket,
        rule,
        start + 500 * MIN,
    )?;
    println!(
        "phone: enrolled as {:?}, fever alerts at ≥ {} °C",
        grant.label, rule.threshold_c
    );

    // 4. Sync: the log leaves the phone sealed, for the resident's other devices.
    let report = vault.sync(&mut conn)?;
    println!("phone: synced, pushed {} sealed bundle(s)", report.pushed);

    // 5. Alert: a fever through the afternoon; the rule confirms it and the
    // alert goes to the node with the next delivery.
    let fever = start + 14 * 60 * MIN;
    for m in (0..90).step_by(10) {
        let temp = 38.2 + (m % 3) as f64 * 0.1;
        vault.record(
            Metric::BodyTemperature,
            temp,
            Metric::BodyTemperature.unit(),
            fever + m * MIN,
        )?;
    }
    let sent = vault.send_alerts(&mut conn, &code.node_public, fever + 90 * MIN)?;
    println!("phone: {} alert(s) delivered", sent.delivered);
    for e in node.node().relay().inbox()? {
        println!(
            "node:  inbox: {}, label {:?}, level {}",
            e.describe(),
            e.label,
            e.level
        );
    }

    // 6. Shred: the node deletes the mailbox and grant and signs a receipt;
    // then the root key is destroyed and the store deleted.
    let tombstone = vault.shred_with_node(&mut conn, &keys, period.end_ms)?;
    conn.close();
    let receipt = tombstone.receipt.as_deref().ok_or("no receipt")?;
    let body = verify_receipt(&code.receipt_key, receipt).map_err(|_| "bad receipt")?;
    println!(
        "phone: shredded; the node's signed receipt: {} blob(s), {} grant(s), {} alert(s) deleted",
        body.blobs, body.grants, body.alerts
    );
    println!(
        "node:  inbox now holds {} alert(s)",
        node.node().relay().inbox()?.len()
    );

    node.shutdown();
    std::fs::remove_dir_all(&tmp)?;
    Ok(())
}
