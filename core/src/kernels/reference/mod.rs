//! The contracts' definitions, for every layer in both precisions: portable, simple, run
//! everywhere. `f32` is `docs/numerics-f32.md`, `int8` is `docs/int8-spec.md`; every other
//! kernel is tested against these bit for bit.

pub mod f32;
pub mod int8;

use super::Kernels;

/// The definitions as a [`Kernels`] implementation (every method is the trait's default).
#[derive(Clone, Copy, Debug, Default)]
pub struct Reference;

impl Kernels for Reference {
    fn name(&self) -> &'static str {
        "reference"
    }
}
