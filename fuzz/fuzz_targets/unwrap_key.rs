//! Key unwrap (vigil-crypto): nothing made up unwraps; an honest wrap unwraps only unaltered, as its kind, for its identity.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_fuzz::unwrap_key(data));
