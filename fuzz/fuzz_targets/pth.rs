//! Fuzz target `pth`: see `alexnet_tests::fuzz::pth`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| alexnet_tests::fuzz::pth(data));
