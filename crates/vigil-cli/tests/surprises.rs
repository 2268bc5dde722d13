//! The `vigil` binary, played by a new user who trips over the "silent
//! surprises" of issue 18 (item 3): each one is now either refused with a
//! clear message or confirmed in the output.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

mod common;
use common::in_process::{Node, live_vault};
use common::*;

// ---------------------------------------------------------------- helpers

/// A `vigil` command at a fixed "now".
fn at(dir: &Path, now: i64) -> Command {
    let mut c = vigil(dir);
    c.arg("--now").arg(rfc3339(now));
    c
}

use std::process::Command;

/// 2026-11-23T00:00:00Z, a Monday.
const T0: i64 = 1_795_392_000_000;

/// A fresh vault for a 7-day period from T0, "now" an hour into it.
fn new_vault(tmp: &Path) -> PathBuf {
    let dir = tmp.join("vault");
    run(at(&dir, T0 + HOUR), ["init", "--start", &rfc3339(T0)]).ok();
    dir
}

fn record(dir: &Path, now: i64, metric: &str, value: &str, t: i64) -> String {
    let r = run(
        at(dir, now),
        ["--json", "record", metric, value, "--at", &rfc3339(t)],
    );
    r.json()["id"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------- 1. retract twice, unretract

#[test]
fn retracting_twice_is_refused_and_unretract_brings_a_reading_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    let id = record(&dir, now, "temperature", "39.9", T0 + 3 * HOUR);
    run(
        at(&dir, now),
        ["retract", &id, "--reason", "thermometer in tea"],
    )
    .ok();
    // Again, later, with another reason: refused, and the first one kept.
    let again = run(
        at(&dir, now + HOUR),
        ["retract", &id, "--reason", "sensor off the wrist"],
    );
    again.fails(2, "already retracted");
    assert!(again.err.contains(&rfc3339(now)), "when: {again:?}");
    assert!(again.err.contains("thermometer in tea"), "why: {again:?}");
    assert!(again.err.contains("vigil unretract"), "{again:?}");
    let all = run(at(&dir, now), ["--json", "log", "--all"]).json();
    assert_eq!(all[0]["retracted"]["reason"], "thermometer in tea");

    // Un-retracting brings it back into views; the output says so.
    let r = run(at(&dir, now + HOUR), ["unretract", &id]);
    assert!(r.ok().contains("Unretracted"), "{r:?}");
    assert!(r.out.contains("thermometer in tea"), "{r:?}");
    let log = run(at(&dir, now), ["--json", "log"]).json();
    assert_eq!(log.as_array().unwrap().len(), 1, "{log}");
    // A reading that is not retracted cannot be un-retracted.
    run(at(&dir, now), ["unretract", &id]).fails(2, "is not retracted");
    // And it can be retracted anew.
    run(
        at(&dir, now),
        ["retract", &id, "--reason", "wrong after all"],
    )
    .ok();
    let r = run(at(&dir, now), ["unretract", "--help"]);
    assert!(r.ok().contains("Example"), "{r:?}");
}

// ---------------------------------------------------------------- 2. empty annotation

#[test]
fn an_empty_or_blank_annotation_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    let id = record(&dir, now, "temperature", "36.7", T0 + 2 * HOUR);
    run(at(&dir, now), ["annotate", &id, ""]).fails(2, "empty");
    run(at(&dir, now), ["annotate", &id, "  \t "]).fails(2, "empty");
    run_in(at(&dir, now).args(["annotate", &id, "-"]), "   \n").fails(2, "empty");
    let log = run(at(&dir, now), ["--json", "log"]).json();
    assert!(
        log[0].get("annotation").is_none_or(Value::is_null),
        "nothing stored: {log}"
    );
    run(at(&dir, now), ["annotate", &id, "after a shower"]).ok();
}

// ---------------------------------------------------------------- 3. a symptom twice

#[test]
fn a_symptom_given_twice_in_one_check_in_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    let r = run(at(&dir, now), ["check-in", "cough=mild", "cough=severe"]);
    r.fails(2, "cough");
    assert!(r.err.contains("twice"), "{r:?}");
    let day = run(at(&dir, now), ["--json", "check-in"]).json();
    assert_eq!(day["symptoms"][0]["value"], Value::Null, "nothing saved");
    // The same symptom spelt two ways is still the same symptom.
    run(
        at(&dir, now),
        ["check-in", "sore-throat=mild", "sore_throat=mild"],
    )
    .fails(2, "twice");
}

// ---------------------------------------------------------------- 4. °F

#[test]
fn a_fahrenheit_temperature_is_refused_with_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let r = run(at(&dir, T0 + DAY), ["record", "temperature", "98.6"]);
    r.fails(2, "°F");
    assert!(r.err.contains("37.0 °C"), "{r:?}");
    assert!(r.err.contains("vigil record temperature 37.0"), "{r:?}");
    let r = run(at(&dir, T0 + DAY), ["record", "temperature", "101.3"]);
    r.fails(2, "38.5 °C");
    // SpO2 given as a fraction.
    run(at(&dir, T0 + DAY), ["record", "spo2", "0.97"]).fails(2, "vigil record spo2 97");
    let log = run(at(&dir, T0 + DAY), ["--json", "log"]).json();
    assert_eq!(log, Value::Array(vec![]), "nothing recorded");
}

