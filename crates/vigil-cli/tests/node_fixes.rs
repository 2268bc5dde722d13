//! What a new operator ran into with `vigil-node` (issue 17), each played
//! as that operator: the serve log, acknowledgements with a name, residents
//! who ended early, restarts on port 0, a busy port, host names, long labels.

mod common;
use common::*;

use assert_cmd::Command;
use serde_json::Value;
use vigil_device::Period;
use vigil_log::{FeverRule, Metric, Unit};
use vigil_net::{DeviceConnection, TicketCode};
use vigil_testkit::{connect, mem_vault};

fn vigil_node() -> Command {
    let mut c = Command::cargo_bin("vigil-node").unwrap();
    c.env_remove("RUST_LOG");
    c
}

fn ok(args: &[&str]) -> String {
    let out = vigil_node().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "vigil-node {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A failure with `code`; its last stderr line (serve logs before it).
fn fails(args: &[&str], code: i32) -> String {
    let out = vigil_node().args(args).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "vigil-node {args:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("error: "), "{stderr}");
    last
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap()
}

fn register(d: &str, label: &str) -> TicketCode {
    let j = json(&[
        "residents",
        "add",
        "--label",
        label,
        "--period-end",
        &rfc3339(period_start() + 7 * DAY),
        "--data",
        d,
        "--json",
    ]);
    j["ticket"].as_str().unwrap().parse().unwrap()
}

fn enrol(phone: &mut vigil_device::Vault, ticket: &TicketCode) -> DeviceConnection {
    let mut conn = connect(&ticket.node);
    phone
        .enrol(
            &mut conn,
            &ticket.node.node_public,
            &ticket.ticket,
            FeverRule::default(),
            now_ms(),
        )
        .unwrap();
    conn
}

/// A resident with a fever on day 2 (started and ended): 2 alerts.
fn resident_with_a_fever(d: &str, label: &str, seed: u64) {
    let start = period_start();
    let ticket = register(d, label);
    let (mut phone, _) = mem_vault(Period::days(start, 7), seed);
    let mut conn = enrol(&mut phone, &ticket);
    for m in (8 * 60..18 * 60).step_by(10) {
        let fever = (10 * 60..13 * 60).contains(&m);
        let temp = if fever { 38.4 } else { 36.6 };
        phone
            .record(
                Metric::BodyTemperature,
                temp,
                Unit::Celsius,
                start + DAY + m * MIN,
            )
            .unwrap();
    }
    let report = phone
        .send_alerts(&mut conn, &ticket.node.node_public, now_ms())
        .unwrap();
    assert_eq!(report.delivered, 2, "{report:?}");
    conn.close();
}

#[test]
fn the_serve_log_names_the_alert_its_resident_and_what_happened() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let log = tmp.path().join("serve.log");
    let node = Node::start(&["--data", d, "--listen", "127.0.0.1:0"], &log);
    resident_with_a_fever(d, "Ana \"12B\"", 21);
    let list = json(&["alerts", "--data", d, "--json"]);
    assert!(node.terminate().success());
    let log = std::fs::read_to_string(&log).unwrap();
    let stored: Vec<&str> = log.lines().filter(|l| l.contains("alert stored")).collect();
    assert_eq!(stored.len(), 2, "{log}");
    for a in list.as_array().unwrap() {
        let id = a["id"].as_str().unwrap();
        let what = a["what"].as_str().unwrap();
        let line = stored
            .iter()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("no log line names alert {id}: {log}"));
        assert!(line.contains(what), "{line}");
        // The label, quoted and escaped, as the resident's quotes cannot
        // break out of it.
        assert!(line.contains(r#""Ana \"12B\"""#), "{line}");
        assert!(!line.contains("kind="), "{line}");
    }
}

#[test]
fn an_acknowledgement_carries_a_name_and_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let node = Node::start(
        &["--data", d, "--listen", "127.0.0.1:0"],
        &tmp.path().join("serve.log"),
    );
    resident_with_a_fever(d, "Ben, flat 3", 22);
    let list = json(&["alerts", "--data", d, "--json"]);
    let id = list[0]["id"].as_str().unwrap().to_owned();
    // Who acknowledged is not optional, and is plain text of bounded length.
    fails(&["alerts", "ack", &id, "--data", d], 2);
    let line = fails(
        &["alerts", "ack", &id, "--by", "Mei\u{1b}[2J", "--data", d],
        2,
    );
    assert!(line.contains("control"), "{line}");
    let long = "n".repeat(2000);
    let line = fails(
        &[
            "alerts", "ack", &id, "--by", "Mei", "--note", &long, "--data", d,
        ],
        2,
    );
    assert!(line.contains("at most"), "{line}");
    fails(&["alerts", "ack", &id, "--by", "  ", "--data", d], 2);
    assert!(json(&["alerts", "--data", d, "--json", "--unacked"])[1]["id"].is_string());

    let acked = ok(&[
        "alerts",
        "ack",
        &id,
        "--by",
        "Mei Lin",
        "--note",
        "called her, on her way to the clinic",
        "--data",
        d,
    ]);
    assert!(acked.contains("Mei Lin"), "{acked}");
    // A second acknowledgement does not overwrite the first.
    let again = json(&["alerts", "ack", &id, "--by", "Bob", "--data", d, "--json"]);
    assert_eq!(again["already"], true);
    assert_eq!(again["alert"]["acked_by"], "Mei Lin");
    assert!(node.terminate().success());

    // Stored with the alert: the stopped node shows it too.
    let list = json(&["alerts", "--data", d, "--json"]);
    let a = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.as_str())
        .unwrap();
    assert_eq!(a["acked_by"], "Mei Lin");
    assert_eq!(a["ack_note"], "called her, on her way to the clinic");
    let other = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] != id.as_str())
        .unwrap();
    assert!(other["acked_by"].is_null() && other["ack_note"].is_null());
    let text = ok(&["alerts", "--data", d]);
    assert!(text.contains("by Mei Lin"), "{text}");
    assert!(
        text.contains(&format!(
            "{id}  Mei Lin: called her, on her way to the clinic"
        )),
        "{text}"
    );
}

