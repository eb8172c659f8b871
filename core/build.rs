//! Tells the Cortex-M kernels whether the target has Thumb-2 (ARMv7-M: Cortex-M3, M4, M7;
//! ARMv8-M Mainline: M33, M55): the `MLA` kernel's assembly needs its 32-bit instructions,
//! and Rust's stable `cfg`s do not say (`target_feature = "thumb2"` is unstable on ARM).
//! ARMv6-M (M0, M0+) and ARMv8-M Baseline (M23) run the kernel's Rust version. Likewise
//! `arm_fpu` for the hard-float targets, whose cores have a single-precision FPU: the f32
//! kernels' `VMLA.F32` assembly.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(thumb2, arm_fpu)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let thumb2 = ["thumbv7m-", "thumbv7em-", "thumbv8m.main-"]
        .iter()
        .any(|arch| target.starts_with(arch));
    if thumb2 {
        println!("cargo::rustc-cfg=thumb2");
        if target.ends_with("eabihf") {
            println!("cargo::rustc-cfg=arm_fpu");
        }
    }
}
