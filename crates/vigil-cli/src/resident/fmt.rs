//! Presentation shared by the commands: reading ids, values, units, names.

use vigil_log::{Day, FeverRule, HealthLog, LogError, Metric, Reading, ReadingId, Symptom};

use super::cli::metric_name;
use crate::common::Error as CliError;
use crate::common::time::{Zone, format_duration, format_time_in};

pub(crate) use crate::common::table::render as table;

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

/// A reading as a confirmation names it: `3fa2c1d0-4 (temperature 37.9 °C
/// at 2026-11-23T08:00:00Z)`, its time in `zone`.
pub(crate) fn reading_line(r: &Reading, zone: &Zone) -> String {
    format!(
        "{} ({} {} at {})",
        short_id(r.id),
        mname(r.metric),
        value_with_unit(r.metric, r.value),
        format_time_in(r.time_ms, zone)
    )
}

const DAY_MS: i64 = 86_400_000;

/// The day (as the log names days: a calendar date) that `ms` falls on in
/// `zone`: a resident in Beijing finds an evening reading under today's
/// date, not tomorrow's.
pub(crate) fn local_day(ms: i64, zone: &Zone) -> Day {
    zone.date(ms)
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map_or(Day::of(ms), |z| Day::of(z.timestamp().as_millisecond()))
}

/// The instants `[start, end)` of `day` in `zone`, ms.
pub(crate) fn day_range(day: Day, zone: &Zone) -> (i64, i64) {
    let utc = (day.start_ms(), day.start_ms() + DAY_MS);
    let Ok(t) = jiff::Timestamp::from_millisecond(day.start_ms()) else {
        return utc;
    };
    let date = t.to_zoned(jiff::tz::TimeZone::UTC).date();
    zone.day_range(date).unwrap_or(utc)
}

/// A value as stored, shortest form (`37.9`, `72`, `4200`).
pub(crate) fn fmt_value(v: f64) -> String {
    format!("{v}")
}

/// A value in `--json` output: integral values as integers (`72`, not
/// `72.0`), others as they are (`37.9`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Num(pub(crate) f64);

impl serde::Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            s.serialize_i64(v as i64)
        } else {
            s.serialize_f64(v)
        }
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

/// The CLI name of a metric, for messages.
pub(crate) fn mname(m: Metric) -> &'static str {
    metric_name(m)
}

/// vigil-log's refusal of a value (it checks every range), in the CLI's
/// words: the metric's CLI name and the unit as people write it.
pub(crate) fn value_error(e: &LogError) -> String {
    match *e {
        LogError::NotFinite { metric, value } => {
            format!(
                "{} value must be a finite number, got {value}",
                mname(metric)
            )
        }
        LogError::OutOfRange {
            metric,
            value,
            min,
            max,
            ..
        } => format!(
            "{} value {} is outside the valid range {}–{} {}",
            mname(metric),
            fmt_value(value),
            fmt_value(min),
            fmt_value(max),
            unit_label(metric)
        ),
        LogError::FractionalCount(v) => format!("steps must be a whole number, got {v}"),
        ref e => e.to_string(),
    }
}

/// Checks a value for a metric (vigil-log's check, before the vault is
/// opened, so bad input is reported as such whatever the vault's state).
pub(crate) fn validate_value(m: Metric, v: f64) -> Result<(), CliError> {
    m.validate(v, m.unit())
        .map(drop)
        .map_err(|e| CliError::usage(value_error(&e)))
}

/// A symptom's CLI name (`sore-throat`).
pub(crate) fn symptom_name(s: Symptom) -> String {
    s.name().replace('_', "-")
}

/// A public key, as hex.
pub(crate) fn node_hex(k: &vigil_crypto::X25519PublicKey) -> String {
    hex::encode(k.as_bytes())
}

/// A fever rule in words.
pub(crate) fn rule_text(r: &FeverRule) -> String {
    format!(
        "≥ {} °C in {} reading(s) within {}, ends after {} below",
        r.threshold_c,
        r.confirm_count,
        format_duration(r.confirm_window_ms),
        format_duration(r.recovery_ms)
    )
}

/// An alert's episode kind.
pub(crate) fn alert_kind(kind: u8) -> &'static str {
    match kind {
        1 => "started",
        2 => "ended",
        _ => "unknown",
    }
}

/// A monitoring period in `--json` output.
#[derive(Debug, serde::Serialize)]
pub(crate) struct PeriodJson {
    /// When it ends, RFC 3339.
    pub(crate) end: String,
    /// When it starts, RFC 3339.
    pub(crate) start: String,
}

impl PeriodJson {
    /// The period's two ends.
    pub(crate) fn of(p: vigil_device::Period) -> Self {
        PeriodJson {
            end: crate::common::time::format_time(p.end_ms),
            start: crate::common::time::format_time(p.start_ms),
        }
    }
}
