//! The GATT decoder against the test vectors in tests/data/gatt-vectors.txt
//! (each vector reported by name), and bytes that must never panic.

use proptest::prelude::*;
use vigil_log::Metric;
use vigil_log::gatt::{self, GattError, Measurement, SensorContact};

const VECTORS: &str = include_str!("data/gatt-vectors.txt");

struct Vector {
    line: usize,
    name: String,
    characteristic: u16,
    bytes: Vec<u8>,
    expected: String,
}

fn vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    for (i, raw) in VECTORS.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(parts.len(), 4, "line {}: expected 4 fields: {line}", i + 1);
        let hex: String = parts[2].chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = if hex == "-" {
            Vec::new()
        } else {
            hex::decode(&hex).unwrap_or_else(|e| panic!("line {}: bad hex: {e}", i + 1))
        };
        out.push(Vector {
            line: i + 1,
            name: parts[0].to_owned(),
            characteristic: u16::from_str_radix(parts[1], 16)
                .unwrap_or_else(|e| panic!("line {}: bad characteristic: {e}", i + 1)),
            bytes,
            expected: parts[3].to_owned(),
        });
    }
    out
}

/// The canonical text of a decode result, as written in the vectors file.
fn describe(r: &Result<Measurement, GattError>) -> String {
    match r {
        Err(e) => format!("error {}", e.code()),
        Ok(Measurement::Temperature(t)) => {
            let mut s = format!("temperature {} C", t.celsius);
            if t.sent_in_fahrenheit {
                s += " sent-f";
            }
            if let Some(time) = t.time {
                s += &format!(" at {time}");
            }
            if let Some(kind) = t.kind {
                s += &format!(" type {}", kind.name());
            }
            s
        }
        Ok(Measurement::HeartRate(h)) => {
            let contact = match h.contact {
                SensorContact::NotSupported => "none",
                SensorContact::Detected => "detected",
            };
            let mut s = format!("heart-rate {} contact {contact}", h.bpm);
            if let Some(kj) = h.energy_expended_kj {
                s += &format!(" energy {kj}");
            }
            if h.rr_intervals > 0 {
                s += &format!(" rr {}", h.rr_intervals);
            }
            s
        }
        Ok(Measurement::PulseOximetry(p)) => {
            format!("spo2 {} pulse {}", p.spo2_percent, p.pulse_rate_bpm)
        }
    }
}

