//! Arbitrary bytes as a request frame (vigil-proto decode_request): an error or a stable round trip, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::request_frame(data));
