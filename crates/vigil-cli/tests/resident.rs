//! The `vigil` binary, end to end: every command's happy path and its
//! refusals (exit code, one-line error), the FHIR and Automerge exports of a
//! simulated week, and the network commands against an in-process node.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// 2026-11-23T00:00:00Z, a Monday: the simulated week's start.
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

// ---------------------------------------------------------------- local commands

#[test]
fn t0_is_the_documented_monday() {
    assert_eq!(rfc3339(T0), "2026-11-23T00:00:00Z");
}

#[test]
fn every_command_has_help_with_an_example() {
    let tmp = tempfile::tempdir().unwrap();
    let top = run(vigil(tmp.path()), ["--help"]);
    assert!(top.ok().contains("Exit codes"), "{top:?}");
    assert!(top.out.contains("VIGIL_VAULT"));
    for cmd in [
        vec!["init"],
        vec!["record"],
        vec!["record-gatt"],
        vec!["log"],
        vec!["summary"],
        vec!["annotate"],
        vec!["retract"],
        vec!["check-in"],
        vec!["conflicts"],
        vec!["conflicts", "resolve"],
        vec!["enrol"],
        vec!["sync"],
        vec!["pair"],
        vec!["pair", "show"],
        vec!["pair", "join"],
        vec!["disclosures"],
        vec!["alerts"],
        vec!["status"],
        vec!["export"],
        vec!["shred"],
        vec!["recover"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let r = run(vigil(tmp.path()), &args);
        assert!(
            r.ok().contains("Example"),
            "`vigil {}` help has an example: {r:?}",
            cmd.join(" ")
        );
    }
    // No subcommand: help on stderr, usage exit code.
    assert_eq!(run(vigil(tmp.path()), Vec::<&str>::new()).code, 2);
    run(vigil(tmp.path()), ["frobnicate"]).fails(2, "frobnicate");
}

#[test]
fn init_record_log_and_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    assert!(
        tmp.path().join("vault.key").exists(),
        "key beside the vault"
    );
    let now = T0 + DAY + 12 * HOUR;
    record(&dir, now, "temperature", "36.6", T0 + 8 * HOUR);
    record(&dir, now, "temperature", "37.0", T0 + 20 * HOUR);
    record(&dir, now, "heart-rate", "72", T0 + 8 * HOUR);
    record(&dir, now, "spo2", "97", T0 + DAY + HOUR);
    record(&dir, now, "respiratory-rate", "14", T0 + DAY + HOUR);
    let id = record(&dir, now, "steps", "4200", T0 + DAY + 2 * HOUR);
    assert!(id.len() > 33 && id.contains('-'));
    // Default time is now; the output names the reading.
    let r = run(at(&dir, now), ["record", "temperature", "36.9"]);
    assert!(r.ok().contains("Recorded temperature 36.9 °C at"), "{r:?}");

    let table = run(at(&dir, now), ["log"]);
    let t = table.ok();
    assert!(t.starts_with("TIME"), "{t}");
    assert_eq!(t.lines().count(), 8, "header + 7 readings: {t}");
    assert!(t.contains("2026-11-23T08:00:00Z  temperature") && t.contains("36.6"));
    let temps = run(at(&dir, now), ["--json", "log", "--metric", "temperature"]).json();
    assert_eq!(temps.as_array().unwrap().len(), 3);
    let day1 = run(at(&dir, now), ["--json", "log", "--day", "2026-11-23"]).json();
    assert_eq!(day1.as_array().unwrap().len(), 3);
    assert_eq!(day1[0]["time"], "2026-11-23T08:00:00Z");
    assert_eq!(day1[0]["unit"], "°C");
    let range = run(
        at(&dir, now),
        [
            "--json",
            "log",
            "--from",
            "2026-11-23T10:00:00Z",
            "--to",
            "2026-11-24T01:30:00Z",
        ],
    )
    .json();
    assert_eq!(range.as_array().unwrap().len(), 3, "{range}");

    let sum = run(
        at(&dir, now),
        ["--json", "summary", "--metric", "temperature"],
    )
    .json();
    let sum = sum.as_array().unwrap();
    assert_eq!(sum.len(), 2);
    assert_eq!(sum[0]["day"], "2026-11-23");
    assert_eq!(sum[0]["count"], 2);
    assert_eq!(sum[0]["min"], 36.6);
    assert_eq!(sum[0]["max"], 37.0);
    assert!((sum[0]["mean"].as_f64().unwrap() - 36.8).abs() < 1e-9);
    let text = run(at(&dir, now), ["summary"]);
    assert!(
        text.ok().contains("MEAN") && text.out.contains("36.80"),
        "{text:?}"
    );
    let one_day = run(at(&dir, now), ["--json", "summary", "--day", "2026-11-24"]).json();
    assert_eq!(one_day.as_array().unwrap().len(), 4, "{one_day}");

    // The environment variables work as the flags do.
    let mut c = Command::new(assert_cmd::cargo::cargo_bin!("vigil"));
    c.env("VIGIL_VAULT", &dir)
        .env("VIGIL_NOW", rfc3339(now))
        .env_remove("VIGIL_KEY_FILE");
    assert_eq!(
        run(c, ["--json", "log"]).json().as_array().unwrap().len(),
        7
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    let record_at = |at| vec!["record", "temperature", "37", "--at", at];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["record", "location", "1"], "heart-rate, spo2"),
        (vec!["record", "temperature", "NaN"], "finite"),
        (vec!["record", "temperature", "inf"], "finite"),
        (vec!["record", "temperature", "50"], "30–45"),
        (vec!["record", "temperature", "-5"], "30–45"),
        (vec!["record", "spo2", "101"], "50–100"),
        (vec!["record", "steps", "10.5"], "whole number"),
        (vec!["record", "heart-rate", "fast"], "invalid value"),
        (vec!["record", "temperature"], "required"),
        (record_at("yesterday"), "RFC 3339"),
        (record_at("2026-11-23T25:00:00Z"), "RFC 3339"),
        (record_at("2026-11-30T00:00:00Z"), "future"),
        (
            record_at("2026-11-20T00:00:00Z"),
            "outside the monitoring period",
        ),
        (vec!["log", "--day", "2026-02-30"], "YYYY-MM-DD"),
        (vec!["log", "--metric", "mood"], "unknown metric"),
        (vec!["annotate", "nope", "x"], "invalid reading id"),
        (vec!["annotate", "abcdef12-9", "x"], "no reading"),
        (vec!["retract", "abcdef12-1"], "--reason"),
        (vec!["check-in", "cough"], "SYMPTOM=SEVERITY"),
        (vec!["check-in", "hiccups=mild"], "unknown symptom"),
        (vec!["check-in", "cough=awful"], "unknown severity"),
        (
            vec!["check-in", "--day", "2026-12-24", "cough=mild"],
            "outside the monitoring period",
        ),
        (
            vec!["conflicts", "resolve", "2026-11-23/cough", "mild"],
            "no unresolved conflict",
        ),
        (vec!["enrol", "vigil1/nonsense"], "not a ticket"),
        (
            vec!["enrol", "vigil-ticket1/127.0.0.1:4433/00"],
            "bad ticket",
        ),
        (vec!["sync"], "no node known"),
        (
            vec!["pair", "show", "vigil-join1/xyz"],
            "invalid joiner code",
        ),
        (vec!["export"], "required"),
        (
            vec!["export", "--fhir", "--automerge", "x"],
            "cannot be used",
        ),
        (vec!["init", "--days", "0"], "period length"),
    ];
    for (args, needle) in cases {
        let r = run(at(&dir, now), &args);
        r.fails(2, needle);
    }
    // A bad --now is bad input too.
    run(vigil(&dir), ["--now", "soon", "log"]).fails(2, "RFC 3339");
    // Nothing was recorded by any of them.
    assert_eq!(
        run(at(&dir, now), ["--json", "log", "--all"]).json(),
        Value::Array(vec![])
    );
}

