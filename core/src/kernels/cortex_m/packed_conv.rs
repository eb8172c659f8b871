//! The int8 convolution on the host's prepacked weights ([`crate::int8::packed`]), shared by
//! the Cortex-M kernels: im2col patches of pixel pairs (from a channels-last, zero-padded
//! copy of the input, or gathered straight from it), each tile of pixel pairs against every
//! output channel pair in 2x2 blocks (two channels x two pixels), and each output's
//! requantization. Only the block's multiply-accumulates differ from core to core: they are a
//! [`Block2x2`], `SMLAD` on cores with the DSP extension ([`super::dsp`]) and `MLA` on the
//! others ([`super::mla`]).
//!
//! Bit-exact with the definition by construction: the same integer sums, in another order
//! (integer addition is associative, and the contract's overflow bound holds for any order).

use super::scratch::Scratch;
use crate::geometry::ConvGeometry;
use crate::int8::packed::{packed_fits, padded_input_fits, PackedGeometry, MAX_PADDED_INPUT};
use crate::int8::requant::output_code;
use crate::int8::{QKernel, ZeroPoints};

/// The multiply-accumulates of a tile's 2x2 blocks.
pub(super) trait Block2x2 {
    /// For each pixel pair of the tile (`cols` holds `slots.len()` pairs of `2 * steps`
    /// words), the dot products over `steps` tap pairs of channels (0, 1) of `w` with pixels
    /// (0, 1), starting from the biases: `[c0 x p0, c0 x p1, c1 x p0, c1 x p1]` into the
    /// first four words of each slot. A word holds two taps (16 bits each) of one channel or
    /// pixel; `w` and `cols` alternate the block's two channels and two pixels word by word.
    fn tile(w: &[u32], cols: &[u32], steps: usize, bias: [i32; 2], slots: &mut [Slot]);
}

/// Words of the column buffer: a tile of pixel pairs' patches, at least one pair of
/// [`MAX_PACKED_TAPS`](crate::int8::packed::MAX_PACKED_TAPS) taps each.
const COLUMN_WORDS: usize = 4608;

/// Values (i16) of the small padded copy, for layers whose padded input fits it (every layer
/// of the micro net): 8 KiB of stack instead of 16 KiB. The Cortex-M4F build's stack peak
/// for the micro net fell from 54,200 to 46,024 bytes with it. (A smaller column buffer
/// would save more, but cost the micro net's convolutions 0.04 instructions per MAC on the
/// DSP kernel at 2048 words, 0.12 on the `MLA` kernel at 1024.)
const SMALL_PADDED_INPUT: usize = 4096;

/// Where the prepacked kernel's patches come from: they are the same values, in the packed
/// weights' `(ky, kx, ic)` tap order, `(q - zp)` and zeros for the padding, however built.
trait PatchSource {
    /// Prepares group `g`'s input (`group_input`: its channels' planes), before its tiles.
    fn begin_group(&mut self, group_input: &[i8]);
    /// Writes the patches of pixels `pixels[0]` and `pixels[1]` into one pixel pair's columns:
    /// tap `u` of pixel `lane` at `4 * (u / 2) + 2 * lane + u % 2`. `None` if a buffer is not
    /// laid out as expected.
    fn fill_pair(&self, group_input: &[i8], pixels: [usize; 2], columns: &mut [i16]) -> Option<()>;
}

/// A layer's sizes as both patch sources need them.
#[derive(Clone, Copy)]
struct PatchShape {
    k: usize,
    cin: usize,
    s: usize,
    p: usize,
    in_h: usize,
    in_w: usize,
    out_w: usize,
    zp: i32,
}

/// Patches from a channels-last, zero-padded copy of the group's input in a stack buffer:
/// whole words for even channel counts, a gather table for small odd ones.
struct PaddedCopy<'b> {
    shape: PatchShape,
    padded: &'b mut [i16],
    gather: [(u32, u32); MAX_GATHER_TAPS],
    gather_taps: usize,
    steps: usize,
}

