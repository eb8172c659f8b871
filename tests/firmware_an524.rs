//! The 2012 AlexNet on a microcontroller-class core: `firmware-an524` on QEMU's
//! `mps3-an524` (Cortex-M33 with FPU and DSP), the model blob in DDR where a bootloader
//! would have copied it, parsed in place, the int8 arena on chip. The paper net and
//! torchvision's, in int8 with prepacked DSP weights, on real images (Fashion-MNIST test
//! images enlarged and cropped as each net's preprocessing says): every logit compared with
//! the core on this machine, and each layer's output digest, so that a difference names its
//! first layer. Bad inputs (no blob where the firmware looks, a truncated one, one of another
//! architecture) each end in a logged error and a failing exit code.
//!
//! The paper net in f32 too (244 MB in DDR, 1.4 G instructions per image, about a minute
//! under QEMU): the only run of the FPU kernel's one-pixel blocks (patches over 1200 taps)
//! with the real instructions.

use alexnet_core::builtin::{PAPER, TORCHVISION};
use alexnet_core::{Arch, Model};
use alexnet_host::firmware::{
    boot_image, build_firmware, compare_run, decode_defmt, images_v2, parse_run_log, run_on_board,
    untrained_blobs, RunComparison, RunLog, MPS3_AN524,
};
use alexnet_host::idx::{self, FASHION_MNIST_DIR};
use alexnet_host::image_input::cropped_pixels;
use alexnet_host::BlobFile;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Test images per net.
const IMAGES: usize = 4;
/// Where the boot record lies (`firmware-an524/src/boot.rs`).
const DDR: u64 = 0x7000_0000;

fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-an524")
}

