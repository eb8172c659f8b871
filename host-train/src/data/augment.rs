//! Turning one stored image into one network input: crop (random, centre or one of the
//! paper's ten test patches), horizontal flip, PCA colour noise, mean subtraction and
//! optional division by a standard deviation. The paper trains on random 224x224 crops of
//! the 256x256 images and their mirror images, which enlarges the training set by 2048x.

use super::{ImageSet, Pca};
use anyhow::{bail, ensure, Context, Result};
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// How pixel bytes become network values: `(byte * pixel_scale - mean) / std`.
#[derive(Clone, Debug)]
pub struct Normalize {
    /// Multiplies the u8 pixel value (1.0 for the paper's 0..255, 1/255 for 0..1).
    pub pixel_scale: f32,
    /// Per channel (len C), or per pixel over the padded stored image (len
    /// `C * (S + 2 * pad)^2`, the paper's "mean activity over the training set").
    pub mean: Vec<f32>,
    /// Per-channel standard deviation, or `None` to only subtract the mean.
    pub std: Option<Vec<f32>>,
}

impl Normalize {
    /// The per-pixel mean over the set of the scaled, zero-padded images (CHW, side
    /// `S + 2 * pad`).
    pub fn per_pixel_mean(set: &ImageSet, pixel_scale: f32, pad: usize) -> Vec<f32> {
        use rayon::prelude::*;
        let (c, s) = (set.channels, set.size);
        let p = s + 2 * pad;
        let n = set.image_len();
        if n == 0 || set.is_empty() {
            return vec![0.0; c * p * p];
        }
        // Exact integer sums, folded in parallel over images.
        let sums = set
            .pixels
            .par_chunks(n)
            .fold(
                || vec![0u64; n],
                |mut acc, img| {
                    for (a, &v) in acc.iter_mut().zip(img) {
                        *a += v as u64;
                    }
                    acc
                },
            )
            .reduce(
                || vec![0u64; n],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        *x += y;
                    }
                    a
                },
            );
        let count = (set.pixels.len() / n) as f64;
        let mut mean = vec![0.0f32; c * p * p];
        for ch in 0..c {
            for y in 0..s {
                for x in 0..s {
                    let v = sums[(ch * s + y) * s + x] as f64 / count * pixel_scale as f64;
                    mean[(ch * p + y + pad) * p + x + pad] = v as f32;
                }
            }
        }
        mean
    }

    /// The mean under the centre crop (for the exported model's preprocessing): len
    /// `C * crop * crop`, or the per-channel mean unchanged. A mean of neither expected
    /// length (or a crop larger than the padded image) is returned unchanged.
    pub fn centre_crop_mean(
        &self,
        channels: usize,
        stored: usize,
        pad: usize,
        crop: usize,
    ) -> Vec<f32> {
        let p = stored + 2 * pad;
        if self.mean.len() != channels * p * p || crop > p || self.mean.len() == channels {
            return self.mean.clone();
        }
        let o = (p - crop) / 2;
        let mut out = Vec::with_capacity(channels * crop * crop);
        for c in 0..channels {
            for y in 0..crop {
                let row = (c * p + o + y) * p + o;
                out.extend_from_slice(&self.mean[row..row + crop]);
            }
        }
        out
    }
}

/// The augmentation settings of a net.
#[derive(Clone, Debug)]
pub struct Augment {
    /// The net's input side (H = W).
    pub crop: usize,
    /// Zero padding around the stored image before cropping (2 for Fashion-MNIST's
    /// 28 -> 32, 0 for 256x256 folders).
    pub pad: usize,
    /// Random horizontal flips in [`View::Random`].
    pub flip: bool,
    /// PCA colour noise in [`View::Random`] (RGB sets only).
    pub pca: Option<Pca>,
    /// Standard deviation of the PCA weights alpha (0.1 in the paper).
    pub pca_std: f32,
}

/// Which crop of the (padded) stored image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Training: random crop, random flip, PCA noise.
    Random,
    /// Evaluation: the centre crop, unflipped.
    Centre,
    /// The paper's ten test patches, 0..10: top-left, top-right, bottom-left,
    /// bottom-right, centre, then the same five flipped.
    Patch(u8),
}

