//! Envelope open (vigil-crypto): nothing made up opens; a sealed blob opens only unaltered, as its kind, in its context.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::envelope(data));
