//! `vigil export`: an HL7 FHIR R4 Bundle, or the Automerge document.
//!
//! FHIR mapping (one Observation per reading):
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
//! Retracted readings are left out by default; with `--include-retracted`
//! they are included with status `entered-in-error` and the reason as a
//! note. The Bundle has no Patient: it is the resident's own export, and the
//! log has no identity in it by design.

use std::io::Write;

use serde_json::{Value, json};
use vigil_log::{HealthLog, Metric, Reading, ReadingId};

use crate::common::Error as CliError;
use crate::common::time::format_time;
use crate::resident::cli::ExportArgs;
use crate::resident::context::{Ctx, write_private};
use crate::resident::fmt::json_value;

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
pub(crate) fn reading_uuid(id: ReadingId) -> String {
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

/// The FHIR R4 Bundle (type `collection`) of the log's readings.
pub(crate) fn fhir_bundle(
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

/// `vigil export`.
pub(crate) fn run(ctx: &mut Ctx, args: &ExportArgs) -> Result<(), CliError> {
    let mut vault = ctx.open()?;
    if let Some(path) = &args.automerge {
        let doc = vault.export_automerge();
        write_private(path, &doc, args.force)?;
        let n = vault.log().readings(None, i64::MIN, i64::MAX, false).len();
        if ctx.json {
            return ctx.print_json(&Written {
                bytes: Some(doc.len()),
                file: path.display().to_string(),
                observations: None,
                readings: Some(n),
            });
        }
        writeln!(
            ctx.out,
            "Wrote the log ({n} readings, {} bytes) as an Automerge document to {}.\nThis file is plaintext and is not shredded at the end of the period.",
            doc.len(),
            path.display()
        )?;
        return Ok(());
    }
    let bundle = fhir_bundle(vault.log(), args.metric, args.include_retracted, ctx.now_ms);
    let text =
        serde_json::to_string_pretty(&bundle).map_err(|e| CliError::failed(e.to_string()))?;
    match &args.out {
        Some(path) => {
            write_private(path, format!("{text}\n").as_bytes(), args.force)?;
            let n = bundle["entry"].as_array().map_or(0, Vec::len);
            if ctx.json {
                return ctx.print_json(&Written {
                    bytes: None,
                    file: path.display().to_string(),
                    observations: Some(n),
                    readings: None,
                });
            }
            writeln!(
                ctx.out,
                "Wrote a FHIR R4 Bundle of {n} Observations to {}.\nThis file is plaintext and is not shredded at the end of the period.",
                path.display()
            )?;
        }
        None => writeln!(ctx.out, "{text}")?,
    }
    Ok(())
}

/// `vigil export --json` when the export went to a file. (The FHIR Bundle
/// itself is a document of FHIR's, built as one.)
#[derive(Debug, serde::Serialize)]
struct Written {
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<usize>,
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    observations: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    readings: Option<usize>,
}
