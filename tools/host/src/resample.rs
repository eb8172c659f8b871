//! Pillow's bilinear resize of 8-bit images, bit for bit: what torchvision's `Resize` does to
//! a PIL image, and so what ImageNet-trained nets saw in training.
//!
//! Pillow (`libImaging/Resample.c`) resamples with a triangle filter whose support grows with
//! the downscaling factor (so shrinking averages every source pixel: antialiasing), one axis at
//! a time: the horizontal pass first, its result rounded to 8 bits, then the vertical pass. The
//! filter weights are computed in f64, normalized to sum 1, then turned into 22-bit fixed point
//! (rounded half away from zero); each output is `(sum(pixel * weight) + 2^21) >> 22`, clamped
//! to `0..=255`. An axis whose size does not change is not resampled at all. Everything here
//! repeats those steps in the same order, so the results are identical, not merely close
//! (`tests/preprocess.rs` checks it against torchvision on photographs).

/// Bits of the fixed-point weights: 32 bits less 8 for the pixel and 2 for overshoot.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// The weights of one axis: for each output position, the first source index and its weights.
struct AxisWeights {
    /// `(first source index, weights)` per output position.
    taps: Vec<(usize, Vec<i32>)>,
}

impl AxisWeights {
    /// Pillow's `precompute_coeffs` for the bilinear filter (support 1) and the whole image as
    /// the box, then `normalize_coeffs_8bpc`.
    fn new(in_size: usize, out_size: usize) -> AxisWeights {
        let scale = in_size as f64 / out_size as f64;
        let filter_scale = scale.max(1.0);
        let support = filter_scale; // the triangle's support, 1, times the scale
        let inverse = 1.0 / filter_scale;
        let taps = (0..out_size)
            .map(|out| {
                let center = (out as f64 + 0.5) * scale;
                // C's (int) casts: truncation toward zero, as `as` does.
                let first = ((center - support + 0.5) as i64).max(0);
                let end = ((center + support + 0.5) as i64).min(in_size as i64);
                let weights: Vec<f64> = (first..end)
                    .map(|x| triangle((x as f64 - center + 0.5) * inverse))
                    .collect();
                let total: f64 = weights.iter().sum();
                let fixed = weights
                    .iter()
                    .map(|&w| {
                        let w = if total != 0.0 { w / total } else { w };
                        let scaled = w * f64::from(1u32 << PRECISION_BITS);
                        (if w < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
                    })
                    .collect();
                (first as usize, fixed)
            })
            .collect();
        AxisWeights { taps }
    }
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// `(sum + 2^21) >> 22`, clamped to a byte.
fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes interleaved 8-bit pixels (`channels` per pixel, rows of `width`) from
/// `width x height` to `new_width x new_height` as Pillow's `Image.resize(size,
/// Image.BILINEAR)` does.
pub fn resize_bilinear(
    pixels: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    new_width: usize,
    new_height: usize,
) -> Vec<u8> {
    debug_assert_eq!(pixels.len(), width * height * channels);
    let rounding = 1i32 << (PRECISION_BITS - 1);
    let mut image = pixels.to_vec();
    let mut w = width;
    if new_width != width {
        let axis = AxisWeights::new(width, new_width);
        let mut out = vec![0u8; new_width * height * channels];
        for (src, dst) in image
            .chunks_exact(w * channels)
            .zip(out.chunks_exact_mut(new_width * channels))
        {
            for ((first, weights), pixel) in axis.taps.iter().zip(dst.chunks_exact_mut(channels)) {
                for (c, value) in pixel.iter_mut().enumerate() {
                    let sum = weights.iter().enumerate().fold(rounding, |s, (i, &k)| {
                        s + i32::from(src[(first + i) * channels + c]) * k
                    });
                    *value = clip8(sum);
                }
            }
        }
        image = out;
        w = new_width;
    }
    if new_height != height {
        let axis = AxisWeights::new(height, new_height);
        let row = w * channels;
        let mut out = vec![0u8; row * new_height];
        for ((first, weights), dst) in axis.taps.iter().zip(out.chunks_exact_mut(row)) {
            for (x, value) in dst.iter_mut().enumerate() {
                let sum = weights.iter().enumerate().fold(rounding, |s, (i, &k)| {
                    s + i32::from(image[(first + i) * row + x]) * k
                });
                *value = clip8(sum);
            }
        }
        image = out;
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Weights sum to one (2^22 in fixed point, give or take the rounding of each), and a
    /// flat image stays flat at every scale.
    #[test]
    fn weights_are_normalized_and_flat_stays_flat() {
        for (a, b) in [
            (500, 256),
            (256, 500),
            (100, 99),
            (7, 3),
            (3, 7),
            (1000, 256),
        ] {
            for (_, w) in AxisWeights::new(a, b).taps {
                let sum: i32 = w.iter().sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= w.len() as i32,
                    "{a}->{b}"
                );
            }
            let flat = vec![200u8; a * 5 * 3];
            assert!(resize_bilinear(&flat, a, 5, 3, b, 4)
                .iter()
                .all(|&v| v == 200));
        }
    }

    /// Halving widens the triangle to a support of 2 pixels each side: inside the image the
    /// weights are 1/8, 3/8, 3/8, 1/8; at the edges the cut-off triangle is renormalized.
    #[test]
    fn halving_uses_the_widened_triangle() {
        let row: Vec<u8> = vec![0, 0, 80, 80, 0, 0, 0, 0];
        let out = resize_bilinear(&row, 8, 1, 1, 4, 1);
        // Output 0 (centre 1.0): pixels 0..3 weighted 0.75, 0.75, 0.25 of 1.75 -> 80 / 7.
        // Output 1 (centre 3.0): pixels 1..5 weighted 1, 3, 3, 1 eighths -> 80 * 6 / 8.
        // Output 2 (centre 5.0): pixel 3 weighted 1/8 -> 10. Output 3 sees only zeros.
        assert_eq!(out, vec![11, 60, 10, 0]);
        // An unchanged axis is copied.
        let same = resize_bilinear(&row, 8, 1, 1, 8, 1);
        assert_eq!(same, row);
    }
}
