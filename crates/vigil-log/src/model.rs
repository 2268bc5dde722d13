//! The log's value types: metrics with fixed units and ranges, readings and
//! their binary encoding, days, symptoms (docs/spec.md §6).

use core::fmt;
use core::str::FromStr;

/// Why a value was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum LogError {
    /// The value is NaN or infinite.
    #[error("{metric} reading is not a finite number ({value})")]
    NotFinite {
        /// The metric.
        metric: Metric,
        /// The value given.
        value: f64,
    },
    /// The value is outside the metric's valid range.
    #[error("{metric} reading {value} {unit} is outside the valid range {min}–{max} {unit}")]
    OutOfRange {
        /// The metric.
        metric: Metric,
        /// The value given.
        value: f64,
        /// The metric's unit.
        unit: Unit,
        /// Lowest valid value.
        min: f64,
        /// Highest valid value.
        max: f64,
    },
    /// The value was given in another unit than the metric's fixed one.
    #[error("{metric} is recorded in {expected}, not {got}")]
    WrongUnit {
        /// The metric.
        metric: Metric,
        /// Its unit.
        expected: Unit,
        /// The unit given.
        got: Unit,
    },
    /// A step count that is not a whole number.
    #[error("steps must be a whole number, got {0}")]
    FractionalCount(f64),
    /// A metric name that is not one of the closed set.
    #[error(
        "unknown metric {0:?} (known: body_temperature, heart_rate, spo2, respiratory_rate, steps)"
    )]
    UnknownMetric(String),
    /// A unit name that is not known.
    #[error("unknown unit {0:?}")]
    UnknownUnit(String),
    /// A symptom name that is not one of the closed set.
    #[error("unknown symptom {0:?}")]
    UnknownSymptom(String),
    /// A severity name that is not known.
    #[error("unknown severity {0:?} (known: none, mild, moderate, severe)")]
    UnknownSeverity(String),
    /// A time before the Unix epoch.
    #[error("time {0} ms is before 1970-01-01")]
    NegativeTime(i64),
    /// A day that could not be parsed as YYYY-MM-DD.
    #[error("invalid day {0:?} (expected YYYY-MM-DD)")]
    InvalidDay(String),
    /// A reading id that is not in the log.
    #[error("no reading {0} in this log")]
    UnknownReading(ReadingId),
    /// Un-retracting a reading that is not retracted.
    #[error("reading {0} is not retracted")]
    NotRetracted(ReadingId),
    /// A reading id that could not be parsed.
    #[error("invalid reading id {0:?}")]
    InvalidReadingId(String),
    /// Free text longer than the limit.
    #[error("text of {len} characters exceeds the limit of {max}")]
    TextTooLong {
        /// Characters given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The Automerge document could not be loaded or lacks the log's schema.
    #[error("the log document is malformed: {0}")]
    Malformed(String),
    /// This replica has not received the log yet (a joining device before its first sync).
    #[error("this device has not received the log yet: sync first")]
    NotInitialised,
    /// The document was written by a newer schema version.
    #[error("the log uses schema version {found}; this build reads up to {supported}")]
    NewerSchema {
        /// Version found.
        found: u64,
        /// Highest version this build reads.
        supported: u64,
    },
}

/// Longest annotation, retraction reason or check-in note, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

/// Units. Each metric has exactly one; nothing is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Degrees Celsius.
    Celsius,
    /// Degrees Fahrenheit (never accepted: shown in errors only).
    Fahrenheit,
    /// Beats per minute.
    BeatsPerMinute,
    /// Percent.
    Percent,
    /// Breaths per minute.
    BreathsPerMinute,
    /// A count.
    Count,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Celsius => "°C",
            Unit::Fahrenheit => "°F",
            Unit::BeatsPerMinute => "bpm",
            Unit::Percent => "%",
            Unit::BreathsPerMinute => "/min",
            Unit::Count => "count",
        })
    }
}

impl FromStr for Unit {
    type Err = LogError;
    fn from_str(s: &str) -> Result<Self, LogError> {
        Ok(match s {
            "C" | "°C" | "Cel" | "celsius" => Unit::Celsius,
            "F" | "°F" | "fahrenheit" => Unit::Fahrenheit,
            "bpm" | "/min (beats)" => Unit::BeatsPerMinute,
            "%" | "percent" => Unit::Percent,
            "/min" | "breaths/min" => Unit::BreathsPerMinute,
            "count" | "steps" => Unit::Count,
            other => return Err(LogError::UnknownUnit(other.to_owned())),
        })
    }
}

