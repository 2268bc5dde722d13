//! The resident's export as an HL7 FHIR R4 Bundle: one implementation for
//! every caller (the `vigil export` command, the app bindings).
//!
//! The Bundle (type `collection`) holds one anonymous Patient, one
//! Observation per reading and one Observation per check-in answer; every
//! Observation's `subject` refers to the Patient, as the R4 vital-signs
//! profile requires of a vital sign.
//!
//! **Readings** (one Observation each):
//!
//! | metric | LOINC | UCUM | category |
//! |---|---|---|---|
//! | temperature | 8310-5 Body temperature | `Cel` | vital-signs |
//! | heart-rate | 8867-4 Heart rate | `/min` | vital-signs |
//! | spo2 | 59408-5 Oxygen saturation by pulse oximetry (and 2708-6) | `%` | vital-signs |
//! | respiratory-rate | 9279-1 Respiratory rate | `/min` | vital-signs |
//! | steps | 55423-8 Number of steps | `{steps}` | activity |
//!
//! Steps are not a vital sign in FHIR; their category is `activity`.
//! Retracted readings are left out unless asked for; then they are included
//! with status `entered-in-error` and the reason as a note. Every
//! annotation of a reading (all of a conflict's values) is a note.
//!
//! **Check-ins** (one Observation per answered symptom and day, category
//! `survey`): `code` is the symptom's SNOMED CT finding, `valueCodeableConcept`
//! the severity as a SNOMED CT qualifier value (mild, moderate and severe are
//! those of FHIR's condition-severity value set; `none` is *Absent*: the
//! resident said the symptom is not there, which is information too), and
//! `effectiveDateTime` the check-in's day (a date: the log records the day
//! an answer is for, not when it was given).
//!
//! | symptom | SNOMED CT finding |
//! |---|---|
//! | cough | 49727002 Cough |
//! | sore_throat | 267102003 Sore throat symptom |
//! | fatigue | 84229001 Fatigue |
//! | headache | 25064002 Headache |
//! | shortness_of_breath | 267036007 Dyspnea |
//! | loss_of_taste_or_smell | none: text only (SNOMED CT has 36955009 Loss of taste and 44169009 Anosmia, but no concept for "either"; coding both would claim they are one) |
//! | muscle_ache | 68962001 Muscle pain |
//! | chills | 43724002 Chill |
//! | fever | 386661006 Fever |
//! | other | none: text only ("Other symptom": not one finding but any) |
//!
//! | severity | SNOMED CT qualifier value |
//! |---|---|
//! | none | 2667000 Absent |
//! | mild | 255604002 Mild |
//! | moderate | 6736007 Moderate |
//! | severe | 24484000 Severe |
//!
//! Why Observations and not a QuestionnaireResponse: the log stores each
//! answer on its own (`"<day>/<symptom>"` → severity), written one at a
//! time, from any device, merged and in conflict one by one; an Observation
//! per answer keeps that shape, so a conflict marks the one answer it
//! concerns, and a receiver charts symptoms beside the vital signs with the
//! same query. A QuestionnaireResponse would need a published Questionnaire
//! to mean anything, and would lump answers given at different times into
//! one resource with one status.
//!
//! Conflicts are handled as the log shows them: an answer that two devices
//! set concurrently to different severities has the value the resident's
//! views show (the log's winner), status `preliminary` (not yet confirmed:
//! the resident has not picked one) and a note naming every value. The
//! resident resolving it makes it `final`. Check-ins cannot be retracted;
//! an answer set again replaces the earlier one, as in the resident's views.
//! A one-metric export has no check-ins (they answer no metric).
//!
//! **The Patient** is anonymous: a `Patient` with an id and nothing else (no
//! identifier, name, birth date or anything else): the log has no identity
//! in it by design, and the export is the resident's to hand over. Its id
//! (and `urn:uuid:` full URL) is a version-8 UUID made from SHA-256 of the
//! exporting device and the export's time stamp: another export, or another
//! resident's at the same instant, gets another Patient, and the hash
//! reveals neither. A check-in answer's full URL is made the same way from
//! the Patient's and the answer's day and symptom; a reading's, from its id.
//!
//! Pure: the bundle's time stamp is a parameter, and nothing is random.
//!
//! ```
//! use vigil_log::{DeviceId, HealthLog, Metric, Unit, fhir};
//! let mut log = HealthLog::new(DeviceId([1; 16]));
//! log.record(Metric::HeartRate, 72.0, Unit::BeatsPerMinute, 1_790_000_000_000).unwrap();
//! let b = fhir::bundle(&log, None, false, 1_790_000_060_000);
//! assert_eq!(b["entry"][0]["resource"]["resourceType"], "Patient");
//! let hr = &b["entry"][1]["resource"];
//! assert_eq!(hr["valueQuantity"]["value"], 72);
//! assert_eq!(hr["subject"]["reference"], b["entry"][0]["fullUrl"]);
//! assert!(fhir::bundle_json(&log, None, false, 1_790_000_060_000).contains("8867-4"));
//! ```

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::fmt::temporal::DateTimePrinter;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::log::HealthLog;
use crate::model::{Day, DeviceId, Metric, Reading, ReadingId, Severity, Symptom};

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
const SNOMED: &str = "http://snomed.info/sct";
const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// LOINC codings (the first is the metric's), UCUM code, unit text, category.
fn coding(
    m: Metric,
) -> (
    Vec<(&'static str, &'static str)>,
    &'static str,
    &'static str,
    &'static str,
) {
    match m {
        Metric::BodyTemperature => (
            vec![("8310-5", "Body temperature")],
            "Cel",
            "°C",
            "vital-signs",
        ),
        Metric::HeartRate => (
            vec![("8867-4", "Heart rate")],
            "/min",
            "beats/minute",
            "vital-signs",
        ),
        Metric::SpO2 => (
            vec![
                (
                    "59408-5",
                    "Oxygen saturation in Arterial blood by Pulse oximetry",
                ),
                ("2708-6", "Oxygen saturation in Arterial blood"),
            ],
            "%",
            "%",
            "vital-signs",
        ),
        Metric::RespiratoryRate => (
            vec![("9279-1", "Respiratory rate")],
            "/min",
            "breaths/minute",
            "vital-signs",
        ),
        Metric::Steps => (
            vec![("55423-8", "Number of steps in unspecified time Pedometer")],
            "{steps}",
            "steps",
            "activity",
        ),
    }
}

