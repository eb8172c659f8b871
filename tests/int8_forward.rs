//! Whole int8 networks, quantized from real calibration images by the real quantizer: the
//! core equals the independent reference bit for bit at every layer, and the integer LRN
//! stays within the contract's accuracy of float-LRN-then-quantize.

use alexnet_core::builtin::{self, MICRO};
use alexnet_core::RunOptions;
use alexnet_core::{Arch, Layer, Model};
use alexnet_host::idx::FASHION_MNIST_DIR;
use alexnet_host::init::paper_init;
use alexnet_host::quantize::{self, Method};
use alexnet_host::{dataset, BlobFile, ModelSpec};
use alexnet_tests::int8 as reference;
use std::path::Path;

fn fashion_mnist_test_images() -> std::path::PathBuf {
    let p = Path::new(FASHION_MNIST_DIR).join("t10k-images-idx3-ubyte.gz");
    assert!(
        p.exists(),
        "{} missing: run `cargo xtask test` (it installs dataset-fashion-mnist)",
        p.display()
    );
    p
}

/// An f32 model with the paper's initialization, quantized on `count` real images; also
/// returns those images, preprocessed.
fn quantized(arch: &Arch<'static>, seed: u64, count: usize) -> (ModelSpec, Vec<Vec<f32>>) {
    let spec = paper_init(arch, seed).unwrap();
    let file = BlobFile::from_bytes(&spec.to_blob().unwrap(), arch.name);
    let model = file.model().unwrap();
    let samples = dataset::from_idx(
        &fashion_mnist_test_images(),
        count,
        model.preprocess(),
        arch.input,
    )
    .unwrap();
    let cal = quantize::calibrate(&model, &samples.inputs, |_| {}).unwrap();
    let (int8, _) = quantize::quantize(&model, &cal, Method::Percentile(99.99)).unwrap();
    (int8, samples.inputs)
}

fn check_bit_exact(arch: &Arch<'static>, seed: u64, count: usize) {
    let (int8, inputs) = quantized(arch, seed, count);
    let file = BlobFile::from_bytes(&int8.to_blob().unwrap(), arch.name);
    let model = file.model().unwrap();
    assert_eq!(model.arena_bytes(), arch.arena_bytes_int8());
    assert_eq!(
        model.observed_arena_bytes(),
        arch.observed_arena_bytes_int8()
    );
    let mut arena = vec![0u8; model.observed_arena_bytes()];
    let mut small = vec![0u8; model.arena_bytes()];
    let mut logits = vec![0i8; model.classes()];
    let mut fused = vec![0i8; model.classes()];
    let mut codes = vec![0i8; model.input_len()];
    for input in &inputs {
        model.quantize_input(input, &mut codes).unwrap();
        // The fused forward pass, in the smaller arena.
        model.forward_int8(&codes, &mut small, &mut fused).unwrap();
        let mut observed = Vec::new();
        model
            .run(
                &codes,
                &mut arena,
                &mut logits,
                RunOptions::new().observe(&mut |_, _, a| observed.push(a.to_vec())),
            )
            .unwrap();
        let expected = reference::forward(&int8, &codes);
        for (i, (got, want)) in observed.iter().zip(&expected).enumerate() {
            assert!(
                got == want,
                "{}: layer {i} ({:?}) differs",
                arch.name,
                arch.layers[i]
            );
        }
        assert_eq!(&logits, expected.last().unwrap());
        assert_eq!(fused, logits, "{}: fused forward differs", arch.name);
        assert!(
            logits.iter().any(|&v| v != logits[0]),
            "{}: degenerate logits",
            arch.name
        );
    }
}

#[test]
fn micro_int8_is_bit_exact() {
    check_bit_exact(&MICRO, 1, 16);
}

#[test]
fn paper_int8_is_bit_exact() {
    check_bit_exact(&builtin::PAPER, 2, 2);
}

#[test]
fn caffe_int8_is_bit_exact() {
    check_bit_exact(&builtin::CAFFE, 3, 2);
}

#[test]
fn torchvision_int8_is_bit_exact() {
    check_bit_exact(&builtin::TORCHVISION, 4, 2);
}

/// Integer LRN against float LRN of the same dequantized input, then quantized with the
/// layer's output parameters: returns (outputs, within 1 LSB, largest difference).
fn lrn_accuracy(arch: &Arch<'static>, seed: u64, count: usize) -> (usize, usize, usize, i32) {
    let (int8, inputs) = quantized(arch, seed, count);
    let file = BlobFile::from_bytes(&int8.to_blob().unwrap(), arch.name);
    let model: Model = file.model().unwrap();
    let q = model.quantization();
    let mut arena = vec![0u8; model.observed_arena_bytes()];
    let mut logits = vec![0i8; model.classes()];
    let mut codes = vec![0i8; model.input_len()];
    let (mut total, mut exact, mut within1, mut worst) = (0usize, 0usize, 0usize, 0i32);
    for input in &inputs {
        model.quantize_input(input, &mut codes).unwrap();
        let mut acts: Vec<(alexnet_core::Shape, Vec<i8>)> = Vec::new();
        model
            .run(
                &codes,
                &mut arena,
                &mut logits,
                RunOptions::new().observe(&mut |_, s, a| acts.push((s, a.to_vec()))),
            )
            .unwrap();
        for (i, layer) in arch.layers.iter().enumerate() {
            let Layer::Lrn(spec) = layer else { continue };
            let (shape, before) = &acts[i - 1];
            let after = &acts[i].1;
            let (qin, qout) = (q.layers[i - 1].output, q.layers[i].output);
            let plane = shape.h * shape.w;
            let half = spec.size as usize / 2;
            let real = |c: usize, p: usize| {
                (before[c * plane + p] as i32 - qin.zero_point) as f64 * qin.scale as f64
            };
            for c in 0..shape.c {
                for p in 0..plane {
                    let sum: f64 = (c.saturating_sub(half)..=(c + half).min(shape.c - 1))
                        .map(|j| real(j, p).powi(2))
                        .sum();
                    let b = real(c, p)
                        / (spec.k as f64 + spec.alpha_effective() as f64 * sum)
                            .powf(spec.beta as f64);
                    let want = ((b / qout.scale as f64).round() + qout.zero_point as f64)
                        .clamp(-128.0, 127.0) as i32;
                    let diff = (after[c * plane + p] as i32 - want).abs();
                    total += 1;
                    exact += usize::from(diff == 0);
                    within1 += usize::from(diff <= 1);
                    worst = worst.max(diff);
                }
            }
        }
    }
    (total, exact, within1, worst)
}

#[test]
fn integer_lrn_tracks_float_lrn() {
    for (arch, count) in [(&MICRO, 50), (&builtin::PAPER, 3), (&builtin::CAFFE, 3)] {
        let (total, exact, within1, worst) = lrn_accuracy(arch, 7, count);
        let share = within1 as f64 / total as f64;
        eprintln!(
            "{}: {total} LRN outputs on {count} real images: {:.4}% exact, {:.4}% within 1 LSB, largest difference {worst} LSB",
            arch.name,
            exact as f64 / total as f64 * 100.0,
            share * 100.0
        );
        assert!(
            share >= 0.99,
            "{}: only {:.3}% within 1 LSB",
            arch.name,
            share * 100.0
        );
        assert!(worst <= 2, "{}: an output is {worst} LSB off", arch.name);
    }
}
