//! int8 max pooling and adaptive average pooling (input and output share scale and zero
//! point).

use crate::arch::{Layer, PoolSpec, Shape};
use crate::error::Error;
use crate::layers::{adaptive_window, expect_len, output_shape};

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
    let out_shape = output_shape(&Layer::AdaptiveAvgPool { out_h, out_w }, in_shape)?;
    expect_len("avgpool input", in_shape.len(), input.len())?;
    expect_len("avgpool output", out_shape.len(), output.len())?;
    let planes = input
        .chunks_exact(in_shape.plane())
        .zip(output.chunks_exact_mut(out_shape.plane()));
    for (in_plane, out_plane) in planes {
        for (oy, out_row) in out_plane.chunks_exact_mut(out_shape.w).enumerate() {
            let (y0, y1) = adaptive_window(oy, in_shape.h, out_shape.h);
            for (ox, out) in out_row.iter_mut().enumerate() {
                let (x0, x1) = adaptive_window(ox, in_shape.w, out_shape.w);
                let mut sum: i64 = 0;
                for row in in_plane.chunks_exact(in_shape.w).skip(y0).take(y1 - y0) {
                    for &v in row.iter().skip(x0).take(x1 - x0) {
                        sum += v as i64;
                    }
                }
                let n = ((y1 - y0) * (x1 - x0)) as i64;
                *out = super::requant::saturate((2 * sum + n).div_euclid(2 * n));
            }
        }
    }
    Ok(out_shape)
}
