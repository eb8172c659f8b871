//! The test images the host exported (`assets/images.bin`, `cargo xtask firmware` writes it),
//! embedded in flash.

pub use firmware_support::images::Images;

static IMAGES: &[u8] = include_bytes!("../assets/images.bin");

/// The embedded images; `None` if the file is malformed.
pub fn embedded() -> Option<Images> {
    Images::parse(IMAGES)
}
