//! Decoding the values a wristband sends over Bluetooth GATT (docs/spec.md
//! §6.1): Temperature Measurement (0x2A1C), Heart Rate Measurement (0x2A37)
//! and PLX Continuous Measurement (0x2A5F), with the IEEE-11073 FLOAT and
//! SFLOAT number formats they use.
//!
//! Pure and sans-I/O: bytes in, a [`Measurement`] or a [`GattError`] out.
//! Every packet is read whole: a truncated field, a byte left over, an
//! IEEE-11073 special value (NaN, NRes, ±INF, reserved) or an invalid date
//! is an error, so nothing half-understood ever reaches the log.
//!
//! ```
//! use vigil_log::gatt::{self, Measurement, TemperatureType};
//! let bytes = [0x06, 0xB0, 0x0E, 0x00, 0xFE, 0xDC, 0x07, 0x0C, 0x05, 0x0B, 0x32, 0x1B, 0x04];
//! let Measurement::Temperature(t) = gatt::decode(0x2A1C, &bytes)? else { unreachable!() };
//! assert_eq!(t.celsius, 37.6);
//! assert_eq!(t.kind, Some(TemperatureType::Finger));
//! assert!(gatt::decode(0x2A1C, &bytes[..12]).is_err()); // the type the flags promise is missing
//! # Ok::<(), gatt::GattError>(())
//! ```

use core::fmt;

use crate::model::Metric;

/// Temperature Measurement, the Health Thermometer Service's characteristic.
pub const TEMPERATURE_MEASUREMENT: u16 = 0x2A1C;
/// Heart Rate Measurement, the Heart Rate Service's characteristic.
pub const HEART_RATE_MEASUREMENT: u16 = 0x2A37;
/// PLX Continuous Measurement, the Pulse Oximeter Service's characteristic.
pub const PLX_CONTINUOUS_MEASUREMENT: u16 = 0x2A5F;

/// An IEEE-11073 special value: not a measurement, so never recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Special {
    /// Not a Number (FLOAT mantissa 0x7FFFFF, SFLOAT 0x7FF).
    NaN,
    /// Not at this Resolution (FLOAT 0x800000, SFLOAT 0x800).
    NRes,
    /// +INFINITY (FLOAT 0x7FFFFE, SFLOAT 0x7FE).
    PositiveInfinity,
    /// -INFINITY (FLOAT 0x800002, SFLOAT 0x802).
    NegativeInfinity,
    /// Reserved for future use (FLOAT 0x800001, SFLOAT 0x801).
    Reserved,
}

impl Special {
    /// A short, stable name (used in error codes and test vectors).
    pub fn code(self) -> &'static str {
        match self {
            Special::NaN => "nan",
            Special::NRes => "nres",
            Special::PositiveInfinity => "+inf",
            Special::NegativeInfinity => "-inf",
            Special::Reserved => "reserved-value",
        }
    }
}

impl fmt::Display for Special {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Special::NaN => "NaN (not a number)",
            Special::NRes => "NRes (not at this resolution)",
            Special::PositiveInfinity => "+INFINITY",
            Special::NegativeInfinity => "-INFINITY",
            Special::Reserved => "a reserved value",
        })
    }
}

/// Why a characteristic value was refused. Nothing is recorded for it.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GattError {
    /// Not one of the characteristics Vigil decodes.
    #[error(
        "unknown characteristic 0x{0:04X} (known: 2A1C temperature, 2A37 heart rate, 2A5F pulse oximetry)"
    )]
    UnknownCharacteristic(u16),
    /// The packet ends inside a field (or before a field its flags promise).
    #[error("packet truncated: the {field} field is missing or incomplete")]
    Truncated {
        /// The field.
        field: &'static str,
    },
    /// Bytes left over after the last field the flags announce.
    #[error("{count} trailing byte(s) after the last field")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The value is an IEEE-11073 special value, not a measurement.
    #[error("the {field} is {special}, not a measurement")]
    SpecialValue {
        /// The field.
        field: &'static str,
        /// Which special value.
        special: Special,
    },
    /// The time stamp is not a valid date and time (or says "not known").
    #[error("invalid time stamp: {field} {value} is out of range")]
    InvalidDateTime {
        /// The field (year, month, day, hours, minutes, seconds).
        field: &'static str,
        /// The value sent.
        value: u16,
    },
    /// The sensor reports that it is not in contact with the skin.
    #[error("the heart-rate sensor reports no skin contact")]
    NoSensorContact,
}

