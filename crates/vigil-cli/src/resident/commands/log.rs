//! `vigil log`: readings as a table.

use std::io::Write;

use serde_json::{Value, json};
use vigil_log::HealthLog;

use crate::common::Error;
use crate::common::time::format_time;
use crate::resident::cli::*;
use crate::resident::context::Ctx;
use crate::resident::fmt::*;

const DAY_MS: i64 = 86_400_000;

fn reading_json(log: &HealthLog, r: &vigil_log::Reading) -> Value {
    let mut v = json!({
        "id": r.id.to_string(),
        "time": format_time(r.time_ms),
        "metric": mname(r.metric),
        "value": json_value(r.value),
        "unit": unit_label(r.metric),
    });
    let notes = log.annotation(r.id);
    if !notes.is_empty() {
        v["annotation"] = json!(notes[0]);
        if notes.len() > 1 {
            v["annotation_conflict"] = json!(notes);
        }
    }
    if let Some(x) = log.retraction(r.id) {
        v["retracted"] = json!({"time": format_time(x.time_ms), "reason": x.reason});
    }
    v
}

/// `vigil log`.
pub(crate) fn run(ctx: &mut Ctx, args: &LogArgs) -> Result<(), Error> {
    let vault = ctx.open()?;
    let (from, to) = match args.day {
        Some(d) => (d.start_ms(), d.start_ms() + DAY_MS),
        None => (
            args.from.map_or(i64::MIN, |t| t.resolve(ctx.now_ms)),
            args.to.map_or(i64::MAX, |t| t.resolve(ctx.now_ms)),
        ),
    };
    let log = vault.log();
    let readings = log.readings(args.metric, from, to, args.all);
    if ctx.json {
        let v: Vec<Value> = readings.iter().map(|r| reading_json(log, r)).collect();
        return ctx.print_json(&Value::Array(v));
    }
    if readings.is_empty() {
        writeln!(ctx.out, "No readings.")?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = readings
        .iter()
        .map(|r| {
            let mut note = log.annotation(r.id);
            let mut n = note.first().cloned().unwrap_or_default();
            if note.len() > 1 {
                n.push_str(&format!(" [{} conflicting notes]", note.len()));
            }
            if let Some(x) = log.retraction(r.id) {
                note.clear();
                n = format!(
                    "RETRACTED ({}){}",
                    x.reason,
                    if n.is_empty() {
                        String::new()
                    } else {
                        format!(" {n}")
                    }
                );
            }
            vec![
                format_time(r.time_ms),
                mname(r.metric).to_owned(),
                fmt_value(r.value),
                unit_label(r.metric).to_owned(),
                short_id(r.id),
                n,
            ]
        })
        .collect();
    let t = table(
        &["TIME", "METRIC", "VALUE", "UNIT", "ID", "NOTE"],
        &rows,
        &[2],
    );
    ctx.out.write_all(t.as_bytes())?;
    Ok(())
}
