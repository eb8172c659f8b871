//! The compute kernels, behind one interface, grouped by where they run:
//!
//! | module | runs on | what it holds |
//! |---|---|---|
//! | [`reference`](mod@reference) | everywhere | the contracts' definitions, every layer, f32 and int8 |
//! | [`blocked`] | (generic, run by the sets below) | the f32 LRN over blocks of pixels (the innermost step supplied by each set), the integer LRN, the int8 max pool |
//! | [`x86_64`] | x86-64 with AVX2 or AVX-512 VNNI (detected at run time) | [`X86Avx2`]: blocked f32 and int8 convolutions, the f32 and int8 fully connected layers, the ReLUs, the LRNs and the int8 max pool on AVX2; [`X86Avx512`]: the int8 convolution and fully connected layer on `vpdpbusd`, the f32 convolution, fully connected layer and max pool on 16 lanes, the integer LRN and the int8 max pool |
//! | [`cortex_m`] | Cortex-M: [`CortexMDsp`] with the DSP extension (feature `dsp`), [`CortexM`] without (an exact emulation off ARM) | the int8 convolution on `SMLAD` or `MLA`, the `SMLAD` FC layer, the f32 convolution, FC layer and LRN on the FPU |
//!
//! Every implementation computes every output exactly as the contracts say
//! (`docs/numerics-f32.md`, `docs/int8-spec.md`), so the logits are bit-identical whichever
//! runs; one test suite (`tests/kernel_suite.rs`) runs them all against an independent
//! reference. Each kernel call returns the [`KernelPath`] that computed it, so that suite
//! fails when an implementation quietly falls back to another.
//!
//! [`native`] picks, once, the best implementation this build and machine have; a host can
//! wrap any of them (`alexnet_host::parallel::Parallel` splits each layer's outputs over
//! threads).

pub mod blocked;
pub mod cortex_m; // `unsafe`: the DSP instructions, item by item
mod detect; // `unsafe`: CPUID and XGETBV
pub mod reference;
#[allow(unsafe_code)] // the AVX2 and AVX-512 intrinsics, each with its argument
pub mod x86_64;

pub use cortex_m::{CortexM, CortexMDsp};
pub use detect::native;
pub use reference::Reference;
pub use x86_64::{X86Avx2, X86Avx512};

use crate::arch::{LrnSpec, Shape};
use crate::error::Error;
use crate::geometry::{AdaptivePoolGeometry, ConvGeometry, PoolGeometry};
use crate::int8::{QKernel, ZeroPoints};

/// Which code computed a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KernelPath {
    /// The portable definition ([`reference`](mod@reference)).
    Reference,
    /// The AVX2 kernels of [`x86_64`].
    X86Avx2,
    /// The AVX-512 kernels of [`x86_64`] (AVX512-VNNI for int8).
    X86Avx512,
    /// The `SMLAD` kernels of [`cortex_m`] (the real instructions on ARM with `dsp`, their
    /// exact emulation elsewhere).
    CortexMDsp,
    /// The kernels of [`cortex_m`] for cores without the DSP extension (the `MLA` assembly on
    /// Thumb-2 cores, the same arithmetic in Rust elsewhere).
    CortexM,
}

impl KernelPath {
    /// `own` when a set's kernel ran (`ran_own`), the reference when it handed the layer
    /// over (a kernel whose buffers the layer outgrows says so with `false`).
    pub(crate) fn own_or_reference(ran_own: bool, own: KernelPath) -> KernelPath {
        if ran_own {
            own
        } else {
            KernelPath::Reference
        }
    }
}

/// An int8 LRN layer's table and shift, as the quantizer wrote them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LrnTable<'a> {
    /// The normalization factor at the grid points of [`crate::int8::lrn_grid`].
    pub table: &'a [i32],
    /// The right shift applied after multiplying by the factor.
    pub shift: u32,
    /// Whether neighbouring entries are less than 2^30 apart
    /// ([`crate::int8::lrn_steps_fit`]), if the caller knows (a parsed model does: it checks
    /// once, not on every call of a fused chain); `None`: the kernel checks. A wrong
    /// `Some(true)` gives wrong codes, never unsafety.
    pub steps_fit: Option<bool>,
}

impl<'a> LrnTable<'a> {
    /// A table whose kernels check its steps themselves.
    pub const fn new(table: &'a [i32], shift: u32) -> Self {
        LrnTable {
            table,
            shift,
            steps_fit: None,
        }
    }
}

/// Every layer kind in both precisions. Each method checks its slices against the geometry,
/// computes as the contract defines, and returns which code ran. The defaults are the
/// reference definitions, so an implementation overrides only what it does faster (and the
/// returned [`KernelPath`] shows which ones it does).
pub trait Kernels: Sync {
    /// A short name for logs and benchmarks.
    fn name(&self) -> &'static str;

    /// Whether a fused pass given the arena for whole layers should run every layer whole
    /// instead (the same bits either way): `false` (fuse) unless whole layers were measured
    /// faster with these kernels. [`crate::Model::run`] asks it.
    fn prefers_whole_layers(&self) -> bool {
        false
    }

    /// f32 convolution ([`reference::f32::conv2d`]).
    fn conv2d(
        &self,
        g: &ConvGeometry,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        reference::f32::conv2d(g, input, weight, bias, output).map(|()| KernelPath::Reference)
    }

