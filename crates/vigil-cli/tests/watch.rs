//! `vigil watch` as a resident leaves it running, against `vigil-node serve`
//! as a real process: a fever recorded in another terminal reaches the node
//! with no `vigil sync` typed; wristband packets on stdin are recorded, kept
//! through SIGTERM, and sent once a node that was away is back; the retries
//! back off. Also: what an unenrolled paired device says about alerts.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::*;

/// The vault's period starts two days ago at midnight UTC (the node checks
/// periods against its real clock); "now" is the real time.
fn live_vault(dir: &Path) {
    let now = real_now();
    let start = now - now.rem_euclid(DAY) - 2 * DAY;
    run(vigil(dir), ["init", "--start", &rfc3339(start)]).ok();
}

fn vigil_node(args: &[&str]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigil-node"));
    c.env_remove("RUST_LOG").args(args);
    run_in(&mut c, "")
}

/// Staff register a resident (`residents add`): the ticket text.
fn ticket(data: &str, label: &str) -> String {
    let r = vigil_node(&[
        "residents",
        "add",
        "--label",
        label,
        "--period-end",
        "14d",
        "--data",
        data,
        "--json",
    ]);
    r.json()["ticket"].as_str().unwrap().to_owned()
}

/// The alerts in the node's inbox.
fn node_alerts(data: &str) -> Vec<Value> {
    let r = vigil_node(&["alerts", "--data", data, "--json"]);
    r.json().as_array().unwrap().clone()
}

fn serve(data: &Path, listen: &str, log: &Path) -> Node {
    Node::start(&["--data", data.to_str().unwrap(), "--listen", listen], log)
}

/// `vigil --json watch ...` in the background, its event lines read as they come.
struct Watch {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<Value>,
    stderr: PathBuf,
}

impl Watch {
    fn start(dir: &Path, args: &[&str]) -> Watch {
        let stderr = dir.with_extension("watch.err");
        let mut child = vigil(dir)
            .args(["--json", "watch"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watch {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// The next event named `name` (the ones before it are kept in `seen`).
    #[track_caller]
    fn next(&mut self, name: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!(
                    "no {name:?} event; seen {:#?}; stderr {}",
                    self.seen,
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            };
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not one JSON object a line ({e}): {line}"));
            assert!(v["time"].is_string(), "{v}");
            self.seen.push(v.clone());
            if v["event"] == name {
                return v;
            }
        }
    }

    fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Sends our child `signal`; its exit code.
    fn signal(&mut self, signal: &str) -> Option<i32> {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "watch did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Only if a test failed before stopping it: our own child, by handle.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn watch_sends_a_fever_alert_with_no_sync_typed_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let _node = serve(&data, "127.0.0.1:0", &tmp.path().join("serve.log"));
    let phone = tmp.path().join("phone");
    live_vault(&phone);
    run(vigil(&phone), ["enrol", &ticket(d, "Ana")]).ok();

    let mut w = Watch::start(&phone, &["--every", "1h"]);
    let started = w.next("started");
    assert_eq!(started["enrolled"], true, "{started}");
    assert_eq!(started["every_ms"], 3_600_000);
    // It syncs at once, then not for an hour.
    let synced = w.next("synced");
    assert!(synced["bytes_sent"].as_u64().unwrap() > 0, "{synced}");

    // In another terminal the resident records a fever: two readings at
    // or above 37.3 °C within ten minutes. Nobody types `vigil sync`.
    let now = real_now();
    for (v, ago) in [("38.4", 9), ("38.6", 4)] {
        let at = rfc3339(now - ago * MIN);
        run(vigil(&phone), ["record", "temperature", v, "--at", &at]).ok();
    }
    let sent = w.next("alert_sent");
    assert_eq!(sent["delivered"], 1, "{sent}");
    assert_eq!(sent["pending"], 0, "{sent}");
    let inbox = node_alerts(d);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0]["label"], "Ana");

    assert_eq!(w.signal("-TERM"), Some(0));
    let stopped = w.next("stopped");
    assert_eq!(stopped["signal"], "SIGTERM");
    let s = run(vigil(&phone), ["--json", "status"]).json();
    assert_eq!(s["pending_alerts"], Value::Array(vec![]), "{s}");
    assert!(s["last_sync"].is_string(), "{s}");
}

/// 2A1C Temperature Measurement, °C, no time stamp: `tenths` / 10 °C.
fn temp_packet(tenths: u16) -> String {
    let [lo, hi] = tenths.to_le_bytes();
    format!("00{lo:02X}{hi:02X}00FF")
}

#[test]
fn watch_records_gatt_lines_backs_off_while_the_node_is_away_then_sends() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let log = tmp.path().join("serve.log");
    let node = serve(&data, "127.0.0.1:0", &log);
    let addr = node.addr.clone();
    let phone = tmp.path().join("phone");
    live_vault(&phone);
    run(vigil(&phone), ["enrol", &ticket(d, "Ana")]).ok();
    // The node goes away.
    assert!(node.terminate().success());

    let mut w = Watch::start(
        &phone,
        &[
            "--gatt",
            "2A1C",
            "--every",
            "1h",
            "--retry",
            "1s",
            "--max-retry",
            "4s",
            "--connect-timeout",
            "2s",
        ],
    );
    assert_eq!(w.next("started")["gatt"], "2A1C");
    let away = w.next("node_away");
    assert_eq!(away["retry_in_ms"], 1000, "{away}");
    // A wristband: 38.2 °C, a garbled line, 38.4 °C (a fever confirmed).
    w.send(&format!(
        "{}\nnot hex\n{}\n",
        temp_packet(382),
        temp_packet(384)
    ));
    let r = w.next("recorded");
    assert_eq!(r["metric"], "temperature");
    assert_eq!(r["value"], 38.2);
    let refused = w.next("refused");
    assert_eq!(refused["line"], 2, "{refused}");
    assert_eq!(w.next("recorded")["value"], 38.4);
    w.next("alert_queued");
    // Each failure doubles the wait, up to --max-retry.
    let mut waits = vec![1000];
    while waits.iter().filter(|&&w| w == 4000).count() < 2 {
        waits.push(w.next("node_away")["retry_in_ms"].as_i64().unwrap());
    }
    for pair in waits.windows(2) {
        assert_eq!(pair[1], (pair[0] * 2).min(4000), "{waits:?}");
    }
    // The node is back at the same address: the alert goes out.
    let _node = serve(&data, &addr, &log);
    w.next("synced");
    let sent = w.next("alert_sent");
    assert_eq!(sent["delivered"], 1, "{sent}");
    assert_eq!(node_alerts(d).len(), 1);

    // SIGINT stops it as SIGTERM does.
    assert_eq!(w.signal("-INT"), Some(0));
    assert_eq!(w.next("stopped")["signal"], "SIGINT");
    let readings = run(vigil(&phone), ["--json", "log"]).json();
    assert_eq!(readings.as_array().unwrap().len(), 2, "{readings}");
}

#[test]
fn lines_read_before_sigterm_are_in_the_vault_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let _node = serve(&data, "127.0.0.1:0", &tmp.path().join("serve.log"));
    let phone = tmp.path().join("phone");
    live_vault(&phone);
    run(vigil(&phone), ["enrol", &ticket(d, "Ana")]).ok();
    let mut w = Watch::start(&phone, &["--gatt", "2A37", "--every", "1h"]);
    w.next("synced");
    // Twenty heart-rate packets in one write: the first one recorded means
    // the watch has read them all from the pipe.
    let lines: String = (60..80).map(|bpm| format!("00{bpm:02X}\n")).collect();
    w.send(&lines);
    w.next("recorded");
    assert_eq!(w.signal("-TERM"), Some(0));
    let readings = run(vigil(&phone), ["--json", "log", "--metric", "heart-rate"]).json();
    let mut got: Vec<i64> = readings
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_i64().unwrap())
        .collect();
    got.sort_unstable();
    assert_eq!(got, (60..80).collect::<Vec<i64>>());
}

