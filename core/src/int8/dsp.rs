//! Cortex-M4 DSP kernels: the int8 convolution and linear layer as dot products of packed
//! 16-bit pairs, two multiply-accumulates per `SMLAD` instruction.
//!
//! Bit-exact with the generic kernels by construction: they compute the same integer sums
//! (integer addition is associative, and the contract's overflow bound holds for any order).
//! The instructions are reached through [`sxtb16`], [`sxtb16_ror8`] and [`smlad`]: inline
//! assembly when building for ARM with the `dsp` feature (enable it only for cores with the
//! DSP extension: Cortex-M4, M7, M33...), exact portable definitions elsewhere, so the host
//! tests run this very code against the generic kernels, and the QEMU test runs it with the
//! real instructions.

use super::requant::output_code;
use super::{QKernel, ZeroPoints};
use crate::arch::{ConvSpec, Shape};
use crate::error::Error;

/// Largest patch (input channels per group x kernel area) the stack buffer holds; larger
/// convolutions use the generic kernel. 2304 covers the paper net's conv3 (256 x 3 x 3).
pub const MAX_PATCH: usize = 2304;

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

/// The int8 convolution of [`super::conv2d`], as im2col patches and `SMLAD` dot products,
/// two output channels at a time. Falls back to the generic kernel for patches larger than
/// [`MAX_PATCH`].
pub fn conv2d(
    input: &[i8],
    in_shape: Shape,
    spec: &ConvSpec,
    kernel: &QKernel<'_>,
    zero_points: ZeroPoints,
    output: &mut [i8],
) -> Result<Shape, Error> {
    let out_shape = super::conv::check(input, in_shape, spec, kernel, output)?;
    let oc = spec.out_channels as usize;
    let k = spec.kernel as usize;
    // `check` proved `groups` nonzero; `max(1)` lets the optimizer see it.
    let groups = (spec.groups as usize).max(1);
    let cin_group = in_shape.c / groups;
    let cout_group = oc / groups;
    let taps = cin_group * k * k;
    if taps > MAX_PATCH {
        return super::conv::conv2d_generic(input, in_shape, spec, kernel, zero_points, output);
    }
    let (s, p) = (spec.stride as usize, spec.padding as usize);
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
    Ok(out_shape)
}
