//! Turning image files into a model's input: decode, resize, centre-crop, normalize.

use alexnet_core::model::ChannelOrder;
use alexnet_core::{Preprocess, Shape};
use anyhow::{bail, ensure, Context, Result};
use image::DynamicImage;
use std::path::Path;

/// Decodes `path` (JPEG, PNG, BMP, WebP, GIF, TIFF, PNM; grey, 16-bit and CMYK are
/// converted) and prepares it.
pub fn load_image(path: impl AsRef<Path>, prep: &Preprocess<'_>, input: Shape) -> Result<Vec<f32>> {
    let path = path.as_ref();
    prepare_image(&decode(path)?, prep, input)
        .with_context(|| format!("cannot prepare image {}", path.display()))
}

/// Decodes an image file, its format told by its content. JPEGs are decoded as Pillow
/// decodes them ([`crate::jpeg`]), so the pixels are those torchvision starts from; CMYK
/// JPEGs and every other format by the `image` crate.
pub fn decode(path: &Path) -> Result<DynamicImage> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot open image {}", path.display()))?;
    if bytes.starts_with(&[0xff, 0xd8]) {
        if let Some(img) = crate::jpeg::decode(&bytes) {
            return Ok(img);
        }
    }
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .with_context(|| format!("cannot read image {}", path.display()))?
        .decode()
        .with_context(|| format!("cannot decode image {}", path.display()))
}

/// The paper's ten patches of an image file (§4.1: "the four corner patches and the center
/// patch as well as their horizontal reflections"), each prepared as [`load_image`] prepares
/// the centre one: resized, cut at the input's size, normalized; in torchvision's `TenCrop`
/// order and positions (the five crops of the image, then of its mirror image).
pub fn load_ten_crops(path: &Path, prep: &Preprocess<'_>, input: Shape) -> Result<Vec<Vec<f32>>> {
    let img = decode(path)?;
    let (pixels, channels) = model_pixels(&img, prep);
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (resized, rw, rh) = resize(&pixels, w, h, channels, prep.resize);
    let (cw, ch) = (input.w, input.h);
    ensure!(
        rw >= cw && rh >= ch,
        "{}: {rw}x{rh} after resizing, smaller than the {cw}x{ch} input",
        path.display()
    );
    let centre = (
        crop_offset((rw - cw) as u32) as usize,
        crop_offset((rh - ch) as u32) as usize,
    );
    let corners = [
        (0, 0),
        (rw - cw, 0),
        (0, rh - ch),
        (rw - cw, rh - ch),
        centre,
    ];
    // torchvision's order and patches: five crops of the image, then the same five crops of
    // its mirror image (whose centre crop, for an odd margin, is not the mirrored centre one).
    let mut mirrored = resized.clone();
    for row in mirrored.chunks_exact_mut(rw * channels) {
        mirror_row(row, channels);
    }
    let mut crops = Vec::with_capacity(10);
    for image in [&resized, &mirrored] {
        for &(x0, y0) in &corners {
            let patch = crop(image, rw, channels, x0, y0, cw, ch);
            let mut out = vec![0.0f32; input.len()];
            prep.apply(&patch, input, &mut out)
                .map_err(anyhow::Error::msg)?;
            crops.push(out);
        }
    }
    Ok(crops)
}

/// Reverses a row of `channels`-byte pixels.
fn mirror_row(row: &mut [u8], channels: usize) {
    let n = row.len() / channels;
    for i in 0..n / 2 {
        for c in 0..channels {
            row.swap(i * channels + c, (n - 1 - i) * channels + c);
        }
    }
}

/// The image as the model's 8-bit pixels: grey bytes or RGB triples, and their count per pixel.
fn model_pixels(img: &DynamicImage, prep: &Preprocess<'_>) -> (Vec<u8>, usize) {
    match prep.channel_order {
        ChannelOrder::Gray => (img.to_luma8().into_raw(), 1),
        ChannelOrder::Rgb | ChannelOrder::Bgr => (img.to_rgb8().into_raw(), 3),
    }
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
    let (pixels, channels) = model_pixels(img, prep);
    resize_and_crop(&pixels, w, h, channels, prep.resize, input)
}