    /// f32 fully connected layer ([`reference::f32::linear`]).
    fn linear(
        &self,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        reference::f32::linear(input, weight, bias, output).map(|()| KernelPath::Reference)
    }

    /// f32 ReLU in place ([`reference::f32::relu_in_place`]).
    fn relu(&self, values: &mut [f32]) -> KernelPath {
        reference::f32::relu_in_place(values);
        KernelPath::Reference
    }

    /// f32 LRN in place ([`reference::f32::lrn_in_place`]).
    fn lrn(&self, values: &mut [f32], shape: Shape, spec: &LrnSpec) -> Result<KernelPath, Error> {
        reference::f32::lrn_in_place(values, shape, spec).map(|()| KernelPath::Reference)
    }

    /// f32 max pooling ([`reference::f32::max_pool`]).
    fn max_pool(
        &self,
        g: &PoolGeometry,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        reference::f32::max_pool(g, input, output).map(|()| KernelPath::Reference)
    }

    /// f32 adaptive average pooling ([`reference::f32::adaptive_avg_pool`]).
    fn adaptive_avg_pool(
        &self,
        g: &AdaptivePoolGeometry,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        reference::f32::adaptive_avg_pool(g, input, output).map(|()| KernelPath::Reference)
    }

    /// int8 convolution with its requantization ([`reference::int8::conv2d`]).
    fn conv2d_int8(
        &self,
        g: &ConvGeometry,
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        reference::int8::conv2d(g, input, kernel, zero_points, output)
            .map(|()| KernelPath::Reference)
    }

    /// int8 fully connected layer with its requantization ([`reference::int8::linear`]).
    fn linear_int8(
        &self,
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        reference::int8::linear(input, kernel, zero_points, output).map(|()| KernelPath::Reference)
    }

    /// int8 ReLU in place: `max(q, zp)` ([`reference::int8::relu_in_place`]).
    fn relu_int8(&self, values: &mut [i8], zero_point: i32) -> KernelPath {
        reference::int8::relu_in_place(values, zero_point);
        KernelPath::Reference
    }

    /// int8 LRN in place ([`reference::int8::lrn_in_place`]).
    fn lrn_int8(
        &self,
        values: &mut [i8],
        shape: Shape,
        spec: &LrnSpec,
        table: LrnTable<'_>,
        zero_points: ZeroPoints,
    ) -> Result<KernelPath, Error> {
        reference::int8::lrn_in_place(values, shape, spec, table.table, table.shift, zero_points)
            .map(|()| KernelPath::Reference)
    }

    /// int8 max pooling ([`reference::int8::max_pool`]).
    fn max_pool_int8(
        &self,
        g: &PoolGeometry,
        input: &[i8],
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        reference::int8::max_pool(g, input, output).map(|()| KernelPath::Reference)
    }

    /// int8 adaptive average pooling ([`reference::int8::adaptive_avg_pool`]).
    fn adaptive_avg_pool_int8(
        &self,
        g: &AdaptivePoolGeometry,
        input: &[i8],
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        reference::int8::adaptive_avg_pool(g, input, output).map(|()| KernelPath::Reference)
    }
}

/// A reference to kernels is kernels (so `&dyn Kernels`, e.g. [`native`]'s, can be wrapped).
impl<K: Kernels + ?Sized> Kernels for &K {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn prefers_whole_layers(&self) -> bool {
        (**self).prefers_whole_layers()
    }
    fn conv2d(
        &self,
        g: &ConvGeometry,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        (**self).conv2d(g, input, weight, bias, output)
    }
    fn linear(
        &self,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        (**self).linear(input, weight, bias, output)
    }
    fn relu(&self, values: &mut [f32]) -> KernelPath {
        (**self).relu(values)
    }
    fn lrn(&self, values: &mut [f32], shape: Shape, spec: &LrnSpec) -> Result<KernelPath, Error> {
        (**self).lrn(values, shape, spec)
    }
    fn max_pool(
        &self,
        g: &PoolGeometry,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        (**self).max_pool(g, input, output)
    }
    fn adaptive_avg_pool(
        &self,
        g: &AdaptivePoolGeometry,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        (**self).adaptive_avg_pool(g, input, output)
    }
    fn conv2d_int8(
        &self,
        g: &ConvGeometry,
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        (**self).conv2d_int8(g, input, kernel, zero_points, output)
    }
    fn linear_int8(
        &self,
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        (**self).linear_int8(input, kernel, zero_points, output)
    }
    fn relu_int8(&self, values: &mut [i8], zero_point: i32) -> KernelPath {
        (**self).relu_int8(values, zero_point)
    }
    fn lrn_int8(
        &self,
        values: &mut [i8],
        shape: Shape,
        spec: &LrnSpec,
        table: LrnTable<'_>,
        zero_points: ZeroPoints,
    ) -> Result<KernelPath, Error> {
        (**self).lrn_int8(values, shape, spec, table, zero_points)
    }
    fn max_pool_int8(
        &self,
        g: &PoolGeometry,
        input: &[i8],
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        (**self).max_pool_int8(g, input, output)
    }
    fn adaptive_avg_pool_int8(
        &self,
        g: &AdaptivePoolGeometry,
        input: &[i8],
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        (**self).adaptive_avg_pool_int8(g, input, output)
    }
}
