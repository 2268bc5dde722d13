//! `vigil summary`: per-day statistics.

use std::io::Write;

use serde::Serialize;

use crate::common::Error;
use crate::resident::cli::*;
use crate::resident::context::Ctx;
use crate::resident::fmt::*;

/// `vigil summary`.
pub(crate) fn run(ctx: &mut Ctx, args: &SummaryArgs) -> Result<(), Error> {
    let vault = ctx.open()?;
    let sums: Vec<_> = vault
        .log()
        .daily_summaries_by(args.metric, |t| local_day(t, &ctx.zone))
        .into_iter()
        .filter(|s| args.day.is_none_or(|d| s.day == d))
        .collect();
    if ctx.json {
        let v: Vec<DaySummary> = sums
            .iter()
            .map(|s| DaySummary {
                count: s.count,
                day: s.day.to_string(),
                max: Num(s.max),
                mean: s.mean,
                metric: mname(s.metric),
                min: Num(s.min),
                unit: unit_label(s.metric),
            })
            .collect();
        return ctx.print_json(&v);
    }
    if sums.is_empty() {
        writeln!(ctx.out, "No readings.")?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = sums
        .iter()
        .map(|s| {
            vec![
                s.day.to_string(),
                mname(s.metric).to_owned(),
                s.count.to_string(),
                fmt_value(s.min),
                fmt_value(s.max),
                format!("{:.2}", s.mean),
                unit_label(s.metric).to_owned(),
            ]
        })
        .collect();
    let t = table(
        &["DAY", "METRIC", "COUNT", "MIN", "MAX", "MEAN", "UNIT"],
        &rows,
        &[2, 3, 4, 5],
    );
    ctx.out.write_all(t.as_bytes())?;
    Ok(())
}

/// One entry of `vigil summary --json`.
#[derive(Debug, Serialize)]
struct DaySummary {
    count: usize,
    day: String,
    max: Num,
    mean: f64,
    metric: &'static str,
    min: Num,
    unit: &'static str,
}
