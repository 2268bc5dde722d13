//! `vigil check-in`: the daily symptom check-in.

use std::io::Write;

use serde::Serialize;
use vigil_log::{Day, Symptom};

use crate::common::Error;
use crate::common::time::format_time;
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
    let day = args.day.unwrap_or(Day::of(ctx.now_ms));
    if !args.set.is_empty() {
        let p = vault.period();
        if day < Day::of(p.start_ms) || day > Day::of(p.end_ms - 1) {
            return Err(Error::usage(format!(
                "{day} is outside the monitoring period ({} to {})",
                format_time(p.start_ms),
                format_time(p.end_ms)
            )));
        }
        if day > Day::of(ctx.now_ms) {
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
                    conflicting: (vals.len() > 1).then(|| vals.iter().map(|v| v.name()).collect()),
                    symptom: symptom_name(*s),
                    value: vals.first().map(|v| v.name()),
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
    conflicting: Option<Vec<&'static str>>,
    symptom: String,
    value: Option<&'static str>,
}
