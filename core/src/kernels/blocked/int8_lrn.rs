//! The integer LRN over blocks of pixels (written for microcontrollers, fast on any core):
//! the definition's arithmetic
//! ([`lrn_in_place`](crate::kernels::reference::int8::lrn_in_place)), reorganized so that each
//! output costs a couple of dozen plain instructions instead of a window's worth of loads,
//! `% n` divisions and 64-bit work.
//!
//! * Channel after channel over a block of [`BLOCK`] pixels of a plane (contiguous loads),
//!   instead of pixel after pixel across planes.
//! * The sum of squares is kept per pixel and moved along the channels in the same pass that
//!   normalizes: the channel entering the window is added and the one leaving it subtracted.
//!   A ring keeps the codes of the channels already overwritten; the entering channel's slot
//!   is the leaving one's (they are `n` apart), so one ring row per channel.
//! * A value at the zero point (half of a ReLU's outputs or more) normalizes to a constant:
//!   its product with the factor is zero, so the table is not read.
//! * For real tables (neighbouring entries less than 2^30 apart) and shifts `Q >= 9`, both
//!   rounded shifts of the definition are the rounded high word of a 32 x 32-bit product
//!   (`Rounded`), one `SMMLAR` on a Cortex-M4 (`mul_high_rounded` says why that is exact);
//!   with the `dsp` feature, `9 <= Q <= 32` runs one assembly loop per channel
//!   ([`lrn_channel`](crate::kernels::cortex_m::dsp)). Other tables and shifts take the
//!   definition's 64-bit steps (`Definition`).
//!
//! Integer sums are exact in any order and every other step equals the definition's, so the
//! outputs are bit-identical (the kernel suite compares them, with real tables and random ones).

use super::super::reference::int8::check_lrn;
use super::super::LrnTable;
use crate::arch::{LrnSpec, Shape, MAX_LRN_SIZE};
use crate::error::Error;
use crate::int8::requant::saturate;
use crate::int8::{
    lrn_max_sum, lrn_steps_fit, lrn_table_index, lrn_table_len, ZeroPoints, LRN_DIRECT,
};

/// Pixels per block: the ring of codes (`MAX_LRN_SIZE` x 2 bytes), the running sums (4
/// bytes) and a row of absent codes (1 byte) for this many pixels live on the stack, 4.4 KiB
/// in all (less than the convolutions' buffers, so not at the stack's peak). 128 rather than
/// 48 pixels saves the micro net's two LRN layers about 3 % of their instructions on a Cortex-M4
/// (fewer blocks, each with its window to start).
pub const BLOCK: usize = 128;

/// `(a * b + 2^31) >> 32`: the high word of the product, rounded half up (`SMMULR`).
///
/// Both of the definition's rounded shifts are of this form. With `0 <= f < 2^sh`,
/// `(delta * f + 2^(sh - 1)) >> sh` equals `mul_high_rounded(2 delta, f << (31 - sh))`: the
/// product is `delta * f * 2^(32 - sh)`, and `2^31 / 2^(32 - sh) = 2^(sh - 1)`. Likewise
/// `(d * g + 2^(Q - 1)) >> Q` equals `mul_high_rounded(d << (32 - Q), g)` for `Q <= 32`. Both
/// are exact when the scaled operands fit in `i32`.
#[inline(always)]
fn mul_high_rounded(a: i32, b: i32) -> i32 {
    ((a as i64 * b as i64 + (1 << 31)) >> 32) as i32
}

/// `(a * b) >> 32`: the high word of the product (`SMMUL`).
#[inline(always)]
fn mul_high(a: i32, b: i32) -> i32 {
    ((a as i64 * b as i64) >> 32) as i32
}

/// A layer's arithmetic from a value and its window's sum of squares to the output code.
trait Normalize: Copy {
    /// The output code of `d` (a code minus the input zero point, `|d| <= 255`) whose
    /// window's sum of squares is `s` (at most the `max_sum` the table was checked for).
    fn code(self, d: i32, s: u32) -> i8;

    /// One channel over a block: see [`channel`].
    #[inline(always)]
    fn channel(self, c: Channel<'_>, zp_in: i32, zero: i8) {
        channel(self, c, zp_in, zero);
    }
}

/// One channel's pass over a block of pixels: its codes (normalized in place), the codes of
/// the channel entering the window, that channel's ring row (the leaving channel's codes
/// minus the zero point, replaced by the entering one's) and the running sums of squares.
/// All four have the block's width.
struct Channel<'a> {
    out: &'a mut [i8],
    incoming: &'a [i8],
    row: &'a mut [i16],
    sums: &'a mut [i32],
}

