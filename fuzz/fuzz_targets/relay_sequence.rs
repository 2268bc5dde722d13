//! Sequences of frames on three connections to one relay (vigil-node): no panic, and no access without the key.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::relay::sequence(data));
