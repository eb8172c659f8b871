//! The square crop-and-resample of the preprocessing pass, fused with the HWC to CHW
//! transpose. `image::imageops::resize` is generic over pixel types and took three times
//! as long as the JPEG decode itself; this separable resampler with precomputed weights
//! (the same scheme as PIL's: the kernel widened by the scale factor when shrinking, so
//! downscaling is antialiased) makes decoding the bottleneck again.

/// Kernel used in each direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Linear interpolation (PIL's BILINEAR), for shrinking.
    Triangle,
    /// Cubic convolution with a = -0.5 (PIL's BICUBIC), for enlarging.
    CatmullRom,
}

impl Kernel {
    fn support(self) -> f64 {
        match self {
            Kernel::Triangle => 1.0,
            Kernel::CatmullRom => 2.0,
        }
    }

    fn eval(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Kernel::Triangle => (1.0 - x).max(0.0),
            Kernel::CatmullRom => {
                let a = -0.5;
                if x < 1.0 {
                    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * a
                } else {
                    0.0
                }
            }
        }
    }
}

/// For each output sample: the first input index and the normalized weights.
struct Taps {
    start: Vec<usize>,
    len: usize,
    weights: Vec<f32>,
}

fn taps(input: usize, output: usize, kernel: Kernel) -> Taps {
    let scale = input as f64 / output as f64;
    let filter_scale = scale.max(1.0);
    let support = kernel.support() * filter_scale;
    let len = (support.ceil() as usize * 2 + 1).min(input.max(1));
    let mut start = Vec::with_capacity(output);
    let mut weights = vec![0f32; output * len];
    for i in 0..output {
        let centre = (i as f64 + 0.5) * scale;
        let lo = ((centre - support).floor().max(0.0) as usize).min(input - 1);
        let lo = lo.min(input - len);
        let mut w: Vec<f64> = (0..len)
            .map(|j| kernel.eval((lo as f64 + j as f64 + 0.5 - centre) / filter_scale))
            .collect();
        let sum: f64 = w.iter().sum();
        if sum.abs() > 1e-12 {
            w.iter_mut().for_each(|v| *v /= sum);
        } else {
            // Cannot happen with these kernels; nearest neighbour as a safe fallback.
            w.iter_mut().for_each(|v| *v = 0.0);
            let nearest = (centre.floor() as usize).clamp(lo, lo + len - 1) - lo;
            w[nearest] = 1.0;
        }
        start.push(lo);
        for (d, s) in weights[i * len..(i + 1) * len].iter_mut().zip(&w) {
            *d = *s as f32;
        }
    }
    Taps {
        start,
        len,
        weights,
    }
}

