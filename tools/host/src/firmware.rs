//! The host's half of the firmware checks (the Rust firmware's and the C one's): the models
//! and the image file the firmware embeds, running it under QEMU, the parser of its log, and
//! the comparison of every logit with the core on this machine.

use crate::idx::IdxImages;
use crate::quantize::{self, Method};
use crate::{dataset, BlobFile};
use alexnet_core::builtin::MICRO;
use alexnet_core::Model;
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The micro net with the paper's random initialization, f32, and its int8 quantization
/// calibrated on the first 500 training images of Fashion-MNIST (in `fashion_mnist`), with
/// the DSP kernel's prepacked weights (format version 3, as `quantize --pack-dsp` writes
/// them; other builds ignore them): `(f32 blob, int8 blob)`.
pub fn untrained_micro_blobs(fashion_mnist: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    untrained_blobs(&MICRO, fashion_mnist, 500)
}

/// Any built-in net with the paper's random initialization (seed 0), f32, and its int8
/// quantization calibrated on the first `samples` Fashion-MNIST training images (resized and
/// cropped as the net's preprocessing says), with the DSP kernel's prepacked weights where
/// a layer fits them: `(f32 blob, int8 blob)`.
pub fn untrained_blobs(
    arch: &alexnet_core::Arch<'_>,
    fashion_mnist: &Path,
    samples: usize,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let spec = crate::init::paper_init(arch, 0)?;
    let f32_blob = spec.to_blob()?;
    let int8_blob = {
        let file = BlobFile::from_bytes(&f32_blob, arch.name);
        let model = file.model()?;
        let cal = dataset::from_idx(
            &fashion_mnist.join("train-images-idx3-ubyte.gz"),
            samples,
            model.preprocess(),
            arch.input,
        )?;
        let stats = quantize::calibrate(&model, &cal.inputs, |_| {})?;
        let (mut int8, _) = quantize::quantize(&model, &stats, Method::Percentile(99.99))?;
        int8.quant
            .as_mut()
            .context("the quantizer wrote no quantization")?
            .packed_dsp = true;
        int8.to_blob()?
    };
    Ok((f32_blob, int8_blob))
}

/// Runs `cargo` (or a wrapper of it) in `crate_dir`, a crate outside the host workspace,
/// without the variables an outer `cargo test` sets for the workspace's build.
pub fn outside_workspace<'c>(cargo: &'c mut Command, crate_dir: &Path) -> &'c mut Command {
    cargo.current_dir(crate_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        cargo.env_remove(var);
    }
    cargo
}

/// Builds a firmware crate (`crate_dir`, outside the host workspace, its target set in its
/// `.cargo/config.toml`) in release, in its own `target/` folder, with `features`; gives the
/// ELF of its binary `bin` for `target`. The outer `cargo test`'s variables meant for the
/// host's build are removed: the firmware has its own.
pub fn build_firmware(
    crate_dir: &Path,
    target: &str,
    bin: &str,
    features: &[&str],
) -> Result<PathBuf> {
    cargo_build_release(crate_dir, &[], features)?;
    Ok(crate_dir
        .join("target")
        .join(target)
        .join("release")
        .join(bin))
}

/// [`build_firmware`] for one of the crate's examples (`examples/<example>.rs`).
pub fn build_firmware_example(
    crate_dir: &Path,
    target: &str,
    example: &str,
    features: &[&str],
) -> Result<PathBuf> {
    cargo_build_release(crate_dir, &["--example", example], features)?;
    Ok(crate_dir
        .join("target")
        .join(target)
        .join("release")
        .join("examples")
        .join(example))
}

/// `cargo build --release` of a firmware crate with `args` and `features`.
fn cargo_build_release(crate_dir: &Path, args: &[&str], features: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    outside_workspace(&mut cmd, crate_dir).args([
        "build",
        "--release",
        "--quiet",
        "--target-dir",
        "target",
    ]);
    cmd.args(args);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let status = cmd.status().context("cannot run cargo for the firmware")?;
    ensure!(status.success(), "{} does not build", crate_dir.display());
    Ok(())
}

/// A program on the PATH or in Cargo's bin folder (where `cargo xtask setup` installs).
pub fn find_tool(name: &str) -> Result<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(home.map(|h| h.join("bin")))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("{name} is not installed: `cargo xtask setup` installs it"))
}