#[test]
fn record_gatt_records_a_wristbands_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    // 38.2 °C, own time stamp 2026-11-23 08:30:00 (UTC), finger; --at is ignored.
    let r = run(
        at(&dir, now),
        [
            "--json",
            "record-gatt",
            "2A1C",
            "067E0100FFEA070B17081E0004",
            "--at",
            &rfc3339(T0 + 10 * HOUR),
        ],
    );
    let j = r.json();
    assert_eq!(j["characteristic"], "2A1C");
    let readings = j["readings"].as_array().unwrap();
    assert_eq!(readings.len(), 1, "{j}");
    assert_eq!(readings[0]["metric"], "temperature");
    assert_eq!(readings[0]["value"], 38.2);
    assert_eq!(readings[0]["unit"], "°C");
    assert_eq!(readings[0]["time"], "2026-11-23T08:30:00Z");
    // Pulse oximetry, hex split over arguments with spaces, no time stamp: at --at.
    let r = run(
        at(&dir, now),
        [
            "record-gatt",
            "0x2a5f",
            "00 62 00",
            "48",
            "00",
            "--at",
            &rfc3339(T0 + 2 * HOUR),
        ],
    );
    let out = r.ok();
    assert!(out.contains("spo2 98 % at 2026-11-23T02:00:00Z"), "{out}");
    assert!(
        out.contains("heart-rate 72 bpm at 2026-11-23T02:00:00Z"),
        "{out}"
    );
    // Heart rate at "now".
    run(at(&dir, now), ["record-gatt", "2A37", "0048"]).ok();
    let log = run(at(&dir, now), ["--json", "log"]).json();
    let got: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["metric"].to_string(), r["value"].to_string()))
        .collect();
    assert_eq!(got.len(), 4, "{log}");
    assert!(
        got.contains(&("\"temperature\"".into(), "38.2".into())),
        "{log}"
    );
}

#[test]
fn record_gatt_refuses_bad_packets_with_exit_2_and_records_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    let gatt = |c, hex| vec!["record-gatt", c, hex];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // The public example without its last byte: the type is missing.
        (gatt("2A1C", "06B00E00FEDC070C050B321B"), "truncated"),
        (gatt("2A1C", "00FFFF7F00"), "NaN"),
        (gatt("2A1C", "0000008000"), "NRes"),
        (gatt("2A5F", "0062000208"), "-INFINITY"),
        // SpO2 fine, pulse 300 bpm out of range: neither recorded.
        (gatt("2A5F", "0062002C01"), "20–250"),
        (gatt("2A37", "004800"), "trailing"),
        (gatt("2A37", "0448"), "no skin contact"),
        (gatt("2A35", "0048"), "unknown characteristic"),
        (gatt("2A1C", "0G"), "invalid bytes"),
        (gatt("2A1C", "067"), "invalid bytes"),
        (gatt("XYZ", "00"), "invalid characteristic"),
        (vec!["record-gatt", "2A37"], "required"),
        // Valid, but its own time stamp (2012) is outside the period.
        (
            gatt("2A1C", "06B00E00FEDC070C050B321B04"),
            "outside the monitoring period",
        ),
        // Its own time stamp, 2026-11-25 08:30, is after "now".
        (gatt("2A1C", "027E0100FFEA070B19081E00"), "future"),
    ];
    for (args, needle) in cases {
        run(at(&dir, now), &args).fails(2, needle);
    }
    assert_eq!(
        run(at(&dir, now), ["--json", "log", "--all"]).json(),
        Value::Array(vec![])
    );
}

#[test]
fn missing_vault_and_wrong_key_file_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let now = T0 + DAY;
    let none = tmp.path().join("none");
    for cmd in [
        vec!["log"],
        vec!["status"],
        vec!["record", "temperature", "37"],
        vec!["export", "--fhir"],
        vec!["shred", "--yes"],
    ] {
        run(at(&none, now), &cmd).fails(3, "vigil init");
    }
    let a = new_vault(&tmp.path().join("a"));
    let b = new_vault(&tmp.path().join("b"));
    // A's vault with B's key.
    let mut c = at(&a, now);
    c.arg("--key-file")
        .arg(tmp.path().join("b").join("vault.key"));
    run(c, ["log"]).fails(3, "another vault");
    // A missing key file.
    let mut c = at(&a, now);
    c.arg("--key-file").arg(tmp.path().join("nowhere.key"));
    run(c, ["log"]).fails(3, "no key file");
    // A file that is not a key file.
    let junk = tmp.path().join("junk.key");
    std::fs::write(&junk, b"not a key").unwrap();
    let mut c = at(&b, now);
    c.arg("--key-file").arg(&junk);
    run(c, ["status"]).fails(3, "not a Vigil key file");
    // init refuses an existing vault and an existing key file.
    run(at(&a, now), ["init"]).fails(2, "already holds a vault");
    let mut c = at(&tmp.path().join("c"), now);
    c.arg("--key-file")
        .arg(tmp.path().join("a").join("vault.key"));
    run(c, ["init"]).fails(2, "already exists");
    // Both vaults still open with their own keys.
    run(at(&a, now), ["status"]).ok();
    run(at(&b, now), ["status"]).ok();
}

#[test]
fn annotate_retract_and_check_in() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    let a = record(&dir, now, "temperature", "36.7", T0 + 2 * HOUR);
    let b = record(&dir, now, "temperature", "39.9", T0 + 3 * HOUR);
    let short = |id: &str| format!("{}-{}", &id[..8], id.rsplit('-').next().unwrap());
    run(
        at(&dir, now),
        ["annotate", &short(&a), "after a hot shower"],
    )
    .ok();
    run(at(&dir, now), ["annotate", &a, &"x".repeat(2001)]).fails(2, "exceeds the limit of 2000");
    let r = run(
        at(&dir, now),
        ["retract", &b, "--reason", "sensor off the wrist"],
    );
    assert!(r.ok().contains("Retracted"), "{r:?}");
    let log = run(at(&dir, now), ["--json", "log"]).json();
    assert_eq!(log.as_array().unwrap().len(), 1);
    assert_eq!(log[0]["annotation"], "after a hot shower");
    let all = run(at(&dir, now), ["--json", "log", "--all"]).json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[1]["retracted"]["reason"], "sensor off the wrist");
    let table = run(at(&dir, now), ["log", "--all"]);
    assert!(
        table.ok().contains("RETRACTED (sensor off the wrist)"),
        "{table:?}"
    );
    let sum = run(at(&dir, now), ["--json", "summary"]).json();
    assert_eq!(sum[0]["max"], 36.7, "a retracted reading leaves statistics");

    let r = run(
        at(&dir, now),
        [
            "check-in",
            "--day",
            "2026-11-23",
            "cough=mild",
            "sore-throat=none",
        ],
    );
    assert!(r.ok().contains("Check-in saved for 2026-11-23"), "{r:?}");
    assert!(r.out.contains("cough") && r.out.contains("mild"));
    let day = run(at(&dir, now), ["--json", "check-in", "--day", "2026-11-23"]).json();
    let syms = day["symptoms"].as_array().unwrap();
    assert_eq!(syms.len(), 10);
    assert_eq!(syms[0]["symptom"], "cough");
    assert_eq!(syms[0]["value"], "mild");
    assert_eq!(syms[1]["value"], "none");
    assert_eq!(syms[2]["value"], Value::Null);
    // Today, by default.
    run(at(&dir, now), ["check-in", "fatigue=moderate"]).ok();
    let today = run(at(&dir, now), ["--json", "check-in"]).json();
    assert_eq!(today["day"], "2026-11-24");
    // No conflicts on one device.
    assert!(
        run(at(&dir, now), ["conflicts"])
            .ok()
            .contains("No conflicts")
    );
    assert_eq!(
        run(at(&dir, now), ["--json", "conflicts"]).json(),
        Value::Array(vec![])
    );
}

