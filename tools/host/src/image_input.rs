//! Turning image files into a model's input: decode, resize, centre-crop, normalize.

use alexnet_core::model::ChannelOrder;
use alexnet_core::{Preprocess, Shape};
use anyhow::{bail, Context, Result};
use image::DynamicImage;
use std::path::Path;

/// Decodes `path` (JPEG, PNG, BMP, WebP, GIF, TIFF, PNM; grey, 16-bit and CMYK are
/// converted) and prepares it.
pub fn load_image(path: impl AsRef<Path>, prep: &Preprocess<'_>, input: Shape) -> Result<Vec<f32>> {
    let path = path.as_ref();
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot open image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read image {}", path.display()))?
        .decode()
        .with_context(|| format!("cannot decode image {}", path.display()))?;
    prepare_image(&img, prep, input)
        .with_context(|| format!("cannot prepare image {}", path.display()))
}

/// Resizes the shorter side to `prep.resize` (bilinear; the sizes as torchvision's `Resize`
/// computes them, [`resized_size`]), centre-crops to the input size (torchvision's offsets,
/// [`crop_offset`]) and normalizes with the model's preprocessing into `[C, H, W]`.
pub fn prepare_image(img: &DynamicImage, prep: &Preprocess<'_>, input: Shape) -> Result<Vec<f32>> {
    let pixels = cropped_pixels(img, prep, input)?;
    let mut out = vec![0.0f32; input.len()];
    prep.apply(&pixels, input, &mut out)
        .map_err(anyhow::Error::msg)?;
    Ok(out)
}

/// The size torchvision's `Resize(r)` gives a `w x h` image: the shorter side `r`, the longer
/// `int(r * long / short)`, truncated as Python's `int` does (an exact integer division: the
/// quotient of two integers below 2^53 cannot round across an integer).
pub fn resized_size(w: u32, h: u32, r: u32) -> (u32, u32) {
    let (short, long) = (w.min(h).max(1) as u64, w.max(h) as u64);
    let long = ((r as u64 * long) / short).max(r as u64) as u32;
    if w <= h {
        (r, long)
    } else {
        (long, r)
    }
}

/// torchvision's `CenterCrop` offset for `excess` pixels beyond the crop:
/// `int(round(excess / 2.0))`, Python's `round` taking halves to the even neighbour.
pub fn crop_offset(excess: u32) -> u32 {
    let half = excess / 2;
    if excess % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// The resize and centre crop of [`prepare_image`], without the normalization: the 8-bit
/// pixels at the input size (RGB triples, or grey bytes), which is what a device's camera
/// pipeline hands to `Preprocess::apply`.
pub fn cropped_pixels(img: &DynamicImage, prep: &Preprocess<'_>, input: Shape) -> Result<Vec<u8>> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (pixels, channels) = match prep.channel_order {
        ChannelOrder::Gray => (img.to_luma8().into_raw(), 1),
        ChannelOrder::Rgb | ChannelOrder::Bgr => (img.to_rgb8().into_raw(), 3),
    };
    resize_and_crop(&pixels, w, h, channels, prep.resize, input)
}

/// torchvision's `Resize(resize)` (Pillow's antialiased bilinear filter, [`crate::resample`];
/// `resize` 0: none) then `CenterCrop` to the input's size, on interleaved 8-bit pixels.
pub fn resize_and_crop(
    pixels: &[u8],
    w: usize,
    h: usize,
    channels: usize,
    resize: u32,
    input: Shape,
) -> Result<Vec<u8>> {
    if w == 0 || h == 0 {
        bail!("image is empty");
    }
    let (rw, rh, resized);
    let pixels = if resize != 0 {
        let (nw, nh) = resized_size(w as u32, h as u32, resize);
        (rw, rh) = (nw as usize, nh as usize);
        resized = crate::resample::resize_bilinear(pixels, w, h, channels, rw, rh);
        &resized[..]
    } else {
        (rw, rh) = (w, h);
        pixels
    };
    let (cw, ch) = (input.w, input.h);
    if rw < cw || rh < ch {
        bail!("image is {rw}x{rh} after resizing, smaller than the {cw}x{ch} input");
    }
    let x0 = crop_offset((rw - cw) as u32) as usize;
    let y0 = crop_offset((rh - ch) as u32) as usize;
    let row = cw * channels;
    let mut out = Vec::with_capacity(ch * row);
    for y in y0..y0 + ch {
        let start = (y * rw + x0) * channels;
        out.extend_from_slice(&pixels[start..start + row]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// torchvision's sizes: `int(256 * long / short)` truncates (a 640x427 photo is 383x256,
    /// not 384x256), whichever side is the shorter.
    #[test]
    fn resized_sizes_are_torchvisions() {
        assert_eq!(resized_size(640, 427, 256), (383, 256));
        assert_eq!(resized_size(427, 640, 256), (256, 383));
        assert_eq!(resized_size(500, 334, 256), (383, 256));
        assert_eq!(resized_size(256, 256, 256), (256, 256));
        assert_eq!(resized_size(300, 200, 256), (384, 256));
        // Python: int(256 * 1000 / 3) = 85333.
        assert_eq!(resized_size(1000, 3, 256), (85333, 256));
    }

    /// torchvision's `int(round(excess / 2.0))`, halves to even: a 500x334 image (383x256
    /// resized) crops 224 columns from x = 80, not 79.
    #[test]
    fn crop_offsets_round_halves_to_even() {
        let python_round_half = |e: u32| {
            let x = e as f64 / 2.0;
            let (f, frac) = (x.floor(), x - x.floor());
            (if frac > 0.5 || (frac == 0.5 && f % 2.0 == 1.0) {
                f + 1.0
            } else {
                f
            }) as u32
        };
        assert_eq!(crop_offset(383 - 224), 80);
        assert_eq!(crop_offset(161), 80);
        assert_eq!(crop_offset(32), 16);
        for e in 0..1000 {
            assert_eq!(crop_offset(e), python_round_half(e), "{e}");
        }
    }
}