/// Resamples the `side x side` square at (`x0`, `y0`) of an RGB8 HWC image `width` pixels
/// wide to `size x size`, returned as CHW bytes. The caller guarantees the square lies
/// inside the image (`rgb` holds at least `(y0 + side) * width * 3` bytes).
pub(crate) fn square_to_chw(
    rgb: &[u8],
    width: usize,
    x0: usize,
    y0: usize,
    side: usize,
    size: usize,
    kernel: Kernel,
) -> Vec<u8> {
    let plane = size * size;
    let mut out = vec![0u8; 3 * plane];
    if side == 0 || size == 0 {
        return out;
    }
    let px = |x: usize, y: usize| 3 * ((y0 + y) * width + x0 + x);
    if side == size {
        for y in 0..size {
            for x in 0..size {
                let p = px(x, y);
                for c in 0..3 {
                    out[c * plane + y * size + x] = rgb[p + c];
                }
            }
        }
        return out;
    }
    let h = taps(side, size, kernel);
    // Horizontal pass: `side` rows of `size` RGB values.
    let mut tmp = vec![0f32; side * size * 3];
    for y in 0..side {
        let row = &rgb[px(0, y)..px(0, y) + 3 * side];
        let dst = &mut tmp[y * size * 3..(y + 1) * size * 3];
        for (i, d) in dst.chunks_exact_mut(3).enumerate() {
            let w = &h.weights[i * h.len..(i + 1) * h.len];
            let src = &row[3 * h.start[i]..3 * (h.start[i] + h.len)];
            let mut acc = [0f32; 3];
            for (s, &wj) in src.chunks_exact(3).zip(w) {
                acc[0] += s[0] as f32 * wj;
                acc[1] += s[1] as f32 * wj;
                acc[2] += s[2] as f32 * wj;
            }
            d.copy_from_slice(&acc);
        }
    }
    // Vertical pass, straight to CHW bytes.
    let v = &h; // square: same taps both ways
    let mut acc = vec![0f32; size * 3];
    for y in 0..size {
        acc.iter_mut().for_each(|a| *a = 0.0);
        let w = &v.weights[y * v.len..(y + 1) * v.len];
        for (j, &wj) in w.iter().enumerate() {
            let src = &tmp[(v.start[y] + j) * size * 3..(v.start[y] + j + 1) * size * 3];
            for (a, &s) in acc.iter_mut().zip(src) {
                *a += s * wj;
            }
        }
        for (x, a) in acc.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * plane + y * size + x] = a[c].round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{imageops::FilterType, Rgb, RgbImage};

    fn hwc(img: &RgbImage) -> (&[u8], usize) {
        (img.as_raw(), img.width() as usize)
    }

    #[test]
    fn uniform_stays_uniform_and_identity_is_exact() {
        for (side, size, k) in [
            (375, 256, Kernel::Triangle),
            (20, 256, Kernel::CatmullRom),
            (7, 3, Kernel::Triangle),
            (1, 4, Kernel::CatmullRom),
        ] {
            let img = RgbImage::from_pixel(side as u32 + 3, side as u32, Rgb([30, 140, 220]));
            let (raw, w) = hwc(&img);
            let out = square_to_chw(raw, w, 2, 0, side, size, k);
            for c in 0..3 {
                let want = [30, 140, 220][c];
                assert!(out[c * size * size..(c + 1) * size * size]
                    .iter()
                    .all(|&v| v == want));
            }
        }
        let img = RgbImage::from_fn(9, 8, |x, y| Rgb([x as u8, y as u8, (x * y) as u8]));
        let out = square_to_chw(img.as_raw(), 9, 1, 2, 5, 5, Kernel::Triangle);
        assert_eq!(out[0], 1); // R of (1, 2)
        assert_eq!(out[25 + 5 * 4 + 4], 6); // G of (5, 6)
        assert_eq!(out[50 + 6], 2 * 3); // B of (2, 3)
    }

    #[test]
    fn agrees_with_the_image_crate() {
        // A smooth real-looking picture (no aliasing at this scale).
        let img = RgbImage::from_fn(300, 220, |x, y| {
            let (xf, yf) = (x as f32, y as f32);
            Rgb([
                (128.0 + 100.0 * (xf / 17.0).sin()) as u8,
                (128.0 + 100.0 * (yf / 23.0).cos()) as u8,
                ((xf + yf) / 2.0) as u8,
            ])
        });
        let square = image::imageops::crop_imm(&img, 40, 0, 220, 220).to_image();
        for (size, k, f) in [
            (128, Kernel::Triangle, FilterType::Triangle),
            (400, Kernel::CatmullRom, FilterType::CatmullRom),
        ] {
            let theirs = image::imageops::resize(&square, size as u32, size as u32, f);
            let ours = square_to_chw(img.as_raw(), 300, 40, 0, 220, size, k);
            let plane = size * size;
            let mut total = 0f64;
            for (p, px) in theirs.pixels().enumerate() {
                for c in 0..3 {
                    total += (ours[c * plane + p] as f64 - px.0[c] as f64).abs();
                }
            }
            let mean = total / (3 * plane) as f64;
            assert!(mean < 1.0, "{size}: mean difference {mean}");
        }
    }
}
