//! The model handle: storage the caller owns, holding a parsed `Model` that borrows the blob.

use crate::status::*;
use alexnet_core::Model;
use core::mem::{align_of, size_of};

/// 8-byte words in an `alexnet_model_t` on 64-bit targets (a parsed model takes 5,600
/// bytes there today; the rest is room to grow without changing the ABI). Checked against
/// the real size at compile time.
#[cfg(target_pointer_width = "64")]
pub const ALEXNET_MODEL_WORDS: usize = 768;
/// 8-byte words in an `alexnet_model_t` on 32-bit targets such as Cortex-M (a parsed model
/// takes 3,336 bytes there today).
#[cfg(not(target_pointer_width = "64"))]
pub const ALEXNET_MODEL_WORDS: usize = 448;

/// A parsed model, in storage the caller provides (a global, a static, or the stack): no
/// allocation. Fill it with `alexnet_model_parse`; it stays valid as long as the blob it was
/// parsed from stays in place and unchanged. Zero it before first use, so that a handle that
/// was never parsed is recognized as such. Copying the bytes copies the model.
#[repr(C)]
pub struct alexnet_model_t {
    /// Opaque: only this library reads or writes it.
    pub opaque: [u64; ALEXNET_MODEL_WORDS],
}

/// What the opaque storage holds: a marker that says a parse succeeded, then the model.
#[repr(C)]
struct Slot {
    marker: u64,
    model: Model<'static>,
}

/// "ALEXNET\x01": the handle holds a model parsed by this version of the layout.
const PARSED: u64 = u64::from_le_bytes(*b"ALEXNET\x01");

const _: () = assert!(size_of::<Slot>() <= size_of::<alexnet_model_t>());
const _: () = assert!(align_of::<Slot>() <= align_of::<alexnet_model_t>());

/// Stores `model` in the caller's handle.
///
/// # Safety
/// `handle` is non-NULL and points to writable storage of an `alexnet_model_t`.
pub unsafe fn store(handle: *mut alexnet_model_t, model: Model<'static>) {
    let slot = handle.cast::<Slot>();
    // SAFETY: the storage is large and aligned enough (asserted above) and writable.
    unsafe {
        slot.write(Slot {
            marker: PARSED,
            model,
        })
    }
}

/// Marks a handle as holding no model (after a failed parse).
///
/// # Safety
/// As for [`store`].
pub unsafe fn clear(handle: *mut alexnet_model_t) {
    // SAFETY: the marker is the first word of the storage, which is writable.
    unsafe { handle.cast::<u64>().write(0) }
}

/// The model in a handle, if a parse filled it.
///
/// # Safety
/// `handle` is NULL or points to an `alexnet_model_t` (zeroed, or filled by
/// `alexnet_model_parse` from a blob that is still in place).
pub unsafe fn model<'h>(handle: *const alexnet_model_t) -> Result<&'h Model<'h>, alexnet_status_t> {
    crate::buffers::valid(handle)?;
    let slot = handle.cast::<Slot>();
    // SAFETY: the marker is a plain word at the start of the caller's storage.
    let marker = unsafe { core::ptr::addr_of!((*slot).marker).read() };
    if marker != PARSED {
        return Err(ALEXNET_ERR_NOT_A_MODEL);
    }
    // SAFETY: the marker is only written beside a model that `store` wrote; the blob it
    // borrows outlives the handle per the contract.
    Ok(unsafe { &(*slot).model })
}
