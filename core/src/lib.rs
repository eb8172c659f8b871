//! `alexnet-core`: the AlexNet forward pass for machines with no OS and no heap.
//!
//! * [`arch`] describes a network as `const` data; shapes, parameter counts, MACs and the
//!   activation arena are `const fn` results, so firmware sizes its buffers at compile time.
//! * [`layers`] holds the f32 kernels. Their accumulation order is part of the contract
//!   (`docs/numerics-f32.md`): every conforming implementation gives bit-identical results.
//! * [`fast`]: on x86-64 with AVX2 (detected at run time), the convolutions run blocked SIMD
//!   kernels, bit-identical to the definitions; everywhere else the definitions run.
//! * [`model`] parses and validates a model blob once (`docs/model-format.md`) and then runs
//!   [`Model::forward`] on zero-copy views of its tensors.
//!
//! Nothing here allocates or panics on any input: every failure is an [`Error`].
#![no_std]
#![deny(unsafe_code)] // exceptions in `int8::dsp` and `fast` only, each with its argument
#![warn(missing_docs)]

pub mod arch;
mod error;
#[allow(unsafe_code)]
pub mod fast;
pub mod int8;
pub mod layers;
pub mod model;

pub use arch::{builtin, Arch, Layer, Shape};
pub use error::{ArchError, ArchProblem, Error, Precision, TensorRole};
pub use model::{Aligned, Model, Preprocess};
