//! The int8 convolution and fully connected layer on `SMLAD` (cores with the DSP extension):
//! dot products of packed 16-bit pairs, two multiply-accumulates per instruction. With the
//! host's prepacked weights the convolution is `packed_conv`'s, its 2x2 blocks on `SMLAD`
//! (`Smlad`); without them, each output's im2col patch against two channels' int8 weights.
//!
//! Bit-exact with the definition by construction: they compute the same integer sums
//! (integer addition is associative, and the contract's overflow bound holds for any order).
//! The instructions are reached through [`sxtb16`], [`sxtb16_ror8`] and [`smlad`]: inline
//! assembly when building for ARM with the `dsp` feature (enable it only for cores with the
//! DSP extension: Cortex-M4, M7, M33...), exact portable definitions elsewhere, so the host
//! tests run this very code against the definition, and the QEMU test runs it with the
//! real instructions.

use super::super::reference::int8 as definition;
use super::super::KernelPath;
use super::packed_conv::{self, Block2x2, Slot};
use super::scratch::Scratch;
use crate::error::Error;
use crate::geometry::ConvGeometry;
use crate::int8::requant::output_code;
use crate::int8::{QKernel, ZeroPoints};

/// Largest patch (input channels per group x kernel area) the stack buffer holds; larger
/// convolutions use the generic kernel. 4608 covers torchvision's conv4 (384 x 3 x 3) with
/// room to spare (9 KiB of stack).
pub const MAX_PATCH: usize = 4608;

/// Largest input of a fully connected layer the DSP kernel widens on its stack (18 KiB):
/// 9216 is the paper's and torchvision's fc6. Larger layers use the generic kernel.
pub const MAX_LINEAR_INPUT: usize = 9216;

/// Sign-extends bytes 0 and 2 of `x` into two 16-bit lanes.
#[inline(always)]
pub fn sxtb16(x: u32) -> u32 {
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    #[allow(unsafe_code)]
    {
        let out: u32;
        // SAFETY: a register-only instruction of the DSP extension.
        unsafe {
            core::arch::asm!("sxtb16 {0}, {1}", out(reg) out, in(reg) x, options(pure, nomem, nostack))
        };
        out
    }
    #[cfg(not(all(target_arch = "arm", feature = "dsp")))]
    {
        let lo = (x as u8 as i8 as i16) as u16 as u32;
        let hi = ((x >> 16) as u8 as i8 as i16) as u16 as u32;
        lo | (hi << 16)
    }
}

/// Sign-extends bytes 1 and 3 of `x` into two 16-bit lanes (`SXTB16` with `ROR #8`).
#[inline(always)]
pub fn sxtb16_ror8(x: u32) -> u32 {
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    #[allow(unsafe_code)]
    {
        let out: u32;
        // SAFETY: a register-only instruction of the DSP extension.
        unsafe {
            core::arch::asm!("sxtb16 {0}, {1}, ror #8", out(reg) out, in(reg) x, options(pure, nomem, nostack))
        };
        out
    }
    #[cfg(not(all(target_arch = "arm", feature = "dsp")))]
    {
        sxtb16(x.rotate_right(8))
    }
}

/// `acc + lo(a) * lo(b) + hi(a) * hi(b)` on signed 16-bit lanes (wrapping, as `SMLAD`).
#[inline(always)]
pub fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    #[allow(unsafe_code)]
    {
        let out: i32;
        // SAFETY: a register-only instruction of the DSP extension.
        unsafe {
            core::arch::asm!("smlad {0}, {1}, {2}, {3}", out(reg) out, in(reg) a, in(reg) b, in(reg) acc, options(pure, nomem, nostack))
        };
        out
    }
    #[cfg(not(all(target_arch = "arm", feature = "dsp")))]
    {
        let (a0, a1) = (a as u16 as i16 as i32, (a >> 16) as u16 as i16 as i32);
        let (b0, b1) = (b as u16 as i16 as i32, (b >> 16) as u16 as i16 as i32);
        acc.wrapping_add(a0 * b0).wrapping_add(a1 * b1)
    }
}