impl PatchSource for PaddedCopy<'_> {
    fn begin_group(&mut self, group_input: &[i8]) {
        let PatchShape {
            cin,
            p,
            in_h,
            in_w,
            zp,
            ..
        } = self.shape;
        let padded_w = in_w + 2 * p;
        for (ic, plane) in group_input
            .chunks_exact((in_h * in_w).max(1))
            .take(cin)
            .enumerate()
        {
            for (y, row) in plane.chunks_exact(in_w.max(1)).enumerate() {
                let mut at = ((y + p) * padded_w + p) * cin + ic;
                for &q in row {
                    if let Some(d) = self.padded.get_mut(at) {
                        *d = (q as i32 - zp) as i16;
                    }
                    at += cin;
                }
            }
        }
    }

    fn fill_pair(&self, _: &[i8], pixels: [usize; 2], columns: &mut [i16]) -> Option<()> {
        let PatchShape {
            k,
            cin,
            s,
            p,
            in_w,
            out_w,
            ..
        } = self.shape;
        // Nonzero by construction; `max(1)` lets the optimizer see it (no panic path).
        let (out_w, padded_w, run) = (out_w.max(1), in_w + 2 * p, k * cin);
        let origin = |n: usize| ((n / out_w) * s * padded_w + (n % out_w) * s) * cin;
        let origins = [origin(pixels[0]), origin(pixels[1])];
        let padded = &*self.padded;
        if cin % 2 == 0 {
            // Even channels: patch rows and their starts are whole words.
            let src = bytemuck::try_cast_slice::<i16, u32>(padded.get(..padded.len() & !1)?);
            let cols = bytemuck::try_cast_slice_mut::<i16, u32>(columns.get_mut(..4 * self.steps)?);
            let (Ok(src), Ok(cols)) = (src, cols) else {
                return None;
            };
            let origins = [origins[0] / 2, origins[1] / 2];
            im2col_pair_words(src, cols, origins, k, run / 2, padded_w * cin / 2);
        } else if self.gather_taps > 0 {
            let table = self.gather.get(..self.gather_taps)?;
            im2col_pair_gather(padded, columns, origins, table);
        } else {
            im2col_pair_values(padded, columns, origins, k, run, padded_w * cin);
        }
        Some(())
    }
}

/// Patches gathered straight from the input, tap by tap: for inputs whose padded copy exceeds
/// [`MAX_PADDED_INPUT`] (the paper net's layers). A few instructions per tap and pixel, which
/// the patch's reuse by every output channel pair makes small against the MACs.
struct DirectGather {
    shape: PatchShape,
}

impl PatchSource for DirectGather {
    fn begin_group(&mut self, _: &[i8]) {}

    fn fill_pair(&self, group_input: &[i8], pixels: [usize; 2], columns: &mut [i16]) -> Option<()> {
        let PatchShape {
            k,
            cin,
            s,
            p,
            in_h,
            in_w,
            out_w,
            zp,
        } = self.shape;
        // Nonzero by construction; `max(1)` lets the optimizer see it (no panic path).
        let (out_w, in_plane) = (out_w.max(1), in_h * in_w);
        for (lane, n) in pixels.into_iter().enumerate() {
            let (oy, ox) = (n / out_w, n % out_w);
            for ky in 0..k {
                let iy = (oy * s + ky).wrapping_sub(p);
                for kx in 0..k {
                    let ix = (ox * s + kx).wrapping_sub(p);
                    let inside = iy < in_h && ix < in_w;
                    let u0 = (ky * k + kx) * cin;
                    let source = group_input.get(iy.wrapping_mul(in_w).wrapping_add(ix)..);
                    for ic in 0..cin {
                        let v = match source {
                            Some(src) if inside => src
                                .get(ic * in_plane)
                                .map_or(0, |&q| (q as i32 - zp) as i16),
                            _ => 0,
                        };
                        let u = u0 + ic;
                        if let Some(d) = columns.get_mut(4 * (u / 2) + 2 * lane + u % 2) {
                            *d = v;
                        }
                    }
                }
            }
        }
        Some(())
    }
}

