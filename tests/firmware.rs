//! The firmware, end to end: the host pipeline makes the micro net's blobs (f32 weights the
//! host produced, quantized on real training images) and exports real test images; the
//! firmware is built for thumbv7em-none-eabihf, run under QEMU's mps2-an386 (Cortex-M4F), its
//! defmt log decoded, and every logit compared with the core on this machine, int8 and f32.
//! `cargo xtask firmware` runs this test and prints its report.

use alexnet_core::builtin::MICRO;
use alexnet_host::firmware::{
    build_firmware, build_firmware_example, compare, decode_defmt, first_difference, parse_log,
    run_on_qemu, untrained_micro_blobs, write_images_bin,
};
use alexnet_host::idx::{self, FASHION_MNIST_DIR};
use alexnet_host::BlobFile;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Test images embedded in the firmware.
const IMAGES: usize = 32;

fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-example")
}

/// Folder with a trained `micro.blob` and its `micro-int8.blob` to embed instead of the
/// untrained net (`cargo xtask demo` sets it to its run folder).
const MODELS_VAR: &str = "ALEXNET_FIRMWARE_MODELS";

/// The host pipeline: f32 blob, int8 blob calibrated on training images, test images.
fn make_assets(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let fm = Path::new(FASHION_MNIST_DIR);
    if let Some(models) = std::env::var_os(MODELS_VAR).map(PathBuf::from) {
        for (from, to) in [
            ("micro.blob", "micro-f32.blob"),
            ("micro-int8.blob", "micro-int8.blob"),
        ] {
            std::fs::copy(models.join(from), dir.join(to))
                .unwrap_or_else(|e| panic!("{MODELS_VAR}: cannot copy {from}: {e}"));
        }
        eprintln!("embedding the models of {}", models.display());
    } else {
        make_untrained_models(dir, fm);
    }
    let set = idx::read_images(fm.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = idx::read_labels(fm.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    write_images_bin(&dir.join("images.bin"), &set, &labels, 0, IMAGES).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tiny.blob"),
        dir.join("wrong-arch.blob"),
    )
    .unwrap();
}

/// The micro net with the paper's random initialization, quantized on 500 training images.
fn make_untrained_models(dir: &Path, fm: &Path) {
    let (f32_blob, int8_blob) = untrained_micro_blobs(fm).unwrap();
    std::fs::write(dir.join("micro-f32.blob"), f32_blob).unwrap();
    std::fs::write(dir.join("micro-int8.blob"), int8_blob).unwrap();
}

/// Builds the firmware with `features`. The builds share one target folder (dependencies are
/// compiled once); the ELF is overwritten by the next build, so run each one before building
/// the next.
fn build(features: &[&str]) -> PathBuf {
    build_firmware(
        &firmware_dir(),
        "thumbv7em-none-eabihf",
        "firmware-example",
        features,
    )
    .unwrap()
}

/// Runs the ELF under QEMU; returns (exit code, decoded log).
fn run(elf: &Path) -> (Option<i32>, String) {
    let (code, frames) = run_on_qemu(elf, Duration::from_secs(600)).unwrap();
    (code, decode_defmt(elf, &frames).unwrap())
}

/// One test, so that the asset files and the builds are never raced by a parallel test.
#[test]
fn firmware_under_qemu() {
    let assets = firmware_dir().join("assets");
    make_assets(&assets);
    let generic = is_bit_exact_with_the_host(&assets, &[]);
    let dsp = is_bit_exact_with_the_host(&assets, &["dsp"]);
    eprintln!(
        "int8 instructions per inference: CortexM kernels {generic:.0}, CortexMDsp kernels {dsp:.0} ({:.2}x fewer)",
        generic / dsp
    );
    a_blob_of_the_wrong_architecture_fails_cleanly();
    a_wrong_floating_point_mode_is_refused();
    for features in [&[][..], &["dsp"]] {
        kernels_match_the_definitions_on_the_device(features);
    }
}

/// `examples/kernel_check.rs`: random integer LRN (tables with large steps, every shift
/// regime), int8 max pool and ReLU cases, each kernel against the definition on the device
/// itself. The network run cannot show that the LRN's assembly interpolates right: a real
/// table changes by a fraction of an output step between entries.
fn kernels_match_the_definitions_on_the_device(features: &[&str]) {
    let elf = build_firmware_example(
        &firmware_dir(),
        "thumbv7em-none-eabihf",
        "kernel_check",
        features,
    )
    .unwrap();
    let (code, text) = run(&elf);
    eprintln!("kernel check on the device, features {features:?}:");
    for line in text.lines().filter(|l| l.contains("CHECK")) {
        eprintln!("  {line}");
    }
    assert_eq!(code, Some(0), "a kernel differs on the device:\n{text}");
    let expected_set = if features.contains(&"dsp") {
        "kernels: Cortex-M DSP"
    } else {
        "kernels: Cortex-M"
    };
    assert!(
        text.lines().any(|l| l.trim() == expected_set),
        "expected `{expected_set}`:\n{text}"
    );
    for kernel in ["lrn_int8", "max_pool_int8", "relu_int8"] {
        assert!(
            text.contains(&format!("CHECK {kernel} cases=400 mismatches=0")),
            "{kernel} was not checked:\n{text}"
        );
    }
}

/// Runs one build of the firmware and checks it; returns the int8 instructions per inference.
fn is_bit_exact_with_the_host(assets: &Path, features: &[&str]) -> f64 {
    let elf = build(features);
    let t = Instant::now();
    let (code, text) = run(&elf);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(code, Some(0), "the firmware failed:\n{text}");
    // The kernels `native()` picks: the DSP set with `dsp`, the set for cores without DSP
    // otherwise (its `MLA` and FPU assembly, not the Rust loops).
    let kernels = if features.contains(&"dsp") {
        "Cortex-M DSP"
    } else {
        "Cortex-M"
    };
    assert!(
        text.lines()
            .any(|l| l.trim_end().ends_with(&format!("kernels: {kernels}"))),
        "the firmware did not run the {kernels} kernels:\n{text}"
    );
    let log = parse_log(&text).unwrap();
    let int8_file = BlobFile::read(assets.join("micro-int8.blob")).unwrap();
    let f32_file = BlobFile::read(assets.join("micro-f32.blob")).unwrap();
    let c = compare(
        &log,
        &int8_file.model().unwrap(),
        &f32_file.model().unwrap(),
        &assets.join("images.bin"),
    )
    .unwrap();
    let h = &log.header;
    let macs = MICRO.macs() as f64;
    eprintln!("firmware report, features {features:?} ({secs:.1} s under QEMU):");
    eprintln!(
        "  flash {} bytes, static RAM {} bytes, stack peak {} bytes",
        h["flash"], h["ram_static"], log.done["stack_peak"]
    );
    eprintln!(
        "  arena {} bytes (f32 {} / int8 {}), blobs int8 {} / f32 {} bytes",
        h["arena"], h["arena_f32"], h["arena_int8"], h["int8_blob"], h["f32_blob"]
    );
    eprintln!(
        "  instructions per inference: int8 {:.0} ({:.2} per MAC), f32 {:.0} ({:.2} per MAC); SysTick: {} instructions per tick",
        c.int8_instructions,
        c.int8_instructions / macs,
        c.f32_instructions,
        c.f32_instructions / macs,
        c.instructions_per_tick
    );
    eprintln!(
        "  bit-identical logits: int8 {}/{}, f32 {}/{}",
        c.int8_identical, c.images, c.f32_identical, c.images
    );
    eprintln!(
        "  accuracy on the {} embedded test images: int8 {}/{}, f32 {}/{}",
        c.images, c.int8_correct, c.images, c.f32_correct, c.images
    );
    if let Some((t8, t32)) = &log.layer_ticks {
        let is_conv = |l: &alexnet_core::Layer| matches!(l, alexnet_core::Layer::Conv(_));
        let conv_macs: u64 = MICRO
            .walk()
            .flatten()
            .filter(|s| is_conv(&s.layer))
            .map(|s| s.layer.macs(s.input, s.output))
            .sum();
        let conv = |t: &[u64]| -> f64 {
            let ticks: u64 = MICRO
                .layers
                .iter()
                .zip(t)
                .filter(|(l, _)| is_conv(l))
                .map(|(_, &x)| x)
                .sum();
            ticks as f64 * c.instructions_per_tick / conv_macs as f64
        };
        eprintln!(
            "  convolutions alone: int8 {:.2} instructions per MAC, f32 {:.2}",
            conv(t8),
            conv(t32)
        );
        let per_layer: Vec<String> = MICRO
            .layers
            .iter()
            .zip(t8.iter().zip(t32))
            .map(|(l, (a, b))| {
                let m = |t: u64| t as f64 * c.instructions_per_tick / 1e6;
                format!("{} {:.2}/{:.2}", l.kind_name(), m(*a), m(*b))
            })
            .collect();
        eprintln!(
            "  per layer, million instructions int8/f32: {}",
            per_layer.join(", ")
        );
    }
    assert_eq!(c.images, IMAGES);
    assert_eq!(
        c.layers_compared,
        MICRO.layers.len(),
        "the firmware logged no digest per layer"
    );
    assert_eq!(
        (&c.int8_first_difference, &c.f32_first_difference),
        (&None, &None),
        "the device's per-layer outputs differ from the host's (int8, f32)"
    );
    eprintln!(
        "  per-layer digests: int8 and f32 identical on all {} layers",
        c.layers_compared
    );
    // The comparison names the first layer that differs: the device's digests (equal to the
    // host's, as just checked) flipped at the second LRN (layer 6) and at fc6 (layer 16).
    let (d8, _) = log.layer_digests.as_ref().unwrap();
    let mut flipped = d8.clone();
    flipped[6] ^= 1;
    flipped[16] ^= 1;
    let int8_model = int8_file.model().unwrap();
    assert_eq!(
        first_difference(&int8_model, &flipped, d8)
            .unwrap()
            .as_deref(),
        Some("layer 6 (lrn)")
    );
    assert_eq!(
        c.int8_identical, IMAGES,
        "int8 logits differ between the device and the host"
    );
    assert_eq!(
        c.f32_identical, IMAGES,
        "f32 logits differ between the device and the host"
    );
    // -icount 0: 1 ns per instruction; SysTick runs at the board's 25 MHz: 40 per tick.
    assert_eq!(
        c.instructions_per_tick, 40.0,
        "SysTick calibration: QEMU's clock is not what -icount 0 promises"
    );
    c.int8_instructions
}

fn a_blob_of_the_wrong_architecture_fails_cleanly() {
    let elf = build(&["wrong-model"]);
    let (code, text) = run(&elf);
    assert_eq!(code, Some(1), "expected a failing exit code:\n{text}");
    assert!(
        text.contains("FAIL") && text.contains("architecture"),
        "expected a logged error:\n{text}"
    );
    assert!(
        !text.contains("HARDFAULT") && !text.contains("PANIC"),
        "{text}"
    );
}

/// A startup that leaves flush-to-zero on (the `wrong-fpu-mode` build sets it, as a vendor
/// startup file could) is refused before any inference: the f32 contract needs
/// round-to-nearest without flushing.
fn a_wrong_floating_point_mode_is_refused() {
    let elf = build(&["wrong-fpu-mode"]);
    let (code, text) = run(&elf);
    assert_eq!(code, Some(1), "expected a failing exit code:\n{text}");
    assert!(
        text.contains("FAIL floating-point mode: FPSCR") && text.contains("flush-to-zero"),
        "expected the FPSCR error:\n{text}"
    );
    assert!(!text.contains("IMG "), "it ran an inference:\n{text}");
    assert!(
        !text.contains("HARDFAULT") && !text.contains("PANIC"),
        "{text}"
    );
}