/// A board QEMU models: its machine, CPU and CPU options.
#[derive(Clone, Copy, Debug)]
pub struct Board {
    /// `-machine`.
    pub machine: &'static str,
    /// `-cpu`.
    pub cpu: &'static str,
    /// Further options that configure the board.
    pub options: &'static [&'static str],
}

/// The Cortex-M4F board of `firmware-example/` and the C firmware.
pub const MPS2_AN386: Board = Board {
    machine: "mps2-an386",
    cpu: "cortex-m4",
    options: &[],
};
/// The Cortex-M3 board of `firmware-an385/`: no FPU, no DSP extension.
pub const MPS2_AN385: Board = Board {
    machine: "mps2-an385",
    cpu: "cortex-m3",
    options: &[],
};
/// The Cortex-M33 board with DDR of `firmware-an524/`. QEMU gives the SSE-200's CPU 0
/// neither FPU nor DSP unless asked (the subsystem's default configuration); the M33s of
/// the boards this stands for (STM32U5, nRF5340, LPC55S69) have both.
pub const MPS3_AN524: Board = Board {
    machine: "mps3-an524",
    cpu: "cortex-m33",
    options: &[
        "-global",
        "sse-200.CPU0_FPU=on",
        "-global",
        "sse-200.CPU0_DSP=on",
    ],
};

/// Runs an ELF on QEMU's mps2-an386 (Cortex-M4F); see [`run_on_board`].
pub fn run_on_qemu(elf: &Path, limit: Duration) -> Result<(Option<i32>, Vec<u8>)> {
    run_on_board(MPS2_AN386, elf, &[], limit)
}

