//! The AVX-512 kernels ([`X86Avx512`]): the int8 convolution and fully connected layer on
//! AVX512-VNNI's `vpdpbusd`, the f32 convolution and fully connected layer on 16-lane
//! registers, the f32 max pool, the integer LRN and the int8 max pool (rows of up to 64
//! codes), every other layer the AVX2 kernels ([`super::X86Avx2`]).
//!
//! `vpdpbusd` multiplies unsigned bytes by signed ones, four pairs per 32-bit lane, and adds
//! the four products to the lane: exact, since `|u * w| <= 255 * 128`, and the lane's sum
//! wraps in i32 as the definition's does. The codes `q` are signed, so the kernels feed it
//! `u = q + 128` (the code's bits with the top one flipped), padding included (`zp_in +
//! 128`), and take back what that adds to every output of channel `o`: `(zp_in + 128) *
//! sum_t w[o][t]`, a per-channel constant folded into the starting value `bias[o] - (zp_in +
//! 128) * sum_t w[o][t]`. So each output is `bias + sum_t (q_t - zp_in) * w_t` in wrapping
//! i32, the definition's integer, whatever the order (integer sums are exact in any order).
//!
//! The int8 convolution's loops, per group: output channels 384 at a time (their sums on
//! the stack, starting values computed once), pixel blocks of 64, tap blocks of at most 1024
//! (packed once per block of pixels), tiles of four output channels by 64 pixels (sixteen
//! accumulators of 16 lanes). A panel holds, for each group of four taps, every pixel's four
//! `u` codes as one 32-bit lane, the order `vpdpbusd` reads; each step broadcasts four
//! consecutive weights of a channel, which are four consecutive bytes of its row in the
//! blob's layout (no widening). Stack: 64 KiB of panel and 97.5 KiB of sums and starting
//! values (int8), 64 KiB (f32 panel), 16 KiB for the fully connected layer's lifted inputs.
//!
//! The f32 convolution is the AVX2 one's (`super::x86::conv_f32`) on 16 lanes: each output's
//! taps in ascending order, a multiply then an add, never FMA; the same bits.

use super::{KernelPath, Kernels, LrnTable, X86Avx2};
use crate::arch::{LrnSpec, Shape};
use crate::error::Error;
use crate::geometry::{AdaptivePoolGeometry, ConvGeometry, PoolGeometry};
use crate::int8::{QKernel, ZeroPoints};

/// The AVX-512 kernels: the int8 convolution and fully connected layer on `vpdpbusd`, the f32
/// convolution, fully connected layer and max pool on 16 lanes, the integer LRN on 16 lanes,
/// the int8 max pool by byte permutes (rows of up to 64 codes), every other layer as
/// [`X86Avx2`] computes it (and reported as such). Only
/// [`X86Avx512::detect`] makes one, on a machine with AVX-512 F, BW, VL, VBMI and VNNI.
#[derive(Clone, Copy, Debug)]
pub struct X86Avx512 {
    _detected: (),
}

impl X86Avx512 {
    /// The AVX-512 kernels if this is x86-64 with AVX2, AVX-512 F/BW/VL/VBMI and AVX512-VNNI
    /// enabled by the OS, else `None`.
    pub fn detect() -> Option<Self> {
        super::super::detect::x86_avx512_vnni().then_some(Self::DETECTED)
    }

    /// The value [`X86Avx512::detect`] returns; private, so that only detection hands it out.
    pub(in crate::kernels) const DETECTED: Self = X86Avx512 { _detected: () };

    /// The AVX2 kernels, which every machine with AVX-512 also has (detection checks both).
    const AVX2: X86Avx2 = X86Avx2::DETECTED;
}

impl Kernels for X86Avx512 {
    fn name(&self) -> &'static str {
        "x86-64 AVX-512 VNNI"
    }

    /// Whole layers: the fused chains' calls of one or two rows leave these kernels' wide
    /// tiles part empty (the paper net in `benches/roofline.rs`: 1.2x the int8 pass and
    /// 1.1x the f32 one, fused against unfused).
    fn prefers_whole_layers(&self) -> bool {
        true
    }

    /// Same checks, same errors, same bits as [`super::super::reference::f32::conv2d`]: the
    /// AVX2 kernel's loops on 16-lane vectors (a multiply, then an add, per product).
    fn conv2d(
        &self,
        g: &ConvGeometry,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        #[cfg(target_arch = "x86_64")]
        {
            g.check_f32(input, weight, bias, output)?;
            // SAFETY: an `X86Avx512` exists only where AVX-512 F/BW/VL/VBMI and VNNI were
            // detected; the slices were checked above.
            unsafe { zmm::conv_f32(input, weight, bias, output, &g.dims()) };
            Ok(KernelPath::X86Avx512)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Self::AVX2.conv2d(g, input, weight, bias, output)
        }
    }

    /// The contract's 16 partial sums of each output as the 16 lanes of one vector, eight
    /// weight rows streamed at once with the lines ahead prefetched: the layer is bound by
    /// the weights' stream, and more rows in flight keep more memory requests open.
    fn linear(
        &self,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        #[cfg(target_arch = "x86_64")]
        {
            let n = super::super::reference::f32::check_linear(input, weight, bias, output)?;
            // SAFETY: an `X86Avx512` exists only where AVX-512 F/BW/VL/VBMI and VNNI were
            // detected; the slices were checked above.
            unsafe { zmm::linear_f32(input, weight, bias, output, n) };
            Ok(KernelPath::X86Avx512)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Self::AVX2.linear(input, weight, bias, output)
        }
    }

    fn relu(&self, values: &mut [f32]) -> KernelPath {
        Self::AVX2.relu(values)
    }

    fn lrn(&self, values: &mut [f32], shape: Shape, spec: &LrnSpec) -> Result<KernelPath, Error> {
        Self::AVX2.lrn(values, shape, spec)
    }

    /// Same checks, same errors, same bits as [`super::super::reference::f32::max_pool`]:
    /// 16 outputs of a row at a time, each window in the definition's order; strides above 2
    /// run the AVX2 set's (the reference).
    fn max_pool(
        &self,
        g: &PoolGeometry,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        #[cfg(target_arch = "x86_64")]
        {
            g.check(input.len(), output.len())?;
            // SAFETY: an `X86Avx512` exists only where AVX-512 F/BW/VL/VBMI and VNNI were
            // detected; the slices were checked above.
            if unsafe { zmm::max_pool_f32(g, input, output) } {
                return Ok(KernelPath::X86Avx512);
            }
        }
        Self::AVX2.max_pool(g, input, output)
    }

    fn adaptive_avg_pool(
        &self,
        g: &AdaptivePoolGeometry,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        Self::AVX2.adaptive_avg_pool(g, input, output)
    }

    /// Same checks, same errors, same codes as [`super::super::reference::int8::conv2d`],
    /// on `vpdpbusd` (see the module's documentation); an input zero point outside the int8
    /// codes (never in a valid blob) runs the reference.
    fn conv2d_int8(
        &self,
        g: &ConvGeometry,
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        #[cfg(target_arch = "x86_64")]
        if (-128..=127).contains(&zero_points.input) {
            g.check_int8(input, kernel, output)?;
            // SAFETY: an `X86Avx512` exists only where AVX-512 F/BW/VL/VBMI and VNNI were
            // detected; the slices were checked above.
            unsafe { zmm::conv_int8(input, kernel, zero_points, output, &g.dims()) };
            return Ok(KernelPath::X86Avx512);
        }
        super::super::reference::int8::conv2d(g, input, kernel, zero_points, output)
            .map(|()| KernelPath::Reference)
    }

    /// Same checks, same errors, same codes as [`super::super::reference::int8::linear`]:
    /// 64 products per `vpdpbusd` and row, eight rows streamed at once (the lines ahead
    /// prefetched), each row's weight sum
    /// (for the zero point's term) taken by a second `vpdpbusd` against ones as it streams.
    /// Inputs longer than [`super::MAX_LINEAR_INT8_INPUT`] or a zero point outside the codes
    /// run the reference.
    fn linear_int8(
        &self,
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        let n = super::super::reference::int8::check_linear(input, kernel, output)?;
        #[cfg(target_arch = "x86_64")]
        if n <= super::MAX_LINEAR_INT8_INPUT && (-128..=127).contains(&zero_points.input) {
            // SAFETY: an `X86Avx512` exists only where AVX-512 F/BW/VL/VBMI and VNNI were
            // detected; the slices were checked above.
            unsafe { zmm::linear_int8(input, kernel, zero_points, output) };
            return Ok(KernelPath::X86Avx512);
        }
        let _ = n;
        super::super::reference::int8::linear(input, kernel, zero_points, output)
            .map(|()| KernelPath::Reference)
    }

    fn relu_int8(&self, values: &mut [i8], zero_point: i32) -> KernelPath {
        Self::AVX2.relu_int8(values, zero_point)
    }

    /// The integer LRN over blocks of pixels ([`super::super::blocked::lrn_int8`], 16 pixels
    /// at a time for real tables): same checks, same errors, same codes as
    /// [`super::super::reference::int8::lrn_in_place`].
    fn lrn_int8(
        &self,
        values: &mut [i8],
        shape: Shape,
        spec: &LrnSpec,
        table: LrnTable<'_>,
        zero_points: ZeroPoints,
    ) -> Result<KernelPath, Error> {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: an `X86Avx512` exists only where AVX-512 F/BW/VL/VBMI and VNNI were
            // detected.
            let own = unsafe { zmm::lrn_int8(values, shape, spec, table, zero_points) }?;
            Ok(KernelPath::own_or_reference(own, KernelPath::X86Avx512))
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self::AVX2.lrn_int8(values, shape, spec, table, zero_points)
    }

    /// Same checks, same errors, same codes as [`super::super::reference::int8::max_pool`]:
    /// an output row per step for planes at most
    /// [`MAX_AVX512_POOL_INT8_ROW`](super::MAX_AVX512_POOL_INT8_ROW) codes wide (a window's
    /// maximum does not depend on the order of its comparisons); wider planes run the AVX2
    /// set's.
    fn max_pool_int8(
        &self,
        g: &PoolGeometry,
        input: &[i8],
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        #[cfg(target_arch = "x86_64")]
        {
            g.check(input.len(), output.len())?;
            // SAFETY: an `X86Avx512` exists only where AVX-512 F/BW/VL/VBMI and VNNI were
            // detected; the slices were checked above.
            if unsafe { zmm::max_pool_int8(g, input, output) } {
                return Ok(KernelPath::X86Avx512);
            }
        }
        Self::AVX2.max_pool_int8(g, input, output)
    }

    fn adaptive_avg_pool_int8(
        &self,
        g: &AdaptivePoolGeometry,
        input: &[i8],
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        Self::AVX2.adaptive_avg_pool_int8(g, input, output)
    }
}

