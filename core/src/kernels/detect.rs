//! Which kernels this build and machine run: the one place the core detects CPU features,
//! without `std`.

use super::Kernels;

/// The best kernels for this build and machine, chosen once:
/// - with the `dsp` feature, [`super::CortexMDsp`] (the int8 convolution on `SMLAD`);
/// - else on ARM, [`super::CortexM`] (the int8 convolution on `MLA`);
/// - else on x86-64 with AVX2 enabled by the OS, [`super::X86Avx2`];
/// - else [`super::Reference`].
///
/// All of them compute the same bits; [`crate::Model::forward`] runs these.
pub fn native() -> &'static dyn Kernels {
    #[cfg(feature = "dsp")]
    {
        &super::CortexMDsp
    }
    #[cfg(all(target_arch = "arm", not(feature = "dsp")))]
    {
        &super::CortexM
    }
    #[cfg(not(any(target_arch = "arm", feature = "dsp")))]
    {
        static REFERENCE: super::Reference = super::Reference;
        #[cfg(target_arch = "x86_64")]
        if let Some(_avx2) = super::X86Avx2::detect() {
            static AVX2: super::X86Avx2 = super::X86Avx2::DETECTED;
            return &AVX2;
        }
        &REFERENCE
    }
}

/// Whether the CPU has AVX2 and the OS saves the AVX state (detected once, cached).
#[cfg(target_arch = "x86_64")]
pub(super) fn x86_avx2() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering};
    /// 0: not yet detected, 1: no AVX2, 2: AVX2.
    static AVX2: AtomicU8 = AtomicU8::new(0);
    match AVX2.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let found = x86_detect();
            AVX2.store(if found { 2 } else { 1 }, Ordering::Relaxed);
            found
        }
    }
}

/// No AVX2 off x86-64.
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn x86_avx2() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn x86_detect() -> bool {
    use core::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};

    /// # Safety
    /// The CPU must support XGETBV (CPUID.1:ECX.OSXSAVE).
    #[target_feature(enable = "xsave")]
    unsafe fn xcr0() -> u64 {
        _xgetbv(0)
    }

    // CPUID exists on every x86-64 processor. (The intrinsic is a safe function in newer
    // Rust, an unsafe one in the crate's oldest supported Rust.)
    // SAFETY: CPUID is available on x86-64.
    #[allow(unused_unsafe)]
    let (max_leaf, ecx) = unsafe { (__cpuid(0).eax, __cpuid(1).ecx) };
    if max_leaf < 7 {
        return false;
    }
    let (osxsave, avx) = (ecx & (1 << 27) != 0, ecx & (1 << 28) != 0);
    if !(osxsave && avx) {
        return false;
    }
    // SAFETY: OSXSAVE is set, so XGETBV is available and XCR0 readable.
    let xcr0 = unsafe { xcr0() };
    // The OS saves the SSE (bit 1) and AVX (bit 2) register state.
    if xcr0 & 0b110 != 0b110 {
        return false;
    }
    // SAFETY: CPUID is available on x86-64, and leaf 7 exists (max_leaf >= 7).
    #[allow(unused_unsafe)]
    let ebx = unsafe { __cpuid_count(7, 0).ebx };
    ebx & (1 << 5) != 0
}
