//! int8 convolution.

use super::requant::output_code;
use super::{QKernel, ZeroPoints};
use crate::arch::{ConvSpec, Layer, Shape};
use crate::error::{ArchError, Error};
use crate::layers::{expect_len, output_shape};

/// Outputs accumulated at once per row segment (an i32 scratch on the stack).
const SEGMENT: usize = 64;

/// `q_out = clamp(zp_out + requantize(bias + sum (q_in - zp_in) * w), -128, 127)` for every
/// output; padding contributes nothing (its code is `zp_in`). With the `dsp` feature on a
/// core with the DSP extension, this is [`super::dsp::conv2d`]; without it, on x86-64 with
/// AVX2 (detected at run time), the blocked kernel of [`crate::fast`]; everywhere else
/// [`conv2d_generic`], the definition. All of them give the same codes.
pub fn conv2d(
    input: &[i8],
    in_shape: Shape,
    spec: &ConvSpec,
    kernel: &QKernel<'_>,
    zero_points: ZeroPoints,
    output: &mut [i8],
) -> Result<Shape, Error> {
    #[cfg(feature = "dsp")]
    {
        super::dsp::conv2d(input, in_shape, spec, kernel, zero_points, output)
    }
    #[cfg(all(not(feature = "dsp"), target_arch = "x86_64"))]
    {
        crate::fast::conv2d_int8(input, in_shape, spec, kernel, zero_points, output)
    }
    #[cfg(all(not(feature = "dsp"), not(target_arch = "x86_64")))]
    {
        conv2d_generic(input, in_shape, spec, kernel, zero_points, output)
    }
}

/// Checks every slice of an int8 convolution against its shapes; the output shape.
pub(crate) fn check(
    input: &[i8],
    in_shape: Shape,
    spec: &ConvSpec,
    kernel: &QKernel<'_>,
    output: &[i8],
) -> Result<Shape, Error> {
    let layer = Layer::Conv(*spec);
    let out_shape = output_shape(&layer, in_shape)?;
    let weight_len = layer
        .weight_len(in_shape)
        .map_err(|problem| ArchError { layer: 0, problem })?;
    let oc = spec.out_channels as usize;
    expect_len("conv input", in_shape.len(), input.len())?;
    expect_len("conv weight", weight_len, kernel.weight.len())?;
    expect_len("conv bias", oc, kernel.bias.len())?;
    expect_len("conv multiplier", oc, kernel.multiplier.len())?;
    expect_len("conv shift", oc, kernel.shift.len())?;
    expect_len("conv output", out_shape.len(), output.len())?;
    Ok(out_shape)
}

/// The portable kernel: tap by tap over row segments of i32 accumulators.
pub fn conv2d_generic(
    input: &[i8],
    in_shape: Shape,
    spec: &ConvSpec,
    kernel: &QKernel<'_>,
    zero_points: ZeroPoints,
    output: &mut [i8],
) -> Result<Shape, Error> {
    let out_shape = check(input, in_shape, spec, kernel, output)?;
    let oc = spec.out_channels as usize;

    // `check` proved these nonzero; `max(1)` lets the optimizer see it, so no panic path
    // for a zero chunk size, step or divisor remains (the core's panic-freedom check).
    let k = (spec.kernel as usize).max(1);
    let (s, p) = ((spec.stride as usize).max(1), spec.padding as usize);
    let groups = (spec.groups as usize).max(1);
    let cin_group = (in_shape.c / groups).max(1);
    let cout_group = (oc / groups).max(1);
    let (in_h, in_w) = (in_shape.h, in_shape.w.max(1));
    let (in_plane_len, out_plane_len, out_w) = (
        in_shape.plane().max(1),
        out_shape.plane().max(1),
        out_shape.w.max(1),
    );
    let zp_in = zero_points.input;

    let out_planes = output.chunks_exact_mut(out_plane_len);
    let kernels = kernel.weight.chunks_exact((cin_group * k * k).max(1));
    let per_channel = kernel.bias.iter().zip(kernel.multiplier).zip(kernel.shift);
    for (o, ((plane, taps), ((&bias, &m), &r))) in
        out_planes.zip(kernels).zip(per_channel).enumerate()
    {
        let group = o / cout_group;
        for (oy, out_row) in plane.chunks_exact_mut(out_w).enumerate() {
            for (seg, out_seg) in out_row.chunks_mut(SEGMENT).enumerate() {
                let x0 = seg * SEGMENT;
                let mut acc = [bias; SEGMENT];
                let in_planes = input.chunks_exact(in_plane_len).skip(group * cin_group);
                for (in_plane, w_ic) in in_planes.zip(taps.chunks_exact((k * k).max(1))) {
                    for (ky, w_row) in w_ic.chunks_exact(k).enumerate() {
                        let iy = (oy * s + ky).wrapping_sub(p);
                        let Some(in_row) =
                            in_plane.chunks_exact(in_w).nth(iy).filter(|_| iy < in_h)
                        else {
                            continue;
                        };
                        for (kx, &w) in w_row.iter().enumerate() {
                            // Outputs x0..x0 + len whose column x*s + kx - p is inside the row.
                            let lo = if kx >= p { 0 } else { (p - kx).div_ceil(s) };
                            let hi = if in_w + p > kx {
                                (in_w + p - kx - 1) / s + 1
                            } else {
                                0
                            };
                            let end = x0 + out_seg.len();
                            let (lo, hi) = (lo.max(x0).min(end), hi.max(x0).min(end));
                            if lo >= hi {
                                continue;
                            }
                            let start = (lo * s + kx).wrapping_sub(p);
                            let (Some(accs), Some(xs)) =
                                (acc.get_mut(lo - x0..hi - x0), in_row.get(start..))
                            else {
                                continue;
                            };
                            let w = w as i32;
                            if s == 1 {
                                accs.iter_mut()
                                    .zip(xs)
                                    .for_each(|(a, &x)| *a += (x as i32 - zp_in) * w);
                            } else {
                                accs.iter_mut()
                                    .zip(xs.iter().step_by(s))
                                    .for_each(|(a, &x)| *a += (x as i32 - zp_in) * w);
                            }
                        }
                    }
                }
                for (q, &a) in out_seg.iter_mut().zip(&acc) {
                    *q = output_code(a, m, r, zero_points.output);
                }
            }
        }
    }
    Ok(out_shape)
}
