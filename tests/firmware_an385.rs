//! The micro net's integer path on a Cortex-M3 (`firmware-an385/`, QEMU's `mps2-an385`: no
//! FPU, no DSP extension): the host quantizes the micro net and exports real test images,
//! the firmware runs them with the core's generic integer kernels, and every logit and every
//! layer's digest is compared with the core on this machine. `cargo xtask firmware` runs this
//! test and prints its report.

use alexnet_core::builtin::MICRO;
use alexnet_host::firmware::{
    build_firmware, compare_run, decode_defmt, find_tool, parse_run_log, read_images_bin,
    run_on_board, untrained_micro_blobs, write_images_bin, MPS2_AN385,
};
use alexnet_host::idx::{self, FASHION_MNIST_DIR};
use alexnet_host::BlobFile;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Test images embedded in the firmware.
const IMAGES: usize = 16;

fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-an385")
}

#[test]
fn integer_path_on_a_cortex_m3_is_bit_exact() {
    let assets = firmware_dir().join("assets");
    std::fs::create_dir_all(&assets).unwrap();
    let fm = Path::new(FASHION_MNIST_DIR);
    let (_, int8_blob) = untrained_micro_blobs(fm).unwrap();
    std::fs::write(assets.join("micro-int8.blob"), &int8_blob).unwrap();
    let set = idx::read_images(fm.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = idx::read_labels(fm.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    write_images_bin(&assets.join("images.bin"), &set, &labels, 0, IMAGES).unwrap();

    let elf = build_firmware(&firmware_dir(), "thumbv7m-none-eabi", "firmware-an385", &[]).unwrap();
    let t = Instant::now();
    let (code, frames) = run_on_board(MPS2_AN385, &elf, &[], Duration::from_secs(600)).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let text = decode_defmt(&elf, &frames).unwrap();
    assert_eq!(code, Some(0), "the firmware failed:\n{text}");
    let log = parse_run_log(&text).unwrap();
    let file = BlobFile::from_bytes(&int8_blob, "micro-int8");
    let model = file.model().unwrap();
    let (_, pixels) = read_images_bin(&assets.join("images.bin")).unwrap();
    let c = compare_run(&log, &model, &pixels).unwrap();

    let h = &log.header;
    let macs = MICRO.macs() as f64;
    eprintln!("Cortex-M3 firmware report ({secs:.1} s under QEMU):");
    eprintln!(
        "  kernels {}; flash {} bytes, static RAM {} bytes, stack peak {} bytes, blob {} bytes",
        h["kernels"], h["flash"], h["ram_static"], log.done["stack_peak"], h["blob"]
    );
    eprintln!(
        "  instructions per int8 inference: {:.0} ({:.2} per MAC)",
        c.instructions,
        c.instructions / macs
    );
    let conv_macs: f64 = MICRO
        .walk()
        .flatten()
        .filter(|s| matches!(s.layer, alexnet_core::Layer::Conv(_)))
        .map(|s| s.layer.macs(s.input, s.output) as f64)
        .sum();
    let conv: f64 = c
        .layers
        .iter()
        .filter(|(kind, _, _)| kind == "conv")
        .map(|(_, instructions, _)| instructions)
        .sum();
    eprintln!(
        "  convolutions alone: {:.2} instructions per MAC",
        conv / conv_macs
    );
    let per_layer: Vec<String> = c
        .layers
        .iter()
        .map(|(kind, instructions, _)| format!("{kind} {:.2}", instructions / 1e6))
        .collect();
    eprintln!(
        "  per layer, million instructions: {}",
        per_layer.join(", ")
    );
    eprintln!("  {}", c.verdict());
    assert_eq!(c.images, IMAGES);
    assert_eq!(
        c.identical, IMAGES,
        "logits differ between the device and the host"
    );
    assert_eq!(c.first_difference, None, "a layer's output differs");
    assert_eq!(c.layers.len(), MICRO.layers.len());
    assert_eq!(
        h["kernels"], "Cortex-M",
        "a Cortex-M3 build must run the Cortex-M kernels for cores without DSP (MLA assembly)"
    );
    the_integer_forward_pass_calls_no_soft_float(&elf);
}

/// Functions of the firmware that may call the soft-float routines: the firmware's own
/// start and blob loading (its architecture check compares the LRN constants), the preprocessing and
/// the input quantization (f32 by design), and the f32 kernels, which the kernel table
/// links but the integer forward pass never calls: the trait's default f32 methods, the
/// Cortex-M kernels' own (`CortexM`'s f32 convolution, fully connected layer and LRN) and the
/// functions of their modules, `cortex_m::fpu` and `kernels::blocked::f32_lrn` (the f32 LRN).
const MAY_USE_FLOAT: [&str; 15] = [
    "firmware_an385::__cortex_m_rt_main",
    "firmware_an385::load",
    "alexnet_core::model::preprocess::Preprocess::apply",
    "alexnet_core::model::Model::quantize_input",
    "alexnet_core::kernels::Kernels::conv2d",
    "alexnet_core::kernels::Kernels::linear",
    "alexnet_core::kernels::Kernels::relu",
    "alexnet_core::kernels::Kernels::lrn",
    "alexnet_core::kernels::Kernels::max_pool",
    "alexnet_core::kernels::Kernels::adaptive_avg_pool",
    "<alexnet_core::kernels::cortex_m::CortexM as alexnet_core::kernels::Kernels>::conv2d",
    "<alexnet_core::kernels::cortex_m::CortexM as alexnet_core::kernels::Kernels>::linear",
    "<alexnet_core::kernels::cortex_m::CortexM as alexnet_core::kernels::Kernels>::lrn",
    "alexnet_core::kernels::cortex_m::fpu::",
    "alexnet_core::kernels::blocked::f32_lrn::",
];

/// The disassembly's callers of `__aeabi_f*` and `__aeabi_d*` (soft-float arithmetic,
/// comparisons, conversions) are only [`MAY_USE_FLOAT`] (and the routines themselves): no
/// integer kernel and nothing of the forward pass (the descriptor's checks included) needs
/// floating point. A static check: it sees direct calls, which is how these are made.
fn the_integer_forward_pass_calls_no_soft_float(elf: &Path) {
    let objdump = find_tool("arm-none-eabi-objdump").unwrap();
    let out = std::process::Command::new(objdump)
        .args(["-d", "-C", "--no-show-raw-insn"])
        .arg(elf)
        .output()
        .unwrap();
    assert!(out.status.success(), "objdump failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut function = String::new();
    let mut callers = BTreeSet::new();
    for line in text.lines() {
        if let Some(name) = line
            .split_once(" <")
            .filter(|(addr, _)| addr.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(|(_, rest)| rest.strip_suffix(">:"))
        {
            function = name.to_string();
        } else if (line.contains("<__aeabi_f") || line.contains("<__aeabi_d"))
            && (line.contains("\tbl") || line.contains("\tb.w") || line.contains("\tb\t"))
        {
            callers.insert(function.clone());
        }
    }
    let unexpected: Vec<&String> = callers
        .iter()
        .filter(|f| {
            // A name ending in `::` allows its whole module.
            let allowed = |name: &&str| {
                if name.ends_with("::") {
                    f.starts_with(name)
                } else {
                    f == name
                }
            };
            !f.starts_with("__") && !MAY_USE_FLOAT.iter().any(allowed)
        })
        .collect();
    eprintln!("  functions calling soft-float routines: {callers:?}");
    assert!(
        unexpected.is_empty(),
        "the integer path calls soft-float routines from {unexpected:?}"
    );
    assert!(
        callers.iter().any(|f| f.ends_with("Preprocess::apply")),
        "the check found no soft-float call at all: it is not reading the disassembly"
    );
}
