//! x86-64 kernels: [`X86Avx2`] here and, for machines with AVX-512 F/BW/VL/VBMI and VNNI,
//! [`X86Avx512`] (`avx512.rs`: the int8 convolution and fully connected layer on `vpdpbusd`,
//! the f32 convolution, fully connected layer and max pool on 16 lanes, the integer LRN on
//! 16 lanes, the int8 max pool for rows of up to 64 codes, this module's kernels for the
//! rest).
//!
//! The AVX2 set: the f32 and int8 convolutions as register-blocked matrix products for
//! AVX2, chosen at run time ([`X86Avx2::detect`]), bit-identical to the definitions
//! ([`super::reference::f32::conv2d`], [`super::reference::int8::conv2d`]), the f32 and
//! int8 fully connected layers (four weight rows streamed at once), the f32 LRN
//! ([`super::blocked::lrn_f32`] with AVX2's correctly rounded `vsqrtps` and `vdivps`), and
//! the blocked integer LRN (its channels eight pixels at a time) and int8 max pool
//! ([`super::blocked`]), and the ReLUs eight or thirty-two values at a time.
//!
//! A convolution is a matrix product per group: `out[o][pixel] = bias[o] + sum over taps t of
//! w[o][t] * patch[t][pixel]`, the taps `t = (input channel, kernel row, kernel column)` in
//! the contract's order, which is also the order of PyTorch's weight layout. The kernels
//! copy the patches of a block of output pixels into a panel on the stack (`+0.0`, or the
//! input zero point, in the padding: the padding is materialized as the contract says), then
//! keep a tile of a few output channels by a run of output pixels in vector registers and
//! walk the taps in ascending order: each tap broadcasts one weight per output channel and
//! adds its product to every pixel of the tile. Vector lanes are different outputs, so every
//! output still sees its own sum in the contract's order: f32 products are rounded before
//! each addition (`mul` then `add`, never FMA), and a long sum split into tap blocks goes
//! through the output buffer between blocks, which stores the f32 value exactly. The int8
//! kernel widens codes and weights to i16 and multiplies pairs of taps with `vpmaddwd`
//! (exact: `|d * w| <= 255 * 128`), accumulating in i32 as the definition does. A tile's
//! weights are widened to those pairs before its loop, so that the loop broadcasts each pair
//! straight from memory: a load, not the two shuffles that compete with the additions.
//!
//! Loops, per group: f32: tap blocks (at most 512 taps), pixel blocks of 16 (packed once),
//! output channels 5 at a time; int8: pixel blocks of 32, output channels 384 at a time
//! (their i32 sums on the stack), tap blocks of at most 256 (packed once), output channels 2
//! at a time. Stack: 32 KiB (f32), 65 KiB (int8), 32 KiB for the int8 fully connected
//! layer's widened inputs, 2 KiB for the f32 LRN's blocks. Panels are filled by AVX2 masked
//! gathers (a lane outside the input reads nothing and gives the padding value); geometries
//! too large for i32 lanes use scalar packing.
//!
//! What the contract does not fix, the fast kernels do not promise either: which NaN (sign,
//! payload) an operation on NaNs returns. Rust, like LLVM, leaves it unspecified, and the
//! optimizer may commute an addition's operands; NaN-ness, infinities, signed zeros and every
//! finite bit are identical.
//!
//! Detection is the kernels' one place for it (`kernels::detect`, CPUID and XGETBV, no
//! `std`); an [`X86Avx2`] exists only where AVX2 was found, which is what makes the
//! intrinsics sound to call. With `kernels::cortex_m`, this is where the crate uses
//! `unsafe`: the intrinsics, their loads and stores, each with its argument.

mod avx512;
pub use avx512::X86Avx512;

use super::{KernelPath, Kernels, LrnTable};
use crate::arch::{LrnSpec, Shape};
use crate::error::Error;
use crate::geometry::{ConvGeometry, PoolGeometry};
use crate::int8::{QKernel, ZeroPoints};

/// Longest input the int8 fully connected kernel takes: its inputs, widened to i16, sit on
/// the stack (32 KiB). The built-in nets' longest is fc6's 9216.
pub const MAX_LINEAR_INT8_INPUT: usize = 16384;

/// Widest input row the AVX-512 int8 max pool takes: one register of codes. Wider rows run
/// the AVX2 one. The built-in nets' widest is 55 (the paper net's conv1).
pub const MAX_AVX512_POOL_INT8_ROW: usize = 64;

/// The AVX2 kernels: the convolutions, the fully connected layers and the ReLUs run SIMD
/// code, the LRN and the int8 max pool the blocked kernels compiled for AVX2, every other
/// layer (the f32 max pool, the adaptive average pools) the reference. Only
/// [`X86Avx2::detect`] makes one, on a machine that has AVX2.
#[derive(Clone, Copy, Debug)]
pub struct X86Avx2 {
    _detected: (),
}

impl X86Avx2 {
    /// The AVX2 kernels if this is x86-64 with AVX2 enabled by the OS, else `None`.
    pub fn detect() -> Option<Self> {
        super::detect::x86_avx2().then_some(Self::DETECTED)
    }

    /// The value [`X86Avx2::detect`] returns; private, so that only detection hands it out.
    pub(super) const DETECTED: Self = X86Avx2 { _detected: () };
}

