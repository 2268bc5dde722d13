//! `vigil conflicts`: values the devices set differently, and `conflicts resolve`.

use std::io::Write;

use serde::Serialize;
use vigil_device::Vault;
use vigil_log::{Conflict, Day, Severity, Symptom};

use crate::common::Error;
use crate::common::text::cut;
use crate::resident::cli::*;
use crate::resident::context::Ctx;
use crate::resident::fmt::*;

/// Widest a conflicting note is shown, in characters (`--json` has them whole).
const CONFLICT_NOTE: usize = 120;

fn conflict_key(c: &Conflict) -> String {
    match c {
        Conflict::CheckIn { day, symptom, .. } => format!("{day}/{}", symptom_name(*symptom)),
        Conflict::Annotation { reading, .. } => short_id(*reading),
    }
}

/// `vigil conflicts` and `vigil conflicts resolve`.
pub(crate) fn run(ctx: &mut Ctx, args: &ConflictsArgs) -> Result<(), Error> {
    let mut vault = ctx.open()?;
    if let Some(ConflictsAction::Resolve { key, value, pick }) = &args.action {
        return resolve(ctx, &mut vault, key, value.as_deref(), *pick);
    }
    let all = vault.log().conflicts();
    let me = vault.device_id();
    // Who set each value: the device id the log records with it.
    let devices = |c: &Conflict| vault.log().conflict_devices(c);
    if ctx.json {
        let v: Vec<ConflictJson> = all
            .iter()
            .map(|c| match c {
                Conflict::CheckIn {
                    day,
                    symptom,
                    values,
                } => ConflictJson {
                    day: Some(day.to_string()),
                    devices: devices(c)
                        .iter()
                        .map(|d| d.map(|d| d.to_string()))
                        .collect(),
                    key: conflict_key(c),
                    kind: "check-in",
                    reading: None,
                    symptom: Some(symptom_name(*symptom)),
                    values: values.iter().map(|v| v.name().to_owned()).collect(),
                },
                Conflict::Annotation { reading, values } => ConflictJson {
                    day: None,
                    devices: devices(c)
                        .iter()
                        .map(|d| d.map(|d| d.to_string()))
                        .collect(),
                    key: conflict_key(c),
                    kind: "annotation",
                    reading: Some(reading.to_string()),
                    symptom: None,
                    values: values.clone(),
                },
            })
            .collect();
        return ctx.print_json(&v);
    }
    if all.is_empty() {
        writeln!(ctx.out, "No conflicts.")?;
        return Ok(());
    }
    for c in &all {
        let key = conflict_key(c);
        let (what, values): (String, Vec<String>) = match c {
            Conflict::CheckIn { values, .. } => (
                "check-in".into(),
                values.iter().map(|v| v.name().to_owned()).collect(),
            ),
            Conflict::Annotation { values, .. } => (
                "annotation".into(),
                // Escaped and cut: a note set on another device is
                // someone else's text on this terminal.
                values
                    .iter()
                    .map(|v| format!("\"{}\"", cut(v, CONFLICT_NOTE)))
                    .collect(),
            ),
        };
        writeln!(ctx.out, "{key}  ({what}, set differently on your devices)")?;
        let by = devices(c);
        for (i, v) in values.iter().enumerate() {
            let shown = if i == 0 { ", shown now" } else { "" };
            let who = match by.get(i).copied().flatten() {
                Some(d) if d == me => "this device".to_owned(),
                Some(d) => format!("device {}", &d.to_string()[..8]),
                None => "an unknown device".to_owned(),
            };
            writeln!(ctx.out, "  {}. {v}  (set on {who}{shown})", i + 1)?;
        }
        writeln!(ctx.out, "  resolve: vigil conflicts resolve {key} --pick N")?;
    }
    Ok(())
}