/// The per-byte signed maximum of two words of four int8 codes: `SSUB8` sets each byte's
/// GE flag where `a >= b`, `SEL` takes those bytes from `a` and the others from `b`.
#[inline(always)]
pub fn max_i8x4(a: u32, b: u32) -> u32 {
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    #[allow(unsafe_code)]
    {
        let out: u32;
        // SAFETY: register-only instructions of the DSP extension; the GE flags they use
        // are flags, which the block may change (no `preserves_flags`).
        unsafe {
            core::arch::asm!(
                "ssub8 {t}, {a}, {b}",
                "sel {out}, {a}, {b}",
                a = in(reg) a,
                b = in(reg) b,
                t = out(reg) _,
                out = lateout(reg) out,
                options(pure, nomem, nostack),
            )
        };
        out
    }
    #[cfg(not(all(target_arch = "arm", feature = "dsp")))]
    {
        let (a, b) = (a.to_le_bytes(), b.to_le_bytes());
        u32::from_le_bytes(core::array::from_fn(|i| (a[i] as i8).max(b[i] as i8) as u8))
    }
}

/// Four codes as a word (a possibly unaligned `LDR`, which ARMv7E-M allows in RAM and flash).
#[inline(always)]
fn word(bytes: &[i8]) -> u32 {
    match *bytes {
        [a, b, c, d, ..] => u32::from_le_bytes([a as u8, b as u8, c as u8, d as u8]),
        _ => 0,
    }
}

/// Stores a word's four codes into `bytes` (at least four long).
#[inline(always)]
fn store_word(bytes: &mut [i8], w: u32) {
    for (b, v) in bytes.iter_mut().zip(w.to_le_bytes()) {
        *b = v as i8;
    }
}

/// int8 ReLU in place ([`definition::relu_in_place`]): each code below the zero point
/// becomes it, four codes per `SSUB8`/`SEL` pair.
pub fn relu_int8(values: &mut [i8], zero_point: i32) {
    let zp = crate::int8::requant::saturate(zero_point as i64);
    let floor = u32::from_le_bytes([zp as u8; 4]);
    let mut words = values.chunks_exact_mut(4);
    for w in &mut words {
        store_word(w, max_i8x4(word(w), floor));
    }
    for v in words.into_remainder() {
        *v = (*v).max(zp);
    }
}

/// `columns[x] = max(columns[x], a[x], b[x])` (`b`: the window's next row, if any), four
/// columns per word: the int8 max pool's column pass
/// ([`blocked::max_pool_int8_with`](super::super::blocked::max_pool_int8_with)).
pub fn fold_rows(columns: &mut [i8], a: &[i8], b: Option<&[i8]>) {
    let n = columns
        .len()
        .min(a.len())
        .min(b.map_or(usize::MAX, <[i8]>::len));
    let (Some(columns), Some(a)) = (columns.get_mut(..n), a.get(..n)) else {
        return;
    };
    let mut cw = columns.chunks_exact_mut(4);
    let mut aw = a.chunks_exact(4);
    match b.and_then(|b| b.get(..n)) {
        Some(b) => {
            let mut bw = b.chunks_exact(4);
            for ((c, x), y) in (&mut cw).zip(&mut aw).zip(&mut bw) {
                store_word(c, max_i8x4(max_i8x4(word(c), word(x)), word(y)));
            }
            for ((c, &x), &y) in cw
                .into_remainder()
                .iter_mut()
                .zip(aw.remainder())
                .zip(bw.remainder())
            {
                *c = (*c).max(x).max(y);
            }
        }
        None => {
            for (c, x) in (&mut cw).zip(&mut aw) {
                store_word(c, max_i8x4(word(c), word(x)));
            }
            for (c, &x) in cw.into_remainder().iter_mut().zip(aw.remainder()) {
                *c = (*c).max(x);
            }
        }
    }
}

