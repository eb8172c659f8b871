//! The parts of a firmware that are the same on every board (one crate per board uses
//! them: `firmware-example/` for the Cortex-M4F, `firmware-an524/` for the Cortex-M33):
//!
//! * [`clock`]: SysTick as a 64-bit instruction counter (QEMU runs with `-icount`);
//! * [`memory`]: flash and static RAM in use, and the stack's peak by painting;
//! * `fpenv`: the floating-point mode the f32 contract needs, checked before any float (cores
//!   with an FPU);
//! * [`images`]: the test images the host hands the firmware;
//! * [`profile`]: a layer-by-layer run, each layer's instructions and output digest;
//! * [`faults`]: the panic and HardFault handlers ([`exit_on_faults!`]) and the int8 argmax.
#![no_std]

pub mod clock;
pub mod faults;
#[cfg(target_abi = "eabihf")] // only cores with an FPU have its mode
pub mod fpenv;
pub mod images;
pub mod memory;
pub mod profile;
