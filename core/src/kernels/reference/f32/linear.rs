//! Fully connected layers.

use crate::error::Error;
use crate::geometry::expect_len;

/// Partial sums a linear layer keeps (see [`linear`]): 16 f32 lanes fill one AVX-512
/// register or two AVX2 registers, and cost nothing extra on a scalar core.
pub const LINEAR_LANES: usize = 16;

/// `output[o] = bias[o] + sum_i weight[o][i] * input[i]`, `weight` as `[O, I]`.
///
/// Accumulation order (the contract): 16 partial sums start at 0.0; the product of input `i`
/// is added to partial sum `i % 16`, in ascending `i`. The partial sums are then folded in
/// halves, `p[l] += p[l + 8]`, then `+ 4`, `+ 2`, `+ 1` (for `l` below the width), and the
/// bias is added last. This order lets a SIMD kernel stream each weight row once while
/// staying bit-identical to this loop.
pub fn linear(
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
) -> Result<(), Error> {
    let n_in = check_linear(input, weight, bias, output)?;
    for ((out, row), &b) in output.iter_mut().zip(weight.chunks_exact(n_in)).zip(bias) {
        let mut acc = [0.0f32; LINEAR_LANES];
        let mut xs = input.chunks_exact(LINEAR_LANES);
        let mut ws = row.chunks_exact(LINEAR_LANES);
        for (x, w) in (&mut xs).zip(&mut ws) {
            for l in 0..LINEAR_LANES {
                acc[l] += x[l] * w[l];
            }
        }
        for ((a, &x), &w) in acc.iter_mut().zip(xs.remainder()).zip(ws.remainder()) {
            *a += x * w;
        }
        *out = fold_with_bias(acc, b);
    }
    Ok(())
}

/// Checks a linear layer's slices against each other; returns the input length (nonzero).
pub(crate) fn check_linear(
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    output: &[f32],
) -> Result<usize, Error> {
    let n_in = input.len();
    expect_len("linear bias", output.len(), bias.len())?;
    expect_len(
        "linear weight",
        output.len().saturating_mul(n_in),
        weight.len(),
    )?;
    if n_in == 0 {
        return Err(Error::WrongLength {
            what: "linear input",
            expected: 1,
            found: 0,
        });
    }
    Ok(n_in)
}

/// The contract's end of an output: the partial sums folded in halves, then the bias.
#[inline(always)]
pub(crate) fn fold_with_bias(mut acc: [f32; LINEAR_LANES], bias: f32) -> f32 {
    let mut width = LINEAR_LANES / 2;
    while width > 0 {
        for l in 0..width {
            acc[l] += acc[l + width];
        }
        width /= 2;
    }
    acc[0] + bias
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_matrix_by_hand() -> Result<(), crate::Error> {
        let mut out = [0.0; 2];
        linear(
            &[1.0, 2.0, 3.0],
            &[1.0, 0.0, -1.0, 0.5, 0.5, 0.5],
            &[10.0, 0.0],
            &mut out,
        )?;
        assert_eq!(out, [8.0, 3.0]);
        Ok(())
    }

    #[test]
    fn lanes_fold_in_the_documented_order() -> Result<(), crate::Error> {
        // With 1e8 in lane 0 and 1.0 in lanes 1..16, the order decides what survives rounding:
        // lane folding adds the ones together first (exactly 15), then to 1e8.
        let mut input = [1.0f32; 16];
        input[0] = 1e8;
        let mut out = [0.0];
        linear(&input, &[1.0; 16], &[0.0], &mut out)?;
        let mut p = input;
        for width in [8, 4, 2, 1] {
            for l in 0..width {
                p[l] += p[l + width];
            }
        }
        assert_eq!(out[0], p[0]);
        assert_ne!(
            out[0],
            input.iter().fold(0.0f32, |a, &x| a + x),
            "order must differ from a plain loop here"
        );
        Ok(())
    }
}
