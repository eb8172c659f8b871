//! `alexnet infer`.

use alexnet_core::layers::{softmax, top_k};
use alexnet_host::image_input::load_image;
use alexnet_host::BlobFile;
use anyhow::{ensure, Result};
use std::path::Path;
use std::time::Instant;

pub fn run(
    model_path: &Path,
    images: &[std::path::PathBuf],
    top: usize,
    logits_out: Option<&Path>,
) -> Result<()> {
    ensure!(top > 0, "--top must be at least 1");
    let file = BlobFile::read(model_path)?;
    let model = file.model()?;
    for warning in crate::info::non_finite_warnings(&model) {
        eprintln!("warning: {warning}");
    }
    let arch = model.arch();
    let mut arena = vec![0u8; model.arena_bytes()];
    let classes = model.classes();
    let mut all_logits = Vec::with_capacity(images.len() * classes);
    let mut logits = vec![0.0f32; classes];
    let mut probs = vec![0.0f32; classes];
    let mut best = vec![0usize; top.min(classes)];
    let int8 = model.precision() == alexnet_core::Precision::Int8;
    let mut codes = vec![0i8; if int8 { model.input_len() } else { 0 }];
    let mut qlogits = vec![0i8; if int8 { classes } else { 0 }];
    for path in images {
        let input = load_image(path, model.preprocess(), arch.input)?;
        let start = Instant::now();
        if int8 {
            model
                .quantize_input(&input, &mut codes)
                .map_err(anyhow::Error::msg)?;
            model
                .forward_int8(&codes, &mut arena, &mut qlogits)
                .map_err(anyhow::Error::msg)?;
            model
                .dequantize_logits(&qlogits, &mut logits)
                .map_err(anyhow::Error::msg)?;
        } else {
            model
                .forward(&input, &mut arena, &mut logits)
                .map_err(anyhow::Error::msg)?;
        }
        let elapsed = start.elapsed();
        all_logits.extend_from_slice(&logits);
        softmax(&logits, &mut probs).map_err(anyhow::Error::msg)?;
        let n = top_k(&probs, &mut best);
        println!(
            "{}  ({} forward {:.1} ms)",
            path.display(),
            if int8 { "int8" } else { "f32" },
            elapsed.as_secs_f64() * 1e3
        );
        for (rank, &class) in best.iter().take(n).enumerate() {
            let label = model.labels().and_then(|l| l.get(class)).unwrap_or("");
            println!(
                "  {:>2}. {:>6.2}%  {:>4}  {}",
                rank + 1,
                probs[class] * 100.0,
                class,
                label
            );
        }
    }
    if let Some(out) = logits_out {
        alexnet_host::npy::write_f32_matrix(out, images.len(), classes, &all_logits)?;
        eprintln!("logits written to {}", out.display());
    }
    Ok(())
}