/// SNOMED CT finding (code, display) of a symptom, if one concept is it,
/// and the symptom's text.
fn symptom_coding(s: Symptom) -> (Option<(&'static str, &'static str)>, &'static str) {
    match s {
        Symptom::Cough => (Some(("49727002", "Cough")), "Cough"),
        Symptom::SoreThroat => (Some(("267102003", "Sore throat symptom")), "Sore throat"),
        Symptom::Fatigue => (Some(("84229001", "Fatigue")), "Fatigue"),
        Symptom::Headache => (Some(("25064002", "Headache")), "Headache"),
        Symptom::ShortnessOfBreath => (Some(("267036007", "Dyspnea")), "Shortness of breath"),
        // No SNOMED CT concept means "taste or smell"; see the module docs.
        Symptom::LossOfTasteOrSmell => (None, "Loss of taste or smell"),
        Symptom::MuscleAche => (Some(("68962001", "Muscle pain")), "Muscle ache"),
        Symptom::Chills => (Some(("43724002", "Chill")), "Chills"),
        Symptom::Fever => (Some(("386661006", "Fever")), "Fever"),
        // Not one symptom but any: text only, as for loss of taste or smell.
        Symptom::Other => (None, "Other symptom"),
    }
}

/// SNOMED CT qualifier value (code, display) of a severity.
fn severity_coding(s: Severity) -> (&'static str, &'static str) {
    match s {
        Severity::None => ("2667000", "Absent"),
        Severity::Mild => ("255604002", "Mild"),
        Severity::Moderate => ("6736007", "Moderate"),
        Severity::Severe => ("24484000", "Severe"),
    }
}

