//! `alexnet infer`.

use alexnet_core::postprocess::{softmax, top_k};
use alexnet_core::RunOptions;
use alexnet_host::image_input::load_image;
use alexnet_host::parallel::Parallel;
use alexnet_host::BlobFile;
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `inputs` as a list of image files: files as given, folders searched recursively for
/// image files ([`alexnet_host::dataset::image_files`]).
fn collect_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            out.extend(alexnet_host::dataset::image_files(input)?);
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

/// Whether a JPEG file's data ends without its end-of-image marker (`FF D9`, trailing zero
/// padding aside): the decoder fills a cut-off image with grey and says nothing. Reads the
/// first two bytes and the last 4 KiB only, not the image again.
fn jpeg_truncated(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let read = || -> std::io::Result<bool> {
        let mut file = std::fs::File::open(path)?;
        let mut magic = [0u8; 2];
        file.read_exact(&mut magic)?;
        if magic != [0xff, 0xd8] {
            return Ok(false);
        }
        let len = file.seek(SeekFrom::End(0))?;
        file.seek(SeekFrom::Start(len.saturating_sub(4096)))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail)?;
        let end = tail.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        Ok(!tail[..end].ends_with(&[0xff, 0xd9]))
    };
    read().unwrap_or(false)
}

pub fn run(
    model_path: &Path,
    inputs: &[PathBuf],
    top: usize,
    logits_out: Option<&Path>,
    threads: Option<usize>,
    json: bool,
) -> Result<()> {
    ensure!(top > 0, "--top must be at least 1");
    let file = BlobFile::read(model_path)?;
    let model = file.model()?;
    for warning in crate::info::non_finite_warnings(&model) {
        eprintln!("warning: {warning}");
    }
    let images = collect_images(inputs)?;
    ensure!(
        !images.is_empty(),
        "no image files in {}",
        inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let arch = model.arch();
    let classes = model.classes();
    let mut runner = Runner::new(&model, threads)?;
    let mut all_logits = Vec::with_capacity(images.len() * classes);
    let mut classified = Vec::with_capacity(images.len());
    let mut logits = vec![0.0f32; classes];
    let mut probs = vec![0.0f32; classes];
    let mut best = vec![0usize; top.min(classes)];
    let int8 = runner.is_int8();
    let mut skipped = 0usize;
    for path in &images {
        let input = match load_image(path, model.preprocess(), arch.input) {
            Ok(input) => input,
            Err(e) => {
                eprintln!("skipped {}: {e:#}", path.display());
                skipped += 1;
                continue;
            }
        };
        if jpeg_truncated(path) {
            eprintln!(
                "warning: {}: the JPEG data ends without its end marker: the image is probably cut off (classified anyway)",
                path.display()
            );
        }
        let start = Instant::now();
        runner.logits(&input, &mut logits)?;
        let elapsed = start.elapsed();
        all_logits.extend_from_slice(&logits);
        classified.push(path);
        softmax(&logits, &mut probs).map_err(anyhow::Error::msg)?;
        // Ranked on the logits: probabilities can round to ties the logits do not have.
        let n = top_k(&logits, &mut best);
        let label = |class: usize| model.labels().and_then(|l| l.get(class)).unwrap_or("");
        if json {
            let top: Vec<serde_json::Value> = best[..n]
                .iter()
                .map(|&class| {
                    serde_json::json!({
                        "class": class,
                        "label": label(class),
                        "logit": logits[class],
                        "probability": probs[class],
                    })
                })
                .collect();
            let line = serde_json::json!({
                "path": path.display().to_string(),
                "precision": if int8 { "int8" } else { "f32" },
                "forward_ms": elapsed.as_secs_f64() * 1e3,
                "top": top,
            });
            println!("{line}");
            continue;
        }
        println!(
            "{}  ({} forward {:.1} ms, {})",
            path.display(),
            if int8 { "int8" } else { "f32" },
            elapsed.as_secs_f64() * 1e3,
            runner.threads_label()
        );
        for (rank, &class) in best.iter().take(n).enumerate() {
            println!(
                "  {:>2}. {:>6.2}%  {:>4}  {}",
                rank + 1,
                probs[class] * 100.0,
                class,
                label(class)
            );
        }
    }
    if let Some(out) = logits_out {
        alexnet_host::npy::write_f32_matrix(out, classified.len(), classes, &all_logits)?;
        let paths = out.with_extension("paths.txt");
        let list: String = classified
            .iter()
            .map(|p| format!("{}\n", p.display()))
            .collect();
        std::fs::write(&paths, list)
            .with_context(|| format!("cannot write {}", paths.display()))?;
        eprintln!(
            "logits of {} images written to {}, their paths to {}",
            classified.len(),
            out.display(),
            paths.display()
        );
    }
    ensure!(
        skipped == 0,
        "{skipped} of {} images skipped (named above)",
        images.len()
    );
    Ok(())
}

/// Below this many multiply-accumulates per image a net runs on one thread unless told.
const SMALL_NET_MACS: u64 = 100_000_000;

/// Runs a model of either precision on f32 inputs: int8 models quantize the input and
/// dequantize the logits. Owns the buffers, so a loop over images allocates nothing.
///
/// One thread runs the native kernels' pass (fused, or every layer whole where the kernels
/// prefer it: the arena has room for both); more run every layer whole
/// (`RunOptions::unfused`) on [`Parallel`] kernels, which split every layer's outputs
/// (convolutions by rows or channels): the same kernels per output, so the same logits bit
/// for bit.
pub struct Runner<'m, 'a> {
    model: &'m alexnet_core::Model<'a>,
    threads: Option<Parallel>,
    arena: Vec<u8>,
    codes: Vec<i8>,
    qlogits: Vec<i8>,
}

impl<'m, 'a> Runner<'m, 'a> {
    /// Buffers sized for `model`, and a pool of `threads` threads (0: one per core; 1: none;
    /// `None`: one per core, or none for a net under 100 M MACs).
    pub fn new(model: &'m alexnet_core::Model<'a>, threads: Option<usize>) -> Result<Self> {
        let int8 = model.precision() == alexnet_core::Precision::Int8;
        let cores = || std::thread::available_parallelism().map_or(1, |n| n.get());
        let wanted = match threads {
            // By default a small net runs on one thread: splitting its layers costs more
            // than it saves (the micro net, 6.4 M MACs: 1,129 images/s on one thread, 740 on
            // two).
            None if model.arch().macs() < SMALL_NET_MACS => 1,
            None | Some(0) => cores(),
            Some(n) => n,
        };
        let threads = if wanted > 1 {
            Some(Parallel::new(wanted).context("starting the inference threads")?)
        } else {
            None
        };
        // The arena of whole layers (at most 1.5 MB, the f32 paper net's), which the threaded
        // pass needs and the native kernels may prefer (`Kernels::prefers_whole_layers`).
        let arena = model.observed_arena_bytes();
        Ok(Runner {
            model,
            threads,
            arena: vec![0u8; arena],
            codes: vec![0i8; if int8 { model.input_len() } else { 0 }],
            qlogits: vec![0i8; if int8 { model.classes() } else { 0 }],
        })
    }

    /// Whether the model runs the int8 path.
    pub fn is_int8(&self) -> bool {
        !self.qlogits.is_empty()
    }

    /// "1 thread" or "N threads", for the timings.
    pub fn threads_label(&self) -> String {
        match &self.threads {
            Some(pool) => format!("{} threads", pool.threads()),
            None => "1 thread".to_string(),
        }
    }

    /// The logits of one preprocessed input.
    pub fn logits(&mut self, input: &[f32], logits: &mut [f32]) -> Result<()> {
        let m = self.model;
        if self.is_int8() {
            m.quantize_input(input, &mut self.codes)
                .map_err(anyhow::Error::msg)?;
            let options = options(self.threads.as_ref());
            m.run(&self.codes, &mut self.arena, &mut self.qlogits, options)
                .map_err(anyhow::Error::msg)?;
            m.dequantize_logits(&self.qlogits, logits)
                .map_err(anyhow::Error::msg)
        } else {
            let options = options(self.threads.as_ref());
            m.run(input, &mut self.arena, logits, options)
                .map_err(anyhow::Error::msg)
        }
    }
}

/// The native kernels' pass, or every layer whole on the pool's.
fn options<T>(threads: Option<&Parallel>) -> RunOptions<'_, T> {
    match threads {
        Some(pool) => RunOptions::new().kernels(pool).unfused(),
        None => RunOptions::new(),
    }
}