/// A patch of `(q - zp)` values laid out for [`dot2`]: for taps `4q..4q + 4`, word `2q` holds
/// taps `4q` and `4q + 2`, word `2q + 1` taps `4q + 1` and `4q + 3` (the lanes `SXTB16`
/// makes of four weight bytes); the last `len % 4` taps are kept apart in `tail`.
struct Patch {
    halves: Halves,
    tail: [i32; 3],
    len: usize,
}

/// The patch's 16-bit values, word-aligned so that pairs load as one word.
#[repr(C, align(4))]
struct Halves([u16; MAX_PATCH]);

/// Where tap `r` of a group of four goes among the group's halfwords: words `[0, 2]`, `[1, 3]`.
const LANE: [usize; 4] = [0, 2, 1, 3];

impl Patch {
    #[inline(always)]
    fn set(&mut self, tap: usize, d: i32) {
        let body = self.len & !3;
        if tap < body {
            if let Some(h) = self.halves.0.get_mut((tap & !3) | LANE[tap & 3]) {
                *h = d as u16;
            }
        } else if let Some(t) = self.tail.get_mut(tap - body) {
            *t = d;
        }
    }

    /// The packed words of the first `quads` groups.
    fn words(&self, quads: usize) -> &[u32] {
        let halves = self.halves.0.get(..4 * quads).unwrap_or(&[]);
        bytemuck::try_cast_slice(halves).unwrap_or(&[])
    }
}

/// Two output channels' dot products with one patch: the patch words are loaded once.
#[inline(always)]
fn dot2(patch: &Patch, w0: &[i8], w1: &[i8]) -> (i32, i32) {
    let quads = (patch.len / 4).min(w0.len() / 4).min(w1.len() / 4);
    let words = patch.words(quads);
    let (mut a0, mut a1) = dot2_quads(words, w0, w1, quads);
    let done = 4 * quads;
    for ((&d, &x0), &x1) in patch
        .tail
        .iter()
        .zip(w0.get(done..).unwrap_or(&[]))
        .zip(w1.get(done..).unwrap_or(&[]))
    {
        a0 += d * x0 as i32;
        a1 += d * x1 as i32;
    }
    (a0, a1)
}

/// The first `quads` groups of four taps: on a DSP core one hand-scheduled loop of 13
/// instructions per 8 multiply-accumulates (the compiler's version spills its accumulators).
#[cfg(all(target_arch = "arm", feature = "dsp"))]
#[allow(unsafe_code)]
#[inline(always)]
fn dot2_quads(words: &[u32], w0: &[i8], w1: &[i8], quads: usize) -> (i32, i32) {
    let (mut a0, mut a1) = (0i32, 0i32);
    if quads == 0 || words.len() < 2 * quads || w0.len() < 4 * quads || w1.len() < 4 * quads {
        return (a0, a1);
    }
    // SAFETY: the loop reads `2 * quads` words from `words` and `4 * quads` bytes from `w0`
    // and `w1`, all checked in bounds above; it writes only the named registers. `ldr` of the
    // weights may be unaligned, which ARMv7E-M allows for normal memory; `words` is
    // word-aligned for `ldrd`.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldrd {p0}, {p1}, [{pp}], #8",
            "ldr {x0}, [{w0}], #4",
            "ldr {x1}, [{w1}], #4",
            "sxtb16 {t}, {x0}",
            "smlad {a0}, {p0}, {t}, {a0}",
            "sxtb16 {t}, {x0}, ror #8",
            "smlad {a0}, {p1}, {t}, {a0}",
            "sxtb16 {t}, {x1}",
            "smlad {a1}, {p0}, {t}, {a1}",
            "sxtb16 {t}, {x1}, ror #8",
            "smlad {a1}, {p1}, {t}, {a1}",
            "subs {n}, {n}, #1",
            "bne 2b",
            pp = inout(reg) words.as_ptr() => _,
            w0 = inout(reg) w0.as_ptr() => _,
            w1 = inout(reg) w1.as_ptr() => _,
            n = inout(reg) quads => _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            p0 = out(reg) _,
            p1 = out(reg) _,
            x0 = out(reg) _,
            x1 = out(reg) _,
            t = out(reg) _,
            options(nostack, readonly),
        );
    }
    (a0, a1)
}

