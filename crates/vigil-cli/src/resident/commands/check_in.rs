//! `vigil check-in`: the daily symptom check-in.

use std::io::Write;

use serde::Serialize;
use vigil_log::Symptom;

use crate::common::Error;
use crate::resident::cli::*;
use crate::resident::context::Ctx;
use crate::resident::fmt::*;

/// `vigil check-in`.
pub(crate) fn run(ctx: &mut Ctx, args: &CheckInArgs) -> Result<(), Error> {
    // `cough=mild cough=severe` would keep the last one without a word.
    for (i, (symptom, severity)) in args.set.iter().enumerate() {
        if let Some((_, other)) = args.set[..i].iter().find(|(s, _)| s == symptom) {
            return Err(Error::usage(format!(
                "{} is given twice ({} and {}): give each symptom once (nothing was saved)",
                symptom_name(*symptom),
                other.name(),
                severity.name()
            )));
        }
    }
    let mut vault = ctx.open()?;
    // Days are the resident's local days (or UTC ones with --utc).
    let today = local_day(ctx.now_ms, &ctx.zone);
    let day = args.day.unwrap_or(today);
    if !args.set.is_empty() {
        let p = vault.period();
        if day < local_day(p.start_ms, &ctx.zone) || day > local_day(p.end_ms - 1, &ctx.zone) {
            return Err(Error::usage(format!(
                "{day} is outside the monitoring period ({} to {})",
                ctx.time(p.start_ms),
                ctx.time(p.end_ms)
            )));
        }
        if day > today {
            return Err(Error::usage(format!("{day} is in the future")));
        }
        for (symptom, severity) in &args.set {
            vault.check_in(day, *symptom, *severity)?;
        }
    }
    let checkin = vault.log().checkin(day);
    if ctx.json {
        let v: Vec<SymptomJson> = Symptom::ALL
            .iter()
            .map(|s| {
                let vals = checkin.get(s).cloned().unwrap_or_default();
                SymptomJson {
                    symptom: symptom_name(*s),
                    value: vals.first().map(|v| v.name()),
                    value_conflict: (vals.len() > 1)
                        .then(|| vals.iter().map(|v| v.name()).collect()),
                }
            })
            .collect();
        return ctx.print_json(&CheckInJson {
            day: day.to_string(),
            symptoms: v,
        });
    }
    if !args.set.is_empty() {
        writeln!(ctx.out, "Check-in saved for {day}.")?;
    }
    let rows: Vec<Vec<String>> = Symptom::ALL
        .iter()
        .map(|s| {
            let vals = checkin.get(s).cloned().unwrap_or_default();
            let shown = match vals.as_slice() {
                [] => "-".to_owned(),
                [v] => v.to_string(),
                [v, ..] => format!(
                    "{v} (conflict: {}; see `vigil conflicts`)",
                    vals.iter().map(|x| x.name()).collect::<Vec<_>>().join(", ")
                ),
            };
            vec![symptom_name(*s), shown]
        })
        .collect();
    writeln!(ctx.out, "Check-in for {day}:")?;
    ctx.out
        .write_all(table(&["SYMPTOM", "SEVERITY"], &rows, &[]).as_bytes())?;
    Ok(())
}

/// `vigil check-in --json`.
#[derive(Debug, Serialize)]
struct CheckInJson {
    day: String,
    symptoms: Vec<SymptomJson>,
}

/// One symptom of the day: its severity, and every value when devices differ.
#[derive(Debug, Serialize)]
struct SymptomJson {
    symptom: String,
    value: Option<&'static str>,
    /// Every value when devices differ, as `log` has `annotation_conflict`
    /// (it was `conflicting` before issue 18).
    value_conflict: Option<Vec<&'static str>>,
}