fn work_dir() -> PathBuf {
    let dir = firmware_dir().join("target/test-run");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn build() -> PathBuf {
    build_firmware(
        &firmware_dir(),
        "thumbv8m.main-none-eabihf",
        "firmware-an524",
        &[],
    )
    .unwrap()
}

/// Fashion-MNIST test images, enlarged 9 times (252 x 252, as `alexnet extract-idx --scale 9`
/// writes them), then resized and centre-cropped by `model`'s preprocessing: the pixels at the
/// network's input size, as a camera pipeline would hand them over. `(labels, pixels)`.
fn real_images(model: &Model<'_>) -> (Vec<u8>, Vec<Vec<u8>>) {
    let fm = Path::new(FASHION_MNIST_DIR);
    let set = idx::read_images(fm.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = idx::read_labels(fm.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let pixels = (0..IMAGES)
        .map(|i| {
            let small = image::GrayImage::from_raw(
                set.cols as u32,
                set.rows as u32,
                set.image(i).unwrap().to_vec(),
            )
            .unwrap();
            let big =
                image::imageops::resize(&small, 252, 252, image::imageops::FilterType::Nearest);
            cropped_pixels(
                &image::DynamicImage::ImageLuma8(big),
                model.preprocess(),
                model.arch().input,
            )
            .unwrap()
        })
        .collect();
    (labels[..IMAGES].to_vec(), pixels)
}

/// Runs the firmware with `blob` and `images` in DDR, placed as a bootloader would (the
/// record says `blob_len` bytes: less than the blob to make it truncated; nothing loaded at
/// all when `blob` is `None`). Gives the exit code, the decoded log and the seconds QEMU ran.
fn run(
    elf: &Path,
    name: &str,
    blob: Option<&[u8]>,
    blob_len: usize,
    images: &[u8],
) -> (Option<i32>, String, f64) {
    let dir = work_dir();
    let mut extra = Vec::new();
    if let Some(blob) = blob {
        let layout = boot_image(blob_len, images.len()).unwrap();
        let files = [
            ("boot", &layout.record[..], 0u64),
            ("blob", &blob[..blob_len], layout.blob_offset as u64),
            ("images", images, layout.images_offset as u64),
        ];
        for (what, bytes, offset) in files {
            let path = dir.join(format!("{name}.{what}"));
            std::fs::write(&path, bytes).unwrap();
            extra.push("-device".to_string());
            extra.push(format!(
                "loader,file={},addr={:#x}",
                path.display(),
                DDR + offset
            ));
        }
    }
    let t = Instant::now();
    let (code, frames) = run_on_board(MPS3_AN524, elf, &extra, Duration::from_secs(900)).unwrap();
    let secs = t.elapsed().as_secs_f64();
    (code, decode_defmt(elf, &frames).unwrap(), secs)
}

/// Runs `blob` on its real test images and checks every logit and every layer's digest
/// against the host; prints the report.
fn is_bit_exact_with_the_host(elf: &Path, name: &str, blob: &[u8]) -> RunComparison {
    let file = BlobFile::from_bytes(blob, name);
    let model = file.model().unwrap();
    let (labels, pixels) = real_images(&model);
    let images = images_v2(&labels, &pixels, model.arch().input).unwrap();
    let (code, text, secs) = run(elf, name, Some(blob), blob.len(), &images);
    assert_eq!(code, Some(0), "the firmware failed:\n{text}");
    let log = parse_run_log(&text).unwrap();
    let c = compare_run(&log, &model, &pixels).unwrap();
    let h = &log.header;
    let macs = model.plan().macs as f64;
    eprintln!(
        "{name} on the Cortex-M33 ({secs:.1} s under QEMU, kernels {}):",
        h["kernels"]
    );
    assert_eq!(
        h["kernels"], "Cortex-M DSP",
        "the M33 build must run the DSP kernels"
    );
    eprintln!(
        "  blob {} bytes in DDR; arena {} bytes ({}), input ({}); code and read-only data {} bytes; static RAM {} bytes; stack peak {} bytes",
        h["blob"], h["arena"], h["arena_in"], h["input_in"], h["flash"], h["ram_static"], log.done["stack_peak"]
    );
    eprintln!(
        "  instructions per inference: {:.0} ({:.3} per MAC; {:.2} s at 200 MHz, one instruction per cycle)",
        c.instructions,
        c.instructions / macs,
        c.instructions / 200e6
    );
    eprintln!("  {}", c.verdict());
    let table: Vec<String> = c
        .layers
        .iter()
        .enumerate()
        .map(|(i, (kind, instr, _))| format!("{i} {kind} {:.1}", instr / 1e6))
        .collect();
    eprintln!(
        "  per layer (unfused), million instructions: {}",
        table.join(", ")
    );
    // -icount 0: 1 ns per instruction; the AN524's SysTick runs at its 32 MHz: 31.25 per tick.
    assert_eq!(
        c.instructions_per_tick, 31.25,
        "SysTick calibration: QEMU's clock is not what -icount 0 promises"
    );
    assert_eq!(
        c.first_difference, None,
        "a layer's output differs from the host's"
    );
    assert_eq!(
        c.identical, IMAGES,
        "logits differ between the device and the host"
    );
    a_difference_would_be_named(&log, &model, &pixels);
    c
}

/// The comparison itself, on a log tampered with as a device bug would: a wrong digest at one
/// layer is named as the first difference, and a changed logit is counted.
fn a_difference_would_be_named(log: &RunLog, model: &Model<'_>, pixels: &[Vec<u8>]) {
    let mut wrong = log.clone();
    let (at, kind) = (4, wrong.layers[4].kind.clone());
    wrong.layers[at].crc ^= 1;
    wrong.layers[at + 2].crc ^= 1;
    wrong.images[1].1[7] += 1;
    let c = compare_run(&wrong, model, pixels).unwrap();
    assert_eq!(c.first_difference, Some(format!("layer {at} ({kind})")));
    assert_eq!(c.identical, IMAGES - 1);
}

/// Expects a failing exit code and `message` in the log, before any inference.
fn fails_cleanly(elf: &Path, name: &str, blob: Option<&[u8]>, blob_len: usize, message: &str) {
    let images = images_v2(&[0], &[vec![0; 12]], alexnet_core::Shape::new(3, 2, 2)).unwrap();
    let (code, text, _) = run(elf, name, blob, blob_len, &images);
    assert_eq!(code, Some(1), "expected a failing exit code:\n{text}");
    assert!(
        text.contains(message),
        "expected {message:?} in the log:\n{text}"
    );
    assert!(
        !text.contains("IMG ") && !text.contains("PANIC") && !text.contains("HARDFAULT"),
        "{text}"
    );
}

fn blobs(arch: &Arch<'_>) -> (Vec<u8>, Vec<u8>) {
    // Calibrated on 16 training images: what a quick deployment would do; the bit-exactness
    // does not depend on it.
    untrained_blobs(arch, Path::new(FASHION_MNIST_DIR), 16).unwrap()
}

#[test]
fn paper_and_torchvision_int8_on_a_cortex_m33() {
    let elf = build();
    let (_, paper_int8) = blobs(&PAPER);
    is_bit_exact_with_the_host(&elf, "paper-int8", &paper_int8);
    let (_, tv_int8) = blobs(&TORCHVISION);
    is_bit_exact_with_the_host(&elf, "torchvision-int8", &tv_int8);

    fails_cleanly(
        &elf,
        "nothing",
        None,
        0,
        "FAIL no model where this firmware looks",
    );
    fails_cleanly(
        &elf,
        "truncated",
        Some(&paper_int8),
        paper_int8.len() - 4096,
        "FAIL blob length mismatch",
    );
    let (micro, _) =
        alexnet_host::firmware::untrained_micro_blobs(Path::new(FASHION_MNIST_DIR)).unwrap();
    fails_cleanly(
        &elf,
        "micro",
        Some(&micro),
        micro.len(),
        "FAIL the blob holds the architecture micro",
    );
}

/// The paper net in f32, 244 MB of weights in DDR.
#[test]
fn paper_f32_on_a_cortex_m33() {
    let elf = build();
    let (paper_f32, _) = blobs(&PAPER);
    is_bit_exact_with_the_host(&elf, "paper-f32", &paper_f32);
}