/// Runs an ELF on `board` with `-icount shift=0` (its clock counts instructions),
/// semihosting and `extra` options (e.g. `-device loader,...`); gives its exit code and
/// everything it wrote to stdout. Killed after `limit`.
pub fn run_on_board(
    board: Board,
    elf: &Path,
    extra: &[String],
    limit: Duration,
) -> Result<(Option<i32>, Vec<u8>)> {
    let mut qemu = Command::new(find_tool("qemu-system-arm")?)
        .args(["-machine", board.machine, "-cpu", board.cpu, "-nographic"])
        .args(board.options)
        .args(["-monitor", "none", "-serial", "none", "-icount", "shift=0"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .args(extra)
        .arg("-kernel")
        .arg(elf)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start qemu-system-arm")?;
    let mut out = qemu.stdout.take().context("no stdout from QEMU")?;
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut bytes).map(|_| bytes)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = qemu.try_wait()? {
            break s;
        }
        if start.elapsed() > limit {
            qemu.kill()?;
            bail!("{} ran for more than {limit:?} under QEMU", elf.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let bytes = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the thread reading QEMU's output panicked"))??;
    Ok((status.code(), bytes))
}

/// A firmware's defmt frames as text, decoded by `defmt-print` with the firmware's ELF.
pub fn decode_defmt(elf: &Path, frames: &[u8]) -> Result<String> {
    let mut decode = Command::new(find_tool("defmt-print")?)
        .arg("-e")
        .arg(elf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start defmt-print")?;
    // defmt-print reads to the end of its input: close it after writing.
    let written = std::io::Write::write_all(
        &mut decode.stdin.take().context("defmt-print has no stdin")?,
        frames,
    );
    let out = decode.wait_with_output().context("defmt-print")?;
    written.context("defmt-print")?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The boot record `firmware-an524` reads at the start of DDR (`firmware-an524/src/boot.rs`):
/// the blob and the images each at an offset from the record, 4 KiB aligned.
pub struct BootImage {
    /// The record.
    pub record: Vec<u8>,
    /// Offsets of the blob and of the images from the record's address.
    pub blob_offset: u32,
    /// See `blob_offset`.
    pub images_offset: u32,
}

/// Lays out `blob_len` bytes of blob and `images_len` of images after the record.
pub fn boot_image(blob_len: usize, images_len: usize) -> Result<BootImage> {
    let blob_offset = 4096u64;
    let images_offset = (blob_offset + blob_len as u64).div_ceil(4096) * 4096;
    ensure!(
        images_offset + images_len as u64 <= 0x0F00_0000,
        "the blob and the images ({} bytes) do not fit the board's DDR below its arenas",
        blob_len + images_len
    );
    let mut record = b"ALXBOOT1".to_vec();
    for word in [
        blob_offset,
        blob_len as u64,
        images_offset,
        images_len as u64,
    ] {
        record.extend_from_slice(&(word as u32).to_le_bytes());
    }
    Ok(BootImage {
        record,
        blob_offset: blob_offset as u32,
        images_offset: images_offset as u32,
    })
}

/// Images with channels in the format of `firmware-an524/src/images.rs`: `ALXIMG02`, u32
/// count, channels, rows, cols, the labels, then each image's bytes (rows of interleaved
/// channels).
pub fn images_v2(labels: &[u8], pixels: &[Vec<u8>], shape: alexnet_core::Shape) -> Result<Vec<u8>> {
    ensure!(labels.len() == pixels.len(), "one label per image");
    ensure!(
        pixels.iter().all(|p| p.len() == shape.len()),
        "every image must have {} bytes",
        shape.len()
    );
    let mut out = b"ALXIMG02".to_vec();
    for v in [labels.len(), shape.c, shape.h, shape.w] {
        out.extend_from_slice(&(v as u32).to_le_bytes());
    }
    out.extend_from_slice(labels);
    for p in pixels {
        out.extend_from_slice(p);
    }
    Ok(out)
}

/// One `LAYER` line of a run log: a layer of the per-layer profile.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerRecord {
    /// Layer index.
    pub index: usize,
    /// Its kind (`conv`, `lrn`, ...).
    pub kind: String,
    /// SysTick ticks it took.
    pub ticks: u64,
    /// CRC-32 of its output's bytes.
    pub crc: u32,
}

/// The decoded log of a one-model run (`firmware-an524`): `FW`, `IMG ... logits=[..]`,
/// `LAYER`, `DONE` lines.
#[derive(Clone, Debug, Default)]
pub struct RunLog {
    /// Fields of the `FW` line.
    pub header: BTreeMap<String, String>,
    /// Per image: its fields and its logits (int8 values, or f32 bits).
    pub images: Vec<(BTreeMap<String, String>, Vec<i64>)>,
    /// The per-layer profile of the first image.
    pub layers: Vec<LayerRecord>,
    /// Fields of the `DONE` line.
    pub done: BTreeMap<String, String>,
    /// Lines with `FAIL`, `PANIC` or `HARDFAULT`.
    pub errors: Vec<String>,
}

/// Parses a one-model run's decoded log.
pub fn parse_run_log(text: &str) -> Result<RunLog> {
    let mut log = RunLog::default();
    for line in text.lines() {
        if let Some(at) = line.find("FW ") {
            log.header = fields(&line[at + 3..]);
        } else if let Some(at) = line.find("IMG ") {
            let (head, logits) = line[at + 4..]
                .split_once(" logits=")
                .context("IMG line lacks logits=")?;
            log.images.push((fields(head), list(logits)?));
        } else if let Some(at) = line.find("LAYER ") {
            let rest = &line[at + 6..];
            let f = fields(rest);
            let get = |k: &str| f.get(k).with_context(|| format!("LAYER line lacks {k}"));
            log.layers.push(LayerRecord {
                index: rest
                    .split_whitespace()
                    .next()
                    .and_then(|i| i.parse().ok())
                    .context("LAYER line lacks its index")?,
                kind: get("kind")?.clone(),
                ticks: get("ticks")?.parse().context("LAYER ticks")?,
                crc: u32::from_str_radix(get("crc")?, 16).context("LAYER crc")?,
            });
        } else {
            shared_line(line, &mut log.done, &mut log.errors);
        }
    }
    Ok(log)
}

/// A one-model run compared with the host.
#[derive(Clone, Debug)]
pub struct RunComparison {
    /// Images compared.
    pub images: usize,
    /// Images whose logits are identical (int8 values, or f32 bits).
    pub identical: usize,
    /// Images the device classified as labelled.
    pub correct: usize,
    /// Mean instructions of one inference.
    pub instructions: f64,
    /// Instructions per SysTick tick, as the firmware calibrated it.
    pub instructions_per_tick: f64,
    /// Per layer of the profile: kind, instructions, whether its digest matches the host's.
    pub layers: Vec<(String, f64, bool)>,
    /// The first layer whose output differs from the host's, e.g. `layer 4 (lrn)`.
    pub first_difference: Option<String>,
}

impl RunComparison {
    /// `bit-identical logits: 4/4; per-layer digests: all identical` (or the first layer
    /// that differs), for a test's report.
    pub fn verdict(&self) -> String {
        let layers = match &self.first_difference {
            None => "all identical".to_string(),
            Some(l) => format!("first difference at {l}"),
        };
        format!(
            "bit-identical logits: {}/{}; per-layer digests: {layers}",
            self.identical, self.images
        )
    }
}

/// Recomputes every image of a one-model run on this machine (the same `pixels`, the same
/// blob) and compares the logits, and the first image's per-layer digests.
pub fn compare_run(log: &RunLog, model: &Model<'_>, pixels: &[Vec<u8>]) -> Result<RunComparison> {
    let per_tick = finished_run(&log.header, &log.done, &log.errors)?;
    ensure!(
        log.images.len() == pixels.len(),
        "the log has {} images, the host {}",
        log.images.len(),
        pixels.len()
    );
    let shape = model.arch().input;
    let int8 = model.precision() == alexnet_core::Precision::Int8;
    let mut input = vec![0.0f32; shape.len()];
    let mut codes = vec![0i8; shape.len()];
    let mut arena = vec![0u8; model.arena_bytes()];
    let (mut q, mut l) = (vec![0i8; model.classes()], vec![0.0f32; model.classes()]);
    let mut c = RunComparison {
        images: pixels.len(),
        identical: 0,
        correct: 0,
        instructions: 0.0,
        instructions_per_tick: per_tick,
        layers: Vec::new(),
        first_difference: None,
    };
    let msg = anyhow::Error::msg;
    for ((fields, logits), px) in log.images.iter().zip(pixels) {
        model
            .preprocess()
            .apply(px, shape, &mut input)
            .map_err(msg)?;
        let host: Vec<i64> = if int8 {
            model.quantize_input(&input, &mut codes).map_err(msg)?;
            model
                .forward_int8(&codes, &mut arena, &mut q)
                .map_err(msg)?;
            q.iter().map(|&v| v as i64).collect()
        } else {
            model.forward(&input, &mut arena, &mut l).map_err(msg)?;
            l.iter().map(|v| v.to_bits() as i64).collect()
        };
        c.identical += usize::from(*logits == host);
        let num = |k: &str| -> Result<u64> {
            fields
                .get(k)
                .with_context(|| format!("IMG line lacks {k}"))?
                .parse()
                .with_context(|| format!("IMG {k}"))
        };
        c.correct += usize::from(num("class")? == num("label")?);
        c.instructions += num("ticks")? as f64 * per_tick;
    }
    c.instructions /= c.images.max(1) as f64;
    // The first image, layer by layer, digested as the firmware does.
    if let Some(px) = pixels.first() {
        let digests = layer_digests(model, px)?;
        let device: Vec<u32> = log.layers.iter().map(|l| l.crc).collect();
        c.first_difference = first_difference(model, &device, &digests)?;
        for (layer, host) in log.layers.iter().zip(&digests) {
            let same = layer.crc == *host;
            c.layers
                .push((layer.kind.clone(), layer.ticks as f64 * per_tick, same));
        }
    }
    Ok(c)
}

/// The first image's per-layer digests, as the firmware's profile computes them
/// (`firmware_support::profile`): the model run layer by layer on `pixels`, the CRC-32 of
/// each layer's output bytes (f32 little-endian, int8 as bytes).
pub fn layer_digests(model: &Model<'_>, pixels: &[u8]) -> Result<Vec<u32>> {
    let msg = anyhow::Error::msg;
    let shape = model.arch().input;
    let mut input = vec![0.0f32; shape.len()];
    model
        .preprocess()
        .apply(pixels, shape, &mut input)
        .map_err(msg)?;
    let mut observed = vec![0u8; model.observed_arena_bytes()];
    let mut digests = Vec::new();
    if model.precision() == alexnet_core::Precision::Int8 {
        let mut codes = vec![0i8; shape.len()];
        let mut q = vec![0i8; model.classes()];
        model.quantize_input(&input, &mut codes).map_err(msg)?;
        let mut see = |_, _, out: &[i8]| digests.push(crc32fast::hash(bytemuck::cast_slice(out)));
        model
            .run(
                &codes,
                &mut observed,
                &mut q,
                alexnet_core::RunOptions::new().observe(&mut see),
            )
            .map_err(msg)?;
    } else {
        let mut l = vec![0.0f32; model.classes()];
        let mut see = |_, _, out: &[f32]| digests.push(crc32fast::hash(bytemuck::cast_slice(out)));
        model
            .run(
                &input,
                &mut observed,
                &mut l,
                alexnet_core::RunOptions::new().observe(&mut see),
            )
            .map_err(msg)?;
    }
    Ok(digests)
}

/// The first layer whose device digest differs from the host's, e.g. `layer 2 (lrn)`; an
/// error if the two profiles have different lengths.
pub fn first_difference(model: &Model<'_>, device: &[u32], host: &[u32]) -> Result<Option<String>> {
    ensure!(
        device.len() == host.len(),
        "the device profiles {} layers, the host {}",
        device.len(),
        host.len()
    );
    Ok(device.iter().zip(host).position(|(d, h)| d != h).map(|i| {
        let kind = model.layers().get(i).map_or("?", |l| l.kind_name());
        format!("layer {i} ({kind})")
    }))
}

/// Magic of the firmware's image file.
pub const IMAGES_MAGIC: &[u8; 8] = b"ALXIMG01";

/// Writes images `first..first + count` (with labels) in the firmware's format: the magic,
/// u32 count, rows, cols (little-endian), the labels, then the pixels.
pub fn write_images_bin(
    path: &Path,
    set: &IdxImages,
    labels: &[u8],
    first: usize,
    count: usize,
) -> Result<()> {
    ensure!(
        first + count <= set.count && labels.len() == set.count,
        "not enough images or labels"
    );
    let mut out = IMAGES_MAGIC.to_vec();
    for w in [count, set.rows, set.cols] {
        out.extend_from_slice(&(w as u32).to_le_bytes());
    }
    out.extend_from_slice(&labels[first..first + count]);
    for i in first..first + count {
        out.extend_from_slice(set.image(i).context("image index")?);
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads the firmware's image file back: `(labels, pixels of each image)`.
pub fn read_images_bin(path: &Path) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let b = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    ensure!(
        b.len() >= 20 && &b[..8] == IMAGES_MAGIC,
        "{} is not an image file for the firmware",
        path.display()
    );
    let word = |i: usize| u32::from_le_bytes(b[8 + 4 * i..12 + 4 * i].try_into().unwrap()) as usize;
    let (count, size) = (word(0), word(1) * word(2));
    ensure!(
        b.len() == 20 + count * (1 + size),
        "{} is truncated",
        path.display()
    );
    let labels = b[20..20 + count].to_vec();
    let pixels = (0..count)
        .map(|i| b[20 + count + i * size..20 + count + (i + 1) * size].to_vec())
        .collect();
    Ok((labels, pixels))
}

/// One `IMG` line of the log.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageRecord {
    /// Fields by name (`label`, `int8_class`, `int8_instr`, ...).
    pub fields: BTreeMap<String, String>,
    /// The int8 logits.
    pub int8: Vec<i8>,
    /// The f32 logits' bits.
    pub f32_bits: Vec<u32>,
}

impl ImageRecord {
    /// A numeric field.
    pub fn num(&self, name: &str) -> Result<u64> {
        let v = self
            .fields
            .get(name)
            .with_context(|| format!("IMG line lacks {name}"))?;
        v.parse()
            .with_context(|| format!("{name}={v} is not a number"))
    }
}

/// The decoded log of a firmware run.
#[derive(Clone, Debug, Default)]
pub struct FirmwareLog {
    /// Fields of the `FW` line (sizes, calibration).
    pub header: BTreeMap<String, String>,
    /// One record per image.
    pub images: Vec<ImageRecord>,
    /// Fields of the `DONE` line.
    pub done: BTreeMap<String, String>,
    /// Lines with `FAIL`, `PANIC` or `HARDFAULT`.
    pub errors: Vec<String>,
    /// SysTick ticks of each layer on the first image: `(int8, f32)`.
    pub layer_ticks: Option<(Vec<u64>, Vec<u64>)>,
    /// CRC-32 of each layer's output on the first image: `(int8, f32)`.
    pub layer_digests: Option<(Vec<u32>, Vec<u32>)>,
}

/// `key=value` pairs separated by spaces; a word without `=` continues the previous value
/// (`kernels=Cortex-M DSP`).
fn fields(s: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut last: Option<String> = None;
    for word in s.split_whitespace() {
        match word.split_once('=') {
            Some((k, v)) => {
                fields.insert(k.to_string(), v.to_string());
                last = Some(k.to_string());
            }
            None => {
                if let Some(value) = last.as_ref().and_then(|k| fields.get_mut(k)) {
                    value.push(' ');
                    value.push_str(word);
                }
            }
        }
    }
    fields
}

fn list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .context("expected [..]")?;
    inner
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| anyhow::anyhow!("bad list value {v:?}"))
        })
        .collect()
}

