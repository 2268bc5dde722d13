//! Presentation: reading ids, values, tables.

use vigil_log::{HealthLog, Metric, Reading, ReadingId};

use super::cli::metric_name;
use super::error::CliError;

/// A reading id as the table shows it: 8 hex digits of the device, the seq.
pub(crate) fn short_id(id: ReadingId) -> String {
    let full = id.device.to_string();
    format!("{}-{}", &full[..8], id.seq)
}

/// The unit as people write it.
pub(crate) fn unit_label(m: Metric) -> &'static str {
    match m {
        Metric::BodyTemperature => "°C",
        Metric::HeartRate => "bpm",
        Metric::SpO2 => "%",
        Metric::RespiratoryRate => "/min",
        Metric::Steps => "steps",
    }
}

/// A value with its unit, e.g. `37.9 °C`.
pub(crate) fn value_with_unit(m: Metric, v: f64) -> String {
    format!("{} {}", fmt_value(v), unit_label(m))
}

/// A value as stored, shortest form (`37.9`, `72`, `4200`).
pub(crate) fn fmt_value(v: f64) -> String {
    format!("{v}")
}

/// A JSON number for a value: integral values as integers.
pub(crate) fn json_value(v: f64) -> serde_json::Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        serde_json::Value::from(v as i64)
    } else {
        serde_json::Value::from(v)
    }
}

/// Finds a reading by its full id or by the short form `vigil log` shows
/// (a prefix of at least 4 hex digits of the device id, `-`, the seq).
pub(crate) fn find_reading(log: &HealthLog, s: &str) -> Result<Reading, CliError> {
    let s = s.trim();
    if let Ok(id) = s.parse::<ReadingId>() {
        return log
            .reading(id)
            .ok_or_else(|| CliError::usage(format!("no reading {s} in this log")));
    }
    let bad = || {
        CliError::usage(format!(
            "invalid reading id {s:?}: use the id `vigil log` shows, e.g. 3fa2c1d0-4"
        ))
    };
    let (prefix, seq) = s.rsplit_once('-').ok_or_else(bad)?;
    let seq: u64 = seq.parse().map_err(|_| bad())?;
    let prefix = prefix.to_ascii_lowercase();
    if prefix.len() < 4 || prefix.len() > 32 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let matches: Vec<Reading> = log
        .view()
        .readings
        .into_iter()
        .filter(|r| r.id.seq == seq && r.id.device.to_string().starts_with(&prefix))
        .collect();
    match matches.as_slice() {
        [r] => Ok(*r),
        [] => Err(CliError::usage(format!("no reading {s} in this log"))),
        _ => Err(CliError::usage(format!(
            "reading id {s} is ambiguous: give more digits (see `vigil log --json` for full ids)"
        ))),
    }
}

/// A plain text table: a header row and rows, columns padded; the columns
/// listed in `right` are right-aligned.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let n = header.len();
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i].saturating_sub(c.chars().count());
            if i > 0 {
                s.push_str("  ");
            }
            if right.contains(&i) {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                if i + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// The CLI name of a metric, for messages.
pub(crate) fn mname(m: Metric) -> &'static str {
    metric_name(m)
}

/// Checks a value for a metric, with the CLI's names in the message.
pub(crate) fn validate_value(m: Metric, v: f64) -> Result<(), CliError> {
    let (min, max) = m.range();
    if !v.is_finite() {
        return Err(CliError::usage(format!(
            "{} value must be a finite number, got {v}",
            mname(m)
        )));
    }
    if !(min..=max).contains(&v) {
        return Err(CliError::usage(format!(
            "{} value {} is outside the valid range {}–{} {}",
            mname(m),
            fmt_value(v),
            fmt_value(min),
            fmt_value(max),
            unit_label(m)
        )));
    }
    if m == Metric::Steps && v.fract() != 0.0 {
        return Err(CliError::usage(format!(
            "steps must be a whole number, got {v}"
        )));
    }
    Ok(())
}
