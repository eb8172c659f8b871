//! ONNX Runtime as a peer, in the same run as the core: for the paper and torchvision nets,
//! the bench writes the net as ONNX (`alexnet_host::onnx`, what `alexnet export` writes), the
//! core's f32 logits and the int8 calibration inputs into `target/onnxruntime-peer/<net>/`,
//! and `onnxruntime_peer.py` (the project venv's `onnxruntime`) checks ONNX Runtime's logits
//! against the core's, quantizes it with ONNX Runtime's static QDQ quantization (per-channel weights,
//! the same calibration inputs) and times f32 and int8 at batch 1 and 8 on one intra-op
//! thread. Its medians go to `<criterion>/onnxruntime/<net>.json` for `bench-summary`; the
//! core's batch of 8 (eight passes in a row, one thread) is benched here as `batch_8`.

use alexnet_core::Arch;
use alexnet_host::ModelSpec;
use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The workspace's `target/` (or `$CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Where criterion writes (`bench-summary` reads the same place).
fn criterion_dir() -> PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("criterion"))
}

fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Writes what the script needs and runs it; its JSON result.
fn run_peer(
    arch: &Arch<'_>,
    spec: &ModelSpec,
    logits: &[f32],
    calibration: &[Vec<f32>],
) -> serde_json::Value {
    let dir = target_dir().join("onnxruntime-peer").join(arch.name);
    std::fs::create_dir_all(&dir).unwrap();
    alexnet_host::onnx::save(spec, dir.join("f32.onnx")).unwrap();
    let net = serde_json::json!({
        "name": arch.name,
        "input": [arch.input.c, arch.input.h, arch.input.w],
        "seconds": 3.0,
    });
    std::fs::write(dir.join("net.json"), net.to_string()).unwrap();
    write_f32(&dir.join("core-logits.f32"), logits);
    write_f32(&dir.join("calibration.f32"), &calibration.concat());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("onnxruntime_peer.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&dir)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e} (`cargo xtask bench` sets it up)",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "the ONNX Runtime peer failed (`cargo xtask bench` installs onnxruntime and onnx into .venv):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let result: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("the ONNX Runtime peer printed {text:?}: {e}"));
    let store = criterion_dir().join("onnxruntime");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(
        store.join(format!("{}.json", arch.name)),
        result.to_string(),
    )
    .unwrap();
    eprintln!("onnxruntime peer, {}: {result}", arch.name);
    result
}

/// The peer for the paper and torchvision nets, and the core's batch of 8 beside it.
pub fn peer(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_8");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for arch in [
        &alexnet_core::builtin::PAPER,
        &alexnet_core::builtin::TORCHVISION,
    ] {
        let spec = alexnet_host::init::paper_init(arch, 0).unwrap();
        let file = alexnet_host::BlobFile::from_bytes(&spec.to_blob().unwrap(), arch.name);
        let model = file.model().unwrap();
        let inputs = crate::calibration_inputs(arch, &model);
        // The arena of whole layers, as `alexnet infer` gives: the kernels choose fused or
        // whole (`Kernels::prefers_whole_layers`).
        let mut arena = vec![0u8; model.observed_arena_bytes()];
        let mut logits = vec![0.0f32; model.classes()];
        model.forward(&inputs[0], &mut arena, &mut logits).unwrap();
        run_peer(arch, &spec, &logits, &inputs);

        let (qfile, codes) = crate::quantized(arch, &model);
        let qmodel = qfile.model().unwrap();
        let mut qlogits = vec![0i8; qmodel.classes()];
        group.throughput(Throughput::Elements(8 * arch.macs()));
        group.bench_function(BenchmarkId::new("core", arch.name), |b| {
            b.iter(|| {
                for _ in 0..8 {
                    model
                        .forward(black_box(&inputs[0]), &mut arena, &mut logits)
                        .unwrap();
                }
            })
        });
        group.bench_function(
            BenchmarkId::new("core", format!("{}-int8", arch.name)),
            |b| {
                b.iter(|| {
                    for _ in 0..8 {
                        qmodel
                            .forward_int8(black_box(&codes), &mut arena, &mut qlogits)
                            .unwrap();
                    }
                })
            },
        );
    }
    group.finish();
}
