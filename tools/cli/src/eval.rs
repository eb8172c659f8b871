//! `alexnet eval`: top-1/top-5 accuracy of a blob (f32 or int8) through the core on a
//! labelled IDX set, and the time per image.

use crate::infer::Runner;
use alexnet_core::postprocess::top_k;
use alexnet_host::{dataset, idx, BlobFile};
use anyhow::{ensure, Result};
use std::path::Path;
use std::time::Instant;

pub fn run(
    model_path: &Path,
    images: &Path,
    labels: &Path,
    count: usize,
    threads: Option<usize>,
) -> Result<()> {
    let file = BlobFile::read(model_path)?;
    let model = file.model()?;
    let labels = idx::read_labels(labels)?;
    let samples = dataset::from_idx(
        images,
        count.min(labels.len()),
        model.preprocess(),
        model.arch().input,
    )?;
    let n = samples.inputs.len();
    ensure!(n > 0, "no images to evaluate");
    let classes = model.classes();
    let mut runner = Runner::new(&model, threads)?;
    let mut logits = vec![0.0f32; classes];
    let mut best = vec![0usize; 5.min(classes)];
    let (mut top1, mut top5) = (0usize, 0usize);
    let start = Instant::now();
    for (input, &label) in samples.inputs.iter().zip(&labels) {
        runner.logits(input, &mut logits)?;
        let k = top_k(&logits, &mut best);
        top1 += usize::from(best.first() == Some(&(label as usize)));
        top5 += usize::from(best[..k].contains(&(label as usize)));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}: {} images, top-1 accuracy {:.2}%, top-5 accuracy {:.2}% ({}, {}, {:.2} ms per image)",
        model_path.display(),
        n,
        100.0 * top1 as f64 / n as f64,
        100.0 * top5 as f64 / n as f64,
        if runner.is_int8() { "int8" } else { "f32" },
        runner.threads_label(),
        1e3 * secs / n as f64
    );
    Ok(())
}