impl Kernels for X86Avx2 {
    fn name(&self) -> &'static str {
        "x86-64 AVX2"
    }

    /// Same checks, same errors, same bits as [`super::reference::f32::conv2d`].
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
            x86::conv_f32(input, weight, bias, output, &g.dims());
            Ok(KernelPath::X86Avx2)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            super::reference::f32::conv2d(g, input, weight, bias, output)
                .map(|()| KernelPath::Reference)
        }
    }

    /// Same checks, same errors, same bits as [`super::reference::f32::lrn_in_place`]: the
    /// blocked LRN ([`super::blocked::lrn_f32`]) compiled for AVX2, whose square roots and
    /// divisions are `vsqrtps` and `vdivps` on eight pixels.
    fn lrn(&self, values: &mut [f32], shape: Shape, spec: &LrnSpec) -> Result<KernelPath, Error> {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: an `X86Avx2` exists only where AVX2 was detected.
            unsafe { x86::lrn_f32(values, shape, spec) }.map(|()| KernelPath::X86Avx2)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            super::reference::f32::lrn_in_place(values, shape, spec).map(|()| KernelPath::Reference)
        }
    }

    /// Same checks, same errors, same bits as [`super::reference::f32::linear`]: the
    /// contract's 16 partial sums are two AVX2 vectors, four outputs at a time, so that four
    /// weight rows stream at once (the reference, one row at a time with SSE, read fc6's
    /// weights at about three quarters of this machine's streaming bandwidth).
    fn linear(
        &self,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        #[cfg(target_arch = "x86_64")]
        {
            let n = super::reference::f32::check_linear(input, weight, bias, output)?;
            // SAFETY: an `X86Avx2` exists only where AVX2 was detected; the slices were
            // checked above.
            unsafe { x86::linear_f32(input, weight, bias, output, n) };
            Ok(KernelPath::X86Avx2)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            super::reference::f32::linear(input, weight, bias, output)
                .map(|()| KernelPath::Reference)
        }
    }

    /// Same checks, same errors, same codes as [`super::reference::int8::linear`]: each
    /// output's exact i32 sum taken 16 products at a time with `vpmaddwd` (inputs minus the
    /// zero point widened once to i16, weights widened as they stream), four outputs per pass
    /// over the inputs. Inputs longer than [`MAX_LINEAR_INT8_INPUT`] or a zero point outside
    /// the codes run the reference.
    fn linear_int8(
        &self,
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        let n = super::reference::int8::check_linear(input, kernel, output)?;
        #[cfg(target_arch = "x86_64")]
        if n <= MAX_LINEAR_INT8_INPUT && (-128..=127).contains(&zero_points.input) {
            // SAFETY: an `X86Avx2` exists only where AVX2 was detected; the slices were
            // checked above.
            unsafe { x86::linear_int8(input, kernel, zero_points, output) };
            return Ok(KernelPath::X86Avx2);
        }
        let _ = n;
        super::reference::int8::linear(input, kernel, zero_points, output)
            .map(|()| KernelPath::Reference)
    }

    /// ReLU eight values at a time (`x < 0 ? 0 : x`, the definition's values, `-0.0` and
    /// NaN kept); the definition's conditional store is a branch per value, mispredicted on
    /// half of a convolution's outputs (the paper net's first ReLU: 0.63 ms against 0.05).
    fn relu(&self, values: &mut [f32]) -> KernelPath {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `X86Avx2` exists only where AVX2 was detected.
        unsafe {
            x86::relu(values)
        };
        #[cfg(not(target_arch = "x86_64"))]
        super::reference::f32::relu_in_place(values);
        KernelPath::X86Avx2
    }

    /// int8 ReLU as a maximum, vectorized for AVX2 (`vpmaxsb`).
    fn relu_int8(&self, values: &mut [i8], zero_point: i32) -> KernelPath {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `X86Avx2` exists only where AVX2 was detected.
        unsafe {
            x86::relu_int8(values, zero_point)
        };
        #[cfg(not(target_arch = "x86_64"))]
        super::reference::int8::relu_in_place(values, zero_point);
        KernelPath::X86Avx2
    }

    /// The integer LRN over blocks of pixels ([`super::blocked::lrn_int8`], eight pixels at
    /// a time with AVX2 for real tables): same checks, same errors, same codes as
    /// [`super::reference::int8::lrn_in_place`].
    fn lrn_int8(
        &self,
        values: &mut [i8],
        shape: Shape,
        spec: &LrnSpec,
        table: LrnTable<'_>,
        zero_points: ZeroPoints,
    ) -> Result<KernelPath, Error> {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `X86Avx2` exists only where AVX2 was detected.
        let own = unsafe { x86::lrn_int8(values, shape, spec, table, zero_points) }?;
        #[cfg(not(target_arch = "x86_64"))]
        let own = super::blocked::lrn_int8(values, shape, spec, table, zero_points)?;
        Ok(KernelPath::own_or_reference(own, KernelPath::X86Avx2))
    }

    /// The int8 max pool by rows ([`super::blocked::max_pool_int8`] compiled for AVX2: its
    /// column pass `vpmaxsb` on 32 codes; the reference for rows wider than its buffer).
    fn max_pool_int8(
        &self,
        g: &PoolGeometry,
        input: &[i8],
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `X86Avx2` exists only where AVX2 was detected.
        let own = unsafe { x86::max_pool_int8(g, input, output) }?;
        #[cfg(not(target_arch = "x86_64"))]
        let own = super::blocked::max_pool_int8(g, input, output)?;
        Ok(KernelPath::own_or_reference(own, KernelPath::X86Avx2))
    }

    /// Same checks, same errors, same codes as [`super::reference::int8::conv2d`]; an input
    /// zero point outside the int8 codes (never in a valid blob) runs the reference.
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
            x86::conv_int8(input, kernel, zero_points, output, &g.dims());
            return Ok(KernelPath::X86Avx2);
        }
        super::reference::int8::conv2d(g, input, kernel, zero_points, output)
            .map(|()| KernelPath::Reference)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::blocked;
    use crate::arch::{LrnSpec, Shape};
    use crate::error::Error;
    use crate::geometry::ConvDims as Dims;
    use crate::int8::requant::output_code;
    use crate::int8::{QKernel, ZeroPoints};
    use core::arch::x86_64::*;

    /// Where the `N` output pixels of a block read their tap `(0, 0)`: row and column in
    /// unpadded input coordinates, wrapped below zero (so `< in_h`, `< in_w` test both ends).
    /// Pixels past the plane's end repeat its last pixel (their outputs are never stored).
    pub(super) struct Block<const N: usize> {
        pub(super) row: [usize; N],
        pub(super) col: [usize; N],
        /// Every tap of every pixel is inside the input: no padding to test for.
        pub(super) interior: bool,
    }

    impl<const N: usize> Block<N> {
        #[inline(always)]
        pub(super) fn new(d: &Dims, p0: usize) -> Self {
            let mut b = Block {
                row: [0; N],
                col: [0; N],
                interior: true,
            };
            let last = d.pixels.saturating_sub(1);
            for (j, (row, col)) in b.row.iter_mut().zip(&mut b.col).enumerate() {
                let p = (p0 + j).min(last);
                let (y, x) = (p / d.out_w * d.stride, p % d.out_w * d.stride);
                *row = y.wrapping_sub(d.pad);
                *col = x.wrapping_sub(d.pad);
                b.interior &= y >= d.pad
                    && y - d.pad + d.k <= d.in_h
                    && x >= d.pad
                    && x - d.pad + d.k <= d.in_w;
            }
            b
        }
    }

    /// Tap `t`'s input channel, kernel row and kernel column, stepped in the contract's order.
    #[derive(Clone, Copy)]
    pub(super) struct Tap {
        pub(super) ic: usize,
        pub(super) ky: usize,
        pub(super) kx: usize,
    }

    impl Tap {
        #[inline(always)]
        pub(super) fn new(t: usize, k: usize) -> Self {
            Tap {
                ic: t / (k * k).max(1),
                ky: t % (k * k).max(1) / k.max(1),
                kx: t % k.max(1),
            }
        }
        #[inline(always)]
        pub(super) fn step(&mut self, k: usize) {
            self.kx += 1;
            if self.kx == k {
                self.kx = 0;
                self.ky += 1;
                if self.ky == k {
                    self.ky = 0;
                    self.ic += 1;
                }
            }
        }
    }

    /// Writes the `N` pixels' values of one tap through `put(lane, value)`, where `value`
    /// is `None` on a padded position.
    #[inline(always)]
    pub(super) fn gather<const N: usize, T: Copy>(
        input: &[T],
        d: &Dims,
        b: &Block<N>,
        tap: Tap,
        mut put: impl FnMut(usize, Option<T>),
    ) {
        let plane = input.get(tap.ic * d.in_plane..).unwrap_or(&[]);
        if b.interior {
            let Some(src) = plane.get(tap.ky * d.in_w + tap.kx..) else {
                return (0..N).for_each(|j| put(j, None));
            };
            for (j, (&r, &c)) in b.row.iter().zip(&b.col).enumerate() {
                put(j, src.get(r * d.in_w + c).copied());
            }
        } else {
            for (j, (&r, &c)) in b.row.iter().zip(&b.col).enumerate() {
                let (y, x) = (r.wrapping_add(tap.ky), c.wrapping_add(tap.kx));
                let v = if y < d.in_h && x < d.in_w {
                    plane.get(y * d.in_w + x).copied()
                } else {
                    None
                };
                put(j, v);
            }
        }
    }

    /// Whether every coordinate and offset of this convolution fits the i32 lanes of the
    /// vector packers (with room to spare: rows and columns below 2^16, offsets below 2^31).
    pub(super) fn lanes_fit(d: &Dims, input_len: usize) -> bool {
        const SIDE: usize = 1 << 14;
        input_len <= 1 << 30
            && d.in_h < SIDE
            && d.in_w < SIDE
            && d.pad < SIDE
            && d.k < SIDE
            && d.stride < SIDE
    }

    /// A block's pixels as i32 lanes, `V` vectors of 8: the input row and column of tap
    /// `(0, 0)` (negative in the padding) and their offset `row * in_w + col` in a plane.
    struct Lanes<const V: usize> {
        row: [__m256i; V],
        col: [__m256i; V],
        offset: [__m256i; V],
    }

    /// # Safety
    /// The CPU must support AVX2; `N == 8 * V`; the geometry passes [`lanes_fit`].
    #[target_feature(enable = "avx2")]
    unsafe fn lanes<const N: usize, const V: usize>(d: &Dims, b: &Block<N>) -> Lanes<V> {
        let mut row = [[0i32; 8]; V];
        let mut col = [[0i32; 8]; V];
        let mut offset = [[0i32; 8]; V];
        let rows = row.iter_mut().flatten().zip(col.iter_mut().flatten());
        for (((r, c), o), (&br, &bc)) in rows
            .zip(offset.iter_mut().flatten())
            .zip(b.row.iter().zip(&b.col))
        {
            // Wrapped below zero: back to small negative numbers (lanes_fit bounds both).
            *r = br as isize as i32;
            *c = bc as isize as i32;
            *o = *r * d.in_w as i32 + *c;
        }
        let mut lanes = Lanes {
            row: [_mm256_setzero_si256(); V],
            col: [_mm256_setzero_si256(); V],
            offset: [_mm256_setzero_si256(); V],
        };
        for q in 0..V {
            if let (Some(r), Some(c), Some(o)) = (row.get(q), col.get(q), offset.get(q)) {
                // SAFETY: each is an array of 8 i32, one vector.
                unsafe {
                    lanes.row[q] = _mm256_loadu_si256(r.as_ptr().cast());
                    lanes.col[q] = _mm256_loadu_si256(c.as_ptr().cast());
                    lanes.offset[q] = _mm256_loadu_si256(o.as_ptr().cast());
                }
            }
        }
        lanes
    }

    /// All-ones in the lanes whose tap `(ky, kx)` is inside the input, and those lanes'
    /// offsets in a plane.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn tap_lanes(
        d: &Dims,
        row: __m256i,
        col: __m256i,
        offset: __m256i,
        tap: Tap,
    ) -> (__m256i, __m256i) {
        let y = _mm256_add_epi32(row, _mm256_set1_epi32(tap.ky as i32));
        let x = _mm256_add_epi32(col, _mm256_set1_epi32(tap.kx as i32));
        let none = _mm256_set1_epi32(-1);
        let inside = _mm256_and_si256(
            _mm256_and_si256(
                _mm256_cmpgt_epi32(y, none),
                _mm256_cmpgt_epi32(_mm256_set1_epi32(d.in_h as i32), y),
            ),
            _mm256_and_si256(
                _mm256_cmpgt_epi32(x, none),
                _mm256_cmpgt_epi32(_mm256_set1_epi32(d.in_w as i32), x),
            ),
        );
        let shift = (tap.ky * d.in_w + tap.kx) as i32;
        (inside, _mm256_add_epi32(offset, _mm256_set1_epi32(shift)))
    }

    /// The f32 panel of taps `k0..k0 + kc` of a block (`+0.0` in the padding) by masked
    /// gathers: a lane reads only where its tap is inside its input plane.
    ///
    /// # Safety
    /// The CPU must support AVX2; the geometry passes [`lanes_fit`].
    #[target_feature(enable = "avx2")]
    unsafe fn pack_f32_avx2(
        panel: &mut [f32],
        input: &[f32],
        d: &Dims,
        block: &Block<NR>,
        k0: usize,
        kc: usize,
    ) {
        // SAFETY: AVX2 and lanes_fit, as this function requires; NR = 2 * 8.
        let lanes = unsafe { lanes::<NR, 2>(d, block) };
        let mut tap = Tap::new(k0, d.k);
        for row in panel.chunks_exact_mut(NR).take(kc) {
            let plane = input
                .get(tap.ic * d.in_plane..)
                .and_then(|p| p.get(..d.in_plane));
            for (q, half) in row.chunks_exact_mut(8).enumerate() {
                let (Some(&r), Some(&c), Some(&o)) =
                    (lanes.row.get(q), lanes.col.get(q), lanes.offset.get(q))
                else {
                    continue;
                };
                // SAFETY: AVX2, as this function requires.
                let (inside, offset) = unsafe { tap_lanes(d, r, c, o, tap) };
                let v = match plane {
                    // SAFETY: a lane is read only where `inside` is set, that is where its
                    // row is in [0, in_h) and its column in [0, in_w): its offset is in
                    // [0, in_plane), inside `plane`.
                    Some(p) => unsafe {
                        _mm256_mask_i32gather_ps::<4>(
                            _mm256_setzero_ps(),
                            p.as_ptr(),
                            offset,
                            _mm256_castsi256_ps(inside),
                        )
                    },
                    None => _mm256_setzero_ps(),
                };
                // SAFETY: `half` is 8 floats.
                unsafe { _mm256_storeu_ps(half.as_mut_ptr(), v) };
            }
            tap.step(d.k);
        }
    }

    /// The int8 panel of taps `k0..k0 + kc` of a block of group `g` (`q - zp_in`, 0 in the
    /// padding), in tap pairs, by masked gathers of the 32-bit words holding the codes.
    ///
    /// # Safety
    /// The CPU must support AVX2; the geometry passes [`lanes_fit`]; `input.len() >= 4`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    unsafe fn pack_int8_avx2(
        panel: &mut [i16],
        input: &[i8],
        g: usize,
        d: &Dims,
        block: &Block<NR8>,
        k0: usize,
        kc: usize,
        zp_in: i16,
    ) {
        // SAFETY: AVX2 and lanes_fit, as this function requires; NR8 = 4 * 8.
        let lanes = unsafe { lanes::<NR8, 4>(d, block) };
        let last_word = _mm256_set1_epi32(input.len().saturating_sub(4) as i32);
        let zp = _mm256_set1_epi32(zp_in as i32);
        let low16 = _mm256_set1_epi32(0xffff);
        let mut tap = Tap::new(k0, d.k);
        for (pair, chunk) in panel
            .chunks_exact_mut(2 * NR8)
            .take(kc.div_ceil(2))
            .enumerate()
        {
            let mut taps = [[_mm256_setzero_si256(); 4]; 2];
            for (lane, values) in taps.iter_mut().enumerate() {
                if 2 * pair + lane >= kc {
                    continue;
                }
                let plane = (g * d.cin_g + tap.ic) * d.in_plane;
                let plane_ok = plane + d.in_plane <= input.len();
                for (q, v) in values.iter_mut().enumerate() {
                    let (Some(&r), Some(&c), Some(&o)) =
                        (lanes.row.get(q), lanes.col.get(q), lanes.offset.get(q))
                    else {
                        continue;
                    };
                    if !plane_ok {
                        continue;
                    }
                    // SAFETY: AVX2, as this function requires.
                    let (inside, offset) = unsafe { tap_lanes(d, r, c, o, tap) };
                    // The code's offset in `input`; the word read starts there, or up to 3
                    // bytes before it at the end of `input`, so all 4 bytes are inside.
                    let at = _mm256_add_epi32(offset, _mm256_set1_epi32(plane as i32));
                    let start = _mm256_min_epi32(at, last_word);
                    let shift = _mm256_slli_epi32::<3>(_mm256_sub_epi32(at, start));
                    // SAFETY: a lane is read only where `inside` is set: its code is in the
                    // plane, inside `input` (plane_ok), and its word starts at most 3 bytes
                    // earlier, at or after byte 0 (`input.len() >= 4`), and ends inside.
                    let word = unsafe {
                        _mm256_mask_i32gather_epi32::<1>(
                            _mm256_setzero_si256(),
                            input.as_ptr().cast(),
                            start,
                            inside,
                        )
                    };
                    let code = _mm256_srai_epi32::<24>(_mm256_slli_epi32::<24>(_mm256_srlv_epi32(
                        word, shift,
                    )));
                    *v = _mm256_and_si256(_mm256_sub_epi32(code, zp), inside);
                }
                tap.step(d.k);
            }
            let [first, second] = taps;
            for ((out, a), b) in chunk.chunks_exact_mut(16).zip(first).zip(second) {
                // [a, b] as two i16 in each 32-bit lane: tap 2 * pair low, its partner high.
                let v = _mm256_or_si256(_mm256_and_si256(a, low16), _mm256_slli_epi32::<16>(b));
                // SAFETY: `out` is 16 i16, one vector.
                unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) };
            }
        }
    }

    // ---------------------------------------------------------------- f32

    /// Output pixels per f32 tile: two vectors of 8.
    const NR: usize = 16;
    /// Output channels per f32 tile: 10 accumulators, 2 panel vectors, a broadcast weight and
    /// a product fill 14 of the 16 registers (5 measured faster than 4 or 6 on Zen 4).
    const MR: usize = 5;
    /// Most taps per f32 panel (32 KiB on the stack).
    const KC: usize = 512;

    #[repr(C, align(32))]
    struct PanelF32([f32; KC * NR]);

    /// The f32 convolution on checked slices.
    pub(super) fn conv_f32(
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
        d: &Dims,
    ) {
        // SAFETY: reached only through an `X86Avx2`, which exists only where
        // `detect::x86_avx2()` found AVX2 enabled by the OS.
        unsafe { conv_f32_avx2(input, weight, bias, output, d) }
    }

    /// The f32 convolution's loops, shared by the AVX2 and AVX-512 kernels: equal tap blocks
    /// of at most `kc_max` taps (the partial sums kept in the output between them, which
    /// stores an f32 exactly), blocks of `NR` pixels packed once into `panel` (`pack` where
    /// the geometry fits i32 lanes, scalar gathers elsewhere; `+0.0` in the padding), then
    /// `tiles(panel, group, k0, kc, p0)` for the group's output channels. Inlined into each
    /// kernel, whose features its closures carry.
    #[inline(always)]
    pub(super) fn conv_f32_loops<const NR: usize>(
        input: &[f32],
        d: &Dims,
        kc_max: usize,
        panel: &mut [f32],
        mut pack: impl FnMut(&mut [f32], &[f32], &Block<NR>, usize, usize),
        mut tiles: impl FnMut(&[f32], usize, usize, usize, usize),
    ) {
        let k_blocks = d.taps.div_ceil(kc_max.max(1)).max(1);
        let kc_len = d.taps.div_ceil(k_blocks).max(1);
        let vector_packing = lanes_fit(d, input.len());
        for g in 0..d.groups {
            let in_g = input.get(g * d.cin_g * d.in_plane..).unwrap_or(&[]);
            for k0 in (0..d.taps).step_by(kc_len) {
                let kc = kc_len.min(d.taps - k0);
                for p0 in (0..d.pixels).step_by(NR) {
                    let block = Block::<NR>::new(d, p0);
                    if vector_packing {
                        pack(panel, in_g, &block, k0, kc);
                    } else {
                        let mut tap = Tap::new(k0, d.k);
                        for row in panel.chunks_exact_mut(NR).take(kc) {
                            gather(in_g, d, &block, tap, |j, v| {
                                if let Some(x) = row.get_mut(j) {
                                    *x = v.unwrap_or(0.0);
                                }
                            });
                            tap.step(d.k);
                        }
                    }
                    tiles(panel.get(..kc * NR).unwrap_or(&[]), g, k0, kc, p0);
                }
            }
        }
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn conv_f32_avx2(
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
        d: &Dims,
    ) {
        let mut panel = PanelF32([0.0; KC * NR]);
        let pack = |panel: &mut [f32], in_g: &[f32], block: &Block<NR>, k0, kc| {
            // SAFETY: AVX2, as this function requires; the geometry fits i32 lanes.
            unsafe { pack_f32_avx2(panel, in_g, d, block, k0, kc) }
        };
        let tiles = |panel: &[f32], g: usize, k0, kc, p0: usize| {
            let tile = Tile {
                k0,
                kc,
                p0,
                np: NR.min(d.pixels - p0),
            };
            let mut o = 0;
            while o < d.cout_g {
                let oc = g * d.cout_g + o;
                // SAFETY (each arm): AVX2, as this function requires.
                o += match d.cout_g - o {
                    1 => unsafe { tile_f32::<1>(weight, bias, output, d, panel, oc, &tile) },
                    2 => unsafe { tile_f32::<2>(weight, bias, output, d, panel, oc, &tile) },
                    3 => unsafe { tile_f32::<3>(weight, bias, output, d, panel, oc, &tile) },
                    4 => unsafe { tile_f32::<4>(weight, bias, output, d, panel, oc, &tile) },
                    _ => unsafe { tile_f32::<MR>(weight, bias, output, d, panel, oc, &tile) },
                };
            }
        };
        conv_f32_loops::<NR>(input, d, KC, &mut panel.0, pack, tiles);
    }

    /// A tile's taps `k0..k0 + kc` and pixels `p0..p0 + np`.
    struct Tile {
        k0: usize,
        kc: usize,
        p0: usize,
        np: usize,
    }

    /// Output channels `oc..oc + M` of one tile: loads their partial sums (or their biases
    /// on the first tap block), adds the panel's taps, stores them back; returns `M`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn tile_f32<const M: usize>(
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
        d: &Dims,
        panel: &[f32],
        oc: usize,
        t: &Tile,
    ) -> usize {
        let mut acc = [[0.0f32; NR]; M];
        for (i, row) in acc.iter_mut().enumerate() {
            if t.k0 == 0 {
                *row = [bias.get(oc + i).copied().unwrap_or(0.0); NR];
            } else {
                let src = output.get((oc + i) * d.pixels + t.p0..).unwrap_or(&[]);
                row.iter_mut()
                    .zip(src)
                    .take(t.np)
                    .for_each(|(a, &s)| *a = s);
            }
        }
        let rows: [&[f32]; M] = core::array::from_fn(|i| {
            let start = (oc + i) * d.taps + t.k0;
            weight.get(start..start + t.kc).unwrap_or(&[])
        });
        // SAFETY: AVX2, as this function requires.
        unsafe { kernel_f32::<M>(&rows, panel, t.kc, &mut acc) };
        for (i, row) in acc.iter().enumerate() {
            let dst = output
                .get_mut((oc + i) * d.pixels + t.p0..)
                .unwrap_or(&mut []);
            dst.iter_mut()
                .zip(row)
                .take(t.np)
                .for_each(|(o, &a)| *o = a);
        }
        M
    }

    /// `acc[i][j] = (acc[i][j] + w[i][t] * panel[t][j]) ...` for `t` in `0..kc` ascending:
    /// each product rounded, then added (no FMA). Does nothing unless every row has `kc`
    /// weights and the panel `kc * NR` values.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn kernel_f32<const M: usize>(
        rows: &[&[f32]; M],
        panel: &[f32],
        kc: usize,
        acc: &mut [[f32; NR]; M],
    ) {
        if panel.len() < kc * NR || rows.iter().any(|r| r.len() < kc) {
            return;
        }
        let mut lo = [_mm256_setzero_ps(); M];
        let mut hi = [_mm256_setzero_ps(); M];
        for ((l, h), a) in lo.iter_mut().zip(&mut hi).zip(acc.iter()) {
            // SAFETY: a row of `acc` is NR = 16 floats, two vectors of 8.
            unsafe {
                *l = _mm256_loadu_ps(a.as_ptr());
                *h = _mm256_loadu_ps(a.as_ptr().add(8));
            }
        }
        let b = panel.as_ptr();
        for t in 0..kc {
            // SAFETY: t < kc and panel.len() >= kc * NR: 16 floats at t * NR.
            let (b0, b1) = unsafe {
                (
                    _mm256_loadu_ps(b.add(t * NR)),
                    _mm256_loadu_ps(b.add(t * NR + 8)),
                )
            };
            for ((l, h), row) in lo.iter_mut().zip(&mut hi).zip(rows) {
                // SAFETY: t < kc <= row.len(), checked above.
                let w = _mm256_set1_ps(unsafe { *row.get_unchecked(t) });
                *l = _mm256_add_ps(*l, _mm256_mul_ps(w, b0));
                *h = _mm256_add_ps(*h, _mm256_mul_ps(w, b1));
            }
        }
        for ((l, h), a) in lo.iter().zip(&hi).zip(acc.iter_mut()) {
            // SAFETY: a row of `acc` is NR = 16 floats, two vectors of 8.
            unsafe {
                _mm256_storeu_ps(a.as_mut_ptr(), *l);
                _mm256_storeu_ps(a.as_mut_ptr().add(8), *h);
            }
        }
    }

    // ---------------------------------------------------------------- int8

    /// Output pixels per int8 tile: four vectors of 8 i32.
    const NR8: usize = 32;
    /// Output channels per int8 tile: 8 accumulators, 4 panel vectors, the weight pair and a
    /// product in registers (3 rows spill, and measured slower on Zen 3).
    const MR8: usize = 2;
    // The tile loop's arms (one channel, else MR8) cover every remainder only for MR8 = 2.
    const _: () = assert!(MR8 == 2);
    /// Most taps per int8 panel (even; 16 KiB of i16).
    const KC8: usize = 256;
    /// Most output channels whose i32 sums are kept at once (48 KiB): all of the built-in
    /// nets' widest convolution, conv3, so that its panels are packed once.
    const OC8: usize = 384;

    /// Tap pairs: `[pair][pixel][2]` i16, the layout `vpmaddwd` multiplies.
    #[repr(C, align(32))]
    struct PanelI16([i16; KC8 * NR8]);

    #[repr(C, align(32))]
    struct Sums([[i32; NR8]; OC8]);

    /// A tile's weights widened to the pairs `vpmaddwd` multiplies ([`widen_pairs`]).
    #[repr(C, align(32))]
    struct WidePairs([[i32; KC8 / 2]; MR8]);

    /// The int8 convolution on checked slices; `zero_points.input` must be in [-128, 127].
    pub(super) fn conv_int8(
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
        d: &Dims,
    ) {
        // SAFETY: reached only through an `X86Avx2`, which exists only where
        // `detect::x86_avx2()` found AVX2 enabled by the OS.
        unsafe { conv_int8_avx2(input, kernel, zero_points, output, d) }
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn conv_int8_avx2(
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
        d: &Dims,
    ) {
        let zp_in = zero_points.input as i16;
        let mut panel = PanelI16([0; KC8 * NR8]);
        let mut sums = Sums([[0; NR8]; OC8]);
        let mut wide = WidePairs([[0; KC8 / 2]; MR8]);
        let k_blocks = d.taps.div_ceil(KC8).max(1);
        // Even block lengths, so that only the last block can end in half a pair.
        let kc_len = (d.taps.div_ceil(k_blocks) + 1) & !1;
        let vector_packing = lanes_fit(d, input.len()) && input.len() >= 4;
        for g in 0..d.groups {
            let in_g = input.get(g * d.cin_g * d.in_plane..).unwrap_or(&[]);
            for p0 in (0..d.pixels).step_by(NR8) {
                let np = NR8.min(d.pixels - p0);
                let block = Block::<NR8>::new(d, p0);
                for c0 in (0..d.cout_g).step_by(OC8) {
                    let nc = OC8.min(d.cout_g - c0);
                    let first = g * d.cout_g + c0;
                    for (row, o) in sums.0.iter_mut().zip(first..).take(nc) {
                        *row = [kernel.bias.get(o).copied().unwrap_or(0); NR8];
                    }
                    for k0 in (0..d.taps).step_by(kc_len) {
                        let kc = kc_len.min(d.taps - k0);
                        if vector_packing {
                            // SAFETY: AVX2, as this function requires; the geometry fits i32
                            // lanes.
                            unsafe {
                                pack_int8_avx2(&mut panel.0, input, g, d, &block, k0, kc, zp_in)
                            };
                        } else {
                            pack_int8(&mut panel.0, in_g, d, &block, k0, kc, zp_in);
                        }
                        let panel = panel.0.get(..kc.div_ceil(2) * 2 * NR8).unwrap_or(&[]);
                        let mut o = 0;
                        while o < nc {
                            let (oc, rest) = (first + o, sums.0.get_mut(o..nc).unwrap_or(&mut []));
                            let w = kernel.weight;
                            // SAFETY (each arm): AVX2, as this function requires.
                            o += match nc - o {
                                1 => unsafe {
                                    tile_int8::<1>(&mut wide, w, rest, d, panel, oc, k0, kc)
                                },
                                _ => unsafe {
                                    tile_int8::<MR8>(&mut wide, w, rest, d, panel, oc, k0, kc)
                                },
                            };
                        }
                    }
                    let per_channel = kernel.multiplier.iter().zip(kernel.shift).skip(first);
                    for (o, (row, (&m, &r))) in sums.0.iter().zip(per_channel).take(nc).enumerate()
                    {
                        let start = (first + o) * d.pixels + p0;
                        let dst = output.get_mut(start..).unwrap_or(&mut []);
                        for (q, &a) in dst.iter_mut().zip(row).take(np) {
                            *q = output_code(a, m, r, zero_points.output);
                        }
                    }
                }
            }
        }
    }

    /// Taps `k0..k0 + kc` of a block as `q - zp_in` (0 in the padding), in tap pairs; an odd
    /// last tap is paired with zeros.
    #[inline(always)]
    fn pack_int8(
        panel: &mut [i16],
        input: &[i8],
        d: &Dims,
        block: &Block<NR8>,
        k0: usize,
        kc: usize,
        zp_in: i16,
    ) {
        let mut tap = Tap::new(k0, d.k);
        for (pair, chunk) in panel
            .chunks_exact_mut(2 * NR8)
            .take(kc.div_ceil(2))
            .enumerate()
        {
            for lane in 0..2 {
                if 2 * pair + lane < kc {
                    gather(input, d, block, tap, |j, v| {
                        if let Some(x) = chunk.get_mut(2 * j + lane) {
                            *x = v.map_or(0, |q| q as i16 - zp_in);
                        }
                    });
                    tap.step(d.k);
                } else {
                    chunk.iter_mut().skip(lane).step_by(2).for_each(|x| *x = 0);
                }
            }
        }
    }

    /// Output channels `oc..oc + M` (their sums: the first `M` rows of `sums`) of one tile:
    /// widens their weights into `wide`, adds the panel's taps `k0..k0 + kc`; returns `M`.
    /// The widening is repeated for every block of pixels (about 4 % of the tile's work):
    /// widening all of a layer's weights once would need up to 3.5 MB (conv3), and the core
    /// has no heap.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    unsafe fn tile_int8<const M: usize>(
        wide: &mut WidePairs,
        weight: &[i8],
        sums: &mut [[i32; NR8]],
        d: &Dims,
        panel: &[i16],
        oc: usize,
        k0: usize,
        kc: usize,
    ) -> usize {
        for (i, dst) in wide.0.iter_mut().enumerate().take(M) {
            let start = (oc + i) * d.taps + k0;
            // Checked slices always have the row; without it, the tile is left alone rather
            // than summed with another tile's weights.
            let Some(row) = weight.get(start..start + kc) else {
                return M;
            };
            // SAFETY: AVX2, as this function requires.
            unsafe { widen_pairs(row, dst) };
        }
        if let (Some(acc), Some(wide)) = (
            sums.get_mut(..M)
                .and_then(|s| <&mut [[i32; NR8]; M]>::try_from(s).ok()),
            wide.0
                .get(..M)
                .and_then(|w| <&[[i32; KC8 / 2]; M]>::try_from(w).ok()),
        ) {
            // SAFETY: AVX2, as this function requires.
            unsafe { kernel_int8::<M>(wide, panel, kc.div_ceil(2), acc) };
        }
        M
    }

    /// A row of weights as the pairs `vpmaddwd` multiplies: `dst[p]` holds `w[2p]` in its low
    /// i16 and `w[2p + 1]` (0 past the row's end) in its high one, both sign-extended. Writes
    /// `ceil(row.len() / 2)` pairs (at most `dst`'s length).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn widen_pairs(row: &[i8], dst: &mut [i32; KC8 / 2]) {
        let whole = (row.len() / 16).min(KC8 / 16);
        for c in 0..whole {
            // SAFETY: c < row.len() / 16: 16 bytes at 16 c; c < KC8 / 16: 8 pairs at 8 c.
            unsafe {
                let w = _mm256_cvtepi8_epi16(_mm_loadu_si128(row.as_ptr().add(16 * c).cast()));
                _mm256_storeu_si256(dst.as_mut_ptr().add(8 * c).cast(), w);
            }
        }
        let rest = row.get(16 * whole..).unwrap_or(&[]);
        let pairs = dst.get_mut(8 * whole..).unwrap_or(&mut []);
        for (p, two) in pairs.iter_mut().zip(rest.chunks(2)) {
            let lo = two.first().map_or(0, |&w| w as i16 as u16 as u32);
            let hi = two.get(1).map_or(0, |&w| w as i16 as u16 as u32);
            *p = (lo | hi << 16) as i32;
        }
    }

    /// `acc[i][j] += sum over pairs p of w[i][2p] * panel[2p][j] + w[i][2p + 1] *
    /// panel[2p + 1][j]`, in i32 (wrapping), one `vpmaddwd` per pair and 8 pixels, the
    /// widened weight pair broadcast straight from memory (no shuffle on the pipes the adds
    /// need). Does nothing unless the panel has `pairs` pairs of NR8 pixels and `pairs <=
    /// KC8 / 2`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn kernel_int8<const M: usize>(
        wide: &[[i32; KC8 / 2]; M],
        panel: &[i16],
        pairs: usize,
        acc: &mut [[i32; NR8]; M],
    ) {
        if panel.len() < pairs * 2 * NR8 || pairs > KC8 / 2 {
            return;
        }
        let mut v = [[_mm256_setzero_si256(); 4]; M];
        for (vi, a) in v.iter_mut().zip(acc.iter()) {
            for (q, x) in vi.iter_mut().enumerate() {
                // SAFETY: a row of `acc` is NR8 = 32 i32, four vectors of 8.
                *x = unsafe { _mm256_loadu_si256(a.as_ptr().add(8 * q).cast()) };
            }
        }
        let b = panel.as_ptr();
        for pair in 0..pairs {
            for (vi, w) in v.iter_mut().zip(wide) {
                // SAFETY: pair < pairs <= KC8 / 2, the row's length.
                let w = _mm256_set1_epi32(unsafe { *w.get_unchecked(pair) });
                for (q, x) in vi.iter_mut().enumerate() {
                    // SAFETY: pair < pairs and panel.len() >= pairs * 2 * NR8: 64 i16 at
                    // pair * 64, four vectors of 16.
                    let bq = unsafe { _mm256_loadu_si256(b.add(pair * 2 * NR8 + 16 * q).cast()) };
                    *x = _mm256_add_epi32(*x, _mm256_madd_epi16(bq, w));
                }
            }
        }
        for (vi, a) in v.iter().zip(acc.iter_mut()) {
            for (q, x) in vi.iter().enumerate() {
                // SAFETY: a row of `acc` is NR8 = 32 i32, four vectors of 8.
                unsafe { _mm256_storeu_si256(a.as_mut_ptr().add(8 * q).cast(), *x) };
            }
        }
    }

    /// The blocked f32 LRN compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn lrn_f32(
        values: &mut [f32],
        shape: Shape,
        spec: &LrnSpec,
    ) -> Result<(), Error> {
        blocked::lrn_f32(values, shape, spec, |out, a, b| {
            // SAFETY: this function runs only where AVX2 is (its own contract).
            unsafe { divide_by_three_quarter_power(out, a, b) }
        })
    }

    /// `x < 0 ? 0 : x`, eight at a time: the lanes below zero cleared (`vcmpltps`,
    /// `vandnps`), written back whole (the compiler's own vectorization of the select stores
    /// through `vmaskmovps`, microcoded on AMD cores: three times slower).
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn relu(values: &mut [f32]) {
        let mut chunks = values.chunks_exact_mut(8);
        let zero = _mm256_setzero_ps();
        for chunk in &mut chunks {
            // SAFETY: eight f32 of `chunk`, unaligned load and store.
            unsafe {
                let v = _mm256_loadu_ps(chunk.as_ptr());
                let negative = _mm256_cmp_ps::<_CMP_LT_OQ>(v, zero);
                _mm256_storeu_ps(chunk.as_mut_ptr(), _mm256_andnot_ps(negative, v));
            }
        }
        for v in chunks.into_remainder() {
            if *v < 0.0 {
                *v = 0.0;
            }
        }
    }

    /// `max(q, zp)` (the zero point saturated to the codes), compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn relu_int8(values: &mut [i8], zero_point: i32) {
        let zp = crate::int8::requant::saturate(zero_point as i64);
        for v in values {
            *v = (*v).max(zp);
        }
    }

    /// The blocked integer LRN with [`rounded_channel`]'s eight-pixel loop.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn lrn_int8(
        values: &mut [i8],
        shape: Shape,
        spec: &LrnSpec,
        table: super::LrnTable<'_>,
        zero_points: ZeroPoints,
    ) -> Result<bool, Error> {
        blocked::lrn_int8_with(values, shape, spec, table, zero_points, |c| {
            // SAFETY: this function runs only where AVX2 is (its own contract).
            unsafe { rounded_channel(c) }
        })
    }

    /// The blocked int8 max pool compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn max_pool_int8(
        g: &crate::geometry::PoolGeometry,
        input: &[i8],
        output: &mut [i8],
    ) -> Result<bool, Error> {
        blocked::max_pool_int8(g, input, output)
    }

    /// [`blocked::rounded_channel`] eight pixels at a time: the sums moved with
    /// `vpmulld`, the octave of each sum from its conversion to f32 (exact below 2^24; the
    /// sums stay below 2^20), the entries by `vpgatherdd`, and both rounded shifts as the
    /// rounded high words of `vpmuldq` products (`mul_high`), the same integers as the
    /// portable loop; the last `width % 8` pixels through the portable loop.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn rounded_channel(mut c: blocked::RoundedChannel<'_>) {
        let width = c
            .out
            .len()
            .min(c.incoming.len())
            .min(c.row.len())
            .min(c.sums.len());
        let whole = width - width % 8;
        let (q, table) = (c.q, c.table);
        let high = q >= 33;
        let zp_in = _mm256_set1_epi32(c.zp_in);
        let zp_out = _mm256_set1_epi32(c.zp_out);
        let (scale, round_high) = blocked::int8_lrn::rounded_shift(q);
        let scale = _mm_cvtsi32_si128(scale as i32);
        let round_high = _mm256_set1_epi32(round_high);
        let direct = _mm256_set1_epi32(crate::int8::LRN_DIRECT as i32);
        for i in (0..whole).step_by(8) {
            // SAFETY: `i + 8 <= whole <= width`, within each of the four slices (8 bytes of
            // `incoming` and `out`, 8 i16 of `row`, 8 i32 of `sums`; unaligned loads and
            // stores). The gathers read the table at the entries `lrn_table_index` gives for
            // sums of at most `lrn_max_sum(n)`, and the next ones, which the table covers
            // (what a `RoundedChannel` promises), or at a sum below 64 and the next.
            unsafe {
                let d = _mm256_sub_epi32(
                    _mm256_cvtepi8_epi32(_mm_loadl_epi64(c.incoming.as_ptr().add(i).cast())),
                    zp_in,
                );
                let row = c.row.as_mut_ptr().add(i).cast::<__m128i>();
                let old = _mm256_cvtepi16_epi32(_mm_loadu_si128(row));
                // d fits i16 (|d| <= 255): the saturating pack keeps it; qwords 0 and 2
                // hold the eight values in order.
                let packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(d, d), 0b1000);
                _mm_storeu_si128(row, _mm256_castsi256_si128(packed));
                let sums_at = c.sums.as_mut_ptr().add(i).cast::<__m256i>();
                let sums = _mm256_sub_epi32(
                    _mm256_add_epi32(_mm256_loadu_si256(sums_at), _mm256_mullo_epi32(d, d)),
                    _mm256_mullo_epi32(old, old),
                );
                _mm256_storeu_si256(sums_at, sums);
                let x = _mm256_sub_epi32(
                    _mm256_cvtepi8_epi32(_mm_loadl_epi64(c.out.as_ptr().add(i).cast())),
                    zp_in,
                );
                let g = factor(sums, table, direct);
                // A zero `x` gives 0 in both forms: the code of a zero is `zp_out`.
                let v = if high {
                    _mm256_sra_epi32(_mm256_add_epi32(mul_high(x, g, false), round_high), scale)
                } else {
                    mul_high(_mm256_sll_epi32(x, scale), g, true)
                };
                // Saturating packs to i16 then i8: the clamp to the int8 codes.
                let o16 = _mm256_packs_epi32(_mm256_add_epi32(v, zp_out), zp_out);
                let o8 = _mm256_packs_epi16(o16, o16);
                let bytes =
                    _mm_unpacklo_epi32(_mm256_castsi256_si128(o8), _mm256_extracti128_si256(o8, 1));
                _mm_storel_epi64(c.out.as_mut_ptr().add(i).cast(), bytes);
            }
        }
        if let Some(tail) = c.part(whole..width) {
            blocked::rounded_channel(tail);
        }
    }

    /// The table's value at each lane's sum (`docs/int8-spec.md`): `G[s]` below 64,
    /// otherwise `G[i] + ((G[i + 1] - G[i]) f + 2^(sh - 1)) >> sh`, taken as the rounded high
    /// word of `2 (G[i + 1] - G[i])` times `f << (31 - sh)` (exact: the steps fit 2^30).
    ///
    /// # Safety
    /// The CPU must have AVX2; `table` covers every lane's sum (see `rounded_channel`).
    #[target_feature(enable = "avx2")]
    unsafe fn factor(s: __m256i, table: &[i32], direct: __m256i) -> __m256i {
        // floor(log2 s) from the exponent of s as f32.
        let e = _mm256_sub_epi32(
            _mm256_srli_epi32(_mm256_castps_si256(_mm256_cvtepi32_ps(s)), 23),
            _mm256_set1_epi32(127),
        );
        let sh = _mm256_sub_epi32(e, _mm256_set1_epi32(5));
        let top = _mm256_srlv_epi32(s, sh);
        // 64 + 32 (e - 6) + top - 32.
        let index = _mm256_add_epi32(
            _mm256_slli_epi32(e, 5),
            _mm256_sub_epi32(top, _mm256_set1_epi32(160)),
        );
        let f = _mm256_sub_epi32(s, _mm256_sllv_epi32(top, sh));
        let f31 = _mm256_sllv_epi32(f, _mm256_sub_epi32(_mm256_set1_epi32(31), sh));
        // Sums below 64 are their own entries, with no offset.
        let small = _mm256_cmpgt_epi32(direct, s);
        let index = _mm256_blendv_epi8(index, s, small);
        let f31 = _mm256_andnot_si256(small, f31);
        // SAFETY: every index is an entry the table holds, and so is the next (the caller's
        // guarantee).
        let (g0, g1) = unsafe {
            (
                _mm256_i32gather_epi32::<4>(table.as_ptr(), index),
                _mm256_i32gather_epi32::<4>(table.as_ptr().add(1), index),
            )
        };
        let step = _mm256_slli_epi32(_mm256_sub_epi32(g1, g0), 1);
        _mm256_add_epi32(g0, mul_high(step, f31, true))
    }

    /// Per lane the high word of the 64-bit product `a * b`, plus 2^31 first if `rounded`
    /// (`SMMULR` lane by lane): `vpmuldq` on the even lanes and on the odd ones shifted down.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn mul_high(a: __m256i, b: __m256i, rounded: bool) -> __m256i {
        let round = _mm256_set1_epi64x(if rounded { 1 << 31 } else { 0 });
        let even = _mm256_add_epi64(_mm256_mul_epi32(a, b), round);
        let odd = _mm256_add_epi64(
            _mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(b, 32)),
            round,
        );
        _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0b1010_1010)
    }

    /// `out[p] = a[p] / sqrt(b[p] * sqrt(b[p]))` ([`blocked::divide_by_three_quarter_power`])
    /// eight pixels at a time: `vsqrtps`, `vmulps`, `vsqrtps`, `vdivps`, each correctly
    /// rounded per lane, so every lane has the contract's bits; the rest one by one with the
    /// scalar instructions.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn divide_by_three_quarter_power(out: &mut [f32], a: &[f32], b: &[f32]) {
        let len = out.len().min(a.len()).min(b.len());
        let whole = len - len % 8;
        for i in (0..whole).step_by(8) {
            // SAFETY: `i + 8 <= whole <= len`, within each slice; unaligned loads and stores.
            unsafe {
                let base = _mm256_loadu_ps(b.as_ptr().add(i));
                let power = _mm256_sqrt_ps(_mm256_mul_ps(base, _mm256_sqrt_ps(base)));
                let q = _mm256_div_ps(_mm256_loadu_ps(a.as_ptr().add(i)), power);
                _mm256_storeu_ps(out.as_mut_ptr().add(i), q);
            }
        }
        for ((o, &a), &b) in out[whole..len].iter_mut().zip(&a[whole..]).zip(&b[whole..]) {
            let base = _mm_set_ss(b);
            let power = _mm_sqrt_ss(_mm_mul_ss(base, _mm_sqrt_ss(base)));
            *o = _mm_cvtss_f32(_mm_div_ss(_mm_set_ss(a), power));
        }
    }

    /// `items` in arrays of `N` (the fully connected kernels' outputs, `N` rows at a time),
    /// the last array padded with `None`.
    pub(super) fn blocks_of<const N: usize, I: Iterator>(
        items: I,
    ) -> impl Iterator<Item = [Option<I::Item>; N]> {
        let mut items = items.peekable();
        core::iter::from_fn(move || {
            items.peek()?;
            Some(core::array::from_fn(|_| items.next()))
        })
    }

    // The fully connected kernels keep the contract's partial sums as 16 lanes (two AVX2
    // vectors, one AVX-512 vector) and step through the inputs 16 at a time.
    const _: () = assert!(super::super::reference::f32::LINEAR_LANES == 16);

    /// One output of the f32 fully connected layer from its 16 partial sums over the inputs
    /// before `whole`: the products of the inputs `rest` (those from `whole` on) added to
    /// their lanes, then the fold in halves and the bias, as the reference does them.
    #[inline(always)]
    pub(super) fn finish_linear_f32(
        mut sums: [f32; super::super::reference::f32::LINEAR_LANES],
        rest: &[f32],
        row: &[f32],
        whole: usize,
        bias: f32,
    ) -> f32 {
        let w_rest = row.get(whole..).unwrap_or(&[]);
        for ((s, &x), &w) in sums.iter_mut().zip(rest).zip(w_rest) {
            *s += x * w;
        }
        super::super::reference::f32::fold_with_bias(sums, bias)
    }

    /// The f32 fully connected layer, bit for bit the contract's order
    /// ([`super::super::reference::f32::linear`]): each output's partial sum `l` takes the
    /// products of inputs `16 i + l` in ascending `i` (a multiply, then an add), here lane `l`
    /// of two vectors; the remainder's products, the fold in halves and the bias follow as
    /// the reference does them. Four outputs at a time: four weight rows in flight.
    ///
    /// # Safety
    /// The CPU must have AVX2; the slices must have passed `check_linear`, which returned `n`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn linear_f32(
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
        n: usize,
    ) {
        use super::super::reference::f32::LINEAR_LANES;
        const ROWS: usize = 4;
        let n = n.min(input.len());
        let whole = n - n % LINEAR_LANES;
        let rows = weight.chunks_exact(n.max(1)).zip(bias);
        for block in blocks_of::<ROWS, _>(output.iter_mut().zip(rows)) {
            let mut lo = [_mm256_setzero_ps(); ROWS];
            let mut hi = [_mm256_setzero_ps(); ROWS];
            for i in (0..whole).step_by(LINEAR_LANES) {
                // SAFETY: `i + 16 <= whole <= input.len()`; unaligned loads.
                let (x0, x1) = unsafe {
                    (
                        _mm256_loadu_ps(input.as_ptr().add(i)),
                        _mm256_loadu_ps(input.as_ptr().add(i + 8)),
                    )
                };
                for ((l, h), out) in lo.iter_mut().zip(&mut hi).zip(&block) {
                    if let Some((_, (row, _))) = out {
                        // SAFETY: `row` has `n` weights and `i + 16 <= n`.
                        let (w0, w1) = unsafe {
                            (
                                _mm256_loadu_ps(row.as_ptr().add(i)),
                                _mm256_loadu_ps(row.as_ptr().add(i + 8)),
                            )
                        };
                        *l = _mm256_add_ps(*l, _mm256_mul_ps(x0, w0));
                        *h = _mm256_add_ps(*h, _mm256_mul_ps(x1, w1));
                    }
                }
            }
            for ((l, h), out) in lo.iter().zip(&hi).zip(block) {
                let Some((y, (row, &b))) = out else {
                    break;
                };
                let mut acc = [0.0f32; LINEAR_LANES];
                // SAFETY: `acc` is 16 floats, two vectors of 8; unaligned stores.
                unsafe {
                    _mm256_storeu_ps(acc.as_mut_ptr(), *l);
                    _mm256_storeu_ps(acc.as_mut_ptr().add(8), *h);
                }
                *y = finish_linear_f32(acc, input.get(whole..n).unwrap_or(&[]), row, whole, b);
            }
        }
    }

    /// The int8 fully connected layer for a checked call with `input.len() <=
    /// MAX_LINEAR_INT8_INPUT` and an input zero point in `-128..=127`.
    ///
    /// # Safety
    /// The CPU must have AVX2; the slices must have passed `check_linear`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn linear_int8(
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) {
        const ROWS: usize = 4;
        let n = input.len().min(super::MAX_LINEAR_INT8_INPUT);
        let mut widened = [0i16; super::MAX_LINEAR_INT8_INPUT];
        for (d, &x) in widened.iter_mut().zip(input) {
            // In [-255, 255]: the zero point is a code.
            *d = (x as i32 - zero_points.input) as i16;
        }
        let xs = widened.get(..n).unwrap_or(&[]);
        let whole = n - n % 16;
        let rows = kernel.weight.chunks_exact(n);
        let channel = kernel.bias.iter().zip(kernel.multiplier).zip(kernel.shift);
        for block in blocks_of::<ROWS, _>(output.iter_mut().zip(rows.zip(channel))) {
            let mut acc = [_mm256_setzero_si256(); ROWS];
            for i in (0..whole).step_by(16) {
                // SAFETY: `i + 16 <= whole <= n`: within `xs`; unaligned load.
                let x = unsafe { _mm256_loadu_si256(xs.as_ptr().add(i).cast()) };
                for (a, out) in acc.iter_mut().zip(&block) {
                    if let Some((_, (row, _))) = out {
                        // SAFETY: `row` has `n` weights and `i + 16 <= n`.
                        let w = unsafe { _mm_loadu_si128(row.as_ptr().add(i).cast()) };
                        let products = _mm256_madd_epi16(x, _mm256_cvtepi8_epi16(w));
                        *a = _mm256_add_epi32(*a, products);
                    }
                }
            }
            for (a, out) in acc.iter().zip(block) {
                let Some((q, (row, ((&bias, &m), &r)))) = out else {
                    break;
                };
                // The sum of an output's products is exact in i32 in any order.
                let mut lanes = [0i32; 8];
                // SAFETY: `lanes` is 8 i32; unaligned store.
                unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), *a) };
                let mut sum = bias.wrapping_add(lanes.iter().fold(0i32, |s, &l| s.wrapping_add(l)));
                let rest = xs.get(whole..).unwrap_or(&[]);
                for (&x, &w) in rest.iter().zip(row.get(whole..).unwrap_or(&[])) {
                    sum = sum.wrapping_add(x as i32 * w as i32);
                }
                *q = output_code(sum, m, r, zero_points.output);
            }
        }
    }
}