/// Health text can come from standard input (`-`), so it never has to be
/// typed on a command line that the shell keeps in its history.
#[test]
fn notes_and_reasons_read_from_stdin_stay_out_of_argv() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    let a = record(&dir, now, "temperature", "36.7", T0 + 2 * HOUR);
    let b = record(&dir, now, "temperature", "39.9", T0 + 3 * HOUR);
    let mut cmd = at(&dir, now);
    cmd.args(["annotate", &a, "-"]);
    assert!(
        run_in(&mut cmd, "took paracetamol at 9\n")
            .ok()
            .contains("Annotated")
    );
    let mut cmd = at(&dir, now);
    cmd.args(["retract", &b, "--reason", "-"]);
    assert!(
        run_in(&mut cmd, "band was on the radiator\n")
            .ok()
            .contains("Retracted")
    );
    let log = run(at(&dir, now), ["--json", "log", "--all"]).json();
    let text = log.to_string();
    assert!(text.contains("took paracetamol at 9"), "{text}");
    assert!(text.contains("band was on the radiator"), "{text}");
    // Binary input is refused as bad input, and nothing is written.
    let mut cmd = at(&dir, now);
    cmd.args(["annotate", &a, "-"]);
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&[0xff, 0xfe, 0x00])
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not UTF-8"));
}

/// A `vigil` command at a fixed "now" in the time zone `tz`.
fn at_tz(dir: &Path, now: i64, tz: &str) -> Command {
    let mut c = at(dir, now);
    c.env("TZ", tz);
    c
}

/// A resident in Beijing sees times in their own zone: an evening reading
/// under today's date, not tomorrow's; `--utc` and `--json` stay in UTC.
#[test]
fn times_are_shown_and_days_taken_in_the_local_time_zone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    // 2026-11-27T14:30Z is 22:30 in Beijing; 17:00Z is 01:00 the next day there.
    let evening = T0 + 4 * DAY + 14 * HOUR + 30 * MIN;
    let late = T0 + 4 * DAY + 17 * HOUR;
    let now = T0 + 5 * DAY + 18 * HOUR; // 2026-11-29T02:00+08:00
    let bj = |args: &[&str]| run(at_tz(&dir, now, "Asia/Shanghai"), args);
    // Input accepts offsets: the resident types their own clock time.
    let r = bj(&[
        "record",
        "temperature",
        "37.9",
        "--at",
        "2026-11-27T22:30:00+08:00",
    ]);
    assert!(r.ok().contains("2026-11-27T22:30:00+08:00"), "{r:?}");
    record(&dir, now, "temperature", "38.2", late);

    let log = bj(&["log"]);
    assert!(log.ok().contains("2026-11-27T22:30:00+08:00"), "{log:?}");
    assert!(log.out.contains("2026-11-28T01:00:00+08:00"), "{log:?}");
    assert!(!log.out.contains("14:30"), "no UTC time shown: {log:?}");
    // `--day` is the local day.
    let d27 = bj(&["log", "--day", "2026-11-27"]);
    assert!(d27.ok().contains("22:30:00+08:00"), "{d27:?}");
    assert!(
        !d27.out.contains("38.2"),
        "01:00 local is the 28th: {d27:?}"
    );
    let d28 = bj(&["log", "--day", "2026-11-28"]);
    assert!(
        d28.ok().contains("38.2") && !d28.out.contains("37.9"),
        "{d28:?}"
    );
    // Summaries group by local day.
    let sum = bj(&["--json", "summary"]).json();
    let days: Vec<&str> = sum
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["day"].as_str().unwrap())
        .collect();
    assert_eq!(days, ["2026-11-27", "2026-11-28"], "{sum}");
    // A check-in without --day is for today, local: the 29th in Beijing.
    let c = bj(&["check-in", "cough=mild"]);
    assert!(c.ok().contains("2026-11-29"), "{c:?}");

    // --utc forces UTC, and UTC days.
    let utc = bj(&["--utc", "log", "--day", "2026-11-27"]);
    assert!(utc.ok().contains("2026-11-27T14:30:00Z"), "{utc:?}");
    assert!(utc.out.contains("2026-11-27T17:00:00Z"), "{utc:?}");
    assert!(!utc.out.contains("+08:00"), "{utc:?}");
    // JSON stays UTC whatever the zone, so scripts read one format.
    let json = bj(&["--json", "log"]).json();
    assert_eq!(json[0]["time"], rfc3339(evening));
    assert_eq!(json[0]["time"], "2026-11-27T14:30:00Z");

    // Another zone, another reading of the same instants.
    let ny = run(at_tz(&dir, now, "America/New_York"), ["log"]);
    assert!(ny.ok().contains("2026-11-27T09:30:00-05:00"), "{ny:?}");
}

/// A zone the system does not know is not a crash: UTC, with a note.
#[test]
fn an_unknown_time_zone_falls_back_to_utc_with_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    record(&dir, now, "temperature", "36.6", T0 + 8 * HOUR);
    let r = run(at_tz(&dir, now, "Mars/Olympus_Mons"), ["log"]);
    assert!(r.ok().contains("2026-11-23T08:00:00Z"), "{r:?}");
    assert!(
        r.err.contains("Mars/Olympus_Mons") && r.err.contains("UTC"),
        "{r:?}"
    );
    // With TZ unset, the system's zone (whatever it is) is used, without a crash.
    let mut c = at(&dir, now);
    c.env_remove("TZ");
    assert!(run(c, ["log"]).ok().contains("36.6"));
    // The help no longer says everything is UTC, and names --utc.
    let help = run(vigil(&dir), ["--help"]);
    assert!(!help.ok().contains("shown in UTC"), "{help:?}");
    assert!(help.out.contains("--utc"), "{help:?}");
}