/// 16 bytes as a version-8, variant-10 UUID (RFC 9562), lowercase.
fn uuid(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A UUID from the first 16 bytes of SHA-256 over `parts`, each prefixed
/// with its length so that no two inputs hash alike.
fn hashed_uuid(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let digest = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    uuid(b)
}

/// A stable UUID (version 8, RFC 9562) for a reading, for `urn:uuid:` full URLs.
pub fn reading_uuid(id: ReadingId) -> String {
    let mut b = id.device.0;
    for (x, s) in b[8..].iter_mut().zip(id.seq.to_be_bytes()) {
        *x ^= s;
    }
    uuid(b)
}

/// The anonymous Patient's UUID for an export by `device` stamped `now_ms`:
/// one-way, so it reveals neither.
fn patient_uuid(device: DeviceId, now_ms: i64) -> String {
    hashed_uuid(&[b"vigil fhir patient 1", &device.0, &now_ms.to_be_bytes()])
}

/// A check-in answer's UUID within the export whose Patient is `patient`.
fn answer_uuid(patient: &str, day: Day, symptom: Symptom) -> String {
    hashed_uuid(&[
        b"vigil fhir check-in 1",
        patient.as_bytes(),
        &day.0.to_be_bytes(),
        symptom.name().as_bytes(),
    ])
}

fn observation(log: &HealthLog, r: &Reading, subject: &Value) -> Value {
    let (codes, ucum, unit, category) = coding(r.metric);
    let retraction = log.retraction(r.id);
    let mut notes: Vec<Value> = log
        .annotation(r.id)
        .into_iter()
        .map(|t| json!({"text": t}))
        .collect();
    if let Some(x) = &retraction {
        notes.push(json!({
            "time": format_time(x.time_ms),
            "text": format!("Retracted by the resident: {}", x.reason),
        }));
    }
    let mut o = json!({
        "resourceType": "Observation",
        "id": r.id.to_string(),
        "status": if retraction.is_some() { "entered-in-error" } else { "final" },
        "category": [{
            "coding": [{
                "system": CATEGORY,
                "code": category,
                "display": if category == "activity" { "Activity" } else { "Vital Signs" },
            }],
        }],
        "code": {
            "coding": codes.iter().map(|(c, d)| json!({"system": LOINC, "code": c, "display": d})).collect::<Vec<_>>(),
            "text": codes[0].1,
        },
        "subject": subject,
        "effectiveDateTime": format_time(r.time_ms),
        "valueQuantity": {
            "value": json_value(r.value),
            "unit": unit,
            "system": UCUM,
            "code": ucum,
        },
    });
    if !notes.is_empty() {
        o["note"] = Value::Array(notes);
    }
    o
}

/// A check-in answer: `values` are the answer's concurrent severities, the
/// one the resident's views show first.
fn answer(day: Day, symptom: Symptom, values: &[Severity], subject: &Value) -> Value {
    let (finding, text) = symptom_coding(symptom);
    let mut code = json!({ "text": text });
    if let Some((c, d)) = finding {
        code["coding"] = json!([{"system": SNOMED, "code": c, "display": d}]);
    }
    // The log never stores an answer without a value; `None` would be a
    // broken caller, and is exported as absent rather than panicking.
    let shown = values.first().copied().unwrap_or(Severity::None);
    let (sev_code, sev_display) = severity_coding(shown);
    // Two devices setting the same severity concurrently disagree on nothing.
    let distinct: BTreeSet<Severity> = values.iter().copied().collect();
    let mut o = json!({
        "resourceType": "Observation",
        // An id has no '_' (FHIR: [A-Za-z0-9\-.]{1,64}). A reading's id
        // starts with 32 hex digits and 'h' is not one: the two never clash.
        "id": format!("checkin-{day}-{}", symptom.name().replace('_', "-")),
        "status": if distinct.len() > 1 { "preliminary" } else { "final" },
        "category": [{
            "coding": [{"system": CATEGORY, "code": "survey", "display": "Survey"}],
        }],
        "code": code,
        "subject": subject,
        "effectiveDateTime": day.to_string(),
        "valueCodeableConcept": {
            "coding": [{"system": SNOMED, "code": sev_code, "display": sev_display}],
            "text": shown.name(),
        },
    });
    if distinct.len() > 1 {
        let all: Vec<&str> = values.iter().map(|v| v.name()).collect();
        o["note"] = json!([{
            "text": format!(
                "Unresolved: the resident's devices recorded {} at the same time; {} is shown until the resident picks one.",
                all.join(", "),
                shown.name(),
            ),
        }]);
    }
    o
}

/// The FHIR R4 Bundle (type `collection`) of the log: the anonymous Patient,
/// the readings of `metric` (all if `None`), retracted ones only if
/// `include_retracted` (then as `entered-in-error`), and, when `metric` is
/// `None`, every check-in answer; stamped `now_ms`.
pub fn bundle(
    log: &HealthLog,
    metric: Option<Metric>,
    include_retracted: bool,
    now_ms: i64,
) -> Value {
    let patient = patient_uuid(log.device(), now_ms);
    let patient_url = format!("urn:uuid:{patient}");
    let subject = json!({ "reference": patient_url });
    let mut entries = vec![json!({
        "fullUrl": patient_url,
        "resource": {"resourceType": "Patient", "id": patient},
    })];
    entries.extend(
        log.readings(metric, i64::MIN, i64::MAX, include_retracted)
            .iter()
            .map(|r| {
                json!({
                    "fullUrl": format!("urn:uuid:{}", reading_uuid(r.id)),
                    "resource": observation(log, r, &subject),
                })
            }),
    );
    if metric.is_none() {
        let days: BTreeSet<Day> = log.view().checkins.keys().map(|(d, _)| *d).collect();
        for day in days {
            for (symptom, values) in log.checkin(day) {
                entries.push(json!({
                    "fullUrl": format!("urn:uuid:{}", answer_uuid(&patient, day, symptom)),
                    "resource": answer(day, symptom, &values, &subject),
                }));
            }
        }
    }
    // No `total`: R4 allows it only in a search or history Bundle (bdl-1).
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": format_time(now_ms),
        "entry": entries,
    })
}

