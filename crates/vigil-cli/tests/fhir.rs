//! `vigil export --fhir` through the binary: every Observation's subject is
//! the Bundle's one anonymous Patient, and the check-ins are in it as coded
//! Observations. (The field-by-field R4 rules of the reading Observations
//! are in resident.rs; the independent validator runs in
//! crates/vigil-ffi/python/test_fhir.py.)

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod common;
use common::*;

/// 2026-11-23T00:00:00Z, the period's start.
const T0: i64 = 1_795_392_000_000;
const SNOMED: &str = "http://snomed.info/sct";

/// A `vigil` command at a fixed "now", in UTC whatever the machine's zone.
fn at(dir: &Path, now: i64) -> Command {
    let mut c = vigil(dir);
    c.env("TZ", "UTC").arg("--now").arg(rfc3339(now));
    c
}

/// A vault with a reading of every metric (the temperature retracted) and
/// check-ins on two days.
fn vault(tmp: &Path) -> (PathBuf, i64, String) {
    let dir = tmp.join("vault");
    let now = T0 + 2 * DAY;
    run(at(&dir, T0 + HOUR), ["init", "--start", &rfc3339(T0)]).ok();
    let mut first = None;
    for (i, (metric, value)) in [
        ("temperature", "38.4"),
        ("heart-rate", "72"),
        ("spo2", "97"),
        ("respiratory-rate", "15"),
        ("steps", "1200"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = run(
            at(&dir, now),
            [
                "--json",
                "record",
                metric,
                value,
                "--at",
                &rfc3339(T0 + (i as i64 + 1) * HOUR),
            ],
        );
        first.get_or_insert(r.json()["id"].as_str().unwrap().to_owned());
    }
    let first = first.unwrap();
    run(at(&dir, now), ["retract", &first, "--reason", "hot tea"]).ok();
    run(
        at(&dir, now),
        [
            "check-in",
            "--day",
            "2026-11-23",
            "cough=mild",
            "sore-throat=none",
        ],
    )
    .ok();
    run(
        at(&dir, now),
        ["check-in", "--day", "2026-11-24", "cough=severe"],
    )
    .ok();
    (dir, now, first)
}

/// The Bundle's Patient full URL, after checking the Patient is the only
/// one and carries nothing but its type and id; and the Observations,
/// each checked to have that Patient as subject.
fn patient_and_observations(bundle: &Value) -> (String, Vec<&Value>) {
    let entries = bundle["entry"].as_array().expect("entries");
    let patients: Vec<&Value> = entries
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Patient")
        .collect();
    assert_eq!(patients.len(), 1, "{bundle:#}");
    let url = patients[0]["fullUrl"].as_str().unwrap().to_owned();
    assert!(url.starts_with("urn:uuid:"), "{url}");
    let p = patients[0]["resource"].as_object().unwrap();
    let mut keys: Vec<&String> = p.keys().collect();
    keys.sort();
    assert_eq!(keys, ["id", "resourceType"], "anonymous: {p:?}");
    let obs: Vec<&Value> = entries
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Observation")
        .collect();
    assert_eq!(obs.len() + 1, entries.len(), "only Observations besides");
    for o in &obs {
        assert_eq!(o["subject"]["reference"], url.as_str(), "{o:#}");
    }
    (url, obs)
}

/// The check-in Observation of `symptom` (a SNOMED CT code) on `day`.
fn answer<'a>(obs: &[&'a Value], symptom: &str, day: &str) -> &'a Value {
    obs.iter()
        .find(|o| {
            o["category"][0]["coding"][0]["code"] == "survey"
                && o["code"]["coding"][0]["system"] == SNOMED
                && o["code"]["coding"][0]["code"] == symptom
                && o["effectiveDateTime"] == day
        })
        .unwrap_or_else(|| panic!("no answer {symptom} on {day}: {obs:#?}"))
}

#[test]
fn the_export_has_an_anonymous_subject_and_the_check_ins() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, now, retracted) = vault(tmp.path());

    let bundle = run(at(&dir, now), ["export", "--fhir"]).json();
    assert!(
        bundle.get("total").is_none(),
        "bdl-1: no total in a collection"
    );
    let (_, obs) = patient_and_observations(&bundle);
    let readings: Vec<&&Value> = obs
        .iter()
        .filter(|o| o["code"]["coding"][0]["system"] == "http://loinc.org")
        .collect();
    assert_eq!(readings.len(), 4, "the retracted reading is left out");
    let survey = obs
        .iter()
        .filter(|o| o["category"][0]["coding"][0]["code"] == "survey")
        .count();
    assert_eq!(survey, 3, "three answers over two days");
    // Cough mild on the 23rd, severe on the 24th; sore throat absent.
    let cough = answer(&obs, "49727002", "2026-11-23");
    assert_eq!(cough["status"], "final");
    assert_eq!(cough["valueCodeableConcept"]["coding"][0]["system"], SNOMED);
    assert_eq!(
        cough["valueCodeableConcept"]["coding"][0]["code"],
        "255604002"
    );
    assert_eq!(
        answer(&obs, "49727002", "2026-11-24")["valueCodeableConcept"]["coding"][0]["code"],
        "24484000"
    );
    assert_eq!(
        answer(&obs, "267102003", "2026-11-23")["valueCodeableConcept"]["coding"][0]["code"],
        "2667000"
    );

    // With the retracted reading: entered-in-error, the same subject.
    let all = run(at(&dir, now), ["export", "--fhir", "--include-retracted"]).json();
    let (_, obs) = patient_and_observations(&all);
    let gone = obs.iter().find(|o| o["id"] == retracted.as_str()).unwrap();
    assert_eq!(gone["status"], "entered-in-error");

    // To a file: the count is of Observations (readings and answers), not
    // of entries (the Patient is not an Observation).
    let out = tmp.path().join("export.json");
    let r = run(
        at(&dir, now),
        ["export", "--fhir", "--out", out.to_str().unwrap()],
    );
    assert!(r.ok().contains("of 7 Observations"), "{r:?}");
    let json = run(
        at(&dir, now),
        [
            "--json",
            "export",
            "--fhir",
            "--force",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .json();
    assert_eq!(json["observations"], 7);
    let written: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    patient_and_observations(&written);

    // One metric: its readings only, still with their subject.
    let temps = run(
        at(&dir, now),
        [
            "export",
            "--fhir",
            "--include-retracted",
            "--metric",
            "temperature",
        ],
    )
    .json();
    let (_, obs) = patient_and_observations(&temps);
    assert_eq!(obs.len(), 1);
    assert_eq!(obs[0]["code"]["coding"][0]["code"], "8310-5");
}