/// The first `quads` groups of four taps, with the instructions' portable definitions.
#[cfg(not(all(target_arch = "arm", feature = "dsp")))]
#[inline(always)]
fn dot2_quads(words: &[u32], w0: &[i8], w1: &[i8], quads: usize) -> (i32, i32) {
    let (mut a0, mut a1) = (0i32, 0i32);
    let quads_of = |w: &[i8]| -> [u8; 4] { [w[0] as u8, w[1] as u8, w[2] as u8, w[3] as u8] };
    for ((p, x0), x1) in words
        .chunks_exact(2)
        .zip(w0.chunks_exact(4))
        .zip(w1.chunks_exact(4))
        .take(quads)
    {
        let (b0, b1) = (
            u32::from_le_bytes(quads_of(x0)),
            u32::from_le_bytes(quads_of(x1)),
        );
        a0 = smlad(p[0], sxtb16(b0), a0);
        a0 = smlad(p[1], sxtb16_ror8(b0), a0);
        a1 = smlad(p[0], sxtb16(b1), a1);
        a1 = smlad(p[1], sxtb16_ror8(b1), a1);
    }
    (a0, a1)
}

/// The int8 fully connected layer ([`definition::linear`]): the input widened once to
/// `(q - zp)` in 16-bit pairs laid out as `Patch` lays out a patch, then two output
/// neurons at a time through `dot2_quads` (13 instructions per 8 multiply-accumulates on a
/// DSP core), the last `n % 4` inputs one by one. Inputs longer than [`MAX_LINEAR_INPUT`]
/// run the definition (and say so).
pub fn linear(
    input: &[i8],
    kernel: &QKernel<'_>,
    zero_points: ZeroPoints,
    output: &mut [i8],
) -> Result<KernelPath, Error> {
    let n = definition::check_linear(input, kernel, output)?;
    if n > MAX_LINEAR_INPUT {
        return definition::linear(input, kernel, zero_points, output)
            .map(|()| KernelPath::Reference);
    }
    let zp = zero_points.input;
    let quads = n / 4;
    let mut scratch = Scratch::<u32, { MAX_LINEAR_INPUT / 2 }>::new();
    let words = &*scratch.prefix_with(2 * quads, |at| {
        // Word 2q: inputs 4q and 4q + 2; word 2q + 1: inputs 4q + 1 and 4q + 3.
        let q = at / 2 * 4 + at % 2;
        let d = |i: usize| input.get(i).map_or(0, |&x| (x as i32 - zp) as u16 as u32);
        d(q) | (d(q + 2) << 16)
    });
    let tail = input.get(4 * quads..).unwrap_or(&[]);
    let mut o = 0;
    while o < output.len() {
        let o1 = if o + 1 < output.len() { o + 1 } else { o };
        let w0 = kernel.weight.get(o * n..(o + 1) * n).unwrap_or(&[]);
        let w1 = kernel.weight.get(o1 * n..(o1 + 1) * n).unwrap_or(&[]);
        let (mut a0, mut a1) = dot2_quads(words, w0, w1, quads);
        for ((&x, &v0), &v1) in tail
            .iter()
            .zip(w0.get(4 * quads..).unwrap_or(&[]))
            .zip(w1.get(4 * quads..).unwrap_or(&[]))
        {
            let d = x as i32 - zp;
            a0 += d * v0 as i32;
            a1 += d * v1 as i32;
        }
        for (ch, acc) in [(o, a0), (o1, a1)] {
            let (Some(&b), Some(&m), Some(&r)) = (
                kernel.bias.get(ch),
                kernel.multiplier.get(ch),
                kernel.shift.get(ch),
            ) else {
                continue;
            };
            if let Some(q) = output.get_mut(ch) {
                *q = output_code(b + acc, m, r, zero_points.output);
            }
        }
        o += 2;
    }
    Ok(KernelPath::CortexMDsp)
}

