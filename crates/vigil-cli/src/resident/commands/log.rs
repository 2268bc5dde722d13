//! `vigil log`: readings as a table.

use std::io::Write;

use serde::Serialize;
use vigil_log::HealthLog;

use crate::common::Error;
use crate::common::text::cut;
use crate::common::time::format_time;
use crate::resident::cli::*;
use crate::resident::context::Ctx;
use crate::resident::fmt::*;

/// Widest a note is shown in the table, and a retraction's reason, in
/// characters: the whole text is in `--json`, and a table line stays
/// within a terminal's width.
const NOTE_COLUMN: usize = 40;
const REASON_COLUMN: usize = 30;

/// One reading in `vigil log --json`; the annotation and retraction are
/// null when there is none (keys are always present: README, "JSON output").
#[derive(Debug, Serialize)]
struct ReadingJson {
    annotation: Option<String>,
    /// Every value, when devices set the annotation differently.
    annotation_conflict: Option<Vec<String>>,
    id: String,
    metric: &'static str,
    retracted: Option<RetractionJson>,
    time: String,
    unit: &'static str,
    value: Num,
}

#[derive(Debug, Serialize)]
struct RetractionJson {
    reason: String,
    time: String,
}

fn reading_json(log: &HealthLog, r: &vigil_log::Reading) -> ReadingJson {
    let notes = log.annotation(r.id);
    ReadingJson {
        annotation: notes.first().cloned(),
        annotation_conflict: (notes.len() > 1).then_some(notes),
        id: r.id.to_string(),
        metric: mname(r.metric),
        retracted: log.retraction(r.id).map(|x| RetractionJson {
            reason: x.reason,
            time: format_time(x.time_ms),
        }),
        time: format_time(r.time_ms),
        unit: unit_label(r.metric),
        value: Num(r.value),
    }
}

/// `vigil log`.
pub(crate) fn run(ctx: &mut Ctx, args: &LogArgs) -> Result<(), Error> {
    let vault = ctx.open()?;
    let (from, to) = match args.day {
        Some(d) => day_range(d, &ctx.zone),
        None => (
            args.from.map_or(i64::MIN, |t| t.resolve(ctx.now_ms)),
            args.to.map_or(i64::MAX, |t| t.resolve(ctx.now_ms)),
        ),
    };
    let log = vault.log();
    let readings = log.readings(args.metric, from, to, args.all);
    if ctx.json {
        let v: Vec<ReadingJson> = readings.iter().map(|r| reading_json(log, r)).collect();
        return ctx.print_json(&v);
    }
    if readings.is_empty() {
        writeln!(ctx.out, "No readings.")?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = readings
        .iter()
        .map(|r| {
            let mut note = log.annotation(r.id);
            let mut n = note
                .first()
                .map(|n| cut(n, NOTE_COLUMN))
                .unwrap_or_default();
            if note.len() > 1 {
                n.push_str(&format!(" [{} conflicting notes]", note.len()));
            }
            if let Some(x) = log.retraction(r.id) {
                note.clear();
                n = format!(
                    "RETRACTED ({}){}",
                    cut(&x.reason, REASON_COLUMN),
                    if n.is_empty() {
                        String::new()
                    } else {
                        format!(" {n}")
                    }
                );
            }
            vec![
                ctx.time(r.time_ms),
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
