//! Fuzz target `safetensors`: see `alexnet_tests::fuzz::safetensors`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| alexnet_tests::fuzz::safetensors(data));
