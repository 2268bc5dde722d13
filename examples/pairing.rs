//! Pair a second device into a vault through a node, and read on it what
//! the first one recorded.
//!
//! Run with `cargo run --example pairing`. It walks through what the
//! resident sees: the tablet's pairing key, the root crossing the node
//! wrapped to that key (the node cannot open it), the 6-digit code both
//! screens show, and the phone's readings on the tablet after a sync.

use std::error::Error;
use std::time::Duration;

use vigil::node::LocalNode;
use vigil::{DeviceConnection, MemStorage, MemoryKeyStore, Metric, Period, Vault, X25519Identity};

fn main() -> Result<(), Box<dyn Error>> {
    let tmp = std::env::temp_dir().join(format!("vigil-pairing-{}", std::process::id()));
    let node = LocalNode::start_on_loopback(&tmp.join("node"))?;
    let code = node.enrolment_code().clone();
    let connect = || DeviceConnection::connect(&code, Duration::from_secs(5));
    let mut rng = vigil::os_rng();

    // The phone creates the period's vault (around now: the node checks it)
    // and records a reading.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let start = now.as_millis() as i64 - 3_600_000;
    let mut phone = Vault::create_with(
        Box::new(MemStorage::new()),
        Period::days(start, 7),
        Box::new(MemoryKeyStore::new()),
        &mut rng,
    )?;
    let temp = Metric::BodyTemperature;
    phone.record(temp, 37.6, temp.unit(), start + 600_000)?;
    println!("phone:  created vault {}, 1 reading", phone.vault_id());

    // The tablet shows its pairing key (as a QR code or text, in an app).
    let tablet_identity = X25519Identity::generate(&mut rng);
    println!(
        "tablet: my pairing key is {:?}",
        tablet_identity.public_key()
    );

    // Staff registered the resident: the ticket lets the node keep the
    // vault's mailbox, through which the devices pair and sync.
    let ticket = node.issue_ticket("Ana, flat 12B", start + 7 * 86_400_000)?;
    let mut phone_conn = connect()?;
    phone.redeem_ticket(&mut phone_conn, &ticket.ticket)?;

    // The phone leaves the root at the node, wrapped to that key.
    let phone_code = phone.offer_pairing(&mut phone_conn, &tablet_identity.public_key(), start)?;
    println!("phone:  left the wrapped root at the node");

    // The tablet takes the offer from the node and shows its code. The root
    // stays unused until the resident says both screens show the same code:
    // someone else who wrote the slot would show up here as a mismatch.
    let mut tablet_conn = connect()?;
    let pending = Vault::fetch_join(&mut tablet_conn, &tablet_identity)?;
    let tablet_code = pending.code();
    println!("phone shows {phone_code}, tablet shows {tablet_code}");
    // An app asks the resident; this example compares the two itself.
    if tablet_code != phone_code {
        pending.reject();
        return Err("the codes differ: not joining".into());
    }
    // Confirmed: the tablet builds its own copy of the vault and syncs.
    let mut tablet = pending.confirm(
        Box::new(MemStorage::new()),
        Box::new(MemoryKeyStore::new()),
        &mut tablet_conn,
        &mut rng,
    )?;
    println!("tablet: codes match, joined");

    // From now on both record, and each sync carries the other's readings.
    tablet.record(temp, 37.2, temp.unit(), start + 1_200_000)?;
    tablet.sync(&mut tablet_conn)?;
    phone.sync(&mut phone_conn)?;
    println!(
        "tablet: vault {}, {} readings; phone: {} readings",
        tablet.vault_id(),
        tablet.log().len(),
        phone.log().len()
    );

    phone_conn.close();
    tablet_conn.close();
    node.shutdown();
    std::fs::remove_dir_all(&tmp)?;
    Ok(())
}