/// Every vector is its own case: all are run, and each failure is reported
/// by its name and line.
#[test]
fn gatt_vectors() {
    let vectors = vectors();
    assert!(vectors.len() >= 100, "only {} vectors", vectors.len());
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for v in &vectors {
        assert!(
            names.insert(v.name.clone()),
            "duplicate vector name {}",
            v.name
        );
        let got = describe(&gatt::decode(v.characteristic, &v.bytes));
        if got != v.expected {
            failures.push(format!(
                "  {} (line {}): expected `{}`, got `{got}`",
                v.name, v.line, v.expected
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} GATT vectors failed:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
}

#[test]
fn the_public_example_maps_to_one_reading_at_its_own_time() {
    let bytes = hex::decode("06B00E00FEDC070C050B321B04").unwrap();
    let m = gatt::decode(gatt::TEMPERATURE_MEASUREMENT, &bytes).unwrap();
    assert_eq!(
        m.values().collect::<Vec<_>>(),
        vec![(Metric::BodyTemperature, 37.6)]
    );
    // 2012-12-05T11:50:27Z, whatever time the packet arrived.
    assert_eq!(m.time_ms(42), 1_354_708_227_000);
}

#[test]
fn packets_without_a_time_stamp_take_the_arrival_time() {
    let m = gatt::decode(gatt::PLX_CONTINUOUS_MEASUREMENT, &[0, 0x62, 0, 0x48, 0]).unwrap();
    assert_eq!(
        m.values().collect::<Vec<_>>(),
        vec![(Metric::SpO2, 98.0), (Metric::HeartRate, 72.0)]
    );
    assert_eq!(m.time_ms(1_790_000_000_000), 1_790_000_000_000);
    let m = gatt::decode(gatt::HEART_RATE_MEASUREMENT, &[0, 72]).unwrap();
    assert_eq!(
        m.values().collect::<Vec<_>>(),
        vec![(Metric::HeartRate, 72.0)]
    );
    assert_eq!(m.time_ms(7), 7);
}

/// Encodes an IEEE-11073 FLOAT (no special-value check: the test picks the mantissa).
fn float(mantissa: i32, exponent: i8) -> [u8; 4] {
    let raw = (mantissa as u32 & 0x00FF_FFFF) | (u32::from(exponent as u8) << 24);
    raw.to_le_bytes()
}

fn sfloat(mantissa: i16, exponent: i8) -> [u8; 2] {
    let raw = (mantissa as u16 & 0x0FFF) | (u16::from(exponent as u8 & 0x0F) << 12);
    raw.to_le_bytes()
}

proptest! {
    /// Arbitrary bytes, for any characteristic, never panic.
    #[test]
    fn arbitrary_bytes_never_panic(
        characteristic in prop_oneof![
            Just(gatt::TEMPERATURE_MEASUREMENT),
            Just(gatt::HEART_RATE_MEASUREMENT),
            Just(gatt::PLX_CONTINUOUS_MEASUREMENT),
            any::<u16>(),
        ],
        bytes in proptest::collection::vec(any::<u8>(), 0..40),
        received in any::<i64>(),
    ) {
        if let Ok(m) = gatt::decode(characteristic, &bytes) {
            // Even 8388605 × 10^127 is a finite double.
            for (_, v) in m.values() {
                prop_assert!(v.is_finite(), "{:?}", m);
            }
            let _ = m.time_ms(received);
        }
    }

    /// A finite FLOAT reads back as mantissa × 10^exponent, for either sign.
    #[test]
    fn float_values_read_back(m in -8_388_605i32..=8_388_605, e in -4i8..=2) {
        let mut bytes = vec![0u8];
        bytes.extend(float(m, e));
        let Ok(Measurement::Temperature(t)) = gatt::decode(0x2A1C, &bytes) else {
            panic!("{bytes:02X?} did not decode");
        };
        let want = f64::from(m) * 10f64.powi(i32::from(e));
        prop_assert!((t.celsius - want).abs() <= want.abs() * 1e-12, "{} vs {want}", t.celsius);
    }

    /// A finite SFLOAT reads back as mantissa × 10^exponent, for either sign.
    #[test]
    fn sfloat_values_read_back(m in -2045i16..=2045, e in -8i8..=7, pr in 0i16..=300) {
        let mut bytes = vec![0u8];
        bytes.extend(sfloat(m, e));
        bytes.extend(sfloat(pr, 0));
        let Ok(Measurement::PulseOximetry(p)) = gatt::decode(0x2A5F, &bytes) else {
            panic!("{bytes:02X?} did not decode");
        };
        let want = f64::from(m) * 10f64.powi(i32::from(e));
        prop_assert!((p.spo2_percent - want).abs() <= want.abs() * 1e-12, "{} vs {want}", p.spo2_percent);
        prop_assert_eq!(p.pulse_rate_bpm, f64::from(pr));
    }

    /// Any byte after a complete packet is refused.
    #[test]
    fn one_more_byte_is_refused(extra in any::<u8>(), which in 0usize..3) {
        let (c, mut bytes) = [
            (0x2A1C, vec![0x06, 0xB0, 0x0E, 0x00, 0xFE, 0xDC, 0x07, 0x0C, 0x05, 0x0B, 0x32, 0x1B, 0x04]),
            (0x2A37, vec![0x08, 72, 16, 0]),
            (0x2A5F, vec![0x04, 0x62, 0, 0x48, 0, 0x20, 0]),
        ][which].clone();
        prop_assert!(gatt::decode(c, &bytes).is_ok());
        bytes.push(extra);
        prop_assert_eq!(gatt::decode(c, &bytes), Err(GattError::TrailingBytes { count: 1 }));
    }
}
