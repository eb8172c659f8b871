//! Stack buffers the Cortex-M kernels lend out in part: each call initializes only the prefix
//! it uses, since initializing a whole buffer (up to 18 KiB) cost more than a small layer's
//! own work.

use core::mem::MaybeUninit;

/// `N` values of `T` on the stack, 8-aligned, so that any prefix loads as words and double
/// words (`LDRD`, `VLDM`).
#[repr(C, align(8))]
pub(super) struct Scratch<T, const N: usize>(MaybeUninit<[T; N]>);

impl<T: Copy, const N: usize> Scratch<T, N> {
    pub(super) fn new() -> Self {
        Scratch(MaybeUninit::uninit())
    }

    /// The first `len` values (at most `N`), value `i` set to `value(i)`.
    #[allow(unsafe_code)]
    pub(super) fn prefix_with(&mut self, len: usize, value: impl Fn(usize) -> T) -> &mut [T] {
        let len = len.min(N);
        let ptr = self.0.as_mut_ptr().cast::<T>();
        for i in 0..len {
            // SAFETY: `i < len <= N`: within the buffer `self` owns.
            unsafe { ptr.add(i).write(value(i)) };
        }
        // SAFETY: the first `len` values were written just above; the slice borrows `self`
        // mutably for its lifetime.
        unsafe { core::slice::from_raw_parts_mut(ptr, len) }
    }
}

impl<T: Copy + bytemuck::Zeroable, const N: usize> Scratch<T, N> {
    /// The first `len` values (at most `N`), zeroed (all-zero bytes are a valid `T`).
    #[allow(unsafe_code)]
    pub(super) fn zeroed_prefix(&mut self, len: usize) -> &mut [T] {
        let len = len.min(N);
        let ptr = self.0.as_mut_ptr().cast::<T>();
        // SAFETY: `ptr` is the start of `N` values owned by `self` (borrowed mutably for the
        // slice's lifetime); the first `len <= N` are zeroed before the slice is made, and
        // zero bytes are a `T` (`Zeroable`), so it covers initialized values only.
        unsafe {
            core::ptr::write_bytes(ptr, 0, len);
            core::slice::from_raw_parts_mut(ptr, len)
        }
    }
}
