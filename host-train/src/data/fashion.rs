//! Fashion-MNIST from its IDX files (plain or gzip), the source for the small nets.
//!
//! Kept as 28x28 single-channel images; the augmentation pads them (2 pixels for 32x32
//! inputs) rather than resizing, so the digits keep their native sampling.

use super::ImageSet;
use alexnet_host::idx::{read_images, read_labels, FASHION_MNIST_DIR};
use anyhow::{ensure, Result};
use std::path::{Path, PathBuf};

/// Which half of the data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The 60000 training images.
    Train,
    /// The 10000 test images (`t10k-*`).
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// `<dir>/<stem>.gz` if present, else `<dir>/<stem>`, else an error that says how to get it.
fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    let gz = dir.join(format!("{stem}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    let plain = dir.join(stem);
    if plain.is_file() {
        return Ok(plain);
    }
    anyhow::bail!(
        "Fashion-MNIST file {} (or {stem}) is missing; install it with \
         `apt-get install dataset-fashion-mnist` (it lands in {FASHION_MNIST_DIR}) or point \
         to the folder that holds the IDX files",
        gz.display()
    )
}

/// Loads one split from `dir` (Debian's package puts it in
/// [`alexnet_host::idx::FASHION_MNIST_DIR`]): 28x28, 1 channel, 10 classes.
pub fn load(dir: &Path, split: Split) -> Result<ImageSet> {
    let p = split.prefix();
    let images_path = find(dir, &format!("{p}-images-idx3-ubyte"))?;
    let labels_path = find(dir, &format!("{p}-labels-idx1-ubyte"))?;
    let images = read_images(&images_path)?;
    let labels = read_labels(&labels_path)?;
    ensure!(
        images.count == labels.len(),
        "{} holds {} images but {} holds {} labels",
        images_path.display(),
        images.count,
        labels_path.display(),
        labels.len()
    );
    ensure!(
        images.rows == images.cols && images.rows > 0,
        "{}: images are {}x{}, expected square",
        images_path.display(),
        images.rows,
        images.cols
    );
    let classes = alexnet_host::profile::Dataset::FashionMnist.labels();
    if let Some((i, l)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classes.len())
    {
        anyhow::bail!(
            "{}: label {l} of image {i} is not one of the {} classes",
            labels_path.display(),
            classes.len()
        );
    }
    let set = ImageSet {
        channels: 1,
        size: images.rows,
        pixels: images.pixels.into(),
        labels: labels.into_iter().map(u32::from).collect(),
        classes,
    };
    set.validate()?;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_real_fashion_mnist() {
        let dir = Path::new(FASHION_MNIST_DIR);
        if !dir.join("t10k-images-idx3-ubyte.gz").exists() {
            println!("NOTICE: Fashion-MNIST not installed in {FASHION_MNIST_DIR}; test skipped");
            return;
        }
        let train = load(dir, Split::Train).unwrap();
        let test = load(dir, Split::Test).unwrap();
        assert_eq!((train.len(), test.len()), (60000, 10000));
        for set in [&train, &test] {
            assert_eq!((set.channels, set.size), (1, 28));
            assert!(set.labels.iter().all(|&l| l < 10));
            assert_eq!(set.classes.len(), 10);
            assert_eq!(set.pixels.len(), set.len() * 784);
        }
        // Every class is present in the test split.
        let mut seen = [0usize; 10];
        for &l in &test.labels {
            seen[l as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n == 1000), "{seen:?}");
    }

    #[test]
    fn missing_files_and_count_mismatch_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path(), Split::Test).unwrap_err().to_string();
        assert!(err.contains("t10k-images-idx3-ubyte"), "{err}");
        assert!(
            err.contains("apt-get install dataset-fashion-mnist"),
            "{err}"
        );

        // Two 2x2 images, three labels.
        let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
        images.extend_from_slice(&[0; 8]);
        std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), &images).unwrap();
        let err = load(dir.path(), Split::Test).unwrap_err().to_string();
        assert!(err.contains("t10k-labels-idx1-ubyte"), "{err}");
        std::fs::write(
            dir.path().join("t10k-labels-idx1-ubyte"),
            [0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3],
        )
        .unwrap();
        let err = load(dir.path(), Split::Test).unwrap_err().to_string();
        assert!(err.contains("2 images but"), "{err}");
        std::fs::write(
            dir.path().join("t10k-labels-idx1-ubyte"),
            [0, 0, 8, 1, 0, 0, 0, 2, 1, 12],
        )
        .unwrap();
        let err = load(dir.path(), Split::Test).unwrap_err().to_string();
        assert!(err.contains("label 12"), "{err}");
    }
}
