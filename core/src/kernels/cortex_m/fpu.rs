//! The f32 convolution, fully connected layer and LRN for Cortex-M cores with a single-precision
//! FPU (Cortex-M4F, M7, M33 with FPU: the `arm_fpu` cfg of `build.rs`, set for the hard-float
//! targets). `VMLA.F32` rounds the product and then the sum, which is exactly the contract's
//! `acc + x * w` (`docs/numerics-f32.md`): each output's products are added in the contract's
//! order, only several outputs are computed at once.
//!
//! * Convolution: im2col patches of four output pixels at a time, interleaved tap by tap, and
//!   blocks of four output channels x four pixels: per tap one `VLDM` of the four pixels'
//!   values, one of each channel's weight and 16 `VMLA`s (23 instructions per 16 MACs
//!   against 17 per MAC for the definition's loops compiled for the M4F). Patches over 1200
//!   taps (the paper net's conv3 to conv5) take blocks of four channels x one pixel instead,
//!   four taps per turn, as many instructions per MAC. Padding is materialized as `0.0` in
//!   the patch, so it adds `0.0 * w` as the contract says.
//! * Fully connected layer: the contract's 16 partial sums of one output stay in registers;
//!   per 16 inputs, two `VLDM`s of eight inputs and two of eight weights, and 16 `VMLA`s.
//! * LRN: channel after channel over a block of pixels; for beta = 0.75 (AlexNet's) the
//!   contract's power is two square roots, one `VSQRT.F32` each.
//!
//! Elsewhere (and on cores without an FPU) the same loops in Rust, bit-identical by the
//! same argument, which the host's kernel suite checks against the definition.

use super::super::blocked;
use super::super::reference::f32 as definition;
use super::super::reference::f32::LINEAR_LANES;
use super::scratch::Scratch;
use crate::arch::{LrnSpec, Shape};
use crate::error::Error;
use crate::geometry::{ConvDims, ConvGeometry};

/// Output channels per block, and output pixels per block of the four-pixel kernel.
const LANES: usize = 4;

/// Values of the patch buffer on the stack (18.75 KiB).
const PATCH_VALUES: usize = 4800;

/// Largest patch (input channels per group x kernel area) of the four-pixel blocks: four
/// patches of 1200 taps fill the buffer. That covers every layer of the micro net and the
/// paper net's conv1 (363) and grouped conv2 (48 x 5 x 5).
const FOUR_PIXEL_PATCH: usize = PATCH_VALUES / LANES;

/// Largest patch the kernel takes at all, in one-pixel blocks (four channels x one pixel)
/// beyond 1200 taps: every layer of the built-in nets (at most torchvision's conv4,
/// 384 x 3 x 3). Larger convolutions run the definition.
pub const MAX_F32_PATCH: usize = PATCH_VALUES;

/// The f32 convolution ([`definition::conv2d`]) in blocks of four output channels x four
/// output pixels, or x one pixel for patches over 1200 taps. `Ok(false)`: the patch exceeds
/// [`MAX_F32_PATCH`] and the definition ran.
pub fn conv2d(
    g: &ConvGeometry,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
) -> Result<bool, Error> {
    g.check_f32(input, weight, bias, output)?;
    let taps = g.taps().get();
    if taps > MAX_F32_PATCH {
        definition::conv2d(g, input, weight, bias, output)?;
        return Ok(false);
    }
    if taps <= FOUR_PIXEL_PATCH {
        blocked_conv2d::<LANES>(g, input, weight, bias, output);
    } else {
        blocked_conv2d::<1>(g, input, weight, bias, output);
    }
    Ok(true)
}