/// A note or a reason written on a paired device (or pasted from anywhere)
/// cannot drive the resident's terminal, fake table rows or flood a line;
/// `--json` keeps the full text.
#[test]
fn notes_and_reasons_cannot_drive_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    let a = record(&dir, now, "temperature", "36.7", T0 + 2 * HOUR);
    let b = record(&dir, now, "temperature", "39.9", T0 + 3 * HOUR);
    let c = record(&dir, now, "temperature", "36.8", T0 + 4 * HOUR);
    let evil =
        "fine\u{1b}[2J\n2026-11-23T05:00:00Z  temperature  35.0  °C  ok\u{202e}txt.exe\u{7f}\u{9b}";
    run(at(&dir, now), ["annotate", &a, evil]).ok();
    run(
        at(&dir, now),
        ["retract", &b, "--reason", "bad\u{1b}]0;pwned\u{7}\r"],
    )
    .ok();
    let long = "a long note ".repeat(167)[..2000].to_owned();
    run(at(&dir, now), ["annotate", &c, &long]).ok();

    let log = run(at(&dir, now), ["log", "--all"]);
    let out = log.ok();
    for bad in ['\u{1b}', '\r', '\u{7}', '\u{7f}', '\u{9b}', '\u{202e}'] {
        assert!(!out.contains(bad), "{bad:?} printed raw: {out}");
    }
    assert_eq!(
        out.lines().count(),
        4,
        "header + 3 readings, no fake row: {out}"
    );
    assert!(out.contains("\\u{1b}[2J\\n2026-11-23T05:00:00Z"), "{out}");
    for line in out.lines() {
        assert!(
            line.chars().count() < 200,
            "{} chars: {line}",
            line.chars().count()
        );
    }
    assert!(out.contains('…'), "a cut note says so: {out}");
    // The full texts, as they were written, are in --json.
    let json = run(at(&dir, now), ["--json", "log", "--all"]).json();
    assert_eq!(json[0]["annotation"], evil);
    assert_eq!(json[1]["retracted"]["reason"], "bad\u{1b}]0;pwned\u{7}\r");
    assert_eq!(json[2]["annotation"], long.as_str());
}

#[test]
fn status_alerts_and_disclosures_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + 2 * DAY + 6 * HOUR;
    record(&dir, now, "temperature", "38.2", now - 20 * MIN);
    record(&dir, now, "temperature", "38.4", now - 10 * MIN);
    let s = run(at(&dir, now), ["--json", "status"]).json();
    assert_eq!(s["period"]["start"], "2026-11-23T00:00:00Z");
    assert_eq!(s["period"]["end"], "2026-11-30T00:00:00Z");
    assert_eq!(s["period"]["remaining_ms"], 4 * DAY + 18 * HOUR);
    assert_eq!(s["readings"], 2);
    assert_eq!(s["last_sync"], Value::Null);
    assert_eq!(s["node"], Value::Null);
    assert_eq!(s["enrolled"], false);
    assert_eq!(s["pending_alerts"], Value::Array(vec![]));
    assert_eq!(s["fever"]["onset"], rfc3339(now - 20 * MIN));
    let text = run(at(&dir, now), ["status"]);
    assert!(text.ok().contains("ends in 4d 18h,"), "{text:?}");
    assert!(text.out.contains("Last sync   never"));
    let al = run(at(&dir, now), ["--json", "alerts"]).json();
    assert_eq!(al["enrolled"], false);
    assert_eq!(al["episodes"].as_array().unwrap().len(), 1);
    let al = run(at(&dir, now), ["alerts"]);
    assert!(al.ok().contains("Not enrolled"), "{al:?}");
    // Nothing left the device.
    assert_eq!(
        run(at(&dir, now), ["--json", "disclosures"]).json(),
        Value::Array(vec![])
    );
    assert!(
        run(at(&dir, now), ["disclosures"])
            .ok()
            .contains("Nothing has left")
    );
}

/// FHIR R4 rules the export must meet, checked field by field.
fn check_fhir(bundle: &Value) -> Vec<&Value> {
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let entries = bundle["entry"].as_array().expect("entry is an array");
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    let mut urls = std::collections::HashSet::new();
    let mut out = vec![];
    for e in entries {
        let url = e["fullUrl"].as_str().expect("fullUrl");
        let uuid = url.strip_prefix("urn:uuid:").expect("urn:uuid full URL");
        let parts: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![8, 4, 4, 4, 12],
            "{uuid}"
        );
        assert!(
            uuid.bytes()
                .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(urls.insert(url.to_owned()), "fullUrl unique");
        let o = &e["resource"];
        if o["resourceType"] == "Patient" {
            // The anonymous subject (tests/fhir.rs checks it and check-ins).
            continue;
        }
        assert_eq!(o["resourceType"], "Observation");
        assert!(id_ok(o["id"].as_str().unwrap()), "{}", o["id"]);
        let status = o["status"].as_str().unwrap();
        assert!(["final", "entered-in-error"].contains(&status));
        let code = &o["code"]["coding"][0];
        assert_eq!(code["system"], "http://loinc.org");
        let cat = &o["category"][0]["coding"][0];
        assert_eq!(
            cat["system"],
            "http://terminology.hl7.org/CodeSystem/observation-category"
        );
        let (unit, category) = match code["code"].as_str().unwrap() {
            "8310-5" => ("Cel", "vital-signs"),
            "8867-4" => ("/min", "vital-signs"),
            "59408-5" => ("%", "vital-signs"),
            "9279-1" => ("/min", "vital-signs"),
            "55423-8" => ("{steps}", "activity"),
            other => panic!("unexpected LOINC code {other}"),
        };
        assert_eq!(cat["code"], category);
        let eff = o["effectiveDateTime"].as_str().unwrap();
        assert_eq!(eff.len(), 20, "{eff}");
        assert!(eff.ends_with('Z') && &eff[10..11] == "T");
        let q = &o["valueQuantity"];
        assert!(q["value"].is_number());
        assert!(q["unit"].is_string());
        assert_eq!(q["system"], "http://unitsofmeasure.org");
        assert_eq!(q["code"], unit);
        assert!(
            o["subject"]["reference"].is_string(),
            "vital-signs: subject"
        );
        out.push(o);
    }
    out
}

