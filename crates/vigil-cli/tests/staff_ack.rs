//! Staff acknowledgement visible to the resident (issue 18, item 3), through
//! the programs: `vigil-node serve` as a real process, staff acknowledging
//! with `vigil-node alerts ack --by NAME --note TEXT`, the resident seeing
//! "acknowledged by staff at <time>" after `vigil sync`, never who or what
//! they wrote. A revoked grant's device (the node refuses its question)
//! learns nothing and its sync still succeeds.

mod common;
use common::in_process::live_vault;
use common::*;

use serde_json::Value;

/// `vigil-node ARGS`, which must succeed: its stdout.
fn staff(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil-node"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vigil-node {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn staff_json(args: &[&str]) -> Value {
    serde_json::from_str(&staff(args)).unwrap()
}

/// A resident labelled `label`: registered by staff, enrolled with `vigil
/// enrol`, a fever recorded (two readings at 38.4 and 38.6 °C, minutes ago)
/// and delivered by `vigil sync`.
fn feverish_resident(d: &str, vault: &std::path::Path, label: &str) {
    live_vault(vault);
    let t = staff_json(&[
        "residents",
        "add",
        "--label",
        label,
        "--period-end",
        "4d",
        "--data",
        d,
        "--json",
    ]);
    run(vigil(vault), ["enrol", t["ticket"].as_str().unwrap()]).ok();
    let now = real_now();
    for (temp, ago) in [("38.4", 9), ("38.6", 4)] {
        run(
            vigil(vault),
            [
                "record",
                "temperature",
                temp,
                "--at",
                &rfc3339(now - ago * MIN),
            ],
        )
        .ok();
    }
    let s = run(vigil(vault), ["--json", "sync"]).json();
    assert_eq!(s["alerts_delivered"], 1, "{s}");
    assert_eq!(s["alerts_acknowledged_by_staff"], 0, "{s}");
}

