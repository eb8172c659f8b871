//! Parsing a blob into a handle, and what the model says about itself.

use crate::buffers::{slice, slice_mut, valid};
use crate::handle::{self, alexnet_model_t};
use crate::status::*;
use alexnet_core::{Model, Precision};
use core::ffi::c_char;

/// Bytes of the `name` field of `alexnet_model_info_t`, its NUL included.
pub const ALEXNET_NAME_BYTES: usize = 32;

/// The arithmetic a model's weights are stored for (`ALEXNET_PRECISION_*`).
pub type alexnet_precision_t = i32;
/// f32 weights: run `alexnet_forward_f32`.
pub const ALEXNET_PRECISION_F32: alexnet_precision_t = 0;
/// int8 weights: run `alexnet_forward_int8` on quantized input.
pub const ALEXNET_PRECISION_INT8: alexnet_precision_t = 1;

/// What a parsed model needs and gives: filled by `alexnet_model_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct alexnet_model_info_t {
    /// The architecture's name (e.g. "micro", "paper"), NUL-terminated, cut to fit.
    pub name: [c_char; ALEXNET_NAME_BYTES],
    /// `ALEXNET_PRECISION_F32` or `ALEXNET_PRECISION_INT8`.
    pub precision: alexnet_precision_t,
    /// Input channels (3 for RGB nets, 1 for grey).
    pub input_channels: usize,
    /// Input height in pixels.
    pub input_height: usize,
    /// Input width in pixels.
    pub input_width: usize,
    /// Elements of the input, `channels * height * width`; also the pixel bytes
    /// `alexnet_preprocess` reads.
    pub input_len: usize,
    /// Number of classes: elements of the logits.
    pub classes: usize,
    /// Bytes of arena the forward pass needs (any alignment).
    pub arena_bytes: usize,
    /// Weights and biases.
    pub parameters: usize,
    /// Multiply-accumulates per inference.
    pub macs: u64,
    /// Whether the blob carries class labels (`alexnet_class_label`).
    pub has_labels: bool,
}

/// Parses and validates a model blob (checksum, architecture, every tensor) into `out`,
/// without copying it: the blob must stay in place and unchanged while `out` is used. The
/// blob must be 4-byte aligned (`alexnet export-c` aligns it to 64). On failure `out` holds
/// no model.
///
/// # Safety
/// `blob` points to `len` readable bytes; `out` to writable storage of an `alexnet_model_t`.
#[no_mangle]
pub unsafe extern "C" fn alexnet_model_parse(
    blob: *const u8,
    len: usize,
    out: *mut alexnet_model_t,
) -> alexnet_status_t {
    if let Err(status) = valid(out.cast_const()) {
        return status;
    }
    // SAFETY: `out` is non-NULL, aligned and writable per the contract.
    unsafe { handle::clear(out) };
    // SAFETY: the caller keeps the blob alive and unchanged while the model is used, which
    // is what the 'static stands for across the C boundary.
    let bytes = match unsafe { slice::<u8>(blob, len) } {
        Ok((bytes, _)) => bytes,
        Err(status) => return status,
    };
    match Model::parse(bytes) {
        Ok(model) => {
            // SAFETY: as above.
            unsafe { handle::store(out, model) };
            ALEXNET_OK
        }
        Err(e) => code(e),
    }
}

/// Fills `info` with what the model in `model` needs and gives.
///
/// # Safety
/// `model` is NULL or a handle (zeroed or parsed); `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn alexnet_model_info(
    model: *const alexnet_model_t,
    info: *mut alexnet_model_info_t,
) -> alexnet_status_t {
    // SAFETY: per the contract.
    let m = match unsafe { handle::model(model) } {
        Ok(m) => m,
        Err(status) => return status,
    };
    if let Err(status) = valid(info.cast_const()) {
        return status;
    }
    let arch = m.arch();
    let mut name = [0 as c_char; ALEXNET_NAME_BYTES];
    for (dst, &src) in name
        .iter_mut()
        .take(ALEXNET_NAME_BYTES - 1)
        .zip(arch.name.as_bytes())
    {
        *dst = src as c_char;
    }
    let value = alexnet_model_info_t {
        name,
        precision: match m.precision() {
            Precision::F32 => ALEXNET_PRECISION_F32,
            Precision::Int8 => ALEXNET_PRECISION_INT8,
        },
        input_channels: arch.input.c,
        input_height: arch.input.h,
        input_width: arch.input.w,
        input_len: m.input_len(),
        classes: m.classes(),
        arena_bytes: m.arena_bytes(),
        parameters: m.plan().params,
        macs: m.plan().macs,
        has_labels: m.labels().is_some(),
    };
    // SAFETY: non-NULL, aligned, writable per the contract.
    unsafe { info.write(value) };
    ALEXNET_OK
}

/// Bytes of arena the model's forward pass needs, any alignment; 0 if `model` holds no
/// model. For a static arena sized at compile time, see the `ALEXNET_<NET>_ARENA_BYTES_*`
/// constants of the built-in nets.
///
/// # Safety
/// `model` is NULL or a handle (zeroed or parsed).
#[no_mangle]
pub unsafe extern "C" fn alexnet_model_arena_bytes(model: *const alexnet_model_t) -> usize {
    // SAFETY: per the contract.
    unsafe { handle::model(model) }.map_or(0, |m| m.arena_bytes())
}

/// Copies the label of class `index` into `buf` (`buf_len` bytes, NUL-terminated UTF-8).
/// `ALEXNET_ERR_NO_LABEL` if the blob has no labels or no such class,
/// `ALEXNET_ERR_BUFFER_TOO_SMALL` if the label and its NUL do not fit (`buf` then holds an
/// empty string).
///
/// # Safety
/// `model` is NULL or a handle; `buf` is NULL or points to `buf_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn alexnet_class_label(
    model: *const alexnet_model_t,
    index: usize,
    buf: *mut c_char,
    buf_len: usize,
) -> alexnet_status_t {
    // SAFETY: per the contract.
    let result = unsafe { class_label(model, index, buf, buf_len) };
    of(result)
}

unsafe fn class_label(
    model: *const alexnet_model_t,
    index: usize,
    buf: *mut c_char,
    buf_len: usize,
) -> Result<(), alexnet_status_t> {
    // SAFETY: per the caller's contract.
    let m = unsafe { handle::model(model) }?;
    // SAFETY: per the caller's contract; the label lives in the blob, which the caller keeps
    // apart from its own buffers.
    let (buf, _) = unsafe { slice_mut(buf.cast::<u8>(), buf_len, &[]) }?;
    if let Some(first) = buf.first_mut() {
        *first = 0;
    }
    let label = m
        .labels()
        .and_then(|l| l.get(index))
        .ok_or(ALEXNET_ERR_NO_LABEL)?;
    let text = label.as_bytes();
    let (dst, nul) = buf
        .get_mut(..text.len() + 1)
        .and_then(|b| b.split_last_mut())
        .map(|(nul, dst)| (dst, nul))
        .ok_or(ALEXNET_ERR_BUFFER_TOO_SMALL)?;
    dst.copy_from_slice(text);
    *nul = 0;
    Ok(())
}

/// This library's version, e.g. "0.1.0", NUL-terminated in static memory.
#[no_mangle]
pub extern "C" fn alexnet_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}
