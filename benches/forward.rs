//! Forward pass of the core: whole nets in f32 and int8, and the paper net's layers in f32,
//! batch 1, one thread. Run: `cargo bench -p alexnet-benches --bench forward`.

use alexnet_core::builtin::{MICRO, PAPER, TORCHVISION};
use alexnet_core::{layers, Arch, Layer};
use alexnet_host::init::paper_init;
use alexnet_host::BlobFile;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

fn whole_nets(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward_f32");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for arch in [&MICRO, &PAPER, &TORCHVISION] {
        let file =
            BlobFile::from_bytes(&paper_init(arch, 0).unwrap().to_blob().unwrap(), arch.name);
        let model = file.model().unwrap();
        let input: Vec<f32> = (0..arch.input_len())
            .map(|i| ((i * 7919) % 255) as f32 / 64.0 - 2.0)
            .collect();
        let mut arena = vec![0u8; model.arena_bytes()];
        let mut logits = vec![0.0f32; model.classes()];
        group.throughput(Throughput::Elements(arch.macs()));
        group.bench_function(BenchmarkId::from_parameter(arch.name), |b| {
            b.iter(|| {
                model
                    .forward(black_box(&input), &mut arena, &mut logits)
                    .unwrap()
            })
        });
    }
    group.finish();
}

/// The int8 path of the same nets, quantized on two synthetic inputs (timing does not
/// depend on the calibration).
fn whole_nets_int8(c: &mut Criterion) {
    use alexnet_host::quantize::{self, Method};
    let mut group = c.benchmark_group("forward_int8");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for arch in [&MICRO, &PAPER, &TORCHVISION] {
        let spec = paper_init(arch, 0).unwrap();
        let file = BlobFile::from_bytes(&spec.to_blob().unwrap(), arch.name);
        let model = file.model().unwrap();
        let images = std::path::Path::new(alexnet_host::idx::FASHION_MNIST_DIR)
            .join("t10k-images-idx3-ubyte.gz");
        let inputs = alexnet_host::dataset::from_idx(&images, 2, model.preprocess(), arch.input)
            .unwrap()
            .inputs;

        let cal = quantize::calibrate(&model, &inputs, |_| {}).unwrap();
        let (int8, _) = quantize::quantize(&spec, &cal, Method::MinMax).unwrap();
        let qfile = BlobFile::from_bytes(&int8.to_blob().unwrap(), arch.name);
        let qmodel = qfile.model().unwrap();
        let mut codes = vec![0i8; arch.input_len()];
        qmodel.quantize_input(&inputs[0], &mut codes).unwrap();
        let mut arena = vec![0u8; qmodel.arena_bytes()];
        let mut logits = vec![0i8; qmodel.classes()];
        group.throughput(Throughput::Elements(arch.macs()));
        group.bench_function(BenchmarkId::from_parameter(arch.name), |b| {
            b.iter(|| {
                qmodel
                    .forward_int8(black_box(&codes), &mut arena, &mut logits)
                    .unwrap()
            })
        });
    }
    group.finish();
}

/// The paper net's layers one by one, on realistic activations of the right shapes.
fn paper_layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("paper_layers_f32");
    group
        .sample_size(10)
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
        let mut out = vec![0.0f32; step.output.len()];
        let p = spec.params[step.index].as_ref();
        match step.layer {
            Layer::Conv(cs) => {
                let p = p.unwrap();
                group.bench_function(&name, |b| {
                    b.iter(|| {
                        layers::conv2d(&input, step.input, &cs, &p.weight, &p.bias, &mut out)
                            .unwrap()
                    })
                });
            }
            Layer::Linear { .. } => {
                let p = p.unwrap();
                group.bench_function(&name, |b| {
                    b.iter(|| layers::linear(&input, &p.weight, &p.bias, &mut out).unwrap())
                });
            }
            Layer::Lrn(l) => {
                let mut buf = input.clone();
                group.bench_function(&name, |b| {
                    b.iter(|| {
                        buf.copy_from_slice(&input);
                        layers::lrn_in_place(&mut buf, step.input, &l).unwrap()
                    })
                });
            }
            Layer::MaxPool(ps) => {
                group.bench_function(&name, |b| {
                    b.iter(|| layers::max_pool(&input, step.input, &ps, &mut out).unwrap())
                });
            }
            _ => {}
        }
    }
    group.finish();
}

criterion_group!(benches, whole_nets, whole_nets_int8, paper_layers);
criterion_main!(benches);
