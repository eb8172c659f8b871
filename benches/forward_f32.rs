//! f32 forward pass of the core: whole nets and the paper net's heaviest layers, batch 1,
//! one thread. Run: `cargo bench -p alexnet-benches --bench forward_f32`.

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

criterion_group!(benches, whole_nets, paper_layers);
criterion_main!(benches);