#[test]
fn fhir_export_of_a_simulated_week() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let end = T0 + 7 * DAY - MIN;
    let mut ids = vec![];
    for d in 0..7 {
        let day = T0 + d * DAY;
        for (h, v) in [(7, "36.5"), (13, "36.9"), (21, "37.1")] {
            ids.push(record(&dir, end, "temperature", v, day + h * HOUR));
        }
        record(
            &dir,
            end,
            "heart-rate",
            &format!("{}", 60 + d),
            day + 7 * HOUR,
        );
        record(&dir, end, "spo2", "97", day + 7 * HOUR);
        record(&dir, end, "respiratory-rate", "15", day + 7 * HOUR);
        record(
            &dir,
            end,
            "steps",
            &format!("{}", 3000 + 100 * d),
            day + 22 * HOUR,
        );
    }
    run(at(&dir, end), ["annotate", &ids[4], "felt warm"]).ok();
    run(at(&dir, end), ["retract", &ids[5], "--reason", "misread"]).ok();

    let out = tmp.path().join("week.fhir.json");
    let r = run(
        at(&dir, end),
        ["export", "--fhir", "--out", out.to_str().unwrap()],
    );
    assert!(r.ok().contains("48 Observations"), "{r:?}");
    let bundle: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let obs = check_fhir(&bundle);
    assert_eq!(obs.len(), 49 - 1, "the retracted reading is left out");
    assert!(bundle.get("total").is_none(), "bdl-1");
    assert!(obs.iter().all(|o| o["status"] == "final"));
    assert!(!obs.iter().any(|o| o["id"] == ids[5].as_str()));
    let temp = obs.iter().find(|o| o["id"] == ids[0].as_str()).unwrap();
    assert_eq!(temp["code"]["coding"][0]["code"], "8310-5");
    assert_eq!(temp["effectiveDateTime"], "2026-11-23T07:00:00Z");
    assert_eq!(temp["valueQuantity"]["value"], 36.5);
    assert_eq!(temp["valueQuantity"]["code"], "Cel");
    let noted = obs.iter().find(|o| o["id"] == ids[4].as_str()).unwrap();
    assert_eq!(noted["note"][0]["text"], "felt warm");
    let counts = |code: &str| {
        obs.iter()
            .filter(|o| o["code"]["coding"][0]["code"] == code)
            .count()
    };
    assert_eq!(counts("8310-5"), 20);
    for c in ["8867-4", "59408-5", "9279-1", "55423-8"] {
        assert_eq!(counts(c), 7, "{c}");
    }
    let steps = obs
        .iter()
        .find(|o| o["code"]["coding"][0]["code"] == "55423-8")
        .unwrap();
    assert_eq!(
        steps["valueQuantity"]["value"], 3000,
        "steps are whole numbers"
    );
    // Re-running refuses to overwrite without --force.
    run(
        at(&dir, end),
        ["export", "--fhir", "--out", out.to_str().unwrap()],
    )
    .fails(2, "--force");
    run(
        at(&dir, end),
        [
            "export",
            "--fhir",
            "--force",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "exports are private to the owner");
    }

    // To stdout, with retracted readings marked entered-in-error.
    let all: Value = run(at(&dir, end), ["export", "--fhir", "--include-retracted"]).json();
    let obs = check_fhir(&all);
    assert_eq!(obs.len(), 49);
    let gone = obs.iter().find(|o| o["id"] == ids[5].as_str()).unwrap();
    assert_eq!(gone["status"], "entered-in-error");
    assert!(
        gone["note"][0]["text"]
            .as_str()
            .unwrap()
            .contains("misread")
    );
    // One metric only.
    let temps: Value = run(
        at(&dir, end),
        ["export", "--fhir", "--metric", "temperature"],
    )
    .json();
    assert_eq!(check_fhir(&temps).len(), 20);
}

/// A plaintext export lands only in the file named, owner-only: a planted
/// symlink is refused (its target untouched), and `--force` over a
/// world-readable file leaves it 0600.
#[cfg(unix)]
#[test]
fn exports_refuse_symlinks_and_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    record(&dir, now, "temperature", "38.4", T0 + HOUR);
    let target = tmp.path().join("somewhere-else");
    std::fs::write(&target, "unrelated").unwrap();
    let link = tmp.path().join("export.automerge");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for force in [false, true] {
        let mut args = vec!["export", "--automerge", link.to_str().unwrap()];
        if force {
            args.push("--force");
        }
        run(at(&dir, now), args).fails(2, "symbolic link");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "unrelated");
    let open = tmp.path().join("open.automerge");
    std::fs::write(&open, "old").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    run(
        at(&dir, now),
        ["export", "--automerge", open.to_str().unwrap(), "--force"],
    )
    .ok();
    let mode = std::fs::metadata(&open).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn automerge_export_holds_every_reading() {
    use automerge::ReadDoc;
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + 3 * DAY;
    let mut ids = vec![];
    for i in 0..10 {
        ids.push(record(
            &dir,
            now,
            if i % 2 == 0 {
                "temperature"
            } else {
                "heart-rate"
            },
            if i % 2 == 0 { "36.8" } else { "70" },
            T0 + i * HOUR,
        ));
    }
    run(at(&dir, now), ["retract", &ids[3], "--reason", "double"]).ok();
    let path = tmp.path().join("log.automerge");
    let r = run(
        at(&dir, now),
        ["export", "--automerge", path.to_str().unwrap()],
    );
    assert!(
        r.ok().contains("10 readings") || r.out.contains("9 readings"),
        "{r:?}"
    );
    let doc = automerge::AutoCommit::load(&std::fs::read(&path).unwrap()).unwrap();
    let (_, readings) = doc
        .get(automerge::ROOT, "readings")
        .unwrap()
        .expect("readings list");
    let mut found = vec![];
    for item in doc.list_range(&readings, ..) {
        if let automerge::ValueRef::Scalar(automerge::ScalarValueRef::Bytes(block)) = item.value {
            // docs/spec.md §6: a block of 42-byte encoded readings.
            assert!(
                !block.is_empty() && block.len() % 42 == 0,
                "docs/spec.md §6 block of readings: {} bytes",
                block.len()
            );
            for b in block.chunks_exact(42) {
                let device = hex::encode(&b[1..17]);
                let seq = u64::from_be_bytes(b[17..25].try_into().unwrap());
                found.push(format!("{device}-{seq}"));
            }
        }
    }
    for (i, id) in ids.iter().enumerate() {
        if i != 3 {
            assert!(found.contains(id), "reading {id} in the export");
        }
    }
    // The export is refused over an existing file.
    run(
        at(&dir, now),
        ["export", "--automerge", path.to_str().unwrap()],
    )
    .fails(2, "already exists");
}

#[test]
fn shred_leaves_only_the_tombstone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let key = tmp.path().join("vault.key");
    let now = T0 + DAY;
    record(&dir, now, "temperature", "36.6", T0 + 2 * HOUR);
    // Not confirmed: nothing happens.
    let mut c = at(&dir, now);
    c.arg("shred");
    let r = run_in(&mut c, "no\n");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.starts_with("Shred vault "), "the question: {r:?}");
    assert!(
        r.err
            .ends_with("error: not confirmed: nothing was shredded\n")
    );
    run(at(&dir, now), ["status"]).ok();
    // Confirmed on stdin.
    let mut c = at(&dir, now);
    c.args(["shred", "--offline"]);
    let r = run_in(&mut c, "yes\n");
    assert!(r.ok().contains("shredded"), "{r:?}");
    assert!(!key.exists(), "the key file is destroyed");
    let left = files(&dir);
    assert_eq!(left.len(), 1, "only the tombstone: {left:?}");
    assert!(left[0].ends_with("vigil-tombstone"));
    for cmd in [
        vec!["log"],
        vec!["status"],
        vec!["record", "temperature", "36.6"],
        vec!["export", "--fhir"],
    ] {
        run(at(&dir, now), &cmd).fails(4, "shredded");
    }
    run(at(&dir, now), ["init"]).fails(4, "tombstone");
    // Shredding again is a no-op that says so.
    let again = run(at(&dir, now), ["shred", "--yes"]);
    assert!(again.ok().contains("already shredded"), "{again:?}");
}

/// The resident's own files, which no `vigil` command may touch.

