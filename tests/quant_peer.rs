//! The core's int8 quantization against ONNX Runtime's static int8 (QDQ, per-channel weights)
//! on the same f32 weights and the same calibration and evaluation inputs: SQNR of the logits
//! against the f32 model's, and top-1/top-5 agreement with it.
//!
//! The micro net (PyTorch's export in `tests/data/onnx/`, Fashion-MNIST images) runs in the
//! default test; torchvision's net from a `torch.save` checkpoint (photographs, ten crops
//! each) is long and runs with `cargo xtask quant-peer`.

use alexnet_host::quantize::{self, Comparison, Method};
use alexnet_host::{dataset, npy, BlobFile, ModelSpec};
use std::path::Path;

use alexnet_tests::{venv_python, workspace_root as root};

/// How an int8 model's logits compare with the f32 model's.
#[derive(Debug)]
struct Agreement {
    sqnr_db: f64,
    top1: f64,
    top5: f64,
}

fn agreement(reference: &[Vec<f32>], int8: &[Vec<f32>]) -> Agreement {
    let (mut signal, mut noise, mut top1, mut top5) = (0f64, 0f64, 0usize, 0usize);
    for (r, q) in reference.iter().zip(int8) {
        for (&a, &b) in r.iter().zip(q) {
            signal += f64::from(a) * f64::from(a);
            noise += f64::from(a - b) * f64::from(a - b);
        }
        let rank = |v: &[f32]| {
            let mut order: Vec<usize> = (0..v.len()).collect();
            order.sort_by(|&x, &y| v[y].total_cmp(&v[x]));
            order
        };
        let (best, theirs) = (rank(r)[0], rank(q));
        top1 += usize::from(theirs[0] == best);
        top5 += usize::from(theirs[..5.min(theirs.len())].contains(&best));
    }
    let n = reference.len() as f64;
    Agreement {
        sqnr_db: 10.0 * (signal / noise.max(1e-30)).log10(),
        top1: top1 as f64 / n,
        top5: top5 as f64 / n,
    }
}

fn write_inputs(path: &Path, inputs: &[Vec<f32>]) {
    npy::write_f32_matrix(path, inputs.len(), inputs[0].len(), &inputs.concat()).unwrap();
}

/// Quantizes `f32` both ways on `calibration` (the core with 99.99th-percentile ranges and
/// min/max logits, and with min/max everywhere, the `quantize` tool's default; ONNX Runtime
/// with its min/max calibration, [`ORT_RUNS`]) and measures every int8 model's logits against
/// the f32 model's on `evaluation`. Returns the core's default and ONNX Runtime's runs, in
/// the order of [`ORT_RUNS`].
fn compare(
    name: &str,
    f32: &ModelSpec,
    calibration: &[Vec<f32>],
    evaluation: &[Vec<f32>],
) -> (Agreement, Vec<Agreement>) {
    let dir = tempfile::tempdir().unwrap();
    let f32_blob = BlobFile::from_bytes(&f32.to_blob().unwrap(), "f32.blob");
    let f32_model = f32_blob.model().unwrap();
    let cal = quantize::calibrate(&f32_model, calibration, |_| {}).unwrap();
    let mut reference = Vec::new();
    let mut core = Vec::new();
    for method in [Method::MinMax, Method::Percentile(99.99)] {
        let (int8, _) = quantize::quantize(&f32_model, &cal, method).unwrap();
        let int8_blob = BlobFile::from_bytes(&int8.to_blob().unwrap(), "int8.blob");
        let int8_model = int8_blob.model().unwrap();
        let mut comparison = Comparison::new(&f32_model, &int8_model).unwrap();
        let (mut f32_logits, mut int8_logits) = (Vec::new(), Vec::new());
        for x in evaluation {
            let logits = comparison.add(x).unwrap();
            f32_logits.push(logits.f32);
            int8_logits.push(logits.int8);
        }
        reference = f32_logits;
        core.push((method, int8_logits));
    }

    let onnx = dir.path().join("f32.onnx");
    alexnet_host::onnx::save(f32, &onnx).unwrap();
    write_inputs(&dir.path().join("calibration.npy"), calibration);
    write_inputs(&dir.path().join("evaluation.npy"), evaluation);
    venv_python(
        "ONNX Runtime's quantization",
        [
            root().join("tests/python/ort_static_int8.py"),
            onnx,
            dir.path().join("calibration.npy"),
            dir.path().join("evaluation.npy"),
            dir.path().to_path_buf(),
        ],
    );
    let read = |file: &str| -> Vec<Vec<f32>> {
        let (shape, data) = npy::read::<f32>(dir.path().join(file)).unwrap();
        data.chunks_exact(shape[1]).map(<[f32]>::to_vec).collect()
    };
    // ONNX Runtime's f32 model computes the core's f32 logits (to rounding).
    let same = agreement(&reference, &read("ort_f32.npy"));
    assert!(
        same.sqnr_db > 80.0 && same.top1 == 1.0,
        "{name}: f32 differs: {same:?}"
    );
    println!(
        "{name}, {} calibration and {} evaluation inputs, int8 logits against the f32 ones:",
        calibration.len(),
        evaluation.len()
    );
    println!(
        "  {:<58} {:>8} {:>7} {:>7}",
        "int8", "SQNR dB", "top-1", "top-5"
    );
    let row = |who: &str, a: &Agreement| {
        println!(
            "  {:<58} {:>8.2} {:>6.1}% {:>6.1}%",
            who,
            a.sqnr_db,
            a.top1 * 100.0,
            a.top5 * 100.0
        );
    };
    let mut core_default = None;
    for (method, logits) in &core {
        let a = agreement(&reference, logits);
        row(&format!("alexnet-core, {method:?} (logits MinMax)"), &a);
        core_default.get_or_insert(a);
    }
    let ort: Vec<Agreement> = ORT_RUNS
        .iter()
        .map(|(file, who)| {
            let a = agreement(&reference, &read(file));
            row(who, &a);
            a
        })
        .collect();
    (core_default.unwrap(), ort)
}

