//! The f32 definitions. Each one is its layer's contract: it checks its slices, then
//! computes every output with the accumulation order that `docs/numerics-f32.md` fixes, so
//! that faster kernels and other targets can reproduce it bit for bit.
//!
//! Activations are `[C, H, W]` row-major; weights are PyTorch's layouts.

/// The version of the f32 contract (`docs/numerics-f32.md`) these definitions implement.
/// Version 2 takes the LRN power for beta = 0.75 with two square roots instead of
/// `libm::powf`; results of version 1 and 2 differ after an LRN layer.
pub const CONTRACT_VERSION: u32 = 2;

mod conv;
mod linear;
mod lrn;
mod pool;
mod relu;

pub use conv::conv2d;
pub(crate) use linear::{check_linear, fold_with_bias};
pub use linear::{linear, LINEAR_LANES};
pub(crate) use lrn::check_lrn;
pub use lrn::{lrn_denominator, lrn_in_place, SQRT_FORM_BETA};
pub use pool::{adaptive_avg_pool, max_pool};
pub(crate) use pool::{adaptive_pool_by, max_pool_by};
pub use relu::relu_in_place;