#[test]
fn vigil_deletes_only_what_vigil_made() {
    let tmp = tempfile::tempdir().unwrap();
    // `--vault ~/Documents`: refused, nothing touched, no key written.
    let docs = tmp.path().join("documents");
    put_foreign_files(&docs);
    run(at(&docs, T0 + HOUR), ["init", "--start", &rfc3339(T0)]).fails(2, "not Vigil's");
    assert_foreign_files_intact(&docs);
    assert_eq!(files(&docs).len(), FOREIGN_FILES.len());
    assert!(!tmp.path().join("documents.key").exists());

    // Files the resident later puts in a vault's directory survive its shred.
    let dir = new_vault(tmp.path());
    record(&dir, T0 + DAY, "temperature", "36.6", T0 + 2 * HOUR);
    put_foreign_files(&dir);
    let r = run(at(&dir, T0 + DAY), ["shred", "--yes", "--offline"]);
    assert!(r.ok().contains("shredded"), "{r:?}");
    assert_foreign_files_intact(&dir);
    assert_eq!(
        files(&dir).len(),
        FOREIGN_FILES.len() + 1,
        "{:?}",
        files(&dir)
    );

    // Another vault's key file, given against the shredded vault, is kept.
    let other = tmp.path().join("other");
    run(at(&other, T0 + HOUR), ["init", "--start", &rfc3339(T0)]).ok();
    record(&other, T0 + DAY, "temperature", "36.7", T0 + 3 * HOUR);
    let other_key = tmp.path().join("other.key");
    let before = std::fs::read(&other_key).unwrap();
    let mut c = at(&dir, T0 + DAY);
    c.arg("--key-file").arg(&other_key);
    let r = run(c, ["status"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(
        std::fs::read(&other_key).unwrap(),
        before,
        "the other vault's key intact"
    );
    let log = run(at(&other, T0 + DAY), ["--json", "log"]);
    assert!(log.ok().contains("36.7"), "{log:?}");
}

#[test]
fn the_period_ending_shreds_the_vault() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    record(&dir, T0 + DAY, "temperature", "36.6", T0 + 2 * HOUR);
    let s = run(at(&dir, T0 + 7 * DAY - HOUR), ["status"]);
    assert!(s.ok().contains("ends in 1h,"), "{s:?}");
    run(at(&dir, T0 + 7 * DAY), ["log"]).fails(4, "shredded just now");
    assert!(!tmp.path().join("vault.key").exists());
    run(at(&dir, T0 + 8 * DAY), ["log"]).fails(4, "was shredded at 2026-11-30T00:00:00Z");
}

// ---------------------------------------------------------------- network commands

#[test]
fn recover_rebuilds_a_damaged_vault_from_the_node() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start(&tmp.path().join("node"));
    let phone = tmp.path().join("phone");
    live_vault(&phone);
    let now = real_now();
    for (v, ago) in [("36.8", 9), ("36.9", 4)] {
        let at = rfc3339(now - ago * MIN);
        run(vigil(&phone), ["record", "temperature", v, "--at", &at]).ok();
    }
    run(vigil(&phone), ["enrol", &node.ticket("Ana")]).ok();
    run(vigil(&phone), ["sync"]).ok();
    // One flipped byte in the sealed snapshot: the vault no longer opens,
    // and the error says what to do.
    let snap = phone.join("vigil-snapshot.blob");
    let mut b = std::fs::read(&snap).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x5a;
    std::fs::write(&snap, b).unwrap();
    run(vigil(&phone), ["status"]).fails(1, "run `vigil recover`");
    // Without --yes it asks; anything but yes changes nothing.
    let r = run_in(vigil(&phone).arg("recover"), "no\n");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("not confirmed"), "{r:?}");
    run(vigil(&phone), ["status"]).fails(1, "run `vigil recover`");

    let r = run(vigil(&phone), ["--json", "recover", "--yes"]).json();
    assert_eq!(r["readings"], 2, "{r}");
    assert_eq!(r["grants_lost"], true);
    let aside = r["damaged_dir"].as_str().unwrap();
    assert!(aside.contains("vigil-damaged-"), "{r}");
    assert!(Path::new(aside).join("vigil-snapshot.blob").exists());
    let log = run(vigil(&phone), ["--json", "log"]).json();
    assert_eq!(log.as_array().unwrap().len(), 2, "{log}");
    run(vigil(&phone), ["sync"]).ok();
    // A healthy vault is not rebuilt.
    run(vigil(&phone), ["recover", "--yes"]).fails(2, "nothing to recover");
    // Damaged again: the text report says what came back and what did not.
    std::fs::remove_file(phone.join("conf")).unwrap();
    std::fs::write(phone.join("conf"), b"not sled's").unwrap();
    let text = run(vigil(&phone), ["recover", "--yes"]);
    assert!(text.ok().contains("2 reading(s) recovered"), "{text:?}");
    assert!(text.out.contains("vigil-damaged-2"), "{text:?}");
    assert!(text.out.contains("vigil enrol"), "{text:?}");
    run(vigil(&phone), ["shred", "--yes"]).ok();
    assert!(
        !Path::new(aside).exists(),
        "the shred removes the kept-aside files"
    );
}

#[test]
fn enrol_sync_and_fever_alerts_reach_the_node() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start(&tmp.path().join("node"));
    let phone = tmp.path().join("phone");
    live_vault(&phone);
    let now = real_now();
    // A node code is not a ticket; a malformed ticket is bad input; the
    // label is staff's to set, not the device's.
    run(vigil(&phone), ["enrol", &node.code]).fails(2, "not a ticket");
    run(vigil(&phone), ["enrol", "vigil-ticket1/x/y"]).fails(2, "bad ticket");
    let ticket = node.ticket("Ana Costa, flat 12B");
    run(vigil(&phone), ["enrol", &ticket, "--label", "Dr. Who"]).fails(2, "staff set the label");
    // Without a ticket, the node keeps no mailbox for this vault.
    run(vigil(&phone), ["sync", "--node", &node.code]).fails(1, "not enrolled with this node");
    // A ticket the node never issued (a guessed secret) is refused.
    let last = if ticket.ends_with('0') { "1" } else { "0" };
    let forged = format!("{}{last}", &ticket[..ticket.len() - 1]);
    run(vigil(&phone), ["enrol", &forged]).fails(1, "does not know this ticket");
    let e = run(vigil(&phone), ["--json", "enrol", &ticket]).json();
    assert_eq!(e["label"], "Ana Costa, flat 12B");
    assert_eq!(e["ticket"].as_str().unwrap().len(), 32);
    // Another vault cannot use it again.
    let other = tmp.path().join("other");
    live_vault(&other);
    run(vigil(&other), ["enrol", &ticket]).fails(1, "already used");
    assert_eq!(e["threshold_c"], 37.3);
    // A fever: two readings at or above 37.3 °C within ten minutes.
    let r = run(
        vigil(&phone),
        [
            "record",
            "temperature",
            "38.4",
            "--at",
            &rfc3339(now - 9 * MIN),
        ],
    );
    r.ok();
    let r = run(
        vigil(&phone),
        [
            "record",
            "temperature",
            "38.6",
            "--at",
            &rfc3339(now - 4 * MIN),
        ],
    );
    assert!(r.ok().contains("fever alert is queued"), "{r:?}");
    let s = run(vigil(&phone), ["--json", "status"]).json();
    assert_eq!(s["pending_alerts"].as_array().unwrap().len(), 1);
    assert_eq!(s["enrolled"], true);
    assert!(s["node"].as_str().unwrap().starts_with("127.0.0.1:"));

    let sync = run(vigil(&phone), ["--json", "sync"]).json();
    assert_eq!(sync["alerts_delivered"], 1, "{sync}");
    assert_eq!(sync["alerts_pending"], 0);
    assert!(sync["pushed"].as_u64().unwrap() >= 1);
    let inbox = node.relay.inbox().unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].label, "Ana Costa, flat 12B");
    assert_eq!(inbox[0].level, 2, "peak ≥ 38.0 °C");

    let s = run(vigil(&phone), ["--json", "status"]).json();
    assert!(s["last_sync"].is_string());
    assert_eq!(s["pending_alerts"].as_array().unwrap().len(), 0);
    let text = run(vigil(&phone), ["sync"]);
    assert!(
        text.ok().contains("Synced with node 127.0.0.1:"),
        "{text:?}"
    );
    assert!(text.out.contains("Fever alerts: 0 delivered, 0 waiting."));

    let d = run(vigil(&phone), ["--json", "disclosures"]).json();
    let kinds: Vec<&str> = d
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["grant", "alert-sent", "alert-acknowledged"]);
    assert_eq!(d[0]["label"], "Ana Costa, flat 12B");
    let text = run(vigil(&phone), ["disclosures"]);
    assert!(text.ok().contains("fever-alert grant to node"), "{text:?}");

    // Shred with the node: its signed receipt is verified and reported.
    let phone_id = run(vigil(&phone), ["--json", "status"]).json()["device"].clone();
    let r = run(vigil(&phone), ["--json", "shred", "--yes"]).json();
    assert_eq!(r["receipt"]["verified"], true, "{r}");
    assert_eq!(r["receipt"]["grants"], 1);
    // Staff have not seen the fever: it stays at the node (issue 14, finding 5).
    assert_eq!(r["receipt"]["alerts"], 0);
    assert_eq!(r["receipt"]["kept_unseen_alerts"], 1);
    // Only the phone had pushed: the receipt names it alone.
    assert_eq!(
        r["receipt"]["devices"],
        serde_json::json!([phone_id]),
        "{r}"
    );
    assert_eq!(files(&phone).len(), 1, "only the tombstone");
    run(vigil(&phone), ["sync"]).fails(4, "shredded");
}

