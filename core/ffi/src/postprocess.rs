//! Softmax and top-k over logits, as the Rust core computes them.

use crate::buffers::{slice, slice_mut};
use crate::status::*;

/// `probs[i] = exp(logits[i] - max) / sum`, reproducible across targets. `logits` and
/// `probs` hold `len` floats each and must not overlap.
///
/// # Safety
/// Each pointer is NULL or points to `len` floats.
#[no_mangle]
pub unsafe extern "C" fn alexnet_softmax(
    logits: *const f32,
    probs: *mut f32,
    len: usize,
) -> alexnet_status_t {
    let result = (|| -> Result<(), alexnet_status_t> {
        // SAFETY (both): per the contract; the overlap is refused.
        let (logits, span) = unsafe { slice(logits, len) }?;
        let (probs, _) = unsafe { slice_mut(probs, len, &[span]) }?;
        alexnet_core::postprocess::softmax(logits, probs).or_status()
    })();
    of(result)
}

/// Writes the classes of the `k` highest of `len` scores into `indices`, best first (ties:
/// lower class first; NaN ranks last), and their number (`min(k, len)`) into `*written`
/// unless `written` is NULL.
///
/// # Safety
/// `scores` is NULL or points to `len` floats, `indices` to `k` writable `size_t`s,
/// `written` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn alexnet_top_k(
    scores: *const f32,
    len: usize,
    indices: *mut usize,
    k: usize,
    written: *mut usize,
) -> alexnet_status_t {
    let result = (|| -> Result<(), alexnet_status_t> {
        // SAFETY (both): per the contract; the overlap is refused.
        let (scores, span) = unsafe { slice(scores, len) }?;
        let (indices, _) = unsafe { slice_mut(indices, k, &[span]) }?;
        let n = alexnet_core::postprocess::top_k(scores, indices);
        if !written.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { written.write_unaligned(n) };
        }
        Ok(())
    })();
    of(result)
}
