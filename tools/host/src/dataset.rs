//! Sample inputs for calibration and evaluation: an image folder or an IDX file, prepared
//! with a model's own preprocessing.

use crate::idx;
use crate::image_input::{load_image, prepare_image};
use alexnet_core::{Preprocess, Shape};
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};

/// Prepared inputs, and the files that could not be used (with the reason).
pub struct Samples {
    /// `[C, H, W]` inputs.
    pub inputs: Vec<Vec<f32>>,
    /// Skipped files.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Every JPEG/PNG under `dir` (recursively), sorted by path.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).with_context(|| format!("cannot read folder {}", d.display()))?;
        for e in entries {
            let path = e?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Up to `count` images spread evenly over the folder's sorted files (so every class folder
/// contributes); unreadable images are skipped and listed.
pub fn from_folder(
    dir: &Path,
    count: usize,
    prep: &Preprocess<'_>,
    input: Shape,
) -> Result<Samples> {
    let files = image_files(dir)?;
    ensure!(
        !files.is_empty(),
        "no JPEG or PNG images under {}",
        dir.display()
    );
    let take = count.min(files.len()).max(1);
    let mut samples = Samples {
        inputs: Vec::new(),
        skipped: Vec::new(),
    };
    for k in 0..take {
        let path = &files[k * files.len() / take];
        match load_image(path, prep, input) {
            Ok(x) => samples.inputs.push(x),
            Err(e) => samples.skipped.push((path.clone(), format!("{e:#}"))),
        }
    }
    if let (true, Some((path, why))) = (samples.inputs.is_empty(), samples.skipped.first()) {
        anyhow::bail!(
            "none of the {take} images under {} could be used; {}: {why}",
            dir.display(),
            path.display()
        );
    }
    Ok(samples)
}

/// The first `count` images of an IDX file (plain or gzip).
pub fn from_idx(path: &Path, count: usize, prep: &Preprocess<'_>, input: Shape) -> Result<Samples> {
    let set = idx::read_images(path)?;
    ensure!(set.count > 0, "{} holds no images", path.display());
    let mut inputs = Vec::new();
    for i in 0..count.min(set.count) {
        let pixels = set.image(i).context("IDX image out of range")?.to_vec();
        let img = image::GrayImage::from_raw(set.cols as u32, set.rows as u32, pixels)
            .context("IDX size")?;
        inputs.push(prepare_image(
            &image::DynamicImage::ImageLuma8(img),
            prep,
            input,
        )?);
    }
    Ok(Samples {
        inputs,
        skipped: Vec::new(),
    })
}

/// Images from `path`: an IDX file if it is a file, else an image folder.
pub fn load(path: &Path, count: usize, prep: &Preprocess<'_>, input: Shape) -> Result<Samples> {
    ensure!(count > 0, "asked for 0 samples");
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        from_folder(path, count, prep, input)
    } else {
        from_idx(path, count, prep, input)
    }
}