/// Step 1 of a join on `tablet`: the `--json` run (it exits 5, "not yet")
/// and the joiner code it shows.
fn tablet_waits(tablet: &Path, node: &Node) -> (Run, String) {
    let first = run(
        vigil(tablet),
        ["--json", "pair", "join", &node.code, "--timeout", "0"],
    );
    let line: Value = serde_json::from_str(first.out.lines().next().unwrap()).unwrap();
    let joiner = line["joiner_code"].as_str().unwrap().to_owned();
    (first, joiner)
}

/// An enrolled phone with one reading, and a tablet in `tmp` waiting to
/// join it through a node: the node, both directories and the joiner code.
fn phone_and_waiting_tablet(tmp: &Path) -> (Node, PathBuf, PathBuf, String) {
    let node = Node::start(&tmp.join("node"));
    let phone = tmp.join("phone");
    let tablet = tmp.join("tablet");
    live_vault(&phone);
    run(vigil(&phone), ["enrol", &node.ticket("Ana")]).ok();
    run(vigil(&phone), ["record", "temperature", "36.6"]).ok();
    let (_, joiner) = tablet_waits(&tablet, &node);
    (node, phone, tablet, joiner)
}

#[test]
fn pairing_in_two_steps_then_conflicts_resolve_across_devices() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start(&tmp.path().join("node"));
    let phone = tmp.path().join("phone");
    let tablet = tmp.path().join("tablet");
    let start = live_vault(&phone);
    run(vigil(&phone), ["enrol", &node.ticket("Ana")]).ok();
    let id = run(
        vigil(&phone),
        [
            "--json",
            "record",
            "heart-rate",
            "66",
            "--at",
            &rfc3339(start + HOUR),
        ],
    )
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Step 1 on the new device: the joiner code, and "not yet" (exit 5).
    let (first, joiner) = tablet_waits(&tablet, &node);
    assert_eq!(first.code, 5, "{first:?}");
    let lines: Vec<Value> = first
        .out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["status"], "waiting");
    // With --json, "not yet" is the last JSON line, not text on stderr.
    assert_eq!(lines.len(), 2, "{first:?}");
    assert_eq!(lines[1]["error"]["code"], "waiting");
    let msg = lines[1]["error"]["message"].as_str().unwrap();
    assert!(msg.contains("vigil pair show"), "{msg}");
    assert!(first.err.is_empty(), "{first:?}");
    assert!(joiner.starts_with("vigil-join1/"));
    // The tablet has no vault yet.
    run(vigil(&tablet), ["log"]).fails(3, "still being paired");
    // Step 2 on the existing device.
    let shown = run(vigil(&phone), ["--json", "pair", "show", &joiner]).json();
    let code = shown["pairing_code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 7, "ddd ddd: {code}");
    // Step 3: the same command again joins and shows the same code.
    let again = run(
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
    let last: Value = serde_json::from_str(again.ok().lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "paired");
    assert_eq!(
        last["pairing_code"],
        code.as_str(),
        "both screens show the same code"
    );
    assert_eq!(last["readings"], 1);
    assert!(
        !files(&tablet)
            .iter()
            .any(|p| p.ends_with("vigil-joiner.key")),
        "the pairing key is gone"
    );
    let tlog = run(vigil(&tablet), ["--json", "log"]).json();
    assert_eq!(tlog[0]["id"], id.as_str());
    let pairings = run(vigil(&phone), ["--json", "disclosures"]).json();
    assert!(
        pairings
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["kind"] == "pairing")
    );
    // Joining again into a vault directory is refused.
    run(
        vigil(&tablet),
        ["pair", "join", &node.code, "--timeout", "0"],
    )
    .fails(2, "already holds a vault");

    // Apart, both set the same check-in and annotate the same reading.
    let today = &rfc3339(real_now())[..10];
    run(vigil(&phone), ["check-in", "cough=mild"]).ok();
    run(vigil(&tablet), ["check-in", "cough=severe"]).ok();
    run(vigil(&phone), ["annotate", &id, "after the stairs"]).ok();
    run(vigil(&tablet), ["annotate", &id, "after coffee"]).ok();
    run(vigil(&phone), ["sync"]).ok();
    run(vigil(&tablet), ["sync"]).ok();
    run(vigil(&phone), ["sync"]).ok();
    let c = run(vigil(&phone), ["--json", "conflicts"]).json();
    let c = c.as_array().unwrap();
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(c[0]["kind"], "check-in");
    assert_eq!(c[0]["key"], format!("{today}/cough"));
    let mut vals: Vec<&str> = c[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    vals.sort();
    assert_eq!(vals, vec!["mild", "severe"]);
    assert_eq!(c[1]["kind"], "annotation");
    let text = run(vigil(&phone), ["conflicts"]);
    assert!(
        text.ok().contains("resolve: vigil conflicts resolve"),
        "{text:?}"
    );
    // Resolve both on the phone; the tablet agrees after syncing.
    run(
        vigil(&phone),
        [
            "conflicts",
            "resolve",
            &format!("{today}/cough"),
            "moderate",
        ],
    )
    .ok();
    let key = c[1]["key"].as_str().unwrap();
    run(vigil(&phone), ["conflicts", "resolve", key, "--pick", "9"]).fails(2, "--pick 9");
    run(vigil(&phone), ["conflicts", "resolve", key, "--pick", "2"]).ok();
    run(vigil(&phone), ["sync"]).ok();
    run(vigil(&tablet), ["sync"]).ok();
    assert_eq!(
        run(vigil(&tablet), ["--json", "conflicts"]).json(),
        Value::Array(vec![])
    );
    let day = run(vigil(&tablet), ["--json", "check-in"]).json();
    assert_eq!(day["symptoms"][0]["value"], "moderate");
    let t = run(vigil(&tablet), ["status"]);
    assert!(
        t.ok().contains("sync only"),
        "the tablet did not enrol: {t:?}"
    );
}

#[test]
fn pairing_refuses_a_mistyped_joiner_code_and_asks_before_joining() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, phone, tablet, joiner) = phone_and_waiting_tablet(tmp.path());
    // One digit mistyped: refused (exit 2), nothing sent.
    let flip = |s: &str, i: usize| {
        let mut b = s.as_bytes().to_vec();
        b[i] = if b[i] == b'0' { b'1' } else { b'0' };
        String::from_utf8(b).unwrap()
    };
    for i in ["vigil-join1/".len() + 5, joiner.len() - 1] {
        run(
            vigil(&phone),
            ["pair", "show", &flip(&joiner, i), "--node", &node.code],
        )
        .fails(2, "checksum");
    }
    // The key alone, without its checksum, is refused too.
    run(
        vigil(&phone),
        [
            "pair",
            "show",
            &joiner[..joiner.len() - 8],
            "--node",
            &node.code,
        ],
    )
    .fails(2, "invalid joiner code");
    run(
        vigil(&tablet),
        ["pair", "join", &node.code, "--timeout", "0", "--yes"],
    )
    .fails(5, "no pairing offer yet");
    // The right code is offered; the tablet asks, and "no" stores nothing.
    run(
        vigil(&phone),
        ["pair", "show", &joiner, "--node", &node.code],
    )
    .ok();
    let mut c = vigil(&tablet);
    c.args(["pair", "join", &node.code, "--timeout", "0"]);
    let r = run_in(&mut c, "n\n");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.out.contains("Pairing code: "), "{r:?}");
    assert!(
        r.err.contains("Do both screens show the same code? [y/N]"),
        "{r:?}"
    );
    assert!(r.err.contains("not confirmed"), "{r:?}");
    assert!(
        !tmp.path().join("tablet.key").exists() && !tablet.join("db").exists(),
        "nothing stored: {:?}",
        files(&tablet)
    );
    // The offer was used up, and the next attempt has a new joiner code.
    let (next, again) = tablet_waits(&tablet, &node);
    assert_eq!(next.code, 5, "{next:?}");
    assert_ne!(again, joiner);
}