/// [`Channel`]'s pass: the entering channel's square added to each sum and the leaving
/// one's subtracted, then each code normalized with its window's sum.
#[inline(always)]
fn channel<N: Normalize>(norm: N, c: Channel<'_>, zp_in: i32, zero: i8) {
    for (((o, &v), r), s) in c.out.iter_mut().zip(c.incoming).zip(c.row).zip(c.sums) {
        let d = v as i32 - zp_in;
        let old = *r as i32;
        *r = d as i16;
        let sum = *s + d * d - old * old;
        *s = sum;
        let x = *o as i32 - zp_in;
        *o = if x == 0 {
            zero
        } else {
            norm.code(x, sum as u32)
        };
    }
}

/// The definition's steps in 64 bits: any table, any shift.
#[derive(Clone, Copy)]
struct Definition<'a> {
    /// At least [`lrn_table_len`]`(max_sum)` entries (checked by [`lrn_int8`]).
    table: &'a [i32],
    round: i64,
    q: u32,
    zp_out: i32,
}

impl Normalize for Definition<'_> {
    #[inline(always)]
    #[allow(unsafe_code)]
    fn code(self, d: i32, s: u32) -> i8 {
        let (i, f, sh) = lrn_table_index(s);
        // SAFETY: `s <= max_sum`, so `i + 1 < lrn_table_len(max_sum) <= table.len()`.
        let (g0, g1) = unsafe {
            (
                *self.table.get_unchecked(i as usize) as i64,
                *self.table.get_unchecked(i as usize + 1) as i64,
            )
        };
        let g = if sh == 0 {
            g0
        } else {
            g0 + (((g1 - g0) * f as i64 + (1i64 << (sh - 1))) >> sh)
        };
        saturate(self.zp_out as i64 + ((d as i64 * g + self.round) >> (self.q & 63)))
    }
}

/// The definition's steps as rounded high words of 32-bit products ([`mul_high_rounded`]):
/// tables whose neighbouring entries are less than 2^30 apart, so that `2 (g1 - g0)` fits
/// in `i32` (real ones: their entries lie below 2^31 and change by a few percent from one
/// grid point to the next), shifts `9 <= Q <= 62` and an int8 output zero point.
/// `HIGH`: `Q >= 33`.
#[derive(Clone, Copy)]
struct Rounded<'a, const HIGH: bool> {
    /// As [`Definition::table`].
    table: &'a [i32],
    /// `32 - Q` (`d` is scaled up by it: `|d| << 23 < 2^31`), or with `HIGH`, `Q - 32`
    /// (the product's high word is shifted down by it).
    scale: u32,
    /// With `HIGH`: `2^(Q - 33)`, the definition's rounding term in the high word (its low
    /// word is zero, and the product's low word cannot carry into the shifted result).
    round_high: i32,
    zp_out: i32,
}

/// `Rounded`'s `scale` and `round_high` for a shift `9 <= q <= 62` (the x86-64 loop takes
/// them from here too).
#[inline(always)]
pub(crate) const fn rounded_shift(q: u32) -> (u32, i32) {
    if q >= 33 {
        (q - 32, 1 << ((q - 33) & 31))
    } else {
        (32u32.saturating_sub(q), 0)
    }
}

impl<'a, const HIGH: bool> Rounded<'a, HIGH> {
    /// The arithmetic for shift `q` (`HIGH` must be `q >= 33`).
    #[inline(always)]
    fn new(table: &'a [i32], q: u32, zp_out: i32) -> Self {
        let (scale, round_high) = rounded_shift(q);
        Rounded {
            table,
            scale,
            round_high,
            zp_out,
        }
    }
}

impl<const HIGH: bool> Normalize for Rounded<'_, HIGH> {
    #[inline(always)]
    #[allow(unsafe_code)]
    fn code(self, d: i32, s: u32) -> i8 {
        let g = if s < LRN_DIRECT {
            // SAFETY: `lrn_int8` checked that the table covers `lrn_max_sum(n)` for `n >= 1`:
            // at least 385 entries.
            unsafe { *self.table.get_unchecked(s as usize) }
        } else {
            // 1 <= sh <= 26, f < 2^sh.
            let (i, f, sh) = lrn_table_index(s);
            // SAFETY: as in `Definition::code`.
            let (g0, g1) = unsafe {
                (
                    *self.table.get_unchecked(i as usize),
                    *self.table.get_unchecked(i as usize + 1),
                )
            };
            // The interpolated value lies between g0 and g1: the additions cannot wrap.
            let step = g1.wrapping_sub(g0).wrapping_mul(2);
            g0.wrapping_add(mul_high_rounded(step, (f << (31 - sh)) as i32))
        };
        let v = if HIGH {
            (mul_high(d, g) + self.round_high) >> (self.scale & 31)
        } else {
            mul_high_rounded(d << (self.scale & 31), g)
        };
        (self.zp_out + v).clamp(i8::MIN as i32, i8::MAX as i32) as i8
    }
}