/// The convolution with weights prepacked by the host ([`crate::int8::packed`]): a 2x2 block
/// (two output channels x two output pixels) per pass over the patch, its multiply-accumulates
/// by `B`. Patches come from a channels-last copy of the input where it fits the stack buffer,
/// straight from the input otherwise. `None` when the kernel has no prepacked weights or they
/// are not laid out for the layer (the caller then runs another kernel). Not inlined: its
/// stack buffers must not add to the caller's frame.
#[inline(never)]
pub(super) fn conv2d_packed<B: Block2x2>(
    g: &ConvGeometry,
    input: &[i8],
    kernel: &QKernel<'_>,
    zero_points: ZeroPoints,
    output: &mut [i8],
) -> Option<()> {
    let packed = kernel.packed?;
    let (spec, in_shape) = (g.spec(), g.input());
    let geometry = PackedGeometry::new(spec, in_shape)?;
    if !packed_fits(spec, in_shape) || packed.len() != geometry.len() {
        return None;
    }
    let shape = PatchShape {
        k: geometry.kernel,
        cin: geometry.cin_group.max(1),
        s: g.stride().get(),
        p: g.padding(),
        in_h: in_shape.h,
        in_w: in_shape.w,
        out_w: g.output().w.max(1),
        zp: zero_points.input,
    };
    let args = (g, &geometry, input, kernel, packed, zero_points);
    if !padded_input_fits(spec, in_shape) {
        return run_packed::<B>(args, output, &mut DirectGather { shape });
    }
    let padded_len = shape.cin * (shape.in_h + 2 * shape.p) * (shape.in_w + 2 * shape.p);
    if padded_len <= SMALL_PADDED_INPUT {
        packed_with_copy::<B, SMALL_PADDED_INPUT>(args, shape, output)
    } else {
        packed_with_copy::<B, MAX_PADDED_INPUT>(args, shape, output)
    }
}

/// What every call of [`run_packed`] passes through unchanged: the geometry, its packed
/// layout, the input, the kernel, its prepacked weights, the zero points.
type PackedArgs<'a, 'k> = (
    &'a ConvGeometry,
    &'a PackedGeometry,
    &'a [i8],
    &'a QKernel<'k>,
    &'a [i16],
    ZeroPoints,
);

/// [`run_packed`] with a [`PaddedCopy`] of at most `PADDED` values: its buffer in this
/// function's frame, so that only this path has it on the stack.
#[inline(never)]
fn packed_with_copy<B: Block2x2, const PADDED: usize>(
    args: PackedArgs<'_, '_>,
    shape: PatchShape,
    output: &mut [i8],
) -> Option<()> {
    let geometry = args.1;
    let (cin, run, padded_w) = (shape.cin, shape.k * shape.cin, shape.in_w + 2 * shape.p);
    let mut padded_scratch = Scratch::<i16, PADDED>::new();
    // The border stays zero, which is `q - zp` of padding.
    let padded = padded_scratch.zeroed_prefix(cin * (shape.in_h + 2 * shape.p) * padded_w);
    // Odd channel counts: where each tap of a patch comes from and goes to, built once.
    let mut gather = [(0u32, 0u32); MAX_GATHER_TAPS];
    let gather_taps = if cin % 2 == 1 && geometry.taps <= MAX_GATHER_TAPS {
        for (u, entry) in gather.iter_mut().enumerate().take(geometry.taps) {
            let (ky, within) = (u / run.max(1), u % run.max(1));
            let offset = ky * padded_w * cin + within;
            *entry = (offset as u32, (4 * (u / 2) + u % 2) as u32);
        }
        geometry.taps
    } else {
        0
    };
    let mut source = PaddedCopy {
        shape,
        padded,
        gather,
        gather_taps,
        steps: geometry.taps.div_ceil(2),
    };
    run_packed::<B>(args, output, &mut source)
}