/// The lines every firmware log ends with: `DONE` (its fields into `done`) and lines with
/// `FAIL`, `PANIC` or `HARDFAULT` (into `errors`).
fn shared_line(line: &str, done: &mut BTreeMap<String, String>, errors: &mut Vec<String>) {
    if let Some(at) = line.find("DONE ") {
        *done = fields(&line[at + 5..]);
    } else if ["FAIL", "PANIC", "HARDFAULT"]
        .iter()
        .any(|m| line.contains(m))
    {
        errors.push(line.to_string());
    }
}

/// Checks that a run reported no error and finished; gives its instructions per SysTick tick
/// (QEMU's clock under -icount: the firmware timed a loop of known length, the `FW` line's
/// `cal_instructions` over `cal_ticks`).
fn finished_run(
    header: &BTreeMap<String, String>,
    done: &BTreeMap<String, String>,
    errors: &[String],
) -> Result<f64> {
    if !errors.is_empty() {
        bail!("the firmware reported errors:\n{}", errors.join("\n"));
    }
    ensure!(
        !done.is_empty(),
        "the log has no DONE line: the run did not finish"
    );
    let number = |k: &str| -> Result<f64> {
        header
            .get(k)
            .with_context(|| format!("FW line lacks {k}"))?
            .parse::<f64>()
            .with_context(|| format!("{k} is not a number"))
    };
    Ok(number("cal_instructions")? / number("cal_ticks")?.max(1.0))
}

