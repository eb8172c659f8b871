//! The training data pipeline (ImageNet-style folders and Fashion-MNIST), as in the 2012
//! AlexNet paper: images decoded once to a compact `S x S` cache ([`folder`], [`cache`]),
//! then per use a random crop, a horizontal flip and PCA colour noise ([`augment`],
//! [`pca`]), normalized and batched by a multi-threaded, deterministic [`loader`].
//!
//! Everything downstream of decoding works on one in-memory [`ImageSet`], so the two
//! sources ([`folder`] and [`fashion`]) share the augmentation and the loader.

pub mod augment;
pub mod cache;
pub mod fashion;
pub mod folder;
pub mod loader;
pub mod pca;
mod resize;

pub use augment::{Augment, Normalize, View};
pub use loader::{Batch, Loader, Schedule};
pub use pca::Pca;

/// The pixel bytes of an [`ImageSet`]: in memory, or mapped from a cache file. ImageNet's
/// 1.28 M training images at 256x256 are 252 GB, more than a workstation's memory, so a
/// cached set is read through the page cache on demand rather than loaded.
#[derive(Clone)]
pub enum Pixels {
    /// Owned bytes.
    Owned(Vec<u8>),
    /// `len` bytes from `start` of a read-only map of a cache file.
    Mapped {
        /// The map (shared by clones).
        map: std::sync::Arc<memmap2::Mmap>,
        /// First byte.
        start: usize,
        /// Byte count.
        len: usize,
    },
}

impl std::ops::Deref for Pixels {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Pixels::Owned(v) => v,
            // The range was checked against the map when it was made.
            Pixels::Mapped { map, start, len } => map.get(*start..start + len).unwrap_or(&[]),
        }
    }
}

impl From<Vec<u8>> for Pixels {
    fn from(v: Vec<u8>) -> Self {
        Pixels::Owned(v)
    }
}

impl PartialEq for Pixels {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl std::fmt::Debug for Pixels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Pixels::Owned(_) => "owned",
            Pixels::Mapped { .. } => "mapped",
        };
        write!(f, "Pixels({} bytes, {kind})", self.len())
    }
}

/// Decoded images at their stored size, u8, CHW, all the same shape.
///
/// One flat buffer rather than one allocation per image: the loader reads it from many
/// threads, and the cache is this buffer written out as is.
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// Channels per image (3 for RGB folders, 1 for Fashion-MNIST).
    pub channels: usize,
    /// Images are stored `size x size`.
    pub size: usize,
    /// `len * channels * size * size` bytes, image after image, each CHW.
    pub pixels: Pixels,
    /// One label per image, an index into `classes`.
    pub labels: Vec<u32>,
    /// Class names, in label order.
    pub classes: Vec<String>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image (`channels * size * size`).
    pub fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// The CHW pixels of image `i`, or `None` when `i` is out of range.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len() {
            return None;
        }
        let n = self.image_len();
        self.pixels.get(i * n..(i + 1) * n)
    }

    /// A new set holding the images at `indices` (in that order, repeats allowed);
    /// indices out of range are left out.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let n = self.image_len();
        let mut pixels = Vec::with_capacity(indices.len() * n);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            if let Some(img) = self.image(i) {
                pixels.extend_from_slice(img);
                labels.push(self.labels[i]);
            }
        }
        ImageSet {
            channels: self.channels,
            size: self.size,
            pixels: pixels.into(),
            labels,
            classes: self.classes.clone(),
        }
    }

    /// Checks that the buffer sizes and labels agree with the header fields.
    pub fn validate(&self) -> anyhow::Result<()> {
        let expected = self
            .len()
            .checked_mul(self.image_len())
            .ok_or_else(|| anyhow::anyhow!("image set dimensions overflow"))?;
        anyhow::ensure!(
            self.pixels.len() == expected,
            "image set holds {} pixel bytes, {} images of {}x{}x{} need {expected}",
            self.pixels.len(),
            self.len(),
            self.channels,
            self.size,
            self.size
        );
        if let Some(bad) = self
            .labels
            .iter()
            .find(|&&l| l as usize >= self.classes.len())
        {
            anyhow::bail!(
                "label {bad} out of range: the set has {} classes",
                self.classes.len()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::ImageSet;

    /// A set of `n` images whose pixel bytes encode (image, channel, y, x).
    pub fn pattern_set(n: usize, channels: usize, size: usize) -> ImageSet {
        let mut pixels = Vec::with_capacity(n * channels * size * size);
        for i in 0..n {
            for c in 0..channels {
                for y in 0..size {
                    for x in 0..size {
                        pixels.push(((i * 7 + c * 50 + y * 5 + x * 3) % 256) as u8);
                    }
                }
            }
        }
        ImageSet {
            channels,
            size,
            pixels: pixels.into(),
            labels: (0..n as u32).map(|i| i % 3).collect(),
            classes: vec!["a".into(), "b".into(), "c".into()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::pattern_set;

    #[test]
    fn subset_picks_images_and_labels_in_order() {
        let set = pattern_set(5, 3, 4);
        set.validate().unwrap();
        let sub = set.subset(&[4, 1, 1, 99]);
        assert_eq!(sub.len(), 3);
        assert_eq!(sub.labels, vec![1, 1, 1]);
        assert_eq!(sub.image(0), set.image(4));
        assert_eq!(sub.image(1), set.image(1));
        assert_eq!(sub.image(2), set.image(1));
        assert_eq!(sub.image(3), None);
        assert_eq!(sub.classes, set.classes);
        sub.validate().unwrap();
        assert!(set.subset(&[]).is_empty());
    }

    #[test]
    fn validate_catches_inconsistent_sets() {
        let mut set = pattern_set(2, 1, 3);
        let mut shorter = set.pixels.to_vec();
        shorter.pop();
        set.pixels = shorter.into();
        assert!(set.validate().is_err());
        let mut set = pattern_set(2, 1, 3);
        set.labels[0] = 7;
        assert!(set.validate().unwrap_err().to_string().contains("label 7"));
    }
}