/// The prepacked kernel's loop over groups and tiles of pixel pairs: the tile's patches from
/// `source`, then for every channel pair the 2x2 blocks ([`Block2x2::tile`]) and each
/// output's requantization. Not inlined: its column buffer is on the stack only while it runs.
#[inline(never)]
fn run_packed<B: Block2x2>(
    (g, geometry, input, kernel, packed, zero_points): PackedArgs<'_, '_>,
    output: &mut [i8],
    source: &mut impl PatchSource,
) -> Option<()> {
    let in_plane = g.input().plane();
    let pixels = g.output().plane();
    // Tap pairs the loop runs per pixel pair: the layout's padding beyond them is zeros.
    let steps = geometry.taps.div_ceil(2);
    let weights: &[u32] = bytemuck::try_cast_slice(packed).ok()?;
    let pair_words = geometry.padded_taps; // per channel pair: padded_taps / 2 steps x 2 words
    let (cin, pairs) = (geometry.cin_group, geometry.pairs_per_group());
    // Pixel pairs im2col'd at once: each channel pair's set-up is paid once per tile. No more
    // than the layer has: a fused chain's calls are one output row each, and the column
    // buffer is zeroed as far as the tile reaches.
    let tile = (COLUMN_WORDS / (2 * steps).max(1))
        .min(pixels.div_ceil(2))
        .clamp(1, MAX_TILE);
    let mut column_scratch = Scratch::<i16, { 2 * COLUMN_WORDS }>::new();
    // Zeroed once: taps beyond the patch (an odd count's last lane) stay zero.
    let columns = column_scratch.zeroed_prefix(4 * tile * steps);
    let mut slots = [Slot::default(); MAX_TILE];
    for g in 0..geometry.groups {
        let group_input = input.get(g * cin * in_plane..).unwrap_or(&[]);
        source.begin_group(group_input);
        let group_weights = weights
            .get(g * pairs * pair_words..(g + 1) * pairs * pair_words)
            .unwrap_or(&[]);
        let group_outputs = output
            .get_mut(g * geometry.cout_group * pixels..(g + 1) * geometry.cout_group * pixels)
            .unwrap_or(&mut []);
        let pixel_pairs = pixels.div_ceil(2);
        for tile_start in (0..pixel_pairs).step_by(tile) {
            let tile_pairs = tile.min(pixel_pairs - tile_start);
            for t in 0..tile_pairs {
                let first = 2 * (tile_start + t);
                let second = (first + 1).min(pixels.saturating_sub(1));
                let pair_columns = columns.get_mut(t * 4 * steps..).unwrap_or(&mut []);
                source.fill_pair(group_input, [first, second], pair_columns)?;
            }
            let cols: &[u32] = bytemuck::try_cast_slice(&*columns).ok()?;
            let cols = cols.get(..tile_pairs * 2 * steps).unwrap_or(&[]);
            let slots = slots.get_mut(..tile_pairs).unwrap_or(&mut []);
            for (pair, (w, planes)) in group_weights
                .chunks_exact(pair_words.max(1))
                .zip(group_outputs.chunks_mut((2 * pixels).max(1)))
                .enumerate()
            {
                let o0 = g * geometry.cout_group + 2 * pair;
                let (plane0, plane1) = planes.split_at_mut(pixels.min(planes.len()));
                let o1 = if plane1.is_empty() { o0 } else { o0 + 1 };
                let (Some(r0), Some(r1)) = (
                    Requant::of(kernel, o0, zero_points.output),
                    Requant::of(kernel, o1, zero_points.output),
                ) else {
                    continue;
                };
                B::tile(w, cols, steps, [r0.bias, r1.bias], slots);
                let start = 2 * tile_start;
                store_tile(plane0.get_mut(start..).unwrap_or(&mut []), r0, slots, 0);
                store_tile(plane1.get_mut(start..).unwrap_or(&mut []), r1, slots, 2);
            }
        }
    }
    Some(())
}

/// One output channel's requantization, prepared once per tile. For `r >= 33`, the usual
/// case, rounding half up `(acc * m) >> r` only involves the high word of the product:
/// `(hi + 2^(r-33)) >> (r - 32)` equals it (`hi` is at most 2^30 in magnitude: no overflow),
/// which compiles to `SMMLA`, `ASR`, `ADD`, `SSAT`. Other shifts take [`output_code`].
#[derive(Clone, Copy)]
struct Requant {
    bias: i32,
    multiplier: i32,
    shift: i32,
    zp_out: i32,
    /// `2^(r-33)` and `r - 32` where `r >= 33`; `shift_high == 0` marks the general route.
    rounding: i32,
    shift_high: u32,
}

impl Requant {
    #[inline(always)]
    fn of(kernel: &QKernel<'_>, channel: usize, zp_out: i32) -> Option<Self> {
        let shift = *kernel.shift.get(channel)?;
        let fast = (33..=62).contains(&shift);
        Some(Requant {
            bias: *kernel.bias.get(channel)?,
            multiplier: *kernel.multiplier.get(channel)?,
            shift,
            zp_out,
            rounding: if fast { 1 << (shift - 33) } else { 0 },
            shift_high: if fast { (shift - 32) as u32 } else { 0 },
        })
    }

