//! The staff dashboard as a person reaches it: `vigil-node staff add`, then
//! `serve --http` as a real process, a browser-like client over TCP, and a
//! resident's device sending a fever alert over QUIC that appears on the
//! open page's event stream.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;

mod common;
use common::*;

use assert_cmd::Command;
use vigil_device::Period;
use vigil_log::{FeverRule, Metric, Unit};
use vigil_net::TicketCode;
use vigil_testkit::{connect, mem_vault};

const PASSWORD: &str = "correct horse battery";

fn vigil_node() -> Command {
    let mut c = Command::cargo_bin("vigil-node").unwrap();
    c.env_remove("RUST_LOG");
    c
}

fn staff_add(d: &str, name: &str, stdin: &str) -> std::process::Output {
    vigil_node()
        .args(["staff", "add", name, "--password-stdin", "--data", d])
        .write_stdin(stdin)
        .output()
        .unwrap()
}

#[test]
fn staff_accounts_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let out = staff_add(d, "Mei", &format!("{PASSWORD}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = data.join("staff.json");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("$argon2id$") && !text.contains(PASSWORD));
    // Twice: refused (exit 1); a short password or a bad name: bad input (2).
    assert_eq!(
        staff_add(d, "Mei", &format!("{PASSWORD}\n")).status.code(),
        Some(1)
    );
    assert_eq!(staff_add(d, "Li", "short\n").status.code(), Some(2));
    assert_eq!(
        staff_add(d, " Li", &format!("{PASSWORD}\n")).status.code(),
        Some(2)
    );
    // No terminal and no --password-stdin: said so, nothing added.
    let out = vigil_node()
        .args(["staff", "add", "Li", "--data", d])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-stdin"));
    let list: serde_json::Value = serde_json::from_slice(
        &vigil_node()
            .args(["staff", "list", "--json", "--data", d])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "Mei");
    assert!(
        vigil_node()
            .args(["staff", "remove", "Mei", "--data", d])
            .output()
            .unwrap()
            .status
            .success()
    );
    assert_eq!(
        vigil_node()
            .args(["staff", "remove", "Mei", "--data", d])
            .output()
            .unwrap()
            .status
            .code(),
        Some(1)
    );
}

/// One HTTP/1.1 request on a new connection; (status, head, body).
fn http(port: u16, req: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

fn get(port: u16, path: &str, cookie: &str) -> (u16, String, String) {
    http(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
}

fn post(port: u16, path: &str, cookie: &str, form: &str) -> (u16, String, String) {
    http(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    )
}

fn set_cookie(head: &str, name: &str) -> String {
    head.lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .find(|l| l.starts_with(&format!("{name}=")))
        .map(|l| l.split(';').next().unwrap().to_owned())
        .unwrap()
}

fn csrf_of(page: &str) -> String {
    let at = page.find(r#"name="csrf" value=""#).unwrap() + 19;
    page[at..at + 64].to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A resident registered by staff enrols and reports a fever.
fn resident_with_a_fever(d: &str, label: &str) {
    let start = period_start();
    let out = vigil_node()
        .args([
            "residents",
            "add",
            "--label",
            label,
            "--period-end",
            &rfc3339(start + 7 * DAY),
            "--data",
            d,
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ticket: TicketCode = j["ticket"].as_str().unwrap().parse().unwrap();
    let (mut phone, _) = mem_vault(Period::days(start, 7), 7);
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
    let day = start + DAY;
    for m in (8 * 60..12 * 60).step_by(10) {
        let temp = if m >= 10 * 60 { 38.4 } else { 36.6 };
        phone
            .record(Metric::BodyTemperature, temp, Unit::Celsius, day + m * MIN)
            .unwrap();
    }
    let r = phone
        .send_alerts(&mut conn, &ticket.node.node_public, now_ms())
        .unwrap();
    assert_eq!(r.delivered, 1);
    conn.close();
}

#[test]
fn a_fever_alert_appears_live_on_the_dashboard_and_staff_acknowledge_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    assert!(
        staff_add(d, "Mei", &format!("{PASSWORD}\n"))
            .status
            .success()
    );
    let port = free_port();
    let http_addr = format!("127.0.0.1:{port}");
    let node = Node::start(
        &["--data", d, "--listen", "127.0.0.1:0", "--http", &http_addr],
        &tmp.path().join("serve.log"),
    );

    // Nothing without a session.
    let (status, head, _) = get(port, "/", "");
    assert_eq!(status, 303);
    assert!(head.contains("location: /login"), "{head}");

    // Log in.
    let (_, head, page) = get(port, "/login", "");
    let pre = set_cookie(&head, "vigil_login");
    let form = format!(
        "csrf={}&name=Mei&password={}",
        csrf_of(&page),
        PASSWORD.replace(' ', "+")
    );
    let (status, head, _) = post(port, "/login", &pre, &form);
    assert_eq!(status, 303, "{head}");
    let session = set_cookie(&head, "vigil_session");

    // The page is open: its event stream.
    let mut events = TcpStream::connect(("127.0.0.1", port)).unwrap();
    events.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        events,
        "GET /events HTTP/1.1\r\nHost: x\r\nCookie: {session}\r\n\r\n"
    )
    .unwrap();
    let mut events = BufReader::new(events);
    let mut line = String::new();
    let mut next_inbox = |events: &mut BufReader<TcpStream>| loop {
        line.clear();
        assert!(events.read_line(&mut line).unwrap() > 0, "stream closed");
        if line.starts_with("data: <tr") {
            return line.clone();
        }
    };
    assert!(next_inbox(&mut events).contains("inbox-empty"));

    // A resident's device reports a fever: it appears on the stream.
    let label = "Ana Costa, flat 12B";
    resident_with_a_fever(d, label);
    let rows = next_inbox(&mut events);
    assert!(
        rows.contains(label) && rows.contains(r#"class="unacked""#),
        "{rows}"
    );
    let at = rows.find("id=\"alert-").unwrap() + 10;
    let id = rows[at..at + 12].to_owned();

    // Acknowledge with one click: the CLI sees it, the page names Mei.
    let (_, _, inbox) = get(port, "/", &session);
    let (status, _, _) = post(
        port,
        &format!("/alerts/{id}/ack"),
        &session,
        &format!("csrf={}", csrf_of(&inbox)),
    );
    assert_eq!(status, 303);
    let out = vigil_node()
        .args(["alerts", "--json", "--data", d])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!list[0]["acked_ms"].is_null(), "{list}");
    assert!(next_inbox(&mut events).contains("Acknowledged by Mei"));

    assert!(node.terminate().success());
}

/// The text of the element with this id (its first text node).
fn text_of(page: &str, id: &str) -> String {
    let at = page
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no #{id} in {page}"));
    let from = at + page[at..].find('>').unwrap() + 1;
    page[from..from + page[from..].find('<').unwrap()].to_owned()
}

/// Staff log in over HTTP, issue a ticket with the form, and hand the
/// resident the sheet: its ticket enrols a real `vigil` device, and the
/// CLI sees the resident enrolled; revoking with the form shows there too.
#[test]
fn a_ticket_issued_on_the_dashboard_enrols_a_device_and_revokes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    assert!(
        staff_add(d, "Mei", &format!("{PASSWORD}\n"))
            .status
            .success()
    );
    let port = free_port();
    // A host name, as --listen takes one.
    let http_addr = format!("localhost:{port}");
    let node = Node::start(
        &["--data", d, "--listen", "127.0.0.1:0", "--http", &http_addr],
        &tmp.path().join("serve.log"),
    );

    let (_, head, page) = get(port, "/login", "");
    let pre = set_cookie(&head, "vigil_login");
    let form = format!(
        "csrf={}&name=Mei&password={}",
        csrf_of(&page),
        PASSWORD.replace(' ', "+")
    );
    let (status, head, _) = post(port, "/login", &pre, &form);
    assert_eq!(status, 303, "{head}");
    let session = set_cookie(&head, "vigil_session");

    // Issue a ticket with the form: the answer leads to its sheet.
    let (status, _, page) = get(port, "/residents", &session);
    assert_eq!(status, 200);
    let csrf = csrf_of(&page);
    let (status, head, _) = post(
        port,
        "/residents",
        &session,
        &format!("csrf={csrf}&label=Ana+Costa%2C+flat+12B&days=7"),
    );
    assert_eq!(status, 303, "{head}");
    let sheet_at = head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap()
        .trim()
        .to_owned();
    let (status, _, sheet) = get(port, &sheet_at, &session);
    assert_eq!(status, 200);
    assert!(sheet.contains("<svg"), "{sheet}");
    let ticket = text_of(&sheet, "sheet-ticket");
    assert!(ticket.starts_with("vigil-ticket1/127.0.0.1:"), "{ticket}");
    let id = ticket.rsplit('/').nth(1).unwrap().to_owned();
    assert_eq!(sheet_at, format!("/residents/{id}/sheet"));

    // The resident's device enrols with it.
    let phone = tmp.path().join("phone");
    let now = now_ms();
    let start = now - now.rem_euclid(DAY) - DAY;
    run(vigil(&phone), ["init", "--start", &rfc3339(start)]).ok();
    let e = run(vigil(&phone), ["--json", "enrol", &ticket]).json();
    assert_eq!(e["label"], "Ana Costa, flat 12B");
    let residents = |all: bool| -> serde_json::Value {
        let mut args = vec!["residents", "--json", "--data", d];
        if all {
            args.push("--all");
        }
        let out = vigil_node().args(&args).output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let list = residents(false);
    assert_eq!(list[0]["ticket"], id.as_str(), "{list}");
    assert_eq!(list[0]["status"], "enrolled", "{list}");
    let (_, _, page) = get(port, "/residents", &session);
    assert!(page.contains("Enrolled"), "{page}");
    // The node's residents searched, by the ticket's id prefix and by
    // label in another case; a search matching no one shows no row.
    for q in [&id[..8], "ana+COSTA"] {
        let (status, _, page) = get(port, &format!("/residents?q={q}"), &session);
        assert_eq!(status, 200);
        assert!(
            page.contains(&format!(r#"<tr id="resident-{}""#, &id[..12])),
            "{page}"
        );
    }
    let (_, _, page) = get(port, "/residents?q=nobody&page=3", &session);
    assert!(!page.contains(r#"<tr id="resident-"#), "{page}");

    // Revoke with the form: the CLI shows it revoked.
    let (status, _, _) = post(
        port,
        &format!("/residents/{id}/revoke"),
        &session,
        &format!("csrf={csrf}"),
    );
    assert_eq!(status, 303);
    let list = residents(true);
    assert_eq!(list[0]["status"], "revoked", "{list}");

    // The node page: its code as the ready line printed it, the sweep at
    // start; a resident who ends monitoring gets a receipt, counted there.
    let (status, _, page) = get(port, "/node", &session);
    assert_eq!(status, 200);
    assert!(page.contains(&node.code), "{page}");
    assert!(page.contains("Ran at"), "{page}");
    assert_eq!(text_of(&page, "node-receipts"), "0");
    let (_, head, _) = post(
        port,
        "/residents",
        &session,
        &format!("csrf={csrf}&label=Bo&days=7"),
    );
    let at = head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap()
        .trim()
        .to_owned();
    let ticket = text_of(&get(port, &at, &session).2, "sheet-ticket");
    let tablet = tmp.path().join("tablet");
    run(vigil(&tablet), ["init", "--start", &rfc3339(start)]).ok();
    run(vigil(&tablet), ["enrol", &ticket]).ok();
    run(vigil(&tablet), ["shred", "--yes"]).ok();
    let (_, _, page) = get(port, "/node", &session);
    assert_eq!(text_of(&page, "node-receipts"), "1", "{page}");

    assert!(node.terminate().success());
}
