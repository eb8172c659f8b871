//! The int8 contract's data and arithmetic (`docs/int8-spec.md`): a quantized layer's
//! tensors, zero points, requantization, the LRN table's grid and the DSP kernel's packed
//! weight layout. The int8 kernels themselves are in [`crate::kernels`].

mod lrn_table;
pub mod packed;
pub mod requant;

pub use lrn_table::{
    lrn_grid, lrn_max_sum, lrn_steps_fit, lrn_table_index, lrn_table_len, LRN_DIRECT, LRN_STEPS,
};

/// A quantized convolution or linear layer's tensors, borrowed from the blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QKernel<'a> {
    /// Weights, symmetric per output channel, in [-127, 127]; PyTorch layout.
    pub weight: &'a [i8],
    /// Biases in units of `s_in * s_w[o]`.
    pub bias: &'a [i32],
    /// Q31 requantization multiplier per output channel.
    pub multiplier: &'a [i32],
    /// Right shift per output channel, in [1, 62].
    pub shift: &'a [i32],
    /// Convolutions only, optional: the same weights widened and reordered by the host for the
    /// DSP kernel ([`packed`]); the portable kernels ignore it.
    pub packed: Option<&'a [i16]>,
}

/// Zero points of a layer's input and output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZeroPoints {
    /// Input zero point.
    pub input: i32,
    /// Output zero point.
    pub output: i32,
}

/// The largest magnitude of one product `(q - zp) * w`: 255 * 127.
pub const MAX_PRODUCT: i64 = 255 * 127;

/// Whether a layer with `taps` products per output and this bias can overflow i32.
pub const fn accumulator_fits(taps: usize, max_abs_bias: i64) -> bool {
    (taps as i64)
        .saturating_mul(MAX_PRODUCT)
        .saturating_add(max_abs_bias)
        <= i32::MAX as i64
}