/// Parses defmt-print's output (one message per line, possibly with a level prefix).
pub fn parse_log(text: &str) -> Result<FirmwareLog> {
    let mut log = FirmwareLog::default();
    for line in text.lines() {
        if let Some(at) = line.find("FW ") {
            log.header = fields(&line[at + 3..]);
        } else if let Some(at) = line.find("IMG ") {
            let rest = &line[at + 4..];
            let (head, lists) = rest.split_once(" int8=").context("IMG line lacks int8=")?;
            let (int8, f32) = lists.split_once(" f32=").context("IMG line lacks f32=")?;
            log.images.push(ImageRecord {
                fields: fields(head),
                int8: list(int8)?,
                f32_bits: list(f32)?,
            });
        } else if let Some(at) = line.find("LAYERS int8=") {
            let (int8, f32) = line[at + 12..]
                .split_once(" f32=")
                .context("LAYERS line lacks f32=")?;
            log.layer_ticks = Some((list(int8)?, list(f32)?));
        } else if let Some(at) = line.find("DIGESTS int8=") {
            let (int8, f32) = line[at + 13..]
                .split_once(" f32=")
                .context("DIGESTS line lacks f32=")?;
            log.layer_digests = Some((list(int8)?, list(f32)?));
        } else {
            shared_line(line, &mut log.done, &mut log.errors);
        }
    }
    Ok(log)
}