impl GattError {
    /// A short, stable name for the error (for test vectors and bindings).
    pub fn code(&self) -> &'static str {
        match self {
            GattError::UnknownCharacteristic(_) => "unknown-characteristic",
            GattError::Truncated { .. } => "truncated",
            GattError::TrailingBytes { .. } => "trailing-bytes",
            GattError::SpecialValue { special, .. } => special.code(),
            GattError::InvalidDateTime { .. } => "invalid-date-time",
            GattError::NoSensorContact => "no-contact",
        }
    }
}

/// A Date Time characteristic value (0x2A08), checked to be a real date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    /// 1582–9999.
    pub year: u16,
    /// 1–12.
    pub month: u8,
    /// 1–31, and within the month.
    pub day: u8,
    /// 0–23.
    pub hours: u8,
    /// 0–59.
    pub minutes: u8,
    /// 0–59.
    pub seconds: u8,
}

impl DateTime {
    /// Milliseconds since the Unix epoch, reading the date time as UTC
    /// (Date Time carries no zone; see docs/spec.md §6.1).
    pub fn unix_ms(&self) -> i64 {
        let days = days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        let secs = days * 86_400
            + i64::from(self.hours) * 3600
            + i64::from(self.minutes) * 60
            + i64::from(self.seconds);
        secs * 1000
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hours, self.minutes, self.seconds
        )
    }
}

/// Where the temperature was taken (Temperature Type, 0x2A1D).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemperatureType {
    /// 1.
    Armpit,
    /// 2: body (general).
    Body,
    /// 3: ear (usually the lobe).
    Ear,
    /// 4.
    Finger,
    /// 5.
    GastrointestinalTract,
    /// 6.
    Mouth,
    /// 7.
    Rectum,
    /// 8.
    Toe,
    /// 9: tympanum (ear drum).
    Tympanum,
    /// 0 or 10–255, "reserved for future use": a newer sensor's site. The
    /// temperature itself is still valid, so it is kept (docs/spec.md §6.1).
    Unknown(u8),
}

impl TemperatureType {
    /// The type for a byte.
    pub fn from_byte(b: u8) -> TemperatureType {
        match b {
            1 => TemperatureType::Armpit,
            2 => TemperatureType::Body,
            3 => TemperatureType::Ear,
            4 => TemperatureType::Finger,
            5 => TemperatureType::GastrointestinalTract,
            6 => TemperatureType::Mouth,
            7 => TemperatureType::Rectum,
            8 => TemperatureType::Toe,
            9 => TemperatureType::Tympanum,
            other => TemperatureType::Unknown(other),
        }
    }

    /// A short name.
    pub fn name(self) -> String {
        match self {
            TemperatureType::Armpit => "armpit".into(),
            TemperatureType::Body => "body".into(),
            TemperatureType::Ear => "ear".into(),
            TemperatureType::Finger => "finger".into(),
            TemperatureType::GastrointestinalTract => "gi-tract".into(),
            TemperatureType::Mouth => "mouth".into(),
            TemperatureType::Rectum => "rectum".into(),
            TemperatureType::Toe => "toe".into(),
            TemperatureType::Tympanum => "tympanum".into(),
            TemperatureType::Unknown(b) => format!("unknown({b})"),
        }
    }
}

/// A decoded Temperature Measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Temperature {
    /// The temperature in °C (converted, and rounded to 0.01 °C, if sent in °F).
    pub celsius: f64,
    /// Whether the sensor sent it in °F.
    pub sent_in_fahrenheit: bool,
    /// The sensor's own time stamp, if it sent one.
    pub time: Option<DateTime>,
    /// Where it was taken, if the sensor said.
    pub kind: Option<TemperatureType>,
}

/// The Heart Rate Measurement's sensor contact status (flags bits 1–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SensorContact {
    /// The sensor does not report contact (0 or 1).
    NotSupported,
    /// Supported and detected (3). ("Not detected", 2, is an error.)
    Detected,
}

/// A decoded Heart Rate Measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartRate {
    /// Beats per minute.
    pub bpm: u16,
    /// Contact status.
    pub contact: SensorContact,
    /// Energy expended in kJ, if sent (not recorded).
    pub energy_expended_kj: Option<u16>,
    /// How many RR-intervals followed (not recorded).
    pub rr_intervals: usize,
}

/// A decoded PLX Continuous Measurement (its SpO2PR-Normal field).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PulseOximetry {
    /// Oxygen saturation, %.
    pub spo2_percent: f64,
    /// Pulse rate, bpm.
    pub pulse_rate_bpm: f64,
}

