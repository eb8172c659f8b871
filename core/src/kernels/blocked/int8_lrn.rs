//! The integer LRN over blocks of pixels (written for microcontrollers, fast on any core):
//! the definition's arithmetic
//! ([`lrn_in_place`](crate::kernels::reference::int8::lrn_in_place)), reorganized so that each
//! output costs a few dozen plain instructions instead of a window's worth of loads, `% n`
//! divisions and 64-bit work.
//!
//! * Channel after channel over a block of [`BLOCK`] pixels of a plane (contiguous loads),
//!   instead of pixel after pixel across planes.
//! * The sum of squares is kept per pixel and moved along the channels: the channel entering
//!   the window is added and the one leaving it subtracted. The entering channel's slot in
//!   the ring is the leaving one's (they are `n` apart), so one ring index per channel.
//! * A value at the zero point (half of a ReLU's outputs or more) normalizes to a constant:
//!   its product with the factor is zero, so the table is not read.
//! * The table's interpolation and the final shift work on 32-bit halves where the ranges
//!   allow it (a 64-bit shift by a variable amount is a branchy sequence on a 32-bit core),
//!   with one loop per shift regime of the layer.
//!
//! Integer sums are exact in any order and every other step is the definition's, so the
//! outputs are bit-identical (the kernel suite compares them).

use super::super::reference::int8::check_lrn;
use super::super::LrnTable;
use crate::arch::{LrnSpec, Shape, MAX_LRN_SIZE};
use crate::error::Error;
#[cfg(doc)]
use crate::int8::lrn_table_len;
use crate::int8::requant::saturate;
use crate::int8::{lrn_table_index, ZeroPoints, LRN_DIRECT};

/// Pixels per block: the window's values (`MAX_LRN_SIZE` x 2 bytes) and the running sums
/// (4 bytes) for this many pixels live on the stack, about 1 KiB in all.
pub const BLOCK: usize = 48;

/// The table value for sum `s`: the definition's interpolation
/// `g0 + (((g1 - g0) * f + 2^(sh - 1)) >> sh)` with `1 <= sh <= 26`. The shifted term can
/// need 33 bits, but `g` lies between `g0` and `g1`, so the low 32 bits of the shift, added
/// with wraparound, are exact. `NARROW`: the caller checked that every `g1 - g0` of the
/// table fits in `i32` (real tables: their entries are below 2^31 and of one sign), so the
/// product is one 32 x 32-bit multiply.
///
/// `table` holds at least [`lrn_table_len`]`(max_sum)` entries and `s <= max_sum` (checked
/// by the caller: the sums are of at most `n` squares of codes minus a zero point).
#[inline(always)]
#[allow(unsafe_code)]
fn lookup<const NARROW: bool>(table: &[i32], s: u32) -> i32 {
    if s < LRN_DIRECT {
        // SAFETY: a table holds at least LRN_DIRECT + 2 entries (lrn_table_len of any sum).
        return unsafe { *table.get_unchecked(s as usize) };
    }
    let (i, f, sh) = lrn_table_index(s);
    // SAFETY: `s <= max_sum`, so `i + 1 < lrn_table_len(max_sum) <= table.len()`.
    let (g0, g1) = unsafe {
        (
            *table.get_unchecked(i as usize),
            *table.get_unchecked(i as usize + 1),
        )
    };
    let delta = if NARROW {
        g1.wrapping_sub(g0) as i64
    } else {
        g1 as i64 - g0 as i64
    };
    let t = delta * (f as i32) as i64 + (1i64 << (sh - 1));
    g0.wrapping_add(low_word_of_shift(t, sh))
}

/// Whether every difference of neighbouring entries fits in `i32`.
fn deltas_fit_i32(table: &[i32]) -> bool {
    table
        .windows(2)
        .all(|w| i32::try_from(w[1] as i64 - w[0] as i64).is_ok())
}

/// The low 32 bits of `t >> sh` for `1 <= sh <= 31`, from the two halves of `t` (what a
/// 32-bit core does anyway, without the general 64-bit shift's case for `sh >= 32`).
#[inline(always)]
fn low_word_of_shift(t: i64, sh: u32) -> i32 {
    let (lo, hi) = (t as u32, (t >> 32) as u32);
    ((lo >> (sh & 31)) | (hi << ((32 - sh) & 31))) as i32
}

/// How the final `(x * g + round) >> q` is taken, fixed per layer by `q`.
#[derive(Clone, Copy)]
enum Shift {
    /// `q >= 32`: the high word of the product, shifted on.
    High,
    /// `9 <= q < 32`: `|x * g + round| < 2^40`, so the shifted value fits in 32 bits: its
    /// low word.
    Middle,
    /// `q < 9`: the general 64-bit shift and saturation.
    Low,
}

/// The output code `saturate(zp_out + ((x * g + round) >> q))`, the definition's final step.
#[inline(always)]
fn output(x: i32, g: i32, round: i64, q: u32, shift: Shift, zp_out: i32) -> i8 {
    let t = x as i64 * g as i64 + round;
    let v = match shift {
        Shift::High => ((t >> 32) as i32) >> (q.wrapping_sub(32) & 31),
        Shift::Middle => low_word_of_shift(t, q),
        Shift::Low => return saturate(zp_out as i64 + (t >> (q & 63))),
    };
    (zp_out + v).clamp(i8::MIN as i32, i8::MAX as i32) as i8
}

