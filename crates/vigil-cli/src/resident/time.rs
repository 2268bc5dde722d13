//! Times and durations on the command line: RFC 3339 in, RFC 3339 (UTC) out.

use vigil_log::Day;

const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// A time given on the command line: `now`, or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeArg {
    /// The program's clock (or the `--now` override).
    Now,
    /// An instant, ms since the Unix epoch (UTC).
    At(i64),
}

impl TimeArg {
    /// The instant, given what "now" is.
    pub(crate) fn resolve(self, now_ms: i64) -> i64 {
        match self {
            TimeArg::Now => now_ms,
            TimeArg::At(t) => t,
        }
    }
}

/// Parses `now` or an RFC 3339 time (clap value parser).
pub(crate) fn parse_time_arg(s: &str) -> Result<TimeArg, String> {
    if s.trim().eq_ignore_ascii_case("now") {
        return Ok(TimeArg::Now);
    }
    parse_rfc3339(s).map(TimeArg::At)
}

/// Parses an RFC 3339 date-time (`2026-11-27T08:10:00Z`, fractional seconds
/// and `±HH:MM` offsets allowed) into ms since the Unix epoch.
pub(crate) fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = || format!("invalid time {s:?}: expected RFC 3339, e.g. 2026-11-27T08:10:00Z");
    if s.len() < 20 || !s.is_ascii() {
        return Err(bad());
    }
    let (date, rest) = s.split_at(10);
    let day: Day = date.parse().map_err(|_| bad())?;
    let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;
    let num = |t: &str| -> Result<i64, String> {
        if t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit()) {
            t.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (h, m, sec) = (num(&rest[0..2])?, &rest[2..3], &rest[5..6]);
    if m != ":" || sec != ":" {
        return Err(bad());
    }
    let (min, secs) = (num(&rest[3..5])?, num(&rest[6..8])?);
    if h > 23 || min > 59 || secs > 60 {
        return Err(bad());
    }
    let mut tail = &rest[8..];
    let mut frac_ms = 0;
    if let Some(f) = tail.strip_prefix('.') {
        let digits = f.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let first3: String = f[..digits.min(3)].chars().collect();
        frac_ms = format!("{first3:0<3}").parse::<i64>().map_err(|_| bad())?;
        tail = &f[digits..];
    }
    let offset = match tail {
        "Z" | "z" => 0,
        t if t.len() == 6 && (t.starts_with('+') || t.starts_with('-')) && &t[3..4] == ":" => {
            let (oh, om) = (num(&t[1..3])?, num(&t[4..6])?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let o = oh * HOUR + om * MINUTE;
            if t.starts_with('-') { -o } else { o }
        }
        _ => return Err(bad()),
    };
    // A leap second is read as the last second of the minute.
    let secs = secs.min(59);
    let ms = day.start_ms() + h * HOUR + min * MINUTE + secs * SECOND + frac_ms - offset;
    if ms < 0 {
        return Err(format!("invalid time {s:?}: before 1970-01-01"));
    }
    Ok(ms)
}

/// Formats ms since the epoch as RFC 3339 in UTC, with milliseconds only
/// when they are not zero.
pub(crate) fn format_time(ms: i64) -> String {
    let day = Day::of(ms);
    let rem = ms - day.start_ms();
    let (h, m, s, f) = (
        rem / HOUR,
        rem % HOUR / MINUTE,
        rem % MINUTE / SECOND,
        rem % SECOND,
    );
    if f == 0 {
        format!("{day}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{day}T{h:02}:{m:02}:{s:02}.{f:03}Z")
    }
}

/// Parses a duration such as `90s`, `10m`, `1h30m`, `2d`, `500ms`; a bare
/// number is seconds (clap value parser; returns ms).
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let bad = || format!("invalid duration {s:?}: expected e.g. 30s, 10m, 1h30m, 2d");
    if t.is_empty() {
        return Err(bad());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<i64>()
            .ok()
            .and_then(|v| v.checked_mul(SECOND))
            .ok_or_else(bad);
    }
    let mut total: i64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" | "sec" => SECOND,
            "m" | "min" => MINUTE,
            "h" => HOUR,
            "d" => DAY,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// A duration for people, its zero parts left out: `4d 3h 12m`, `1h`,
/// `12m 5s`, `0s` (seconds only below an hour).
pub(crate) fn format_duration(ms: i64) -> String {
    let ms = ms.max(0);
    let parts = [
        (ms / DAY, "d"),
        (ms % DAY / HOUR, "h"),
        (ms % HOUR / MINUTE, "m"),
        (if ms < HOUR { ms % MINUTE / SECOND } else { 0 }, "s"),
    ];
    let s: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if s.is_empty() {
        "0s".into()
    } else {
        s.join(" ")
    }
}

/// The real clock, ms since the Unix epoch.
pub(crate) fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        let t = parse_rfc3339("2026-11-27T08:10:00Z").unwrap();
        assert_eq!(format_time(t), "2026-11-27T08:10:00Z");
        assert_eq!(
            parse_rfc3339("2026-11-27T10:10:00+02:00").unwrap(),
            t,
            "offsets are applied"
        );
        assert_eq!(parse_rfc3339("2026-11-27t08:10:00.5z").unwrap(), t + 500);
        assert_eq!(format_time(t + 5), "2026-11-27T08:10:00.005Z");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
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
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_time_arg("now"), Ok(TimeArg::Now));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("1h30m"), Ok(90 * MINUTE));
        assert_eq!(parse_duration("2d"), Ok(2 * DAY));
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("-5s").is_err());
        assert_eq!(
            format_duration(4 * DAY + 3 * HOUR + 12 * MINUTE),
            "4d 3h 12m"
        );
        assert_eq!(format_duration(12 * MINUTE + 5 * SECOND), "12m 5s");
        assert_eq!(format_duration(HOUR + 5 * SECOND), "1h");
        assert_eq!(format_duration(2 * DAY + 5 * MINUTE), "2d 5m");
        assert_eq!(format_duration(10 * MINUTE), "10m");
        assert_eq!(format_duration(-3), "0s");
    }
}
