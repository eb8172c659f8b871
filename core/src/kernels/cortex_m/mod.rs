//! Cortex-M kernels, two sets:
//!
//! | kernels | for | int8 convolution | int8 FC | integer LRN, int8 max pool | f32 convolution, FC, LRN |
//! |---|---|---|---|---|---|
//! | [`CortexMDsp`] | cores with the DSP extension (M4, M7, M33; feature `dsp`) | `SMLAD` ([`dsp`]) | `SMLAD` | [`lrn_int8`](blocked::lrn_int8) (its channel loop on `SMMLAR`), [`max_pool_int8`](blocked::max_pool_int8) (its column pass and the ReLU on `SSUB8`/`SEL`) | [`fpu`] (and the f32 LRN) |
//! | [`CortexM`] | every other core (M0, M0+, M3, and builds without `dsp`) | `MLA` ([`mla`]) | reference | [`lrn_int8`](blocked::lrn_int8), [`max_pool_int8`](blocked::max_pool_int8) | [`fpu`] (and the f32 LRN) |
//!
//! The f32 kernels use the FPU (`VMLA.F32`) where the target has one (hard-float targets),
//! the same loops in Rust elsewhere. Both int8 convolutions share the prepacked kernel's patches, tiles and requantization
//! (`packed_conv`), which differ only in the 2x2 block's instructions. Every other layer runs
//! the reference. Off ARM (and without `dsp`, for [`CortexMDsp`]), the instructions are exact
//! portable emulations, so the host runs this very code in the kernel suite and the QEMU
//! firmware tests run it with the real ones.

pub mod dsp;
pub mod fpu;
pub mod mla;
mod packed_conv; // `unsafe`: the assembly tile loop and its slots
mod scratch; // `unsafe`: buffers initialized only as far as they are used

use super::{blocked, KernelPath, Kernels, LrnTable};
use crate::arch::{LrnSpec, Shape};
use crate::error::Error;
use crate::geometry::{ConvGeometry, PoolGeometry};
use crate::int8::{QKernel, ZeroPoints};

/// The methods both Cortex-M sets share: the f32 convolution, fully connected layer and LRN
/// on the FPU ([`fpu`]) and the integer LRN ([`blocked`]), each
/// reporting the set's own path (`$own`) when its kernel ran.
macro_rules! shared_methods {
    ($own:expr) => {
        fn conv2d(
            &self,
            g: &ConvGeometry,
            input: &[f32],
            weight: &[f32],
            bias: &[f32],
            output: &mut [f32],
        ) -> Result<KernelPath, Error> {
            fpu::conv2d(g, input, weight, bias, output)
                .map(|own| KernelPath::own_or_reference(own, $own))
        }

        fn linear(
            &self,
            input: &[f32],
            weight: &[f32],
            bias: &[f32],
            output: &mut [f32],
        ) -> Result<KernelPath, Error> {
            fpu::linear(input, weight, bias, output).map(|()| $own)
        }

        fn lrn(
            &self,
            values: &mut [f32],
            shape: Shape,
            spec: &LrnSpec,
        ) -> Result<KernelPath, Error> {
            fpu::lrn(values, shape, spec).map(|()| $own)
        }

        fn lrn_int8(
            &self,
            values: &mut [i8],
            shape: Shape,
            spec: &LrnSpec,
            table: LrnTable<'_>,
            zero_points: ZeroPoints,
        ) -> Result<KernelPath, Error> {
            blocked::lrn_int8(values, shape, spec, table, zero_points)
                .map(|own| KernelPath::own_or_reference(own, $own))
        }
    };
}

/// The Cortex-M kernels for cores without the DSP extension ([`mla`], and the shared
/// [`fpu`], and the integer LRN and int8 max pool of [`blocked`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct CortexM;

impl Kernels for CortexM {
    fn name(&self) -> &'static str {
        if cfg!(thumb2) {
            "Cortex-M"
        } else {
            "Cortex-M (portable)"
        }
    }

    fn conv2d_int8(
        &self,
        g: &ConvGeometry,
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        mla::conv2d(g, input, kernel, zero_points, output)
    }

    fn max_pool_int8(
        &self,
        g: &PoolGeometry,
        input: &[i8],
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        blocked::max_pool_int8(g, input, output)
            .map(|own| KernelPath::own_or_reference(own, KernelPath::CortexM))
    }

    shared_methods!(KernelPath::CortexM);
}

/// The Cortex-M DSP kernels ([`dsp`], and the shared [`fpu`], and the integer LRN and int8
/// max pool of [`blocked`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct CortexMDsp;

impl Kernels for CortexMDsp {
    fn name(&self) -> &'static str {
        if cfg!(all(target_arch = "arm", feature = "dsp")) {
            "Cortex-M DSP"
        } else {
            "Cortex-M DSP (emulated)"
        }
    }

    fn conv2d_int8(
        &self,
        g: &ConvGeometry,
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        dsp::conv2d(g, input, kernel, zero_points, output)
    }

    fn linear_int8(
        &self,
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        dsp::linear(input, kernel, zero_points, output)
    }

    /// Four codes per `SSUB8`/`SEL` pair ([`dsp::relu_int8`]).
    fn relu_int8(&self, values: &mut [i8], zero_point: i32) -> KernelPath {
        dsp::relu_int8(values, zero_point);
        KernelPath::CortexMDsp
    }

    /// The column pass four codes per `SSUB8`/`SEL` pair ([`dsp::fold_rows`]).
    fn max_pool_int8(
        &self,
        g: &PoolGeometry,
        input: &[i8],
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        blocked::max_pool_int8_with(g, input, output, dsp::fold_rows)
            .map(|own| KernelPath::own_or_reference(own, KernelPath::CortexMDsp))
    }

    shared_methods!(KernelPath::CortexMDsp);
}