/// [`conv2d`] for a checked geometry whose patch fits, in blocks of four channels x `PIXELS`
/// pixels ([`block4x4`] or [`block4x1`]: `acc[PIXELS * c + l]` for channel `c` and pixel
/// `l`). Not inlined: its patch buffer is on the stack only while it runs.
#[inline(never)]
fn blocked_conv2d<const PIXELS: usize>(
    g: &ConvGeometry,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
) {
    let d = g.dims();
    let taps = d.taps.min(PATCH_VALUES / PIXELS.max(1));
    let mut buffer = Scratch::<f32, PATCH_VALUES>::new();
    let patch = buffer.zeroed_prefix(PIXELS * taps);
    let pixels = d.pixels;
    for group in 0..d.groups {
        let group_input = input.get(group * d.cin_g * d.in_plane..).unwrap_or(&[]);
        for first in (0..pixels).step_by(PIXELS.max(1)) {
            // Lanes past the last pixel repeat it; their sums are not stored.
            let lanes: [usize; PIXELS] =
                core::array::from_fn(|l| (first + l).min(pixels.saturating_sub(1)));
            fill_patch(&d, group_input, &lanes, patch);
            let channels = group * d.cout_g..(group + 1) * d.cout_g;
            for o in channels.clone().step_by(LANES) {
                // Channels past the group's last repeat it; their sums are not stored.
                let chans: [usize; LANES] =
                    core::array::from_fn(|c| (o + c).min(channels.end.saturating_sub(1)));
                let rows: [&[f32]; LANES] = core::array::from_fn(|c| {
                    weight
                        .get(chans[c] * d.taps..(chans[c] + 1) * d.taps)
                        .unwrap_or(&[])
                });
                let mut acc: [f32; LANES * LANES] = core::array::from_fn(|i| {
                    let c = (i / PIXELS.max(1)).min(LANES - 1);
                    bias.get(chans[c]).copied().unwrap_or(0.0)
                });
                // `PIXELS` is a constant: the branch folds away and the block inlines.
                if PIXELS == LANES {
                    block4x4(patch, rows, taps, &mut acc);
                } else {
                    block4x1(patch, rows, taps, &mut acc);
                }
                for (c, &ch) in chans.iter().enumerate() {
                    if c > 0 && ch == chans[c - 1] {
                        break;
                    }
                    let plane = output.get_mut(ch * pixels..).unwrap_or(&mut []);
                    for (l, &px) in lanes.iter().enumerate() {
                        if l > 0 && px == lanes[l - 1] {
                            break;
                        }
                        if let (Some(out), Some(&a)) = (plane.get_mut(px), acc.get(c * PIXELS + l))
                        {
                            *out = a;
                        }
                    }
                }
            }
        }
    }
}

/// The pixels' patches, interleaved: tap `u` (the weights' `(ic, ky, kx)` order) of lane `l`
/// at `lanes.len() * u + l`, `0.0` where the tap falls on the padding.
#[inline(always)]
fn fill_patch(d: &ConvDims, group_input: &[f32], lanes: &[usize], patch: &mut [f32]) {
    let stride = lanes.len();
    let (k, s, p) = (d.k, d.stride.max(1), d.pad);
    let out_w = d.out_w.max(1);
    for (l, &px) in lanes.iter().enumerate() {
        let (oy, ox) = (px / out_w, px % out_w);
        let mut u = 0;
        for plane in group_input.chunks_exact(d.in_plane.max(1)).take(d.cin_g) {
            for ky in 0..k {
                let iy = (oy * s + ky).wrapping_sub(p);
                let row = if iy < d.in_h {
                    plane.get(iy * d.in_w..(iy + 1) * d.in_w)
                } else {
                    None
                };
                for kx in 0..k {
                    let ix = (ox * s + kx).wrapping_sub(p);
                    let v = row.and_then(|r| r.get(ix)).copied().unwrap_or(0.0);
                    if let Some(slot) = patch.get_mut(stride * u + l) {
                        *slot = v;
                    }
                    u += 1;
                }
            }
        }
    }
}

