//! The `quantize` command as a user runs it.

use alexnet_host::idx::FASHION_MNIST_DIR;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn quantize(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quantize"))
        .args(args)
        .output()
        .expect("run quantize")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn test_images() -> PathBuf {
    let p = Path::new(FASHION_MNIST_DIR).join("t10k-images-idx3-ubyte.gz");
    assert!(
        p.exists(),
        "{} missing: `cargo xtask test` installs dataset-fashion-mnist",
        p.display()
    );
    p
}

fn micro_f32(dir: &Path) -> (alexnet_host::ModelSpec, PathBuf) {
    let spec = alexnet_host::init::paper_init(&alexnet_core::builtin::MICRO, 9).unwrap();
    let path = dir.join("micro.blob");
    std::fs::write(&path, spec.to_blob().unwrap()).unwrap();
    (spec, path)
}

#[test]
fn blob_in_int8_blob_out_with_report() {
    let dir = tempfile::tempdir().unwrap();
    let (_, f32_blob) = micro_f32(dir.path());
    let out = dir.path().join("micro-int8.blob");
    let json = dir.path().join("report.json");
    let cal = test_images();
    let o = quantize(&[
        f32_blob.to_str().unwrap(),
        "--calibration",
        cal.to_str().unwrap(),
        "--samples",
        "64",
        "--method",
        "minmax",
        "-o",
        out.to_str().unwrap(),
        "--report-json",
        json.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    for needle in [
        "conv1+relu",
        "lrn",
        "fc8",
        "SQNR dB",
        "top-1 agreement int8 vs f32",
    ] {
        assert!(stdout.contains(needle), "report lacks {needle}:\n{stdout}");
    }
    let file = alexnet_host::BlobFile::read(&out).unwrap();
    let model = file.model().unwrap();
    assert_eq!(model.precision(), alexnet_core::Precision::Int8);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["calibration_samples"], 64);
    assert_eq!(report["method"], "MinMax, logits MinMax");
    assert!(report["top_logit_saturated"].as_f64().unwrap() <= 1.0);
    assert!(report["top5_agreement"].as_f64() >= report["top1_agreement"].as_f64());
    let layers = report["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 13);
    // A sound quantization of this net keeps every layer well above 25 dB.
    for l in layers {
        assert!(l["sqnr_db"].as_f64().unwrap() > 25.0, "{l}");
    }
    assert!(report["top1_agreement"].as_f64().unwrap() >= 0.9);

    // --logits best tries min/max and three percentiles for the logits and keeps the best.
    let o = quantize(&[
        f32_blob.to_str().unwrap(),
        "--calibration",
        cal.to_str().unwrap(),
        "--samples",
        "16",
        "--logits",
        "best",
        "-o",
        out.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    for tried in [
        "MinMax",
        "Percentile(99.99)",
        "Percentile(99.9)",
        "Percentile(99.0)",
    ] {
        assert!(
            stderr.contains(&format!("logits by {tried}: top-1 agreement")),
            "{stderr}"
        );
    }
    assert!(stdout.contains("top logit clipped at 127 on"), "{stdout}");
}

/// `weights` (a format without an architecture) is refused without `--arch`, with
/// `message`, then quantized with `--arch micro`; returns that run's output and blob path.
fn needs_arch_then_quantizes(
    weights: &Path,
    message: &str,
    dir: &Path,
) -> (std::process::Output, std::path::PathBuf) {
    let out = dir.join("q.blob");
    let cal = test_images();
    let args = [
        weights.to_str().unwrap(),
        "--calibration",
        cal.to_str().unwrap(),
        "--samples",
        "16",
        "-o",
        out.to_str().unwrap(),
    ];
    let o = quantize(&args);
    assert!(!o.status.success());
    assert!(text(&o).1.contains(message), "{}", text(&o).1);
    (quantize(&[&args[..], &["--arch", "micro"]].concat()), out)
}

#[test]
fn safetensors_in_with_arch() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, _) = micro_f32(dir.path());
    let st = dir.path().join("w.safetensors");
    alexnet_host::safetensors_io::save(&spec, &st).unwrap();
    let (o, out) = needs_arch_then_quantizes(&st, "a safetensors file needs --arch", dir.path());
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(out.exists());
}

#[test]
fn pytorch_checkpoint_in_with_arch() {
    // A real torch.save'd micro state_dict (tools/host/tests/data/make_pth_fixtures.py).
    let pth = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/tests/data/micro.pth");
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = needs_arch_then_quantizes(&pth, "a PyTorch checkpoint needs --arch", dir.path());
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("fc8"), "{stdout}");
    let file = alexnet_host::BlobFile::read(&out).unwrap();
    let model = file.model().unwrap();
    assert_eq!(model.precision(), alexnet_core::Precision::Int8);
    assert_eq!(model.arch().name, "micro");

    // The wrong net is refused with the tensor's name.
    let cal = test_images();
    let o = quantize(&[
        pth.to_str().unwrap(),
        "--calibration",
        cal.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--arch",
        "paper",
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o)
            .1
            .contains("tensor conv1.weight has shape [32, 1, 3, 3]"),
        "{}",
        text(&o).1
    );
}

#[test]
fn bad_input_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, f32_blob) = micro_f32(dir.path());
    let cal = test_images();
    let out = dir.path().join("q.blob");
    let run = |weights: &Path, calibration: &Path, extra: &[&str]| {
        let mut args = vec![
            weights.to_str().unwrap(),
            "--calibration",
            calibration.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = quantize(&args);
        assert!(!o.status.success());
        text(&o).1
    };
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(run(&f32_blob, &empty, &[]).contains("no images under"));
    assert!(run(&f32_blob, &dir.path().join("nope"), &[]).contains("cannot read"));
    assert!(
        run(&f32_blob, &cal, &["--percentile", "20"]).contains("--percentile must be in [50, 100]")
    );
    // A blob of another net than --arch names; a file of no weights format; an unknown net.
    let e = run(&f32_blob, &cal, &["--arch", "paper"]);
    assert!(e.contains("holds a micro net, not paper"), "{e}");
    let text_file = dir.path().join("weights.pth");
    std::fs::write(&text_file, "not weights").unwrap();
    let e = run(&text_file, &cal, &["--arch", "micro"]);
    assert!(e.contains("is not a weights file"), "{e}");
    let e = run(&f32_blob, &cal, &["--arch", "vgg16"]);
    assert!(
        e.contains("unknown architecture \"vgg16\"; built in: paper"),
        "{e}"
    );

    let mut nan = spec.clone();
    nan.params[16].as_mut().unwrap().weight[7] = f32::INFINITY;
    let nan_blob = dir.path().join("nan.blob");
    std::fs::write(&nan_blob, nan.to_blob().unwrap()).unwrap();
    let e = run(&nan_blob, &cal, &[]);
    assert!(
        e.contains("fc6.weight holds 1 NaN or infinite values"),
        "{e}"
    );

    // An image folder where nothing decodes.
    let junk = dir.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(junk.join("a.png"), b"not a png").unwrap();
    let e = run(&f32_blob, &junk, &[]);
    assert!(e.contains("could be used") && e.contains("a.png"), "{e}");

    // Quantizing twice.
    assert!(quantize(&[
        f32_blob.to_str().unwrap(),
        "--calibration",
        cal.to_str().unwrap(),
        "--samples",
        "8",
        "-o",
        out.to_str().unwrap()
    ])
    .status
    .success());
    assert!(run(&out, &cal, &[]).contains("already an int8 model"));
    assert!(!out.with_extension("tmp").exists());
}
