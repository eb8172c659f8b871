//! int8 convolution.

use crate::error::Error;
use crate::geometry::ConvGeometry;
use crate::int8::requant::output_code;
use crate::int8::{QKernel, ZeroPoints};

/// Outputs accumulated at once per row segment (an i32 scratch on the stack).
const SEGMENT: usize = 64;

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
    g.check_int8(input, kernel, output)?;
    // The geometry's sizes as locals: the hot loops below index with them.
    let (k, s, p) = (g.kernel().get(), g.stride().get(), g.padding());
    let (in_h, in_w) = (g.input().h, g.in_w().get());
    let (in_plane_len, out_plane_len, out_w) =
        (g.in_plane().get(), g.out_plane().get(), g.out_w().get());
    let (area, cin_group) = (g.area().get(), g.in_per_group().get());
    let zp_in = zero_points.input;

    let out_planes = output.chunks_exact_mut(out_plane_len);
    let kernels = kernel.weight.chunks_exact(g.taps().get());
    let per_channel = kernel.bias.iter().zip(kernel.multiplier).zip(kernel.shift);
    for (o, ((plane, taps), ((&bias, &m), &r))) in
        out_planes.zip(kernels).zip(per_channel).enumerate()
    {
        let group = g.group_of(o);
        for (oy, out_row) in plane.chunks_exact_mut(out_w).enumerate() {
            for (seg, out_seg) in out_row.chunks_mut(SEGMENT).enumerate() {
                let x0 = seg * SEGMENT;
                let mut acc = [bias; SEGMENT];
                let in_planes = input.chunks_exact(in_plane_len).skip(group * cin_group);
                for (in_plane, w_ic) in in_planes.zip(taps.chunks_exact(area)) {
                    for (ky, w_row) in w_ic.chunks_exact(k).enumerate() {
                        let iy = (oy * s + ky).wrapping_sub(p);
                        let Some(in_row) =
                            in_plane.chunks_exact(in_w).nth(iy).filter(|_| iy < in_h)
                        else {
                            continue;
                        };
                        for (kx, &w) in w_row.iter().enumerate() {
                            // Outputs x0..x0 + len whose column x*s + kx - p is inside the row:
                            // `ConvDims::valid_columns` and `input_row` by hand, without the
                            // clamps the segment's make redundant; through those methods this
                            // innermost prologue cost the Cortex-M4 19.98 to 21.88
                            // instructions per MAC against 18.72.
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
    Ok(())
}