/// `acc[4c + l] = acc[4c + l] + w[c][u] * patch[4u + l]` for `u` in `0..taps` ascending: four
/// channels x four pixels. On the FPU one assembly loop: per tap a `VLDM` of the patch's four
/// values, one `VLDM` per channel's weight, 16 `VMLA.F32`.
#[cfg(arm_fpu)]
#[allow(unsafe_code)]
#[inline(always)]
fn block4x4(patch: &[f32], w: [&[f32]; LANES], taps: usize, acc: &mut [f32; LANES * LANES]) {
    if taps == 0 || patch.len() < LANES * taps || w.iter().any(|row| row.len() < taps) {
        return;
    }
    // SAFETY: the loop runs `taps` times; each reads 4 f32 at `{pp}` and one at each `{wN}`,
    // advancing them past what it read: `LANES * taps` values of `patch` and `taps` of each
    // row, checked above; all are f32-aligned slices. The accumulators are read from and
    // written back to `acc` (16 f32). The FPU registers it uses are pushed first and popped
    // last (stable Rust cannot name them as operands: `vfp2` is an unstable target feature),
    // so the compiler's own values in them survive.
    unsafe {
        core::arch::asm!(
            "vpush {{s0-s23}}",
            "vldmia {acc}, {{s0-s15}}",
            "1:",
            "vldmia {pp}!, {{s16-s19}}",
            "vldmia {w0}!, {{s20}}",
            "vldmia {w1}!, {{s21}}",
            "vldmia {w2}!, {{s22}}",
            "vldmia {w3}!, {{s23}}",
            "vmla.f32 s0, s20, s16",
            "vmla.f32 s1, s20, s17",
            "vmla.f32 s2, s20, s18",
            "vmla.f32 s3, s20, s19",
            "vmla.f32 s4, s21, s16",
            "vmla.f32 s5, s21, s17",
            "vmla.f32 s6, s21, s18",
            "vmla.f32 s7, s21, s19",
            "vmla.f32 s8, s22, s16",
            "vmla.f32 s9, s22, s17",
            "vmla.f32 s10, s22, s18",
            "vmla.f32 s11, s22, s19",
            "vmla.f32 s12, s23, s16",
            "vmla.f32 s13, s23, s17",
            "vmla.f32 s14, s23, s18",
            "vmla.f32 s15, s23, s19",
            "subs {n}, {n}, #1",
            "bne 1b",
            "vstmia {acc}, {{s0-s15}}",
            "vpop {{s0-s23}}",
            acc = in(reg) acc.as_mut_ptr(),
            pp = inout(reg) patch.as_ptr() => _,
            w0 = inout(reg) w[0].as_ptr() => _,
            w1 = inout(reg) w[1].as_ptr() => _,
            w2 = inout(reg) w[2].as_ptr() => _,
            w3 = inout(reg) w[3].as_ptr() => _,
            n = inout(reg) taps => _,
        );
    }
}

/// [`block4x4`] in Rust: the same sums in the same order.
#[cfg(not(arm_fpu))]
#[inline(always)]
fn block4x4(patch: &[f32], w: [&[f32]; LANES], taps: usize, acc: &mut [f32; LANES * LANES]) {
    for (u, xs) in patch.chunks_exact(LANES).take(taps).enumerate() {
        for (c, row) in w.iter().enumerate() {
            let wu = row.get(u).copied().unwrap_or(0.0);
            for (l, &x) in xs.iter().enumerate() {
                if let Some(a) = acc.get_mut(c * LANES + l) {
                    *a += wu * x;
                }
            }
        }
    }
}

/// `acc[c] = acc[c] + w[c][u] * patch[u]` for `u` in `0..taps` ascending: four channels x
/// one pixel, for patches too long for four. On the FPU one assembly loop per four taps: a
/// `VLDM` of the pixel's four values, one of each channel's four weights, 16 `VMLA.F32`
/// (each channel's four in tap order, interleaved across the channels); the last `taps % 4`
/// in Rust, after them, so each output's order stays the contract's.
#[cfg(arm_fpu)]
#[allow(unsafe_code)]
#[inline(always)]
fn block4x1(patch: &[f32], w: [&[f32]; LANES], taps: usize, acc: &mut [f32; LANES * LANES]) {
    if patch.len() < taps || w.iter().any(|row| row.len() < taps) {
        return;
    }
    let quads = taps / 4;
    if quads > 0 {
        // SAFETY: the loop runs `quads` times; each reads 4 f32 at `{pp}` and 4 at each
        // `{wN}`, advancing them past what it read: `4 * quads <= taps` values of `patch` and
        // of each row, checked above; all are f32-aligned slices. The accumulators are read
        // from and written back to `acc[0..4]`; the FPU registers it uses are pushed first
        // and popped last, as in `block4x4`.
        unsafe {
            core::arch::asm!(
                "vpush {{s0-s23}}",
                "vldmia {acc}, {{s0-s3}}",
                "1:",
                "vldmia {pp}!, {{s4-s7}}",
                "vldmia {w0}!, {{s8-s11}}",
                "vldmia {w1}!, {{s12-s15}}",
                "vldmia {w2}!, {{s16-s19}}",
                "vldmia {w3}!, {{s20-s23}}",
                "vmla.f32 s0, s8, s4",
                "vmla.f32 s1, s12, s4",
                "vmla.f32 s2, s16, s4",
                "vmla.f32 s3, s20, s4",
                "vmla.f32 s0, s9, s5",
                "vmla.f32 s1, s13, s5",
                "vmla.f32 s2, s17, s5",
                "vmla.f32 s3, s21, s5",
                "vmla.f32 s0, s10, s6",
                "vmla.f32 s1, s14, s6",
                "vmla.f32 s2, s18, s6",
                "vmla.f32 s3, s22, s6",
                "vmla.f32 s0, s11, s7",
                "vmla.f32 s1, s15, s7",
                "vmla.f32 s2, s19, s7",
                "vmla.f32 s3, s23, s7",
                "subs {n}, {n}, #1",
                "bne 1b",
                "vstmia {acc}, {{s0-s3}}",
                "vpop {{s0-s23}}",
                acc = in(reg) acc.as_mut_ptr(),
                pp = inout(reg) patch.as_ptr() => _,
                w0 = inout(reg) w[0].as_ptr() => _,
                w1 = inout(reg) w[1].as_ptr() => _,
                w2 = inout(reg) w[2].as_ptr() => _,
                w3 = inout(reg) w[3].as_ptr() => _,
                n = inout(reg) quads => _,
            );
        }
    }
    dot4x1_taps(patch, w, 4 * quads..taps, acc);
}