    #[inline(always)]
    fn apply(&self, acc: i32) -> i8 {
        if self.shift_high != 0 {
            let hi = ((acc as i64 * self.multiplier as i64) >> 32) as i32;
            let v = (hi + self.rounding) >> (self.shift_high & 31);
            (v + self.zp_out).clamp(i8::MIN as i32, i8::MAX as i32) as i8
        } else {
            output_code(acc, self.multiplier, self.shift, self.zp_out)
        }
    }
}

/// Requantizes one channel's sums of a tile (`lane` 0 or 2 of each slot) into `out`, which
/// starts at the tile's first pixel; a lone last pixel (paired with itself) has no twin slot
/// in `out`, so only its first sum is stored.
#[inline(always)]
fn store_tile(out: &mut [i8], requant: Requant, slots: &[Slot], lane: usize) {
    let lane = lane & 2;
    let whole = out.len() / 2;
    let (pairs, rest) = out.split_at_mut((2 * whole.min(slots.len())).min(out.len()));
    if requant.shift_high != 0 {
        let (m, rounding, shift, zp) = (
            requant.multiplier as i64,
            requant.rounding,
            requant.shift_high & 31,
            requant.zp_out,
        );
        let apply = |acc: i32| {
            let hi = ((acc as i64 * m) >> 32) as i32;
            (((hi + rounding) >> shift) + zp).clamp(i8::MIN as i32, i8::MAX as i32) as i8
        };
        for (q, slot) in pairs.chunks_exact_mut(2).zip(slots) {
            let (a, b) = (slot.0[lane], slot.0[lane + 1]);
            q[0] = apply(a);
            q[1] = apply(b);
        }
    } else {
        for (q, slot) in pairs.chunks_exact_mut(2).zip(slots) {
            q[0] = requant.apply(slot.0[lane]);
            q[1] = requant.apply(slot.0[lane + 1]);
        }
    }
    if let (Some(q), Some(slot)) = (rest.first_mut(), slots.get(whole)) {
        *q = requant.apply(slot.0[lane]);
    }
}

/// Writes two pixels' patches into one pixel pair's `columns` (words), when every patch row
/// is whole words (even channels per group): for each kernel row, `run` words of `src` from
/// `origin + ky * row_stride` (in words), interleaved word by word.
#[inline(always)]
fn im2col_pair_words(
    src: &[u32],
    columns: &mut [u32],
    origins: [usize; 2],
    k: usize,
    run: usize,
    row_stride: usize,
) {
    for ky in 0..k {
        let (a, b) = (origins[0] + ky * row_stride, origins[1] + ky * row_stride);
        let (Some(src0), Some(src1), Some(dst)) = (
            src.get(a..a + run),
            src.get(b..b + run),
            columns.get_mut(2 * ky * run..2 * (ky + 1) * run),
        ) else {
            return;
        };
        // Two words of each pixel per turn (the rows of 3x3 kernels are even in words).
        let (pairs0, pairs1) = (src0.chunks_exact(2), src1.chunks_exact(2));
        let (rest0, rest1) = (pairs0.remainder(), pairs1.remainder());
        let mut quads = dst.chunks_exact_mut(4);
        for ((d, a), b) in (&mut quads).zip(pairs0).zip(pairs1) {
            if let ([d0, d1, d2, d3], [a0, a1], [b0, b1]) = (d, a, b) {
                (*d0, *d1, *d2, *d3) = (*a0, *b0, *a1, *b1);
            }
        }
        if let ([d0, d1, ..], [a0], [b0]) = (quads.into_remainder(), rest0, rest1) {
            (*d0, *d1) = (*a0, *b0);
        }
    }
}

/// Largest patch the gather table of [`im2col_pair_gather`] covers.
const MAX_GATHER_TAPS: usize = 128;

