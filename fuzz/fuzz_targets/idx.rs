//! Fuzz target `idx`: see `alexnet_tests::fuzz::idx`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| alexnet_tests::fuzz::idx(data));
