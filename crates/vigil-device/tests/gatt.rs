//! `Vault::record_gatt`: a wristband's raw characteristic values, decoded and
//! recorded whole, or refused with nothing recorded.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use vigil_device::{MemStorage, MemoryKeyStore, Period, Vault, WriteError};
use vigil_log::gatt::{GattError, Special};
use vigil_log::{LogError, Metric, Reading};

const START: i64 = 1_790_035_200_000; // 2026-09-22T00:00:00Z
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn vault() -> Vault {
    Vault::create_with(
        Box::new(MemStorage::new()),
        Period::days(START, 7),
        Box::new(MemoryKeyStore::new()),
        &mut ChaCha20Rng::seed_from_u64(16),
    )
    .unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn all(v: &Vault) -> Vec<(Metric, f64, i64)> {
    v.log()
        .readings(None, i64::MIN, i64::MAX, true)
        .iter()
        .map(|r: &Reading| (r.metric, r.value, r.time_ms))
        .collect()
}

#[test]
fn a_temperature_with_its_own_time_stamp_is_recorded_at_that_time() {
    let mut v = vault();
    // 38.2 °C, time stamp 2026-09-22 08:30:00 (read as UTC), no type.
    let got = v
        .record_gatt(
            0x2A1C,
            &hex("02 7E 01 00 FF EA 07 09 16 08 1E 00"),
            START + 9 * HOUR,
        )
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        all(&v),
        vec![(Metric::BodyTemperature, 38.2, START + 8 * HOUR + 30 * MIN)]
    );
    assert_eq!(got[0].time_ms, START + 8 * HOUR + 30 * MIN);
}

#[test]
fn fahrenheit_is_recorded_in_celsius_at_the_arrival_time() {
    let mut v = vault();
    // 98.6 °F, no time stamp, type mouth.
    v.record_gatt(0x2A1C, &hex("05 DA 03 00 FF 06"), START + HOUR)
        .unwrap();
    assert_eq!(all(&v), vec![(Metric::BodyTemperature, 37.0, START + HOUR)]);
}

#[test]
fn heart_rate_and_pulse_oximetry() {
    let mut v = vault();
    // 16-bit heart rate 72, contact detected, energy expended and two RR-intervals.
    v.record_gatt(0x2A37, &hex("1F 48 00 10 00 00 04 F0 03"), START + HOUR)
        .unwrap();
    // SpO2 97.5 %, pulse 64 bpm, with every optional field.
    let got = v
        .record_gatt(
            0x2A5F,
            &hex("1F CF F3 40 00 61 00 49 00 63 00 47 00 20 00 00 00 00 32 F0"),
            START + 2 * HOUR,
        )
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        all(&v),
        vec![
            (Metric::HeartRate, 72.0, START + HOUR),
            (Metric::SpO2, 97.5, START + 2 * HOUR),
            (Metric::HeartRate, 64.0, START + 2 * HOUR),
        ]
    );
}

#[test]
fn bad_packets_record_nothing_and_say_why() {
    let mut v = vault();
    let at = START + HOUR;
    let cases: &[(u16, &str, WriteError)] = &[
        // NaN temperature.
        (
            0x2A1C,
            "00 FF FF 7F 00",
            WriteError::Gatt(GattError::SpecialValue {
                field: "temperature",
                special: Special::NaN,
            }),
        ),
        // The public example without its last byte: the type is missing.
        (
            0x2A1C,
            "06 B0 0E 00 FE DC 07 0C 05 0B 32 1B",
            WriteError::Gatt(GattError::Truncated {
                field: "temperature type",
            }),
        ),
        (
            0x2A37,
            "00 48 00",
            WriteError::Gatt(GattError::TrailingBytes { count: 1 }),
        ),
        (
            0x2A37,
            "04 48",
            WriteError::Gatt(GattError::NoSensorContact),
        ),
        (
            0x2A35,
            "00 48",
            WriteError::Gatt(GattError::UnknownCharacteristic(0x2A35)),
        ),
        // Pulse rate +INF next to a valid SpO2: neither is recorded.
        (
            0x2A5F,
            "00 62 00 FE 07",
            WriteError::Gatt(GattError::SpecialValue {
                field: "pulse rate",
                special: Special::PositiveInfinity,
            }),
        ),
        // A decodable 35 °C... in °F: 1.67 °C is no body temperature.
        (
            0x2A1C,
            "01 5E 01 00 FF",
            WriteError::Invalid(LogError::OutOfRange {
                metric: Metric::BodyTemperature,
                value: 1.67,
                unit: vigil_log::Unit::Celsius,
                min: 30.0,
                max: 45.0,
            }),
        ),
    ];
    for (c, bytes, want) in cases {
        let e = v.record_gatt(*c, &hex(bytes), at).unwrap_err();
        assert_eq!(e.to_string(), want.to_string(), "{c:04X} {bytes}");
        assert!(
            matches!((&e, want), (WriteError::Gatt(a), WriteError::Gatt(b)) if a == b)
                || matches!((&e, want), (WriteError::Invalid(a), WriteError::Invalid(b)) if a == b),
            "{c:04X} {bytes}: {e:?}"
        );
    }
    assert!(all(&v).is_empty(), "nothing recorded: {:?}", all(&v));
}

#[test]
fn a_pulse_oximetry_packet_records_both_values_or_neither() {
    let mut v = vault();
    // SpO2 98 % is valid, pulse 300 bpm is not (20–250): neither is kept.
    let e = v
        .record_gatt(0x2A5F, &hex("00 62 00 2C 01"), START + HOUR)
        .unwrap_err();
    assert!(
        matches!(
            e,
            WriteError::Invalid(LogError::OutOfRange {
                metric: Metric::HeartRate,
                ..
            })
        ),
        "{e:?}"
    );
    // SpO2 40 % is out of range (50–100), pulse 72 is fine: neither is kept.
    let e = v
        .record_gatt(0x2A5F, &hex("00 28 00 48 00"), START + HOUR)
        .unwrap_err();
    assert!(
        matches!(
            e,
            WriteError::Invalid(LogError::OutOfRange {
                metric: Metric::SpO2,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(all(&v).is_empty(), "half a packet recorded: {:?}", all(&v));
    // The vault still works, and stays whole after a reopen of its log.
    v.record_gatt(0x2A5F, &hex("00 62 00 48 00"), START + HOUR)
        .unwrap();
    assert_eq!(all(&v).len(), 2);
}

#[test]
fn a_time_stamp_before_1970_is_refused() {
    let mut v = vault();
    // Valid Date Time 1969-12-31 23:59:59: a negative time, which the log refuses.
    let e = v
        .record_gatt(0x2A1C, &hex("02 72 01 00 FF B1 07 0C 1F 17 3B 3B"), START)
        .unwrap_err();
    assert!(
        matches!(e, WriteError::Invalid(LogError::NegativeTime(-1000))),
        "{e:?}"
    );
    assert!(all(&v).is_empty());
}
