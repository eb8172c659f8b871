//! The compute kernels a forward pass calls, as a trait. The core runs its own ([`Serial`]);
//! a host can run the same kernels on several threads (`alexnet_host::parallel` splits the
//! output channels), which computes every output exactly as the contract says, so the logits
//! stay bit-identical.

use crate::arch::{ConvSpec, Shape};
use crate::error::Error;
use crate::int8::{self, QKernel, ZeroPoints};
use crate::layers;

/// Convolutions and fully connected layers, f32 and int8: where a forward pass spends its
/// time. Every method defaults to the core's kernel.
pub trait Kernels {
    /// [`layers::conv2d`].
    fn conv2d(
        &self,
        input: &[f32],
        in_shape: Shape,
        spec: &ConvSpec,
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
    ) -> Result<Shape, Error> {
        layers::conv2d(input, in_shape, spec, weight, bias, output)
    }

    /// [`layers::linear`].
    fn linear(
        &self,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
    ) -> Result<(), Error> {
        layers::linear(input, weight, bias, output)
    }

    /// [`int8::conv2d`].
    fn conv2d_int8(
        &self,
        input: &[i8],
        in_shape: Shape,
        spec: &ConvSpec,
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<Shape, Error> {
        int8::conv2d(input, in_shape, spec, kernel, zero_points, output)
    }

    /// [`int8::linear`].
    fn linear_int8(
        &self,
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<(), Error> {
        int8::linear(input, kernel, zero_points, output)
    }
}

/// The core's kernels, on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct Serial;

impl Kernels for Serial {}
