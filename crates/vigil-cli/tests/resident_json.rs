//! `vigil --json` as a script sees it (issue 18, item 4): every failure is a
//! JSON object on stdout with a stable code and the documented exit code,
//! clap's own refusals included; the commands name the same things alike
//! and write absent values as `null`; typos get a suggestion.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod common;
use common::*;

/// 2026-11-23T00:00:00Z: the period's start.
const T0: i64 = 1_795_392_000_000;

fn at(dir: &Path, now: i64) -> Command {
    let mut c = vigil(dir);
    c.arg("--now").arg(rfc3339(now));
    c
}

fn new_vault(tmp: &Path) -> PathBuf {
    let dir = tmp.join("vault");
    run(at(&dir, T0 + HOUR), ["init", "--start", &rfc3339(T0)]).ok();
    dir
}

/// A failure under `--json`, as a script reads it: the exit code, and one
/// JSON document on stdout `{"error": {"code", "message"}}` and nothing
/// else; stderr holds nothing but (at most) a copy of the message.
#[track_caller]
fn json_error(r: &Run, exit: i32, code: &str, needle: &str) -> String {
    assert_eq!(r.code, exit, "exit code: {r:#?}");
    let v: Value = serde_json::from_str(&r.out)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {r:#?}"));
    let obj = v.as_object().expect("an object");
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        vec!["error"],
        "only `error`: {v}"
    );
    let e = v["error"].as_object().expect("error is an object");
    let mut keys: Vec<&String> = e.keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["code", "message"], "{v}");
    assert_eq!(e["code"], code, "{v}");
    let message = e["message"].as_str().expect("a string message").to_owned();
    assert!(message.contains(needle), "{needle:?} in {message:?}");
    assert!(!message.starts_with("error:"), "no prefix: {message:?}");
    assert!(
        r.err.is_empty() || r.err.contains(&message),
        "stderr is empty or a copy: {r:#?}"
    );
    message
}

#[test]
fn json_errors_are_an_object_on_stdout_with_the_same_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let now = T0 + DAY;
    // No vault: exit 3.
    let none = tmp.path().join("none");
    let r = run(at(&none, now), ["--json", "log"]);
    json_error(&r, 3, "no_vault", "vigil init");
    // Bad input found by the command: exit 2.
    let dir = new_vault(tmp.path());
    let r = run(at(&dir, now), ["--json", "record", "temperature", "50"]);
    json_error(&r, 2, "usage", "outside the valid range");
    let r = run(at(&dir, now), ["--json", "annotate", "zzzz-1", "a note"]);
    json_error(&r, 2, "usage", "invalid reading id");
    // The operation failed (not confirmed): exit 1.
    let mut c = at(&dir, now);
    c.args(["--json", "shred"]);
    let r = run_in(&mut c, "no\n");
    assert_eq!(r.code, 1, "{r:#?}");
    let v: Value = serde_json::from_str(&r.out).expect("stdout is JSON");
    assert_eq!(v["error"]["code"], "failed", "{v}");
    // Shredded: exit 4, for every command.
    run(at(&dir, now), ["shred", "--yes", "--offline"]).ok();
    for cmd in [vec!["log"], vec!["status"], vec!["alerts"]] {
        let mut args = vec!["--json"];
        args.extend(cmd);
        let r = run(at(&dir, now), &args);
        json_error(&r, 4, "shredded", "shredded");
    }
    // Without --json, errors stay one line on stderr and stdout is empty.
    let r = run(at(&dir, now), ["log"]);
    r.fails(4, "shredded");
    assert!(r.out.is_empty(), "{r:#?}");
}

/// clap refuses these before any command runs; with `--json` anywhere
/// among the arguments the refusal is the same JSON object.
#[test]
fn parse_errors_with_json_are_json_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--json", "recrod", "temperature", "37"], "record"),
        (
            vec!["record", "temperature", "hot", "--json"],
            "invalid value",
        ),
        (vec!["log", "--json", "--day", "tomorrow"], "YYYY-MM-DD"),
        (vec!["--json", "status", "--frobnicate"], "--frobnicate"),
        (vec!["--json"], "subcommand"),
    ];
    for (args, needle) in cases {
        let r = run(vigil(&dir), &args);
        json_error(&r, 2, "usage", needle);
    }
    // `--json` after `--` is a value, not the option: plain text.
    let r = run(vigil(&dir), ["annotate", "--", "--json"]);
    r.fails(2, "");
    assert!(r.out.is_empty(), "{r:#?}");
    // Help is still help, not an error.
    let r = run(vigil(&dir), ["--json", "--help"]);
    assert!(r.ok().contains("Exit codes"), "{r:#?}");
}

