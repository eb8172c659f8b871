//! The `SMLAD` int8 convolution: dot products of packed 16-bit pairs, two
//! multiply-accumulates per instruction.
//!
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
use crate::error::Error;
use crate::geometry::{expect_len, ConvGeometry};
use crate::int8::packed::{packed_fits, padded_input_fits, PackedGeometry, MAX_PADDED_INPUT};
use crate::int8::requant::output_code;
use crate::int8::{QKernel, ZeroPoints};
use core::mem::MaybeUninit;

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
    let n = input.len();
    if n == 0 || n > MAX_LINEAR_INPUT {
        return definition::linear(input, kernel, zero_points, output)
            .map(|()| KernelPath::Reference);
    }
    let o = output.len();
    expect_len("linear bias", o, kernel.bias.len())?;
    expect_len("linear multiplier", o, kernel.multiplier.len())?;
    expect_len("linear shift", o, kernel.shift.len())?;
    expect_len("linear weight", o.saturating_mul(n), kernel.weight.len())?;
    let zp = zero_points.input;
    let quads = n / 4;
    let mut scratch = Scratch32::<{ MAX_LINEAR_INPUT / 2 }>::new();
    let words = scratch.prefix(2 * quads, |at| {
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

/// A word buffer on the stack of which each call fills only the part it needs.
#[repr(C, align(8))]
struct Scratch32<const N: usize>(MaybeUninit<[u32; N]>);

impl<const N: usize> Scratch32<N> {
    fn new() -> Self {
        Scratch32(MaybeUninit::uninit())
    }

    /// The first `len` words (at most `N`), word `i` set to `value(i)`.
    #[allow(unsafe_code)]
    fn prefix(&mut self, len: usize, value: impl Fn(usize) -> u32) -> &[u32] {
        let len = len.min(N);
        let ptr = self.0.as_mut_ptr().cast::<u32>();
        for i in 0..len {
            // SAFETY: `i < len <= N`: within the buffer `self` owns.
            unsafe { ptr.add(i).write(value(i)) };
        }
        // SAFETY: the first `len` words were written just above; the slice borrows `self`.
        unsafe { core::slice::from_raw_parts(ptr, len) }
    }
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
    if let Some(packed) = kernel.packed {
        if conv2d_packed(g, input, kernel, packed, zero_points, output).is_some() {
            return Ok(KernelPath::CortexMDsp);
        }
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

/// Words of the column buffer: a tile of pixel pairs' patches, at least one pair of
/// [`MAX_PACKED_TAPS`](crate::int8::packed::MAX_PACKED_TAPS) taps each.
const COLUMN_WORDS: usize = 4608;

/// A word-aligned stack buffer of which each call zeroes and uses only the part it needs:
/// zeroing all of it (34 KiB between the two) cost more than a small layer's im2col.
#[repr(C, align(4))]
struct Scratch<const N: usize>(MaybeUninit<[i16; N]>);

impl<const N: usize> Scratch<N> {
    fn new() -> Self {
        Scratch(MaybeUninit::uninit())
    }

    /// The first `len` values (at most `N`), zeroed.
    #[allow(unsafe_code)]
    fn zeroed_prefix(&mut self, len: usize) -> &mut [i16] {
        let len = len.min(N);
        let ptr = self.0.as_mut_ptr().cast::<i16>();
        // SAFETY: `ptr` is the start of `N` i16 owned by `self` (borrowed mutably for the
        // slice's lifetime); the first `len <= N` are written before the slice is made, so
        // it covers initialized memory only.
        unsafe {
            core::ptr::write_bytes(ptr, 0, len);
            core::slice::from_raw_parts_mut(ptr, len)
        }
    }
}

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

/// The convolution with weights prepacked by the host ([`super::packed`]): a 2x2 block (two
/// output channels x two output pixels) per pass over the patch, one 64-bit load of weights
/// and one of activations per four `SMLAD`s. Patches come from a channels-last copy of the
/// input where it fits the stack buffer, straight from the input otherwise. `None` when
/// `packed` is not laid out for the layer; the caller then uses the unpacked kernel. Not
/// inlined: its stack buffers must not add to the unpacked kernel's frame.
#[inline(never)]
fn conv2d_packed(
    g: &ConvGeometry,
    input: &[i8],
    kernel: &QKernel<'_>,
    packed: &[i16],
    zero_points: ZeroPoints,
    output: &mut [i8],
) -> Option<()> {
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
    if !padded_input_fits(spec, in_shape) {
        let mut source = DirectGather { shape };
        return run_packed(
            g,
            &geometry,
            input,
            kernel,
            packed,
            zero_points,
            output,
            &mut source,
        );
    }
    packed_with_copy(
        g,
        &geometry,
        shape,
        input,
        kernel,
        packed,
        zero_points,
        output,
    )
}

/// [`run_packed`] with a [`PaddedCopy`]: its buffer in this function's frame, so that only
/// this path has it on the stack.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn packed_with_copy(
    g: &ConvGeometry,
    geometry: &PackedGeometry,
    shape: PatchShape,
    input: &[i8],
    kernel: &QKernel<'_>,
    packed: &[i16],
    zero_points: ZeroPoints,
    output: &mut [i8],
) -> Option<()> {
    let (cin, run, padded_w) = (shape.cin, shape.k * shape.cin, shape.in_w + 2 * shape.p);
    let mut padded_scratch = Scratch::<MAX_PADDED_INPUT>::new();
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
    run_packed(
        g,
        geometry,
        input,
        kernel,
        packed,
        zero_points,
        output,
        &mut source,
    )
}

/// The prepacked kernel's loop over groups and tiles of pixel pairs: the tile's patches from
/// `source`, then for every channel pair the 2x2 blocks ([`dot2x2_tile`]) and each output's
/// requantization. Not inlined: its column buffer is on the stack only while it runs.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn run_packed(
    g: &ConvGeometry,
    geometry: &PackedGeometry,
    input: &[i8],
    kernel: &QKernel<'_>,
    packed: &[i16],
    zero_points: ZeroPoints,
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
    // Pixel pairs im2col'd at once: each channel pair's set-up is paid once per tile.
    let tile = (COLUMN_WORDS / (2 * steps).max(1)).clamp(1, MAX_TILE);
    let mut column_scratch = Scratch::<{ 2 * COLUMN_WORDS }>::new();
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
                dot2x2_tile(w, cols, steps, [r0.bias, r1.bias], slots);
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

/// One pixel pair of a tile: before [`dot2x2_tile`], where the weights start, the loop
/// passes, the two channels' biases, how many pairs are left and where the first pass enters
/// the loop; after it, the four sums.
#[derive(Clone, Copy, Default)]
#[repr(C, align(8))]
struct Slot([i32; 8]);

/// Bytes of one pair-step of the assembly loop (six 32-bit instructions).
#[cfg(all(target_arch = "arm", feature = "dsp"))]
const STEP_BYTES: usize = 24;

/// For each pixel pair of the tile (`cols` holds `slots.len()` pairs of `2 * steps` words),
/// the dot products over `steps` tap pairs of channels (0, 1) of `w` with pixels (0, 1),
/// starting from the biases: `[c0 x p0, c0 x p1, c1 x p0, c1 x p1]` into each slot. On a DSP
/// core one assembly loop over the whole tile: eight pair-steps (2 `LDRD` + 4 `SMLAD` each)
/// per pass, 6 instructions per 8 MACs; a patch that is not a multiple of eight pair-steps
/// enters the first pass part-way (Duff's device), so no step is spent on padding.
#[cfg(all(target_arch = "arm", feature = "dsp"))]
#[allow(unsafe_code)]
#[inline(always)]
fn dot2x2_tile(w: &[u32], cols: &[u32], steps: usize, bias: [i32; 2], slots: &mut [Slot]) {
    let pairs = slots.len();
    if steps == 0 || pairs == 0 || w.len() < 2 * steps || cols.len() < 2 * steps * pairs {
        return;
    }
    let (full, partial) = (steps / 8, steps % 8);
    let passes = full + usize::from(partial > 0);
    // Offset into the eight-step block where the first pass starts: it then runs `partial`
    // steps.
    let entry = if partial > 0 {
        (8 - partial) * STEP_BYTES
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
    // SAFETY: for each of the `pairs` slots (8-aligned, 32 bytes each, inside `slots`), the
    // loop reads `2 * steps` words of `w` from its start and the next `2 * steps` words of
    // `cols` (the partial first pass runs exactly `steps % 8` steps: it enters the block of
    // eight identical 24-byte steps that many steps before its end), all checked in bounds
    // above; both are word-aligned (`&[u32]`), as `LDRD` needs. It writes the slot's first
    // four words. `left` in each slot counts down to the last one.
    macro_rules! tile_loop {
        ($($entry:literal),*) => {
            core::arch::asm!(
                "1:",
                "ldrd {wp}, {n}, [{fr}]",
                "ldrd {a00}, {a10}, [{fr}, #8]",
                "mov {a01}, {a00}",
                "mov {a11}, {a10}",
                $($entry,)*
                ".p2align 2",
                "2:",
                step!(), step!(), step!(), step!(), step!(), step!(), step!(), step!(),
                "subs {n}, {n}, #1",
                "bne 2b",
                "ldr {n}, [{fr}, #16]",
                "strd {a00}, {a01}, [{fr}]",
                "strd {a10}, {a11}, [{fr}, #8]",
                "add {fr}, {fr}, #32",
                "subs {n}, {n}, #1",
                "bne 1b",
                fr = inout(reg) slots.as_mut_ptr() => _,
                cp = inout(reg) cols.as_ptr() => _,
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
    if partial > 0 {
        // SAFETY: as above; the first pass of each pixel pair branches to a step boundary
        // inside the block (bit 0 set for `BX`: Thumb state).
        unsafe {
            tile_loop!(
                "ldr {w0}, [{fr}, #20]",
                "adr.w {w1}, 2f",
                "add {w1}, {w1}, {w0}",
                "orr {w1}, {w1}, #1",
                "bx {w1}"
            )
        };
    } else {
        // SAFETY: as above; every pass runs the whole block.
        unsafe { tile_loop!() };
    }
}

/// [`dot2x2_tile`] with the instructions' portable definitions.
#[cfg(not(all(target_arch = "arm", feature = "dsp")))]
#[inline(always)]
fn dot2x2_tile(w: &[u32], cols: &[u32], steps: usize, bias: [i32; 2], slots: &mut [Slot]) {
    for (slot, pair_cols) in slots.iter_mut().zip(cols.chunks_exact((2 * steps).max(1))) {
        let [mut a00, mut a01, mut a10, mut a11] = [bias[0], bias[0], bias[1], bias[1]];
        for (wp, cp) in w.chunks_exact(2).zip(pair_cols.chunks_exact(2)).take(steps) {
            a00 = smlad(wp[0], cp[0], a00);
            a01 = smlad(wp[0], cp[1], a01);
            a10 = smlad(wp[1], cp[0], a10);
            a11 = smlad(wp[1], cp[1], a11);
        }
        slot.0[..4].copy_from_slice(&[a00, a01, a10, a11]);
    }
}