/// The closed set of things a reading can measure. There is no location or
/// audio metric, by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Metric {
    /// Body temperature, °C, 30.0–45.0.
    BodyTemperature = 1,
    /// Heart rate, bpm, 20–250.
    HeartRate = 2,
    /// Oxygen saturation, %, 50–100.
    SpO2 = 3,
    /// Respiratory rate, breaths/min, 4–60.
    RespiratoryRate = 4,
    /// Steps counted over an interval, 0–100,000.
    Steps = 5,
}

impl Metric {
    /// Every metric, in code order.
    pub const ALL: [Metric; 5] = [
        Metric::BodyTemperature,
        Metric::HeartRate,
        Metric::SpO2,
        Metric::RespiratoryRate,
        Metric::Steps,
    ];

    /// The metric's fixed unit.
    pub fn unit(self) -> Unit {
        match self {
            Metric::BodyTemperature => Unit::Celsius,
            Metric::HeartRate => Unit::BeatsPerMinute,
            Metric::SpO2 => Unit::Percent,
            Metric::RespiratoryRate => Unit::BreathsPerMinute,
            Metric::Steps => Unit::Count,
        }
    }

    /// The valid range, inclusive.
    pub fn range(self) -> (f64, f64) {
        match self {
            Metric::BodyTemperature => (30.0, 45.0),
            Metric::HeartRate => (20.0, 250.0),
            Metric::SpO2 => (50.0, 100.0),
            Metric::RespiratoryRate => (4.0, 60.0),
            Metric::Steps => (0.0, 100_000.0),
        }
    }

    /// The metric's name as written in the CLI and the spec.
    pub fn name(self) -> &'static str {
        match self {
            Metric::BodyTemperature => "body_temperature",
            Metric::HeartRate => "heart_rate",
            Metric::SpO2 => "spo2",
            Metric::RespiratoryRate => "respiratory_rate",
            Metric::Steps => "steps",
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| *m as u8 == code)
    }

    /// Checks a value given in `unit` for this metric.
    pub fn validate(self, value: f64, unit: Unit) -> Result<f64, LogError> {
        if unit != self.unit() {
            return Err(LogError::WrongUnit {
                metric: self,
                expected: self.unit(),
                got: unit,
            });
        }
        if !value.is_finite() {
            return Err(LogError::NotFinite {
                metric: self,
                value,
            });
        }
        let (min, max) = self.range();
        if !(min..=max).contains(&value) {
            return Err(LogError::OutOfRange {
                metric: self,
                value,
                unit,
                min,
                max,
            });
        }
        if self == Metric::Steps && value.fract() != 0.0 {
            return Err(LogError::FractionalCount(value));
        }
        // Normalise -0.0 so equal readings encode identically.
        Ok(value + 0.0)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = LogError;
    fn from_str(s: &str) -> Result<Self, LogError> {
        let norm = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Ok(match norm.as_str() {
            "body_temperature" | "temperature" | "temp" => Metric::BodyTemperature,
            "heart_rate" | "hr" | "pulse" => Metric::HeartRate,
            "spo2" | "oxygen_saturation" => Metric::SpO2,
            "respiratory_rate" | "rr" => Metric::RespiratoryRate,
            "steps" => Metric::Steps,
            _ => return Err(LogError::UnknownMetric(s.to_owned())),
        })
    }
}

/// A resident device's id (16 random bytes). It is also the device's
/// Automerge actor id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub [u8; 16]);

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A reading's id: its author device and that device's sequence number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReadingId {
    /// The device that measured it.
    pub device: DeviceId,
    /// The device's counter, starting at 1.
    pub seq: u64,
}

impl fmt::Debug for ReadingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadingId({self})")
    }
}

impl fmt::Display for ReadingId {
    /// `<device hex>-<seq>`, the key used in the log's maps.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.device, self.seq)
    }
}

impl FromStr for ReadingId {
    type Err = LogError;
    fn from_str(s: &str) -> Result<Self, LogError> {
        let bad = || LogError::InvalidReadingId(s.to_owned());
        let (dev, seq) = s.split_once('-').ok_or_else(bad)?;
        let mut device = [0u8; 16];
        hex::decode_to_slice(dev, &mut device).map_err(|_| bad())?;
        let seq = seq.parse().map_err(|_| bad())?;
        Ok(ReadingId {
            device: DeviceId(device),
            seq,
        })
    }
}

