//! The floating-point mode the f32 contract needs (`docs/numerics-f32.md`): round to nearest,
//! subnormals kept, NaNs propagated, which is the FPU's reset state. A vendor startup file or
//! a library that sets flush-to-zero would change the f32 logits without any error, so the
//! firmware reads the mode before its first float operation and refuses to run in another.
//!
//! Two registers hold it: FPSCR, the mode of the running code, and FPDSCR, the mode the
//! hardware loads into FPSCR when an exception handler starts using the FPU (so inference in
//! an interrupt handler would run in FPDSCR's mode). Both have the same layout for the bits
//! checked here: RMode (23:22), FZ (24), DN (25).

use cortex_m::register::fpscr::{self, Fpscr, RMode};

/// What is wrong with a mode (FPSCR or FPDSCR bits) for the f32 contract, if anything.
pub fn problem(bits: u32) -> Option<&'static str> {
    let mode = Fpscr::from_bits(bits);
    if mode.fz() {
        Some("flush-to-zero (FZ) is set: subnormal inputs and results would become zero")
    } else if mode.dn() {
        Some("default-NaN (DN) is set: NaNs would not propagate as the host's do")
    } else {
        match mode.rmode() {
            RMode::Nearest => None,
            RMode::PlusInfinity => Some("the rounding mode is towards +infinity, not nearest"),
            RMode::MinusInfinity => Some("the rounding mode is towards -infinity, not nearest"),
            RMode::Zero => Some("the rounding mode is towards zero, not nearest"),
        }
    }
}

/// FPDSCR, the mode exception handlers start in (the FPU chapter of the Cortex-M4 and M33
/// Technical Reference Manuals).
fn fpdscr() -> u32 {
    // SAFETY: a volatile read of a memory-mapped System Control Space register, which every
    // Cortex-M with an FPU (M4F, M7, M33) has at this address; reading it has no side effect.
    unsafe { (*cortex_m::peripheral::FPU::PTR).fpdscr.read() }
}

/// Checks FPSCR and FPDSCR; logs what is wrong and returns `false` if either breaks the
/// contract.
pub fn check() -> bool {
    let mut ok = true;
    for (register, bits) in [("FPSCR", fpscr::read().bits()), ("FPDSCR", fpdscr())] {
        if let Some(why) = problem(bits) {
            defmt::error!(
                "FAIL floating-point mode: {=str} = {=u32:#010x}: {=str}. The f32 path is bit-exact with the host only in round-to-nearest without FZ or DN (docs/numerics-f32.md); clear them in the startup code.",
                register,
                bits,
                why
            );
            ok = false;
        }
    }
    ok
}

/// For the firmware's `wrong-fpu-mode` test build: sets flush-to-zero as a vendor startup
/// file might.
pub fn set_flush_to_zero() {
    let mut mode = fpscr::read();
    mode.set_fz(true);
    // SAFETY: only changes how later float operations round subnormals, which is what this
    // test build is for; no float value is live across the write.
    unsafe { fpscr::write(mode) };
}
