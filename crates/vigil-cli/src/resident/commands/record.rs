//! `vigil record`: one reading.

use std::io::Write;

use serde::Serialize;

use crate::common::Error;
use crate::common::time::format_time;
use crate::resident::cli::*;
use crate::resident::context::Ctx;
use crate::resident::fmt::*;

/// Readings may carry a time this far past "now" (clock skew between devices).
const FUTURE_SLACK_MS: i64 = 60_000;

/// Refuses a reading time in the future (beyond a minute's clock slack) or
/// outside the period, then opens the vault to record it.
pub(crate) fn open_for_reading_at(ctx: &mut Ctx, at: i64) -> Result<vigil_device::Vault, Error> {
    if at > ctx.now_ms + FUTURE_SLACK_MS {
        return Err(Error::usage(format!(
            "{} is in the future (now is {})",
            ctx.time(at),
            ctx.time(ctx.now_ms)
        )));
    }
    let vault = ctx.open()?;
    let p = vault.period();
    if at < p.start_ms || at >= p.end_ms {
        return Err(Error::usage(format!(
            "{} is outside the monitoring period ({} to {})",
            ctx.time(at),
            ctx.time(p.start_ms),
            ctx.time(p.end_ms)
        )));
    }
    Ok(vault)
}

/// For a value the log refuses, what it most likely is: a temperature in
/// °F, or an SpO2 written as a fraction. Only when the converted value is
/// itself valid, so the hint never suggests another refusal.
fn unit_hint(metric: vigil_log::Metric, value: f64) -> Option<String> {
    use vigil_log::Metric;
    let (lo, hi) = metric.range();
    let valid = |v: f64| (lo..=hi).contains(&v);
    match metric {
        Metric::BodyTemperature => {
            // Rounded to the 0.1 °C a thermometer shows.
            let c = ((value - 32.0) * 5.0 / 9.0 * 10.0).round() / 10.0;
            valid(c).then(|| {
                format!(
                    "{} looks like °F (= {c:.1} °C); Vigil records °C: `vigil record temperature {c:.1}`",
                    fmt_value(value)
                )
            })
        }
        Metric::SpO2 if value > 0.0 && value <= 1.0 => {
            let p = (value * 100.0).round();
            valid(p).then(|| {
                format!(
                    "{} looks like a fraction (= {p} %); Vigil records percent: `vigil record spo2 {p}`",
                    fmt_value(value)
                )
            })
        }
        _ => None,
    }
}

/// `vigil record`.
pub(crate) fn run(ctx: &mut Ctx, args: &RecordArgs) -> Result<(), Error> {
    validate_value(args.metric, args.value).map_err(|e| {
        match unit_hint(args.metric, args.value) {
            Some(hint) => Error::usage(format!("{}: {hint}", e.message)),
            None => e,
        }
    })?;
    let at = args.at.map_or(ctx.now_ms, |t| t.resolve(ctx.now_ms));
    let mut vault = open_for_reading_at(ctx, at)?;
    let before = vault.pending_alerts()?.len();
    let id = vault.record_received(args.metric, args.value, args.metric.unit(), at, ctx.now_ms)?;
    let queued = vault.pending_alerts()?.len().saturating_sub(before);
    if ctx.json {
        return ctx.print_json(&Recorded {
            alerts_queued: queued,
            id: id.to_string(),
            metric: mname(args.metric),
            time: format_time(at),
            unit: unit_label(args.metric),
            value: Num(args.value),
        });
    }
    writeln!(
        ctx.out,
        "Recorded {} {} at {} (id {})",
        mname(args.metric),
        value_with_unit(args.metric, args.value),
        ctx.time(at),
        short_id(id)
    )?;
    if queued > 0 {
        writeln!(
            ctx.out,
            "A fever alert is queued for the community node; it is sent at the next `vigil sync`."
        )?;
    }
    Ok(())
}

/// `vigil record --json`.
#[derive(Debug, Serialize)]
struct Recorded {
    alerts_queued: usize,
    id: String,
    metric: &'static str,
    time: String,
    unit: &'static str,
    value: Num,
}