/// One measurement: an immutable fact authored by one device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// Its id (author device + sequence).
    pub id: ReadingId,
    /// When it was measured, ms since the Unix epoch, UTC.
    pub time_ms: i64,
    /// What was measured.
    pub metric: Metric,
    /// The value, in the metric's unit.
    pub value: f64,
}

/// Length of an encoded reading.
pub const READING_LEN: usize = 42;
const READING_VERSION: u8 = 1;

impl Reading {
    /// The device that measured it.
    pub fn source(&self) -> DeviceId {
        self.id.device
    }

    /// Encodes as `01 | device (16) | seq (be64) | time (be64) | metric (1) | value (f64 be)`.
    pub fn encode(&self) -> [u8; READING_LEN] {
        let mut out = [0u8; READING_LEN];
        out[0] = READING_VERSION;
        out[1..17].copy_from_slice(&self.id.device.0);
        out[17..25].copy_from_slice(&self.id.seq.to_be_bytes());
        out[25..33].copy_from_slice(&self.time_ms.to_be_bytes());
        out[33] = self.metric as u8;
        out[34..42].copy_from_slice(&self.value.to_be_bytes());
        out
    }

    /// Decodes and re-validates an encoded reading; `None` if it is not a
    /// valid version-1 reading (e.g. written by a newer version).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != READING_LEN || bytes[0] != READING_VERSION {
            return None;
        }
        let be8 = |r: core::ops::Range<usize>| -> [u8; 8] { bytes[r].try_into().unwrap_or([0; 8]) };
        let metric = Metric::from_code(bytes[33])?;
        let value = f64::from_be_bytes(be8(34..42));
        let time_ms = i64::from_be_bytes(be8(25..33));
        metric.validate(value, metric.unit()).ok()?;
        if time_ms < 0 {
            return None;
        }
        let mut device = [0u8; 16];
        device.copy_from_slice(&bytes[1..17]);
        Some(Reading {
            id: ReadingId {
                device: DeviceId(device),
                seq: u64::from_be_bytes(be8(17..25)),
            },
            time_ms,
            metric,
            value,
        })
    }
}

/// A UTC calendar day, as days since 1970-01-01.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Day(pub i64);

const DAY_MS: i64 = 86_400_000;

impl Day {
    /// The UTC day containing `time_ms`.
    pub fn of(time_ms: i64) -> Day {
        Day(time_ms.div_euclid(DAY_MS))
    }

    /// Midnight UTC at the start of the day, in ms since the epoch.
    pub fn start_ms(self) -> i64 {
        self.0 * DAY_MS
    }

    /// (year, month, day) in the proleptic Gregorian calendar.
    pub fn ymd(self) -> (i64, u32, u32) {
        // Days-to-civil conversion over 400-year eras.
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y, m, d)
    }

    /// The day for a calendar date, if the date exists.
    pub fn from_ymd(y: i64, m: u32, d: u32) -> Option<Day> {
        if !(1..=12).contains(&m) || d == 0 || d > 31 {
            return None;
        }
        let y2 = if m <= 2 { y - 1 } else { y };
        let era = y2.div_euclid(400);
        let yoe = y2.rem_euclid(400);
        let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
        let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let day = Day(era * 146_097 + doe - 719_468);
        (day.ymd() == (y, m, d)).then_some(day)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Debug for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Day({self})")
    }
}

impl FromStr for Day {
    type Err = LogError;
    fn from_str(s: &str) -> Result<Self, LogError> {
        let bad = || LogError::InvalidDay(s.to_owned());
        let mut parts = s.splitn(3, '-');
        let (y, m, d) = (
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
        );
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(bad());
        }
        let y = y.parse().map_err(|_| bad())?;
        let m = m.parse().map_err(|_| bad())?;
        let d = d.parse().map_err(|_| bad())?;
        Day::from_ymd(y, m, d).ok_or_else(bad)
    }
}

/// The closed set of symptoms a daily check-in asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Symptom {
    /// Cough.
    Cough,
    /// Sore throat.
    SoreThroat,
    /// Fatigue.
    Fatigue,
    /// Headache.
    Headache,
    /// Shortness of breath.
    ShortnessOfBreath,
    /// Loss of taste or smell.
    LossOfTasteOrSmell,
    /// Muscle ache.
    MuscleAche,
    /// Chills or feeling feverish.
    Chills,
    /// Fever, as the resident feels it (the thermometer's readings are
    /// separate and alone drive alerts).
    Fever,
    /// Any other symptom (the resident's notes say which).
    Other,
}

