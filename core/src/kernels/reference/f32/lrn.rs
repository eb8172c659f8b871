//! Local Response Normalization across channels (paper §3.3).

use crate::arch::{Layer, LrnSpec, Shape, MAX_LRN_SIZE};
use crate::error::Error;
use crate::geometry::{expect_len, output_shape};

/// The exponent that the contract takes with square roots instead of `powf`: AlexNet's
/// (and every LRN of the built-in nets).
pub const SQRT_FORM_BETA: f32 = 0.75;

/// The contract's denominator `base^beta` (`docs/numerics-f32.md`, version 2). For
/// `beta` = [`SQRT_FORM_BETA`]: `sqrt(base * sqrt(base))`, two correctly rounded square
/// roots and one product: a relative error of at most about `2u` (2^-23) against the exact
/// power (measured: 1.93u, 1.19 ulp, over every `f32` in `[1, 4)` and a million others;
/// `tests/f32_kernels.rs`). Any other `beta`: `libm::powf(base, beta)`, pure
/// Rust, so the same on every target. IEEE-754 square roots are exact-rounded on every
/// machine (x86-64's `SQRTSS`/`VSQRTPS`, the Cortex-M FPU's `VSQRT.F32`, `libm`'s software
/// one), so both forms give the same bits everywhere.
#[inline(always)]
pub fn lrn_denominator(base: f32, beta: f32) -> f32 {
    if beta.to_bits() == SQRT_FORM_BETA.to_bits() {
        libm::sqrtf(base * libm::sqrtf(base))
    } else {
        libm::powf(base, beta)
    }
}

/// Checks an f32 LRN call (shape, length) and returns its size `n`, odd and at most
/// [`MAX_LRN_SIZE`] (validated, then clamped, so that the optimizer sees every `% n`
/// nonzero and every ring index in bounds). Every f32 LRN kernel checks with this.
#[inline(always)]
pub(crate) fn check_lrn(len: usize, shape: Shape, spec: &LrnSpec) -> Result<usize, Error> {
    output_shape(&Layer::Lrn(*spec), shape)?;
    expect_len("lrn input", shape.len(), len)?;
    Ok((spec.size as usize).clamp(1, MAX_LRN_SIZE as usize))
}

/// Normalizes `values` (`[C, H, W]`) in place:
/// `b[c] = a[c] / (k + alpha' * S)^beta`, `S = sum a[c']^2` over
/// `c' in [c - n/2, c + n/2]` clipped to the existing channels, `alpha'` from
/// [`LrnSpec::alpha_effective`].
///
/// Accumulation order: `S` starts at 0.0 and adds `a[c'] * a[c']` for ascending `c'`; then
/// `alpha' * S`, then `k +`, then the power ([`lrn_denominator`]), then the division: one
/// rounding each.
///
/// In place, to spare the arena a second copy of conv1's output: for each pixel a ring of
/// `n` slots keeps the original values of the channels still inside the window.
pub fn lrn_in_place(values: &mut [f32], shape: Shape, spec: &LrnSpec) -> Result<(), Error> {
    // Clamped again here, as in the check: the optimizer must see `n` in range where the
    // `% n` and the ring indices are.
    let n = check_lrn(values.len(), shape, spec)?.clamp(1, MAX_LRN_SIZE as usize);
    let half = n / 2;
    let channels = shape.c;
    let plane = shape.plane();
    let alpha = spec.alpha_effective();
    let mut ring = [0.0f32; MAX_LRN_SIZE as usize];
    for pixel in 0..plane {
        let at = |c: usize| c * plane + pixel;
        for c in 0..half.min(channels) {
            ring[c % n] = values.get(at(c)).copied().unwrap_or(0.0);
        }
        for c in 0..channels {
            let ahead = c + half;
            if ahead < channels {
                ring[ahead % n] = values.get(at(ahead)).copied().unwrap_or(0.0);
            }
            let last = (c + half).min(channels - 1);
            let mut sum = 0.0f32;
            for j in c.saturating_sub(half)..=last {
                let v = ring[j % n];
                sum += v * v;
            }
            let denominator = lrn_denominator(spec.k + alpha * sum, spec.beta);
            if let Some(out) = values.get_mut(at(c)) {
                *out = ring[c % n] / denominator;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::LrnConvention;

    #[test]
    fn edges_clip_the_window() -> Result<(), crate::Error> {
        // Three channels, one pixel, n = 3 (half = 1), alpha = 1, beta = 1, k = 1, paper form.
        let spec = LrnSpec {
            size: 3,
            alpha: 1.0,
            beta: 1.0,
            k: 1.0,
            convention: LrnConvention::Paper,
        };
        let mut v = [1.0, 2.0, 3.0];
        lrn_in_place(&mut v, Shape::new(3, 1, 1), &spec)?;
        assert_eq!(v, [1.0 / 6.0, 2.0 / 15.0, 3.0 / 14.0]);
        Ok(())
    }

    #[test]
    fn alpha_over_n_divides_alpha() -> Result<(), crate::Error> {
        let spec = LrnSpec {
            size: 3,
            alpha: 3.0,
            beta: 1.0,
            k: 1.0,
            convention: LrnConvention::AlphaOverN,
        };
        let mut v = [1.0, 2.0, 3.0];
        lrn_in_place(&mut v, Shape::new(3, 1, 1), &spec)?;
        assert_eq!(v, [1.0 / 6.0, 2.0 / 15.0, 3.0 / 14.0]);
        Ok(())
    }

    #[test]
    fn even_size_is_refused() {
        let spec = LrnSpec {
            size: 4,
            alpha: 1.0,
            beta: 1.0,
            k: 1.0,
            convention: LrnConvention::Paper,
        };
        assert!(lrn_in_place(&mut [0.0; 4], Shape::new(4, 1, 1), &spec).is_err());
    }
}
