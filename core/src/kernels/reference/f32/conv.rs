//! 2-D convolution with stride, zero padding and groups.

use crate::error::Error;
use crate::geometry::{ConvDims, ConvGeometry};

/// Convolves `input` (`[C, H, W]`) with `weight` (`[O, C/groups, k, k]`) and `bias` (`[O]`)
/// over the checked geometry `g`.
///
/// Accumulation order (the contract): each output starts at its bias, then adds one product
/// per tap, input channel of its group outermost, then kernel row, then kernel column, each
/// ascending. Padding is materialized: a tap on a padded position adds `0.0 * w` (which only
/// matters for the sign of zero and for non-finite weights). Products are rounded to f32
/// before each addition; nothing is fused. This is the definition, tap by tap over whole
/// output planes; the fast kernels are tested against it bit for bit.
pub fn conv2d(
    g: &ConvGeometry,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
) -> Result<(), Error> {
    g.check_f32(input, weight, bias, output)?;
    let d = g.dims();
    let area = g.area().get();
    let out_planes = output.chunks_exact_mut(d.pixels.max(1));
    let kernels = weight.chunks_exact(d.taps.max(1));
    for (oc, ((plane, kernel), &b)) in out_planes.zip(kernels).zip(bias).enumerate() {
        plane.fill(b);
        let in_planes = input
            .chunks_exact(d.in_plane.max(1))
            .skip(g.group_of(oc) * d.cin_g);
        for (in_plane, taps) in in_planes.zip(kernel.chunks_exact(area)) {
            for (ky, tap_row) in taps.chunks_exact(d.k.max(1)).enumerate() {
                for (kx, &w) in tap_row.iter().enumerate() {
                    accumulate_tap(&d, in_plane, plane, ky, kx, w);
                }
            }
        }
    }
    Ok(())
}

/// Adds tap `(ky, kx)` of weight `w` to every output of one output plane.
fn accumulate_tap(
    d: &ConvDims,
    in_plane: &[f32],
    out_plane: &mut [f32],
    ky: usize,
    kx: usize,
    w: f32,
) {
    let s = d.stride.max(1);
    let padded = 0.0 * w;
    let (ox_lo, ox_hi) = d.valid_columns(kx);
    for (oy, out_row) in out_plane.chunks_exact_mut(d.out_w.max(1)).enumerate() {
        let in_row = d
            .input_row(oy, ky)
            .and_then(|iy| in_plane.chunks_exact(d.in_w.max(1)).nth(iy));
        let Some(in_row) = in_row else {
            out_row.iter_mut().for_each(|o| *o += padded);
            continue;
        };
        // ox_lo <= ox_hi <= out_w: the splits always succeed.
        let Some((left, rest)) = out_row.split_at_mut_checked(ox_lo) else {
            continue;
        };
        let Some((valid, right)) = rest.split_at_mut_checked(ox_hi - ox_lo) else {
            continue;
        };
        left.iter_mut().for_each(|o| *o += padded);
        let start = (ox_lo * s + kx).wrapping_sub(d.pad);
        let taps = in_row.get(start..).unwrap_or(&[]);
        if s == 1 {
            valid.iter_mut().zip(taps).for_each(|(o, &x)| *o += x * w);
        } else {
            valid
                .iter_mut()
                .zip(taps.iter().step_by(s))
                .for_each(|(o, &x)| *o += x * w);
        }
        right.iter_mut().for_each(|o| *o += padded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{ConvSpec, Shape};

    fn geometry(
        input: Shape,
        out_channels: u32,
        kernel: u32,
        stride: u32,
        padding: u32,
        groups: u32,
    ) -> ConvGeometry {
        let spec = ConvSpec {
            out_channels,
            kernel,
            stride,
            padding,
            groups,
        };
        ConvGeometry::new(&spec, input).expect("valid test geometry")
    }

    #[test]
    fn three_by_three_with_padding_by_hand() -> Result<(), crate::Error> {
        // 1x3x3 input, one 3x3 kernel of ones, padding 1: each output sums its neighbourhood.
        let input = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        let mut out = [0.0; 9];
        let g = geometry(Shape::new(1, 3, 3), 1, 3, 1, 1, 1);
        conv2d(&g, &input, &[1.0; 9], &[0.5], &mut out)?;
        assert_eq!(g.output(), Shape::new(1, 3, 3));
        assert_eq!(out, [12.5, 21.5, 16.5, 27.5, 45.5, 33.5, 24.5, 39.5, 28.5]);
        Ok(())
    }

    #[test]
    fn groups_keep_channels_apart() -> Result<(), crate::Error> {
        // Two groups of one channel: output 0 sees only input 0, output 1 only input 1.
        let input = [1.0, 1.0, 1.0, 1.0, 10.0, 10.0, 10.0, 10.0];
        let mut out = [0.0; 2];
        let g = geometry(Shape::new(2, 2, 2), 2, 2, 1, 0, 2);
        conv2d(&g, &input, &[1.0; 8], &[0.0, 0.0], &mut out)?;
        assert_eq!(out, [4.0, 40.0]);
        Ok(())
    }

    #[test]
    fn stride_skips_positions() -> Result<(), crate::Error> {
        let input: [f32; 16] = core::array::from_fn(|i| i as f32);
        let mut out = [0.0; 4];
        let g = geometry(Shape::new(1, 4, 4), 1, 1, 2, 0, 1);
        conv2d(&g, &input, &[1.0], &[0.0], &mut out)?;
        assert_eq!(out, [0.0, 2.0, 8.0, 10.0]);
        Ok(())
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let mut out = [0.0; 4];
        let g = geometry(Shape::new(1, 4, 4), 1, 1, 2, 0, 1);
        let e = conv2d(&g, &[0.0; 15], &[1.0], &[0.0], &mut out);
        assert!(matches!(
            e,
            Err(Error::WrongLength {
                what: "conv input",
                expected: 16,
                found: 15
            })
        ));
        let e = conv2d(&g, &[0.0; 16], &[], &[0.0], &mut out);
        assert!(matches!(
            e,
            Err(Error::WrongLength {
                what: "conv weight",
                ..
            })
        ));
    }
}