#[test]
fn a_resident_who_ended_monitoring_early_stays_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let node = Node::start(
        &["--data", d, "--listen", "127.0.0.1:0"],
        &tmp.path().join("serve.log"),
    );
    let ticket = register(d, "Cai, flat 9");
    let (mut phone, keys) = mem_vault(Period::days(period_start(), 7), 23);
    let mut conn = enrol(&mut phone, &ticket);
    phone.shred_with_node(&mut conn, &keys, now_ms()).unwrap();
    conn.close();
    assert!(node.terminate().success());
    // Not only with --all: staff must see that she stopped, not lose her.
    let text = ok(&["residents", "--data", d]);
    assert!(
        text.contains("Cai, flat 9") && text.contains("ended early"),
        "{text}"
    );
    let r = json(&["residents", "--data", d, "--json"]);
    assert_eq!(r.as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r[0]["status"], "ended early", "{r}");
    assert!(r[0]["threshold_c"].is_null(), "the grant is gone: {r}");
}

#[test]
fn a_node_restarted_on_port_0_comes_back_on_the_port_its_codes_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let log = tmp.path().join("serve.log");
    let first = Node::start(&["--data", d, "--listen", "127.0.0.1:0"], &log);
    let (addr, code) = (first.addr.clone(), first.code.clone());
    assert!(first.terminate().success());
    let again = Node::start(&["--data", d, "--listen", "127.0.0.1:0"], &log);
    assert_eq!(again.addr, addr, "residents' codes hold {addr}");
    assert_eq!(again.code, code);
    assert!(again.terminate().success());
}

#[test]
fn serve_on_a_busy_port_leaves_no_data_directory_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let line = fails(&["serve", "--data", d, "--listen", &listen], 1);
    assert!(line.contains(&listen), "{line}");
    assert!(!data.exists(), "a failed first start created {d}");
    drop(held);
}

#[test]
fn serve_accepts_host_names_and_says_which_do_not_resolve() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let node = Node::start(
        &[
            "--data",
            d,
            "--listen",
            "localhost:0",
            "--advertise",
            "localhost:4433",
        ],
        &tmp.path().join("serve.log"),
    );
    assert!(
        node.addr.starts_with("127.0.0.1:") || node.addr.starts_with("[::1]:"),
        "{}",
        node.addr
    );
    assert!(node.code.contains("/127.0.0.1:4433/") || node.code.contains("/[::1]:4433/"));
    assert!(node.terminate().success());
    let other = tmp.path().join("other");
    let o = other.to_str().unwrap();
    let line = fails(
        &["serve", "--data", o, "--listen", "nowhere.invalid:4433"],
        2,
    );
    assert!(
        line.contains("nowhere.invalid") && line.contains("resolve"),
        "{line}"
    );
    let line = fails(&["serve", "--data", o, "--listen", "localhost"], 2);
    assert!(line.contains("port"), "{line}");
    assert!(!other.exists());
}

#[test]
fn long_labels_are_cut_in_tables_and_whole_in_json() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let node = Node::start(
        &["--data", d, "--listen", "127.0.0.1:0"],
        &tmp.path().join("serve.log"),
    );
    // As long as staff may type (80 characters).
    // (No trailing space: the node trims labels.)
    let label = "Dona Ana Maria Costa e Silva, flat 12B, "
        .repeat(2)
        .trim_end()
        .to_owned()
        + "C";
    assert_eq!(label.chars().count(), 80);
    resident_with_a_fever(d, &label, 24);
    assert!(node.terminate().success());
    for cmd in ["residents", "alerts"] {
        let text = ok(&[cmd, "--data", d]);
        assert!(!text.contains(&label), "{cmd}: the whole label: {text}");
        assert!(text.contains("Dona Ana Maria Costa"), "{text}");
        assert!(text.contains('…'), "{text}");
        for line in text.lines() {
            assert!(
                line.chars().count() <= 140,
                "{cmd}: {} columns: {line}",
                line.chars().count()
            );
        }
        let j = json(&[cmd, "--data", d, "--json"]);
        assert_eq!(j[0]["label"], label.as_str());
    }
}