#[test]
fn watch_refuses_bad_input_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let phone = tmp.path().join("phone");
    live_vault(&phone);
    run(vigil(&phone), ["watch", "--every", "0s"]).fails(2, "--every");
    run(vigil(&phone), ["watch", "--gatt", "zz"]).fails(2, "characteristic");
    // No node known: nothing to sync with.
    run(vigil(&phone), ["watch"]).fails(2, "no node known");
    let help = run(vigil(&phone), ["watch", "--help"]);
    assert!(help.ok().contains("Example"), "{help:?}");
}

#[test]
fn an_unenrolled_paired_device_says_its_alerts_go_out_through_the_enrolled_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let d = data.to_str().unwrap();
    let node = serve(&data, "127.0.0.1:0", &tmp.path().join("serve.log"));
    let phone = tmp.path().join("phone");
    let tablet = tmp.path().join("tablet");
    live_vault(&phone);
    run(vigil(&phone), ["enrol", &ticket(d, "Ana")]).ok();
    // The tablet joins the phone's vault; it does not enrol.
    let first = run(
        vigil(&tablet),
        ["--json", "pair", "join", &node.code, "--timeout", "0"],
    );
    assert_eq!(first.code, 5, "{first:?}");
    let line: Value = serde_json::from_str(first.out.lines().next().unwrap()).unwrap();
    let joiner = line["joiner_code"].as_str().unwrap();
    run(vigil(&phone), ["pair", "show", joiner]).ok();
    run(vigil(&tablet), ["pair", "join", &node.code, "--yes"]).ok();

    // A fever recorded on the tablet.
    let now = real_now();
    for (v, ago) in [("38.4", 9), ("38.6", 4)] {
        let at = rfc3339(now - ago * MIN);
        run(vigil(&tablet), ["record", "temperature", v, "--at", &at]).ok();
    }
    let al = run(vigil(&tablet), ["alerts"]);
    assert!(!al.ok().contains("no alert is ever sent"), "{al:?}");
    assert!(al.out.contains("through your enrolled device"), "{al:?}");
    let st = run(vigil(&tablet), ["status"]);
    assert!(st.ok().contains("through your enrolled device"), "{st:?}");
    // And that is what happens: the tablet syncs, then the phone sends it.
    run(vigil(&tablet), ["sync"]).ok();
    let sync = run(vigil(&phone), ["--json", "sync"]).json();
    assert_eq!(sync["alerts_delivered"], 1, "{sync}");
    assert_eq!(node_alerts(d).len(), 1);

    // A device on its own, never enrolled anywhere, still says no alert leaves.
    let alone = tmp.path().join("alone");
    live_vault(&alone);
    let al = run(vigil(&alone), ["alerts"]);
    assert!(al.ok().contains("no alert is ever sent"), "{al:?}");
}