/// [`block4x1`] in Rust: the same sums in the same order.
#[cfg(not(arm_fpu))]
#[inline(always)]
fn block4x1(patch: &[f32], w: [&[f32]; LANES], taps: usize, acc: &mut [f32; LANES * LANES]) {
    dot4x1_taps(patch, w, 0..taps, acc);
}

/// `acc[c] = acc[c] + w[c][u] * patch[u]` for `u` in `taps`, ascending.
#[inline(always)]
fn dot4x1_taps(
    patch: &[f32],
    w: [&[f32]; LANES],
    taps: core::ops::Range<usize>,
    acc: &mut [f32; LANES * LANES],
) {
    for u in taps {
        let x = patch.get(u).copied().unwrap_or(0.0);
        for (a, row) in acc.iter_mut().zip(w) {
            *a += row.get(u).copied().unwrap_or(0.0) * x;
        }
    }
}

/// The f32 fully connected layer ([`definition::linear`]): each output's 16 partial sums in
/// registers, then the contract's fold and the bias.
pub fn linear(
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
) -> Result<(), Error> {
    let n_in = definition::check_linear(input, weight, bias, output)?;
    let whole = n_in - n_in % LINEAR_LANES;
    let (xs, x_rest) = input.split_at(whole);
    for ((out, row), &b) in output.iter_mut().zip(weight.chunks_exact(n_in)).zip(bias) {
        let (ws, w_rest) = row.split_at(whole.min(row.len()));
        let mut acc = [0.0f32; LINEAR_LANES];
        partial_sums(xs, ws, &mut acc);
        for ((a, &x), &w) in acc.iter_mut().zip(x_rest).zip(w_rest) {
            *a += x * w;
        }
        *out = definition::fold_with_bias(acc, b);
    }
    Ok(())
}

