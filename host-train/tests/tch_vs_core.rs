//! The tch network and the core compute the same function: same weights (the paper's
//! initialization), same inputs, logits within 1e-5 relative error, for every built-in net
//! (LRN in both conventions, groups, adaptive pooling). `host-train verify` runs the same
//! check on a GPU.

use alexnet_core::builtin::{self, MICRO};
use host_train::verify::tch_vs_core;
use tch::Device;

fn check(arch: &alexnet_core::Arch<'static>, seed: u64) {
    tch::set_num_threads(1);
    let rel = tch_vs_core(arch, seed, Device::Cpu).unwrap();
    assert!(rel <= 1e-5, "{}: relative error {rel}", arch.name);
}

#[test]
fn micro_matches_the_core() {
    check(&MICRO, 1);
}

#[test]
fn paper_matches_the_core() {
    check(&builtin::PAPER, 2);
}

#[test]
fn caffe_matches_the_core() {
    check(&builtin::CAFFE, 3);
}

#[test]
fn torchvision_matches_the_core() {
    check(&builtin::TORCHVISION, 4);
}
