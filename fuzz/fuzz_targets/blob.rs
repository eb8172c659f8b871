//! Fuzz target `blob`: see `alexnet_tests::fuzz::blob`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| alexnet_tests::fuzz::blob(data));
