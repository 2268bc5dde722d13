//! A resident and a community node, through the two programs only: the node
//! runs as a real process on a loopback port; a phone and a tablet (two
//! vault directories) enrol, pair, record a fever, sync; the operator sees
//! the alert with `vigil-node alerts`; both devices shred and the node's
//! side is gone.

mod common;
use common::*;

use assert_cmd::Command as AssertCommand;
use serde_json::Value;

fn node_cmd(data: &std::path::Path, args: &[&str]) -> Value {
    let out = AssertCommand::cargo_bin("vigil-node")
        .unwrap()
        .env_remove("RUST_LOG")
        .args(args)
        .arg("--data")
        .arg(data)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vigil-node {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_resident_and_a_node_through_the_programs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let node = Node::start(
        &["--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        &tmp.path().join("node.log"),
    );
    let phone = tmp.path().join("phone");
    let tablet = tmp.path().join("tablet");
    // The node checks periods against its clock: the period started at
    // midnight UTC two days ago, and the readings are from the last hour.
    let start = rfc3339(period_start());
    run(vigil(&phone), ["init", "--start", &start]).ok();
    // Staff register the resident; the ticket (text and QR code) goes
    // with the wristband. A label with a right-to-left override and a
    // zero-width space is shown cleaned.
    let added = node_cmd(
        &data,
        &[
            "residents",
            "add",
            "--label",
            "Ana, flat \u{200b}12B\u{202e}",
            "--period-end",
            "10d",
        ],
    );
    assert_eq!(added["label"], "Ana, flat 12B");
    assert!(added["qr"].as_str().unwrap().contains('█'));
    let ticket = added["ticket"].as_str().unwrap().to_owned();
    assert!(ticket.starts_with("vigil-ticket1/"), "{ticket}");
    let listed = node_cmd(&data, &["residents"]);
    assert_eq!(listed[0]["status"], "unused");
    // Without the ticket, the phone gets nothing from the node.
    run(vigil(&phone), ["sync", "--node", &node.code]).fails(1, "not enrolled");
    // The resident enrols with it (read from standard input, out of the
    // shell's history), and sees the label staff see.
    let mut enrol = vigil(&phone);
    enrol.args(["enrol", "-"]);
    let said = run_in(&mut enrol, &format!("{ticket}\n"));
    assert!(said.ok().contains("\"Ana, flat 12B\""), "{said:?}");
    let listed = node_cmd(&data, &["residents"]);
    assert_eq!(listed[0]["status"], "enrolled");

    // Pairing: the tablet asks, the phone offers, both show one code.
    let first = run(
        vigil(&tablet),
        ["--json", "pair", "join", &node.code, "--timeout", "0"],
    );
    assert_eq!(first.code, 5, "{first:?}");
    let line: Value = serde_json::from_str(first.out.lines().next().unwrap()).unwrap();
    let joiner = line["joiner_code"].as_str().unwrap().to_owned();
    let shown = run(vigil(&phone), ["--json", "pair", "show", &joiner]).json();
    let joined = run(
        vigil(&tablet),
        [
            "--json",
            "pair",
            "join",
            &node.code,
            "--timeout",
            "0",
            "--yes",
        ],
    );
    let last: Value = serde_json::from_str(joined.ok().lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "paired");
    assert_eq!(last["pairing_code"], shown["pairing_code"]);

    // A fever on the phone: two readings ≥ 37.3 °C, 5 minutes apart.
    let now = now_ms();
    for (value, ago) in [("36.8", 40), ("38.2", 20), ("38.4", 15)] {
        run(
            vigil(&phone),
            [
                "record",
                "temperature",
                value,
                "--at",
                &rfc3339(now - ago * MIN),
            ],
        )
        .ok();
    }
    run(vigil(&phone), ["sync"]).ok();

    // The operator sees it (through the running node's admin socket).
    let alerts = node_cmd(&data, &["alerts"]);
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let text = alerts[0].to_string();
    assert!(text.contains("Ana, flat 12B"), "{text}");
    assert!(
        !text.contains("38.2") && !text.contains("38.4"),
        "no values: {text}"
    );
    assert_eq!(alerts[0]["label"], "Ana, flat 12B");
    let residents = node_cmd(&data, &["residents"]);
    assert_eq!(residents.as_array().unwrap().len(), 1);
    assert_eq!(residents[0]["alerts"], 1);

    // The tablet syncs and holds the same readings.
    run(vigil(&tablet), ["sync"]).ok();
    let tlog = run(vigil(&tablet), ["--json", "log"]).json();
    let plog = run(vigil(&phone), ["--json", "log"]).json();
    assert_eq!(tlog.as_array().unwrap().len(), 3);
    assert_eq!(tlog, plog);

    // Both shred: only tombstones remain, and the node deleted its side.
    assert!(phone.with_extension("key").exists() && tablet.with_extension("key").exists());
    let said = run(vigil(&phone), ["shred", "--yes"]);
    assert!(
        said.ok()
            .contains("the community has not yet seen stay at the node"),
        "{said:?}"
    );
    run(vigil(&tablet), ["shred", "--yes"]).ok();
    for dir in [&phone, &tablet] {
        let left = files(dir);
        assert_eq!(left.len(), 1, "only the tombstone: {left:?}");
        run(vigil(dir), ["log"]).fails(4, "shredded");
        let key = dir.with_extension("key");
        assert!(!key.exists(), "the root's key file is destroyed: {key:?}");
    }
    // Staff had not seen the fever: it stays, marked, until they do
    // (issue 14, finding 5); then it is gone.
    let kept = node_cmd(&data, &["alerts"]);
    let kept = kept.as_array().unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0]["monitoring_ended_ms"].is_i64(), "{kept:?}");
    let id = kept[0]["id"].as_str().unwrap().to_owned();
    node_cmd(&data, &["alerts", "ack", &id, "--by", "Mei"]);
    assert!(node_cmd(&data, &["alerts"]).as_array().unwrap().is_empty());
    // Staff still see that the resident ended their period early (issue
    // 17: she does not vanish); revoking the ticket ends its use for good.
    let all = node_cmd(&data, &["residents"]);
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all[0]["status"], "ended early", "{all}");
    let revoked = node_cmd(
        &data,
        &["residents", "revoke", all[0]["id"].as_str().unwrap()],
    );
    assert_eq!(revoked["already"], false);
    assert!(node.terminate().success());
}