/// The comparison of a firmware run with the host.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// Images compared.
    pub images: usize,
    /// Images whose int8 logits are identical.
    pub int8_identical: usize,
    /// Images whose f32 logits are bit-identical.
    pub f32_identical: usize,
    /// Images the int8 path classified correctly (device).
    pub int8_correct: usize,
    /// Images the f32 path classified correctly (device).
    pub f32_correct: usize,
    /// Mean instructions of one int8 inference.
    pub int8_instructions: f64,
    /// Mean instructions of one f32 inference.
    pub f32_instructions: f64,
    /// Instructions per SysTick tick, as the firmware calibrated it.
    pub instructions_per_tick: f64,
    /// Layers whose digests were compared (per path; 0 if the log had none).
    pub layers_compared: usize,
    /// The first int8 layer whose output differs from the host's.
    pub int8_first_difference: Option<String>,
    /// The first f32 layer whose output differs from the host's.
    pub f32_first_difference: Option<String>,
}

/// Recomputes every image on this machine with the same blobs and compares logit by logit,
/// and the first image's per-layer digests.
pub fn compare(
    log: &FirmwareLog,
    int8: &Model<'_>,
    f32m: &Model<'_>,
    images: &Path,
) -> Result<Comparison> {
    let per_tick = finished_run(&log.header, &log.done, &log.errors)?;
    let (labels, pixels) = read_images_bin(images)?;
    ensure!(
        log.images.len() == labels.len(),
        "the log has {} images, the file {}",
        log.images.len(),
        labels.len()
    );
    let shape = f32m.arch().input;
    let mut input = vec![0.0f32; shape.len()];
    let mut codes = vec![0i8; shape.len()];
    let mut arena8 = vec![0u8; int8.arena_bytes()];
    let mut arena32 = vec![0u8; f32m.arena_bytes()];
    let (mut q, mut l) = (vec![0i8; int8.classes()], vec![0.0f32; f32m.classes()]);
    let mut c = Comparison {
        images: labels.len(),
        int8_identical: 0,
        f32_identical: 0,
        int8_correct: 0,
        f32_correct: 0,
        int8_instructions: 0.0,
        f32_instructions: 0.0,
        instructions_per_tick: per_tick,
        layers_compared: 0,
        int8_first_difference: None,
        f32_first_difference: None,
    };
    for (i, rec) in log.images.iter().enumerate() {
        int8.preprocess()
            .apply(&pixels[i], shape, &mut input)
            .map_err(anyhow::Error::msg)?;
        int8.quantize_input(&input, &mut codes)
            .map_err(anyhow::Error::msg)?;
        int8.forward_int8(&codes, &mut arena8, &mut q)
            .map_err(anyhow::Error::msg)?;
        f32m.preprocess()
            .apply(&pixels[i], shape, &mut input)
            .map_err(anyhow::Error::msg)?;
        f32m.forward(&input, &mut arena32, &mut l)
            .map_err(anyhow::Error::msg)?;
        let bits: Vec<u32> = l.iter().map(|v| v.to_bits()).collect();
        c.int8_identical += usize::from(rec.int8 == q);
        c.f32_identical += usize::from(rec.f32_bits == bits);
        c.int8_correct += usize::from(rec.num("int8_class")? == labels[i] as u64);
        c.f32_correct += usize::from(rec.num("f32_class")? == labels[i] as u64);
        c.int8_instructions += rec.num("int8_ticks")? as f64 * per_tick;
        c.f32_instructions += rec.num("f32_ticks")? as f64 * per_tick;
    }
    c.int8_instructions /= c.images.max(1) as f64;
    c.f32_instructions /= c.images.max(1) as f64;
    if let (Some((d8, d32)), Some(px)) = (&log.layer_digests, pixels.first()) {
        c.int8_first_difference = first_difference(int8, d8, &layer_digests(int8, px)?)?;
        c.f32_first_difference = first_difference(f32m, d32, &layer_digests(f32m, px)?)?;
        c.layers_compared = d8.len();
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::fields;

    #[test]
    fn a_value_may_hold_spaces() {
        let f = fields("net=micro kernels=Cortex-M DSP arena=12 flag");
        assert_eq!(f["net"], "micro");
        assert_eq!(f["kernels"], "Cortex-M DSP");
        assert_eq!(f["arena"], "12 flag");
        assert_eq!(f.len(), 3);
    }
}
