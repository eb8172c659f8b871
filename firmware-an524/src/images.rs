//! The test images the host put in DDR: magic `ALXIMG02`, then u32 count, channels, rows,
//! cols (little-endian), `count` labels, and `count` images of `rows * cols * channels` bytes
//! (rows of interleaved channels, at the network's input size).

/// A view of the images.
pub struct Images {
    pub count: usize,
    size: usize,
    labels: &'static [u8],
    pixels: &'static [u8],
}

impl Images {
    /// Validates the header; `None` if the bytes are not such a file.
    pub fn parse(bytes: &'static [u8]) -> Option<Self> {
        let word = |i: usize| -> Option<usize> {
            let b = bytes.get(8 + 4 * i..12 + 4 * i)?;
            Some(u32::from_le_bytes(b.try_into().ok()?) as usize)
        };
        if bytes.get(..8)? != b"ALXIMG02" {
            return None;
        }
        let (count, channels, rows, cols) = (word(0)?, word(1)?, word(2)?, word(3)?);
        let size = channels.checked_mul(rows)?.checked_mul(cols)?;
        let labels = bytes.get(24..24 + count)?;
        let pixels = bytes.get(24 + count..24 + count + count.checked_mul(size)?)?;
        Some(Images {
            count,
            size,
            labels,
            pixels,
        })
    }

    /// Label and pixels of image `i`.
    pub fn image(&self, i: usize) -> Option<(u8, &'static [u8])> {
        Some((
            *self.labels.get(i)?,
            self.pixels.get(i * self.size..(i + 1) * self.size)?,
        ))
    }
}