/// The keys of every object in `v` (recursively), by the path of keys
/// leading to it, with array indices dropped: objects of one kind (one
/// path) must all have the same keys.
fn shapes(v: &Value, path: &str, out: &mut Vec<(String, BTreeSet<String>)>) {
    match v {
        Value::Object(m) => {
            out.push((path.to_owned(), m.keys().cloned().collect()));
            for (k, x) in m {
                shapes(x, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| shapes(x, &format!("{path}[]"), out)),
        _ => {}
    }
}

#[track_caller]
fn same_keys_everywhere(v: &Value) {
    let mut all = Vec::new();
    shapes(v, "", &mut all);
    for (p, keys) in &all {
        for (q, other) in &all {
            if p == q {
                assert_eq!(keys, other, "objects at {p} differ in keys: {v:#}");
            }
        }
    }
}

#[test]
fn absent_values_are_null_and_keys_always_present() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    let id = |v: Value| v["id"].as_str().unwrap().to_owned();
    let rec = |value: &str, t: i64| {
        id(run(
            at(&dir, now),
            [
                "--json",
                "record",
                "temperature",
                value,
                "--at",
                &rfc3339(t),
            ],
        )
        .json())
    };
    let plain = rec("36.6", T0 + 2 * HOUR);
    let noted = rec("36.8", T0 + 3 * HOUR);
    let wrong = rec("39.9", T0 + 4 * HOUR);
    run(at(&dir, now), ["annotate", &noted, "after a walk"]).ok();
    run(
        at(&dir, now),
        ["retract", &wrong, "--reason", "off the wrist"],
    )
    .ok();
    let log = run(at(&dir, now), ["--json", "log", "--all"]).json();
    same_keys_everywhere(&log);
    let by_id = |i: &str| {
        log.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == i)
            .cloned()
            .unwrap()
    };
    let p = by_id(&plain);
    assert_eq!(p["annotation"], Value::Null, "{p}");
    assert_eq!(p["retracted"], Value::Null, "{p}");
    assert_eq!(p["annotation_conflict"], Value::Null, "{p}");
    assert_eq!(by_id(&noted)["annotation"], "after a walk");
    assert_eq!(by_id(&wrong)["retracted"]["reason"], "off the wrist");
    // status writes the same: keys present, null when there is nothing.
    let s = run(at(&dir, now), ["--json", "status"]).json();
    assert_eq!(s["last_sync"], Value::Null, "{s}");
    assert_eq!(s["node"], Value::Null, "{s}");
    assert_eq!(s["fever"], Value::Null, "{s}");
    same_keys_everywhere(&s);
}

#[test]
fn status_and_alerts_name_alerts_and_episodes_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + 2 * DAY + 6 * HOUR;
    for (v, ago) in [("38.2", 20), ("38.4", 10)] {
        run(
            at(&dir, now),
            [
                "record",
                "temperature",
                v,
                "--at",
                &rfc3339(now - ago * MIN),
            ],
        )
        .ok();
    }
    let s = run(at(&dir, now), ["--json", "status"]).json();
    let a = run(at(&dir, now), ["--json", "alerts"]).json();
    // The list of alerts waiting for the node has one name in both.
    assert!(s["pending_alerts"].is_array(), "{s}");
    assert!(a["pending_alerts"].is_array(), "{a}");
    assert!(a.get("pending").is_none(), "the old name is gone: {a}");
    // Counts of alerts read `alerts_<state>`, as in `sync` and `record`.
    assert_eq!(s["alerts_overdue"], 0, "{s}");
    assert!(s.get("overdue_alerts").is_none(), "{s}");
    // The current fever in status is an episode as alerts lists them.
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let episode = &a["episodes"][0];
    assert_eq!(keys(&s["fever"]), keys(episode), "{s} vs {a}");
    assert_eq!(s["fever"]["onset"], episode["onset"]);
    assert_eq!(s["fever"]["end"], Value::Null);
}

#[test]
fn typos_get_a_suggestion() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    let r = run(at(&dir, now), ["recrod", "temperature", "37"]);
    // The best guess first, though `record-gatt` and others are close too.
    r.fails(2, "did you mean 'record'?");
    let r = run(vigil(&dir), ["status", "--vualt", "x"]);
    r.fails(2, "'--vault'");
    let r = run(vigil(&dir), ["sattus"]);
    r.fails(2, "'status'");
    // `checkin` is how many people write it: it just works.
    let r = run(at(&dir, now), ["checkin", "cough=mild"]);
    assert!(r.ok().contains("Check-in saved"), "{r:#?}");
    let help = run(vigil(&dir), ["--help"]);
    assert!(
        help.ok().contains("checkin"),
        "the alias is shown: {help:#?}"
    );
    // The suggestion reaches --json too.
    let r = run(vigil(&dir), ["--json", "--vualt", "x", "status"]);
    json_error(&r, 2, "usage", "'--vault'");
}

/// `export --json` to a file: both kinds of export write the same keys,
/// with `null` for what does not apply (no `observations` in an Automerge
/// export, no `bytes` in a FHIR one), as every other command does.
#[test]
fn export_summaries_have_the_same_keys_with_null() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    run(
        at(&dir, now),
        ["record", "temperature", "36.6", "--at", &rfc3339(T0 + HOUR)],
    )
    .ok();
    let fhir = tmp.path().join("week.fhir.json");
    let am = tmp.path().join("week.automerge");
    let a = run(
        at(&dir, now),
        [
            "--json",
            "export",
            "--fhir",
            "--out",
            fhir.to_str().unwrap(),
        ],
    )
    .json();
    let b = run(
        at(&dir, now),
        ["--json", "export", "--automerge", am.to_str().unwrap()],
    )
    .json();
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(keys(&a), keys(&b), "{a} / {b}");
    assert!(
        keys(&a).contains("observations") && keys(&a).contains("bytes"),
        "{a}"
    );
    assert!(
        a.as_object().unwrap().values().any(Value::is_null),
        "FHIR: {a}"
    );
    assert!(
        b.as_object().unwrap().values().any(Value::is_null),
        "Automerge: {b}"
    );
}
