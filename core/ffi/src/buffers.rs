//! C pointers and lengths made into slices, after every check that keeps that sound.

use crate::status::*;
use core::mem::size_of;

/// The byte range an array occupies, for overlap checks.
#[derive(Clone, Copy)]
pub struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// Whether two non-empty ranges share a byte.
    pub fn overlaps(self, other: Span) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Checks a pointer to one `T` or the start of an array: not NULL, aligned for `T`.
pub fn valid<T>(ptr: *const T) -> Result<(), alexnet_status_t> {
    if ptr.is_null() {
        Err(ALEXNET_ERR_NULL_POINTER)
    } else if !ptr.is_aligned() {
        Err(ALEXNET_ERR_MISALIGNED)
    } else {
        Ok(())
    }
}

/// Checks a C array: [`valid`], and within the address space.
fn check<T>(ptr: *const T, len: usize) -> Result<Span, alexnet_status_t> {
    valid(ptr)?;
    let start = ptr as usize;
    let end = len
        .checked_mul(size_of::<T>())
        .filter(|&bytes| bytes <= isize::MAX as usize)
        .and_then(|bytes| start.checked_add(bytes))
        .ok_or(ALEXNET_ERR_WRONG_LENGTH)?;
    Ok(Span { start, end })
}

/// `len` elements at `ptr`, read-only.
///
/// # Safety
/// `ptr` must point to `len` initialized elements that nothing writes while the slice lives.
pub unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> Result<(&'a [T], Span), alexnet_status_t> {
    let span = check(ptr, len)?;
    // SAFETY: non-NULL, aligned and in the address space (checked); valid per the contract.
    Ok((unsafe { core::slice::from_raw_parts(ptr, len) }, span))
}

/// `len` elements at `ptr`, writable; refused if they overlap any of `inputs`.
///
/// # Safety
/// `ptr` must point to `len` elements (any contents: `T` is a plain number type) that
/// nothing else reads or writes while the slice lives.
pub unsafe fn slice_mut<'a, T>(
    ptr: *mut T,
    len: usize,
    inputs: &[Span],
) -> Result<(&'a mut [T], Span), alexnet_status_t> {
    let span = check(ptr.cast_const(), len)?;
    if len > 0 && inputs.iter().any(|&s| s.overlaps(span)) {
        return Err(ALEXNET_ERR_OVERLAPPING_BUFFERS);
    }
    // SAFETY: as for `slice`, and exclusive per the contract and the overlap check.
    Ok((unsafe { core::slice::from_raw_parts_mut(ptr, len) }, span))
}
