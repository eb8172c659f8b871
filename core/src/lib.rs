//! `alexnet-core`: the AlexNet forward pass for machines with no OS and no heap.
//!
//! * [`arch`] describes a network as `const` data; shapes, parameter counts, MACs and the
//!   activation arena are `const fn` results, so firmware sizes its buffers at compile time.
//! * [`geometry`]: a layer's geometry checked once, shared by every kernel.
//! * [`kernels`]: every layer in f32 and int8 behind one [`kernels::Kernels`] interface,
//!   grouped by where they run: [`kernels::reference`] (the contracts' definitions, run
//!   everywhere), [`kernels::x86_64`] (AVX2, detected at run time), [`kernels::cortex_m`]
//!   (the DSP extension). [`kernels::native`] picks the best for this build and machine.
//! * [`int8`]: the int8 contract's data and arithmetic (requantization, LRN table grid, the
//!   DSP kernel's packed weights).
//! * [`model`] parses and validates a model blob once (`docs/model-format.md`) and then runs
//!   [`Model::forward`] / [`Model::forward_int8`], or [`Model::run`] with [`RunOptions`], on
//!   zero-copy views of its tensors.
//! * [`postprocess`]: softmax and top-k on the logits.
//!
//! The f32 accumulation order is part of the contract (`docs/numerics-f32.md`), and so is
//! the int8 arithmetic (`docs/int8-spec.md`): every kernel gives bit-identical results.
//! Nothing here allocates or panics on any input: every failure is an [`Error`].
#![no_std]
#![deny(unsafe_code)] // exceptions in `kernels::x86_64`, `kernels::cortex_m` and detection
#![warn(missing_docs)]

pub mod arch;
mod error;
pub mod geometry;
pub mod int8;
pub mod kernels;
pub mod model;
pub mod postprocess;

pub use arch::{builtin, Arch, Layer, Shape};
pub use error::{ArchError, ArchProblem, Error, Precision, TensorRole};
pub use kernels::{KernelPath, Kernels};
pub use model::{Aligned, Model, Preprocess, RunOptions};
