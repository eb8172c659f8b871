//! Which kernels this build and machine run: the one place the core detects CPU features,
//! without `std`.

use super::Kernels;

/// The best kernels for this build and machine, chosen once:
/// - with the `dsp` feature, [`super::CortexMDsp`] (the int8 convolution on `SMLAD`);
/// - else on ARM, [`super::CortexM`] (the int8 convolution on `MLA`);
/// - else on x86-64 with AVX-512 (F, BW, VL, VBMI) and VNNI enabled by the OS,
///   [`super::X86Avx512`];
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
        if let Some(_avx512) = super::X86Avx512::detect() {
            static AVX512: super::X86Avx512 = super::X86Avx512::DETECTED;
            return &AVX512;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(_avx2) = super::X86Avx2::detect() {
            static AVX2: super::X86Avx2 = super::X86Avx2::DETECTED;
            return &AVX2;
        }
        &REFERENCE
    }
}

/// What the x86-64 kernels may use on this machine, best last.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) enum X86Level {
    /// Neither AVX2 nor AVX-512 (or not x86-64).
    Baseline,
    /// AVX2, its state saved by the OS.
    Avx2,
    /// AVX2 and AVX-512 F, BW, VL, VBMI and VNNI, the whole AVX-512 state saved by the OS
    /// (Ice Lake, Zen 4 and later).
    Avx512Vnni,
}

/// Whether the CPU has AVX2 and the OS saves the AVX state (detected once, cached).
pub(super) fn x86_avx2() -> bool {
    x86_level() >= X86Level::Avx2
}

/// Whether the CPU has AVX-512 F/BW/VL/VBMI with VNNI and the OS saves the AVX-512 state
/// (detected once, cached).
pub(super) fn x86_avx512_vnni() -> bool {
    x86_level() >= X86Level::Avx512Vnni
}

/// This machine's [`X86Level`], detected once.
#[cfg(target_arch = "x86_64")]
fn x86_level() -> X86Level {
    use core::sync::atomic::{AtomicU8, Ordering};
    /// 0: not yet detected, else 1 + the level.
    static LEVEL: AtomicU8 = AtomicU8::new(0);
    match LEVEL.load(Ordering::Relaxed) {
        1 => X86Level::Baseline,
        2 => X86Level::Avx2,
        3 => X86Level::Avx512Vnni,
        _ => {
            let found = x86_detect();
            LEVEL.store(1 + found as u8, Ordering::Relaxed);
            found
        }
    }
}

/// No x86 kernels off x86-64.
#[cfg(not(target_arch = "x86_64"))]
fn x86_level() -> X86Level {
    X86Level::Baseline
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn x86_detect() -> X86Level {
    use core::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};

    /// # Safety
    /// The CPU must support XGETBV (CPUID.1:ECX.OSXSAVE).
    #[target_feature(enable = "xsave")]
    unsafe fn xcr0() -> u64 {
        _xgetbv(0)
    }

    // CPUID exists on every x86-64 processor. (The intrinsic is a safe function in newer
    // Rust, an unsafe one in older ones.)
    // SAFETY: CPUID is available on x86-64.
    #[allow(unused_unsafe)]
    let (max_leaf, ecx) = unsafe { (__cpuid(0).eax, __cpuid(1).ecx) };
    if max_leaf < 7 {
        return X86Level::Baseline;
    }
    let (osxsave, avx) = (ecx & (1 << 27) != 0, ecx & (1 << 28) != 0);
    if !(osxsave && avx) {
        return X86Level::Baseline;
    }
    // SAFETY: OSXSAVE is set, so XGETBV is available and XCR0 readable.
    let xcr0 = unsafe { xcr0() };
    // The OS saves the SSE (bit 1) and AVX (bit 2) register state.
    if xcr0 & 0b110 != 0b110 {
        return X86Level::Baseline;
    }
    // SAFETY: CPUID is available on x86-64, and leaf 7 exists (max_leaf >= 7).
    #[allow(unused_unsafe)]
    let leaf7 = unsafe { __cpuid_count(7, 0) };
    if leaf7.ebx & (1 << 5) == 0 {
        return X86Level::Baseline;
    }
    // AVX512F (EBX 16), AVX512BW (EBX 30), AVX512VL (EBX 31), AVX512_VBMI (ECX 1),
    // AVX512_VNNI (ECX 11); the OS saves the opmask registers and both halves of the 32 ZMM
    // registers (XCR0 bits 5-7).
    let avx512 = leaf7.ebx & (1 << 16 | 1 << 30 | 1 << 31) == (1 << 16 | 1 << 30 | 1 << 31)
        && leaf7.ecx & (1 << 1 | 1 << 11) == (1 << 1 | 1 << 11)
        && xcr0 & 0b1110_0000 == 0b1110_0000;
    if avx512 {
        X86Level::Avx512Vnni
    } else {
        X86Level::Avx2
    }
}