/// One channel over a block of pixels for the 32-bit arithmetic (a table whose
/// neighbouring entries are less than 2^30 apart, `9 <= q <= 62`, int8 zero points), as
/// [`lrn_int8_with`] hands it to a kernel set's loop. The first four slices have the
/// block's width: this channel's codes (normalized in place), the codes of the channel
/// entering the window, that channel's ring row (the leaving channel's codes minus `zp_in`,
/// to be replaced by the entering one's) and the running sums of squares (to be moved).
/// Every `row` entry is a code minus `zp_in` and every sum one of at most `n` of their
/// squares; `table` covers `lrn_max_sum(n)`. Only [`lrn_int8_with`] makes one (the
/// unchecked table reads rely on those facts), and [`RoundedChannel::part`] a part of one.
pub struct RoundedChannel<'a> {
    pub(crate) out: &'a mut [i8],
    pub(crate) incoming: &'a [i8],
    pub(crate) row: &'a mut [i16],
    pub(crate) sums: &'a mut [i32],
    pub(crate) table: &'a [i32],
    pub(crate) q: u32,
    pub(crate) zp_in: i32,
    pub(crate) zp_out: i32,
}

impl RoundedChannel<'_> {
    /// The same channel over pixels `range` of the block (for a loop that leaves a tail).
    pub fn part(&mut self, range: core::ops::Range<usize>) -> Option<RoundedChannel<'_>> {
        Some(RoundedChannel {
            out: self.out.get_mut(range.clone())?,
            incoming: self.incoming.get(range.clone())?,
            row: self.row.get_mut(range.clone())?,
            sums: self.sums.get_mut(range)?,
            table: self.table,
            q: self.q,
            zp_in: self.zp_in,
            zp_out: self.zp_out,
        })
    }
}

/// The portable loop for a [`RoundedChannel`] (on a DSP core, `q <= 32` runs one assembly loop:
/// the compiler's loop spills half of its values; `cortex_m::dsp::lrn_channel`).
#[inline(always)]
pub fn rounded_channel(c: RoundedChannel<'_>) {
    let (table, q, zp_in, zp_out) = (c.table, c.q, c.zp_in, c.zp_out);
    let block = Channel {
        out: c.out,
        incoming: c.incoming,
        row: c.row,
        sums: c.sums,
    };
    // The code of a zero: `zp_out`, an int8 code here.
    let zero = zp_out as i8;
    if q >= 33 {
        channel(Rounded::<true>::new(table, q, zp_out), block, zp_in, zero);
        return;
    }
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    #[allow(unsafe_code)]
    // SAFETY: what `RoundedChannel` promises is what `lrn_channel` needs (`scale = 32 - q
    // <= 23` as `q >= 9`).
    unsafe {
        crate::kernels::cortex_m::dsp::lrn_channel(
            block.out,
            block.incoming,
            block.row,
            block.sums,
            table,
            rounded_shift(q).0,
            zp_in,
            zp_out,
        );
    }
    #[cfg(not(all(target_arch = "arm", feature = "dsp")))]
    channel(Rounded::<false>::new(table, q, zp_out), block, zp_in, zero);
}

/// The 32-bit arithmetic with a kernel set's loop for whole channels.
#[derive(Clone, Copy)]
struct Stepped<'a, S> {
    table: &'a [i32],
    q: u32,
    zp_out: i32,
    step: S,
}