/// One channel's outputs over a block: `x` its codes minus the zero point, `sums` the
/// window's sums of squares (see [`lookup`] for what the table and sums must satisfy).
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the layer's constants, passed down as they are
fn normalize<const NARROW: bool>(
    out: &mut [i8],
    x: &[i16],
    sums: &[i32],
    table: &[i32],
    round: i64,
    q: u32,
    shift: Shift,
    zp_out: i32,
) {
    // A zero (the zero point: after a ReLU, often half the values or more) normalizes to
    // the same code whatever the table says: no lookup.
    let zero = output(0, 0, round, q, shift, zp_out);
    for ((o, &x), &s) in out.iter_mut().zip(x).zip(sums) {
        *o = if x == 0 {
            zero
        } else {
            output(
                x as i32,
                lookup::<NARROW>(table, s as u32),
                round,
                q,
                shift,
                zp_out,
            )
        };
    }
}

/// Normalizes `values` (`[C, H, W]` codes) in place, exactly as the definition does.
#[inline(never)] // one symbol, for the profile and the disassembly
pub fn lrn_int8(
    values: &mut [i8],
    shape: Shape,
    spec: &LrnSpec,
    table: LrnTable<'_>,
    zero_points: ZeroPoints,
) -> Result<(), Error> {
    // Clamped again where it is used, as in the definition.
    let n = check_lrn(values.len(), shape, spec, table.table, table.shift)?
        .clamp(1, MAX_LRN_SIZE as usize);
    let q = table.shift;
    let half = n / 2;
    let channels = shape.c;
    let plane = shape.plane();
    let zp_in = zero_points.input;
    let zp_out = zero_points.output;
    let round = if q == 0 { 0 } else { 1i64 << (q - 1) };
    let shift = match q {
        32.. => Shift::High,
        9..=31 => Shift::Middle,
        _ => Shift::Low,
    };
    let table = table.table;
    let narrow = deltas_fit_i32(table);
    let code = |v: i8| v as i32 - zp_in;

    // ring[slot][p]: the code minus zero point of the channel in that slot, at pixel p.
    let mut ring = [[0i16; BLOCK]; MAX_LRN_SIZE as usize];
    let mut sums = [0i32; BLOCK];
    let mut start = 0;
    while start < plane {
        let width = BLOCK.min(plane - start);
        for row in ring.iter_mut().take(n) {
            row[..width].fill(0);
        }
        sums[..width].fill(0);
        // The window of channel 0: channels 0..half (slots 0..half).
        for (c, row) in ring.iter_mut().enumerate().take(half.min(channels)) {
            let from = values.get(c * plane + start..c * plane + start + width);
            for ((r, s), &v) in row
                .iter_mut()
                .zip(&mut sums)
                .zip(from.into_iter().flatten())
            {
                let d = code(v);
                *r = d as i16;
                *s += d * d;
            }
        }
        // Slot of the channel entering the window (c + half) and of the output channel c.
        let (mut enter, mut own) = (half, 0usize);
        for c in 0..channels {
            // The entering channel replaces, in its slot, the one leaving (c - half - 1).
            let entering = c + half;
            if let Some(row) = ring.get_mut(enter) {
                let from = if entering < channels {
                    values.get(entering * plane + start..entering * plane + start + width)
                } else {
                    None
                };
                match from {
                    Some(from) => {
                        for ((r, s), &v) in row.iter_mut().zip(&mut sums).zip(from) {
                            let d = code(v);
                            let old = *r as i32;
                            *r = d as i16;
                            *s += d * d - old * old;
                        }
                    }
                    None => {
                        for (r, s) in row.iter_mut().zip(&mut sums).take(width) {
                            let old = *r as i32;
                            *r = 0;
                            *s -= old * old;
                        }
                    }
                }
            }
            let (Some(row), Some(out)) = (
                ring.get(own),
                values.get_mut(c * plane + start..c * plane + start + width),
            ) else {
                break;
            };
            // One loop per table kind and shift regime, so that none tests them per output.
            match (narrow, shift) {
                (true, Shift::High) => {
                    normalize::<true>(out, row, &sums, table, round, q, Shift::High, zp_out)
                }
                (true, Shift::Middle) => {
                    normalize::<true>(out, row, &sums, table, round, q, Shift::Middle, zp_out)
                }
                (true, Shift::Low) => {
                    normalize::<true>(out, row, &sums, table, round, q, Shift::Low, zp_out)
                }
                (false, Shift::High) => {
                    normalize::<false>(out, row, &sums, table, round, q, Shift::High, zp_out)
                }
                (false, Shift::Middle) => {
                    normalize::<false>(out, row, &sums, table, round, q, Shift::Middle, zp_out)
                }
                (false, Shift::Low) => {
                    normalize::<false>(out, row, &sums, table, round, q, Shift::Low, zp_out)
                }
            }
            enter = if enter + 1 == n { 0 } else { enter + 1 };
            own = if own + 1 == n { 0 } else { own + 1 };
        }
        start += width;
    }
    Ok(())
}