// ---------------------------------------------------------------- 5. a file as --vault

#[test]
fn a_regular_file_as_the_vault_directory_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let afile = tmp.path().join("afile");
    std::fs::write(&afile, "my notes").unwrap();
    let r = run(at(&afile, T0), ["init"]);
    r.fails(2, "is a file, not a vault directory");
    assert!(!r.err.contains("os error"), "{r:?}");
    assert_eq!(std::fs::read_to_string(&afile).unwrap(), "my notes");
    assert!(!tmp.path().join("afile.key").exists(), "no key file left");
    run(at(&afile, T0), ["log"]).fails(3, "is a file, not a vault directory");
}

// ---------------------------------------------------------------- 6. after a manual shred

#[test]
fn after_a_manual_shred_commands_say_the_resident_shredded_it_and_when() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    run(at(&dir, now), ["shred", "--yes", "--offline"]).ok();
    // At once, and a day later: the same truthful answer.
    for later in [now, now + DAY] {
        let r = run(at(&dir, later), ["log"]);
        r.fails(4, &format!("shredded by the resident at {}", rfc3339(now)));
        assert!(!r.err.contains("just now"), "{r:?}");
        assert!(!r.err.contains("period ended"), "{r:?}");
    }
}

// ---------------------------------------------------------------- 7. back-dated readings

#[test]
fn a_back_dated_fever_is_not_overdue_seconds_after_it_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start(&tmp.path().join("node"));
    let phone = tmp.path().join("phone");
    live_vault(&phone);
    run(vigil(&phone), ["enrol", &node.ticket("Ana")]).ok();
    let now = real_now();
    // Measured this morning, typed in now.
    for (v, ago) in [("38.4", 3 * HOUR), ("38.6", 3 * HOUR - 4 * MIN)] {
        let at = rfc3339(now - ago);
        run(vigil(&phone), ["record", "temperature", v, "--at", &at]).ok();
    }
    let a = run(vigil(&phone), ["--json", "alerts"]).json();
    assert_eq!(a["pending_alerts"].as_array().unwrap().len(), 1, "{a}");
    assert_eq!(a["pending_alerts"][0]["overdue"], false, "{a}");
    let text = run(vigil(&phone), ["alerts"]);
    assert!(!text.ok().contains("OVERDUE"), "{text:?}");
    let s = run(vigil(&phone), ["status"]);
    assert!(!s.ok().contains("overdue"), "{s:?}");
    // Queued now: overdue 15 minutes from now, not before.
    let late = rfc3339(real_now() + 20 * MIN);
    let a = run(vigil(&phone), ["--now", &late, "--json", "alerts"]).json();
    assert_eq!(a["pending_alerts"][0]["overdue"], true, "{a}");
}

// ---------------------------------------------------------------- 8. the "fever ended" row

#[test]
fn the_fever_ended_row_shows_when_it_ended() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start(&tmp.path().join("node"));
    let phone = tmp.path().join("phone");
    live_vault(&phone);
    run(vigil(&phone), ["enrol", &node.ticket("Ana")]).ok();
    let now = real_now();
    let onset = now - 5 * HOUR;
    // A fever (two readings ≥ 37.3 °C within 10 min), then normal for over an hour.
    for (v, t) in [
        ("38.4", onset),
        ("38.6", onset + 4 * MIN),
        ("36.8", onset + HOUR),
        ("36.7", onset + 3 * HOUR),
    ] {
        run(
            vigil(&phone),
            ["record", "temperature", v, "--at", &rfc3339(t)],
        )
        .ok();
    }
    let a = run(vigil(&phone), ["--json", "alerts"]).json();
    let end = a["episodes"][0]["end"].as_str().unwrap().to_owned();
    assert_ne!(end, rfc3339(onset));
    run(vigil(&phone), ["sync"]).ok();
    let d = run(vigil(&phone), ["disclosures"]);
    let text = d.ok();
    let ended: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("alert sent") && l.contains("ended"))
        .collect();
    assert_eq!(ended.len(), 1, "{text}");
    assert!(ended[0].contains(&format!("ended at {end}")), "{text}");
    let dj = run(vigil(&phone), ["--json", "disclosures"]).json();
    let sent: Vec<&Value> = dj
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["kind"] == "alert-sent" && x["episode"] == "ended")
        .collect();
    assert_eq!(sent.len(), 1, "{dj}");
    assert_eq!(sent[0]["ended"], end.as_str(), "{dj}");
}

// ---------------------------------------------------------------- 9. far-future start, "1 days"

