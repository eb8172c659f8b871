//! int8 max pooling and adaptive average pooling (input and output share scale and zero
//! point).

use super::super::f32::{adaptive_pool_by, max_pool_by};
use crate::error::Error;
use crate::geometry::{AdaptivePoolGeometry, PoolGeometry};
use crate::int8::requant::saturate;

/// The largest code in each window.
pub fn max_pool(g: &PoolGeometry, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
    max_pool_by(g, input, output, |v, m| v > m)
}

/// `floor((2 * sum + n) / (2 * n))` of each adaptive window (round half up).
pub fn adaptive_avg_pool(
    g: &AdaptivePoolGeometry,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), Error> {
    adaptive_pool_by(g, input, output, |window, n| {
        let sum: i64 = window.map(i64::from).sum();
        // Windows are never empty; `max(1)` lets the optimizer see it.
        let n = (n as i64).max(1);
        saturate((2 * sum + n).div_euclid(2 * n))
    })
}
