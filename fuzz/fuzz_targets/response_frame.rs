//! Arbitrary bytes as a response frame (vigil-proto decode_response): an error or a stable round trip, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::response_frame(data));
