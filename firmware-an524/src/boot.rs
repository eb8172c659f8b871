//! What the bootloader left in DDR: a boot record at the start of DDR that says where the
//! model blob and the test images lie and how long they are. On a real board a bootloader
//! copies the blob from QSPI flash or an SD card and writes this record; under QEMU,
//! `-device loader` options do both (`tests/firmware_an524.rs`, `docs/firmware.md`).
//!
//! The record, little-endian: the magic `ALXBOOT1`, then u32 blob offset, u32 blob length,
//! u32 images offset, u32 images length, the offsets from the record's own address. The
//! blob must start 64-byte aligned.

/// Where the record lies: the first byte of DDR's secure alias.
pub const RECORD_ADDRESS: usize = 0x7000_0000;
/// DDR below the arenas (`memory.x` keeps its top 16 MiB for them).
const DDR_END: usize = 0x7F00_0000;
const MAGIC: &[u8; 8] = b"ALXBOOT1";

/// The blob and the images, borrowed from DDR for the program's life.
pub struct Loaded {
    pub blob: &'static [u8],
    pub images: &'static [u8],
}

/// What is wrong with the boot record.
#[derive(defmt::Format)]
pub enum BootError {
    /// No `ALXBOOT1` at the record's address: nothing was loaded, or not there.
    NoRecord,
    /// A region the record names does not lie in DDR below the arenas.
    OutOfRange {
        what: &'static str,
        offset: u32,
        len: u32,
    },
}

/// Reads the record.
pub fn loaded() -> Result<Loaded, BootError> {
    // SAFETY: RECORD_ADDRESS..+24 is DDR, mapped on this board, read-only to this program
    // (nothing writes DDR below 0x7F000000 after the bootloader); any byte values are valid.
    let record: &'static [u8] =
        unsafe { core::slice::from_raw_parts(RECORD_ADDRESS as *const u8, 24) };
    if record.get(..8) != Some(&MAGIC[..]) {
        return Err(BootError::NoRecord);
    }
    let word = |i: usize| {
        record
            .get(8 + 4 * i..12 + 4 * i)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    };
    let region = |what: &'static str, offset: u32, len: u32| {
        let start = RECORD_ADDRESS.checked_add(offset as usize);
        match start.and_then(|s| s.checked_add(len as usize)) {
            Some(end) if offset >= 24 && end <= DDR_END => {
                // SAFETY: [start, end) lies in DDR below the arenas (checked), which only the
                // bootloader wrote; it is read-only from here on.
                Ok(unsafe {
                    core::slice::from_raw_parts(
                        (RECORD_ADDRESS + offset as usize) as *const u8,
                        len as usize,
                    )
                })
            }
            _ => Err(BootError::OutOfRange { what, offset, len }),
        }
    };
    Ok(Loaded {
        blob: region("blob", word(0), word(1))?,
        images: region("images", word(2), word(3))?,
    })
}
