//! int8 max pooling and adaptive average pooling (input and output share scale and zero
//! point).

use crate::arch::{PoolSpec, Shape};
use crate::error::Error;

/// The largest code in each window.
pub fn max_pool(
    input: &[i8],
    in_shape: Shape,
    spec: &PoolSpec,
    output: &mut [i8],
) -> Result<Shape, Error> {
    crate::layers::max_pool_by(input, in_shape, spec, output, |v, m| v > m)
}

/// `floor((2 * sum + n) / (2 * n))` of each adaptive window (round half up).
pub fn adaptive_avg_pool(
    input: &[i8],
    in_shape: Shape,
    out_h: u32,
    out_w: u32,
    output: &mut [i8],
) -> Result<Shape, Error> {
    crate::layers::adaptive_pool_by(input, in_shape, out_h, out_w, output, |window, n| {
        let sum: i64 = window.map(i64::from).sum();
        // Windows are never empty; `max(1)` lets the optimizer see it.
        let n = (n as i64).max(1);
        super::requant::saturate((2 * sum + n).div_euclid(2 * n))
    })
}
