//! int8 convolution.

use crate::error::Error;
use crate::geometry::ConvGeometry;
use crate::int8::requant::output_code;
use crate::int8::{QKernel, ZeroPoints};

/// Outputs accumulated at once per row segment (an i32 scratch on the stack).
const SEGMENT: usize = 64;

/// Checks every slice of an int8 convolution against its geometry.
pub(crate) fn check(
    g: &ConvGeometry,
    input: &[i8],
    kernel: &QKernel<'_>,
    output: &[i8],
) -> Result<(), Error> {
    g.check(
        input.len(),
        kernel.weight.len(),
        &[
            ("conv bias", kernel.bias.len()),
            ("conv multiplier", kernel.multiplier.len()),
            ("conv shift", kernel.shift.len()),
        ],
        output.len(),
    )
}

/// `q_out = clamp(zp_out + requantize(bias + sum (q_in - zp_in) * w), -128, 127)` for every
/// output; padding contributes nothing (its code is `zp_in`). The definition: tap by tap
/// over row segments of i32 accumulators. Every other int8 convolution gives the same codes.
pub fn conv2d(
    g: &ConvGeometry,
    input: &[i8],
    kernel: &QKernel<'_>,
    zero_points: ZeroPoints,
    output: &mut [i8],
) -> Result<(), Error> {
    check(g, input, kernel, output)?;
    let (k, s, p) = (g.kernel().get(), g.stride().get(), g.padding());
    let zp_in = zero_points.input;

    let out_planes = output.chunks_exact_mut(g.out_plane().get());
    let kernels = kernel.weight.chunks_exact(g.taps().get());
    let per_channel = kernel.bias.iter().zip(kernel.multiplier).zip(kernel.shift);
    for (o, ((plane, taps), ((&bias, &m), &r))) in
        out_planes.zip(kernels).zip(per_channel).enumerate()
    {
        let first_in = g.group_of(o) * g.in_per_group().get();
        for (oy, out_row) in plane.chunks_exact_mut(g.out_w().get()).enumerate() {
            for (seg, out_seg) in out_row.chunks_mut(SEGMENT).enumerate() {
                let x0 = seg * SEGMENT;
                let mut acc = [bias; SEGMENT];
                let in_planes = input.chunks_exact(g.in_plane().get()).skip(first_in);
                for (in_plane, w_ic) in in_planes.zip(taps.chunks_exact(g.area().get())) {
                    for (ky, w_row) in w_ic.chunks_exact(k).enumerate() {
                        let Some(in_row) = g
                            .input_row(oy, ky)
                            .and_then(|iy| in_plane.chunks_exact(g.in_w().get()).nth(iy))
                        else {
                            continue;
                        };
                        for (kx, &w) in w_row.iter().enumerate() {
                            // Outputs x0..x0 + len whose column x*s + kx - p is inside the row.
                            let (lo, hi) = g.valid_columns(kx);
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
    Ok(())
}
