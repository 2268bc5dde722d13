//! Arbitrary bytes as the device's key file: an error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_device::fuzzing::key_file(data));
