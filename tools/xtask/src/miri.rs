//! `cargo xtask miri`: the core's unit tests and the portable kernel tests under Miri, which
//! reports undefined behaviour (out-of-bounds or misaligned access, use of uninitialized
//! memory, invalid values, data races) that the ordinary tests cannot see.
//!
//! Miri interprets the code for a target of its choice. It runs on `MIRI_TARGET`, a 64-bit
//! little-endian machine other than x86-64, so the core takes its portable kernels (the ones
//! the Cortex-M runs without the `dsp` feature, and the DSP kernel with portable definitions
//! of its instructions): the x86-64 kernels start with CPUID and XGETBV, inline assembly that
//! Miri cannot interpret (`docs/robustness.md`).

use crate::process::{root, run, step};
use std::process::Command;

/// The target Miri interprets for.
pub const MIRI_TARGET: &str = "aarch64-unknown-linux-gnu";
/// Random cases per property test unless `PROPTEST_CASES` says otherwise: under Miri a case
/// of the kernel tests costs seconds, not microseconds.
const DEFAULT_CASES: &str = "4";
/// The kernel tests of the `tests` crate (against `tests/reference`) that Miri runs: the
/// shared suite (its portable implementations: reference, the DSP kernels' emulation,
/// `Parallel`), the post-processing and the int8 arithmetic.
const KERNEL_TESTS: &[&str] = &["kernel_suite", "f32_kernels", "int8_kernels"];

/// Cargo of the nightly toolchain that has Miri (`setup::miri` installs both), through
/// rustup: `$CARGO` is the stable cargo running xtask, and its toolchain variables must not
/// leak into nightly's.
fn nightly_cargo() -> Command {
    let mut c = Command::new("rustup");
    c.args(["run", "nightly", "cargo"]).current_dir(root());
    for var in ["CARGO", "RUSTUP_TOOLCHAIN", "RUSTC", "RUSTDOC"] {
        c.env_remove(var);
    }
    c
}

/// Runs both test sets under Miri.
pub fn all() -> Result<(), String> {
    crate::setup::miri()?;
    let cases = std::env::var("PROPTEST_CASES").unwrap_or_else(|_| DEFAULT_CASES.into());
    step(
        &format!("Miri: alexnet-core's unit tests ({MIRI_TARGET})"),
        || {
            run(nightly_cargo().args([
                "miri",
                "test",
                "--target",
                MIRI_TARGET,
                "-p",
                "alexnet-core",
            ]))
        },
    )?;
    step(
        &format!(
            "Miri: the kernel tests against tests/reference, {cases} cases per property \
             ({MIRI_TARGET})"
        ),
        || {
            let mut cmd = nightly_cargo();
            cmd.args([
                "miri",
                "test",
                "--target",
                MIRI_TARGET,
                "-p",
                "alexnet-tests",
            ]);
            for test in KERNEL_TESTS {
                cmd.args(["--test", test]);
            }
            // Isolation off: proptest reads its regression files.
            run(cmd
                .env("PROPTEST_CASES", &cases)
                .env("MIRIFLAGS", "-Zmiri-disable-isolation"))
        },
    )
}
