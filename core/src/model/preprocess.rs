//! How pixels become the network's input, as recorded in the blob's PREP section.

use crate::arch::Shape;
use crate::error::Error;

/// The channel order the network expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ChannelOrder {
    /// Red, green, blue (torchvision).
    Rgb,
    /// Blue, green, red (Caffe).
    Bgr,
    /// One luminance channel.
    Gray,
}

impl ChannelOrder {
    /// Code in the PREP section.
    pub const fn code(self) -> u32 {
        match self {
            ChannelOrder::Rgb => 0,
            ChannelOrder::Bgr => 1,
            ChannelOrder::Gray => 2,
        }
    }

    /// From the PREP code.
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(ChannelOrder::Rgb),
            1 => Some(ChannelOrder::Bgr),
            2 => Some(ChannelOrder::Gray),
            _ => None,
        }
    }

    /// Channels of an image in this order.
    pub const fn channels(self) -> usize {
        match self {
            ChannelOrder::Gray => 1,
            _ => 3,
        }
    }
}

/// What is subtracted from each scaled pixel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mean<'a> {
    /// Nothing.
    None,
    /// One value per channel, in the network's channel order.
    PerChannel(&'a [f32]),
    /// A mean image `[C, H, W]` at the network's input size (the paper's per-pixel mean).
    PerPixel(&'a [f32]),
}

impl Mean<'_> {
    /// Code in the PREP section.
    pub const fn code(&self) -> u32 {
        match self {
            Mean::None => 0,
            Mean::PerChannel(_) => 1,
            Mean::PerPixel(_) => 2,
        }
    }
}

/// Preprocessing: resize the shorter side to `resize`, centre-crop to the input size, then
/// `input[c][y][x] = (pixel * pixel_scale - mean) / std[c]` for pixels in `0..=255`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess<'a> {
    /// Shorter side after resizing, before the centre crop (0: use the image as it is).
    pub resize: u32,
    /// Channel order.
    pub channel_order: ChannelOrder,
    /// Factor applied to `0..=255` pixels first (1/255 for torchvision, 1 for Caffe).
    pub pixel_scale: f32,
    /// Mean subtracted after scaling.
    pub mean: Mean<'a>,
    /// Per-channel divisor applied last, if any.
    pub std: Option<&'a [f32]>,
}

impl Preprocess<'_> {
    /// Fills `out` (`[C, H, W]`) from an interleaved 8-bit image already cropped to the input
    /// size: RGB triples for 3-channel nets (reordered here when the net wants BGR), one
    /// byte per pixel for grey nets. This is the step a camera pipeline calls on-device.
    pub fn apply(&self, pixels: &[u8], shape: Shape, out: &mut [f32]) -> Result<(), Error> {
        let c = shape.c;
        if c != self.channel_order.channels() {
            return Err(Error::WrongLength {
                what: "preprocess channels",
                expected: self.channel_order.channels(),
                found: c,
            });
        }
        crate::geometry::expect_len("preprocess pixels", shape.len(), pixels.len())?;
        crate::geometry::expect_len("preprocess output", shape.len(), out.len())?;
        let plane = shape.plane();
        for (p, px) in pixels.chunks_exact(c).enumerate() {
            for (ch, &v) in px.iter().enumerate() {
                let net_ch = match self.channel_order {
                    ChannelOrder::Bgr => 2 - ch,
                    _ => ch,
                };
                let idx = net_ch * plane + p;
                let mean = match self.mean {
                    Mean::None => 0.0,
                    Mean::PerChannel(m) => m.get(net_ch).copied().unwrap_or(0.0),
                    Mean::PerPixel(m) => m.get(idx).copied().unwrap_or(0.0),
                };
                let mut x = v as f32 * self.pixel_scale - mean;
                if let Some(std) = self.std {
                    x /= std.get(net_ch).copied().unwrap_or(1.0);
                }
                if let Some(o) = out.get_mut(idx) {
                    *o = x;
                }
            }
        }
        Ok(())
    }
}