/// ONNX Runtime's int8 runs that `tests/python/ort_static_int8.py` writes, and their names.
const ORT_RUNS: [(&str, &str); 3] = [
    ("ort_u8s8.npy", "ONNX Runtime QDQ u8s8, its int8 kernels"),
    (
        "ort_u8s8_simulated.npy",
        "ONNX Runtime QDQ u8s8, simulated in f32 (no kernel limits)",
    ),
    ("ort_u8u8.npy", "ONNX Runtime QDQ u8u8, its int8 kernels"),
];

#[test]
fn micro_int8_logits_against_onnx_runtime_s() {
    let f32 = alexnet_host::onnx::load(&root().join("tests/data/onnx/micro.onnx"), None).unwrap();
    let model_blob = BlobFile::from_bytes(&f32.to_blob().unwrap(), "f32.blob");
    let model = model_blob.model().unwrap();
    let dir = Path::new(alexnet_host::idx::FASHION_MNIST_DIR);
    let load = |file: &str, n| {
        dataset::from_idx(&dir.join(file), n, model.preprocess(), model.arch().input)
            .unwrap()
            .inputs
    };
    let calibration = load("train-images-idx3-ubyte.gz", 100);
    let evaluation = load("t10k-images-idx3-ubyte.gz", 500);
    let (core, ort) = compare("micro (PyTorch's export)", &f32, &calibration, &evaluation);
    // A sound quantization, like ONNX Runtime's best (the figures go to the closing notes and
    // docs/quantization.md; which is ahead is a measurement, not a test).
    assert!(core.sqnr_db > 25.0 && core.top1 >= 0.95, "{core:?}");
    assert!(ort.iter().any(|o| o.sqnr_db > 25.0), "{ort:?}");
}

/// torchvision's AlexNet as `torch.save` writes it (`torchvision.models.alexnet()`, its own
/// initialization, seed 0: no pretrained weights can be downloaded here), calibrated on the
/// centre crops of `tests/data/photos` and evaluated on their ten crops.
#[test]
#[ignore = "long (a 244 MB net quantized twice): cargo xtask quant-peer"]
fn torchvision_int8_logits_against_onnx_runtime_s() {
    let dir = tempfile::tempdir().unwrap();
    let pth = dir.path().join("alexnet.pth");
    let script = "import sys, torch, torchvision; torch.manual_seed(0); \
                  torch.save(torchvision.models.alexnet().state_dict(), sys.argv[1])";
    venv_python(
        "torch.save of torchvision's alexnet",
        [std::ffi::OsStr::new("-c"), script.as_ref(), pth.as_os_str()],
    );
    let f32 = alexnet_host::weights::load(&pth, Some(&alexnet_core::builtin::TORCHVISION)).unwrap();
    let blob = BlobFile::from_bytes(&f32.to_blob().unwrap(), "f32.blob");
    let model = blob.model().unwrap();
    let photos = dataset::image_files(&root().join("tests/data/photos")).unwrap();
    let (prep, input) = (model.preprocess(), model.arch().input);
    let calibration: Vec<Vec<f32>> = photos
        .iter()
        .map(|p| alexnet_host::image_input::load_image(p, prep, input).unwrap())
        .collect();
    let evaluation: Vec<Vec<f32>> = photos
        .iter()
        .flat_map(|p| alexnet_host::image_input::load_ten_crops(p, prep, input).unwrap())
        .collect();
    let (core, ort) = compare(
        "torchvision (torch.save, seed 0)",
        &f32,
        &calibration,
        &evaluation,
    );
    assert!(core.sqnr_db > 20.0, "{core:?}");
    assert!(ort.iter().any(|o| o.sqnr_db > 20.0), "{ort:?}");
}
