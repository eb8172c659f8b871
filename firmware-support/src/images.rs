//! Test images a host put beside the firmware (embedded in flash, or loaded into memory):
//! magic `ALXIMG01` then u32 count, rows, cols (grey images), or `ALXIMG02` then u32 count,
//! channels, rows, cols; then `count` labels and `count` images of `rows * cols * channels`
//! bytes (rows of interleaved channels), all little-endian.

/// A view of the images.
pub struct Images {
    /// Number of images.
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
        let (count, channels, rows, cols, header) = match bytes.get(..8)? {
            b"ALXIMG01" => (word(0)?, 1, word(1)?, word(2)?, 20usize),
            b"ALXIMG02" => (word(0)?, word(1)?, word(2)?, word(3)?, 24),
            _ => return None,
        };
        let size = channels.checked_mul(rows)?.checked_mul(cols)?;
        let start = header.checked_add(count)?;
        let labels = bytes.get(header..start)?;
        let pixels = bytes.get(start..start.checked_add(count.checked_mul(size)?)?)?;
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
