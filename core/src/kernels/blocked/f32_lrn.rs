//! The f32 LRN over blocks of pixels.

use super::super::reference::f32 as definition;
use crate::arch::{LrnSpec, Shape, MAX_LRN_SIZE};
use crate::error::Error;

/// Pixels per block of the f32 LRN: the ring of the window's original values
/// (`MAX_LRN_SIZE` rows) and the bases of this many pixels, 2 KiB of stack.
pub const LRN_BLOCK: usize = 32;

/// The f32 LRN ([`definition::lrn_in_place`]) channel after channel over blocks of
/// [`LRN_BLOCK`] pixels: each output's sum of squares in the contract's order (ascending over
/// the clipped window), then `base = k + alpha' * S`; for beta = 0.75,
/// `divide_by_power(out, a, base)` must set `out[p] = a[p] / sqrt(base[p] * sqrt(base[p]))`
/// as [`divide_by_three_quarter_power`] does; any other beta takes `libm::powf` here.
#[inline(always)]
pub fn lrn_f32(
    values: &mut [f32],
    shape: Shape,
    spec: &LrnSpec,
    divide_by_power: impl Fn(&mut [f32], &[f32], &[f32]),
) -> Result<(), Error> {
    // Clamped again here: the optimizer must see `n` in range where the `% n` and the ring
    // indices are.
    let n = definition::check_lrn(values.len(), shape, spec)?.clamp(1, MAX_LRN_SIZE as usize);
    let half = n / 2;
    let channels = shape.c;
    let plane = shape.plane();
    let (k, alpha, beta) = (spec.k, spec.alpha_effective(), spec.beta);
    let sqrt_form = beta.to_bits() == definition::SQRT_FORM_BETA.to_bits();
    // ring[c % n]: channel c's original values over the block, while c is in a window.
    let mut ring = [[0.0f32; LRN_BLOCK]; MAX_LRN_SIZE as usize];
    let mut base = [0.0f32; LRN_BLOCK];
    let mut start = 0;
    while start < plane {
        let width = LRN_BLOCK.min(plane - start);
        let block = |c: usize| c * plane + start..c * plane + start + width;
        for c in 0..half.min(channels) {
            if let (Some(slot), Some(from)) = (ring.get_mut(c % n), values.get(block(c))) {
                slot[..width].copy_from_slice(from);
            }
        }
        for c in 0..channels {
            let ahead = c + half;
            if ahead < channels {
                if let (Some(slot), Some(from)) =
                    (ring.get_mut(ahead % n), values.get(block(ahead)))
                {
                    slot[..width].copy_from_slice(from);
                }
            }
            let (lo, hi) = (c.saturating_sub(half), ahead.min(channels - 1));
            // S = 0.0 + a[lo]^2 + ...: a square is +0.0 or more (or NaN), so `0.0 + a^2` is
            // `a^2` and the first term starts the sum.
            let first = &ring[lo % n];
            for (s, &a) in base[..width].iter_mut().zip(first) {
                *s = a * a;
            }
            for j in lo + 1..=hi {
                for (s, &a) in base[..width].iter_mut().zip(&ring[j % n]) {
                    *s += a * a;
                }
            }
            for s in &mut base[..width] {
                *s = k + alpha * *s;
            }
            let (own, Some(out)) = (&ring[c % n], values.get_mut(block(c))) else {
                break;
            };
            if sqrt_form {
                divide_by_power(out, &own[..width], &base[..width]);
            } else {
                for ((o, &a), &b) in out.iter_mut().zip(own).zip(&base[..width]) {
                    *o = a / definition::lrn_denominator(b, beta);
                }
            }
        }
        start += width;
    }
    Ok(())
}

/// `out[p] = a[p] / sqrt(b[p] * sqrt(b[p]))`, the contract's LRN output for beta = 0.75
/// ([`definition::lrn_denominator`]); compiled for a vector unit, the square roots and
/// divisions are its correctly rounded vector instructions.
#[inline(always)]
pub fn divide_by_three_quarter_power(out: &mut [f32], a: &[f32], b: &[f32]) {
    for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
        *o = a / definition::lrn_denominator(b, definition::SQRT_FORM_BETA);
    }
}
