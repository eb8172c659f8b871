//! Whole forward passes with every kind of kernels: two threads (`alexnet_host::parallel`),
//! the native kernels and the reference definitions, fused and unfused: every layer's
//! activations and the logits, bit for bit, f32 and int8, on the full-size nets. (Each
//! kernel alone, errors included, runs the shared suite, `tests/kernel_suite.rs`.)

use alexnet_core::builtin::{MICRO, PAPER, TORCHVISION};
use alexnet_core::kernels::{native, Kernels, Reference};
use alexnet_core::RunOptions;
use alexnet_core::{Arch, Model};
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
        .run(
            input,
            &mut arena,
            &mut logits,
            RunOptions::new()
                .kernels(kernels)
                .observe(&mut |_, _, a| seen.push(a.iter().map(|x| x.to_bits()).collect())),
        )
        .unwrap();
    seen.push(logits.iter().map(|x| x.to_bits()).collect());
    // And fused, in the smaller arena.
    let mut small = vec![0u8; model.arena_bytes()];
    let mut fused = vec![0.0f32; model.classes()];
    model
        .run(
            input,
            &mut small,
            &mut fused,
            RunOptions::new().kernels(kernels),
        )
        .unwrap();
    seen.push(fused.iter().map(|x| x.to_bits()).collect());
    seen
}

fn run_int8<K: Kernels>(model: &Model<'_>, kernels: &K, codes: &[i8]) -> Vec<Vec<i8>> {
    let mut arena = vec![0u8; model.observed_arena_bytes()];
    let mut logits = vec![0i8; model.classes()];
    let mut seen = Vec::new();
    model
        .run(
            codes,
            &mut arena,
            &mut logits,
            RunOptions::new()
                .kernels(kernels)
                .observe(&mut |_, _, a| seen.push(a.to_vec())),
        )
        .unwrap();
    seen.push(logits);
    let mut small = vec![0u8; model.arena_bytes()];
    let mut fused = vec![0i8; model.classes()];
    model
        .run(
            codes,
            &mut small,
            &mut fused,
            RunOptions::new().kernels(kernels),
        )
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
        let serial = run_f32(&model, &native(), &input);
        assert_eq!(
            serial,
            run_f32(&model, &Reference, &input),
            "{} f32 reference",
            arch.name
        );
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
        let (mut int8, _) = quantize::quantize(&model, &cal, Method::MinMax).unwrap();
        int8.quant.as_mut().unwrap().packed_dsp = true; // ignored by the host's kernels
        let qfile = BlobFile::from_bytes(&int8.to_blob().unwrap(), arch.name);
        let qmodel = qfile.model().unwrap();
        let mut codes = vec![0i8; arch.input_len()];
        qmodel.quantize_input(&inputs[1], &mut codes).unwrap();
        let serial = run_int8(&qmodel, &native(), &codes);
        assert_eq!(
            serial,
            run_int8(&qmodel, &Reference, &codes),
            "{} int8 reference",
            arch.name
        );
        assert_eq!(
            serial,
            run_int8(&qmodel, &threads, &codes),
            "{} int8",
            arch.name
        );
    }
}
