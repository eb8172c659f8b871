//! The `alexnet` command as a user runs it, on real Fashion-MNIST images.

use alexnet_host::idx::FASHION_MNIST_DIR;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn alexnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alexnet"))
        .args(args)
        .output()
        .expect("run alexnet")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fashion_mnist(file: &str) -> PathBuf {
    let p = Path::new(FASHION_MNIST_DIR).join(file);
    assert!(
        p.exists(),
        "{} is missing: `cargo xtask test` installs it (apt-get install dataset-fashion-mnist)",
        p.display()
    );
    p
}

/// Real test images as PNG files, enlarged `scale` times.
fn real_images(dir: &Path, count: usize, scale: u32) -> Vec<PathBuf> {
    let images = fashion_mnist("t10k-images-idx3-ubyte.gz");
    let labels = fashion_mnist("t10k-labels-idx1-ubyte.gz");
    let out = alexnet(&[
        "extract-idx",
        images.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--count",
        &count.to_string(),
        "--scale",
        &scale.to_string(),
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().map(PathBuf::from).collect()
}

#[test]
fn init_info_infer_paper_net_on_real_images() {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("paper.blob");
    let out = alexnet(&[
        "init",
        "--arch",
        "paper",
        "--seed",
        "3",
        "-o",
        blob.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let info = alexnet(&["info", blob.to_str().unwrap()]);
    assert!(info.status.success(), "{}", stderr(&info));
    let text = stdout(&info);
    for needle in [
        "arch        paper, input 3x227x227",
        "60,965,224 parameters, 724,406,816 MACs (724.4 M)",
        "conv2    256 @ 5x5 /1 pad 2 groups 2           256x27x27      307,456    223,948,800",
        "lrn      n=5 k=2 a=0.0001 b=0.75 (paper)",
        "arena       636,479 bytes, fused conv/pool chains (1,441,599 to see every layer whole",
        "labels      1000 classes",
    ] {
        assert!(text.contains(needle), "info lacks {needle:?}:\n{text}");
    }

    let images = real_images(&dir.path().join("img"), 3, 9);
    let npy = dir.path().join("logits.npy");
    let mut args = vec!["infer", blob.to_str().unwrap()];
    args.extend(images.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--top", "3", "--logits-out", npy.to_str().unwrap()]);
    let out = alexnet(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        text.lines().filter(|l| l.contains("(f32 forward ")).count(),
        3,
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.trim_start().starts_with("1."))
            .count(),
        3,
        "{text}"
    );

    // The .npy holds exactly what the core computes for the same preprocessed images.
    let (rows, cols, logits) = alexnet_host::npy::read_f32_matrix(&npy).unwrap();
    assert_eq!((rows, cols), (3, 1000));
    let file = alexnet_host::BlobFile::read(&blob).unwrap();
    let model = file.model().unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut expect = vec![0.0f32; 1000];
    for (i, img) in images.iter().enumerate() {
        let input =
            alexnet_host::image_input::load_image(img, model.preprocess(), model.arch().input)
                .unwrap();
        model.forward(&input, &mut arena, &mut expect).unwrap();
        assert_eq!(&logits[i * 1000..(i + 1) * 1000], &expect[..], "image {i}");
    }
}

#[test]
fn micro_net_reads_28x28_grey_images_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("micro.blob");
    assert!(
        alexnet(&["init", "--arch", "micro", "-o", blob.to_str().unwrap()])
            .status
            .success()
    );
    let images = real_images(&dir.path().join("img"), 2, 1);
    let out = alexnet(&[
        "infer",
        blob.to_str().unwrap(),
        images[0].to_str().unwrap(),
        images[1].to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let labels = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ];
    let text = stdout(&out);
    let first = text
        .lines()
        .find(|l| l.trim_start().starts_with("1."))
        .unwrap();
    assert!(labels.iter().any(|l| first.ends_with(l)), "{first}");
}

#[test]
fn bad_input_gives_clear_errors_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();

    let out = alexnet(&["init", "--arch", "vgg16", "-o", &d("x.blob")]);
    assert!(!out.status.success());
    assert!(stderr(&out)
        .contains("unknown architecture \"vgg16\"; built in: paper, caffe, torchvision, micro"));

    let out = alexnet(&["info", &d("missing.blob")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read model blob"),
        "{}",
        stderr(&out)
    );

    std::fs::write(d("text.blob"), "hello, I am not a model").unwrap();
    let out = alexnet(&["info", &d("text.blob")]);
    assert!(
        stderr(&out).contains("not an AlexNet model blob (bad magic bytes)"),
        "{}",
        stderr(&out)
    );

    assert!(alexnet(&["init", "--arch", "micro", "-o", &d("m.blob")])
        .status
        .success());
    let mut bytes = std::fs::read(d("m.blob")).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x10;
    std::fs::write(d("corrupt.blob"), &bytes).unwrap();
    let out = alexnet(&["info", &d("corrupt.blob")]);
    let err = stderr(&out);
    assert!(
        err.contains("invalid model blob") && err.contains("blob corrupt: CRC-32"),
        "{err}"
    );
    std::fs::write(d("short.blob"), &bytes[..100]).unwrap();
    let out = alexnet(&["info", &d("short.blob")]);
    assert!(
        stderr(&out).contains("blob length mismatch"),
        "{}",
        stderr(&out)
    );

    let out = alexnet(&["infer", &d("m.blob"), &d("nope.png")]);
    assert!(
        stderr(&out).contains("cannot open image") && stderr(&out).contains("nope.png"),
        "{}",
        stderr(&out)
    );
    std::fs::write(d("fake.png"), "not a png").unwrap();
    let out = alexnet(&["infer", &d("m.blob"), &d("fake.png")]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("fake.png"), "{}", stderr(&out));

    // An image smaller than the paper net's crop (after its resize) is refused with sizes.
    assert!(
        alexnet(&["init", "--arch", "torchvision", "-o", &d("tv.blob")])
            .status
            .success()
    );
    image::RgbImage::new(600, 20).save(d("strip.png")).unwrap();
    let out = alexnet(&["infer", &d("tv.blob"), &d("strip.png")]);
    assert!(
        out.status.success(),
        "a 600x20 strip resizes to 7680x256 and crops: {}",
        stderr(&out)
    );
}

#[test]
fn info_warns_about_nan_weights() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = alexnet_host::init::paper_init(&alexnet_core::builtin::MICRO, 0).unwrap();
    spec.params[4].as_mut().unwrap().bias[3] = f32::NAN;
    let path = dir.path().join("nan.blob");
    std::fs::write(&path, spec.to_blob().unwrap()).unwrap();
    let out = alexnet(&["info", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("warning: conv2.bias has 1 NaN or infinite values"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn int8_blobs_infer_and_diff() {
    use alexnet_host::quantize::{self, Method};
    let dir = tempfile::tempdir().unwrap();
    let spec = alexnet_host::init::paper_init(&alexnet_core::builtin::MICRO, 4).unwrap();
    let f32_path = dir.path().join("micro.blob");
    std::fs::write(&f32_path, spec.to_blob().unwrap()).unwrap();
    let f32_file = alexnet_host::BlobFile::read(&f32_path).unwrap();
    let f32_model = f32_file.model().unwrap();
    let samples = alexnet_host::dataset::from_idx(
        &fashion_mnist("t10k-images-idx3-ubyte.gz"),
        32,
        f32_model.preprocess(),
        f32_model.arch().input,
    )
    .unwrap();
    let cal = quantize::calibrate(&f32_model, &samples.inputs, |_| {}).unwrap();
    let (int8, _) = quantize::quantize(&f32_model, &cal, Method::MinMax).unwrap();
    let int8_path = dir.path().join("micro-int8.blob");
    std::fs::write(&int8_path, int8.to_blob().unwrap()).unwrap();
    let images = real_images(&dir.path().join("img"), 2, 1);
    let img = images[0].to_str().unwrap();

    let npy = dir.path().join("l.npy");
    let out = alexnet(&[
        "infer",
        int8_path.to_str().unwrap(),
        img,
        "--logits-out",
        npy.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("(int8 forward "), "{}", stdout(&out));
    // The logits written are the dequantized int8 logits of the core.
    let (_, _, logits) = alexnet_host::npy::read_f32_matrix(&npy).unwrap();
    let file = alexnet_host::BlobFile::read(&int8_path).unwrap();
    let model = file.model().unwrap();
    let input =
        alexnet_host::image_input::load_image(&images[0], model.preprocess(), model.arch().input)
            .unwrap();
    let mut codes = vec![0i8; 784];
    model.quantize_input(&input, &mut codes).unwrap();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut q = [0i8; 10];
    model.forward_int8(&codes, &mut arena, &mut q).unwrap();
    let mut expect = [0.0f32; 10];
    model.dequantize_logits(&q, &mut expect).unwrap();
    assert_eq!(logits, expect);

    // --threads: the same logits from one thread and from three (conv1's 28 rows split by
    // rows, the rest by channels), in both precisions.
    for blob in [&int8_path, &f32_path] {
        let run = |threads: &str| {
            let npy = dir.path().join(format!("threads-{threads}.npy"));
            let out = alexnet(&[
                "infer",
                blob.to_str().unwrap(),
                images[0].to_str().unwrap(),
                images[1].to_str().unwrap(),
                "--threads",
                threads,
                "--logits-out",
                npy.to_str().unwrap(),
            ]);
            assert!(out.status.success(), "{}", stderr(&out));
            let label = if threads == "1" {
                "1 thread)"
            } else {
                "3 threads)"
            };
            assert!(stdout(&out).contains(label), "{}", stdout(&out));
            std::fs::read(npy).unwrap()
        };
        assert_eq!(run("1"), run("3"), "{}", blob.display());
    }

    let out = alexnet(&[
        "diff",
        f32_path.to_str().unwrap(),
        int8_path.to_str().unwrap(),
        img,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let rows = text
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.parse::<usize>().is_ok())
        })
        .count();
    assert_eq!(rows, 13, "{text}");
    assert!(
        text.contains("conv1+relu") && text.contains("top-5 int8:") && text.contains("top-1 "),
        "{text}"
    );

    let out = alexnet(&[
        "diff",
        int8_path.to_str().unwrap(),
        f32_path.to_str().unwrap(),
        img,
    ]);
    assert!(
        stderr(&out).contains("is not an f32 model"),
        "{}",
        stderr(&out)
    );
    let info = alexnet(&["info", int8_path.to_str().unwrap()]);
    assert!(
        stdout(&info).contains("precision   int8 (input scale"),
        "{}",
        stdout(&info)
    );
    assert!(
        stdout(&info).contains("arena       14,239 bytes, fused conv/pool chains (30,559 to see"),
        "{}",
        stdout(&info)
    );
}

/// Runs `alexnet` with the file-size limit at `kib` KiB (SIGXFSZ ignored, so a write past it
/// fails with EFBIG as a full disk fails with ENOSPC: the same error path).
fn alexnet_with_file_limit(kib: u32, args: &[&str]) -> Output {
    let bin = env!("CARGO_BIN_EXE_alexnet");
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -f {kib}; trap '' XFSZ; exec \"$0\" \"$@\""))
        .arg(bin)
        .args(args)
        .output()
        .expect("run alexnet under sh")
}

#[test]
fn a_full_disk_leaves_no_half_written_blob() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("paper.blob");
    // 244 MB of weights into a 1 MiB limit.
    let o = alexnet_with_file_limit(
        1024,
        &["init", "--arch", "paper", "-o", out.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot write") && stderr(&o).contains("disk full?"),
        "{}",
        stderr(&o)
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // An existing blob under that name survives a failed overwrite intact.
    assert!(
        alexnet(&["init", "--arch", "micro", "-o", out.to_str().unwrap()])
            .status
            .success()
    );
    let before = std::fs::read(&out).unwrap();
    let o = alexnet_with_file_limit(
        1024,
        &["init", "--arch", "paper", "-o", out.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert_eq!(std::fs::read(&out).unwrap(), before);
}

#[test]
fn unreadable_and_newer_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where a blob is expected.
    let o = alexnet(&["info", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read model blob"),
        "{}",
        stderr(&o)
    );
    // A blob from a newer format version.
    let blob = dir.path().join("m.blob");
    assert!(
        alexnet(&["init", "--arch", "micro", "-o", blob.to_str().unwrap()])
            .status
            .success()
    );
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[8] = 9; // the version: the low half of header word 2
    let newer = dir.path().join("newer.blob");
    std::fs::write(&newer, &bytes).unwrap();
    let o = alexnet(&["info", newer.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("version 9") && stderr(&o).contains("upgrade"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn eval_reports_accuracy_through_the_core() {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("m.blob");
    assert!(
        alexnet(&["init", "--arch", "micro", "-o", blob.to_str().unwrap()])
            .status
            .success()
    );
    let images = fashion_mnist("t10k-images-idx3-ubyte.gz");
    let labels = fashion_mnist("t10k-labels-idx1-ubyte.gz");
    let args = |count: &str, labels: &Path| -> Vec<String> {
        vec![
            "eval".into(),
            blob.to_str().unwrap().into(),
            "--images".into(),
            images.to_str().unwrap().into(),
            "--labels".into(),
            labels.to_str().unwrap().into(),
            "--count".into(),
            count.into(),
        ]
    };
    let run = |a: Vec<String>| alexnet(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args("200", &labels));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("200 IDX images, top-1 accuracy") && text.contains("(f32,"),
        "{text}"
    );
    // Random weights: top-5 covers at least top-1.
    let pct = |key: &str| -> f64 {
        let at = text.find(key).unwrap() + key.len();
        text[at..]
            .trim_start()
            .split('%')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(pct("top-5 accuracy") >= pct("top-1 accuracy"), "{text}");
    let o = run(args("10", &dir.path().join("nope.gz")));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nope.gz"), "{}", stderr(&o));
}

#[test]
fn export_c_writes_an_aligned_array_and_refuses_what_is_not_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    assert!(
        alexnet(&["init", "--arch", "micro", "-o", &d("micro-f32.blob")])
            .status
            .success()
    );
    let out = alexnet(&["export-c", &d("micro-f32.blob"), "-o", &d("m.h")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let header = std::fs::read_to_string(d("m.h")).unwrap();
    let blob = std::fs::read(d("micro-f32.blob")).unwrap();
    // The default name comes from the file name; every byte is there, in order.
    assert!(
        header.contains(&format!("#define MICRO_F32_LEN {}u", blob.len())),
        "{}",
        &header[..800]
    );
    assert!(header.contains("#define MICRO_F32_ARCH \"micro\""));
    assert!(header.contains("#define MICRO_F32_PRECISION 0 /* ALEXNET_PRECISION_F32 */"));
    assert!(header.contains("__attribute__((aligned(64)))"));
    assert!(header.contains("static const uint8_t micro_f32[MICRO_F32_LEN] MICRO_F32_ALIGNED"));
    let array = &header[header.find("= {").unwrap()..];
    let bytes: Vec<u8> = array
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter_map(|t| t.strip_prefix("0x"))
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    assert_eq!(bytes, blob);

    let out = alexnet(&[
        "export-c",
        &d("micro-f32.blob"),
        "--name",
        "2fast",
        "-o",
        &d("x.h"),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("\"2fast\" is not a C identifier"),
        "{}",
        stderr(&out)
    );
    std::fs::write(d("text.blob"), "hello, I am not a model").unwrap();
    let out = alexnet(&["export-c", &d("text.blob"), "-o", &d("x.h")]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("bad magic bytes"), "{}", stderr(&out));
    assert!(!Path::new(&d("x.h")).exists(), "nothing written on failure");
}

/// `infer` on a folder with images of several formats and files that are not images: every
/// image classified (BMP, WebP, TIFF, GIF decoded), the bad files skipped with their names
/// and the reason, the logits of the others written with their paths, exit status 1 with the
/// count; `--json` lines that parse; a cut-off JPEG warned about.
#[test]
fn infer_goes_on_past_bad_files_in_folders() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    assert!(alexnet(&[
        "init",
        "--arch",
        "micro",
        "-o",
        d("m.blob").to_str().unwrap()
    ])
    .status
    .success());
    let images = real_images(&d("png"), 2, 1);
    let photos = d("photos");
    std::fs::create_dir_all(photos.join("nested")).unwrap();
    let img = image::open(&images[0]).unwrap().to_rgba8();
    for name in ["a.bmp", "b.tiff", "c.gif", "nested/d.png", "h.webp"] {
        img.save(photos.join(name)).unwrap();
    }
    image::open(&images[1])
        .unwrap()
        .to_rgb8()
        .save(photos.join("e.jpg"))
        .unwrap();
    // A JPEG cut off before its end (its last bytes and end marker gone: a 28x28 JPEG is
    // mostly header, so a cut in half would not even decode), an empty "image", and a file
    // that is not an image at all.
    let jpeg = std::fs::read(photos.join("e.jpg")).unwrap();
    std::fs::write(photos.join("f.jpg"), &jpeg[..jpeg.len() - 6]).unwrap();
    std::fs::write(photos.join("g.png"), b"").unwrap();
    std::fs::write(
        photos.join("notes.txt"),
        b"not an image, not even looked at",
    )
    .unwrap();

    let npy = d("l.npy");
    let out = alexnet(&[
        "infer",
        d("m.blob").to_str().unwrap(),
        photos.to_str().unwrap(),
        "--logits-out",
        npy.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}\n{err}");
    assert!(err.contains("skipped") && err.contains("g.png"), "{err}");
    assert!(err.contains("1 of 8 images skipped"), "{err}");
    assert!(!err.contains("notes.txt"), "{err}");
    assert!(
        err.contains("f.jpg: the JPEG data ends without its end marker"),
        "{err}"
    );
    for name in [
        "a.bmp",
        "b.tiff",
        "c.gif",
        "e.jpg",
        "f.jpg",
        "h.webp",
        "nested/d.png",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    let (rows, classes, _) = alexnet_host::npy::read_f32_matrix(&npy).unwrap();
    assert_eq!((rows, classes), (7, 10));
    let paths = std::fs::read_to_string(d("l.paths.txt")).unwrap();
    let listed: Vec<&str> = paths.lines().collect();
    assert_eq!(listed.len(), 7);
    assert!(
        listed[0].ends_with("a.bmp") && listed[6].ends_with("nested/d.png"),
        "{paths}"
    );

    let out = alexnet(&[
        "infer",
        d("m.blob").to_str().unwrap(),
        photos.join("a.bmp").to_str().unwrap(),
        photos.join("e.jpg").to_str().unwrap(),
        "--json",
        "--top",
        "3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        let top = line["top"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        // Ranked on the logits, highest first.
        let logits: Vec<f64> = top.iter().map(|t| t["logit"].as_f64().unwrap()).collect();
        assert!(logits.windows(2).all(|w| w[0] >= w[1]), "{line}");
        assert!(top[0]["label"].is_string() && top[0]["probability"].as_f64().unwrap() > 0.0);
    }
    assert!(lines[0]["path"].as_str().unwrap().ends_with("a.bmp"));
}

/// `convert` and `export` as a user chains them: PyTorch's ONNX export of the micro net to a
/// blob, the blob back to ONNX and safetensors, those back to blobs (the same bytes), and the
/// bad inputs of `docs/bad-input.md`.
#[test]
fn convert_and_export_round_trip_and_refuse_bad_models() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let torch_onnx = root.join("tests/data/onnx/micro.onnx");
    let out = alexnet(&["convert", torch_onnx.to_str().unwrap(), "-o", &at("a.blob")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("(an ONNX model) -> ")
            && stdout(&out).contains("the micro net (built in)"),
        "{}",
        stdout(&out)
    );
    let first = std::fs::read(at("a.blob")).unwrap();

    for (file, arch) in [("b.onnx", None), ("b.safetensors", Some("micro"))] {
        let out = alexnet(&["export", &at("a.blob"), "-o", &at(file)]);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut args = vec!["convert".to_string(), at(file), "-o".into(), at("c.blob")];
        if let Some(arch) = arch {
            args.extend(["--arch".into(), arch.into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = alexnet(&args);
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        assert!(
            std::fs::read(at("c.blob")).unwrap() == first,
            "{file}: another blob"
        );
    }

    // Labels and preprocessing from flags; a labels file with the wrong count is refused.
    std::fs::write(
        at("labels.txt"),
        (0..10).map(|i| format!("class {i}\n")).collect::<String>(),
    )
    .unwrap();
    let out = alexnet(&[
        "convert",
        torch_onnx.to_str().unwrap(),
        "-o",
        &at("l.blob"),
        "--labels",
        &at("labels.txt"),
        "--mean",
        "0.5",
        "--std",
        "0.25",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = alexnet(&["info", &at("l.blob")]);
    assert!(
        stdout(&out).contains("mean [0.5], std [0.25]"),
        "{}",
        stdout(&out)
    );
    let blob = std::fs::read(at("l.blob")).unwrap();
    let model = alexnet_core::Model::parse(&blob).unwrap();
    assert_eq!(model.labels().unwrap().get(9), Some("class 9"));
    std::fs::write(at("short.txt"), "a\nb\n").unwrap();
    let out = alexnet(&[
        "convert",
        torch_onnx.to_str().unwrap(),
        "-o",
        &at("x.blob"),
        "--labels",
        &at("short.txt"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("short.txt has 2 labels; the net has 10 classes"),
        "{}",
        stderr(&out)
    );

    // An ONNX file with an unsupported node, and one cut short.
    let bytes = std::fs::read(&torch_onnx).unwrap();
    // NodeProto.op_type is field 4 (0x22), here 4 bytes long.
    let relu = bytes.windows(6).position(|w| w == b"\x22\x04Relu").unwrap();
    let mut sigmoid = bytes.clone();
    sigmoid[relu + 2..relu + 6].copy_from_slice(b"Relx");
    std::fs::write(at("op.onnx"), &sigmoid).unwrap();
    let out = alexnet(&["convert", &at("op.onnx"), "-o", &at("x.blob")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("node 1 (Relx \"/1/Relu\") is not supported"),
        "{}",
        stderr(&out)
    );
    std::fs::write(at("cut.onnx"), &bytes[..bytes.len() / 3]).unwrap();
    let out = alexnet(&["convert", &at("cut.onnx"), "-o", &at("x.blob")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the protobuf does not decode"),
        "{}",
        stderr(&out)
    );
    // The micro graph is not the paper net.
    let out = alexnet(&[
        "convert",
        torch_onnx.to_str().unwrap(),
        "--arch",
        "paper",
        "-o",
        &at("x.blob"),
    ]);
    assert!(
        stderr(&out).contains("the graph is not the paper net"),
        "{}",
        stderr(&out)
    );
    // A PyTorch checkpoint whose names are not the net's, and one without an architecture.
    let pth = root.join("tools/host/tests/data/micro.pth");
    let out = alexnet(&[
        "convert",
        pth.to_str().unwrap(),
        "--arch",
        "torchvision",
        "-o",
        &at("x.blob"),
    ]);
    assert!(
        stderr(&out).contains("tensor features.0.weight is missing"),
        "{}",
        stderr(&out)
    );
    let out = alexnet(&["convert", pth.to_str().unwrap(), "-o", &at("x.blob")]);
    assert!(
        stderr(&out).contains("does not name its architecture"),
        "{}",
        stderr(&out)
    );
    // Export: an int8 blob, and an extension that names no format.
    let out = alexnet(&["export", &at("a.blob"), "-o", &at("x.tflite")]);
    assert!(
        stderr(&out).contains(".onnx or .safetensors"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("x.blob").exists());
}

/// `eval` on image folders: the same 200 Fashion-MNIST test images as PNG files, in class
/// folders and in a flat folder with a labels file, give exactly the IDX set's accuracy (the
/// same pixels, the same preprocessing); the CSV and the confusion matrix add up; bad files
/// are skipped and counted.
#[test]
fn eval_on_image_folders_agrees_with_the_idx_set() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let blob = at("m.blob");
    assert!(
        alexnet(&["init", "--arch", "micro", "--seed", "3", "-o", &blob])
            .status
            .success()
    );
    let images = fashion_mnist("t10k-images-idx3-ubyte.gz");
    let labels = fashion_mnist("t10k-labels-idx1-ubyte.gz");
    let (images, labels) = (images.to_str().unwrap(), labels.to_str().unwrap());
    for (folder, extra) in [("classes", Some("--class-folders")), ("flat", None)] {
        let mut args = vec![
            "extract-idx",
            images,
            "--labels",
            labels,
            "--count",
            "200",
            "-o",
        ];
        let out = at(folder);
        args.push(&out);
        args.extend(extra);
        assert!(alexnet(&args).status.success());
    }
    // The flat folder's ground truth, one class per line in sorted file order.
    let mut flat: Vec<String> = std::fs::read_dir(at("flat"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    flat.sort();
    let truth: String = flat
        .iter()
        .map(|n| {
            format!(
                "{}\n",
                n.trim_end_matches(".png").split('_').nth(1).unwrap()
            )
        })
        .collect();
    std::fs::write(at("truth.txt"), &truth).unwrap();

    let accuracy = |o: &Output| -> String {
        assert!(o.status.success(), "{}", stderr(o));
        let text = stdout(o);
        let at = text.find("top-1").unwrap();
        text[at..text.find(" (").unwrap()].to_string()
    };
    let idx = alexnet(&[
        "eval", &blob, "--images", images, "--labels", labels, "--limit", "200",
    ]);
    let classes = alexnet(&[
        "eval",
        &blob,
        "--images",
        &at("classes"),
        "--csv",
        &at("c.csv"),
        "--confusion",
        &at("c.png"),
    ]);
    let flat = alexnet(&[
        "eval",
        &blob,
        "--images",
        &at("flat"),
        "--labels",
        &at("truth.txt"),
    ]);
    assert_eq!(accuracy(&classes), accuracy(&idx), "{}", stdout(&classes));
    assert_eq!(accuracy(&flat), accuracy(&idx));
    assert!(
        stderr(&classes).contains("class folders in sorted order"),
        "{}",
        stderr(&classes)
    );
    assert!(
        stdout(&classes).contains("200 images"),
        "{}",
        stdout(&classes)
    );

    // The CSV: a row per class with images, adding up to the set.
    let csv = std::fs::read_to_string(at("c.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 10, "{csv}");
    let column = |i: usize| {
        rows.iter()
            .map(|r| r[i].parse::<usize>().unwrap())
            .sum::<usize>()
    };
    assert_eq!(column(2), 200);
    assert!(column(3) <= column(4));
    let png = image::open(at("c.png")).unwrap();
    assert_eq!((png.width(), png.height()), (11 * 12 + 1, 10 * 12 + 1));

    // Ten crops run (here ten views of the same 28x28 image, five mirrored).
    let ten = alexnet(&[
        "eval",
        &blob,
        "--images",
        &at("classes"),
        "--ten-crop",
        "--limit",
        "20",
    ]);
    assert!(
        stdout(&ten).contains("20 images") && stdout(&ten).contains("ten crops"),
        "{}",
        stdout(&ten)
    );

    // A file that does not decode is skipped and counted; the rest are evaluated.
    // So is one that cannot be opened (root reads any file, so a dangling link stands in).
    std::fs::write(dir.path().join("classes/3/broken.png"), b"not a png").unwrap();
    std::os::unix::fs::symlink(at("gone.png"), dir.path().join("classes/5/gone.png")).unwrap();
    let o = alexnet(&["eval", &blob, "--images", &at("classes")]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("broken.png") && e.contains("gone.png") && e.contains("2 of 202 images skipped"),
        "{e}"
    );
    assert!(stdout(&o).contains("200 images"), "{}", stdout(&o));

    // Bad requests.
    let o = alexnet(&[
        "eval",
        &blob,
        "--images",
        images,
        "--labels",
        labels,
        "--ten-crop",
    ]);
    assert!(
        stderr(&o).contains("--ten-crop takes an image folder"),
        "{}",
        stderr(&o)
    );
    let o = alexnet(&["eval", &blob, "--images", &at("classes"), "--limit", "0"]);
    assert!(stderr(&o).contains("--limit 0"), "{}", stderr(&o));
    std::fs::write(at("short.txt"), "1\n2\n").unwrap();
    let o = alexnet(&[
        "eval",
        &blob,
        "--images",
        &at("flat"),
        "--labels",
        &at("short.txt"),
    ]);
    assert!(
        stderr(&o).contains("has 2 labels for the 200 images"),
        "{}",
        stderr(&o)
    );
    std::fs::create_dir(at("empty")).unwrap();
    let o = alexnet(&["eval", &blob, "--images", &at("empty")]);
    assert!(
        stderr(&o).contains("has no class folders"),
        "{}",
        stderr(&o)
    );
}
