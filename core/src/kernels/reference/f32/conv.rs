//! 2-D convolution with stride, zero padding and groups.

use crate::error::Error;
use crate::geometry::ConvGeometry;

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
    let (area, k) = (g.area().get(), g.kernel().get());
    let columns = Columns {
        in_h: g.input().h,
        in_w: g.in_w().get(),
        out_w: g.out_w().get(),
        stride: g.stride().get(),
        padding: g.padding(),
    };
    let out_planes = output.chunks_exact_mut(g.out_plane().get());
    let kernels = weight.chunks_exact(g.taps().get());
    for (oc, ((plane, kernel), &b)) in out_planes.zip(kernels).zip(bias).enumerate() {
        plane.fill(b);
        let in_planes = input
            .chunks_exact(g.in_plane().get())
            .skip(g.group_of(oc) * g.in_per_group().get());
        for (in_plane, taps) in in_planes.zip(kernel.chunks_exact(area)) {
            for (ky, tap_row) in taps.chunks_exact(k).enumerate() {
                for (kx, &w) in tap_row.iter().enumerate() {
                    columns.accumulate_tap(in_plane, plane, ky, kx, w);
                }
            }
        }
    }
    Ok(())
}

/// The geometry's sizes as plain values, for the loop over a plane's rows.
struct Columns {
    in_h: usize,
    in_w: usize,
    out_w: usize,
    stride: usize,
    padding: usize,
}

impl Columns {
    /// Adds tap `(ky, kx)` of weight `w` to every output of one output plane.
    fn accumulate_tap(
        &self,
        in_plane: &[f32],
        out_plane: &mut [f32],
        ky: usize,
        kx: usize,
        w: f32,
    ) {
        let (s, p, out_w) = (self.stride.max(1), self.padding, self.out_w.max(1));
        let padded = 0.0 * w;
        // `ConvGeometry::valid_columns`, by hand: the compiler keeps these in registers.
        let ox_lo = if kx >= p { 0 } else { (p - kx).div_ceil(s) }.min(out_w);
        let ox_hi = if self.in_w + p > kx {
            ((self.in_w + p - kx - 1) / s + 1).min(out_w)
        } else {
            0
        };
        let ox_hi = ox_hi.clamp(ox_lo, out_w);
        for (oy, out_row) in out_plane.chunks_exact_mut(out_w).enumerate() {
            let iy = (oy * s + ky).wrapping_sub(p);
            let in_row = if iy < self.in_h {
                in_plane.chunks_exact(self.in_w.max(1)).nth(iy)
            } else {
                None
            };
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
            let start = (ox_lo * s + kx).wrapping_sub(p);
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
