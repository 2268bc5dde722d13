//! Arbitrary bytes as the resident CLI's state file: an error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil_cli::fuzzing::state_file(data));
