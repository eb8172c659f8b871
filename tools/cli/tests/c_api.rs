//! The C API end to end (`core/ffi`): its static library built for this machine and for the
//! Cortex-M4F; the host C examples, plain and (library included) under AddressSanitizer and
//! UBSan, bit-identical with
//! `alexnet infer --logits-out` and refusing every bad input; the C firmware, with its models
//! made by `alexnet export-c`, under QEMU's mps2-an386, every logit compared with the core on
//! this machine as for the Rust firmware.

use alexnet_core::builtin::MICRO;
use alexnet_host::firmware::{
    compare, outside_workspace, parse_log, run_on_qemu, untrained_micro_blobs, write_images_bin,
};
use alexnet_host::idx::{self, FASHION_MNIST_DIR};
use alexnet_host::BlobFile;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Test images: enough to compare every logit on several real images, few enough that the
/// f32 runs under QEMU stay short.
const IMAGES: usize = 8;

fn ffi_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../core/ffi")
}

/// This machine's target triple, for the instrumented build.
const HOST: &str = if cfg!(target_arch = "aarch64") {
    "aarch64-unknown-linux-gnu"
} else {
    "x86_64-unknown-linux-gnu"
};

/// How the static library is built.
#[derive(Clone, Copy, PartialEq)]
enum Build {
    /// With the stable toolchain, for `target` (this machine's when `None`).
    Plain(Option<&'static str>),
    /// For this machine, every load and store of the library's own code instrumented by
    /// AddressSanitizer (nightly's `-Zsanitizer=address`): the C side's sanitizer alone
    /// cannot see the library write outside a C buffer.
    AddressSanitized,
}

/// Builds the static library; returns its path.
fn static_library(build: Build, features: &[&str]) -> PathBuf {
    let mut cmd = match build {
        Build::Plain(_) => Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())),
        Build::AddressSanitized => {
            let mut c = Command::new("rustup");
            c.args(["run", "nightly", "cargo"]);
            c
        }
    };
    let (target, target_dir) = match build {
        Build::Plain(t) => (t, "target"),
        Build::AddressSanitized => (Some(HOST), "target/asan"),
    };
    outside_workspace(&mut cmd, &ffi_dir())
        .args(["rustc", "--release", "--quiet", "--crate-type", "staticlib"])
        .args(["--target-dir", target_dir]);
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    if build == Build::AddressSanitized {
        cmd.env("RUSTFLAGS", "-Zsanitizer=address");
    }
    assert!(
        cmd.status().unwrap().success(),
        "the C library does not build"
    );
    let dir = ffi_dir().join(target_dir);
    let dir = match target {
        Some(t) => dir.join(t).join("release"),
        None => dir.join("release"),
    };
    dir.join("libalexnet_core_ffi.a")
}

/// `make` in an example's folder; the build's output is shown.
fn make(example: &str, args: &[String]) {
    let status = Command::new("make")
        .current_dir(ffi_dir().join("examples").join(example))
        .args(["--no-print-directory", "-B"])
        .args(args)
        .status()
        .expect("run make");
    assert!(status.success(), "the {example} example does not build");
}

