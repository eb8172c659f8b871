//! Max pooling and PyTorch's adaptive average pooling.

use crate::error::Error;
use crate::geometry::{AdaptivePoolGeometry, PoolGeometry};

/// Max over each `window x window` (no padding, floor mode). The window is scanned row by
/// row from its top-left value; a later value replaces the maximum when it is greater or
/// NaN, so NaN propagates as in PyTorch, and of equal values (`-0.0` and `0.0`) the first
/// stays.
pub fn max_pool(g: &PoolGeometry, input: &[f32], output: &mut [f32]) -> Result<(), Error> {
    max_pool_by(g, input, output, |v, m| v > m || v.is_nan())
}

/// Max pooling for any element type: `replaces(v, m)` says whether a later value `v`
/// replaces the running maximum `m` (the window's top-left value to start with).
pub(crate) fn max_pool_by<T: Copy>(
    g: &PoolGeometry,
    input: &[T],
    output: &mut [T],
    replaces: impl Fn(T, T) -> bool,
) -> Result<(), Error> {
    g.check(input.len(), output.len())?;
    let (win, s) = (g.window().get(), g.stride().get());
    let planes = input
        .chunks_exact(g.in_plane().get())
        .zip(output.chunks_exact_mut(g.out_plane().get()));
    for (in_plane, out_plane) in planes {
        for (oy, out_row) in out_plane.chunks_exact_mut(g.out_w().get()).enumerate() {
            let rows = in_plane.chunks_exact(g.in_w().get()).skip(oy * s).take(win);
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
    Ok(())
}

/// Averages each adaptive window: the sum starts at 0.0 and adds the window's values row by
/// row, then is divided by the count (as f32). With equal sizes every window holds one value
/// and the layer is the identity, but for `-0.0`, which the sum's `+0.0` start makes `+0.0`.
pub fn adaptive_avg_pool(
    g: &AdaptivePoolGeometry,
    input: &[f32],
    output: &mut [f32],
) -> Result<(), Error> {
    adaptive_pool_by(g, input, output, |window, n| {
        window.fold(0.0f32, |sum, v| sum + v) / n as f32
    })
}

/// Adaptive pooling for any element type: `reduce(values, count)` turns each window's values,
/// row by row, into one output.
pub(crate) fn adaptive_pool_by<T: Copy>(
    g: &AdaptivePoolGeometry,
    input: &[T],
    output: &mut [T],
    reduce: impl Fn(&mut dyn Iterator<Item = T>, usize) -> T,
) -> Result<(), Error> {
    g.check(input.len(), output.len())?;
    let (in_shape, out_shape) = (g.input(), g.output());
    if (in_shape.h, in_shape.w) == (out_shape.h, out_shape.w) {
        // Every window is its one value (torchvision's 6x6 to 6x6): the same reduction of
        // each, without walking windows.
        for (out, &v) in output.iter_mut().zip(input) {
            *out = reduce(&mut core::iter::once(v), 1);
        }
        return Ok(());
    }
    let planes = input
        .chunks_exact(g.in_plane().get())
        .zip(output.chunks_exact_mut(g.out_plane().get()));
    for (in_plane, out_plane) in planes {
        for (oy, out_row) in out_plane.chunks_exact_mut(g.out_w().get()).enumerate() {
            let (y0, y1) = AdaptivePoolGeometry::window(oy, in_shape.h, out_shape.h);
            for (ox, out) in out_row.iter_mut().enumerate() {
                let (x0, x1) = AdaptivePoolGeometry::window(ox, in_shape.w, out_shape.w);
                let (rows_n, cols_n) = (y1.saturating_sub(y0), x1.saturating_sub(x0));
                let rows = in_plane.chunks_exact(g.in_w().get()).skip(y0).take(rows_n);
                let mut window = rows.flat_map(|row| row.iter().skip(x0).take(cols_n).copied());
                *out = reduce(&mut window, rows_n * cols_n);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{PoolSpec, Shape};

    fn pool(input: Shape, window: u32, stride: u32) -> PoolGeometry {
        PoolGeometry::new(&PoolSpec { window, stride }, input).expect("valid test geometry")
    }

    #[test]
    fn overlapping_pool_by_hand() -> Result<(), crate::Error> {
        let input: [f32; 25] = core::array::from_fn(|i| i as f32);
        let mut out = [0.0; 4];
        let g = pool(Shape::new(1, 5, 5), 3, 2);
        max_pool(&g, &input, &mut out)?;
        assert_eq!(g.output(), Shape::new(1, 2, 2));
        assert_eq!(out, [12.0, 14.0, 22.0, 24.0]);
        Ok(())
    }

    #[test]
    fn nan_propagates_and_the_first_equal_value_stays() -> Result<(), crate::Error> {
        let mut out = [0.0; 1];
        let g = pool(Shape::new(1, 2, 2), 2, 2);
        max_pool(&g, &[1.0, f32::NAN, 3.0, 2.0], &mut out)?;
        assert!(out[0].is_nan());
        max_pool(&g, &[-0.0, 0.0, -1.0, -2.0], &mut out)?;
        assert!(out[0] == 0.0 && out[0].is_sign_negative());
        Ok(())
    }

    #[test]
    fn adaptive_windows_match_pytorch() -> Result<(), crate::Error> {
        // 5 -> 3: [0,2), [1,4), [3,5)
        assert_eq!(AdaptivePoolGeometry::window(0, 5, 3), (0, 2));
        assert_eq!(AdaptivePoolGeometry::window(1, 5, 3), (1, 4));
        assert_eq!(AdaptivePoolGeometry::window(2, 5, 3), (3, 5));
        let input = [1.0, 2.0, 3.0, 4.0, 5.0];
        let mut out = [0.0; 3];
        let g = AdaptivePoolGeometry::new(Shape::new(1, 1, 5), 1, 3)?;
        adaptive_avg_pool(&g, &input, &mut out)?;
        assert_eq!(out, [1.5, 3.0, 4.5]);
        Ok(())
    }

    #[test]
    fn adaptive_pool_to_the_same_size_reduces_each_value_alone() -> Result<(), crate::Error> {
        // (0.0 + v) / 1: every value but -0.0, which the sum's +0.0 start turns into +0.0.
        let input = [-0.0, 1.5, -2.25, f32::INFINITY, 0.0, 3.0];
        let mut out = [1.0; 6];
        let g = AdaptivePoolGeometry::new(Shape::new(1, 2, 3), 2, 3)?;
        adaptive_avg_pool(&g, &input, &mut out)?;
        let bits = |v: [f32; 6]| v.map(f32::to_bits);
        assert_eq!(bits(out), bits([0.0, 1.5, -2.25, f32::INFINITY, 0.0, 3.0]));
        let codes = [-128i8, -1, 0, 1, 127, 5];
        let mut out = [0i8; 6];
        super::super::super::int8::adaptive_avg_pool(&g, &codes, &mut out)?;
        assert_eq!(out, codes);
        Ok(())
    }
}
