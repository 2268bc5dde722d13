//! Times and durations, through jiff: RFC 3339 in (any offset); out in
//! UTC ([`format_time`], for JSON and `vigil-node`) or in a display
//! [`Zone`] ([`format_time_in`], for what the resident reads); durations
//! such as `90s`, `10m`, `1h30m`, `2d` in, `4d 3h 12m` out. Times are ms
//! since the Unix epoch, as everywhere in Vigil.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::civil::Date;
use jiff::fmt::friendly::{Designator, Spacing, SpanParser, SpanPrinter};
use jiff::fmt::temporal::DateTimePrinter;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, SpanRelativeTo, SpanRound, Timestamp, Unit};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// The real clock, ms since the Unix epoch (the epoch if the clock is before it).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Milliseconds of a duration, saturating.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Parses an RFC 3339 date-time (`2026-11-27T08:10:00Z`, fractional
/// seconds and `±HH:MM` offsets allowed) into ms since the Unix epoch;
/// `None` if it is not one or is before 1970.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let t: Timestamp = s.trim().parse().ok()?;
    Some(t.as_millisecond()).filter(|ms| *ms >= 0)
}

/// An instant for the CLI's output; `None` only for times jiff cannot
/// represent (beyond ±9999 years), which no clock or vault produces.
fn timestamp(ms: i64) -> Option<Timestamp> {
    Timestamp::from_millisecond(ms).ok()
}

/// RFC 3339 in UTC, with milliseconds only when they are not zero:
/// `2026-11-27T08:10:00Z`, `2026-11-27T08:10:00.005Z`.
pub(crate) fn format_time(ms: i64) -> String {
    let Some(t) = timestamp(ms) else {
        return ms.to_string();
    };
    let precision = (ms.rem_euclid(1000) != 0).then_some(3);
    DateTimePrinter::new()
        .precision(precision)
        .timestamp_to_string(&t)
}

/// The time zone times are shown in: the system's, or UTC. Resolved once
/// by the program (never inside library code) and passed to the
/// formatting functions.
#[derive(Debug, Clone)]
pub(crate) struct Zone(TimeZone);

impl Zone {
    /// UTC (`--utc`).
    pub(crate) fn utc() -> Zone {
        Zone(TimeZone::UTC)
    }

    /// The system's zone: `TZ` if set, else `/etc/localtime` (or the
    /// platform's setting). If it cannot be determined (an unknown `TZ`, no
    /// zoneinfo database), UTC and a note saying why, for stderr.
    pub(crate) fn system() -> (Zone, Option<String>) {
        match TimeZone::try_system() {
            Ok(tz) => (Zone(tz), None),
            Err(e) => {
                let why = match std::env::var_os("TZ") {
                    Some(tz) => format!("TZ={:?} is not a time zone", tz.to_string_lossy()),
                    None => format!("the system's time zone is unknown ({e})"),
                };
                (
                    Zone::utc(),
                    Some(format!("note: {why}; times are shown in UTC")),
                )
            }
        }
    }

    /// The calendar date at `ms` in this zone.
    pub(crate) fn date(&self, ms: i64) -> Option<Date> {
        timestamp(ms).map(|t| t.to_zoned(self.0.clone()).date())
    }

    /// The instants `[start, end)` of `date` in this zone, ms: midnight to
    /// the next midnight (23 or 25 hours across a daylight-saving change).
    pub(crate) fn day_range(&self, date: Date) -> Option<(i64, i64)> {
        let start = date.to_zoned(self.0.clone()).ok()?.start_of_day().ok()?;
        let next = date.tomorrow().ok()?.to_zoned(self.0.clone()).ok()?;
        let end = next.start_of_day().ok()?;
        Some((
            start.timestamp().as_millisecond(),
            end.timestamp().as_millisecond(),
        ))
    }
}