#[test]
fn a_far_future_start_is_refused_and_one_day_is_singular() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let r = run(
        at(&dir, T0),
        ["init", "--start", "2030-01-01T00:00:00Z", "--days", "1"],
    );
    r.fails(2, "2030-01-01T00:00:00Z");
    assert!(r.err.contains("in the future"), "{r:?}");
    assert!(!dir.exists() || files(&dir).is_empty(), "nothing created");
    // Tomorrow is fine, and said so.
    let r = run(
        at(&dir, T0),
        ["init", "--start", &rfc3339(T0 + DAY), "--days", "1"],
    );
    let out = r.ok();
    assert!(out.contains("(1 day)"), "{r:?}");
    assert!(!out.contains("1 days"), "{r:?}");
    assert!(out.contains("starts in 1d"), "{r:?}");
}

// ---------------------------------------------------------------- 10. conflicts

#[test]
fn conflicts_say_which_device_set_which_value_and_keys_are_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start(&tmp.path().join("node"));
    let phone = tmp.path().join("phone");
    let tablet = tmp.path().join("tablet");
    live_vault(&phone);
    run(vigil(&phone), ["enrol", &node.ticket("Ana")]).ok();
    // A bare symptom name is not a conflict key: say what is.
    let r = run(
        vigil(&phone),
        ["conflicts", "resolve", "headache", "--pick", "1"],
    );
    r.fails(2, "DAY/SYMPTOM");
    assert!(r.err.contains("vigil conflicts"), "{r:?}");
    assert!(!r.err.contains("invalid reading id"), "{r:?}");

    // Pair a tablet.
    let first = run(
        vigil(&tablet),
        ["--json", "pair", "join", &node.code, "--timeout", "0"],
    );
    let line: Value = serde_json::from_str(first.out.lines().next().unwrap()).unwrap();
    let joiner = line["joiner_code"].as_str().unwrap().to_owned();
    run(vigil(&phone), ["pair", "show", &joiner]).ok();
    run(
        vigil(&tablet),
        ["pair", "join", &node.code, "--timeout", "0", "--yes"],
    )
    .ok();
    let phone_dev = run(vigil(&phone), ["--json", "status"]).json()["device"]
        .as_str()
        .unwrap()
        .to_owned();
    let tablet_dev = run(vigil(&tablet), ["--json", "status"]).json()["device"]
        .as_str()
        .unwrap()
        .to_owned();
    run(vigil(&phone), ["check-in", "cough=mild"]).ok();
    run(vigil(&tablet), ["check-in", "cough=severe"]).ok();
    run(vigil(&phone), ["sync"]).ok();
    run(vigil(&tablet), ["sync"]).ok();
    run(vigil(&phone), ["sync"]).ok();
    let text = run(vigil(&phone), ["conflicts"]);
    let out = text.ok();
    let line_of = |v: &str| {
        out.lines()
            .find(|l| l.contains(&format!(". {v}")))
            .unwrap_or_else(|| panic!("{v}: {out}"))
            .to_owned()
    };
    assert!(line_of("mild").contains("this device"), "{out}");
    assert!(line_of("severe").contains(&tablet_dev[..8]), "{out}");
    let j = run(vigil(&phone), ["--json", "conflicts"]).json();
    let devices: Vec<&str> = j[0]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let values: Vec<&str> = j[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let of = |v: &str| devices[values.iter().position(|x| *x == v).unwrap()];
    assert_eq!(of("mild"), phone_dev);
    assert_eq!(of("severe"), tablet_dev);
}

// ---------------------------------------------------------------- 11. pair join timeout

#[test]
fn pair_join_timeout_covers_connecting_to_a_down_node() {
    let tmp = tempfile::tempdir().unwrap();
    let code = {
        let node = Node::start(&tmp.path().join("node"));
        node.code.clone()
    };
    // The node is gone: nothing answers at its address.
    let tablet = tmp.path().join("tablet");
    let start = Instant::now();
    let r = run(vigil(&tablet), ["pair", "join", &code, "--timeout", "5s"]);
    let took = start.elapsed();
    r.fails(1, "cannot reach the node");
    assert!(took.as_secs_f64() < 9.0, "took {took:?}");
}

// ---------------------------------------------------------------- 12. fever and other symptoms

#[test]
fn check_ins_take_fever_and_other() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    let r = run(at(&dir, now), ["check-in", "fever=moderate", "other=mild"]);
    let out = r.ok();
    assert!(out.contains("fever") && out.contains("moderate"), "{r:?}");
    let day = run(at(&dir, now), ["--json", "check-in"]).json();
    let value = |name: &str| {
        day["symptoms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["symptom"] == name)
            .unwrap_or_else(|| panic!("{name}: {day}"))["value"]
            .clone()
    };
    assert_eq!(value("fever"), "moderate");
    assert_eq!(value("other"), "mild");
    // Exported to FHIR: fever with its SNOMED CT code, "other" as text.
    let out = tmp.path().join("fhir.json");
    run(
        at(&dir, now),
        ["export", "--fhir", "--out", out.to_str().unwrap()],
    )
    .ok();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("386661006"), "fever finding coded");
    assert!(text.contains("Other symptom"), "other as text");
}
