//! Arbitrary bytes as a wristband's GATT value, for each characteristic (the
//! first byte picks it): an error or finite values, never a panic.
#![no_main]

use vigil_log::gatt;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let characteristic = match pick % 4 {
        0 => gatt::TEMPERATURE_MEASUREMENT,
        1 => gatt::HEART_RATE_MEASUREMENT,
        2 => gatt::PLX_CONTINUOUS_MEASUREMENT,
        _ => u16::from(pick) << 8,
    };
    if let Ok(m) = gatt::decode(characteristic, bytes) {
        for (_, v) in m.values() {
            assert!(v.is_finite(), "{m:?}");
        }
        let _ = m.time_ms(0);
    }
});