/// torchvision's `Resize(resize)` (Pillow's antialiased bilinear filter, [`crate::resample`];
/// `resize` 0: none) then `CenterCrop` to the input's size, on interleaved 8-bit pixels.
pub fn resize_and_crop(
    pixels: &[u8],
    w: usize,
    h: usize,
    channels: usize,
    resize_to: u32,
    input: Shape,
) -> Result<Vec<u8>> {
    if w == 0 || h == 0 {
        bail!("image is empty");
    }
    let (resized, rw, rh) = resize(pixels, w, h, channels, resize_to);
    let (cw, ch) = (input.w, input.h);
    if rw < cw || rh < ch {
        bail!("image is {rw}x{rh} after resizing, smaller than the {cw}x{ch} input");
    }
    let x0 = crop_offset((rw - cw) as u32) as usize;
    let y0 = crop_offset((rh - ch) as u32) as usize;
    Ok(crop(&resized, rw, channels, x0, y0, cw, ch))
}

/// The shorter side to `to` (0: unchanged), as torchvision's `Resize` on a PIL image.
fn resize(pixels: &[u8], w: usize, h: usize, channels: usize, to: u32) -> (Vec<u8>, usize, usize) {
    if to == 0 || w == 0 || h == 0 {
        return (pixels.to_vec(), w, h);
    }
    let (nw, nh) = resized_size(w as u32, h as u32, to);
    let (nw, nh) = (nw as usize, nh as usize);
    let out = crate::resample::resize_bilinear(pixels, w, h, channels, nw, nh);
    (out, nw, nh)
}

/// The `cw x ch` patch at `(x0, y0)` of an image `width` pixels wide.
fn crop(
    pixels: &[u8],
    width: usize,
    channels: usize,
    x0: usize,
    y0: usize,
    cw: usize,
    ch: usize,
) -> Vec<u8> {
    let row = cw * channels;
    let mut out = Vec::with_capacity(ch * row);
    for y in y0..y0 + ch {
        let start = (y * width + x0) * channels;
        out.extend_from_slice(&pixels[start..start + row]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten patches: corners and centre, then the same five of the mirror image (torchvision's
    /// `TenCrop`).
    #[test]
    fn ten_crops_are_corners_centre_and_mirrors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ramp.png");
        // 6x4 grey: pixel (x, y) = 10 * x + y.
        let img = image::GrayImage::from_fn(6, 4, |x, y| image::Luma([(10 * x + y) as u8]));
        img.save(&path).unwrap();
        let prep = Preprocess {
            resize: 0,
            channel_order: ChannelOrder::Gray,
            pixel_scale: 1.0,
            mean: alexnet_core::model::Mean::None,
            std: None,
        };
        let crops = load_ten_crops(&path, &prep, Shape::new(1, 2, 2)).unwrap();
        let firsts: Vec<f32> = crops.iter().map(|c| c[0]).collect();
        // Top-left pixels: corners (0,0), (4,0), (0,2), (4,2), centre (2,1); then the same
        // positions in the mirror image, whose pixel (x, y) is the image's (5 - x, y).
        assert_eq!(
            firsts,
            [0.0, 40.0, 2.0, 42.0, 21.0, 50.0, 10.0, 52.0, 12.0, 31.0]
        );
        assert_eq!(crops[5], [50.0, 40.0, 51.0, 41.0]);

        // An odd margin (5 columns, 2 kept: 3 spare): the centre crop starts at
        // round_half_even(1.5) = 2 in the image and in its mirror image, so the mirrored centre
        // patch is columns 2 and 1 of the image, not the centre patch (2, 3) reversed.
        let img = image::GrayImage::from_fn(5, 4, |x, y| image::Luma([(10 * x + y) as u8]));
        img.save(&path).unwrap();
        let crops = load_ten_crops(&path, &prep, Shape::new(1, 2, 2)).unwrap();
        assert_eq!(crops[4], [21.0, 31.0, 22.0, 32.0]);
        assert_eq!(crops[9], [21.0, 11.0, 22.0, 12.0]);
    }

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