/// One decoded characteristic value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measurement {
    /// From 0x2A1C.
    Temperature(Temperature),
    /// From 0x2A37.
    HeartRate(HeartRate),
    /// From 0x2A5F.
    PulseOximetry(PulseOximetry),
}

impl Measurement {
    /// The log readings it maps to, in their metrics' units: one, or two
    /// for pulse oximetry (SpO2, then pulse rate as heart rate).
    pub fn values(&self) -> impl Iterator<Item = (Metric, f64)> + use<> {
        let pair = match *self {
            Measurement::Temperature(t) => [Some((Metric::BodyTemperature, t.celsius)), None],
            Measurement::HeartRate(h) => [Some((Metric::HeartRate, f64::from(h.bpm))), None],
            Measurement::PulseOximetry(p) => [
                Some((Metric::SpO2, p.spo2_percent)),
                Some((Metric::HeartRate, p.pulse_rate_bpm)),
            ],
        };
        pair.into_iter().flatten()
    }

    /// When it was measured: the packet's own time stamp (UTC) when it has
    /// one, else `received_at_ms`.
    pub fn time_ms(&self, received_at_ms: i64) -> i64 {
        match self {
            Measurement::Temperature(Temperature { time: Some(t), .. }) => t.unix_ms(),
            _ => received_at_ms,
        }
    }
}

/// Decodes one characteristic value. Reserved flag bits are ignored (the
/// specifications ask receivers to), but every byte must belong to a field
/// the flags announce.
pub fn decode(characteristic: u16, bytes: &[u8]) -> Result<Measurement, GattError> {
    let mut r = Reader(bytes);
    let m = match characteristic {
        TEMPERATURE_MEASUREMENT => Measurement::Temperature(temperature(&mut r)?),
        HEART_RATE_MEASUREMENT => Measurement::HeartRate(heart_rate(&mut r)?),
        PLX_CONTINUOUS_MEASUREMENT => Measurement::PulseOximetry(plx(&mut r)?),
        other => return Err(GattError::UnknownCharacteristic(other)),
    };
    if !r.0.is_empty() {
        return Err(GattError::TrailingBytes { count: r.0.len() });
    }
    Ok(m)
}

