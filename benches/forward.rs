//! Forward pass of the core and of its peer, libtorch (through `tch`, CPU), measured side by
//! side in the same run with the same weights: whole nets in f32 (`core/<net>` and
//! `libtorch/<net>`), the core's int8 path (its peer is libtorch's f32, which has no int8
//! path for this net), and the paper net's layers in f32 (`core/<layer>` and
//! `libtorch/<layer>`). Batch 1, one thread (libtorch's intra- and inter-op pools are set to
//! one thread before any work).
//!
//! ONNX Runtime is the second peer (`onnxruntime.rs`): the same weights exported to ONNX,
//! timed by its own Python API in the same run.
//!
//! Run: `cargo xtask bench` (sets up libtorch and onnxruntime in `.venv`, runs this and
//! `bench-summary`), or `cargo bench -p alexnet-benches --bench forward`, then
//! `cargo run --release -p alexnet-benches --bin bench-summary` for the ratios.

use alexnet_core::builtin::{MICRO, PAPER, TORCHVISION};
use alexnet_core::geometry::{ConvGeometry, PoolGeometry};
use alexnet_core::kernels::native;
use alexnet_core::RunOptions;
use alexnet_core::{Arch, Layer, Shape};
use alexnet_host::init::paper_init;
use alexnet_host::BlobFile;
use criterion::{BenchmarkId, Criterion, Throughput};
use host_train::Net;
use std::hint::black_box;
use std::time::Duration;
use tch::{Device, Tensor};

mod onnxruntime;

/// The tensor `[1, C, H, W]` holding `values`.
fn batch_of_one(values: &[f32], shape: Shape) -> Tensor {
    Tensor::from_slice(values).reshape([1, shape.c as i64, shape.h as i64, shape.w as i64])
}

/// Largest difference between `a` and `b`, relative to `b`'s largest magnitude.
fn relative_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "output lengths differ");
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    diff / b.iter().map(|y| y.abs()).fold(1e-30, f32::max)
}

/// Checks that the core and libtorch compute the same thing before timing them.
fn check_same(what: &str, core: &[f32], peer: &Tensor) {
    let peer = host_train::net::to_vec(peer).unwrap();
    let rel = relative_difference(core, &peer);
    assert!(rel < 1e-3, "{what}: core and libtorch differ by {rel}");
}

/// Two real images (Fashion-MNIST's first test images, scaled to the net's input) as the
/// net's preprocessed inputs: the int8 calibration set of the core and of its peers.
fn calibration_inputs(
    arch: &alexnet_core::Arch<'_>,
    model: &alexnet_core::Model<'_>,
) -> Vec<Vec<f32>> {
    let images = std::path::Path::new(alexnet_host::idx::FASHION_MNIST_DIR)
        .join("t10k-images-idx3-ubyte.gz");
    alexnet_host::dataset::from_idx(&images, 2, model.preprocess(), arch.input)
        .unwrap()
        .inputs
}

/// The net quantized on [`calibration_inputs`] (timing does not depend on the calibration),
/// and the first image's input codes.
fn quantized(
    arch: &alexnet_core::Arch<'_>,
    model: &alexnet_core::Model<'_>,
) -> (BlobFile, Vec<i8>) {
    use alexnet_host::quantize::{self, Method};
    let inputs = calibration_inputs(arch, model);
    let cal = quantize::calibrate(model, &inputs, |_| {}).unwrap();
    let (int8, _) = quantize::quantize(model, &cal, Method::MinMax).unwrap();
    let qfile = BlobFile::from_bytes(&int8.to_blob().unwrap(), arch.name);
    let mut codes = vec![0i8; arch.input_len()];
    qfile
        .model()
        .unwrap()
        .quantize_input(&inputs[0], &mut codes)
        .unwrap();
    (qfile, codes)
}

/// A deterministic input in the range of preprocessed pixels.
fn test_input(arch: &alexnet_core::Arch<'_>) -> Vec<f32> {
    (0..arch.input_len())
        .map(|i| ((i * 7919) % 255) as f32 / 64.0 - 2.0)
        .collect()
}