/// The node's id of `label`'s alert (`vigil-node alerts --json`).
fn alert_id(d: &str, label: &str) -> String {
    let list = staff_json(&["alerts", "--data", d, "--json"]);
    list.as_array()
        .unwrap()
        .iter()
        .find(|a| a["label"] == label)
        .unwrap_or_else(|| panic!("no alert for {label}: {list}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Everything the resident can read about alerts: `alerts`, `status`,
/// `sync` and `disclosures`, as text and JSON.
fn everything_shown(vault: &std::path::Path) -> String {
    let mut all = String::new();
    for args in [
        vec!["alerts"],
        vec!["--json", "alerts"],
        vec!["status"],
        vec!["--json", "status"],
        vec!["sync"],
        vec!["--json", "sync"],
        vec!["disclosures"],
        vec!["--json", "disclosures"],
    ] {
        let r = run(vigil(vault), args);
        all.push_str(r.ok());
        all.push_str(&r.err);
    }
    all
}

#[test]
fn the_resident_sees_when_staff_acknowledged_a_fever_never_who() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let node = Node::start(
        &["--data", d, "--listen", "127.0.0.1:0"],
        &tmp.path().join("serve.log"),
    );
    let ana = tmp.path().join("ana");
    feverish_resident(d, &ana, "Ana Costa, flat 12B");

    // Delivered, not yet seen by staff: said so, and null in JSON.
    let a = run(vigil(&ana), ["--json", "alerts"]).json();
    let delivered = a["delivered_alerts"].as_array().unwrap();
    assert_eq!(delivered.len(), 1, "{a}");
    assert_eq!(delivered[0]["kind"], "started");
    assert!(
        delivered[0].as_object().unwrap()["acknowledged_by_staff"].is_null(),
        "the key is there, null: {a}"
    );
    assert!(a["pending_alerts"].as_array().unwrap().is_empty());
    let text = run(vigil(&ana), ["alerts"]);
    assert!(text.ok().contains("not yet acknowledged"), "{text:?}");
    let s = run(vigil(&ana), ["status"]);
    assert!(s.ok().contains("not yet acknowledged"), "{s:?}");
    let s = run(vigil(&ana), ["--json", "status"]).json();
    assert!(
        s["delivered_alerts"][0]["acknowledged_by_staff"].is_null(),
        "{s}"
    );

    // Staff acknowledge, with their name and a note.
    let id = alert_id(d, "Ana Costa, flat 12B");
    let before = real_now();
    staff(&[
        "alerts",
        "ack",
        &id,
        "--by",
        "Mei",
        "--note",
        "Rang her, temperature going down",
        "--data",
        d,
    ]);
    let after = real_now();
    // The device learns it at its next sync, not before.
    let a = run(vigil(&ana), ["--json", "alerts"]).json();
    assert!(a["delivered_alerts"][0]["acknowledged_by_staff"].is_null());
    let s = run(vigil(&ana), ["--json", "sync"]).json();
    assert_eq!(s["alerts_acknowledged_by_staff"], 1, "{s}");
    let a = run(vigil(&ana), ["--json", "alerts"]).json();
    let at = a["delivered_alerts"][0]["acknowledged_by_staff"]
        .as_str()
        .unwrap_or_else(|| panic!("acknowledged: {a}"))
        .to_owned();
    assert!(at.ends_with('Z'), "RFC 3339 in UTC: {at}");
    let at_ms = at.parse::<jiff::Timestamp>().unwrap().as_millisecond();
    assert!(
        before - 1000 <= at_ms && at_ms <= after + 1000,
        "{at} within the ack"
    );
    let s = run(vigil(&ana), ["--json", "status"]).json();
    assert_eq!(
        s["delivered_alerts"][0]["acknowledged_by_staff"],
        at.as_str()
    );
    // In text, in the display zone: the same instant at UTC+8.
    let text = run(vigil(&ana), ["alerts"]);
    assert!(
        text.ok()
            .contains(&format!("acknowledged by staff at {}", &at[..16])),
        "{text:?}"
    );
    let mut shanghai = vigil(&ana);
    shanghai.env("TZ", "Asia/Shanghai");
    let text = run(shanghai, ["status"]);
    let local = jiff::Timestamp::from_millisecond(at_ms)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
        .strftime("%Y-%m-%dT%H:%M")
        .to_string();
    assert!(
        text.ok()
            .contains(&format!("acknowledged by staff at {local}")),
        "{local}: {text:?}"
    );
    // Who acknowledged, and their note, are nowhere on the resident's side.
    let shown = everything_shown(&ana);
    assert!(shown.contains("acknowledged by staff at"), "{shown}");
    for secret in ["Mei", "Rang her", "temperature going down"] {
        assert!(!shown.contains(secret), "{secret:?} shown: {shown}");
    }
    assert_eq!(node.terminate().code(), Some(0));
}

#[test]
fn another_residents_device_learns_nothing_and_a_refused_question_fails_no_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let node = Node::start(
        &["--data", d, "--listen", "127.0.0.1:0"],
        &tmp.path().join("serve.log"),
    );
    let ana = tmp.path().join("ana");
    let bo = tmp.path().join("bo");
    feverish_resident(d, &ana, "Ana");
    feverish_resident(d, &bo, "Bo");

    // Staff see Ana's alert only: Bo's device, syncing, learns nothing of it.
    let ana_id = alert_id(d, "Ana");
    staff(&["alerts", "ack", &ana_id, "--by", "Mei", "--data", d]);
    let s = run(vigil(&bo), ["--json", "sync"]).json();
    assert_eq!(s["alerts_acknowledged_by_staff"], 0, "{s}");
    let a = run(vigil(&bo), ["--json", "alerts"]).json();
    let delivered = a["delivered_alerts"].as_array().unwrap();
    assert_eq!(delivered.len(), 1, "Bo's own alert only: {a}");
    assert!(delivered[0]["acknowledged_by_staff"].is_null());
    let s = run(vigil(&ana), ["--json", "sync"]).json();
    assert_eq!(s["alerts_acknowledged_by_staff"], 1, "{s}");

    // Bo's grant is revoked: the node destroys its key and refuses the
    // question like an unknown grant. Staff then acknowledge Bo's alert
    // (unacknowledged alerts stay after a revocation): Bo's device cannot
    // learn it, and its sync still succeeds.
    let residents = staff_json(&["residents", "--data", d, "--json", "--all"]);
    let bo_ticket = residents
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == "Bo")
        .unwrap()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    staff(&["residents", "revoke", &bo_ticket, "--data", d]);
    staff(&[
        "alerts",
        "ack",
        &alert_id(d, "Bo"),
        "--by",
        "Mei",
        "--data",
        d,
    ]);
    let r = run(vigil(&bo), ["--json", "sync"]);
    let s = r.json();
    assert_eq!(s["alerts_acknowledged_by_staff"], 0, "{s}");
    assert!(r.err.is_empty(), "nothing on stderr under --json: {r:?}");
    let r = run(vigil(&bo), ["sync"]);
    assert!(r.ok().contains("Staff acknowledged 0 of the 1"), "{r:?}");
    let a = run(vigil(&bo), ["--json", "alerts"]).json();
    assert!(a["delivered_alerts"][0]["acknowledged_by_staff"].is_null());
    assert_eq!(node.terminate().code(), Some(0));
}
