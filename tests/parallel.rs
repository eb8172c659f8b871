//! The core's kernels on two threads (`alexnet_host::parallel`) against the single-threaded
//! forward pass: every layer's activations and the logits, bit for bit, f32 and int8, on the
//! full-size nets.

use alexnet_core::arch::ConvSpec;
use alexnet_core::builtin::{MICRO, PAPER, TORCHVISION};
use alexnet_core::model::{Kernels, Serial};
use alexnet_core::{Arch, Error, Model, Shape};
use alexnet_host::init::paper_init;
use alexnet_host::parallel::Parallel;
use alexnet_host::quantize::{self, Method};
use alexnet_host::{dataset, BlobFile};

fn input_for(arch: &Arch<'_>) -> Vec<f32> {
    (0..arch.input_len())
        .map(|i| ((i * 7919) % 255) as f32 / 64.0 - 2.0)
        .collect()
}

/// Every layer's activation (as bits) and the logits of one forward pass.
fn run_f32<K: Kernels>(model: &Model<'_>, kernels: &K, input: &[f32]) -> Vec<Vec<u32>> {
    let mut arena = vec![0u8; model.observed_arena_bytes()];
    let mut logits = vec![0.0f32; model.classes()];
    let mut seen = Vec::new();
    model
        .forward_observed_with(kernels, input, &mut arena, &mut logits, |_, _, a| {
            seen.push(a.iter().map(|x| x.to_bits()).collect())
        })
        .unwrap();
    seen.push(logits.iter().map(|x| x.to_bits()).collect());
    // And fused, in the smaller arena.
    let mut small = vec![0u8; model.arena_bytes()];
    let mut fused = vec![0.0f32; model.classes()];
    model
        .forward_with(kernels, input, &mut small, &mut fused)
        .unwrap();
    seen.push(fused.iter().map(|x| x.to_bits()).collect());
    seen
}

fn run_int8<K: Kernels>(model: &Model<'_>, kernels: &K, codes: &[i8]) -> Vec<Vec<i8>> {
    let mut arena = vec![0u8; model.observed_arena_bytes()];
    let mut logits = vec![0i8; model.classes()];
    let mut seen = Vec::new();
    model
        .forward_int8_observed_with(kernels, codes, &mut arena, &mut logits, |_, _, a| {
            seen.push(a.to_vec())
        })
        .unwrap();
    seen.push(logits);
    let mut small = vec![0u8; model.arena_bytes()];
    let mut fused = vec![0i8; model.classes()];
    model
        .forward_int8_with(kernels, codes, &mut small, &mut fused)
        .unwrap();
    seen.push(fused);
    seen
}

#[test]
fn two_threads_compute_what_one_does_f32_and_int8() {
    let threads = Parallel::new(2).unwrap();
    assert_eq!(threads.threads(), 2);
    for arch in [&MICRO, &PAPER, &TORCHVISION] {
        let spec = paper_init(arch, 3).unwrap();
        let file = BlobFile::from_bytes(&spec.to_blob().unwrap(), arch.name);
        let model = file.model().unwrap();
        let input = input_for(arch);
        let serial = run_f32(&model, &Serial, &input);
        assert_eq!(
            serial,
            run_f32(&model, &threads, &input),
            "{} f32",
            arch.name
        );

        let images = std::path::Path::new(alexnet_host::idx::FASHION_MNIST_DIR)
            .join("t10k-images-idx3-ubyte.gz");
        let inputs = dataset::from_idx(&images, 2, model.preprocess(), arch.input)
            .unwrap()
            .inputs;
        let cal = quantize::calibrate(&model, &inputs, |_| {}).unwrap();
        let (mut int8, _) = quantize::quantize(&spec, &cal, Method::MinMax).unwrap();
        int8.quant.as_mut().unwrap().packed_dsp = true; // ignored by the host's kernels
        let qfile = BlobFile::from_bytes(&int8.to_blob().unwrap(), arch.name);
        let qmodel = qfile.model().unwrap();
        let mut codes = vec![0i8; arch.input_len()];
        qmodel.quantize_input(&inputs[1], &mut codes).unwrap();
        let serial = run_int8(&qmodel, &Serial, &codes);
        assert_eq!(
            serial,
            run_int8(&qmodel, &threads, &codes),
            "{} int8",
            arch.name
        );
    }
}

#[test]
fn wrong_slices_are_errors_not_panics() {
    let threads = Parallel::new(2).unwrap();
    let spec = ConvSpec {
        out_channels: 4,
        kernel: 3,
        stride: 1,
        padding: 1,
        groups: 2,
    };
    let shape = Shape::new(2, 5, 5);
    let (input, bias, mut out) = (vec![0.0f32; 50], vec![0.0f32; 4], vec![0.0f32; 100]);
    let short = vec![0.0f32; 17]; // needs 4 x 1 x 3 x 3 = 36
    assert_eq!(
        threads.conv2d(&input, shape, &spec, &short, &bias, &mut out),
        Err(Error::WrongLength {
            what: "conv weight",
            expected: 36,
            found: 17
        })
    );
    let weight = vec![0.0f32; 36];
    assert!(threads
        .conv2d(&input[..49], shape, &spec, &weight, &bias, &mut out)
        .is_err());
    assert!(threads.linear(&input, &weight, &bias, &mut out).is_err());
    assert!(threads
        .conv2d(&input, shape, &spec, &weight, &bias, &mut out)
        .is_ok());
}