fn whole_nets(c: &mut Criterion) {
    let _guard = tch::no_grad_guard();
    let mut group = c.benchmark_group("forward_f32");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for arch in [&MICRO, &PAPER, &TORCHVISION] {
        let spec = paper_init(arch, 0).unwrap();
        let file = BlobFile::from_bytes(&spec.to_blob().unwrap(), arch.name);
        let model = file.model().unwrap();
        let input = test_input(arch);
        // The arena of whole layers, as `alexnet infer` gives: the kernels choose fused or
        // whole (`Kernels::prefers_whole_layers`).
        let mut arena = vec![0u8; model.observed_arena_bytes()];
        let mut logits = vec![0.0f32; model.classes()];

        // The peer: the same weights, the same input, inference mode (dropout off).
        let net = Net::from_spec(&spec, Device::Cpu).unwrap();
        let x = batch_of_one(&input, arch.input);
        model.forward(&input, &mut arena, &mut logits).unwrap();
        check_same(arch.name, &logits, &net.forward_t(&x, false));

        group.throughput(Throughput::Elements(arch.macs()));
        group.bench_function(BenchmarkId::new("core", arch.name), |b| {
            b.iter(|| {
                model
                    .forward(black_box(&input), &mut arena, &mut logits)
                    .unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("libtorch", arch.name), |b| {
            b.iter(|| net.forward_t(black_box(&x), false))
        });
    }
    group.finish();
}

/// The int8 path of the same nets, quantized on two synthetic inputs (timing does not
/// depend on the calibration). Core only: its peer is libtorch's f32 in `forward_f32`.
fn whole_nets_int8(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward_int8");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for arch in [&MICRO, &PAPER, &TORCHVISION] {
        let spec = paper_init(arch, 0).unwrap();
        let file = BlobFile::from_bytes(&spec.to_blob().unwrap(), arch.name);
        let model = file.model().unwrap();
        let (qfile, codes) = quantized(arch, &model);
        let qmodel = qfile.model().unwrap();
        // The arena of whole layers, as `alexnet infer` gives: the kernels choose fused or
        // whole (`Kernels::prefers_whole_layers`).
        let mut arena = vec![0u8; qmodel.observed_arena_bytes()];
        let mut logits = vec![0i8; qmodel.classes()];
        group.throughput(Throughput::Elements(arch.macs()));
        group.bench_function(BenchmarkId::new("core", arch.name), |b| {
            b.iter(|| {
                qmodel
                    .forward_int8(black_box(&codes), &mut arena, &mut logits)
                    .unwrap()
            })
        });
    }
    group.finish();
}

/// The paper net's layers one by one, on realistic activations of the right shapes; the
/// peer runs the same weights through `conv2d`, `linear`, `max_pool2d` and host-train's LRN
/// (composed from tensor ops, as in training). ReLU is left out (folded into neighbours in
/// both). libtorch allocates each output; the core writes into a buffer given to it (and its
/// in-place LRN pays for restoring the input first).
fn paper_layers(c: &mut Criterion) {
    let _guard = tch::no_grad_guard();
    let mut group = c.benchmark_group("paper_layers_f32");
    let kernels = native();
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(4));
    let spec = paper_init(&PAPER, 0).unwrap();
    let arch: Arch = spec.arch();
    for step in arch.walk().map(|s| s.unwrap()) {
        let name = arch.param_layer_name(step.index).map_or_else(
            || format!("{:02}_{}", step.index, step.layer.kind_name()),
            |n| format!("{:02}_{n}", step.index),
        );
        let input: Vec<f32> = (0..step.input.len())
            .map(|i| ((i * 31) % 97) as f32 / 97.0)
            .collect();
        let x = batch_of_one(&input, step.input);
        let mut out = vec![0.0f32; step.output.len()];
        let p = spec.params[step.index].as_ref();
        let (core, peer) = (
            BenchmarkId::new("core", &name),
            BenchmarkId::new("libtorch", &name),
        );
        match step.layer {
            Layer::Conv(cs) => {
                let p = p.unwrap();
                let (k, s, pad) = (cs.kernel as i64, cs.stride as i64, cs.padding as i64);
                let in_per_group = (step.input.c / cs.groups as usize) as i64;
                let w = Tensor::from_slice(&p.weight).reshape([
                    cs.out_channels as i64,
                    in_per_group,
                    k,
                    k,
                ]);
                let bias = Tensor::from_slice(&p.bias);
                let run = |x: &Tensor| {
                    x.conv2d(
                        &w,
                        Some(&bias),
                        [s, s],
                        [pad, pad],
                        [1, 1],
                        cs.groups as i64,
                    )
                };
                let g = ConvGeometry::new(&cs, step.input).unwrap();
                kernels
                    .conv2d(&g, &input, &p.weight, &p.bias, &mut out)
                    .unwrap();
                check_same(&name, &out, &run(&x));
                group.bench_function(core, |b| {
                    b.iter(|| {
                        kernels
                            .conv2d(&g, &input, &p.weight, &p.bias, &mut out)
                            .unwrap()
                    })
                });
                group.bench_function(peer, |b| b.iter(|| run(black_box(&x))));
            }
            Layer::Linear { out_features } => {
                let p = p.unwrap();
                let x = x.reshape([1, -1]);
                let w = Tensor::from_slice(&p.weight).reshape([out_features as i64, -1]);
                let bias = Tensor::from_slice(&p.bias);
                kernels
                    .linear(&input, &p.weight, &p.bias, &mut out)
                    .unwrap();
                check_same(&name, &out, &x.linear(&w, Some(&bias)));
                group.bench_function(core, |b| {
                    b.iter(|| {
                        kernels
                            .linear(&input, &p.weight, &p.bias, &mut out)
                            .unwrap()
                    })
                });
                group.bench_function(peer, |b| b.iter(|| black_box(&x).linear(&w, Some(&bias))));
            }
            Layer::Lrn(l) => {
                let mut buf = input.clone();
                kernels.lrn(&mut buf, step.input, &l).unwrap();
                check_same(&name, &buf, &host_train::lrn::lrn(&x, &l));
                group.bench_function(core, |b| {
                    b.iter(|| {
                        buf.copy_from_slice(&input);
                        kernels.lrn(&mut buf, step.input, &l).unwrap()
                    })
                });
                group.bench_function(peer, |b| b.iter(|| host_train::lrn::lrn(black_box(&x), &l)));
            }
            Layer::MaxPool(ps) => {
                let (w, s) = (ps.window as i64, ps.stride as i64);
                let run = |x: &Tensor| x.max_pool2d([w, w], [s, s], [0, 0], [1, 1], false);
                let g = PoolGeometry::new(&ps, step.input).unwrap();
                kernels.max_pool(&g, &input, &mut out).unwrap();
                check_same(&name, &out, &run(&x));
                group.bench_function(core, |b| {
                    b.iter(|| kernels.max_pool(&g, &input, &mut out).unwrap())
                });
                group.bench_function(peer, |b| b.iter(|| run(black_box(&x))));
            }
            _ => {}
        }
    }
    group.finish();
}

/// The paper net on two threads, unfused (a fused chain's per-row calls are too small to
/// split): the core's kernels split by output channels
/// (`alexnet_host::parallel`) against libtorch with two intra-op threads; f32 and int8.
fn paper_two_threads(c: &mut Criterion) {
    use alexnet_host::parallel::Parallel;
    let _guard = tch::no_grad_guard();
    let threads = Parallel::new(2).unwrap();
    let mut group = c.benchmark_group("forward_2_threads");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let arch = &PAPER;
    let spec = paper_init(arch, 0).unwrap();
    let file = BlobFile::from_bytes(&spec.to_blob().unwrap(), arch.name);
    let model = file.model().unwrap();
    let input = test_input(arch);
    let mut arena = vec![0u8; model.observed_arena_bytes()];
    let mut logits = vec![0.0f32; model.classes()];
    let net = Net::from_spec(&spec, Device::Cpu).unwrap();
    let x = batch_of_one(&input, arch.input);
    model
        .run(
            &input,
            &mut arena,
            &mut logits,
            RunOptions::new().kernels(&threads).unfused(),
        )
        .unwrap();
    check_same("paper, two threads", &logits, &net.forward_t(&x, false));
    group.throughput(Throughput::Elements(arch.macs()));
    group.bench_function(BenchmarkId::new("core", "paper"), |b| {
        b.iter(|| {
            model
                .run(
                    black_box(&input),
                    &mut arena,
                    &mut logits,
                    RunOptions::new().kernels(&threads).unfused(),
                )
                .unwrap()
        })
    });
    tch::set_num_threads(2);
    group.bench_function(BenchmarkId::new("libtorch", "paper"), |b| {
        b.iter(|| net.forward_t(black_box(&x), false))
    });
    tch::set_num_threads(1);

    let (qfile, codes) = quantized(arch, &model);
    let qmodel = qfile.model().unwrap();
    let mut qarena = vec![0u8; qmodel.observed_arena_bytes()];
    let mut qlogits = vec![0i8; qmodel.classes()];
    group.bench_function(BenchmarkId::new("core", "paper-int8"), |b| {
        b.iter(|| {
            qmodel
                .run(
                    black_box(&codes),
                    &mut qarena,
                    &mut qlogits,
                    RunOptions::new().kernels(&threads).unfused(),
                )
                .unwrap()
        })
    });
    group.finish();
}

fn main() {
    // Before any libtorch work: the inter-op pool cannot be resized once it has started.
    tch::set_num_threads(1);
    tch::set_num_interop_threads(1);
    eprintln!(
        "libtorch: {} intra-op thread(s), {} inter-op thread(s), mkldnn {}, mkl {}, openmp {}",
        tch::get_num_threads(),
        tch::get_num_interop_threads(),
        tch::utils::has_mkldnn(),
        tch::utils::has_mkl(),
        tch::utils::has_openmp(),
    );
    let mut criterion = Criterion::default().configure_from_args();
    whole_nets(&mut criterion);
    whole_nets_int8(&mut criterion);
    paper_layers(&mut criterion);
    paper_two_threads(&mut criterion);
    onnxruntime::peer(&mut criterion);
    criterion.final_summary();
}
