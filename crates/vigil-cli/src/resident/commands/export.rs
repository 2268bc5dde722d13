//! `vigil export`: an HL7 FHIR R4 Bundle, or the Automerge document.
//!
//! The Bundle is built by `vigil_log::fhir` (its mapping is documented
//! there), the one implementation the app bindings share: an anonymous
//! Patient, the readings and the check-in answers as Observations;
//! retracted readings are in it only with `--include-retracted`, and
//! `--metric` leaves out the check-ins.

use std::io::Write;

use vigil_log::fhir::bundle as fhir_bundle;

use crate::common::Error as CliError;
use crate::resident::cli::ExportArgs;
use crate::resident::context::{Ctx, write_private};

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
            // Observations (readings and check-in answers), not entries:
            // the anonymous Patient is one too.
            let n = bundle["entry"].as_array().map_or(0, |entries| {
                entries
                    .iter()
                    .filter(|e| e["resource"]["resourceType"] == "Observation")
                    .count()
            });
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