/// RFC 3339 in `zone`, with milliseconds only when they are not zero:
/// `2026-11-27T22:30:00+08:00`; `Z` where the offset is zero (UTC), as
/// [`format_time`] writes it.
pub(crate) fn format_time_in(ms: i64, zone: &Zone) -> String {
    let Some(t) = timestamp(ms) else {
        return ms.to_string();
    };
    let offset = zone.0.to_offset(t);
    if offset.seconds() == 0 {
        return format_time(ms);
    }
    let precision = (ms.rem_euclid(1000) != 0).then_some(3);
    DateTimePrinter::new()
        .precision(precision)
        .timestamp_with_offset_to_string(&t, offset)
}

/// RFC 3339 in UTC, whole seconds: `2025-06-01T14:20:00Z`.
pub(crate) fn format_secs(ms: i64) -> String {
    timestamp(ms).map_or_else(
        || ms.to_string(),
        |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// `2025-06-01 14:20` (UTC, minutes), for tables.
pub(crate) fn short_utc(ms: i64) -> String {
    timestamp(ms).map_or_else(
        || ms.to_string(),
        |t| t.strftime("%Y-%m-%d %H:%M").to_string(),
    )
}

/// Parses a duration: `500ms`, `90s`, `10m`, `1h30m`, `2d` (a day is
/// 24 hours), or a bare number of seconds. `None` if it is not one.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let t = s.trim();
    // jiff's friendly format also reads signs, fractions, spaces, `ago`
    // and weeks to years; the documented syntax is narrower, and stays so
    // that a config file or script means one thing.
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().ok().map(Duration::from_secs);
    }
    let span: Span = SpanParser::new().parse_span(t).ok()?;
    if span.get_years() != 0 || span.get_months() != 0 || span.get_weeks() != 0 {
        return None;
    }
    let d = span.to_duration(SpanRelativeTo::days_are_24_hours()).ok()?;
    Duration::try_from(d).ok()
}

/// A span of whole units up to days, for printing.
fn span(ms: i64) -> Span {
    Span::try_from(SignedDuration::from_millis(ms))
        .and_then(|s| s.round(SpanRound::new().largest(Unit::Day).days_are_24_hours()))
        .unwrap_or_default()
}

/// A duration for people, its zero parts left out: `4d 3h 12m`, `1h`,
/// `12m 5s`, `0s` (seconds only below an hour, no milliseconds).
pub(crate) fn format_duration(ms: i64) -> String {
    let ms = ms.max(0);
    let unit = if ms < HOUR_MS { 1000 } else { MINUTE_MS };
    SpanPrinter::new()
        .designator(Designator::Compact)
        .spacing(Spacing::BetweenUnits)
        .span_to_string(&span(ms - ms % unit))
}

/// A duration the way [`parse_duration`] reads it back: `1m`, `1h30m`, `0s`.
pub(crate) fn show_duration(d: Duration) -> String {
    SpanPrinter::new()
        .designator(Designator::Compact)
        .spacing(Spacing::None)
        .span_to_string(&span(ms(d)))
}

