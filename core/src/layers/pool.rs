//! Max pooling and PyTorch's adaptive average pooling.

use super::{expect_len, output_shape};
use crate::arch::{Layer, PoolSpec, Shape};
use crate::error::Error;

/// Max over each `window x window` (no padding, floor mode). The window is scanned row by
/// row from its top-left value; a later value replaces the maximum when it is greater or
/// NaN, so NaN propagates as in PyTorch.
pub fn max_pool(
    input: &[f32],
    in_shape: Shape,
    spec: &PoolSpec,
    output: &mut [f32],
) -> Result<Shape, Error> {
    max_pool_by(input, in_shape, spec, output, |v, m| v > m || v.is_nan())
}

/// Max pooling for any element type: `replaces(v, m)` says whether a later value `v`
/// replaces the running maximum `m` (the window's top-left value to start with).
pub(crate) fn max_pool_by<T: Copy>(
    input: &[T],
    in_shape: Shape,
    spec: &PoolSpec,
    output: &mut [T],
    replaces: impl Fn(T, T) -> bool,
) -> Result<Shape, Error> {
    let out_shape = output_shape(&Layer::MaxPool(*spec), in_shape)?;
    expect_len("maxpool input", in_shape.len(), input.len())?;
    expect_len("maxpool output", out_shape.len(), output.len())?;
    let (win, s) = (spec.window as usize, spec.stride as usize);
    // Shapes validated nonzero above; `max(1)` lets the optimizer see it.
    let planes = input
        .chunks_exact(in_shape.plane().max(1))
        .zip(output.chunks_exact_mut(out_shape.plane().max(1)));
    for (in_plane, out_plane) in planes {
        for (oy, out_row) in out_plane.chunks_exact_mut(out_shape.w.max(1)).enumerate() {
            let rows = in_plane
                .chunks_exact(in_shape.w.max(1))
                .skip(oy * s)
                .take(win);
            for (ox, out) in out_row.iter_mut().enumerate() {
                let mut window = rows
                    .clone()
                    .flat_map(|row| row.iter().skip(ox * s).take(win));
                if let Some(&first) = window.next() {
                    *out = window.fold(first, |m, &v| if replaces(v, m) { v } else { m });
                }
            }
        }
    }
    Ok(out_shape)
}

/// PyTorch's adaptive window for output index `i` of `out` over `n` inputs:
/// `[floor(i * n / out), ceil((i + 1) * n / out))`.
/// (`out` = 0 gives the empty window.)
pub const fn adaptive_window(i: usize, n: usize, out: usize) -> (usize, usize) {
    if out == 0 {
        return (0, 0);
    }
    (i * n / out, ((i + 1) * n).div_ceil(out))
}

/// Averages each adaptive window: the sum starts at 0.0 and adds the window's values row by
/// row, then is divided by the count (as f32). With equal sizes every window holds one value
/// and the layer is the exact identity.
pub fn adaptive_avg_pool(
    input: &[f32],
    in_shape: Shape,
    out_h: u32,
    out_w: u32,
    output: &mut [f32],
) -> Result<Shape, Error> {
    adaptive_pool_by(input, in_shape, out_h, out_w, output, |window, n| {
        window.fold(0.0f32, |sum, v| sum + v) / n as f32
    })
}

/// Adaptive pooling for any element type: `reduce(values, count)` turns each window's values,
/// row by row, into one output.
pub(crate) fn adaptive_pool_by<T: Copy>(
    input: &[T],
    in_shape: Shape,
    out_h: u32,
    out_w: u32,
    output: &mut [T],
    reduce: impl Fn(&mut dyn Iterator<Item = T>, usize) -> T,
) -> Result<Shape, Error> {
    let out_shape = output_shape(&Layer::AdaptiveAvgPool { out_h, out_w }, in_shape)?;
    expect_len("avgpool input", in_shape.len(), input.len())?;
    expect_len("avgpool output", out_shape.len(), output.len())?;
    let planes = input
        .chunks_exact(in_shape.plane().max(1))
        .zip(output.chunks_exact_mut(out_shape.plane().max(1)));
    for (in_plane, out_plane) in planes {
        for (oy, out_row) in out_plane.chunks_exact_mut(out_shape.w.max(1)).enumerate() {
            let (y0, y1) = adaptive_window(oy, in_shape.h, out_shape.h);
            for (ox, out) in out_row.iter_mut().enumerate() {
                let (x0, x1) = adaptive_window(ox, in_shape.w, out_shape.w);
                let (rows_n, cols_n) = (y1.saturating_sub(y0), x1.saturating_sub(x0));
                let rows = in_plane
                    .chunks_exact(in_shape.w.max(1))
                    .skip(y0)
                    .take(rows_n);
                let mut window = rows.flat_map(|row| row.iter().skip(x0).take(cols_n).copied());
                *out = reduce(&mut window, rows_n * cols_n);
            }
        }
    }
    Ok(out_shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_pool_by_hand() -> Result<(), crate::Error> {
        let input: [f32; 25] = core::array::from_fn(|i| i as f32);
        let mut out = [0.0; 4];
        let s = max_pool(
            &input,
            Shape::new(1, 5, 5),
            &PoolSpec {
                window: 3,
                stride: 2,
            },
            &mut out,
        )?;
        assert_eq!(s, Shape::new(1, 2, 2));
        assert_eq!(out, [12.0, 14.0, 22.0, 24.0]);
        Ok(())
    }

    #[test]
    fn nan_propagates() -> Result<(), crate::Error> {
        let mut out = [0.0; 1];
        max_pool(
            &[1.0, f32::NAN, 3.0, 2.0],
            Shape::new(1, 2, 2),
            &PoolSpec {
                window: 2,
                stride: 2,
            },
            &mut out,
        )?;
        assert!(out[0].is_nan());
        Ok(())
    }

    #[test]
    fn adaptive_windows_match_pytorch() -> Result<(), crate::Error> {
        // 5 -> 3: [0,2), [1,4), [3,5)
        assert_eq!(adaptive_window(0, 5, 3), (0, 2));
        assert_eq!(adaptive_window(1, 5, 3), (1, 4));
        assert_eq!(adaptive_window(2, 5, 3), (3, 5));
        let input = [1.0, 2.0, 3.0, 4.0, 5.0];
        let mut out = [0.0; 3];
        adaptive_avg_pool(&input, Shape::new(1, 1, 5), 1, 3, &mut out)?;
        assert_eq!(out, [1.5, 3.0, 4.5]);
        Ok(())
    }
}
