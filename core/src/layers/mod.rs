//! The f32 kernels. Each one is the definition of its layer: it checks its slices, then
//! computes every output with the accumulation order that `docs/numerics-f32.md` fixes, so
//! that faster kernels and other targets can reproduce it bit for bit.
//!
//! Activations are `[C, H, W]` row-major; weights are PyTorch's layouts.

mod conv;
mod linear;
mod lrn;
mod pool;
mod relu;
mod softmax;

#[cfg(target_arch = "x86_64")]
pub(crate) use conv::check as conv_check;
pub use conv::{conv2d, conv2d_reference};
pub use linear::{linear, LINEAR_LANES};
pub use lrn::lrn_in_place;
pub use pool::{adaptive_avg_pool, adaptive_window, max_pool};
pub(crate) use pool::{adaptive_pool_by, max_pool_by};
pub use relu::relu_in_place;
pub use softmax::{softmax, top_k};

use crate::arch::{Layer, Shape};
use crate::error::{ArchError, Error};

/// Refuses a slice whose length differs from the one the shapes imply.
pub(crate) fn expect_len(what: &'static str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::WrongLength {
            what,
            expected,
            found,
        })
    }
}

/// The output shape of `layer` for `input`, as a kernel-level error.
pub(crate) fn output_shape(layer: &Layer, input: Shape) -> Result<Shape, Error> {
    layer
        .output_shape(input)
        .map_err(|problem| Error::Arch(ArchError { layer: 0, problem }))
}
