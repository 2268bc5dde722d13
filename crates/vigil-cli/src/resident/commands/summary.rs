//! `vigil summary`: per-day statistics.

use std::io::Write;

use serde_json::{Value, json};

use crate::common::Error;
use crate::resident::cli::*;
use crate::resident::context::Ctx;
use crate::resident::fmt::*;

/// `vigil summary`.
pub(crate) fn run(ctx: &mut Ctx, args: &SummaryArgs) -> Result<(), Error> {
    let vault = ctx.open()?;
    let sums: Vec<_> = vault
        .log()
        .daily_summaries(args.metric)
        .into_iter()
        .filter(|s| args.day.is_none_or(|d| s.day == d))
        .collect();
    if ctx.json {
        let v: Vec<Value> = sums
            .iter()
            .map(|s| {
                json!({
                    "day": s.day.to_string(),
                    "metric": mname(s.metric),
                    "unit": unit_label(s.metric),
                    "count": s.count,
                    "min": json_value(s.min),
                    "max": json_value(s.max),
                    "mean": s.mean,
                })
            })
            .collect();
        return ctx.print_json(&Value::Array(v));
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
