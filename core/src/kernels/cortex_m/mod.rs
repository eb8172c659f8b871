//! Cortex-M kernels. With the DSP extension (Cortex-M4, M7, M33; feature `dsp`), the int8
//! convolution and fully connected layer run on `SMLAD` ([`dsp`]); the integer LRN has its
//! own kernel ([`lrn`], plain integer code); every other layer runs the reference. Off ARM,
//! or without `dsp`, the instructions are exact portable emulations, so the host runs this
//! very code in the kernel suite and the QEMU firmware test runs it with the real ones.

pub mod dsp;
pub mod lrn;

use super::{KernelPath, Kernels, LrnTable};
use crate::arch::{LrnSpec, Shape};
use crate::error::Error;
use crate::geometry::ConvGeometry;
use crate::int8::{QKernel, ZeroPoints};

/// The Cortex-M DSP kernels ([`dsp`]).
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

    fn lrn_int8(
        &self,
        values: &mut [i8],
        shape: Shape,
        spec: &LrnSpec,
        table: LrnTable<'_>,
        zero_points: ZeroPoints,
    ) -> Result<KernelPath, Error> {
        lrn::lrn_int8(values, shape, spec, table, zero_points)
    }
}