/// Writes view `view` of image `index` into `out` (CHW, `C * crop * crop` values):
/// `((pixel * pixel_scale + pca_offset[c]) - mean) / std`, with the per-pixel mean taken at
/// the source location in the padded image; padding pixels are 0 with no PCA offset.
/// Randomness (for [`View::Random`] only) is drawn from `rng` in a fixed order: x offset,
/// y offset, flip, then the three alphas, so a seeded `rng` reproduces the sample.
pub fn prepare(
    set: &ImageSet,
    index: usize,
    norm: &Normalize,
    aug: &Augment,
    view: View,
    rng: &mut impl Rng,
    out: &mut [f32],
) -> Result<()> {
    let (c, s, pad, crop) = (set.channels, set.size, aug.pad, aug.crop);
    let p = s + 2 * pad;
    ensure!(crop > 0, "crop size is 0");
    ensure!(
        crop <= p,
        "crop {crop}x{crop} is larger than the stored {s}x{s} image padded by {pad} ({p}x{p})"
    );
    ensure!(
        out.len() == c * crop * crop,
        "output holds {} values, a {c}x{crop}x{crop} input needs {}",
        out.len(),
        c * crop * crop
    );
    let img = set.image(index).with_context(|| {
        format!(
            "image {index} does not exist (the set has {} images)",
            set.len()
        )
    })?;
    ensure!(
        img.len() == c * s * s,
        "image set buffer does not match its shape"
    );
    let per_pixel = if norm.mean.len() == c {
        false
    } else if norm.mean.len() == c * p * p {
        true
    } else {
        bail!(
            "mean has {} values, expected {c} (per channel) or {} (per pixel of the {p}x{p} \
             padded image)",
            norm.mean.len(),
            c * p * p
        );
    };
    let inv_std: Vec<f32> = match &norm.std {
        None => vec![1.0; c],
        Some(std) => {
            ensure!(
                std.len() == c,
                "std has {} values, the images have {c} channels",
                std.len()
            );
            ensure!(
                std.iter().all(|v| v.is_finite() && *v > 0.0),
                "std must be positive: {std:?}"
            );
            std.iter().map(|v| 1.0 / v).collect()
        }
    };
    let range = p - crop;
    let (ox, oy, flip, offset) = match view {
        View::Random => {
            let ox = rng.random_range(0..=range);
            let oy = rng.random_range(0..=range);
            let flip = aug.flip && rng.random_bool(0.5);
            let offset = match &aug.pca {
                Some(pca) if aug.pca_std > 0.0 => {
                    ensure!(
                        c == 3,
                        "PCA colour noise needs RGB images, the set has {c} channel(s)"
                    );
                    let normal = Normal::new(0.0f32, aug.pca_std)
                        .map_err(|e| anyhow::anyhow!("bad pca_std {}: {e}", aug.pca_std))?;
                    let alphas = [normal.sample(rng), normal.sample(rng), normal.sample(rng)];
                    pca.offset(alphas).to_vec()
                }
                _ => vec![0.0; c],
            };
            (ox, oy, flip, offset)
        }
        View::Centre => (range / 2, range / 2, false, vec![0.0; c]),
        View::Patch(k) => {
            ensure!(k < 10, "patch {k} does not exist (0..10)");
            let (ox, oy) = match k % 5 {
                0 => (0, 0),
                1 => (range, 0),
                2 => (0, range),
                3 => (range, range),
                _ => (range / 2, range / 2),
            };
            (ox, oy, k >= 5, vec![0.0; c])
        }
    };
    let scale = norm.pixel_scale;
    // Padded columns [lo, hi) of the window hold image pixels; the rest is padding.
    let (lo, hi) = (ox.max(pad), (ox + crop).min(pad + s));
    for ch in 0..c {
        let plane = &img[ch * s * s..(ch + 1) * s * s];
        let mean_c = if per_pixel { 0.0 } else { norm.mean[ch] };
        let (off, inv) = (offset[ch], inv_std[ch]);
        for y in 0..crop {
            let py = oy + y; // row in the padded image
            let dst = &mut out[(ch * crop + y) * crop..(ch * crop + y + 1) * crop];
            let mean_row = if per_pixel {
                &norm.mean[(ch * p + py) * p + ox..(ch * p + py) * p + ox + crop]
            } else {
                &[][..]
            };
            let inside_row = py >= pad && py < pad + s;
            if !inside_row || lo > ox || hi < ox + crop {
                // Padding is pixel 0 with no colour noise.
                for (x, d) in dst.iter_mut().enumerate() {
                    let sx = if flip { crop - 1 - x } else { x };
                    let mean = if per_pixel { mean_row[sx] } else { mean_c };
                    *d = -mean * inv;
                }
            }
            if !inside_row || lo >= hi {
                continue;
            }
            let src = &plane[(py - pad) * s + lo - pad..(py - pad) * s + hi - pad];
            // Written in straight zips so that the compiler vectorizes them.
            let (a, b) = (lo - ox, hi - ox); // window columns of the image part
            let seg = if flip {
                &mut dst[crop - b..crop - a]
            } else {
                &mut dst[a..b]
            };
            match (flip, per_pixel) {
                (false, true) => {
                    for ((d, &v), &m) in seg.iter_mut().zip(src).zip(&mean_row[a..b]) {
                        *d = (v as f32 * scale + off - m) * inv;
                    }
                }
                (true, true) => {
                    for ((d, &v), &m) in seg.iter_mut().rev().zip(src).zip(&mean_row[a..b]) {
                        *d = (v as f32 * scale + off - m) * inv;
                    }
                }
                (false, false) => {
                    let shift = off - mean_c;
                    for (d, &v) in seg.iter_mut().zip(src) {
                        *d = (v as f32 * scale + shift) * inv;
                    }
                }
                (true, false) => {
                    let shift = off - mean_c;
                    for (d, &v) in seg.iter_mut().rev().zip(src) {
                        *d = (v as f32 * scale + shift) * inv;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::pattern_set;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn aug(crop: usize, pad: usize) -> Augment {
        Augment {
            crop,
            pad,
            flip: true,
            pca: None,
            pca_std: 0.1,
        }
    }

    fn run(set: &ImageSet, norm: &Normalize, a: &Augment, view: View, seed: u64) -> Vec<f32> {
        let mut out = vec![0.0; set.channels * a.crop * a.crop];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        prepare(set, 1, norm, a, view, &mut rng, &mut out).unwrap();
        out
    }

    #[test]
    fn centre_view_is_the_hand_computed_crop() {
        let set = pattern_set(3, 3, 8);
        let norm = Normalize {
            pixel_scale: 0.5,
            mean: vec![1.0, 2.0, 3.0],
            std: Some(vec![2.0, 4.0, 8.0]),
        };
        let out = run(&set, &norm, &aug(4, 0), View::Centre, 0);
        let img = set.image(1).unwrap();
        for c in 0..3 {
            for y in 0..4 {
                for x in 0..4 {
                    let px = img[(c * 8 + y + 2) * 8 + x + 2] as f32;
                    let want = (px * 0.5 - norm.mean[c]) / norm.std.as_ref().unwrap()[c];
                    assert_eq!(out[(c * 4 + y) * 4 + x], want);
                }
            }
        }
    }

    #[test]
    fn flips_patches_and_padding() {
        let set = pattern_set(3, 1, 6);
        let norm = Normalize {
            pixel_scale: 1.0,
            mean: vec![0.0],
            std: None,
        };
        let a = aug(4, 0);
        let patches: Vec<Vec<f32>> = (0..10)
            .map(|k| run(&set, &norm, &a, View::Patch(k), 0))
            .collect();
        for i in 0..10 {
            for j in 0..i {
                assert_ne!(patches[i], patches[j], "patches {i} and {j}");
            }
        }
        // Patch 5 is patch 0 mirrored; patch 4 is the centre view.
        for y in 0..4 {
            for x in 0..4 {
                assert_eq!(patches[5][y * 4 + x], patches[0][y * 4 + 3 - x]);
            }
        }
        assert_eq!(patches[4], run(&set, &norm, &a, View::Centre, 0));
        // Top-right patch: columns 2..6.
        let img = set.image(1).unwrap();
        assert_eq!(patches[1][0], img[2] as f32);
        // Random views: with the crop as large as the image only flips remain.
        let full = aug(6, 0);
        let plain = run(&set, &norm, &full, View::Centre, 0);
        let (mut flipped, mut unflipped) = (0, 0);
        for seed in 0..40 {
            let r = run(&set, &norm, &full, View::Random, seed);
            if r == plain {
                unflipped += 1;
            } else {
                for y in 0..6 {
                    for x in 0..6 {
                        assert_eq!(r[y * 6 + x], plain[y * 6 + 5 - x]);
                    }
                }
                flipped += 1;
            }
        }
        assert!(flipped > 5 && unflipped > 5, "{flipped} {unflipped}");
        // Same seed, same sample.
        assert_eq!(
            run(&set, &norm, &a, View::Random, 3),
            run(&set, &norm, &a, View::Random, 3)
        );

        // Padding: 6 + 2*2 = 10, centre crop 10 keeps the zero border.
        let padded = aug(10, 2);
        let mean = Normalize::per_pixel_mean(&set, 1.0, 2);
        assert_eq!(mean.len(), 100);
        let out = run(&set, &norm, &padded, View::Centre, 0);
        for y in 0..10 {
            for x in 0..10 {
                let inside = (2..8).contains(&y) && (2..8).contains(&x);
                let want = if inside {
                    img[(y - 2) * 6 + x - 2] as f32
                } else {
                    0.0
                };
                assert_eq!(out[y * 10 + x], want);
                // The per-pixel mean is zero on the border too.
                if !inside {
                    assert_eq!(mean[y * 10 + x], 0.0);
                }
            }
        }
        // Per-pixel mean subtraction: the mean image minus itself is zero for a 1-image set.
        let one = set.subset(&[1, 1]);
        let pp = Normalize {
            pixel_scale: 1.0,
            mean: Normalize::per_pixel_mean(&one, 1.0, 2),
            std: None,
        };
        for view in [View::Centre, View::Random, View::Patch(7)] {
            let mut out = vec![1.0; 64];
            let a = aug(8, 2);
            prepare(
                &one,
                0,
                &pp,
                &a,
                view,
                &mut ChaCha8Rng::seed_from_u64(1),
                &mut out,
            )
            .unwrap();
            assert!(out.iter().all(|&v| v == 0.0), "{view:?}");
        }
        // The centre-crop mean for export.
        let cm = pp.centre_crop_mean(1, 6, 2, 8);
        assert_eq!(cm.len(), 64);
        assert_eq!(cm[0], pp.mean[11]);
        assert_eq!(norm.centre_crop_mean(1, 6, 0, 4), vec![0.0]);
    }

    #[test]
    fn pca_noise_shifts_each_channel_by_the_offset() {
        let set = pattern_set(2, 3, 5);
        let pca = Pca::from_covariance([[4.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 1.0]]);
        let norm = Normalize {
            pixel_scale: 1.0,
            mean: vec![0.0; 3],
            std: None,
        };
        let mut a = aug(5, 0);
        a.flip = false;
        let plain = run(&set, &norm, &a, View::Random, 9);
        a.pca = Some(pca);
        let noisy = run(&set, &norm, &a, View::Random, 9);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let normal = Normal::new(0.0f32, 0.1).unwrap();
        let _ = (rng.random_range(0..=0usize), rng.random_range(0..=0usize));
        let alphas = [
            normal.sample(&mut rng),
            normal.sample(&mut rng),
            normal.sample(&mut rng),
        ];
        let off = pca.offset(alphas);
        assert!(off.iter().any(|v| v.abs() > 1e-3));
        for c in 0..3 {
            for i in 0..25 {
                let d = noisy[c * 25 + i] - plain[c * 25 + i];
                assert!((d - off[c]).abs() < 1e-5);
            }
        }
        // Centre and patch views are never noisy.
        assert_eq!(
            run(&set, &norm, &a, View::Centre, 9),
            run(&set, &norm, &aug(5, 0), View::Centre, 9)
        );
    }

    #[test]
    fn bad_sizes_are_errors_not_panics() {
        let set = pattern_set(2, 3, 6);
        let norm = Normalize {
            pixel_scale: 1.0,
            mean: vec![0.0; 3],
            std: None,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut out = vec![0.0; 3 * 16];
        let ok = aug(4, 0);
        assert!(prepare(&set, 0, &norm, &ok, View::Random, &mut rng, &mut out).is_ok());
        let cases: Vec<(usize, Normalize, Augment, View, usize)> = vec![
            (0, norm.clone(), aug(7, 0), View::Centre, 3 * 49),
            (0, norm.clone(), aug(0, 0), View::Centre, 0),
            (0, norm.clone(), ok.clone(), View::Centre, 10),
            (2, norm.clone(), ok.clone(), View::Centre, 48),
            (usize::MAX, norm.clone(), ok.clone(), View::Centre, 48),
            (0, norm.clone(), ok.clone(), View::Patch(10), 48),
            (
                0,
                Normalize {
                    mean: vec![0.0; 5],
                    ..norm.clone()
                },
                ok.clone(),
                View::Centre,
                48,
            ),
            (
                0,
                Normalize {
                    std: Some(vec![1.0, 0.0, 1.0]),
                    ..norm.clone()
                },
                ok.clone(),
                View::Centre,
                48,
            ),
            (
                0,
                Normalize {
                    std: Some(vec![1.0]),
                    ..norm.clone()
                },
                ok.clone(),
                View::Centre,
                48,
            ),
        ];
        for (i, (index, n, a, view, len)) in cases.into_iter().enumerate() {
            let mut out = vec![0.0; len];
            assert!(
                prepare(&set, index, &n, &a, view, &mut rng, &mut out).is_err(),
                "case {i}"
            );
        }
        // PCA on a grey set.
        let grey = pattern_set(1, 1, 6);
        let mut a = ok.clone();
        a.pca = Some(Pca::from_covariance([
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
        ]));
        let mut out = vec![0.0; 16];
        let gnorm = Normalize {
            mean: vec![0.0],
            ..norm
        };
        assert!(prepare(&grey, 0, &gnorm, &a, View::Random, &mut rng, &mut out).is_err());
    }
}
