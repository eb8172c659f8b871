//! The test images the host exported (`assets/images.bin`): magic `ALXIMG01`, then u32 count,
//! rows, cols (little-endian), `count` labels, and `count * rows * cols` pixels.

static IMAGES: &[u8] = include_bytes!("../assets/images.bin");

/// A view of the embedded images.
pub struct Images {
    pub count: usize,
    size: usize,
    labels: &'static [u8],
    pixels: &'static [u8],
}

impl Images {
    /// Validates the header; `None` if the file is malformed.
    pub fn parse() -> Option<Self> {
        let word = |i: usize| -> Option<usize> {
            let b = IMAGES.get(8 + 4 * i..12 + 4 * i)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        if IMAGES.get(..8)? != b"ALXIMG01" {
            return None;
        }
        let (count, rows, cols) = (word(0)?, word(1)?, word(2)?);
        let size = rows.checked_mul(cols)?;
        let labels = IMAGES.get(20..20 + count)?;
        let pixels = IMAGES.get(20 + count..20 + count + count.checked_mul(size)?)?;
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
