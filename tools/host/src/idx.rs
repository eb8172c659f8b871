//! IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed.

use anyhow::{bail, ensure, Context, Result};
use std::io::Read;
use std::path::Path;

/// A stack of 8-bit greyscale images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count * rows * cols` pixels, image after image, row-major.
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let n = self.rows * self.cols;
        self.pixels.get(i * n..(i + 1) * n)
    }
}

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// Reads a file, inflating it when it starts with the gzip magic.
fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{} is not valid gzip", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn header(bytes: &[u8], words: usize, path: &Path) -> Result<Vec<usize>> {
    ensure!(
        bytes.len() >= 4 * words,
        "{} is truncated: no IDX header",
        path.display()
    );
    Ok(bytes[..4 * words]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect())
}

/// Reads an IDX image file (magic 0x803).
pub fn read_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    let path = path.as_ref();
    parse_images(&read_maybe_gzip(path)?, path)
}

/// Parses the bytes of an (inflated) IDX image file; `path` names it in errors.
pub fn parse_images(bytes: &[u8], path: &Path) -> Result<IdxImages> {
    let h = header(bytes, 4, path)?;
    if h[0] != IMAGES_MAGIC as usize {
        bail!(
            "{} is not an IDX image file (magic {:#010x}, expected {IMAGES_MAGIC:#010x})",
            path.display(),
            h[0]
        );
    }
    let (count, rows, cols) = (h[1], h[2], h[3]);
    let n = count
        .checked_mul(rows)
        .and_then(|x| x.checked_mul(cols))
        .with_context(|| format!("{}: absurd dimensions", path.display()))?;
    ensure!(
        bytes.len() - 16 == n,
        "{} holds {} pixel bytes, its header announces {count}x{rows}x{cols} = {n}",
        path.display(),
        bytes.len() - 16
    );
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: bytes[16..].to_vec(),
    })
}

/// Reads an IDX label file (magic 0x801).
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    parse_labels(&read_maybe_gzip(path)?, path)
}

/// Parses the bytes of an (inflated) IDX label file; `path` names it in errors.
pub fn parse_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let h = header(bytes, 2, path)?;
    if h[0] != LABELS_MAGIC as usize {
        bail!(
            "{} is not an IDX label file (magic {:#010x}, expected {LABELS_MAGIC:#010x})",
            path.display(),
            h[0]
        );
    }
    ensure!(
        bytes.len() - 8 == h[1],
        "{} holds {} labels, its header announces {}",
        path.display(),
        bytes.len() - 8,
        h[1]
    );
    Ok(bytes[8..].to_vec())
}

/// Where Debian's `dataset-fashion-mnist` package puts the data.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Whether Fashion-MNIST is installed in [`FASHION_MNIST_DIR`]; says how to install it when
/// not (for the tests that skip without it).
pub fn fashion_mnist_installed() -> bool {
    let ok = Path::new(FASHION_MNIST_DIR)
        .join("train-images-idx3-ubyte.gz")
        .exists();
    if !ok {
        eprintln!(
            "Fashion-MNIST is not installed ({FASHION_MNIST_DIR}); `cargo xtask setup` installs it"
        );
    }
    ok
}

/// Writes image `i` as `<dir>/<i>_<label>.png` (or `<i>.png`), enlarged `scale` times with
/// nearest-neighbour sampling; returns the path.
pub fn write_png(
    set: &IdxImages,
    i: usize,
    scale: u32,
    label: Option<u8>,
    dir: &Path,
) -> Result<std::path::PathBuf> {
    let pixels = set
        .image(i)
        .with_context(|| format!("no image {i} (the file has {})", set.count))?;
    let img = image::GrayImage::from_raw(set.cols as u32, set.rows as u32, pixels.to_vec())
        .context("IDX image size mismatch")?;
    let img = if scale > 1 {
        image::imageops::resize(
            &img,
            img.width() * scale,
            img.height() * scale,
            image::imageops::FilterType::Nearest,
        )
    } else {
        img
    };
    let name = match label {
        Some(l) => format!("{i:05}_{l}.png"),
        None => format!("{i:05}.png"),
    };
    let path = dir.join(name);
    img.save(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_plain_and_gzip_and_refuses_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut raw = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 1];
        raw.extend_from_slice(&[1, 2, 3, 4]);
        let plain = dir.path().join("x-idx3-ubyte");
        std::fs::write(&plain, &raw).unwrap();
        let gz = dir.path().join("x-idx3-ubyte.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&raw).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        for p in [&plain, &gz] {
            let imgs = read_images(p).unwrap();
            assert_eq!((imgs.count, imgs.rows, imgs.cols), (2, 2, 1));
            assert_eq!(imgs.image(1), Some(&[3u8, 4][..]));
        }
        std::fs::write(&plain, &raw[..18]).unwrap();
        assert!(read_images(&plain)
            .unwrap_err()
            .to_string()
            .contains("header announces"));
        assert!(read_labels(&gz)
            .unwrap_err()
            .to_string()
            .contains("not an IDX label file"));
    }
}