/// The unread rest of a packet.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], GattError> {
        match self.0.split_first_chunk::<N>() {
            Some((head, rest)) => {
                self.0 = rest;
                Ok(*head)
            }
            None => Err(GattError::Truncated { field }),
        }
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, GattError> {
        Ok(self.take::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, GattError> {
        Ok(u16::from_le_bytes(self.take::<2>(field)?))
    }
}

/// mantissa × 10^exponent, dividing for negative exponents so that values
/// such as 3760 × 10⁻² come out as the nearest double to 37.6.
fn scaled(mantissa: i32, exponent: i32) -> f64 {
    let m = f64::from(mantissa);
    if exponent < 0 {
        m / 10f64.powi(-exponent)
    } else {
        m * 10f64.powi(exponent)
    }
}

/// An IEEE-11073 32-bit FLOAT: 24-bit signed mantissa, 8-bit signed
/// exponent. The special values are recognised by the mantissa alone: those
/// five mantissas are never a finite value, whatever the exponent.
fn float(r: &mut Reader<'_>, field: &'static str) -> Result<f64, GattError> {
    let raw = u32::from_le_bytes(r.take::<4>(field)?);
    let special = match raw & 0x00FF_FFFF {
        0x007F_FFFF => Some(Special::NaN),
        0x0080_0000 => Some(Special::NRes),
        0x007F_FFFE => Some(Special::PositiveInfinity),
        0x0080_0002 => Some(Special::NegativeInfinity),
        0x0080_0001 => Some(Special::Reserved),
        _ => None,
    };
    if let Some(special) = special {
        return Err(GattError::SpecialValue { field, special });
    }
    // Sign-extend the low 24 bits; the top byte is the signed exponent.
    let mantissa = ((raw << 8) as i32) >> 8;
    let exponent = i32::from((raw >> 24) as u8 as i8);
    Ok(scaled(mantissa, exponent))
}

/// An IEEE-11073 16-bit SFLOAT: 12-bit signed mantissa, 4-bit signed
/// exponent; special values as for [`float`].
fn sfloat(r: &mut Reader<'_>, field: &'static str) -> Result<f64, GattError> {
    let raw = r.u16(field)?;
    let special = match raw & 0x0FFF {
        0x07FF => Some(Special::NaN),
        0x0800 => Some(Special::NRes),
        0x07FE => Some(Special::PositiveInfinity),
        0x0802 => Some(Special::NegativeInfinity),
        0x0801 => Some(Special::Reserved),
        _ => None,
    };
    if let Some(special) = special {
        return Err(GattError::SpecialValue { field, special });
    }
    let mantissa = i32::from(((raw << 4) as i16) >> 4);
    let exponent = i32::from((raw as i16) >> 12);
    Ok(scaled(mantissa, exponent))
}

fn temperature(r: &mut Reader<'_>) -> Result<Temperature, GattError> {
    let flags = r.u8("flags")?;
    let value = float(r, "temperature")?;
    let fahrenheit = flags & 0x01 != 0;
    let time = if flags & 0x02 != 0 {
        Some(date_time(r)?)
    } else {
        None
    };
    let kind = if flags & 0x04 != 0 {
        Some(TemperatureType::from_byte(r.u8("temperature type")?))
    } else {
        None
    };
    let celsius = if fahrenheit {
        // Rounded to 0.01 °C so that 98.6 °F reads 37 °C, not 36.99999…
        ((value - 32.0) * 5.0 / 9.0 * 100.0).round() / 100.0
    } else {
        value
    };
    Ok(Temperature {
        celsius,
        sent_in_fahrenheit: fahrenheit,
        time,
        kind,
    })
}

/// A Date Time (7 bytes). Zero year, month or day means "not known" in the
/// specification; such a time cannot place a reading, so it is refused.
fn date_time(r: &mut Reader<'_>) -> Result<DateTime, GattError> {
    let [y0, y1, month, day, hours, minutes, seconds] = r.take::<7>("time stamp")?;
    let year = u16::from_le_bytes([y0, y1]);
    let bad = |field, value| Err(GattError::InvalidDateTime { field, value });
    if !(1582..=9999).contains(&year) {
        return bad("year", year);
    }
    if !(1..=12).contains(&month) {
        return bad("month", month.into());
    }
    if day < 1 || day > days_in_month(year, month) {
        return bad("day", day.into());
    }
    if hours > 23 {
        return bad("hours", hours.into());
    }
    if minutes > 59 {
        return bad("minutes", minutes.into());
    }
    if seconds > 59 {
        return bad("seconds", seconds.into());
    }
    Ok(DateTime {
        year,
        month,
        day,
        hours,
        minutes,
        seconds,
    })
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn heart_rate(r: &mut Reader<'_>) -> Result<HeartRate, GattError> {
    let flags = r.u8("flags")?;
    let bpm = if flags & 0x01 != 0 {
        r.u16("heart rate")?
    } else {
        r.u8("heart rate")?.into()
    };
    let contact = match (flags >> 1) & 0x03 {
        // Contact is monitored and lost: the value is noise, not a pulse.
        2 => return Err(GattError::NoSensorContact),
        3 => SensorContact::Detected,
        _ => SensorContact::NotSupported,
    };
    let energy_expended_kj = if flags & 0x08 != 0 {
        Some(r.u16("energy expended")?)
    } else {
        None
    };
    let mut rr_intervals = 0;
    if flags & 0x10 != 0 {
        // The rest of the packet is RR-intervals: at least one, all whole.
        loop {
            r.u16("RR-interval")?;
            rr_intervals += 1;
            if r.0.is_empty() {
                break;
            }
        }
    }
    Ok(HeartRate {
        bpm,
        contact,
        energy_expended_kj,
        rr_intervals,
    })
}

fn plx(r: &mut Reader<'_>) -> Result<PulseOximetry, GattError> {
    let flags = r.u8("flags")?;
    let spo2_percent = sfloat(r, "SpO2")?;
    let pulse_rate_bpm = sfloat(r, "pulse rate")?;
    // The optional fields are read to check the packet's length, not used:
    // a special value in them does not spoil the normal reading.
    if flags & 0x01 != 0 {
        r.take::<4>("SpO2PR-Fast")?;
    }
    if flags & 0x02 != 0 {
        r.take::<4>("SpO2PR-Slow")?;
    }
    if flags & 0x04 != 0 {
        r.take::<2>("measurement status")?;
    }
    if flags & 0x08 != 0 {
        r.take::<3>("device and sensor status")?;
    }
    if flags & 0x10 != 0 {
        r.take::<2>("pulse amplitude index")?;
    }
    Ok(PulseOximetry {
        spo2_percent,
        pulse_rate_bpm,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of
/// `Day::ymd`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
