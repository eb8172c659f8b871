//! Fuzz target `forward`: see `alexnet_tests::fuzz::forward`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| alexnet_tests::fuzz::forward(data));