/// Writes two pixels' patches into one pixel pair's `columns` (16-bit values) through a table
/// of (offset in the padded input from the pixel's origin, place in the pair's columns) per
/// tap: the route for odd channel counts, whose patch rows are not whole words.
#[inline(always)]
fn im2col_pair_gather(
    padded: &[i16],
    columns: &mut [i16],
    origins: [usize; 2],
    table: &[(u32, u32)],
) {
    let (Some(src0), Some(src1)) = (padded.get(origins[0]..), padded.get(origins[1]..)) else {
        return;
    };
    for &(offset, place) in table {
        let (offset, place) = (offset as usize, place as usize);
        if let (Some(&v0), Some(&v1)) = (src0.get(offset), src1.get(offset)) {
            if let Some([d0, _, d1, ..]) = columns.get_mut(place..place + 3) {
                *d0 = v0;
                *d1 = v1;
            }
        }
    }
}

/// Writes two pixels' patches into one pixel pair's `columns`, value by value: the route for
/// odd channel counts whose patch exceeds the gather table.
#[inline(always)]
fn im2col_pair_values(
    padded: &[i16],
    columns: &mut [i16],
    origins: [usize; 2],
    k: usize,
    run: usize,
    row_stride: usize,
) {
    for ky in 0..k {
        for (lane, origin) in origins.into_iter().enumerate() {
            let start = origin + ky * row_stride;
            let values = padded.get(start..start + run).unwrap_or(&[]);
            for (u, &v) in (ky * run..).zip(values) {
                if let Some(d) = columns.get_mut(4 * (u / 2) + 2 * lane + u % 2) {
                    *d = v;
                }
            }
        }
    }
}

/// Pixel pairs per tile at most (the tile's accumulators live on the stack).
const MAX_TILE: usize = 64;

/// One pixel pair of a tile: before [`Block2x2::tile`], where the weights start, the loop
/// passes, the two channels' biases, how many pairs are left and where the first pass enters
/// the loop; after it, the four sums.
#[derive(Clone, Copy, Default)]
#[repr(C, align(8))]
pub(super) struct Slot(pub(super) [i32; 8]);

/// [`Block2x2::tile`] in Rust: what the assembly loops compute, for the host and for cores
/// without them (wrapping, as `SMLAD` and `MLA` do; the contract's bound keeps the sums in
/// range).
// Unused only where both blocks are assembly: Thumb-2 with `dsp`.
#[cfg(not(all(thumb2, target_arch = "arm", feature = "dsp")))]
#[inline(always)]
pub(super) fn portable_tile(
    w: &[u32],
    cols: &[u32],
    steps: usize,
    bias: [i32; 2],
    slots: &mut [Slot],
) {
    let halves = |x: u32| (x as i16 as i32, (x >> 16) as i16 as i32);
    let dot = |acc: i32, a: u32, b: u32| {
        let ((a0, a1), (b0, b1)) = (halves(a), halves(b));
        acc.wrapping_add(a0.wrapping_mul(b0))
            .wrapping_add(a1.wrapping_mul(b1))
    };
    for (slot, pair_cols) in slots.iter_mut().zip(cols.chunks_exact((2 * steps).max(1))) {
        let [mut a00, mut a01, mut a10, mut a11] = [bias[0], bias[0], bias[1], bias[1]];
        for (wp, cp) in w.chunks_exact(2).zip(pair_cols.chunks_exact(2)).take(steps) {
            a00 = dot(a00, wp[0], cp[0]);
            a01 = dot(a01, wp[0], cp[1]);
            a10 = dot(a10, wp[1], cp[0]);
            a11 = dot(a11, wp[1], cp[1]);
        }
        slot.0[..4].copy_from_slice(&[a00, a01, a10, a11]);
    }
}

/// Fills the slots for an assembly [`Block2x2::tile`] whose loop runs blocks of eight
/// pair-steps of `step_bytes` bytes each: the weights' start, the passes, the biases, the
/// pixel pairs left and the first pass's entry offset into the block (Duff's device: a patch
/// that is not a multiple of eight pair-steps enters part-way, so no step is spent on
/// padding). Returns the steps of that partial first pass (0: every pass is whole), or `None`
/// (and does nothing) unless `w` and `cols` hold what the loop reads.
#[cfg(any(thumb2, all(target_arch = "arm", feature = "dsp")))]
pub(super) fn prepare_slots(
    w: &[u32],
    cols: &[u32],
    steps: usize,
    bias: [i32; 2],
    slots: &mut [Slot],
    step_bytes: usize,
) -> Option<usize> {
    let pairs = slots.len();
    if steps == 0 || pairs == 0 || w.len() < 2 * steps || cols.len() < 2 * steps * pairs {
        return None;
    }
    let (full, partial) = (steps / 8, steps % 8);
    let passes = full + usize::from(partial > 0);
    let entry = if partial > 0 {
        (8 - partial) * step_bytes
    } else {
        0
    };
    for (i, slot) in slots.iter_mut().enumerate() {
        slot.0[0] = w.as_ptr() as i32;
        slot.0[1] = passes as i32;
        slot.0[2] = bias[0];
        slot.0[3] = bias[1];
        slot.0[4] = (pairs - i) as i32;
        slot.0[5] = entry as i32;
    }
    Some(partial)
}

