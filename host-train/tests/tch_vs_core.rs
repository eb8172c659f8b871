//! The tch network and the core compute the same function: same weights (the paper's
//! initialization), same inputs, logits within 1e-5 relative error, for every built-in net
//! (LRN in both conventions, groups, adaptive pooling).

use alexnet_core::builtin::{self, MICRO};
use alexnet_host::{init::paper_init, BlobFile};
use host_train::Net;
use rand::{Rng, SeedableRng};
use tch::{Device, Tensor};

fn check(arch: &alexnet_core::Arch<'static>, seed: u64) {
    tch::set_num_threads(1);
    let spec = paper_init(arch, seed).unwrap();
    let net = Net::from_spec(&spec, Device::Cpu).unwrap();
    let file = BlobFile::from_bytes(&spec.to_blob().unwrap(), arch.name);
    let model = file.model().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let input: Vec<f32> = (0..arch.input_len())
        .map(|_| rng.random_range(-2.5f32..2.5))
        .collect();
    let s = arch.input;
    let x = Tensor::from_slice(&input).reshape([1, s.c as i64, s.h as i64, s.w as i64]);
    let tch_logits = Vec::<f32>::try_from(net.forward_t(&x, false).flatten(0, -1)).unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut core_logits = vec![0.0f32; model.classes()];
    model.forward(&input, &mut arena, &mut core_logits).unwrap();
    let scale = core_logits.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let err = tch_logits
        .iter()
        .zip(&core_logits)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(scale > 0.0, "{}: degenerate logits", arch.name);
    assert!(
        err / scale <= 1e-5,
        "{}: relative error {} (max |logit| {scale})",
        arch.name,
        err / scale
    );
    // And back: the tch weights export to the same spec.
    assert_eq!(net.to_spec().unwrap(), spec);
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
