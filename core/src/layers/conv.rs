//! 2-D convolution with stride, zero padding and groups.

use super::{expect_len, output_shape};
use crate::arch::{ConvSpec, Layer, Shape};
use crate::error::{ArchError, Error};

/// Convolves `input` (`[C, H, W]`) with `weight` (`[O, C/groups, k, k]`) and `bias` (`[O]`).
///
/// Accumulation order (the contract): each output starts at its bias, then adds one product
/// per tap, input channel of its group outermost, then kernel row, then kernel column, each
/// ascending. Padding is materialized: a tap on a padded position adds `0.0 * w` (which only
/// matters for the sign of zero and for non-finite weights). Products are rounded to f32
/// before each addition; nothing is fused.
///
/// On x86-64 with AVX2 (detected at run time) this is the blocked kernel of
/// [`crate::fast`], bit-identical to [`conv2d_reference`]; everywhere else it is
/// [`conv2d_reference`].
pub fn conv2d(
    input: &[f32],
    in_shape: Shape,
    spec: &ConvSpec,
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
) -> Result<Shape, Error> {
    #[cfg(target_arch = "x86_64")]
    {
        crate::fast::conv2d_f32(input, in_shape, spec, weight, bias, output)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        conv2d_reference(input, in_shape, spec, weight, bias, output)
    }
}

/// Checks every slice of an f32 convolution against its shapes; the output shape.
pub(crate) fn check(
    input: &[f32],
    in_shape: Shape,
    spec: &ConvSpec,
    weight: &[f32],
    bias: &[f32],
    output: &[f32],
) -> Result<Shape, Error> {
    let layer = Layer::Conv(*spec);
    let out_shape = output_shape(&layer, in_shape)?;
    let weight_len = layer
        .weight_len(in_shape)
        .map_err(|problem| ArchError { layer: 0, problem })?;
    expect_len("conv input", in_shape.len(), input.len())?;
    expect_len("conv weight", weight_len, weight.len())?;
    expect_len("conv bias", spec.out_channels as usize, bias.len())?;
    expect_len("conv output", out_shape.len(), output.len())?;
    Ok(out_shape)
}

/// The definition of [`conv2d`]: tap by tap over whole output planes, in the contract's
/// order. Portable and simple; the fast kernels are tested against it bit for bit.
pub fn conv2d_reference(
    input: &[f32],
    in_shape: Shape,
    spec: &ConvSpec,
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
) -> Result<Shape, Error> {
    let out_shape = check(input, in_shape, spec, weight, bias, output)?;

    // Validated nonzero above; `max(1)` lets the optimizer see it, so no panic path for a
    // zero chunk size, step or divisor remains (the core's panic-freedom check).
    let k = (spec.kernel as usize).max(1);
    let groups = (spec.groups as usize).max(1);
    let cin_group = (in_shape.c / groups).max(1);
    let cout_group = (out_shape.c / groups).max(1);
    let geometry = Geometry {
        in_w: in_shape.w.max(1),
        in_h: in_shape.h,
        stride: (spec.stride as usize).max(1),
        padding: spec.padding as usize,
    };
    let out_w = out_shape.w.max(1);

    let out_planes = output.chunks_exact_mut(out_shape.plane().max(1));
    let kernel_len = cin_group * k * k;
    for (oc, (plane, &b)) in out_planes.zip(bias).enumerate() {
        let Some(kernel) = weight.get(oc * kernel_len..(oc + 1) * kernel_len) else {
            break;
        };
        plane.fill(b);
        let group = oc / cout_group;
        let in_planes = input
            .chunks_exact(in_shape.plane().max(1))
            .skip(group * cin_group);
        for (in_plane, taps) in in_planes.zip(kernel.chunks_exact((k * k).max(1))) {
            for (ky, tap_row) in taps.chunks_exact(k).enumerate() {
                for (kx, &w) in tap_row.iter().enumerate() {
                    geometry.accumulate_tap(in_plane, plane, out_w, ky, kx, w);
                }
            }
        }
    }
    Ok(out_shape)
}

/// Input geometry of one convolution (`in_w`, `stride` nonzero).
struct Geometry {
    in_h: usize,
    in_w: usize,
    stride: usize,
    padding: usize,
}

impl Geometry {
    /// Adds tap `(ky, kx)` of weight `w` to every output of one output plane.
    fn accumulate_tap(
        &self,
        in_plane: &[f32],
        out_plane: &mut [f32],
        out_w: usize,
        ky: usize,
        kx: usize,
        w: f32,
    ) {
        let (s, p) = (self.stride, self.padding);
        let padded = 0.0 * w;
        // Outputs whose tap column ix = ox*s + kx - p falls inside [0, in_w).
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
                in_plane.chunks_exact(self.in_w).nth(iy)
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

    fn spec(out_channels: u32, kernel: u32, stride: u32, padding: u32, groups: u32) -> ConvSpec {
        ConvSpec {
            out_channels,
            kernel,
            stride,
            padding,
            groups,
        }
    }

    #[test]
    fn three_by_three_with_padding_by_hand() -> Result<(), crate::Error> {
        // 1x3x3 input, one 3x3 kernel of ones, padding 1: each output sums its neighbourhood.
        let input = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        let mut out = [0.0; 9];
        let s = conv2d(
            &input,
            Shape::new(1, 3, 3),
            &spec(1, 3, 1, 1, 1),
            &[1.0; 9],
            &[0.5],
            &mut out,
        )?;
        assert_eq!(s, Shape::new(1, 3, 3));
        assert_eq!(out, [12.5, 21.5, 16.5, 27.5, 45.5, 33.5, 24.5, 39.5, 28.5]);
        Ok(())
    }

    #[test]
    fn groups_keep_channels_apart() -> Result<(), crate::Error> {
        // Two groups of one channel: output 0 sees only input 0, output 1 only input 1.
        let input = [1.0, 1.0, 1.0, 1.0, 10.0, 10.0, 10.0, 10.0];
        let mut out = [0.0; 2];
        conv2d(
            &input,
            Shape::new(2, 2, 2),
            &spec(2, 2, 1, 0, 2),
            &[1.0; 8],
            &[0.0, 0.0],
            &mut out,
        )?;
        assert_eq!(out, [4.0, 40.0]);
        Ok(())
    }

    #[test]
    fn stride_skips_positions() -> Result<(), crate::Error> {
        let input: [f32; 16] = core::array::from_fn(|i| i as f32);
        let mut out = [0.0; 4];
        conv2d(
            &input,
            Shape::new(1, 4, 4),
            &spec(1, 1, 2, 0, 1),
            &[1.0],
            &[0.0],
            &mut out,
        )?;
        assert_eq!(out, [0.0, 2.0, 8.0, 10.0]);
        Ok(())
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let mut out = [0.0; 4];
        let e = conv2d(
            &[0.0; 15],
            Shape::new(1, 4, 4),
            &spec(1, 1, 2, 0, 1),
            &[1.0],
            &[0.0],
            &mut out,
        );
        assert!(matches!(
            e,
            Err(Error::WrongLength {
                what: "conv input",
                expected: 16,
                found: 15
            })
        ));
        let e = conv2d(
            &[0.0; 16],
            Shape::new(1, 4, 4),
            &spec(1, 1, 2, 0, 1),
            &[],
            &[0.0],
            &mut out,
        );
        assert!(matches!(
            e,
            Err(Error::WrongLength {
                what: "conv weight",
                ..
            })
        ));
    }
}