fn alexnet(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_alexnet"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "alexnet {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything the examples run on: the micro net in f32 and int8, a small blob of another
/// net, and test images as PGM files and as the firmware's image file.
struct Assets {
    dir: PathBuf,
    f32_blob: PathBuf,
    int8_blob: PathBuf,
    small_blob: PathBuf,
    pgm: Vec<PathBuf>,
    images_bin: PathBuf,
}

fn assets(dir: &Path) -> Assets {
    std::fs::create_dir_all(dir).unwrap();
    let fm = Path::new(FASHION_MNIST_DIR);
    let (f32_blob, int8_blob) = untrained_micro_blobs(fm).unwrap();
    let a = Assets {
        dir: dir.to_path_buf(),
        f32_blob: dir.join("micro-f32.blob"),
        int8_blob: dir.join("micro-int8.blob"),
        small_blob: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/tiny.blob"),
        pgm: (0..IMAGES).map(|i| dir.join(format!("{i}.pgm"))).collect(),
        images_bin: dir.join("images.bin"),
    };
    std::fs::write(&a.f32_blob, f32_blob).unwrap();
    std::fs::write(&a.int8_blob, int8_blob).unwrap();
    let set = idx::read_images(fm.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = idx::read_labels(fm.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    for (i, path) in a.pgm.iter().enumerate() {
        let mut pgm = format!("P5\n{} {}\n255\n", set.cols, set.rows).into_bytes();
        pgm.extend_from_slice(set.image(i).unwrap());
        std::fs::write(path, pgm).unwrap();
    }
    write_images_bin(&a.images_bin, &set, &labels, 0, IMAGES).unwrap();
    a
}

/// The logits `classify --logits` printed, per image, as bits.
fn classify_logits(stdout: &str) -> Vec<Vec<u32>> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("logits "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(|h| u32::from_str_radix(h, 16).unwrap())
                .collect()
        })
        .collect()
}

/// The rows of a little-endian f32 `.npy` matrix, as bits.
fn npy_rows(path: &Path, cols: usize) -> Vec<Vec<u32>> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let header = u16::from_le_bytes([b[8], b[9]]) as usize;
    let text = String::from_utf8_lossy(&b[10..10 + header]);
    assert!(text.contains("'<f4'"), "{text}");
    b[10 + header..]
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
        .collect::<Vec<_>>()
        .chunks(cols)
        .map(<[u32]>::to_vec)
        .collect()
}

/// The bad-input checks' report: each must pass, and there must be many of them.
fn assert_checks_passed(report: &str) {
    let passed = report.lines().filter(|l| l.contains("CHECK ok")).count();
    let failed: Vec<&str> = report.lines().filter(|l| l.contains("FAIL")).collect();
    assert!(
        failed.is_empty(),
        "bad-input checks failed:\n{}",
        failed.join("\n")
    );
    assert!(passed >= 35, "only {passed} checks ran:\n{report}");
    assert!(report.contains("checks_failed=0"), "{report}");
}

#[test]
fn the_c_api_on_the_host_and_on_a_cortex_m4f() {
    let work = ffi_dir().join("target/c-test");
    let a = assets(&work.join("assets"));
    // Plain, as a user builds it; then library and examples both under the sanitizers.
    on_the_host(
        &a,
        static_library(Build::Plain(None), &[]),
        &work.join("host"),
        false,
    );
    on_the_host(
        &a,
        static_library(Build::AddressSanitized, &[]),
        &work.join("host-asan"),
        true,
    );
    on_the_cortex_m4f(&a, &work.join("mps2-an386"));
}

/// The host examples: `classify` bit-identical with `alexnet infer`, `check` refusing every
/// bad input; with `sanitize`, the examples built with `-fsanitize=address,undefined`.
fn on_the_host(a: &Assets, lib: PathBuf, out: &Path, sanitize: bool) {
    make(
        "host",
        &[
            format!("LIB={}", lib.display()),
            format!("OUT={}", out.display()),
            format!("SANITIZE={}", u8::from(sanitize)),
        ],
    );
    for blob in [&a.f32_blob, &a.int8_blob] {
        let run = Command::new(out.join("classify"))
            .arg(blob)
            .arg("--logits")
            .args(&a.pgm)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "classify failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let from_c = classify_logits(&stdout);
        let npy = a.dir.join("logits.npy");
        let mut args = vec![std::ffi::OsStr::new("infer"), blob.as_os_str()];
        args.extend(a.pgm.iter().map(|p| p.as_os_str()));
        args.extend([std::ffi::OsStr::new("--logits-out"), npy.as_os_str()]);
        alexnet(&args);
        let from_cli = npy_rows(&npy, MICRO.classes());
        assert_eq!(from_c.len(), IMAGES, "{stdout}");
        assert_eq!(
            from_c,
            from_cli,
            "{}: the C example's logits differ from alexnet infer's",
            blob.display()
        );
        eprintln!(
            "host C example{}, {}: {IMAGES}/{IMAGES} images bit-identical with `alexnet infer`",
            if sanitize {
                " (AddressSanitizer, UBSan)"
            } else {
                ""
            },
            blob.file_name().unwrap().to_string_lossy()
        );
    }
    let run = Command::new(out.join("check"))
        .args([&a.f32_blob, &a.int8_blob, &a.small_blob])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "check failed:\n{report}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_checks_passed(&report);
}

/// The C firmware under QEMU, every logit compared with the core on this machine.
fn on_the_cortex_m4f(a: &Assets, out: &Path) {
    let lib = static_library(Build::Plain(Some("thumbv7em-none-eabihf")), &["dsp"]);
    let generated = out.join("generated");
    std::fs::create_dir_all(&generated).unwrap();
    for (blob, name) in [
        (&a.f32_blob, "micro_f32"),
        (&a.int8_blob, "micro_int8"),
        (&a.small_blob, "small"),
    ] {
        let header = generated.join(format!("{name}.h"));
        alexnet(&[
            "export-c".as_ref(),
            blob.as_os_str(),
            "--name".as_ref(),
            name.as_ref(),
            "-o".as_ref(),
            header.as_os_str(),
        ]);
    }
    std::fs::write(
        generated.join("test_images.h"),
        images_header(&a.images_bin),
    )
    .unwrap();
    make(
        "mps2-an386",
        &[
            format!("LIB={}", lib.display()),
            format!("OUT={}", out.display()),
            format!("GEN={}", generated.display()),
        ],
    );
    let elf = out.join("firmware.elf");
    let t = Instant::now();
    let (code, stdout) = run_on_qemu(&elf, Duration::from_secs(600)).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&stdout);
    assert_eq!(code, Some(0), "the C firmware failed:\n{text}");
    let log = parse_log(&text).unwrap();
    let int8 = BlobFile::read(&a.int8_blob).unwrap();
    let f32m = BlobFile::read(&a.f32_blob).unwrap();
    let c = compare(
        &log,
        &int8.model().unwrap(),
        &f32m.model().unwrap(),
        &a.images_bin,
    )
    .unwrap();
    let macs = MICRO.macs() as f64;
    let h = &log.header;
    eprintln!("C firmware on the Cortex-M4F ({secs:.1} s under QEMU):");
    eprintln!(
        "  flash {} bytes, static RAM {} bytes, arena {} bytes, stack peak {} bytes",
        h["flash"], h["ram_static"], h["arena"], log.done["stack_peak"]
    );
    eprintln!(
        "  instructions per inference: int8 {:.0} ({:.2} per MAC), f32 {:.0} ({:.2} per MAC)",
        c.int8_instructions,
        c.int8_instructions / macs,
        c.f32_instructions,
        c.f32_instructions / macs
    );
    eprintln!(
        "  bit-identical logits: int8 {}/{}, f32 {}/{}",
        c.int8_identical, c.images, c.f32_identical, c.images
    );
    assert_eq!(c.images, IMAGES);
    assert_eq!(
        c.int8_identical, IMAGES,
        "int8 logits differ from the host's"
    );
    assert_eq!(c.f32_identical, IMAGES, "f32 logits differ from the host's");
    assert_eq!(c.instructions_per_tick, 40.0, "SysTick calibration");
    assert_checks_passed(&text);
}

/// The firmware's test images as a C header: labels and pixels.
fn images_header(images_bin: &Path) -> String {
    use std::fmt::Write;
    let (labels, pixels) = alexnet_host::firmware::read_images_bin(images_bin).unwrap();
    let size = pixels.first().map_or(0, Vec::len);
    let mut h = format!(
        "/* Test images for the C firmware, written by tools/cli/tests/c_api.rs. */\n\
         #define TEST_IMAGE_COUNT {}u\n#define TEST_IMAGE_BYTES {size}u\n\
         static const uint8_t test_labels[TEST_IMAGE_COUNT] = {{",
        labels.len()
    );
    for l in &labels {
        let _ = write!(h, "{l},");
    }
    h.push_str("};\nstatic const uint8_t test_pixels[TEST_IMAGE_COUNT][TEST_IMAGE_BYTES] = {\n");
    for p in &pixels {
        h.push_str("  {");
        for v in p {
            let _ = write!(h, "{v},");
        }
        h.push_str("},\n");
    }
    h.push_str("};\n");
    h
}