/// The assembly loop of a [`Block2x2::tile`] over the slots that [`prepare_slots`] filled:
/// per pixel pair, the accumulators start at the biases, then `passes` runs of a block of
/// eight `$step!()`s (each one pair-step: two taps of the 2x2 block, advancing `{wp}` and
/// `{cp}` by 8 bytes), then the four sums go to the slot's first words. With a partial first
/// pass, each pixel pair's first pass branches into the block at the slot's entry offset
/// (bit 0 set for `BX`: Thumb state). The step may use `{w0}`, `{w1}`, `{c0}`, `{c1}` freely and must add
/// its products to `{a00}` (channel 0 x pixel 0), `{a01}`, `{a10}`, `{a11}`.
///
/// Safety (the caller's): the slots are 8-aligned and 32 bytes each; every pass reads 8
/// bytes of weights and 8 of columns per step from the slot's weight pointer and from the
/// running column pointer, which [`prepare_slots`]'s checks keep in bounds when the step
/// reads nothing else.
#[cfg(any(thumb2, all(target_arch = "arm", feature = "dsp")))]
macro_rules! tile_loop {
    // `$partial`: what `prepare_slots` returned; a partial first pass enters the block.
    ($slots:expr, $cols:expr, $step:ident, $partial:expr) => {
        if $partial > 0 {
            $crate::kernels::cortex_m::packed_conv::tile_loop!(@entry $slots, $cols, $step)
        } else {
            $crate::kernels::cortex_m::packed_conv::tile_loop!(@whole $slots, $cols, $step)
        }
    };
    (@entry $slots:expr, $cols:expr, $step:ident) => {
        $crate::kernels::cortex_m::packed_conv::tile_loop!(@asm $slots, $cols, $step, [
            "ldr {w0}, [{fr}, #20]",
            "adr.w {w1}, 2f",
            "add {w1}, {w1}, {w0}",
            "orr {w1}, {w1}, #1",
            "bx {w1}"
        ])
    };
    (@whole $slots:expr, $cols:expr, $step:ident) => {
        $crate::kernels::cortex_m::packed_conv::tile_loop!(@asm $slots, $cols, $step, [])
    };
    (@asm $slots:expr, $cols:expr, $step:ident, [$($entry:literal),*]) => {
        core::arch::asm!(
            "1:",
            "ldrd {wp}, {n}, [{fr}]",
            "ldrd {a00}, {a10}, [{fr}, #8]",
            "mov {a01}, {a00}",
            "mov {a11}, {a10}",
            $($entry,)*
            ".p2align 2",
            "2:",
            $step!(), $step!(), $step!(), $step!(), $step!(), $step!(), $step!(), $step!(),
            "subs {n}, {n}, #1",
            "bne 2b",
            "ldr {n}, [{fr}, #16]",
            "strd {a00}, {a01}, [{fr}]",
            "strd {a10}, {a11}, [{fr}, #8]",
            "add {fr}, {fr}, #32",
            "subs {n}, {n}, #1",
            "bne 1b",
            fr = inout(reg) $slots.as_mut_ptr() => _,
            cp = inout(reg) $cols.as_ptr() => _,
            wp = out(reg) _,
            n = out(reg) _,
            a00 = out(reg) _,
            a01 = out(reg) _,
            a10 = out(reg) _,
            a11 = out(reg) _,
            w0 = out(reg) _,
            w1 = out(reg) _,
            c0 = out(reg) _,
            c1 = out(reg) _,
            options(nostack),
        )
    };
}
#[cfg(any(thumb2, all(target_arch = "arm", feature = "dsp")))]
pub(super) use tile_loop;