impl<S: Fn(RoundedChannel<'_>) + Copy> Normalize for Stepped<'_, S> {
    /// One value (a window of one channel, or the code of a zero), through [`Rounded`].
    #[inline(always)]
    fn code(self, d: i32, s: u32) -> i8 {
        let (table, q, zp_out) = (self.table, self.q, self.zp_out);
        if q >= 33 {
            Rounded::<true>::new(table, q, zp_out).code(d, s)
        } else {
            Rounded::<false>::new(table, q, zp_out).code(d, s)
        }
    }

    #[inline(always)]
    fn channel(self, c: Channel<'_>, zp_in: i32, _zero: i8) {
        (self.step)(RoundedChannel {
            out: c.out,
            incoming: c.incoming,
            row: c.row,
            sums: c.sums,
            table: self.table,
            q: self.q,
            zp_in,
            zp_out: self.zp_out,
        });
    }
}

/// Normalizes `values` (`[C, H, W]` codes) in place, exactly as the definition does.
/// `Ok(false)`: an input zero point outside the int8 codes, or a table shorter than the
/// clamped size needs, and the definition ran.
#[inline(never)] // one symbol, for the profile and the disassembly
pub fn lrn_int8(
    values: &mut [i8],
    shape: Shape,
    spec: &LrnSpec,
    table: LrnTable<'_>,
    zero_points: ZeroPoints,
) -> Result<bool, Error> {
    lrn_int8_with(values, shape, spec, table, zero_points, rounded_channel)
}

/// [`lrn_int8`] with a kernel set's own loop for the channels of the 32-bit arithmetic:
/// `step` must compute a [`RoundedChannel`] as [`rounded_channel`] does.
#[inline(always)]
pub fn lrn_int8_with(
    values: &mut [i8],
    shape: Shape,
    spec: &LrnSpec,
    table: LrnTable<'_>,
    zero_points: ZeroPoints,
    step: impl Fn(RoundedChannel<'_>) + Copy,
) -> Result<bool, Error> {
    // Clamped again where it is used, as in the definition.
    let n = check_lrn(values.len(), shape, spec, table.table, table.shift)?
        .clamp(1, MAX_LRN_SIZE as usize);
    let (zp_in, zp_out) = (zero_points.input, zero_points.output);
    let q = table.shift;
    let steps_fit = table.steps_fit;
    let table = table.table;
    // The sums of `n` squares of codes minus an int8 zero point stay within the table the
    // unchecked reads rely on. A zero point outside the codes (never in a valid blob) or a
    // table shorter than this `n` needs (a size the check clamped) runs the definition.
    if !(-128..=127).contains(&zp_in) || table.len() < lrn_table_len(lrn_max_sum(n as u32)) {
        return super::super::reference::int8::lrn_in_place(
            values,
            shape,
            spec,
            table,
            q,
            zero_points,
        )
        .map(|()| false);
    }
    let (channels, plane) = (shape.c, shape.plane());
    let rounded = (9..=62).contains(&q)
        && (-128..=127).contains(&zp_out)
        && steps_fit.unwrap_or_else(|| lrn_steps_fit(table));
    if rounded {
        let stepped = Stepped {
            table,
            q,
            zp_out,
            step,
        };
        normalize(values, channels, plane, n, zp_in, stepped);
    } else {
        let definition = Definition {
            table,
            round: if q == 0 { 0 } else { 1i64 << (q - 1) },
            q,
            zp_out,
        };
        normalize(values, channels, plane, n, zp_in, definition);
    }
    Ok(true)
}

/// The blocked pass over `values` (`channels` planes of `plane` codes, `1 <= n <=
/// MAX_LRN_SIZE`, `zp_in` an int8 code).
#[inline(always)]
fn normalize<N: Normalize>(
    values: &mut [i8],
    channels: usize,
    plane: usize,
    n: usize,
    zp_in: i32,
    norm: N,
) {
    // A zero normalizes to the same code whatever the table says.
    let zero = norm.code(0, 0);
    let half = n / 2;
    if half == 0 {
        // The window is the value itself.
        for v in values.iter_mut() {
            let d = *v as i32 - zp_in;
            *v = if d == 0 {
                zero
            } else {
                norm.code(d, (d * d) as u32)
            };
        }
        return;
    }
    // Codes of channels past the last: their `d` is zero.
    let absent = [zp_in as i8; BLOCK];
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
        // The window of channel 0 without its last channel: channels 0..half (slots 0..half).
        for (c, row) in ring.iter_mut().enumerate().take(half.min(channels)) {
            let from = values.get(c * plane + start..c * plane + start + width);
            for ((r, s), &v) in row
                .iter_mut()
                .zip(&mut sums)
                .zip(from.into_iter().flatten())
            {
                let d = v as i32 - zp_in;
                *r = d as i16;
                *s += d * d;
            }
        }
        // Slot of the channel entering the window (c + half): the one leaving (c - half - 1)
        // had it.
        let mut enter = half;
        for c in 0..channels {
            let entering = c + half;
            // Channel c (still its input codes) lies before the entering one (half >= 1).
            let (head, tail) = values.split_at_mut((entering * plane).min(values.len()));
            let incoming = match tail.get(start..start + width) {
                Some(codes) if entering < channels => codes,
                _ => &absent[..width],
            };
            let (Some(out), Some(row)) = (
                head.get_mut(c * plane + start..c * plane + start + width),
                ring.get_mut(enter),
            ) else {
                break;
            };
            let (Some(row), Some(sums)) = (row.get_mut(..width), sums.get_mut(..width)) else {
                break;
            };
            let block = Channel {
                out,
                incoming,
                row,
                sums,
            };
            norm.channel(block, zp_in, zero);
            enter = if enter + 1 == n { 0 } else { enter + 1 };
        }
        start += width;
    }
}
