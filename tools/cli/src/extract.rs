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
    class_folders: bool,
    out_dir: &Path,
) -> Result<()> {
    ensure!(
        !class_folders || labels.is_some(),
        "--class-folders needs the labels (--labels)"
    );
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
        let label = labels.as_ref().and_then(|l| l.get(i).copied());
        // One folder per class, named by its number: ImageFolder's layout, `alexnet eval`'s.
        let dir = match label.filter(|_| class_folders) {
            Some(l) => {
                let dir = out_dir.join(l.to_string());
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                dir
            }
            None => out_dir.to_path_buf(),
        };
        let written = alexnet_host::idx::write_png(&set, i, scale, label, &dir)?;
        println!("{}", written.display());
    }
    Ok(())
}
