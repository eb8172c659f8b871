//! Turning image files into a model's input: decode, resize, centre-crop, normalize.

use alexnet_core::model::ChannelOrder;
use alexnet_core::{Preprocess, Shape};
use anyhow::{bail, Context, Result};
use image::imageops::FilterType;
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

/// Resizes the shorter side to `prep.resize` (bilinear), centre-crops to the input size and
/// normalizes with the model's preprocessing into `[C, H, W]`.
pub fn prepare_image(img: &DynamicImage, prep: &Preprocess<'_>, input: Shape) -> Result<Vec<f32>> {
    let pixels = cropped_pixels(img, prep, input)?;
    let mut out = vec![0.0f32; input.len()];
    prep.apply(&pixels, input, &mut out)
        .map_err(anyhow::Error::msg)?;
    Ok(out)
}

/// The resize and centre crop of [`prepare_image`], without the normalization: the 8-bit
/// pixels at the input size (RGB triples, or grey bytes), which is what a device's camera
/// pipeline hands to `Preprocess::apply`.
pub fn cropped_pixels(img: &DynamicImage, prep: &Preprocess<'_>, input: Shape) -> Result<Vec<u8>> {
    let (w, h) = (img.width(), img.height());
    if w == 0 || h == 0 {
        bail!("image is empty");
    }
    let resized = if prep.resize != 0 && w.min(h) != prep.resize {
        let r = prep.resize;
        let scaled =
            |long: u32, short: u32| ((long as f64 * r as f64 / short as f64).round() as u32).max(r);
        let (nw, nh) = if w <= h {
            (r, scaled(h, w))
        } else {
            (scaled(w, h), r)
        };
        img.resize_exact(nw, nh, FilterType::Triangle)
    } else {
        img.clone()
    };
    let (cw, ch) = (input.w as u32, input.h as u32);
    if resized.width() < cw || resized.height() < ch {
        bail!(
            "image is {}x{} after resizing, smaller than the {}x{} input",
            resized.width(),
            resized.height(),
            cw,
            ch
        );
    }
    let x0 = (resized.width() - cw) / 2;
    let y0 = (resized.height() - ch) / 2;
    let cropped = resized.crop_imm(x0, y0, cw, ch);
    Ok(match prep.channel_order {
        ChannelOrder::Gray => cropped.to_luma8().into_raw(),
        ChannelOrder::Rgb | ChannelOrder::Bgr => cropped.to_rgb8().into_raw(),
    })
}