#[test]
fn a_shred_on_one_device_reaches_the_paired_device_at_its_next_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, phone, tablet, joiner) = phone_and_waiting_tablet(tmp.path());
    run(
        vigil(&phone),
        ["pair", "show", &joiner, "--node", &node.code],
    )
    .ok();
    run(
        vigil(&tablet),
        ["pair", "join", &node.code, "--timeout", "0", "--yes"],
    )
    .ok();
    run(vigil(&tablet), ["record", "temperature", "36.8"]).ok();
    run(vigil(&tablet), ["sync"]).ok();
    let tablet_id = run(vigil(&tablet), ["--json", "status"]).json()["device"]
        .as_str()
        .unwrap()
        .to_string();
    // The phone ends the period early, telling the node; the signed receipt
    // names the tablet as a device the node will tell.
    let r = run(vigil(&phone), ["shred", "--yes", "--node", &node.code]);
    assert!(
        r.ok().contains("will tell the other device(s)") && r.out.contains(&tablet_id),
        "{r:?}"
    );
    // The tablet's next sync learns of it and shreds its copy.
    run(vigil(&tablet), ["sync"]).fails(4, "shredded on another device");
    assert!(
        !tmp.path().join("tablet.key").exists(),
        "the key is destroyed"
    );
    let left = files(&tablet);
    assert_eq!(left.len(), 1, "only the tombstone: {left:?}");
    assert!(left[0].ends_with("vigil-tombstone"));
    run(vigil(&tablet), ["log"]).fails(4, "shredded");
}

#[test]
fn pairing_by_waiting_join() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start(&tmp.path().join("node"));
    let phone = tmp.path().join("phone");
    let band = tmp.path().join("band");
    live_vault(&phone);
    run(vigil(&phone), ["record", "temperature", "36.6"]).ok();
    // pair show needs a node: none is known yet, so it is given.
    let mut join = vigil(&band);
    join.args([
        "pair",
        "join",
        &node.code,
        "--timeout",
        "60s",
        "--qr",
        "--poll",
        "200ms",
        "--yes",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = join.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let joiner = first
        .trim()
        .strip_prefix("Joiner code: ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    run(vigil(&phone), ["pair", "show", &joiner]).fails(2, "no node known");
    run(vigil(&phone), ["enrol", &node.ticket("Ana")]).ok();
    let shown = run(
        vigil(&phone),
        ["pair", "show", &joiner, "--node", &node.code],
    );
    let code = shown
        .ok()
        .lines()
        .find_map(|l| l.strip_prefix("Pairing code: "))
        .unwrap()
        .to_owned();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains('█'), "--qr draws the joiner code: {rest}");
    assert!(
        rest.contains(&format!("Pairing code: {code}")),
        "same code on both: {rest}"
    );
    assert_eq!(
        run(vigil(&band), ["--json", "log"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The phone remembered the node it was given.
    run(vigil(&phone), ["sync"]).ok();
}

#[test]
fn an_unreachable_node_is_a_one_line_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let node_dir = tmp.path().join("node");
    let code = {
        let node = Node::start(&node_dir);
        node.code.clone()
    };
    // The node is gone: its address no longer answers.
    let phone = tmp.path().join("phone");
    live_vault(&phone);
    let r = run(vigil(&phone), ["sync", "--node", &code]);
    r.fails(1, "cannot reach the node");
    // Shredding still works offline, and says the node was not told.
    let mut c = vigil(&phone);
    c.args(["shred", "--yes", "--node", &code]);
    let r = run_in(&mut c, "");
    assert!(r.ok().contains("deletes the mailbox itself"), "{r:?}");
}

// ---------------------------------------------------------------- a busy vault

#[test]
fn parallel_records_all_land() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_vault(tmp.path());
    let now = T0 + DAY;
    // A band's burst: 8 commands on one vault at once, none retried.
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut c = at(&dir, now);
            c.args([
                "record",
                "heart-rate",
                &(60 + i).to_string(),
                "--at",
                &rfc3339(T0 + (i + 1) * HOUR / 60),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(!err.contains("WouldBlock"), "{err}");
    }
    let log = run(at(&dir, now), ["--json", "log", "--metric", "heart-rate"]).json();
    assert_eq!(log.as_array().unwrap().len(), 8, "{log:#}");
}

/// A join that stopped after writing the key (the joiner file still there)
/// and is finished after the phone shredded: the finishing `pair join`
/// learns of the shred and destroys the key there and then.
#[test]
fn finishing_an_interrupted_join_after_a_shred_destroys_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, phone, tablet, joiner) = phone_and_waiting_tablet(tmp.path());
    let joiner_file = tablet.join("vigil-joiner.key");
    let saved = std::fs::read(&joiner_file).unwrap();
    run(
        vigil(&phone),
        ["pair", "show", &joiner, "--node", &node.code],
    )
    .ok();
    run(
        vigil(&tablet),
        ["pair", "join", &node.code, "--timeout", "0", "--yes"],
    )
    .ok();
    // As if the join had stopped before it removed the joiner file.
    std::fs::write(&joiner_file, &saved).unwrap();
    run(vigil(&phone), ["shred", "--yes", "--node", &node.code]).ok();
    run(
        vigil(&tablet),
        ["pair", "join", &node.code, "--timeout", "0", "--yes"],
    )
    .fails(4, "shredded on another device");
    assert!(
        !tmp.path().join("tablet.key").exists(),
        "the key is destroyed at once, not left to the next open"
    );
}
