//! The forward passes and the steps around them: preprocessing, input quantization, logits
//! dequantization.

use crate::buffers::{slice, slice_mut};
use crate::handle::{self, alexnet_model_t};
use crate::status::*;

/// Runs an f32 model on `input` (`input_len` floats, preprocessed, `[C, H, W]`), writing
/// `logits_len` logits (the values before any softmax). `arena` is scratch memory of
/// `arena_len` bytes, any alignment, at least `alexnet_model_arena_bytes` (which includes up
/// to 63 bytes for aligning its start to 64: an arena already aligned needs 64 less); it holds nothing
/// between calls, so one arena can serve several models in turn. Bit-identical to the Rust
/// core on every target.
///
/// # Safety
/// `model` is NULL or a handle; each other pointer is NULL or points to its length in
/// elements (the arena: bytes).
#[no_mangle]
pub unsafe extern "C" fn alexnet_forward_f32(
    model: *const alexnet_model_t,
    input: *const f32,
    input_len: usize,
    arena: *mut u8,
    arena_len: usize,
    logits: *mut f32,
    logits_len: usize,
) -> alexnet_status_t {
    // SAFETY: per the contract.
    let result = unsafe {
        forward(
            model,
            input,
            input_len,
            arena,
            arena_len,
            logits,
            logits_len,
            |m, x, a, y| m.forward(x, a, y),
        )
    };
    of(result)
}

/// Runs an int8 model on quantized input codes (`alexnet_quantize_input`), writing the int8
/// logits (`alexnet_dequantize_logits` makes them real values). Integer arithmetic only. The
/// arena as for `alexnet_forward_f32`.
///
/// # Safety
/// As for `alexnet_forward_f32`.
#[no_mangle]
pub unsafe extern "C" fn alexnet_forward_int8(
    model: *const alexnet_model_t,
    input: *const i8,
    input_len: usize,
    arena: *mut u8,
    arena_len: usize,
    logits: *mut i8,
    logits_len: usize,
) -> alexnet_status_t {
    // SAFETY: per the contract.
    let result = unsafe {
        forward(
            model,
            input,
            input_len,
            arena,
            arena_len,
            logits,
            logits_len,
            |m, x, a, y| m.forward_int8(x, a, y),
        )
    };
    of(result)
}

/// Checks the handle and the three buffers (none overlapping another), then runs `pass`.
#[allow(clippy::too_many_arguments)]
unsafe fn forward<T>(
    model: *const alexnet_model_t,
    input: *const T,
    input_len: usize,
    arena: *mut u8,
    arena_len: usize,
    logits: *mut T,
    logits_len: usize,
    pass: impl FnOnce(
        &alexnet_core::Model<'_>,
        &[T],
        &mut [u8],
        &mut [T],
    ) -> Result<(), alexnet_core::Error>,
) -> Result<(), alexnet_status_t> {
    // SAFETY (all four): per the caller's contract; overlaps are refused.
    let m = unsafe { handle::model(model) }?;
    let (input, input_span) = unsafe { slice(input, input_len) }?;
    let (arena, arena_span) = unsafe { slice_mut(arena, arena_len, &[input_span]) }?;
    let (logits, _) = unsafe { slice_mut(logits, logits_len, &[input_span, arena_span]) }?;
    pass(m, input, arena, logits).or_status()
}

/// Fills `input` (`input_len` floats, `[C, H, W]`) from an 8-bit image already at the
/// network's input size (`pixels_len` bytes): RGB triples row by row for 3-channel nets,
/// one byte per pixel for grey ones, with the blob's scaling, mean and standard deviation.
///
/// # Safety
/// `model` is NULL or a handle; `pixels` and `input` are NULL or point to their lengths.
#[no_mangle]
pub unsafe extern "C" fn alexnet_preprocess(
    model: *const alexnet_model_t,
    pixels: *const u8,
    pixels_len: usize,
    input: *mut f32,
    input_len: usize,
) -> alexnet_status_t {
    // SAFETY: per the contract.
    let result = unsafe { map(model, pixels, pixels_len, input, input_len) }.and_then(
        |(m, pixels, input)| {
            m.preprocess()
                .apply(pixels, m.arch().input, input)
                .or_status()
        },
    );
    of(result)
}

/// Quantizes a preprocessed f32 input to int8 codes with the model's input scale and zero
/// point (int8 models).
///
/// # Safety
/// As for `alexnet_preprocess`.
#[no_mangle]
pub unsafe extern "C" fn alexnet_quantize_input(
    model: *const alexnet_model_t,
    input: *const f32,
    input_len: usize,
    codes: *mut i8,
    codes_len: usize,
) -> alexnet_status_t {
    // SAFETY: per the contract.
    let result = unsafe { map(model, input, input_len, codes, codes_len) }
        .and_then(|(m, input, codes)| m.quantize_input(input, codes).or_status());
    of(result)
}

/// The real values of int8 logits, `(q - zero_point) * scale` (for `alexnet_softmax`).
///
/// # Safety
/// As for `alexnet_preprocess`.
#[no_mangle]
pub unsafe extern "C" fn alexnet_dequantize_logits(
    model: *const alexnet_model_t,
    codes: *const i8,
    codes_len: usize,
    logits: *mut f32,
    logits_len: usize,
) -> alexnet_status_t {
    // SAFETY: per the contract.
    let result = unsafe { map(model, codes, codes_len, logits, logits_len) }
        .and_then(|(m, codes, logits)| m.dequantize_logits(codes, logits).or_status());
    of(result)
}

/// The handle, an input array and an output array that does not overlap it.
type Mapped<'a, A, B> = (&'a alexnet_core::Model<'a>, &'a [A], &'a mut [B]);

unsafe fn map<'a, A, B>(
    model: *const alexnet_model_t,
    from: *const A,
    from_len: usize,
    to: *mut B,
    to_len: usize,
) -> Result<Mapped<'a, A, B>, alexnet_status_t> {
    // SAFETY (all three): per the caller's contract; the overlap is refused.
    let m = unsafe { handle::model(model) }?;
    let (from, span) = unsafe { slice(from, from_len) }?;
    let (to, _) = unsafe { slice_mut(to, to_len, &[span]) }?;
    Ok((m, from, to))
}
