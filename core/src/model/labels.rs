//! Class labels stored in the blob (LABL section), as zero-copy string slices.

use crate::error::Error;

/// The labels: `count + 1` little-endian u32 offsets into a UTF-8 text, label `i` being
/// `text[offsets[i]..offsets[i + 1]]`. Validated once at parse time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Labels<'a> {
    offsets: &'a [u8],
    text: &'a str,
}

impl<'a> Labels<'a> {
    /// Parses and validates a LABL section.
    pub fn parse(section: &'a [u8]) -> Result<Self, Error> {
        let count = read_u32(section, 0, "label count")? as usize;
        let table_bytes =
            count
                .checked_add(1)
                .and_then(|n| n.checked_mul(4))
                .ok_or(Error::BadField {
                    field: "label count",
                    found: count as u32,
                })?;
        let offsets = section.get(4..4 + table_bytes).ok_or(Error::Truncated {
            what: "label offsets",
            needed: 4 + table_bytes,
            available: section.len(),
        })?;
        let raw = section.get(4 + table_bytes..).unwrap_or(&[]);
        let text = core::str::from_utf8(raw).map_err(|_| Error::BadUtf8 { what: "labels" })?;
        let labels = Labels { offsets, text };
        let mut prev = 0usize;
        for i in 0..=count {
            let off = read_u32(offsets, i * 4, "label offset")? as usize;
            let first_ok = i != 0 || off == 0;
            let last_ok = i != count || off == text.len();
            if off < prev
                || off > text.len()
                || !text.is_char_boundary(off)
                || !first_ok
                || !last_ok
            {
                return Err(Error::BadField {
                    field: "label offset",
                    found: off as u32,
                });
            }
            prev = off;
        }
        Ok(labels)
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        (self.offsets.len() / 4).saturating_sub(1)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Label of class `i`.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        let start = read_u32(self.offsets, i.checked_mul(4)?, "").ok()? as usize;
        let end = read_u32(self.offsets, i.checked_add(1)?.checked_mul(4)?, "").ok()? as usize;
        self.text.get(start..end)
    }
}

/// Reads a little-endian u32 at `offset`, or says the section is truncated.
pub(crate) fn read_u32(bytes: &[u8], offset: usize, what: &'static str) -> Result<u32, Error> {
    let end = offset.checked_add(4).ok_or(Error::Truncated {
        what,
        needed: usize::MAX,
        available: bytes.len(),
    })?;
    match bytes.get(offset..end) {
        Some(&[a, b, c, d]) => Ok(u32::from_le_bytes([a, b, c, d])),
        _ => Err(Error::Truncated {
            what,
            needed: end,
            available: bytes.len(),
        }),
    }
}
