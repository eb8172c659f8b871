//! `alexnet extract-idx`.

use alexnet_host::idx;
use anyhow::{ensure, Context, Result};
use std::path::Path;

pub fn run(
    images: &Path,
    labels: Option<&Path>,
    first: usize,
    count: usize,
    scale: u32,
    out_dir: &Path,
) -> Result<()> {
    ensure!(scale >= 1, "--scale must be at least 1");
    let set = idx::read_images(images)?;
    let labels = labels.map(idx::read_labels).transpose()?;
    if let Some(l) = &labels {
        ensure!(
            l.len() == set.count,
            "{} labels for {} images",
            l.len(),
            set.count
        );
    }
    ensure!(
        first < set.count,
        "--first {first} but the file has {} images",
        set.count
    );
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let end = (first + count).min(set.count);
    for i in first..end {
        let written = alexnet_host::idx::write_png(
            &set,
            i,
            scale,
            labels.as_ref().and_then(|l| l.get(i).copied()),
            out_dir,
        )?;
        println!("{}", written.display());
    }
    Ok(())
}