#[cfg(target_arch = "x86_64")]
mod zmm {
    use super::super::super::blocked;
    use super::super::x86::{
        blocks_of, conv_f32_loops, finish_linear_f32, gather, lanes_fit, Block, Tap,
    };
    use super::super::LrnTable;
    use crate::arch::{LrnSpec, Shape};
    use crate::error::Error;
    use crate::geometry::ConvDims as Dims;
    use crate::geometry::PoolGeometry;
    use crate::int8::requant::output_code;
    use crate::int8::{QKernel, ZeroPoints};
    use core::arch::x86_64::*;

    /// Output pixels per block: four vectors of 16 lanes.
    const NP: usize = 64;
    /// Output channels per tile: 16 accumulators, 4 panel vectors and a broadcast weight
    /// word in the 32 registers.
    const MV: usize = 4;
    /// Output channels per tile when a block has at most 32 pixels (a fused chain's one or
    /// two rows): 16 accumulators again, and each panel vector used by 8 channels.
    const MV_NARROW: usize = 8;
    /// Most taps per panel (a multiple of 4; 64 KiB of codes).
    const KC: usize = 1024;
    /// Most output channels whose sums are kept at once (96 KiB): all of conv3's.
    const OC: usize = 384;

    /// Groups of four taps: `[quad][pixel]` 32-bit words, each holding one pixel's four
    /// codes `q + 128` (the first tap in the low byte), the order `vpdpbusd` reads.
    #[repr(C, align(64))]
    struct Panel([u32; KC / 4 * NP]);

    #[repr(C, align(64))]
    struct Sums([[i32; NP]; OC]);

    /// The int8 convolution on checked slices; `zero_points.input` must be in [-128, 127].
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW, VL, VBMI and VNNI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni,avx2")]
    pub(super) unsafe fn conv_int8(
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
        d: &Dims,
    ) {
        // The code of the padding, as every tap of it reads.
        let pad = (zero_points.input + 128) as u8;
        let mut panel = Panel([0; KC / 4 * NP]);
        let mut sums = Sums([[0; NP]; OC]);
        let mut start = [0i32; OC];
        let k_blocks = d.taps.div_ceil(KC).max(1);
        // Block lengths that are whole quads, so that only the last block ends in part of one.
        let kc_len = d.taps.div_ceil(k_blocks).next_multiple_of(4).max(4);
        let vector_packing = lanes_fit(d, input.len()) && input.len() >= 4;
        for g in 0..d.groups {
            let in_g = input.get(g * d.cin_g * d.in_plane..).unwrap_or(&[]);
            for c0 in (0..d.cout_g).step_by(OC) {
                let nc = OC.min(d.cout_g - c0);
                let first = g * d.cout_g + c0;
                // bias - (zp_in + 128) * (sum of the row's weights), wrapping as the sums do.
                for (s, o) in start.iter_mut().zip(first..).take(nc) {
                    let row = kernel
                        .weight
                        .get(o * d.taps..(o + 1) * d.taps)
                        .unwrap_or(&[]);
                    // SAFETY: AVX-512 and VNNI, as this function requires.
                    let w_sum = unsafe { weight_sum(row) };
                    let bias = kernel.bias.get(o).copied().unwrap_or(0);
                    *s = bias.wrapping_sub(w_sum.wrapping_mul(zero_points.input + 128));
                }
                for p0 in (0..d.pixels).step_by(NP) {
                    let np = NP.min(d.pixels - p0);
                    let block = Block::<NP>::new(d, p0);
                    for (row, &s) in sums.0.iter_mut().zip(&start).take(nc) {
                        *row = [s; NP];
                    }
                    for k0 in (0..d.taps).step_by(kc_len) {
                        let kc = kc_len.min(d.taps - k0);
                        if vector_packing {
                            // SAFETY: AVX-512 with VBMI, as this function requires; the
                            // geometry fits i32 lanes; `input.len() >= 4`.
                            unsafe { pack(&mut panel.0, input, g, d, &block, k0, kc, pad) };
                        } else {
                            pack_scalar(&mut panel.0, in_g, d, &block, k0, kc, pad);
                        }
                        let panel = panel.0.get(..kc.div_ceil(4) * NP).unwrap_or(&[]);
                        let mut o = 0;
                        while o < nc {
                            let rest = sums.0.get_mut(o..nc).unwrap_or(&mut []);
                            let t = Tile {
                                weight: kernel.weight,
                                taps: d.taps,
                                oc: first + o,
                                k0,
                                kc,
                            };
                            // SAFETY (each call): AVX-512 and VNNI, as this function requires.
                            o += match (nc - o, np.div_ceil(16)) {
                                (MV_NARROW.., v @ (1 | 2)) => unsafe {
                                    tile_any::<MV_NARROW>(&t, panel, rest, v)
                                },
                                (1, v) => unsafe { tile_any::<1>(&t, panel, rest, v) },
                                (2, v) => unsafe { tile_any::<2>(&t, panel, rest, v) },
                                (3, v) => unsafe { tile_any::<3>(&t, panel, rest, v) },
                                (_, v) => unsafe { tile_any::<MV>(&t, panel, rest, v) },
                            };
                        }
                    }
                    let per_channel = kernel.multiplier.iter().zip(kernel.shift).skip(first);
                    for (o, (row, (&m, &r))) in sums.0.iter().zip(per_channel).take(nc).enumerate()
                    {
                        let at = (first + o) * d.pixels + p0;
                        let dst = output.get_mut(at..at + np).unwrap_or(&mut []);
                        // SAFETY: AVX-512, as this function requires.
                        unsafe { output_codes(row, m, r, zero_points.output, dst) };
                    }
                }
            }
        }
    }