/// The int8 convolution ([`definition::conv2d`]) as im2col patches and `SMLAD` dot
/// products, two output channels at a time; with the host's prepacked weights, the 2x2-block
/// kernel. Patches larger than [`MAX_PATCH`] run the definition (and say so).
pub fn conv2d(
    g: &ConvGeometry,
    input: &[i8],
    kernel: &QKernel<'_>,
    zero_points: ZeroPoints,
    output: &mut [i8],
) -> Result<KernelPath, Error> {
    g.check_int8(input, kernel, output)?;
    if packed_conv::conv2d_packed::<Smlad>(g, input, kernel, zero_points, output).is_some() {
        return Ok(KernelPath::CortexMDsp);
    }
    if g.taps().get() > MAX_PATCH {
        return definition::conv2d(g, input, kernel, zero_points, output)
            .map(|()| KernelPath::Reference);
    }
    conv2d_unpacked(g, input, kernel, zero_points, output);
    Ok(KernelPath::CortexMDsp)
}

/// The unpacked kernel: each output's im2col patch, against the int8 weights of two output
/// channels at a time. Not inlined: its patch buffer must not add to the packed kernels'
/// frames (each kernel's buffers are on the stack only while it runs).
#[inline(never)]
fn conv2d_unpacked(
    g: &ConvGeometry,
    input: &[i8],
    kernel: &QKernel<'_>,
    zero_points: ZeroPoints,
    output: &mut [i8],
) {
    let (in_shape, out_shape) = (g.input(), g.output());
    let k = g.kernel().get();
    let groups = g.groups().get();
    let (cin_group, cout_group) = (g.in_per_group().get(), g.out_per_group().get());
    let taps = g.taps().get();
    let (s, p) = (g.stride().get(), g.padding());
    let (in_h, in_w, plane) = (in_shape.h, in_shape.w, out_shape.plane());
    let mut patch = Patch {
        halves: Halves([0; MAX_PATCH]),
        tail: [0; 3],
        len: taps,
    };
    for g in 0..groups {
        for oy in 0..out_shape.h {
            for ox in 0..out_shape.w {
                // im2col: this output's taps, in the weights' (channel, row, column) order.
                let mut tap = 0;
                for ic in 0..cin_group {
                    let in_plane = input
                        .get((g * cin_group + ic) * in_h * in_w..)
                        .unwrap_or(&[]);
                    for ky in 0..k {
                        let iy = (oy * s + ky).wrapping_sub(p);
                        for kx in 0..k {
                            let ix = (ox * s + kx).wrapping_sub(p);
                            let d = if iy < in_h && ix < in_w {
                                in_plane
                                    .get(iy * in_w + ix)
                                    .map_or(0, |&x| x as i32 - zero_points.input)
                            } else {
                                0
                            };
                            patch.set(tap, d);
                            tap += 1;
                        }
                    }
                }
                let at = oy * out_shape.w + ox;
                let mut o = g * cout_group;
                while o < (g + 1) * cout_group {
                    let o1 = if o + 1 < (g + 1) * cout_group {
                        o + 1
                    } else {
                        o
                    };
                    let w0 = kernel.weight.get(o * taps..(o + 1) * taps).unwrap_or(&[]);
                    let w1 = kernel.weight.get(o1 * taps..(o1 + 1) * taps).unwrap_or(&[]);
                    let (d0, d1) = dot2(&patch, w0, w1);
                    for (ch, d) in [(o, d0), (o1, d1)] {
                        let (Some(&b), Some(&m), Some(&r)) = (
                            kernel.bias.get(ch),
                            kernel.multiplier.get(ch),
                            kernel.shift.get(ch),
                        ) else {
                            continue;
                        };
                        if let Some(q) = output.get_mut(ch * plane + at) {
                            *q = output_code(b + d, m, r, zero_points.output);
                        }
                    }
                    o += 2;
                }
            }
        }
    }
}