/// `5m ago`, `3h ago`, `2d ago`, `in 4d`: the largest unit only, for tables.
pub(crate) fn relative(t_ms: i64, now_ms: i64) -> String {
    let d = now_ms.saturating_sub(t_ms);
    let a = d.unsigned_abs() / 1000;
    let amount = match a {
        0..=59 => format!("{a}s"),
        60..=3599 => format!("{}m", a / 60),
        3600..=86_399 => format!("{}h", a / 3600),
        _ => format!("{}d", a / 86_400),
    };
    if d >= 0 {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1000;
    const DAY: i64 = 24 * HOUR_MS;

    #[test]
    fn rfc3339_round_trips() {
        let t = parse_rfc3339("2026-11-27T08:10:00Z").unwrap();
        assert_eq!(format_time(t), "2026-11-27T08:10:00Z");
        assert_eq!(
            parse_rfc3339("2026-11-27T10:10:00+02:00"),
            Some(t),
            "offsets are applied"
        );
        assert_eq!(parse_rfc3339("2026-11-27t08:10:00.5z"), Some(t + 500));
        assert_eq!(parse_rfc3339("2026-11-27T08:10:60Z"), Some(t + 59_000));
        assert_eq!(format_time(t + 5), "2026-11-27T08:10:00.005Z");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        for bad in [
            "",
            "yesterday",
            "2026-11-27",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-27T24:00:00Z",
            "2026-11-27T08:10:00",
            "2026-11-27T08:10:00+2",
            "2026-11-27T08:1a:00Z",
            "1969-12-31T23:59:59Z",
            "2026-11-27T08:10:00.Z",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
    }

    fn zone(name: &str) -> Zone {
        Zone(TimeZone::get(name).expect("the system's zoneinfo has it"))
    }

    #[test]
    fn local_times_and_days() {
        let t = parse_rfc3339("2026-11-27T14:30:00Z").unwrap();
        let bj = zone("Asia/Shanghai");
        assert_eq!(format_time_in(t, &bj), "2026-11-27T22:30:00+08:00");
        assert_eq!(format_time_in(t + 5, &bj), "2026-11-27T22:30:00.005+08:00");
        assert_eq!(format_time_in(t, &Zone::utc()), "2026-11-27T14:30:00Z");
        assert_eq!(
            format_time_in(t, &zone("America/St_Johns")),
            "2026-11-27T11:00:00-03:30"
        );
        let date = bj.date(t + 3 * HOUR_MS).unwrap();
        assert_eq!(date.to_string(), "2026-11-28");
        let (start, end) = bj.day_range(date).unwrap();
        assert_eq!(format_time(start), "2026-11-27T16:00:00Z");
        assert_eq!(end - start, 24 * HOUR_MS);
        // A day with a daylight-saving change is 23 hours long.
        let ny = zone("America/New_York");
        let (start, end) = ny.day_range("2026-03-08".parse().unwrap()).unwrap();
        assert_eq!(format_time(start), "2026-03-08T05:00:00Z");
        assert_eq!(end - start, 23 * HOUR_MS);
    }

    #[test]
    fn utc_times() {
        assert_eq!(format_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_secs(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(
            format_secs(1_790_035_200_000 + 61_000 + 5),
            "2026-09-22T00:01:01Z"
        );
        assert_eq!(short_utc(-1), "1969-12-31 23:59");
    }

    #[test]
    fn durations() {
        let p = |s| parse_duration(s).map(ms);
        assert_eq!(p("90s"), Some(90_000));
        assert_eq!(p("60"), Some(60_000));
        assert_eq!(p("0"), Some(0));
        assert_eq!(p("1h30m"), Some(90 * MINUTE_MS));
        assert_eq!(p("15min"), Some(15 * MINUTE_MS));
        assert_eq!(p("2d"), Some(2 * DAY));
        assert_eq!(p("250ms"), Some(250));
        for bad in [
            "",
            "s",
            "m",
            "-1s",
            "-5s",
            "1.5h",
            "3 weeks",
            "3w",
            "1y",
            "10 parsecs",
            "10parsecs",
            "PT1H",
            "99999999999999999999d",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
        assert_eq!(
            format_duration(4 * DAY + 3 * HOUR_MS + 12 * MINUTE_MS),
            "4d 3h 12m"
        );
        assert_eq!(format_duration(12 * MINUTE_MS + 5 * SECOND), "12m 5s");
        assert_eq!(format_duration(HOUR_MS + 5 * SECOND), "1h");
        assert_eq!(format_duration(2 * DAY + 5 * MINUTE_MS), "2d 5m");
        assert_eq!(format_duration(10 * MINUTE_MS), "10m");
        assert_eq!(format_duration(-3), "0s");
        assert_eq!(show_duration(Duration::from_secs(60)), "1m");
        assert_eq!(show_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(show_duration(Duration::ZERO), "0s");
        for d in ["1m", "1h30m", "2d", "1s500ms"] {
            assert_eq!(show_duration(parse_duration(d).unwrap()), d);
        }
    }
}
