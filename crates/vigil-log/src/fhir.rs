//! The resident's export as an HL7 FHIR R4 Bundle: one implementation for
//! every caller (the `vigil export` command, the app bindings).
//!
//! Mapping (one Observation per reading):
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
//! with status `entered-in-error` and the reason as a note. The Bundle has
//! no Patient: it is the resident's own export, and the log has no identity
//! in it by design. Pure: the bundle's time stamp is a parameter.
//!
//! ```
//! use vigil_log::{DeviceId, HealthLog, Metric, Unit, fhir};
//! let mut log = HealthLog::new(DeviceId([1; 16]));
//! log.record(Metric::HeartRate, 72.0, Unit::BeatsPerMinute, 1_790_000_000_000).unwrap();
//! let b = fhir::bundle(&log, None, false, 1_790_000_060_000);
//! assert_eq!(b["entry"][0]["resource"]["valueQuantity"]["value"], 72);
//! assert!(fhir::bundle_json(&log, None, false, 1_790_000_060_000).contains("8867-4"));
//! ```

use jiff::Timestamp;
use jiff::fmt::temporal::DateTimePrinter;
use serde_json::{Value, json};

use crate::log::HealthLog;
use crate::model::{Metric, Reading, ReadingId};

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
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

/// A stable UUID (version 8, RFC 9562) for a reading, for `urn:uuid:` full URLs.
pub fn reading_uuid(id: ReadingId) -> String {
    let mut b = id.device.0;
    for (x, s) in b[8..].iter_mut().zip(id.seq.to_be_bytes()) {
        *x ^= s;
    }
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

fn observation(log: &HealthLog, r: &Reading) -> Value {
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

/// The FHIR R4 Bundle (type `collection`) of the log's readings: those of
/// `metric` (all if `None`), retracted ones only if `include_retracted`
/// (then as `entered-in-error`), stamped `now_ms`.
pub fn bundle(
    log: &HealthLog,
    metric: Option<Metric>,
    include_retracted: bool,
    now_ms: i64,
) -> Value {
    let entries: Vec<Value> = log
        .readings(metric, i64::MIN, i64::MAX, include_retracted)
        .iter()
        .map(|r| {
            json!({
                "fullUrl": format!("urn:uuid:{}", reading_uuid(r.id)),
                "resource": observation(log, r),
            })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": format_time(now_ms),
        "total": entries.len(),
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
    use crate::model::{DeviceId, Unit};

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
        assert_eq!(b["total"], 1);
        assert_eq!(
            b["entry"][0]["resource"]["category"][0]["coding"][0]["code"],
            "activity"
        );
        let all = bundle(&log, None, true, t + 3);
        let obs = &all["entry"][0]["resource"];
        assert_eq!(obs["status"], "entered-in-error");
        assert_eq!(obs["id"], id.to_string());
        assert!(
            obs["note"][0]["text"]
                .as_str()
                .unwrap()
                .contains("thermometer in tea")
        );
        assert_eq!(
            all["entry"][0]["fullUrl"],
            format!("urn:uuid:{}", reading_uuid(id))
        );
        assert_eq!(bundle(&log, Some(Metric::HeartRate), true, t)["total"], 0);
    }
}