/// The 2x2 block on `SMLAD` ([`packed_conv`]'s tiles on a DSP core).
pub(super) struct Smlad;

/// Bytes of one pair-step of the assembly loop (six 32-bit instructions).
#[cfg(all(target_arch = "arm", feature = "dsp"))]
const STEP_BYTES: usize = 24;

impl Block2x2 for Smlad {
    /// On a DSP core one assembly loop over the whole tile ([`packed_conv::tile_loop`]):
    /// eight pair-steps (2 `LDRD` + 4 `SMLAD` each) per pass, 6 instructions per 8 MACs.
    #[cfg(all(target_arch = "arm", feature = "dsp"))]
    #[allow(unsafe_code)]
    #[inline(always)]
    fn tile(w: &[u32], cols: &[u32], steps: usize, bias: [i32; 2], slots: &mut [Slot]) {
        let Some(partial) = packed_conv::prepare_slots(w, cols, steps, bias, slots, STEP_BYTES)
        else {
            return;
        };
        macro_rules! step {
            () => {
                concat!(
                    "ldrd {w0}, {w1}, [{wp}], #8\n",
                    "ldrd {c0}, {c1}, [{cp}], #8\n",
                    "smlad {a00}, {w0}, {c0}, {a00}\n",
                    "smlad {a01}, {w0}, {c1}, {a01}\n",
                    "smlad {a10}, {w1}, {c0}, {a10}\n",
                    "smlad {a11}, {w1}, {c1}, {a11}\n",
                )
            };
        }
        // SAFETY: `prepare_slots` checked that `w` holds `2 * steps` words and `cols`
        // `2 * steps` words per slot; the slots are `Slot`s (8-aligned, 32 bytes). Each step
        // reads two words of each (word-aligned `&[u32]`, as `LDRD` needs) and nothing else,
        // and the partial first pass runs exactly `steps % 8` of the identical 24-byte steps.
        unsafe { packed_conv::tile_loop!(slots, cols, step, partial) };
    }

    /// The instructions' portable definitions.
    #[cfg(not(all(target_arch = "arm", feature = "dsp")))]
    #[inline(always)]
    fn tile(w: &[u32], cols: &[u32], steps: usize, bias: [i32; 2], slots: &mut [Slot]) {
        packed_conv::portable_tile(w, cols, steps, bias, slots);
    }
}