/// [`bundle`] as pretty-printed JSON (two-space indent), as `vigil export`
/// writes it (without the final line break).
pub fn bundle_json(
    log: &HealthLog,
    metric: Option<Metric>,
    include_retracted: bool,
    now_ms: i64,
) -> String {
    // `{:#}` is serde_json's pretty printer with a two-space indent, the
    // same as `to_string_pretty`, and cannot fail for a `Value`.
    format!("{:#}", bundle(log, metric, include_retracted, now_ms))
}

/// RFC 3339 in UTC, with milliseconds only when they are not zero
/// (`2026-11-27T08:10:00Z`, `2026-11-27T08:10:00.005Z`); a time beyond
/// ±9999 years, which no clock or vault produces, as its number of ms.
fn format_time(ms: i64) -> String {
    let Ok(t) = Timestamp::from_millisecond(ms) else {
        return ms.to_string();
    };
    let precision = (ms.rem_euclid(1000) != 0).then_some(3);
    DateTimePrinter::new()
        .precision(precision)
        .timestamp_to_string(&t)
}

/// A JSON number for a value: integral values as integers (`72`, not
/// `72.0`), others as they are (`37.9`).
fn json_value(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        // Readings are finite (the log refuses others); `null` is never made.
        serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Day, DeviceId, Severity, Symptom, Unit};

    const SNOMED_URL: &str = "http://snomed.info/sct";

    #[test]
    fn times_and_values_print_as_the_cli_always_printed_them() {
        assert_eq!(format_time(1_795_767_000_000), "2026-11-27T08:10:00Z");
        assert_eq!(format_time(1_795_767_000_005), "2026-11-27T08:10:00.005Z");
        assert_eq!(format_time(i64::MAX), i64::MAX.to_string());
        assert_eq!(json_value(72.0).to_string(), "72");
        assert_eq!(json_value(37.9).to_string(), "37.9");
    }

    #[test]
    fn a_retracted_reading_is_entered_in_error_only_when_asked_for() {
        let mut log = HealthLog::new(DeviceId([7; 16]));
        let t = 1_790_000_000_000;
        let id = log
            .record(Metric::BodyTemperature, 37.9, Unit::Celsius, t)
            .unwrap();
        log.record(Metric::Steps, 1200.0, Unit::Count, t + 1)
            .unwrap();
        log.retract(id, "thermometer in tea", t + 2).unwrap();
        let b = bundle(&log, None, false, t + 3);
        let obs = resources(&b, "Observation");
        assert_eq!(obs.len(), 1);
        assert_eq!(
            obs[0]["resource"]["category"][0]["coding"][0]["code"],
            "activity"
        );
        let all = bundle(&log, None, true, t + 3);
        let entry = resources(&all, "Observation")[0];
        let obs = &entry["resource"];
        assert_eq!(obs["status"], "entered-in-error");
        assert_eq!(obs["id"], id.to_string());
        assert!(
            obs["note"][0]["text"]
                .as_str()
                .unwrap()
                .contains("thermometer in tea")
        );
        assert_eq!(entry["fullUrl"], format!("urn:uuid:{}", reading_uuid(id)));
        assert_eq!(
            bundle(&log, Some(Metric::HeartRate), true, t)["entry"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "only the Patient"
        );
    }

    const T: i64 = 1_790_000_000_000;

    /// The entries whose resource is of `kind`.
    fn resources<'a>(b: &'a Value, kind: &str) -> Vec<&'a Value> {
        b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resource"]["resourceType"] == kind)
            .collect()
    }

    /// A log with a reading of every metric, one of them retracted, and a
    /// check-in of every symptom over two days.
    fn full_log() -> (HealthLog, ReadingId) {
        let mut log = HealthLog::new(DeviceId([7; 16]));
        let mut retracted = None;
        for (i, m) in [
            Metric::BodyTemperature,
            Metric::HeartRate,
            Metric::SpO2,
            Metric::RespiratoryRate,
            Metric::Steps,
        ]
        .into_iter()
        .enumerate()
        {
            let v = m.range().0;
            let id = log.record(m, v, m.unit(), T + i as i64).unwrap();
            retracted.get_or_insert(id);
        }
        let retracted = retracted.unwrap();
        log.retract(retracted, "thermometer in tea", T + 10)
            .unwrap();
        let sev = [
            Severity::None,
            Severity::Mild,
            Severity::Moderate,
            Severity::Severe,
        ];
        for (i, s) in Symptom::ALL.into_iter().enumerate() {
            log.check_in(Day::of(T), s, sev[i % 4]).unwrap();
        }
        log.check_in(Day(Day::of(T).0 + 1), Symptom::Cough, Severity::Severe)
            .unwrap();
        (log, retracted)
    }

    #[test]
    fn every_observation_has_the_one_anonymous_patient_as_subject() {
        let (log, _) = full_log();
        for (metric, retracted) in [(None, false), (None, true), (Some(Metric::Steps), true)] {
            let b = bundle(&log, metric, retracted, T + 20);
            let patients = resources(&b, "Patient");
            assert_eq!(patients.len(), 1, "one Patient, however filtered");
            let url = patients[0]["fullUrl"].as_str().unwrap();
            assert!(url.starts_with("urn:uuid:"), "{url}");
            // Anonymous: nothing but its type and a fresh id.
            let p = patients[0]["resource"].as_object().unwrap();
            let mut keys: Vec<&str> = p.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["id", "resourceType"]);
            assert_eq!(format!("urn:uuid:{}", p["id"].as_str().unwrap()), url);
            let obs = resources(&b, "Observation");
            assert!(!obs.is_empty());
            assert_eq!(obs.len() + 1, b["entry"].as_array().unwrap().len());
            for o in obs {
                assert_eq!(o["resource"]["subject"], json!({"reference": url}), "{o}");
            }
        }
    }

    #[test]
    fn the_patient_id_is_fresh_per_export_and_reveals_nothing() {
        let (log, _) = full_log();
        let patient = |log: &HealthLog, now| {
            resources(&bundle(log, None, false, now), "Patient")[0]["fullUrl"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        // Deterministic (the function is pure) ...
        assert_eq!(patient(&log, T + 20), patient(&log, T + 20));
        // ... but another export, or another resident's at the same instant,
        // gets another Patient: bundles merged by a receiver never conflate two.
        assert_ne!(patient(&log, T + 20), patient(&log, T + 21));
        let other = HealthLog::new(DeviceId([8; 16]));
        assert_ne!(patient(&log, T + 20), patient(&other, T + 20));
        // Not made of the device id (which a reading's UUID is).
        let url = patient(&log, T + 20);
        let hex: String = url.chars().filter(char::is_ascii_hexdigit).collect();
        assert!(!hex.contains("070707070707"), "{url}");
        // A valid RFC 9562 UUID: version 8, variant 10.
        let uuid = url.strip_prefix("urn:uuid:").unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "8");
        assert!("89ab".contains(&uuid[19..20]), "{uuid}");
    }

    #[test]
    fn a_collection_bundle_has_no_total_and_unique_full_urls() {
        // R4 invariant bdl-1: total only in a search or history Bundle.
        let (log, _) = full_log();
        let b = bundle(&log, None, true, T + 20);
        assert!(b.get("total").is_none(), "{}", b["total"]);
        let urls: std::collections::HashSet<&str> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["fullUrl"].as_str().unwrap())
            .collect();
        assert_eq!(urls.len(), b["entry"].as_array().unwrap().len());
        let ids: std::collections::HashSet<&str> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), urls.len());
        for id in ids {
            // FHIR id: [A-Za-z0-9\-\.]{1,64}
            assert!(
                (1..=64).contains(&id.len())
                    && id
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.'),
                "{id}"
            );
        }
    }

    /// The check-in Observations of a bundle, by (effective day, Vigil symptom text).
    fn checkins(b: &Value) -> Vec<&Value> {
        resources(b, "Observation")
            .into_iter()
            .map(|e| &e["resource"])
            .filter(|o| o["category"][0]["coding"][0]["code"] == "survey")
            .collect()
    }

    #[test]
    fn check_ins_are_observations_with_coded_symptom_and_severity() {
        let (log, _) = full_log();
        let b = bundle(&log, None, false, T + 20);
        let answers = checkins(&b);
        assert_eq!(answers.len(), Symptom::ALL.len() + 1);
        let day = Day::of(T).to_string();
        let find = |code: &str, day: &str| {
            answers
                .iter()
                .find(|o| {
                    o["effectiveDateTime"] == day
                        && o["code"]["coding"]
                            .as_array()
                            .is_some_and(|c| c.iter().any(|c| c["code"] == code))
                })
                .copied()
                .unwrap_or_else(|| panic!("no check-in {code} on {day}"))
        };
        let cough = find("49727002", &day);
        assert_eq!(cough["status"], "final");
        assert_eq!(cough["code"]["coding"][0]["system"], SNOMED_URL);
        assert_eq!(
            cough["category"][0]["coding"][0]["system"],
            "http://terminology.hl7.org/CodeSystem/observation-category"
        );
        // cough was answered "none": the symptom is absent.
        assert_eq!(
            cough["valueCodeableConcept"]["coding"][0]["code"],
            "2667000"
        );
        assert_eq!(
            cough["valueCodeableConcept"]["coding"][0]["system"],
            SNOMED_URL
        );
        // sore throat mild, fatigue moderate, headache severe.
        for (code, sev) in [
            ("267102003", "255604002"),
            ("84229001", "6736007"),
            ("25064002", "24484000"),
        ] {
            assert_eq!(
                find(code, &day)["valueCodeableConcept"]["coding"][0]["code"],
                sev,
                "{code}"
            );
        }
        for code in ["267036007", "68962001", "43724002"] {
            find(code, &day);
        }
        // Loss of taste or smell: no single SNOMED CT concept; text says it.
        assert!(
            answers
                .iter()
                .any(|o| o["code"]["text"] == "Loss of taste or smell")
        );
        let next = Day(Day::of(T).0 + 1).to_string();
        assert_eq!(
            find("49727002", &next)["valueCodeableConcept"]["coding"][0]["code"],
            "24484000"
        );
        // Check-ins answer no metric: a one-metric export leaves them out.
        assert!(checkins(&bundle(&log, Some(Metric::BodyTemperature), true, T)).is_empty());
    }

    #[test]
    fn a_conflicting_check_in_is_preliminary_with_every_value_noted() {
        let (mut phone, _) = full_log();
        let mut tablet = HealthLog::load(&phone.save(), DeviceId([9; 16])).unwrap();
        let day = Day::of(T);
        // Chills were severe: each device changes them (setting the same
        // value again would be no change, and no conflict).
        phone
            .check_in(day, Symptom::Chills, Severity::Mild)
            .unwrap();
        tablet
            .check_in(day, Symptom::Chills, Severity::Moderate)
            .unwrap();
        phone.merge(&mut tablet).unwrap();
        let shown = phone.checkin(day)[&Symptom::Chills][0];
        let b = bundle(&phone, None, false, T + 20);
        let chills: Vec<&Value> = checkins(&b)
            .into_iter()
            .filter(|o| o["code"]["coding"][0]["code"] == "43724002")
            .collect();
        assert_eq!(chills.len(), 1, "one answer, not two contradicting ones");
        let o = chills[0];
        assert_eq!(o["status"], "preliminary");
        let code = |s: Severity| match s {
            Severity::Mild => "255604002",
            Severity::Moderate => "6736007",
            _ => unreachable!(),
        };
        assert_eq!(o["valueCodeableConcept"]["coding"][0]["code"], code(shown));
        let note = o["note"][0]["text"].as_str().unwrap();
        assert!(note.contains("mild") && note.contains("moderate"), "{note}");
        // Resolved by setting it again: final, no note.
        phone
            .check_in(day, Symptom::Chills, Severity::Mild)
            .unwrap();
        let b = bundle(&phone, None, false, T + 20);
        let o = checkins(&b)
            .into_iter()
            .find(|o| o["code"]["coding"][0]["code"] == "43724002")
            .unwrap();
        assert_eq!(o["status"], "final");
        assert!(o.get("note").is_none());
    }
}