impl Symptom {
    /// Every symptom.
    pub const ALL: [Symptom; 10] = [
        Symptom::Cough,
        Symptom::SoreThroat,
        Symptom::Fatigue,
        Symptom::Headache,
        Symptom::ShortnessOfBreath,
        Symptom::LossOfTasteOrSmell,
        Symptom::MuscleAche,
        Symptom::Chills,
        Symptom::Fever,
        Symptom::Other,
    ];

    /// The symptom's name in the log and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Symptom::Cough => "cough",
            Symptom::SoreThroat => "sore_throat",
            Symptom::Fatigue => "fatigue",
            Symptom::Headache => "headache",
            Symptom::ShortnessOfBreath => "shortness_of_breath",
            Symptom::LossOfTasteOrSmell => "loss_of_taste_or_smell",
            Symptom::MuscleAche => "muscle_ache",
            Symptom::Chills => "chills",
            // New names only add keys to the log: a reader that does not
            // know them skips them, and every earlier key reads as before.
            Symptom::Fever => "fever",
            Symptom::Other => "other",
        }
    }
}

impl fmt::Display for Symptom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Symptom {
    type Err = LogError;
    fn from_str(s: &str) -> Result<Self, LogError> {
        let norm = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Symptom::ALL
            .into_iter()
            .find(|x| x.name() == norm)
            .ok_or_else(|| LogError::UnknownSymptom(s.to_owned()))
    }
}

/// How strongly a symptom is felt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Not present.
    None,
    /// Mild.
    Mild,
    /// Moderate.
    Moderate,
    /// Severe.
    Severe,
}

impl Severity {
    /// The severity's name in the log and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Mild => "mild",
            Severity::Moderate => "moderate",
            Severity::Severe => "severe",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Severity {
    type Err = LogError;
    fn from_str(s: &str) -> Result<Self, LogError> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "none" | "no" => Severity::None,
            "mild" => Severity::Mild,
            "moderate" => Severity::Moderate,
            "severe" => Severity::Severe,
            _ => return Err(LogError::UnknownSeverity(s.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        for d in [-800_000i64, -1, 0, 1, 19_000, 20_000, 2_000_000] {
            let day = Day(d);
            let (y, m, dd) = day.ymd();
            assert_eq!(Day::from_ymd(y, m, dd), Some(day));
            assert_eq!(
                day.to_string()
                    .parse::<Day>()
                    .ok()
                    .filter(|_| (0..10_000).contains(&y)),
                ((0..10_000).contains(&y)).then_some(day)
            );
        }
        assert_eq!(Day(0).to_string(), "1970-01-01");
        assert_eq!(
            "2026-11-27".parse::<Day>().map(|d| d.to_string()),
            Ok("2026-11-27".into())
        );
        assert!("2026-02-30".parse::<Day>().is_err());
    }

    #[test]
    fn reading_codec_round_trip_and_rejects_garbage() {
        let r = Reading {
            id: ReadingId {
                device: DeviceId([3; 16]),
                seq: 9,
            },
            time_ms: 1_700_000_000_000,
            metric: Metric::SpO2,
            value: 97.0,
        };
        assert_eq!(Reading::decode(&r.encode()), Some(r));
        let mut bad = r.encode();
        bad[33] = 99;
        assert_eq!(Reading::decode(&bad), None);
        let mut nan = r.encode();
        nan[34..42].copy_from_slice(&f64::NAN.to_be_bytes());
        assert_eq!(Reading::decode(&nan), None);
        assert_eq!(Reading::decode(&r.encode()[..41]), None);
        let id: ReadingId = r.id.to_string().parse().unwrap();
        assert_eq!(id, r.id);
    }

    #[test]
    fn ids_print_as_lowercase_hex_and_parse_back() {
        let mut dev = [0u8; 16];
        dev[0] = 0x0a;
        dev[15] = 0xff;
        let id = ReadingId {
            device: DeviceId(dev),
            seq: 7,
        };
        let text = "0a0000000000000000000000000000ff-7";
        assert_eq!(id.to_string(), text);
        assert_eq!(
            format!("{:?}", id.device),
            "DeviceId(0a0000000000000000000000000000ff)"
        );
        assert_eq!(text.parse::<ReadingId>().unwrap(), id);
        assert_eq!(text.to_uppercase().parse::<ReadingId>().unwrap(), id);
        for bad in [
            "0a-7",
            "0a0000000000000000000000000000f-7",
            "zz000000000000000000000000000000-7",
        ] {
            assert!(bad.parse::<ReadingId>().is_err(), "{bad}");
        }
    }
}
