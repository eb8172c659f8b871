//! ONNX both ways, against the tools that define the format: a micro net exported by PyTorch's
//! own `torch.onnx.export` (checked in, `tests/data/onnx/`) converts into a blob whose logits
//! match PyTorch's, and the core's export runs in ONNX Runtime with the core's logits.
//! ONNX Runtime comes from the project venv (`cargo xtask test` installs it).

use alexnet_core::Model;
use alexnet_host::npy;
use std::path::PathBuf;

use alexnet_tests::{venv_python, workspace_root as root};

fn data(name: &str) -> PathBuf {
    root().join("tests/data/onnx").join(name)
}

/// The core's f32 logits for each `[C, H, W]` input of `inputs`.
fn core_logits(blob: &[u8], inputs: &[f32]) -> Vec<Vec<f32>> {
    let model = Model::parse(blob).expect("blob");
    let mut arena = vec![0u8; model.arena_bytes()];
    let per_input = model.arch().input_len();
    inputs
        .chunks_exact(per_input)
        .map(|x| {
            let mut logits = vec![0.0f32; model.arch().classes()];
            model.forward(x, &mut arena, &mut logits).expect("forward");
            logits
        })
        .collect()
}

/// Largest absolute difference, and the largest logit's magnitude for scale.
fn worst(a: &[Vec<f32>], b: &[f32]) -> (f32, f32) {
    let a: Vec<f32> = a.concat();
    assert_eq!(a.len(), b.len());
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    (diff, b.iter().map(|v| v.abs()).fold(0.0, f32::max))
}

#[test]
fn a_net_exported_by_pytorch_converts_and_gives_pytorchs_logits() {
    let spec = alexnet_host::onnx::load(&data("micro.onnx"), None).expect("convert");
    // The graph is the built-in micro net (LRN's alpha in ONNX's convention, alpha / n).
    assert_eq!(spec.name, "micro");
    assert_eq!(spec.layers, alexnet_core::builtin::MICRO.layers);
    let (shape, inputs) = npy::read::<f32>(data("inputs.npy")).unwrap();
    assert_eq!(shape, [4, 1, 28, 28]);
    let (_, expected) = npy::read::<f32>(data("torch_logits.npy")).unwrap();
    let logits = core_logits(&spec.to_blob().unwrap(), &inputs);
    let (diff, scale) = worst(&logits, &expected);
    println!("core vs PyTorch on 4 Fashion-MNIST images: largest difference {diff:.2e} (logits up to {scale:.2})");
    // f32 with other summation orders: a few units of 2^-24 of the logits' size per layer.
    assert!(diff <= 1e-5 * scale.max(1.0) * 10.0, "{diff}");
    for (ours, theirs) in logits.iter().zip(expected.chunks_exact(10)) {
        let top = |v: &[f32]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
        assert_eq!(top(ours), top(theirs));
    }
}

#[test]
fn the_core_s_export_runs_in_onnx_runtime_with_the_core_s_logits() {
    let dir = tempfile::tempdir().unwrap();
    let (_, inputs) = npy::read::<f32>(data("inputs.npy")).unwrap();
    // PyTorch's micro net, and the paper's initialization of the same net as a second model.
    let torch = alexnet_host::onnx::load(&data("micro.onnx"), None).unwrap();
    let paper = alexnet_host::init::paper_init(&alexnet_core::builtin::MICRO, 7).unwrap();
    for (name, spec) in [("torch", torch), ("paper-init", paper)] {
        let onnx = dir.path().join(format!("{name}.onnx"));
        alexnet_host::onnx::save(&spec, &onnx).unwrap();
        let out = dir.path().join(format!("{name}.npy"));
        let script = root().join("tests/python/onnxruntime_logits.py");
        let args = [script, onnx.clone(), data("inputs.npy"), out.clone()];
        venv_python(&format!("ONNX Runtime on the export of {name}"), &args);
        let (shape, ort) = npy::read::<f32>(&out).unwrap();
        assert_eq!(shape, [4, 10]);
        let logits = core_logits(&spec.to_blob().unwrap(), &inputs);
        let (diff, scale) = worst(&logits, &ort);
        println!("{name}: core vs ONNX Runtime on the core's export: largest difference {diff:.2e} (logits up to {scale:.2})");
        assert!(diff <= 1e-5 * scale.max(1.0) * 10.0, "{name}: {diff}");
    }
}
