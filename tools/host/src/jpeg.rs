//! JPEG decoding as Pillow does it: libjpeg-turbo (its bundled source, built by the
//! `turbojpeg-sys` crate and linked statically) with its defaults, the accurate integer IDCT
//! and smooth chroma upsampling. torchvision's pixels are Pillow's, so a net evaluated here
//! starts from the same bytes as in PyTorch (`tests/preprocess.rs`).
//!
//! The TurboJPEG calls are made directly rather than through the `turbojpeg` crate's
//! wrappers for one reason: libjpeg *warnings* ("Corrupt JPEG data: 2 extraneous bytes
//! before marker", "Premature end of JPEG file") fail those wrappers, although the image is
//! decoded, and Pillow, which ignores them, decodes such files. `tjGetErrorCode` tells a
//! warning from an error.

use image::DynamicImage;
use turbojpeg::libc::{c_int, c_ulong};
use turbojpeg::raw;

/// A TurboJPEG decompressor, destroyed when dropped.
struct Handle(raw::tjhandle);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from `tjInitDecompress` and is destroyed once.
        #[allow(unsafe_code)]
        unsafe {
            raw::tjDestroy(self.0);
        }
    }
}

/// A grey or colour (YCbCr or RGB) JPEG, decoded as Pillow decodes it (a libjpeg warning is
/// not a failure); `None` for CMYK and YCCK files, and for what libjpeg cannot decode.
#[allow(unsafe_code)]
pub fn decode(bytes: &[u8]) -> Option<DynamicImage> {
    let len = c_ulong::try_from(bytes.len()).ok()?;
    // SAFETY: every call gets the live handle, `bytes` with its true length, and for the
    // pixels a buffer of exactly `width * height * channels` bytes with that width, height
    // and pixel format (pitch 0: packed rows), which is what TurboJPEG writes.
    unsafe {
        let handle = raw::tjInitDecompress();
        if handle.is_null() {
            return None;
        }
        let handle = Handle(handle);
        let (mut w, mut h, mut subsamp, mut colorspace): (c_int, c_int, c_int, c_int) =
            (0, 0, 0, 0);
        let header = raw::tjDecompressHeader3(
            handle.0,
            bytes.as_ptr(),
            len,
            &mut w,
            &mut h,
            &mut subsamp,
            &mut colorspace,
        );
        if header != 0 || w <= 0 || h <= 0 {
            return None;
        }
        // The constants' integer type differs between bindings; compare as C ints.
        let is = |cs: raw::TJCS| colorspace == cs as c_int;
        let gray = if is(raw::TJCS_TJCS_GRAY) {
            true
        } else if is(raw::TJCS_TJCS_YCbCr) || is(raw::TJCS_TJCS_RGB) {
            false
        } else {
            return None;
        };
        let (format, channels) = if gray {
            (raw::TJPF_TJPF_GRAY, 1)
        } else {
            (raw::TJPF_TJPF_RGB, 3)
        };
        let count = (w as usize)
            .checked_mul(h as usize)?
            .checked_mul(channels)?;
        let mut pixels = vec![0u8; count];
        let status = raw::tjDecompress2(
            handle.0,
            bytes.as_ptr(),
            len,
            pixels.as_mut_ptr(),
            w,
            0,
            h,
            format,
            0,
        );
        if status != 0 && raw::tjGetErrorCode(handle.0) != raw::TJERR_TJERR_WARNING as c_int {
            return None;
        }
        let (w, h) = (w as u32, h as u32);
        Some(if gray {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, pixels)?)
        } else {
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, pixels)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG with a libjpeg warning (bytes between the scan and the end marker) still
    /// decodes here, to the same pixels as the clean file; garbage does not.
    #[test]
    fn warnings_are_not_failures() {
        let img =
            image::RgbImage::from_fn(40, 24, |x, y| image::Rgb([x as u8 * 6, y as u8 * 9, 77]));
        let mut clean = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(
                &mut std::io::Cursor::new(&mut clean),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        let expected = decode(&clean).unwrap();
        // "Corrupt JPEG data: 2 extraneous bytes before marker 0xd9".
        let end = clean.len() - 2;
        let mut warned = clean[..end].to_vec();
        warned.extend_from_slice(&[0x12, 0x34, 0xff, 0xd9]);
        assert_eq!(decode(&warned).unwrap(), expected);
        assert!(decode(b"\xff\xd8not a jpeg at all").is_none());
    }
}