/// One channel of the integer LRN over a block of pixels, for a table whose steps fit and
/// `Q = 32 - scale` in 9..=32 (`blocked::int8_lrn`'s `Rounded` arithmetic, whose Rust loop
/// is what the host tests run): per pixel the entering channel's code replaces the leaving
/// one's in `row` and moves the sum of squares in `sums`; a code at the zero point stores
/// `zp_out`; any other interpolates the table at the sum (`CLZ` finds the octave: the sum
/// shifted to bit 31 gives the entry in its top six bits and the offset, scaled for
/// `SMMLAR`, in the next 26) and takes `SMMLAR`, `SSAT`. 14 instructions for a code at the
/// zero point, 32 for another (22 for sums below 64, which index the table directly).
///
/// # Safety
///
/// `out`, `incoming`, `row` and `sums` have one length (the loop takes the shortest). Every
/// `row` entry is a code minus `zp_in` (an int8
/// code), and each `sums` entry is the sum of the squares of at most `n` such values, one of
/// them this row's, so that every sum stays at most `lrn_max_sum(n)`; `table` holds at least
/// `lrn_table_len(lrn_max_sum(n))` entries whose neighbours are less than 2^30 apart;
/// `scale <= 23`; `zp_out` is an int8 code.
#[cfg(all(target_arch = "arm", feature = "dsp"))]
#[allow(unsafe_code, clippy::too_many_arguments)]
#[inline(always)]
pub(crate) unsafe fn lrn_channel(
    out: &mut [i8],
    incoming: &[i8],
    row: &mut [i16],
    sums: &mut [i32],
    table: &[i32],
    scale: u32,
    zp_in: i32,
    zp_out: i32,
) {
    let width = out.len().min(incoming.len()).min(row.len()).min(sums.len());
    if width == 0 {
        return;
    }
    // SAFETY: the loop runs `width` times and advances each of `incoming`, `row`, `sums`
    // and `out` by one element per turn, reading and writing only within their first
    // `width` elements; `out` (mutably borrowed) overlaps none of the others. The table is
    // read at a sum below 64 (`table[s]`, the table has at least 66 entries) or at entries
    // `i` and `i + 1` of `lrn_table_index(s)` for `s` at most the largest sum, in bounds by
    // the caller's guarantee; `table + 4 (top - 32 clz)` plus the 3328-byte offset is
    // `table + 4 i`. `scale` goes to the stack for the turn's end (8 bytes, kept aligned)
    // and is popped at the end, leaving `sp` as it was.
    unsafe {
        core::arch::asm!(
            "str {x}, [sp, #-8]!",
            "2:",
            // The entering code replaces the leaving one; the sum moves.
            "ldrsb {v}, [{inp}], #1",
            "ldrsh {t}, [{row}]",
            "sub {v}, {v}, {zpin}",
            "strh {v}, [{row}], #2",
            "ldr {s}, [{sums}]",
            "mla {s}, {v}, {v}, {s}",
            "mls {s}, {t}, {t}, {s}",
            "str {s}, [{sums}], #4",
            // This channel's code minus the zero point.
            "ldrsb {x}, [{out}]",
            "subs {x}, {x}, {zpin}",
            "beq 5f",
            "cmp {s}, #64",
            "blo 3f",
            // Interpolation: n = s << clz(s); entry 832 - 32 clz + (n >> 26); offset
            // f << (31 - sh) = (n << 5) without bit 31; g = g0 + rounded((2 (g1 - g0)) f / 2^32).
            "clz {v}, {s}",
            "lsl {s}, {s}, {v}",
            "lsr {t}, {s}, #26",
            "sub {t}, {t}, {v}, lsl #5",
            "add {t}, {tbl}, {t}, lsl #2",
            "lsl {s}, {s}, #5",
            "bic {s}, {s}, #0x80000000",
            "ldr {v}, [{t}, #3328]",
            "ldr {t}, [{t}, #3332]",
            "sub {t}, {t}, {v}",
            "lsl {t}, {t}, #1",
            "smmlar {s}, {t}, {s}, {v}",
            "4:",
            // zp_out + rounded((d << scale) g / 2^32), saturated.
            "ldr {t}, [sp]",
            "lsl {x}, {x}, {t}",
            "smmlar {x}, {x}, {s}, {zpout}",
            "ssat {x}, #8, {x}",
            "strb {x}, [{out}], #1",
            "cmp {out}, {end}",
            "bne 2b",
            "b 6f",
            // A sum below 64 is its entry (out of line: the interpolation falls through).
            "3:",
            "ldr {s}, [{tbl}, {s}, lsl #2]",
            "b 4b",
            "5:",
            "strb {zpout}, [{out}], #1",
            "cmp {out}, {end}",
            "bne 2b",
            "6:",
            "add sp, sp, #8",
            inp = inout(reg) incoming.as_ptr() => _,
            row = inout(reg) row.as_mut_ptr() => _,
            sums = inout(reg) sums.as_mut_ptr() => _,
            out = inout(reg) out.as_mut_ptr() => _,
            end = in(reg) out.as_mut_ptr().add(width),
            zpin = in(reg) zp_in,
            tbl = in(reg) table.as_ptr(),
            zpout = in(reg) zp_out,
            x = inout(reg) scale => _,
            v = out(reg) _,
            t = out(reg) _,
            s = out(reg) _,
        );
    }
}
