//! int8 fully connected layer.

use crate::error::Error;
use crate::geometry::expect_len;
use crate::int8::requant::output_code;
use crate::int8::{QKernel, ZeroPoints};

/// Checks an int8 fully connected layer's slices (every int8 linear kernel checks with
/// this) and returns the input length, at least 1.
pub(crate) fn check_linear(
    input: &[i8],
    kernel: &QKernel<'_>,
    output: &[i8],
) -> Result<usize, Error> {
    let n = input.len();
    let o = output.len();
    expect_len("linear bias", o, kernel.bias.len())?;
    expect_len("linear multiplier", o, kernel.multiplier.len())?;
    expect_len("linear shift", o, kernel.shift.len())?;
    expect_len("linear weight", o.saturating_mul(n), kernel.weight.len())?;
    if n == 0 {
        return Err(Error::WrongLength {
            what: "linear input",
            expected: 1,
            found: 0,
        });
    }
    Ok(n)
}

/// `q_out[o] = clamp(zp_out + requantize(bias[o] + sum_i (q_in[i] - zp_in) * w[o][i]))`.
pub fn linear(
    input: &[i8],
    kernel: &QKernel<'_>,
    zero_points: ZeroPoints,
    output: &mut [i8],
) -> Result<(), Error> {
    let n = check_linear(input, kernel, output)?;
    let zp_in = zero_points.input;
    let per_channel = kernel.bias.iter().zip(kernel.multiplier).zip(kernel.shift);
    for ((q, row), ((&bias, &m), &r)) in output
        .iter_mut()
        .zip(kernel.weight.chunks_exact(n))
        .zip(per_channel)
    {
        // Exact in i32 for valid layers (`docs/int8-spec.md`, the overflow bound); wrapping,
        // as every kernel's sum, for the rest, so that no build panics on them.
        let mut acc = bias;
        for (&x, &w) in input.iter().zip(row) {
            acc = acc.wrapping_add((x as i32 - zp_in) * w as i32);
        }
        *q = output_code(acc, m, r, zero_points.output);
    }
    Ok(())
}