    /// `dst[i] = output_code(sums[i], m, r, zp_out)` for the first `min(sums.len(),
    /// dst.len())` values, 16 at a time: the products and the rounding in 64-bit lanes
    /// (`vpmuldq` on the even and the odd 32-bit sums), the shift, the zero point and the
    /// clamp as [`output_code`] does them, so the codes are the same bit for bit.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VL.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
    unsafe fn output_codes(sums: &[i32], m: i32, r: i32, zp_out: i32, dst: &mut [i8]) {
        let n = sums.len().min(dst.len());
        if !(1..=62).contains(&r) {
            // Outside the shifts `requantize` takes: the scalar rule (every code saturates
            // the zero point).
            for (q, &a) in dst.iter_mut().zip(sums) {
                *q = output_code(a, m, r, zp_out);
            }
            return;
        }
        let mv = _mm512_set1_epi64(m as i64);
        let round = _mm512_set1_epi64(1i64 << (r - 1));
        let count = _mm_cvtsi32_si128(r);
        let zp = _mm512_set1_epi64(zp_out as i64);
        let (lo, hi) = (_mm512_set1_epi64(-128), _mm512_set1_epi64(127));
        // (acc * m + 2^(r-1)) >> r + zp, clamped to the codes, on the low 32-bit halves of
        // the 64-bit lanes: |acc * m| <= 2^62, so nothing overflows (as in `requantize`).
        let code = |a: __m512i| {
            let v = _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(a, mv), round), count);
            _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(v, zp), lo), hi)
        };
        for i in (0..n).step_by(16) {
            let mask: __mmask16 = u16::MAX >> (16 - (n - i).min(16));
            // SAFETY: the mask's lanes lie below `n - i`: within `sums` and `dst` from `i`;
            // masked-off lanes are neither read nor written.
            unsafe {
                let a = _mm512_maskz_loadu_epi32(mask, sums.as_ptr().add(i));
                let even = code(a);
                let odd = code(_mm512_srli_epi64(a, 32));
                let codes = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
                _mm512_mask_cvtepi32_storeu_epi8(dst.as_mut_ptr().add(i).cast(), mask, codes);
            }
        }
    }

    /// The sum of a row of weights, wrapping: 64 at a time by `vpdpbusd` against ones (a
    /// convolution called once per fused row computes its channels' sums on every call).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F and VNNI.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")]
    unsafe fn weight_sum(row: &[i8]) -> i32 {
        let ones = _mm512_set1_epi8(1);
        // Four sums in turn, so that the additions' latency overlaps (wrapping i32 sums
        // are exact in any order).
        let mut acc = [_mm512_setzero_si512(); 4];
        let mut fours = row.chunks_exact(256);
        for four in &mut fours {
            for (a, chunk) in acc.iter_mut().zip(four.chunks_exact(64)) {
                // SAFETY: `chunk` is 64 bytes, one vector.
                let w = unsafe { _mm512_loadu_si512(chunk.as_ptr().cast()) };
                *a = _mm512_dpbusd_epi32(*a, ones, w);
            }
        }
        let mut chunks = fours.remainder().chunks_exact(64);
        for (a, chunk) in acc.iter_mut().zip(&mut chunks) {
            // SAFETY: `chunk` is 64 bytes, one vector.
            let w = unsafe { _mm512_loadu_si512(chunk.as_ptr().cast()) };
            *a = _mm512_dpbusd_epi32(*a, ones, w);
        }
        let vectors = acc.iter().map(|&a| _mm512_reduce_add_epi32(a));
        let rest = chunks.remainder().iter().map(|&w| w as i32);
        vectors.chain(rest).fold(0i32, i32::wrapping_add)
    }

    /// Taps `k0..k0 + kc` of a block as codes `q + 128` (`pad` in the padding), four taps per
    /// pixel word; taps past `kc` in the last quad are 0 (their weights are taken as 0 too).
    #[inline(always)]
    fn pack_scalar(
        panel: &mut [u32],
        input: &[i8],
        d: &Dims,
        block: &Block<NP>,
        k0: usize,
        kc: usize,
        pad: u8,
    ) {
        let mut tap = Tap::new(k0, d.k);
        for (quad, words) in panel.chunks_exact_mut(NP).take(kc.div_ceil(4)).enumerate() {
            words.iter_mut().for_each(|w| *w = 0);
            for byte in 0..4usize.min(kc - 4 * quad) {
                gather(input, d, block, tap, |j, v| {
                    if let Some(w) = words.get_mut(j) {
                        let u = v.map_or(pad, |q| (q as u8) ^ 0x80);
                        *w |= (u as u32) << (8 * byte);
                    }
                });
                tap.step(d.k);
            }
        }
    }

    /// Where a vector of 16 pixels can take a tap's codes with byte permutes: in one or two
    /// runs of lanes (`second`: the lanes of the second run, empty if one), each run the
    /// offset of its first pixel's tap `(0, 0)` in a plane (negative in the padding) and, in
    /// bytes `4 j..4 j + 4`, pixel `j`'s offset from it. Only where every lane of a run lies
    /// in the 64 bytes from its run's first: the stride-1 vectors of AlexNet's convolutions
    /// (rows' ends and padding included) are one run; a stride-4 vector (conv1) is one run,
    /// or two where it crosses an output row; anything else gathers. The lanes whose tap
    /// falls in the padding take the padding's code after the permutes.
    #[derive(Clone, Copy)]
    struct Window {
        runs: [(isize, __m512i); 2],
        second: __mmask16,
    }

    /// The [`Window`] of vector `q` of a block, if it has one.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F; the geometry passes [`lanes_fit`].
    #[inline]
    #[target_feature(enable = "avx512f,avx2")]
    unsafe fn window(d: &Dims, block: &Block<NP>, q: usize) -> Option<Window> {
        let (rows, cols) = (
            block.row.get(16 * q..16 * q + 16)?,
            block.col.get(16 * q..16 * q + 16)?,
        );
        // Rows and columns wrapped below zero are small negative numbers again (lanes_fit
        // bounds them), so offsets are exact in isize.
        let offsets: [isize; 16] = core::array::from_fn(|j| {
            let (r, c) = (rows.get(j).copied(), cols.get(j).copied());
            r.zip(c)
                .map_or(0, |(r, c)| r as isize * d.in_w as isize + c as isize)
        });
        let first = offsets[0];
        // The first run: the leading lanes within 64 bytes of the first; the second: the rest.
        let split = offsets
            .iter()
            .position(|&at| !(0..64).contains(&(at - first)))
            .unwrap_or(16);
        let second_first = offsets.get(split).copied().unwrap_or(first);
        let (mut index, mut second_index) = ([0u8; 64], [0u8; 64]);
        for (j, &at) in offsets.iter().enumerate() {
            let (run, from) = if j < split {
                (&mut index, at - first)
            } else {
                (&mut second_index, at - second_first)
            };
            let from = u8::try_from(from).ok().filter(|&from| from < 64)?;
            run.get_mut(4 * j..4 * j + 4)?.fill(from);
        }
        // SAFETY: 64 bytes each, one vector.
        let (index, second_index) = unsafe {
            (
                _mm512_loadu_si512(index.as_ptr().cast()),
                _mm512_loadu_si512(second_index.as_ptr().cast()),
            )
        };
        Some(Window {
            runs: [(first, index), (second_first, second_index)],
            second: u16::MAX.checked_shl(split as u32).unwrap_or(0),
        })
    }

    /// One run of a [`Window`] for a tap: the 64 input bytes from `start` (loaded only where
    /// inside `input`; `start` may lie before it or past its end) permuted by `index` into
    /// byte `byte` of each lane's word (`byte_mask`), lifted by 128.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW, VL and VBMI.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx2")]
    unsafe fn run_codes(input: &[i8], start: isize, index: __m512i, byte_mask: u64) -> __m512i {
        // SAFETY: AVX-512 F, BW and VL, as this function requires.
        let data = unsafe { bytes_at(input, start) };
        let lifted = _mm512_xor_si512(data, _mm512_set1_epi8(0x80u8 as i8));
        _mm512_maskz_permutexvar_epi8(byte_mask, index, lifted)
    }

    /// The bits `lo..hi` of a 64-bit mask (none if `hi <= lo`), `lo` and `hi` at most 64.
    #[inline(always)]
    fn bits_between(lo: usize, hi: usize) -> u64 {
        match hi.saturating_sub(lo) {
            0 => 0,
            n => (u64::MAX >> (64 - n)) << lo,
        }
    }

    /// Where the four taps of a quad lie, for [`quad_codes`]: in one or two groups of
    /// consecutive taps (`second`: the bytes of the second group's taps in each word, 0 for
    /// one group), each group within 64 bytes of its first tap's offset `bases[g]` in the
    /// input (a plane's start plus `ky * in_w + kx`). `deltas`, `ky` and `kx`: one byte per
    /// tap of a word, the tap's offset from its group's first, its kernel row and column.
    #[derive(Clone, Copy)]
    struct QuadTaps {
        bases: [isize; 2],
        second: u64,
        deltas: i32,
        ky: i32,
        kx: i32,
    }

    impl QuadTaps {
        /// The plan for four taps of group `g`, if they fall in at most two such groups and
        /// each tap's plane lies inside `input` (`input_len` codes).
        #[inline(always)]
        fn new(d: &Dims, g: usize, taps: &[Tap; 4], input_len: usize) -> Option<Self> {
            let mut offsets = [0isize; 4];
            for (o, t) in offsets.iter_mut().zip(taps) {
                let plane = (g * d.cin_g + t.ic) * d.in_plane;
                if plane + d.in_plane > input_len || t.ky > 255 || t.kx > 255 {
                    return None;
                }
                *o = (plane + t.ky * d.in_w + t.kx) as isize;
            }
            // Taps ascend in the contract's order, and so do their offsets but where a
            // kernel is wider than the input (the check below turns such quads away): the
            // second group starts at the first tap more than 64 bytes past the first.
            let split = offsets
                .iter()
                .position(|&o| o - offsets[0] > 64)
                .unwrap_or(4);
            let bases = [
                offsets[0],
                offsets.get(split).copied().unwrap_or(offsets[0]),
            ];
            let (mut deltas, mut ky, mut kx) = (0u32, 0u32, 0u32);
            for (b, (&o, t)) in offsets.iter().zip(taps).enumerate() {
                let from = o - bases[usize::from(b >= split)];
                if !(0..=64).contains(&from) {
                    return None;
                }
                deltas |= (from as u32) << (8 * b);
                ky |= (t.ky as u32) << (8 * b);
                kx |= (t.kx as u32) << (8 * b);
            }
            let second_bytes = 0xfu32 << split & 0xf;
            Some(QuadTaps {
                bases,
                // Byte `b` of every word: bit `4 j + b` of the 64-bit mask.
                second: 0x1111_1111_1111_1111u64 * u64::from(second_bytes),
                deltas: deltas as i32,
                ky: ky as i32,
                kx: kx as i32,
            })
        }
    }

    /// The 64 bytes of `input` from `start`, zero where outside it (then `start` may lie
    /// before it or past its end).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VL.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
    unsafe fn bytes_at(input: &[i8], start: isize) -> __m512i {
        let len = input.len() as isize;
        if start >= 0 && start + 64 <= len {
            // SAFETY: the 64 bytes lie inside `input`; unaligned load.
            return unsafe { _mm512_loadu_si512(input.as_ptr().offset(start).cast()) };
        }
        let bytes = bits_between(
            (-start).clamp(0, 64) as usize,
            (len - start).clamp(0, 64) as usize,
        );
        // SAFETY: the mask's bytes lie inside `input`; masked-off bytes are not read (and
        // cannot fault), so the address may lie outside.
        unsafe { _mm512_maskz_loadu_epi8(bytes, input.as_ptr().wrapping_offset(start)) }
    }

    /// A whole quad of vector `q` at once: each tap's codes of a run's pixels are among the
    /// 128 bytes from its group's base plus the run's first pixel, so one two-register byte
    /// permute (`vpermt2b`) per group and run puts every pixel's four codes in its word; the
    /// lanes whose tap falls in the padding take the padding's code, found by byte
    /// comparisons of rows and columns (`rows`, `cols`: each lane's row and column of tap
    /// `(0, 0)` in its four bytes, the padding's rows and columns wrapped below 256). The
    /// codes are right only where `in_h + pad` and `in_w + pad` are below 256 (every read is
    /// inside `input` whatever they are).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW, VL and VBMI.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx2")]
    unsafe fn quad_codes(
        input: &[i8],
        d: &Dims,
        taps: &QuadTaps,
        w: &Window,
        rows: __m512i,
        cols: __m512i,
        pad: __m512i,
    ) -> __m512i {
        // A run's lanes: each inside lane's byte lies at its group's base + the run's first
        // pixel + the lane's offset from it (below 64) + the tap's delta (at most 64).
        let run = |(first, window): (isize, __m512i)| {
            let index = _mm512_add_epi8(window, _mm512_set1_epi32(taps.deltas));
            let group = |base: isize| {
                let start = base + first;
                // SAFETY: AVX-512 F and BW, as this function requires.
                let (low, high) = unsafe { (bytes_at(input, start), bytes_at(input, start + 64)) };
                _mm512_permutex2var_epi8(low, index, high)
            };
            let codes = group(taps.bases[0]);
            if taps.second == 0 {
                return codes;
            }
            _mm512_mask_blend_epi8(taps.second, codes, group(taps.bases[1]))
        };
        let mut codes = run(w.runs[0]);
        if w.second != 0 {
            codes = _mm512_mask_blend_epi32(w.second, codes, run(w.runs[1]));
        }
        let y = _mm512_add_epi8(rows, _mm512_set1_epi32(taps.ky));
        let x = _mm512_add_epi8(cols, _mm512_set1_epi32(taps.kx));
        let inside = _mm512_cmplt_epu8_mask(y, _mm512_set1_epi8(d.in_h as u8 as i8))
            & _mm512_cmplt_epu8_mask(x, _mm512_set1_epi8(d.in_w as u8 as i8));
        let lifted = _mm512_xor_si512(codes, _mm512_set1_epi8(0x80u8 as i8));
        _mm512_mask_blend_epi8(inside, pad, lifted)
    }

    /// [`pack_scalar`] with vectors. A whole quad of 16 pixels at once where the quad's taps
    /// and the pixels allow it ([`quad_codes`]: in vectors with a window, every full quad
    /// whose taps lie in at most two groups of 64 bytes, where `in_h + pad` and `in_w + pad`
    /// are below 256); else tap by tap, 16 pixels of one tap by byte
    /// permutes of the 64 input bytes from each run's first pixel ([`Window`]: one run or
    /// two, the padding's lanes blended to its code) where the pixels allow it, else by
    /// masked gathers of the 32-bit words holding the codes (a lane reads only where its
    /// tap is inside the input).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW, VL and VBMI; the geometry passes [`lanes_fit`];
    /// `input.len() >= 4`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx2")]
    unsafe fn pack(
        panel: &mut [u32],
        input: &[i8],
        g: usize,
        d: &Dims,
        block: &Block<NP>,
        k0: usize,
        kc: usize,
        pad: u8,
    ) {
        // SAFETY: AVX-512 F and lanes_fit, as this function requires.
        let lanes = unsafe { lanes::<NP, { NP / 16 }>(d, block) };
        let last_word = _mm512_set1_epi32(input.len().saturating_sub(4) as i32);
        let pad_bytes = _mm512_set1_epi8(pad as i8);
        let pad = _mm512_set1_epi32(pad as i32);
        let low = _mm512_set1_epi32(0xff);
        // SAFETY (each): AVX-512 F and lanes_fit, as this function requires.
        let windows: [Option<Window>; NP / 16] =
            core::array::from_fn(|q| unsafe { window(d, block, q) });
        // Rows and columns as bytes: in 0..in_h + pad (the padding's wrapped to 256 - pad
        // and up), so a byte comparison tells the input from the padding.
        let byte_lanes = d.in_h + d.pad < 256 && d.in_w + d.pad < 256;
        let spread = _mm512_set1_epi32(0x0101_0101);
        let in_bytes = |v: &__m512i| _mm512_mullo_epi32(_mm512_and_si512(*v, low), spread);
        let rows: [__m512i; NP / 16] = core::array::from_fn(|q| in_bytes(&lanes.row[q]));
        let cols: [__m512i; NP / 16] = core::array::from_fn(|q| in_bytes(&lanes.col[q]));
        let mut tap = Tap::new(k0, d.k);
        for (quad, words) in panel.chunks_exact_mut(NP).take(kc.div_ceil(4)).enumerate() {
            let taps_here = 4.min(kc - 4 * quad);
            let mut taps = [tap; 4];
            for t in taps.iter_mut().take(taps_here) {
                *t = tap;
                tap.step(d.k);
            }
            let whole_quad = (taps_here == 4 && byte_lanes)
                .then(|| QuadTaps::new(d, g, &taps, input.len()))
                .flatten();
            let vectors = words.chunks_exact_mut(16).zip(&windows).enumerate();
            for (q, (out, w)) in vectors {
                let mut p = _mm512_setzero_si512();
                match (&whole_quad, w) {
                    (Some(quad_taps), Some(w)) => {
                        // SAFETY: AVX-512 with VBMI, as this function requires;
                        // `byte_lanes`.
                        p = unsafe {
                            quad_codes(input, d, quad_taps, w, rows[q], cols[q], pad_bytes)
                        };
                    }
                    _ => {
                        for (byte, &tap) in taps.iter().enumerate().take(taps_here) {
                            // SAFETY: AVX-512 with VBMI, as this function requires.
                            let u = unsafe {
                                tap_codes(input, g, d, &lanes, q, w, tap, byte, pad, last_word)
                            };
                            p = _mm512_or_si512(p, u);
                        }
                    }
                }
                // SAFETY: `out` is 16 u32, one vector.
                unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), p) };
            }
        }
    }

    /// One tap's codes of vector `q` in byte `byte` of each lane's word (the other bytes
    /// zero), by the window's byte permutes where it has one, else by masked gathers.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW, VL and VBMI; the geometry passes [`lanes_fit`];
    /// `input.len() >= 4`; `last_word` is `input.len() - 4` and `pad` the padding's code in
    /// every lane.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx2")]
    unsafe fn tap_codes(
        input: &[i8],
        g: usize,
        d: &Dims,
        lanes: &Lanes<{ NP / 16 }>,
        q: usize,
        w: &Option<Window>,
        tap: Tap,
        byte: usize,
        pad: __m512i,
        last_word: __m512i,
    ) -> __m512i {
        let to_byte = _mm512_set1_epi32(8 * byte as i32);
        let plane = (g * d.cin_g + tap.ic) * d.in_plane;
        let plane_ok = plane + d.in_plane <= input.len();
        // SAFETY: AVX-512 F, as this function requires.
        let (inside, offset) = unsafe { tap_lanes(d, lanes, q, tap) };
        let inside = if plane_ok { inside } else { 0 };
        if let (Some(w), true) = (w, plane_ok) {
            // Every inside lane's code is among its run's 64 bytes.
            let base = (plane + tap.ky * d.in_w + tap.kx) as isize;
            let byte_mask = 0x1111_1111_1111_1111 << byte;
            let [(first, index), (second_first, second_index)] = w.runs;
            // SAFETY (both): AVX-512 with VBMI, as this function requires.
            let mut codes = unsafe { run_codes(input, base + first, index, byte_mask) };
            if w.second != 0 {
                let second =
                    unsafe { run_codes(input, base + second_first, second_index, byte_mask) };
                codes = _mm512_mask_blend_epi32(w.second, codes, second);
            }
            // The padding's code where the tap is outside the input.
            return _mm512_mask_blend_epi32(inside, _mm512_sllv_epi32(pad, to_byte), codes);
        }
        let at = _mm512_add_epi32(offset, _mm512_set1_epi32(plane as i32));
        // The word read starts at the code, or up to 3 bytes before it at the end of
        // `input`, so all 4 bytes are inside.
        let start = _mm512_min_epi32(at, last_word);
        let shift = _mm512_slli_epi32::<3>(_mm512_sub_epi32(at, start));
        // SAFETY: a lane is read only where `inside` is set: its code is in the plane,
        // inside `input` (plane_ok), and its word starts at most 3 bytes earlier, at or
        // after byte 0 (`input.len() >= 4`), and ends inside.
        let word = unsafe {
            _mm512_mask_i32gather_epi32::<1>(
                _mm512_setzero_si512(),
                inside,
                start,
                input.as_ptr().cast(),
            )
        };
        let code = _mm512_and_si512(_mm512_srlv_epi32(word, shift), _mm512_set1_epi32(0xff));
        let u =
            _mm512_mask_blend_epi32(inside, pad, _mm512_xor_si512(code, _mm512_set1_epi32(0x80)));
        _mm512_sllv_epi32(u, to_byte)
    }

    /// A block's pixels as `V` vectors of 16 i32 lanes: the input row and column of tap
    /// `(0, 0)`, negative in the padding, and their offset `row * in_w + col` in a plane.
    struct Lanes<const V: usize> {
        row: [__m512i; V],
        col: [__m512i; V],
        offset: [__m512i; V],
    }

    /// # Safety
    /// The CPU must support AVX-512 F; the geometry passes [`lanes_fit`].
    #[inline]
    #[target_feature(enable = "avx512f,avx2")]
    unsafe fn lanes<const N: usize, const V: usize>(d: &Dims, block: &Block<N>) -> Lanes<V> {
        let mut lanes = Lanes {
            row: [_mm512_setzero_si512(); V],
            col: [_mm512_setzero_si512(); V],
            offset: [_mm512_setzero_si512(); V],
        };
        let vectors = lanes
            .row
            .iter_mut()
            .zip(&mut lanes.col)
            .zip(&mut lanes.offset);
        for (q, ((r, c), o)) in vectors.enumerate() {
            let mut rs = [0i32; 16];
            let mut cs = [0i32; 16];
            for (j, (rj, cj)) in rs.iter_mut().zip(&mut cs).enumerate() {
                // Wrapped below zero: back to small negative numbers (lanes_fit bounds both).
                *rj = block.row.get(16 * q + j).map_or(0, |&v| v as isize as i32);
                *cj = block.col.get(16 * q + j).map_or(0, |&v| v as isize as i32);
            }
            // SAFETY: each is an array of 16 i32, one vector.
            unsafe {
                *r = _mm512_loadu_si512(rs.as_ptr().cast());
                *c = _mm512_loadu_si512(cs.as_ptr().cast());
            }
            *o = _mm512_add_epi32(_mm512_mullo_epi32(*r, _mm512_set1_epi32(d.in_w as i32)), *c);
        }
        lanes
    }

    /// The lanes of vector `q` whose tap is inside the input, and their offsets in a plane
    /// (meaningful only inside).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F.
    #[inline]
    #[target_feature(enable = "avx512f,avx2")]
    unsafe fn tap_lanes<const V: usize>(
        d: &Dims,
        lanes: &Lanes<V>,
        q: usize,
        tap: Tap,
    ) -> (__mmask16, __m512i) {
        let (Some(&row), Some(&col), Some(&offset)) =
            (lanes.row.get(q), lanes.col.get(q), lanes.offset.get(q))
        else {
            return (0, _mm512_setzero_si512());
        };
        let y = _mm512_add_epi32(row, _mm512_set1_epi32(tap.ky as i32));
        let x = _mm512_add_epi32(col, _mm512_set1_epi32(tap.kx as i32));
        // Unsigned comparisons: a row or column below zero is a huge number.
        let inside = _mm512_cmplt_epu32_mask(y, _mm512_set1_epi32(d.in_h as i32))
            & _mm512_cmplt_epu32_mask(x, _mm512_set1_epi32(d.in_w as i32));
        let shift = (tap.ky * d.in_w + tap.kx) as i32;
        (inside, _mm512_add_epi32(offset, _mm512_set1_epi32(shift)))
    }

    // ---------------------------------------------------------------- f32

    /// Output pixels per f32 block: two vectors of 16.
    const NR: usize = 32;
    /// Output channels per f32 tile: 16 accumulators, 2 panel vectors, a broadcast weight
    /// and products in the 32 registers.
    const MR: usize = 8;
    /// Most taps per f32 panel (64 KiB on the stack).
    const KC_F32: usize = 512;

    #[repr(C, align(64))]
    struct PanelF32([f32; KC_F32 * NR]);

    /// The f32 convolution on checked slices, the loops it shares with the AVX2 kernel
    /// (`super::super::x86::conv_f32_loops`) on 16 lanes: tap blocks (the partial sums kept
    /// in the output between them, which stores an f32 exactly), pixel blocks of 32 packed
    /// once, output channels 8 at a time; each product rounded, then added.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
    pub(super) unsafe fn conv_f32(
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
        d: &Dims,
    ) {
        let mut panel = PanelF32([0.0; KC_F32 * NR]);
        let pack = |panel: &mut [f32], in_g: &[f32], block: &Block<NR>, k0, kc| {
            // SAFETY: AVX-512 F, as this function requires; the geometry fits i32 lanes.
            unsafe { pack_f32(panel, in_g, d, block, k0, kc) }
        };
        let tiles = |panel: &[f32], g: usize, k0, kc, p0: usize| {
            let np = NR.min(d.pixels - p0);
            let t = TileF32 {
                weight,
                bias,
                taps: d.taps,
                pixels: d.pixels,
                k0,
                kc,
                p0,
                np,
            };
            let mut o = 0;
            while o < d.cout_g {
                let oc = g * d.cout_g + o;
                // SAFETY (each arm): AVX-512 F, as this function requires.
                o += match (d.cout_g - o, np > 16) {
                    (1, false) => unsafe { tile_f32::<1, 1>(&t, output, panel, oc) },
                    (1, true) => unsafe { tile_f32::<1, 2>(&t, output, panel, oc) },
                    (2 | 3, false) => unsafe { tile_f32::<2, 1>(&t, output, panel, oc) },
                    (2 | 3, true) => unsafe { tile_f32::<2, 2>(&t, output, panel, oc) },
                    (4 | 5, false) => unsafe { tile_f32::<4, 1>(&t, output, panel, oc) },
                    (4 | 5, true) => unsafe { tile_f32::<4, 2>(&t, output, panel, oc) },
                    (6 | 7, false) => unsafe { tile_f32::<6, 1>(&t, output, panel, oc) },
                    (6 | 7, true) => unsafe { tile_f32::<6, 2>(&t, output, panel, oc) },
                    (_, false) => unsafe { tile_f32::<MR, 1>(&t, output, panel, oc) },
                    (_, true) => unsafe { tile_f32::<MR, 2>(&t, output, panel, oc) },
                };
            }
        };
        conv_f32_loops::<NR>(input, d, KC_F32, &mut panel.0, pack, tiles);
    }

    /// The f32 panel of taps `k0..k0 + kc` of a block (`+0.0` in the padding) by masked
    /// gathers: a lane reads only where its tap is inside its input plane.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F; the geometry passes [`lanes_fit`].
    #[target_feature(enable = "avx512f,avx2")]
    unsafe fn pack_f32(
        panel: &mut [f32],
        input: &[f32],
        d: &Dims,
        block: &Block<NR>,
        k0: usize,
        kc: usize,
    ) {
        // SAFETY: AVX-512 F and lanes_fit, as this function requires.
        let lanes = unsafe { lanes::<NR, { NR / 16 }>(d, block) };
        let mut tap = Tap::new(k0, d.k);
        for values in panel.chunks_exact_mut(NR).take(kc) {
            let plane = input
                .get(tap.ic * d.in_plane..)
                .and_then(|p| p.get(..d.in_plane));
            for (q, out) in values.chunks_exact_mut(16).enumerate() {
                // SAFETY: AVX-512 F, as this function requires.
                let (inside, offset) = unsafe { tap_lanes(d, &lanes, q, tap) };
                let v = match plane {
                    // SAFETY: a lane is read only where `inside` is set, that is where its
                    // row is in [0, in_h) and its column in [0, in_w): its offset is in
                    // [0, in_plane), inside `plane`.
                    Some(p) => unsafe {
                        _mm512_mask_i32gather_ps::<4>(
                            _mm512_setzero_ps(),
                            inside,
                            offset,
                            p.as_ptr().cast(),
                        )
                    },
                    None => _mm512_setzero_ps(),
                };
                // SAFETY: `out` is 16 floats.
                unsafe { _mm512_storeu_ps(out.as_mut_ptr(), v) };
            }
            tap.step(d.k);
        }
    }

    /// One f32 tile's operands: taps `k0..k0 + kc`, pixels `p0..p0 + np`.
    struct TileF32<'a> {
        weight: &'a [f32],
        bias: &'a [f32],
        taps: usize,
        pixels: usize,
        k0: usize,
        kc: usize,
        p0: usize,
        np: usize,
    }

    /// Output channels `oc..oc + M` of one tile, on the first `V` vectors of its pixels
    /// (enough for `np`): loads their partial sums (or their biases on the first tap block),
    /// adds the panel's taps in ascending order, stores them back; returns `M`.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F.
    #[target_feature(enable = "avx512f,avx2")]
    unsafe fn tile_f32<const M: usize, const V: usize>(
        t: &TileF32<'_>,
        output: &mut [f32],
        panel: &[f32],
        oc: usize,
    ) -> usize {
        let mut acc = [[0.0f32; NR]; M];
        for (i, row) in acc.iter_mut().enumerate() {
            if t.k0 == 0 {
                *row = [t.bias.get(oc + i).copied().unwrap_or(0.0); NR];
            } else {
                let src = output.get((oc + i) * t.pixels + t.p0..).unwrap_or(&[]);
                row.iter_mut()
                    .zip(src)
                    .take(t.np)
                    .for_each(|(a, &s)| *a = s);
            }
        }
        let rows: [&[f32]; M] = core::array::from_fn(|i| {
            let start = (oc + i) * t.taps + t.k0;
            t.weight.get(start..start + t.kc).unwrap_or(&[])
        });
        if panel.len() >= t.kc * NR && rows.iter().all(|r| r.len() >= t.kc) {
            let mut v = [[_mm512_setzero_ps(); V]; M];
            for (vi, a) in v.iter_mut().zip(&acc) {
                for (q, x) in vi.iter_mut().enumerate() {
                    // SAFETY: q < V <= 2: 16 of a row's NR = 32 floats at 16 q.
                    *x = unsafe { _mm512_loadu_ps(a.as_ptr().add(16 * q)) };
                }
            }
            let b = panel.as_ptr();
            for tap in 0..t.kc {
                let p: [__m512; V] = core::array::from_fn(|q| {
                    // SAFETY: tap < kc and panel.len() >= kc * NR: 16 floats at tap * NR +
                    // 16 q, q < V <= 2.
                    unsafe { _mm512_loadu_ps(b.add(tap * NR + 16 * q)) }
                });
                for (vi, row) in v.iter_mut().zip(&rows) {
                    // SAFETY: tap < kc <= row.len(), checked above.
                    let w = _mm512_set1_ps(unsafe { *row.get_unchecked(tap) });
                    for (x, &p) in vi.iter_mut().zip(&p) {
                        *x = _mm512_add_ps(*x, _mm512_mul_ps(w, p));
                    }
                }
            }
            for (vi, a) in v.iter().zip(acc.iter_mut()) {
                for (q, x) in vi.iter().enumerate() {
                    // SAFETY: q < V <= 2: 16 of a row's NR = 32 floats at 16 q.
                    unsafe { _mm512_storeu_ps(a.as_mut_ptr().add(16 * q), *x) };
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            let dst = output
                .get_mut((oc + i) * t.pixels + t.p0..)
                .unwrap_or(&mut []);
            dst.iter_mut()
                .zip(row)
                .take(t.np)
                .for_each(|(o, &a)| *o = a);
        }
        M
    }

    // ---------------------------------------------------------------- f32 max pool

    /// The f32 max pool, 16 outputs of a row at a time, each window scanned in the
    /// definition's order (its rows, then its columns): a later value replaces the running
    /// maximum when it is greater or NaN (two `vcmpps` masks, a masked move), so signed zeros
    /// and NaN come out as the definition's. The window's value at 16 outputs is one load for
    /// stride 1, two loads and a `vpermt2ps` for stride 2 (lanes `2 j` of 32 values); other
    /// strides return `false` and compute nothing. Loads and stores are masked to the row.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F; `g` must have passed `check` with these slices.
    #[target_feature(enable = "avx512f,avx2")]
    pub(super) unsafe fn max_pool_f32(g: &PoolGeometry, input: &[f32], output: &mut [f32]) -> bool {
        let (win, s) = (g.window().get(), g.stride().get());
        if s > 2 {
            return false;
        }
        let (in_w, out_w) = (g.in_w().get(), g.out_w().get());
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let spread = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(s as i32));
        let planes = input
            .chunks_exact(g.in_plane().get())
            .zip(output.chunks_exact_mut(g.out_plane().get()));
        for (in_plane, out_plane) in planes {
            for (oy, out_row) in out_plane.chunks_exact_mut(out_w).enumerate() {
                let rows = in_plane.chunks_exact(in_w).skip(oy * s).take(win);
                for ox0 in (0..out_w).step_by(16) {
                    let n = (out_w - ox0).min(16);
                    let mut m = None;
                    for row in rows.clone() {
                        for kx in 0..win {
                            // SAFETY: AVX-512 F, as this function requires.
                            let v = unsafe { window_values(row, ox0 * s + kx, n, s, spread) };
                            m = Some(match m {
                                None => v,
                                Some(m) => {
                                    let replace = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, m)
                                        | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                                    _mm512_mask_mov_ps(m, replace, v)
                                }
                            });
                        }
                    }
                    if let (Some(m), Some(dst)) = (m, out_row.get_mut(ox0..ox0 + n)) {
                        // SAFETY: `dst` holds `n` floats, the lanes the mask stores.
                        unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr(), lanes_below(n), m) };
                    }
                }
            }
        }
        true
    }

    /// The int8 max pool, one output row per step, for input rows of at most
    /// [`MAX_AVX512_POOL_INT8_ROW`](super::super::MAX_AVX512_POOL_INT8_ROW) codes: the
    /// window's rows folded by `vpmaxsb` into one register of column maxima, then for each
    /// `kx` the columns `ox * s + kx` of every output brought to lane `ox` by a byte permute
    /// (`vpermb`) and folded in. `false` (nothing written) for wider rows.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW, VL and VBMI; `g` must have passed `check` with these
    /// slices.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx2")]
    pub(super) unsafe fn max_pool_int8(g: &PoolGeometry, input: &[i8], output: &mut [i8]) -> bool {
        let (win, s) = (g.window().get(), g.stride().get());
        let (in_w, out_w) = (g.in_w().get(), g.out_w().get());
        if in_w > super::super::MAX_AVX512_POOL_INT8_ROW {
            return false;
        }
        // Floor mode without padding: every window lies inside its plane, so the lanes
        // `ox * s + kx` of the live outputs are columns below `in_w <= 64`.
        let (in_lanes, out_lanes) = (u64::MAX >> (64 - in_w), u64::MAX >> (64 - out_w));
        let mut first = [0u8; 64];
        for (ox, lane) in first.iter_mut().enumerate() {
            *lane = ((ox * s) & 63) as u8;
        }
        // SAFETY: `first` is 64 bytes; unaligned load.
        let first = unsafe { _mm512_loadu_si512(first.as_ptr().cast()) };
        let planes = input
            .chunks_exact(g.in_plane().get())
            .zip(output.chunks_exact_mut(g.out_plane().get()));
        for (in_plane, out_plane) in planes {
            for (oy, out_row) in out_plane.chunks_exact_mut(out_w).enumerate() {
                let mut columns = _mm512_set1_epi8(i8::MIN);
                for row in in_plane.chunks_exact(in_w).skip(oy * s).take(win) {
                    // SAFETY: `row` holds `in_w` codes, the lanes the mask loads.
                    let codes = unsafe { _mm512_maskz_loadu_epi8(in_lanes, row.as_ptr()) };
                    columns = _mm512_max_epi8(columns, codes);
                }
                let mut maxima = _mm512_set1_epi8(i8::MIN);
                for kx in 0..win {
                    let at = _mm512_add_epi8(first, _mm512_set1_epi8(kx as i8));
                    maxima = _mm512_max_epi8(maxima, _mm512_permutexvar_epi8(at, columns));
                }
                // SAFETY: `out_row` holds `out_w` codes, the lanes the mask stores.
                unsafe { _mm512_mask_storeu_epi8(out_row.as_mut_ptr(), out_lanes, maxima) };
            }
        }
        true
    }

    /// The mask of lanes `0..n` (all 16 for `n >= 16`).
    #[inline(always)]
    fn lanes_below(n: usize) -> __mmask16 {
        ((1u32 << n.min(16)) - 1) as __mmask16
    }

    /// `row[x0 + j * s]` in lane `j < n` (0 elsewhere, and wherever that is past the row),
    /// for `s` 1 or 2.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F.
    #[inline]
    #[target_feature(enable = "avx512f,avx2")]
    unsafe fn window_values(row: &[f32], x0: usize, n: usize, s: usize, spread: __m512i) -> __m512 {
        let avail = row.len().saturating_sub(x0);
        let p = row.as_ptr().wrapping_add(x0);
        if s == 1 {
            if avail == 0 {
                return _mm512_setzero_ps();
            }
            // SAFETY: `x0 < row.len()`; the masked load reads only lanes inside the row.
            return unsafe { _mm512_maskz_loadu_ps(lanes_below(n.min(avail)), p) };
        }
        let low = match avail {
            0 => _mm512_setzero_ps(),
            // SAFETY: `x0 < row.len()`; the masked load reads only lanes inside the row.
            _ => unsafe { _mm512_maskz_loadu_ps(lanes_below(avail), p) },
        };
        let high = match avail {
            0..=16 => _mm512_setzero_ps(),
            // SAFETY: `x0 + 16 < row.len()`; the masked load reads only lanes inside the row.
            _ => unsafe { _mm512_maskz_loadu_ps(lanes_below(avail - 16), p.wrapping_add(16)) },
        };
        _mm512_permutex2var_ps(low, spread, high)
    }

    // ---------------------------------------------------------------- int8

    /// One tile's weights: output channels from `oc`, taps `k0..k0 + kc` of rows of `taps`.
    struct Tile<'a> {
        weight: &'a [i8],
        taps: usize,
        oc: usize,
        k0: usize,
        kc: usize,
    }

    /// [`tile`] for the `v` (1 to 4) vectors of pixels a block fills; returns `M`.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F and VNNI.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")]
    unsafe fn tile_any<const M: usize>(
        t: &Tile<'_>,
        panel: &[u32],
        sums: &mut [[i32; NP]],
        v: usize,
    ) -> usize {
        // SAFETY (each arm): AVX-512 and VNNI, as this function requires.
        match v {
            1 => unsafe { tile::<M, 1>(t, panel, sums) },
            2 => unsafe { tile::<M, 2>(t, panel, sums) },
            3 => unsafe { tile::<M, 3>(t, panel, sums) },
            _ => unsafe { tile::<M, 4>(t, panel, sums) },
        }
        M
    }

    /// Adds the panel's taps to the sums of `M` output channels (the first `M` rows of
    /// `sums`) in their first `V` vectors of pixels. Leaves them alone unless the weights,
    /// panel and sums have what the tile reads (checked slices always do).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F and VNNI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")]
    unsafe fn tile<const M: usize, const V: usize>(
        t: &Tile<'_>,
        panel: &[u32],
        sums: &mut [[i32; NP]],
    ) {
        let quads = t.kc.div_ceil(4);
        let whole = t.kc / 4;
        let rows: [Option<&[i8]>; M] = core::array::from_fn(|i| {
            let start = (t.oc + i) * t.taps + t.k0;
            t.weight.get(start..start + t.kc)
        });
        let (Some(acc), true) = (
            sums.get_mut(..M)
                .and_then(|s| <&mut [[i32; NP]; M]>::try_from(s).ok()),
            panel.len() >= quads * NP && rows.iter().all(Option::is_some),
        ) else {
            return;
        };
        let rows = rows.map(|r| r.unwrap_or(&[]));
        let mut v = [[_mm512_setzero_si512(); V]; M];
        for (vi, a) in v.iter_mut().zip(acc.iter()) {
            for (q, x) in vi.iter_mut().enumerate() {
                // SAFETY: q < V <= 4: 16 of a row's NP = 64 sums at 16 q.
                *x = unsafe { _mm512_loadu_si512(a.as_ptr().add(16 * q).cast()) };
            }
        }
        let b = panel.as_ptr();
        // One quad: its V panel vectors against each channel's broadcast weight word.
        let step = |v: &mut [[__m512i; V]; M], quad: usize, words: [i32; M]| {
            let u: [__m512i; V] = core::array::from_fn(|q| {
                // SAFETY: quad < quads and panel.len() >= quads * NP: 16 words at
                // quad * NP + 16 q, q < V <= 4.
                unsafe { _mm512_loadu_si512(b.add(quad * NP + 16 * q).cast()) }
            });
            for (vi, &w) in v.iter_mut().zip(&words) {
                let w = _mm512_set1_epi32(w);
                for (x, &u) in vi.iter_mut().zip(&u) {
                    *x = _mm512_dpbusd_epi32(*x, u, w);
                }
            }
        };
        for quad in 0..whole {
            let words = rows.map(|row| {
                // SAFETY: quad < kc / 4 and the row has kc weights: 4 bytes at 4 quad.
                unsafe { row.as_ptr().add(4 * quad).cast::<i32>().read_unaligned() }
            });
            step(&mut v, quad, words);
        }
        if whole < quads {
            // The last quad's taps past the row's end: weight 0 (their panel codes are 0).
            let words = rows.map(|row| {
                let tail = row.get(4 * whole..).unwrap_or(&[]);
                tail.iter()
                    .rev()
                    .fold(0u32, |word, &w| word << 8 | w as u8 as u32) as i32
            });
            step(&mut v, whole, words);
        }
        for (vi, a) in v.iter().zip(acc.iter_mut()) {
            for (q, x) in vi.iter().enumerate() {
                // SAFETY: q < V <= 4: 16 of a row's NP = 64 sums at 16 q.
                unsafe { _mm512_storeu_si512(a.as_mut_ptr().add(16 * q).cast(), *x) };
            }
        }
    }

    /// The blocked integer LRN ([`blocked::lrn_int8_with`]) with [`rounded_channel`]'s
    /// 16-pixel loop.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VL.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
    pub(super) unsafe fn lrn_int8(
        values: &mut [i8],
        shape: Shape,
        spec: &LrnSpec,
        table: LrnTable<'_>,
        zero_points: ZeroPoints,
    ) -> Result<bool, Error> {
        blocked::lrn_int8_with(values, shape, spec, table, zero_points, |c| {
            // SAFETY: this function runs only where AVX-512 F/BW/VL are (its own contract).
            unsafe { rounded_channel(c) }
        })
    }

    /// [`blocked::rounded_channel`] 16 pixels at a time, the AVX2 loop's arithmetic
    /// (`super::super::x86`) on 16 lanes: the sums moved with `vpmulld`, each sum's octave
    /// from its conversion to f32, the entries by `vpgatherdd`, both rounded shifts as
    /// rounded high words of `vpmuldq` products; the same integers as the portable loop.
    /// The last `width % 16` pixels run masked (masked-off lanes neither read nor written).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VL.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
    unsafe fn rounded_channel(c: blocked::RoundedChannel<'_>) {
        let width = c
            .out
            .len()
            .min(c.incoming.len())
            .min(c.row.len())
            .min(c.sums.len());
        let (q, table) = (c.q, c.table);
        let high = q >= 33;
        let zp_in = _mm512_set1_epi32(c.zp_in);
        let zp_out = _mm512_set1_epi32(c.zp_out);
        let (scale, round_high) = blocked::int8_lrn::rounded_shift(q);
        let scale = _mm_cvtsi32_si128(scale as i32);
        let round_high = _mm512_set1_epi32(round_high);
        let (lo, hi) = (_mm512_set1_epi32(-128), _mm512_set1_epi32(127));
        for i in (0..width).step_by(16) {
            let mask: __mmask16 = u16::MAX >> (16 - (width - i).min(16));
            // SAFETY: the mask's lanes lie below `width - i`: within each of the four slices
            // from `i` (16 bytes of `incoming` and `out`, 16 i16 of `row`, 16 i32 of `sums`);
            // masked-off lanes are neither read nor written. The gather reads the entries
            // `factor` gives for the live lanes' sums, which the table covers (what a
            // `RoundedChannel` promises).
            unsafe {
                let d = _mm512_sub_epi32(
                    _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, c.incoming.as_ptr().add(i))),
                    zp_in,
                );
                let row = c.row.as_mut_ptr().add(i);
                let old = _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(mask, row));
                // |d| <= 255: the narrowing keeps it.
                _mm512_mask_cvtepi32_storeu_epi16(row.cast(), mask, d);
                let sums_at = c.sums.as_mut_ptr().add(i);
                let sums = _mm512_sub_epi32(
                    _mm512_add_epi32(
                        _mm512_maskz_loadu_epi32(mask, sums_at),
                        _mm512_mullo_epi32(d, d),
                    ),
                    _mm512_mullo_epi32(old, old),
                );
                _mm512_mask_storeu_epi32(sums_at, mask, sums);
                let x = _mm512_sub_epi32(
                    _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, c.out.as_ptr().add(i))),
                    zp_in,
                );
                let g = factor(sums, table, mask);
                // A zero `x` gives 0 in both forms: the code of a zero is `zp_out`.
                let v = if high {
                    _mm512_sra_epi32(_mm512_add_epi32(mul_high(x, g, false), round_high), scale)
                } else {
                    mul_high(_mm512_sll_epi32(x, scale), g, true)
                };
                let codes = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(v, zp_out), lo), hi);
                _mm512_mask_cvtepi32_storeu_epi8(c.out.as_mut_ptr().add(i), mask, codes);
            }
        }
    }

    /// The table's value at each live lane's sum (`docs/int8-spec.md`; the AVX2 `factor` on
    /// 16 lanes): `G[s]` below 64, otherwise `G[i] + ((G[i + 1] - G[i]) f + 2^(sh - 1)) >>
    /// sh`, taken as the rounded high word of `2 (G[i + 1] - G[i])` times `f << (31 - sh)`.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW and VL; `table` covers the sum of every lane in
    /// `live` (see `rounded_channel`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
    unsafe fn factor(s: __m512i, table: &[i32], live: __mmask16) -> __m512i {
        // floor(log2 s) from the exponent of s as f32 (exact: the sums stay below 2^20).
        let e = _mm512_sub_epi32(
            _mm512_srli_epi32::<23>(_mm512_castps_si512(_mm512_cvtepi32_ps(s))),
            _mm512_set1_epi32(127),
        );
        let sh = _mm512_sub_epi32(e, _mm512_set1_epi32(5));
        let top = _mm512_srlv_epi32(s, sh);
        // 64 + 32 (e - 6) + top - 32.
        let index = _mm512_add_epi32(
            _mm512_slli_epi32::<5>(e),
            _mm512_sub_epi32(top, _mm512_set1_epi32(160)),
        );
        let f = _mm512_sub_epi32(s, _mm512_sllv_epi32(top, sh));
        let f31 = _mm512_sllv_epi32(f, _mm512_sub_epi32(_mm512_set1_epi32(31), sh));
        // Sums below 64 are their own entries, with no offset.
        let small = _mm512_cmplt_epi32_mask(s, _mm512_set1_epi32(crate::int8::LRN_DIRECT as i32));
        let index = _mm512_mask_blend_epi32(small, index, s);
        let f31 = _mm512_maskz_mov_epi32(!small, f31);
        let zero = _mm512_setzero_si512();
        // SAFETY: every live lane's index is an entry the table holds, and so is the next
        // (the caller's guarantee); the other lanes read nothing.
        let (g0, g1) = unsafe {
            (
                _mm512_mask_i32gather_epi32::<4>(zero, live, index, table.as_ptr()),
                _mm512_mask_i32gather_epi32::<4>(zero, live, index, table.as_ptr().add(1)),
            )
        };
        let step = _mm512_slli_epi32::<1>(_mm512_sub_epi32(g1, g0));
        _mm512_add_epi32(g0, mul_high(step, f31, true))
    }

    /// Per lane the high word of the 64-bit product `a * b`, plus 2^31 first if `rounded`
    /// (`SMMULR` lane by lane): `vpmuldq` on the even lanes and on the odd ones shifted down.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F.
    #[inline]
    #[target_feature(enable = "avx512f,avx2")]
    unsafe fn mul_high(a: __m512i, b: __m512i, rounded: bool) -> __m512i {
        let round = _mm512_set1_epi64(if rounded { 1 << 31 } else { 0 });
        let even = _mm512_add_epi64(_mm512_mul_epi32(a, b), round);
        let odd = _mm512_add_epi64(
            _mm512_mul_epi32(_mm512_srli_epi64::<32>(a), _mm512_srli_epi64::<32>(b)),
            round,
        );
        _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64::<32>(even), odd)
    }

    /// Weight rows the fully connected kernels stream at once.
    const LINEAR_ROWS: usize = 8;

    /// Bytes ahead of the current load that the fully connected kernels prefetch in each
    /// row: more lines in flight than the hardware prefetcher keeps for eight streams
    /// (10-15 % faster on fc6 on a Sapphire Rapids core).
    const PREFETCH_BYTES: usize = 1024;

    /// Asks for the cache line [`PREFETCH_BYTES`] past element `i` of `row`. A prefetch
    /// never faults, so the address may lie past the row's end; it is formed with
    /// `wrapping_add`, never dereferenced.
    #[inline(always)]
    fn prefetch_ahead<T>(row: &[T], i: usize) {
        let at = row
            .as_ptr()
            .cast::<i8>()
            .wrapping_add(i * core::mem::size_of::<T>() + PREFETCH_BYTES);
        // SAFETY: `_mm_prefetch` is SSE, part of x86-64's baseline; it reads nothing the
        // program sees and cannot fault.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(at) };
    }

    /// The f32 fully connected layer, bit for bit the contract's order
    /// ([`super::super::reference::f32::linear`]): each output's partial sum `l` takes the
    /// products of inputs `16 i + l` in ascending `i` (a multiply, then an add), here lane
    /// `l` of one vector; the remainder's products, the fold in halves and the bias follow
    /// as the reference does them.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F; `n <= input.len()` and every row of `weight` has `n`
    /// weights (as `check_linear` ensures).
    #[target_feature(enable = "avx512f,avx2")]
    pub(super) unsafe fn linear_f32(
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
        n: usize,
    ) {
        use crate::kernels::reference::f32::LINEAR_LANES;
        const ROWS: usize = LINEAR_ROWS;
        let n = n.min(input.len());
        let whole = n - n % LINEAR_LANES;
        let rows = weight.chunks_exact(n.max(1)).zip(bias);
        for block in blocks_of::<ROWS, _>(output.iter_mut().zip(rows)) {
            let mut acc = [_mm512_setzero_ps(); ROWS];
            for i in (0..whole).step_by(LINEAR_LANES) {
                // SAFETY: `i + 16 <= whole <= input.len()`; unaligned load.
                let x = unsafe { _mm512_loadu_ps(input.as_ptr().add(i)) };
                for (a, out) in acc.iter_mut().zip(&block) {
                    if let Some((_, (row, _))) = out {
                        prefetch_ahead(row, i);
                        // SAFETY: `row` has `n` weights and `i + 16 <= n`.
                        let w = unsafe { _mm512_loadu_ps(row.as_ptr().add(i)) };
                        *a = _mm512_add_ps(*a, _mm512_mul_ps(x, w));
                    }
                }
            }
            for (a, out) in acc.iter().zip(block) {
                let Some((y, (row, &b))) = out else {
                    break;
                };
                let mut sums = [0.0f32; LINEAR_LANES];
                // SAFETY: `sums` is 16 floats; unaligned store.
                unsafe { _mm512_storeu_ps(sums.as_mut_ptr(), *a) };
                *y = finish_linear_f32(sums, input.get(whole..n).unwrap_or(&[]), row, whole, b);
            }
        }
    }

    /// The int8 fully connected layer for a checked call with `input.len() <=
    /// MAX_LINEAR_INT8_INPUT` and an input zero point in `-128..=127`.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F, BW, VL, VBMI and VNNI; the slices must have passed
    /// `check_linear`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")]
    pub(super) unsafe fn linear_int8(
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) {
        const ROWS: usize = LINEAR_ROWS;
        const MAX: usize = super::super::MAX_LINEAR_INT8_INPUT;
        let n = input.len().min(MAX);
        let mut codes = [0u8; MAX];
        for (u, &x) in codes.iter_mut().zip(input) {
            *u = x as u8 ^ 0x80;
        }
        let us = codes.get(..n).unwrap_or(&[]);
        let whole = n - n % 64;
        let ones = _mm512_set1_epi8(1);
        let lift = zero_points.input + 128;
        let rows = kernel.weight.chunks_exact(n.max(1));
        let channel = kernel.bias.iter().zip(kernel.multiplier).zip(kernel.shift);
        for block in blocks_of::<ROWS, _>(output.iter_mut().zip(rows.zip(channel))) {
            let mut acc = [_mm512_setzero_si512(); ROWS];
            let mut w_sums = [_mm512_setzero_si512(); ROWS];
            for i in (0..whole).step_by(64) {
                // SAFETY: `i + 64 <= whole <= n`: within `us`; unaligned load.
                let u = unsafe { _mm512_loadu_si512(us.as_ptr().add(i).cast()) };
                for ((a, s), out) in acc.iter_mut().zip(&mut w_sums).zip(&block) {
                    if let Some((_, (row, _))) = out {
                        prefetch_ahead(row, i);
                        // SAFETY: `row` has `n` weights and `i + 64 <= n`.
                        let w = unsafe { _mm512_loadu_si512(row.as_ptr().add(i).cast()) };
                        *a = _mm512_dpbusd_epi32(*a, u, w);
                        *s = _mm512_dpbusd_epi32(*s, ones, w);
                    }
                }
            }
            for ((a, s), out) in acc.iter().zip(&w_sums).zip(block) {
                let Some((q, (row, ((&bias, &m), &r)))) = out else {
                    break;
                };
                // sum (x + 128) w - (zp + 128) sum w = sum (x - zp) w, exact in wrapping i32.
                let mut sum = bias
                    .wrapping_add(_mm512_reduce_add_epi32(*a))
                    .wrapping_sub(lift.wrapping_mul(_mm512_reduce_add_epi32(*s)));
                let rest = input.get(whole..n).unwrap_or(&[]);
                for (&x, &w) in rest.iter().zip(row.get(whole..).unwrap_or(&[])) {
                    sum = sum.wrapping_add((x as i32 - zero_points.input) * w as i32);
                }
                *q = output_code(sum, m, r, zero_points.output);
            }
        }
    }
}
