//! Arbitrary bytes as the device's outbox record: an error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_device::fuzzing::outbox_record(data));