/// `acc[l] = acc[l] + xs[16i + l] * ws[16i + l]` for every whole group `i` of 16, ascending.
/// On the FPU one assembly loop: per 16 inputs, a `VLDM` of eight inputs and one of eight
/// weights twice, and 16 `VMLA.F32`.
#[cfg(arm_fpu)]
#[allow(unsafe_code)]
#[inline(always)]
fn partial_sums(xs: &[f32], ws: &[f32], acc: &mut [f32; LINEAR_LANES]) {
    let groups = xs.len().min(ws.len()) / LINEAR_LANES;
    if groups == 0 {
        return;
    }
    // SAFETY: the loop runs `groups` times; each reads 16 f32 at `{xp}` and 16 at `{wp}`,
    // advancing them past what it read: `16 * groups` values of each slice, at most their
    // lengths; both are f32-aligned. The partial sums are read from and written back to
    // `acc` (16 f32); the FPU registers are pushed first and popped last, as in `block4x4`.
    unsafe {
        core::arch::asm!(
            "vpush {{s0-s31}}",
            "vldmia {acc}, {{s0-s15}}",
            "1:",
            "vldmia {xp}!, {{s16-s23}}",
            "vldmia {wp}!, {{s24-s31}}",
            "vmla.f32 s0, s16, s24",
            "vmla.f32 s1, s17, s25",
            "vmla.f32 s2, s18, s26",
            "vmla.f32 s3, s19, s27",
            "vmla.f32 s4, s20, s28",
            "vmla.f32 s5, s21, s29",
            "vmla.f32 s6, s22, s30",
            "vmla.f32 s7, s23, s31",
            "vldmia {xp}!, {{s16-s23}}",
            "vldmia {wp}!, {{s24-s31}}",
            "vmla.f32 s8, s16, s24",
            "vmla.f32 s9, s17, s25",
            "vmla.f32 s10, s18, s26",
            "vmla.f32 s11, s19, s27",
            "vmla.f32 s12, s20, s28",
            "vmla.f32 s13, s21, s29",
            "vmla.f32 s14, s22, s30",
            "vmla.f32 s15, s23, s31",
            "subs {n}, {n}, #1",
            "bne 1b",
            "vstmia {acc}, {{s0-s15}}",
            "vpop {{s0-s31}}",
            acc = in(reg) acc.as_mut_ptr(),
            xp = inout(reg) xs.as_ptr() => _,
            wp = inout(reg) ws.as_ptr() => _,
            n = inout(reg) groups => _,
        );
    }
}

/// [`partial_sums`] in Rust: the same sums in the same order.
#[cfg(not(arm_fpu))]
#[inline(always)]
fn partial_sums(xs: &[f32], ws: &[f32], acc: &mut [f32; LINEAR_LANES]) {
    for (x, w) in xs
        .chunks_exact(LINEAR_LANES)
        .zip(ws.chunks_exact(LINEAR_LANES))
    {
        for ((a, &x), &w) in acc.iter_mut().zip(x).zip(w) {
            *a += x * w;
        }
    }
}

/// The f32 LRN ([`definition::lrn_in_place`]) in blocks of pixels
/// ([`blocked::lrn_f32`]), for beta = 0.75 the contract's power as two `VSQRT.F32`s and a
/// `VMUL.F32` on the FPU (correctly rounded, so the bits of the portable form), then the
/// division.
pub fn lrn(values: &mut [f32], shape: Shape, spec: &LrnSpec) -> Result<(), Error> {
    blocked::lrn_f32(values, shape, spec, divide_by_three_quarter_power)
}

/// `out[p] = a[p] / sqrt(b[p] * sqrt(b[p]))`, the contract's LRN output for beta = 0.75. On
/// the FPU one assembly loop: per value two `VLDM`s, `VSQRT.F32`, `VMUL.F32`, `VSQRT.F32`,
/// `VDIV.F32` and a `VSTM`.
#[cfg(arm_fpu)]
#[allow(unsafe_code)]
#[inline(always)]
fn divide_by_three_quarter_power(out: &mut [f32], a: &[f32], b: &[f32]) {
    let len = out.len().min(a.len()).min(b.len());
    if len == 0 {
        return;
    }
    // SAFETY: the loop runs `len` times; each reads one f32 at `{ap}` and one at `{bp}` and
    // writes one at `{op}`, advancing each past it: `len` values of each slice, at most
    // their lengths; all are f32-aligned, and `out` is borrowed mutably, so it overlaps
    // neither input. The FPU registers it uses are pushed first and popped last, as in
    // `block4x4`.
    unsafe {
        core::arch::asm!(
            "vpush {{s0-s3}}",
            "1:",
            "vldmia {ap}!, {{s0}}",
            "vldmia {bp}!, {{s1}}",
            "vsqrt.f32 s2, s1",
            "vmul.f32 s2, s1, s2",
            "vsqrt.f32 s2, s2",
            "vdiv.f32 s3, s0, s2",
            "vstmia {op}!, {{s3}}",
            "subs {n}, {n}, #1",
            "bne 1b",
            "vpop {{s0-s3}}",
            ap = inout(reg) a.as_ptr() => _,
            bp = inout(reg) b.as_ptr() => _,
            op = inout(reg) out.as_mut_ptr() => _,
            n = inout(reg) len => _,
        );
    }
}

/// Elsewhere, the portable form.
#[cfg(not(arm_fpu))]
use blocked::divide_by_three_quarter_power;
