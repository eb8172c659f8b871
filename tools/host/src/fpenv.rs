//! The floating-point mode the f32 contract needs (`docs/numerics-f32.md`), checked on the
//! host: round to nearest, subnormals neither flushed on output nor read as zero. On x86-64
//! every f32 operation takes its mode from the SSE control register MXCSR, per thread. Rust
//! never changes it, but a C library or a `-ffast-math` build loaded into the process can
//! set flush-to-zero (FTZ) or denormals-are-zero (DAZ), and the logits would then differ from
//! the device's without any error. [`check`] reads the mode; the `alexnet` CLI calls it
//! before any work. The Cortex-M firmware checks its FPSCR the same way
//! (`firmware-support/src/fpenv.rs`).

use std::fmt;

/// A floating-point mode that breaks the f32 contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrongMode {
    /// The register read, e.g. `"MXCSR"`.
    pub register: &'static str,
    /// Its bits.
    pub bits: u32,
    /// What is wrong with them.
    pub problem: &'static str,
}

impl fmt::Display for WrongMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "floating-point mode: {} = {:#010x}: {}; the f32 path is bit-exact only in \
             round-to-nearest without flush-to-zero (docs/numerics-f32.md). Something loaded \
             into this process changed it.",
            self.register, self.bits, self.problem
        )
    }
}

impl std::error::Error for WrongMode {}

/// MXCSR bits (Intel SDM vol. 1, 10.2.3).
mod mxcsr {
    /// Denormals-are-zero: subnormal inputs read as zero.
    pub const DAZ: u32 = 1 << 6;
    /// Rounding control, two bits: 00 nearest, 01 down, 10 up, 11 towards zero.
    pub const ROUNDING: u32 = 0b11 << 13;
    /// Flush-to-zero: subnormal results become zero.
    pub const FTZ: u32 = 1 << 15;
}

/// What is wrong with an MXCSR value for the f32 contract, if anything.
pub fn mxcsr_problem(bits: u32) -> Option<&'static str> {
    if bits & mxcsr::FTZ != 0 {
        Some("flush-to-zero (FTZ) is set: subnormal results would become zero")
    } else if bits & mxcsr::DAZ != 0 {
        Some("denormals-are-zero (DAZ) is set: subnormal inputs would read as zero")
    } else {
        match (bits & mxcsr::ROUNDING) >> 13 {
            0 => None,
            1 => Some("the rounding mode is towards -infinity, not nearest"),
            2 => Some("the rounding mode is towards +infinity, not nearest"),
            _ => Some("the rounding mode is towards zero, not nearest"),
        }
    }
}

/// This thread's MXCSR.
#[cfg(target_arch = "x86_64")]
pub fn read_mxcsr() -> u32 {
    let mut bits = 0u32;
    // SAFETY: `stmxcsr` stores the 4-byte MXCSR at the address given, a live, writable,
    // aligned local; SSE is part of x86-64. (`_mm_getcsr` does the same but is deprecated.)
    unsafe {
        std::arch::asm!(
            "stmxcsr [{}]",
            in(reg) &mut bits,
            options(nostack, preserves_flags)
        )
    };
    bits
}

/// Checks the calling thread's floating-point mode. Machines other than x86-64 pass: their
/// mode is not read here.
pub fn check() -> Result<(), WrongMode> {
    #[cfg(target_arch = "x86_64")]
    {
        let bits = read_mxcsr();
        if let Some(problem) = mxcsr_problem(bits) {
            return Err(WrongMode {
                register: "MXCSR",
                bits,
                problem,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wrong_mode_is_named_and_the_default_passes() {
        // 0x1f80: the x86-64 default, every exception masked, nearest, no FTZ or DAZ.
        assert_eq!(mxcsr_problem(0x1f80), None);
        assert!(mxcsr_problem(0x1f80 | mxcsr::FTZ).unwrap().contains("FTZ"));
        assert!(mxcsr_problem(0x1f80 | mxcsr::DAZ).unwrap().contains("DAZ"));
        for (rc, what) in [(1, "-infinity"), (2, "+infinity"), (3, "towards zero")] {
            assert!(mxcsr_problem(0x1f80 | rc << 13).unwrap().contains(what));
        }
    }

    /// Sets this thread's MXCSR (tests only: Rust assumes the default mode, so no float
    /// operation may run between setting a wrong one and restoring it).
    #[cfg(target_arch = "x86_64")]
    fn write_mxcsr(bits: u32) {
        // SAFETY: `ldmxcsr` loads the 4-byte value at the address given, a live aligned
        // local; the bits set are valid MXCSR bits (no reserved bit).
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &bits, options(nostack, preserves_flags))
        };
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn check_reads_this_threads_mxcsr() {
        let saved = read_mxcsr();
        assert_eq!(
            check(),
            Ok(()),
            "this test thread starts in the default mode"
        );
        write_mxcsr(saved | mxcsr::FTZ);
        let flushed = check();
        write_mxcsr(saved);
        let err = flushed.unwrap_err();
        assert_eq!((err.register, err.bits), ("MXCSR", saved | mxcsr::FTZ));
        assert!(err.to_string().contains("flush-to-zero (FTZ)"), "{err}");
        assert_eq!(check(), Ok(()));
    }
}
