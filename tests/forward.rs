//! Whole networks through the core, bit for bit against the contract reference, layer by
//! layer, for every built-in net.

use alexnet_core::builtin::{self, MICRO};
use alexnet_core::Model;
use alexnet_host::init::paper_init;
use alexnet_host::BlobFile;
use alexnet_tests::contract;
use rand::{Rng, SeedableRng};

fn check_net(arch: &alexnet_core::Arch<'static>, seed: u64) {
    let spec = paper_init(arch, seed).unwrap();
    let file = BlobFile::from_bytes(&spec.to_blob().unwrap(), arch.name);
    let model = file.model().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Roughly the range of preprocessed pixels of each net.
    let input: Vec<f32> = (0..arch.input_len())
        .map(|_| rng.random_range(-2.5f32..2.5))
        .collect();

    let mut arena = vec![0u8; arch.arena_bytes_f32()];
    let mut logits = vec![0.0f32; arch.classes()];
    let mut observed = Vec::new();
    model
        .forward_observed(&input, &mut arena, &mut logits, |i, shape, act| {
            assert_eq!(act.len(), shape.len(), "layer {i}");
            observed.push(act.to_vec())
        })
        .unwrap();
    let expected = contract::forward(&spec, &input);
    assert_eq!(observed.len(), expected.len());
    for (i, (got, want)) in observed.iter().zip(&expected).enumerate() {
        let same = got
            .iter()
            .zip(want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same && got.len() == want.len(),
            "{}: layer {i} ({:?}) differs",
            arch.name,
            arch.layers[i]
        );
    }
    assert_eq!(&logits, expected.last().unwrap());
    assert!(
        logits.iter().all(|v| v.is_finite()),
        "{}: {logits:?}",
        arch.name
    );
    // The random net is not degenerate: its logits differ.
    assert!(logits.iter().any(|&v| v != logits[0]), "{}", arch.name);
}

#[test]
fn micro_is_bit_exact() {
    for seed in 0..4 {
        check_net(&MICRO, seed);
    }
}

#[test]
fn paper_is_bit_exact() {
    check_net(&builtin::PAPER, 11);
}

#[test]
fn caffe_is_bit_exact() {
    check_net(&builtin::CAFFE, 12);
}

#[test]
fn torchvision_is_bit_exact() {
    check_net(&builtin::TORCHVISION, 13);
}

#[test]
fn forward_is_deterministic_and_reentrant() {
    // Two models share nothing: the same input gives the same logits through either, and a
    // dirty arena does not leak into the result.
    let spec = paper_init(&MICRO, 5).unwrap();
    let blob = spec.to_blob().unwrap();
    let file = BlobFile::from_bytes(&blob, "micro");
    let model = Model::parse(file.bytes()).unwrap();
    let input = vec![0.25f32; 784];
    let mut a = vec![0u8; model.arena_bytes()];
    let mut b = vec![0xAAu8; model.arena_bytes()];
    let (mut la, mut lb) = ([0.0f32; 10], [0.0f32; 10]);
    model.forward(&input, &mut a, &mut la).unwrap();
    model.forward(&input, &mut b, &mut lb).unwrap();
    assert_eq!(la.map(f32::to_bits), lb.map(f32::to_bits));
}
