//! The `vigil-node` program as an operator runs it: `serve` as a real
//! process on a loopback port, a device enrolling and sending a fever alert
//! over QUIC with the library, and the operator commands against the serving
//! node (admin socket) and the stopped one (the store directly).

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::*;

use assert_cmd::Command;
use serde_json::Value;
use vigil_device::Period;
use vigil_log::{FeverRule, Metric, Unit};
use vigil_net::{DeviceConnection, EnrolmentCode, TicketCode};
use vigil_testkit::{connect, mem_vault};

fn vigil_node() -> Command {
    let mut c = Command::cargo_bin("vigil-node").unwrap();
    c.env_remove("RUST_LOG");
    c
}

/// Runs a command that must succeed; its stdout.
fn ok(args: &[&str]) -> String {
    let out = vigil_node().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "vigil-node {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with a one-line `error: ...`; that line.
fn fails(args: &[&str], code: i32) -> String {
    let out = vigil_node().args(args).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "vigil-node {args:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let mut lines: Vec<&str> = stderr.lines().collect();
    if args.first() == Some(&"serve") {
        // `serve` logs (at info by default) before it fails; the error is
        // the last line.
        lines.retain(|l| !l.contains(" INFO "));
    }
    assert_eq!(lines.len(), 1, "one line for {args:?}: {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_owned()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap()
}

/// Staff register a resident: `residents add --json`, the ticket it prints.
fn register(d: &str, label: &str, period_end: &str) -> TicketCode {
    let j = json(&[
        "residents",
        "add",
        "--label",
        label,
        "--period-end",
        period_end,
        "--data",
        d,
        "--json",
    ]);
    assert_eq!(j["label"], label);
    j["ticket"].as_str().unwrap().parse().unwrap()
}

/// The resident's device enrols with `ticket` (the library, as an app).
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

/// Staff register a resident labelled `label` for the week; the phone
/// enrols with the ticket and reports a fever on day 2, 10:00–13:00, with
/// readings until 18:00 (so the episode also ends).
fn resident_with_a_fever(d: &str, label: &str) -> usize {
    let start = period_start();
    let ticket = register(d, label, &rfc3339(start + 7 * DAY));
    let code = ticket.node.clone();
    let (mut phone, _) = mem_vault(Period::days(start, 7), 7);
    let mut conn = enrol(&mut phone, &ticket);
    let day = start + DAY;
    for m in (8 * 60..18 * 60).step_by(10) {
        let t = day + m * MIN;
        let fever = (10 * HOUR..13 * HOUR).contains(&(m * MIN));
        let temp = if fever { 38.4 } else { 36.6 };
        phone
            .record(Metric::BodyTemperature, temp, Unit::Celsius, t)
            .unwrap();
    }
    let report = phone
        .send_alerts(&mut conn, &code.node_public, now_ms())
        .unwrap();
    assert_eq!(report.pending, 0);
    conn.close();
    report.delivered
}

/// A resident whose period staff set to end in a few seconds enrols; returns
/// once it has ended (the node keeps the grant until a sweep).
fn resident_whose_period_ended(d: &str) {
    let ticket = register(d, "Ben, flat 3", "3s");
    let (mut phone, _) = mem_vault(Period::days(period_start(), 7), 8);
    enrol(&mut phone, &ticket).close();
    let ended = now_ms() + 3_500;
    while now_ms() < ended {
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn lines_with_blocks(s: &str) -> usize {
    s.lines()
        .filter(|l| l.contains('█') || l.contains('▀') || l.contains('▄'))
        .count()
}

#[test]
fn a_node_serves_takes_a_fever_alert_and_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let node = Node::start(
        &["--data", d, "--listen", "127.0.0.1:0"],
        &tmp.path().join("serve.log"),
    );
    assert!(node.addr.starts_with("127.0.0.1:") && !node.addr.ends_with(":0"));
    assert!(node.code.contains(&node.addr), "{}", node.code);

    // The admin socket: owner only. The bound address is recorded.
    let sock = data.join("admin.sock");
    let meta = std::fs::metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let state: Value =
        serde_json::from_slice(&std::fs::read(data.join("node.json")).unwrap()).unwrap();
    assert_eq!(state["listen"], node.addr.as_str());

    // `code` without flags: the same code, with a QR code; and as JSON.
    let text = ok(&["code", "--data", d]);
    assert!(
        text.contains(&format!("enrolment code: {}", node.code)),
        "{text}"
    );
    assert!(lines_with_blocks(&text) > 10, "{text}");
    let j = json(&["code", "--data", d, "--json"]);
    assert_eq!(j["code"], node.code.as_str());
    assert_eq!(j["addr"], node.addr.as_str());
    assert_eq!(j["running"], true);
    assert!(lines_with_blocks(j["qr"].as_str().unwrap()) > 10);
    let plain = ok(&["code", "--data", d, "--no-qr"]);
    assert_eq!(plain.trim(), format!("enrolment code: {}", node.code));
    // --addr overrides (e.g. the public address).
    let other = ok(&["code", "--data", d, "--no-qr", "--addr", "192.0.2.7:4433"]);
    assert!(other.contains("vigil1/192.0.2.7:4433/"), "{other}");

    // Nothing yet.
    assert_eq!(ok(&["alerts", "--data", d]).trim(), "no alerts");
    assert_eq!(
        json(&["alerts", "--data", d, "--json"]),
        Value::Array(vec![])
    );
    assert_eq!(
        ok(&["residents", "--data", d]).trim(),
        "no active residents"
    );

    // A resident enrols and has a fever: the start and the end arrive.
    let label = "Ana Costa, flat 12B";
    assert_eq!(resident_with_a_fever(d, label), 2);

    let list = json(&["alerts", "--data", d, "--json"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let started = list.iter().find(|a| a["kind"] == 1).unwrap();
    assert_eq!(started["what"], "fever started");
    assert_eq!(started["label"], label);
    assert_eq!(started["level"], 2);
    assert!(started["acked_ms"].is_null());
    let onset = period_start() + DAY + 10 * HOUR;
    assert_eq!(started["onset_ms"], onset);
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 12);
    let text = ok(&["alerts", "--data", d]);
    assert!(
        text.contains(&id) && text.contains(label) && text.contains("NEW"),
        "{text}"
    );
    assert!(text.contains("2 alerts, 2 not acknowledged"), "{text}");

    // Acknowledge it (by a prefix), then again.
    let acked = ok(&["alerts", "ack", &id[..6], "--by", "Mei", "--data", d]);
    assert!(acked.starts_with(&format!("acknowledged {id}")), "{acked}");
    let again = json(&["alerts", "ack", &id, "--by", "Mei", "--data", d, "--json"]);
    assert_eq!(again["already"], true);
    assert_eq!(again["alert"]["id"], id.as_str());
    let list = json(&["alerts", "--data", d, "--json", "--unacked"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["kind"], 2);
    let line = fails(
        &["alerts", "ack", "ffffffffffff", "--by", "Mei", "--data", d],
        1,
    );
    assert!(line.contains("no alert with id ffffffffffff"), "{line}");
    fails(&["alerts", "ack", "not-hex", "--by", "Mei", "--data", d], 2);

    // The resident: label, period end, last contact.
    let residents = json(&["residents", "--data", d, "--json"]);
    let r = &residents.as_array().unwrap()[0];
    assert_eq!(r["label"], label);
    assert_eq!(r["status"], "enrolled");
    assert_eq!(r["period_end_ms"], period_start() + 7 * DAY);
    let last = r["last_contact_ms"].as_i64().unwrap();
    assert_eq!(r["ticket"].as_str().unwrap().len(), 32);
    assert!((now_ms() - last).abs() < 5 * MIN, "{r}");
    assert_eq!(
        (r["alerts"].as_u64(), r["unacked"].as_u64()),
        (Some(2), Some(1))
    );
    let text = ok(&["residents", "--data", d]);
    assert!(
        text.contains(label) && text.contains("PERIOD END"),
        "{text}"
    );

    // An unused ticket is listed as such.
    let unused = register(d, "Cy, flat 7", "1d");
    let list = json(&["residents", "--data", d, "--json"]);
    let cy = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == "Cy, flat 7")
        .unwrap()
        .clone();
    assert_eq!(cy["status"], "unused");
    assert!(cy["last_contact_ms"].is_null());
    assert_eq!(cy["ticket"], hex_of(&unused.ticket.id));
    // Revoked (by a prefix), it is listed with --all only.
    let cy_id = cy["id"].as_str().unwrap();
    let text = ok(&["residents", "revoke", &cy_id[..6], "--data", d]);
    assert!(
        text.contains("revoked") && text.contains("Cy, flat 7"),
        "{text}"
    );
    let again = json(&["residents", "revoke", cy_id, "--data", d, "--json"]);
    assert_eq!(again["already"], true);
    let line = fails(&["residents", "revoke", "ffffffff", "--data", d], 1);
    assert!(line.contains("no ticket with id ffffffff"), "{line}");
    fails(&["residents", "revoke", "zz", "--data", d], 2);
    // A label that is nothing but invisible characters, or a period already
    // over, is bad input.
    let line = fails(
        &[
            "residents",
            "add",
            "--label",
            "\u{200b}\u{202e}",
            "--data",
            d,
        ],
        2,
    );
    assert!(line.contains("label is empty"), "{line}");
    let line = fails(
        &[
            "residents",
            "add",
            "--label",
            "Di",
            "--period-end",
            "2020-01-01T00:00:00Z",
            "--data",
            d,
        ],
        2,
    );
    assert!(line.contains("not in the future"), "{line}");

    // A resident whose period is over: listed with --all only, then swept.
    resident_whose_period_ended(d);
    assert_eq!(
        json(&["residents", "--data", d, "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let all = json(&["residents", "--data", d, "--json", "--all"]);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 3);
    let ben = all.iter().find(|r| r["label"] == "Ben, flat 3").unwrap();
    assert_eq!(ben["status"], "period over");
    let cy = all.iter().find(|r| r["label"] == "Cy, flat 7").unwrap();
    assert_eq!(cy["status"], "revoked");
    let text = ok(&["residents", "--data", d, "--all"]);
    assert!(
        text.contains("Ben, flat 3") && text.contains("period over") && text.contains("revoked"),
        "{text}"
    );
    // A grace longer than the time since then keeps it.
    assert_eq!(
        json(&["sweep", "--data", d, "--json", "--grace", "5d"])["grants"],
        0
    );
    let swept = json(&["sweep", "--data", d, "--json"]);
    assert_eq!(swept["grants"], 1);
    assert_eq!(swept["alerts"], 0);
    assert_eq!(ok(&["sweep", "--data", d]).trim(), "nothing to sweep");
    // Ana, and Cy's revoked ticket (its period is not over).
    assert_eq!(
        json(&["residents", "--data", d, "--json", "--all"])
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Another node on the same directory is refused.
    let line = fails(&["serve", "--data", d, "--listen", "127.0.0.1:0"], 1);
    assert!(line.contains("already serving"), "{line}");

    // SIGTERM: exit 0, the socket is gone.
    let log = node.stderr.clone();
    let status = node.terminate();
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists());
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("shutting down") && log.contains("node stopped"),
        "{log}"
    );

    // Stopped: the commands open the store directly.
    let list = json(&["alerts", "--data", d, "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let started = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.as_str())
        .unwrap();
    assert!(started["acked_ms"].is_i64(), "the ack survived");
    let second = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == 2)
        .unwrap();
    let second_id = second["id"].as_str().unwrap();
    let acked = ok(&["alerts", "ack", second_id, "--by", "Mei", "--data", d]);
    assert!(acked.starts_with("acknowledged"), "{acked}");
    assert_eq!(
        ok(&["alerts", "--data", d, "--unacked"]).trim(),
        "no unacknowledged alerts"
    );
    let residents = json(&["residents", "--data", d, "--json"]);
    assert_eq!(residents[0]["label"], label);
    assert_eq!(json(&["sweep", "--data", d, "--json"])["grants"], 0);
    // `code` still knows the last address, and says the node is not running.
    let out = vigil_node()
        .args(["code", "--data", d, "--no-qr"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&node_code_prefix(&state)));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no node is serving"));
}

fn node_code_prefix(state: &Value) -> String {
    format!("vigil1/{}/", state["listen"].as_str().unwrap())
}

#[test]
fn a_config_file_drives_serve_and_a_stale_socket_is_cleared() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("node.toml");
    std::fs::write(
        &config,
        "data = \"node\"\nlisten = \"127.0.0.1:0\"\nlog_format = \"json\"\n\
         sweep_every = \"1s\"\ngrace = \"1s\"\n[limits]\nmax_connections = 100\n",
    )
    .unwrap();
    let data = tmp.path().join("node");
    std::fs::create_dir_all(&data).unwrap();
    // A socket left behind by a node that was killed.
    drop(std::os::unix::net::UnixListener::bind(data.join("admin.sock")).unwrap());
    assert!(data.join("admin.sock").exists());

    let c = config.to_str().unwrap();
    let log = tmp.path().join("serve.log");
    let node = Node::start(&["--config", c], &log);
    assert!(node.addr.starts_with("127.0.0.1:"));
    // The admin commands find the node through the config file too.
    assert_eq!(ok(&["alerts", "--config", c]).trim(), "no alerts");
    assert_eq!(json(&["sweep", "--config", c, "--json"])["mailboxes"], 0);
    // A flag beats the file: --data elsewhere is another (missing) node.
    let missing = tmp.path().join("missing");
    fails(
        &["alerts", "--config", c, "--data", missing.to_str().unwrap()],
        1,
    );
    // The periodic sweeper (every second here) deletes a grant and its
    // ticket once the period ended more than the grace (a second) ago.
    resident_whose_period_ended(data.to_str().unwrap());
    let deadline = Instant::now() + PATIENCE;
    while !json(&["residents", "--config", c, "--all", "--json"])
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the sweeper never ran");
        std::thread::sleep(Duration::from_millis(200));
    }
    // With the socket gone but the node still holding the store, the
    // commands say both ways failed.
    std::fs::remove_file(data.join("admin.sock")).unwrap();
    let line = fails(&["alerts", "--config", c], 1);
    assert!(
        line.contains("no node answers on") && line.contains("in use by another process"),
        "{line}"
    );
    // SIGINT stops it as gracefully as SIGTERM.
    assert!(node.signal("-INT").success());
    // The logs were JSON lines.
    let log = std::fs::read_to_string(&log).unwrap();
    let first: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert!(first["fields"]["message"].is_string(), "{first}");
    assert!(
        log.contains("removing the admin socket a stopped node left"),
        "{log}"
    );
    assert!(log.contains("node serving"), "{log}");
}

#[test]
fn bad_input_is_one_line_and_a_non_zero_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let t = |p: &str| tmp.path().join(p).to_str().unwrap().to_owned();

    // Unknown data directory.
    for cmd in [
        vec!["alerts"],
        vec!["alerts", "ack", "abcd", "--by", "Mei"],
        vec!["residents"],
        vec!["sweep"],
        vec!["code"],
    ] {
        let mut args = cmd.clone();
        let missing = t("no-such-dir");
        args.extend(["--data", &missing]);
        let line = fails(&args, 1);
        assert!(line.contains("no such data directory"), "{cmd:?}: {line}");
    }
    // A directory that holds no node.
    let empty = t("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let line = fails(&["residents", "--data", &empty], 1);
    assert!(line.contains("not a vigil-node data directory"), "{line}");
    let line = fails(&["code", "--data", &empty], 1);
    assert!(line.contains("no node identity"), "{line}");
    // No data directory at all.
    let line = fails(&["alerts"], 2);
    assert!(line.contains("--data"), "{line}");

    // Bad listen addresses: malformed, and one already taken.
    let node = t("node");
    let line = fails(&["serve", "--data", &node, "--listen", "nowhere:4433"], 2);
    assert!(line.contains("--listen"), "{line}");
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let line = fails(&["serve", "--data", &node, "--listen", &addr], 1);
    assert!(line.contains(&format!("cannot listen on {addr}")), "{line}");
    // That failed start left no socket behind.
    assert!(!Path::new(&node).join("admin.sock").exists());

    // Bad alert ids.
    for id in ["xyz", "12", "0123456789abcdef"] {
        let line = fails(&["alerts", "ack", id, "--by", "Mei", "--data", &node], 2);
        assert!(line.contains("not an alert id"), "{line}");
    }

    // Malformed config files.
    for (name, text, needle) in [
        ("broken.toml", "listen = \n", "line 1"),
        ("typo.toml", "lisen = \"127.0.0.1:0\"\n", "unknown field"),
        ("addr.toml", "listen = \"here\"\n", "not an address"),
        ("dur.toml", "sweep_every = \"often\"\n", "not a duration"),
    ] {
        let path = t(name);
        std::fs::write(&path, text).unwrap();
        let line = fails(&["serve", "--config", &path, "--data", &node], 2);
        assert!(line.contains(needle), "{name}: {line}");
    }
    let line = fails(&["alerts", "--config", &t("absent.toml")], 2);
    assert!(line.contains("absent.toml"), "{line}");

    // Bad flags and log levels.
    let line = fails(&["alerts", "--data", &node, "--frobnicate"], 2);
    assert!(line.contains("--frobnicate"), "{line}");
    fails(&["launch"], 2);
    fails(&["sweep", "--data", &node, "--grace", "soon"], 2);
    let line = fails(&["alerts", "--data", &node, "--log-level", "loud=="], 2);
    assert!(line.contains("--log-level"), "{line}");
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        vec![],
        vec!["serve"],
        vec!["code"],
        vec!["alerts"],
        vec!["alerts", "ack"],
        vec!["residents"],
        vec!["residents", "add"],
        vec!["residents", "revoke"],
        vec!["sweep"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let help = ok(&args);
        assert!(help.contains("Example"), "{cmd:?}: {help}");
        assert!(help.contains("vigil-node "), "{cmd:?}");
    }
}

#[test]
fn the_advertised_address_goes_into_enrolment_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let node = Node::start(
        &[
            "--data",
            d,
            "--listen",
            "127.0.0.1:0",
            "--advertise",
            "127.0.0.2:4999",
        ],
        &tmp.path().join("serve.log"),
    );
    assert!(
        node.code.starts_with("vigil1/127.0.0.2:4999/"),
        "{}",
        node.code
    );
    let j = json(&["code", "--data", d, "--json"]);
    assert_eq!(j["code"], node.code.as_str());
    // `--addr` still wins.
    let j = json(&["code", "--data", d, "--json", "--addr", "127.0.0.3:5000"]);
    assert_eq!(j["addr"], "127.0.0.3:5000");
    assert!(node.terminate().success());
    // Stopped, the recorded advertised address is used.
    let text = ok(&["code", "--data", d, "--no-qr"]);
    assert!(text.contains("vigil1/127.0.0.2:4999/"), "{text}");
}

/// Finding 5 of issue 14: a resident shreds early while staff have not yet
/// seen their fever; `alerts --unacked` still lists it, marked.
#[test]
fn a_fever_staff_have_not_seen_outlives_the_residents_shred() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let node = Node::start(
        &["--data", d, "--listen", "127.0.0.1:0"],
        &tmp.path().join("serve.log"),
    );
    let start = period_start();
    let ticket = register(d, "Gil, flat 4", &rfc3339(start + 7 * DAY));
    let code: EnrolmentCode = node.code.parse().unwrap();
    assert_eq!(ticket.node, code);
    let (mut phone, keys) = mem_vault(Period::days(start, 7), 9);
    let mut conn = enrol(&mut phone, &ticket);
    for m in (8 * 60..12 * 60).step_by(10) {
        let t = start + DAY + m * MIN;
        let temp = if m >= 10 * 60 { 38.4 } else { 36.6 };
        phone
            .record(Metric::BodyTemperature, temp, Unit::Celsius, t)
            .unwrap();
    }
    let report = phone
        .send_alerts(&mut conn, &code.node_public, now_ms())
        .unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    let t = phone.shred_with_node(&mut conn, &keys, now_ms()).unwrap();
    conn.close();
    let receipt =
        vigil_proto::receipt::verify_receipt(&code.receipt_key, &t.receipt.unwrap()).unwrap();
    assert_eq!(receipt.alerts, 0, "{receipt:?}");

    // Staff still find it, marked.
    let text = ok(&["alerts", "--unacked", "--data", d]);
    assert!(text.contains("Gil, flat 4"), "{text}");
    assert!(text.contains("resident ended monitoring"), "{text}");
    assert!(text.contains("1 alert, 1 not acknowledged"), "{text}");
    let list = json(&["alerts", "--unacked", "--data", d, "--json"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(list[0]["monitoring_ended_ms"].is_i64(), "{list:?}");
    let id = list[0]["id"].as_str().unwrap().to_owned();
    // `residents --all` still names the resident while the alert waits.
    let text = ok(&["residents", "--all", "--data", d]);
    assert!(
        text.contains("Gil, flat 4") && text.contains("ended monitoring"),
        "{text}"
    );
    let r = json(&["residents", "--all", "--data", d, "--json"]);
    assert_eq!(r[0]["status"], "ended monitoring", "{r}");
    assert_eq!(r[0]["unacked"], 1, "{r}");

    // Once read, it is gone.
    let acked = ok(&["alerts", "ack", &id, "--by", "Mei", "--data", d]);
    assert!(acked.starts_with(&format!("acknowledged {id}")), "{acked}");
    assert_eq!(ok(&["alerts", "--data", d]).trim(), "no alerts");
    let r = json(&["residents", "--all", "--data", d, "--json"]);
    assert_eq!(r[0]["status"], "ended early", "{r}");
    assert_eq!(r[0]["unacked"], 0, "{r}");
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