fn resolve(
    ctx: &mut Ctx,
    vault: &mut Vault,
    key: &str,
    value: Option<&str>,
    pick: Option<usize>,
) -> Result<(), Error> {
    let all = vault.log().conflicts();
    let chosen = |values: Vec<String>| -> Result<String, Error> {
        match (value, pick) {
            (Some(v), _) => Ok(v.to_owned()),
            (None, Some(n)) => values.get(n.wrapping_sub(1)).cloned().ok_or_else(|| {
                Error::usage(format!(
                    "--pick {n}: this conflict has values 1 to {}",
                    values.len()
                ))
            }),
            (None, None) => Err(Error::usage("give the VALUE to keep, or --pick N")),
        }
    };
    let result = if let Some((d, s)) = key.split_once('/') {
        let day: Day = d.parse().map_err(|_| {
            Error::usage(format!(
                "invalid conflict key {key:?}: expected DAY/SYMPTOM or a reading id"
            ))
        })?;
        let symptom: Symptom = s
            .parse()
            .map_err(|_| Error::usage(format!("unknown symptom {s:?} in {key:?}")))?;
        let values = unresolved(&all, key, |c| match c {
            Conflict::CheckIn {
                day: d2,
                symptom: s2,
                values,
            } if *d2 == day && *s2 == symptom => {
                Some(values.iter().map(|v| v.name().to_owned()).collect())
            }
            _ => None,
        })?;
        let v = chosen(values)?;
        let severity: Severity = v.parse().map_err(|_| {
            Error::usage(format!(
                "unknown severity {v:?} (use one of: none, mild, moderate, severe)"
            ))
        })?;
        vault.check_in(day, symptom, severity)?;
        Resolved {
            key: format!("{day}/{}", symptom_name(symptom)),
            reading: None,
            value: severity.name().to_owned(),
        }
    } else {
        // Every reading id has a `-`: without one, the key is likely a
        // symptom's name, which needs its day.
        if !key.contains('-') {
            return Err(not_a_key(&all, key));
        }
        let r = find_reading(vault.log(), key)?;
        let values = unresolved(&all, key, |c| match c {
            Conflict::Annotation { reading, values } if *reading == r.id => Some(values.clone()),
            _ => None,
        })?;
        let v = chosen(values)?;
        vault.annotate(r.id, &v)?;
        Resolved {
            key: short_id(r.id),
            reading: Some(r.id.to_string()),
            value: v,
        }
    };
    if ctx.json {
        return ctx.print_json(&result);
    }
    writeln!(
        ctx.out,
        "Resolved {}: {} (your other devices take it at their next sync)",
        result.key,
        // Quoted, as JSON: an annotation may hold any text.
        serde_json::Value::from(result.value)
    )?;
    Ok(())
}

/// The refusal of a key that is neither DAY/SYMPTOM nor a reading id: what
/// a key is, and, for a bare symptom name, its conflicts' keys.
fn not_a_key(all: &[Conflict], key: &str) -> Error {
    let hint = match key.parse::<Symptom>() {
        Ok(symptom) => {
            let keys: Vec<String> = all
                .iter()
                .filter(|c| matches!(c, Conflict::CheckIn { symptom: s, .. } if *s == symptom))
                .map(conflict_key)
                .collect();
            if keys.is_empty() {
                format!(
                    "; there is no unresolved conflict about {}",
                    symptom_name(symptom)
                )
            } else {
                format!("; for {}: {}", symptom_name(symptom), keys.join(", "))
            }
        }
        Err(_) => String::new(),
    };
    Error::usage(format!(
        "{key:?} is not a conflict key: give DAY/SYMPTOM (e.g. 2026-11-23/cough) for a check-in or the reading id for an annotation, as `vigil conflicts` lists them{hint}"
    ))
}

/// The values of the one conflict in `all` that `find` picks out, or the
/// usage error for `key`, which names no unresolved conflict.
fn unresolved(
    all: &[Conflict],
    key: &str,
    find: impl FnMut(&Conflict) -> Option<Vec<String>>,
) -> Result<Vec<String>, Error> {
    all.iter().find_map(find).ok_or_else(|| {
        Error::usage(format!(
            "no unresolved conflict {key} (see `vigil conflicts`)"
        ))
    })
}

/// One conflict in `vigil conflicts --json`: a check-in has `day` and
/// `symptom`, an annotation `reading`; the others are null.
#[derive(Debug, Serialize)]
struct ConflictJson {
    day: Option<String>,
    /// The device that set each of `values` (`null` if unknown).
    devices: Vec<Option<String>>,
    key: String,
    kind: &'static str,
    reading: Option<String>,
    symptom: Option<String>,
    values: Vec<String>,
}

/// `vigil conflicts resolve --json`.
#[derive(Debug, Serialize)]
struct Resolved {
    key: String,
    reading: Option<String>,
    value: String,
}
