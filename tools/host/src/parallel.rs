//! The core's kernels on several threads (feature `parallel`): each convolution and fully
//! connected layer is split by output channels, every part computed by the core's own kernel
//! on its slice of the weights. An output's arithmetic does not depend on the split, so the
//! logits are bit-identical to the single-threaded forward pass.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let file = alexnet_host::BlobFile::read("model.blob")?;
//! let model = file.model()?;
//! let threads = alexnet_host::parallel::Parallel::new(2)?;
//! let input = vec![0.0f32; model.input_len()];
//! // Unfused: whole layers are what threads split well (the fused `forward_with` works too,
//! // in the smaller `arena_bytes()`, but its per-row calls gain little from threads).
//! let mut arena = vec![0u8; model.observed_arena_bytes()];
//! let mut logits = vec![0.0f32; model.classes()];
//! model.forward_unfused_with(&threads, &input, &mut arena, &mut logits)?;
//! # Ok(()) }
//! ```

use alexnet_core::arch::{ConvSpec, Layer, Shape};
use alexnet_core::int8::{self, QKernel, ZeroPoints};
use alexnet_core::model::Kernels;
use alexnet_core::{layers, Error};
use rayon::prelude::*;

/// A thread pool running the core's kernels split by output channels.
pub struct Parallel {
    pool: rayon::ThreadPool,
    threads: usize,
}

impl Parallel {
    /// A pool of `threads` threads (0: one per core).
    pub fn new(threads: usize) -> anyhow::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        let threads = pool.current_num_threads();
        Ok(Parallel { pool, threads })
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Output-channel ranges `(group, first, end)` for `groups` groups of `per_group`
    /// channels: about two parts per thread, never crossing a group.
    fn parts(&self, groups: usize, per_group: usize) -> Vec<(usize, usize, usize)> {
        let per_group_parts = (2 * self.threads)
            .div_ceil(groups.max(1))
            .clamp(1, per_group.max(1));
        let size = per_group.div_ceil(per_group_parts).max(1);
        (0..groups)
            .flat_map(|g| {
                (0..per_group).step_by(size).map(move |o| {
                    (
                        g,
                        g * per_group + o,
                        g * per_group + (o + size).min(per_group),
                    )
                })
            })
            .collect()
    }
}

fn wrong(what: &'static str, expected: usize, found: usize) -> Error {
    Error::WrongLength {
        what,
        expected,
        found,
    }
}

/// Splits `output` into consecutive parts of `lens[i]` elements.
fn split_by<T>(mut output: &mut [T], lens: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    let mut out = Vec::new();
    for len in lens {
        let at = len.min(output.len());
        let (head, tail) = std::mem::take(&mut output).split_at_mut(at);
        out.push(head);
        output = tail;
    }
    out
}

/// What one convolution part sees: its group's input, a one-group spec for its channels.
struct ConvPart {
    input: std::ops::Range<usize>,
    in_shape: Shape,
    spec: ConvSpec,
    channels: std::ops::Range<usize>,
}

/// Checks a convolution's slices and cuts it into parts by output channels.
fn conv_parts(
    pool: &Parallel,
    input_len: usize,
    in_shape: Shape,
    spec: &ConvSpec,
    weight_len: usize,
    bias_len: usize,
    output_len: usize,
) -> Result<(Shape, usize, Vec<ConvPart>), Error> {
    let layer = Layer::Conv(*spec);
    let out_shape = layer
        .output_shape(in_shape)
        .map_err(|problem| Error::Arch(alexnet_core::ArchError { layer: 0, problem }))?;
    let groups = (spec.groups as usize).max(1);
    let (cin_g, cout_g) = (in_shape.c / groups, out_shape.c / groups);
    let taps = cin_g * (spec.kernel as usize).pow(2);
    for (what, expected, found) in [
        ("conv input", in_shape.len(), input_len),
        ("conv weight", out_shape.c * taps, weight_len),
        ("conv bias", out_shape.c, bias_len),
        ("conv output", out_shape.len(), output_len),
    ] {
        if expected != found {
            return Err(wrong(what, expected, found));
        }
    }
    let group_len = cin_g * in_shape.plane();
    let parts = pool
        .parts(groups, cout_g)
        .into_iter()
        .map(|(g, first, end)| ConvPart {
            input: g * group_len..(g + 1) * group_len,
            in_shape: Shape::new(cin_g, in_shape.h, in_shape.w),
            spec: ConvSpec {
                out_channels: (end - first) as u32,
                groups: 1,
                ..*spec
            },
            channels: first..end,
        })
        .collect();
    Ok((out_shape, taps, parts))
}

impl Kernels for Parallel {
    fn conv2d(
        &self,
        input: &[f32],
        in_shape: Shape,
        spec: &ConvSpec,
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
    ) -> Result<Shape, Error> {
        let (out_shape, taps, parts) = conv_parts(
            self,
            input.len(),
            in_shape,
            spec,
            weight.len(),
            bias.len(),
            output.len(),
        )?;
        let plane = out_shape.plane();
        let outputs = split_by(output, parts.iter().map(|p| p.channels.len() * plane));
        self.pool.install(|| {
            parts.into_par_iter().zip(outputs).try_for_each(|(p, out)| {
                let o = p.channels;
                layers::conv2d(
                    &input[p.input],
                    p.in_shape,
                    &p.spec,
                    &weight[o.start * taps..o.end * taps],
                    &bias[o],
                    out,
                )
                .map(|_| ())
            })
        })?;
        Ok(out_shape)
    }

    fn linear(
        &self,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
    ) -> Result<(), Error> {
        let (n, o) = (input.len(), output.len());
        if bias.len() != o || weight.len() != n * o {
            return layers::linear(input, weight, bias, output); // the core names the problem
        }
        let parts = self.parts(1, o);
        let outputs = split_by(output, parts.iter().map(|&(_, a, b)| b - a));
        self.pool.install(|| {
            parts
                .into_par_iter()
                .zip(outputs)
                .try_for_each(|((_, a, b), out)| {
                    layers::linear(input, &weight[a * n..b * n], &bias[a..b], out)
                })
        })
    }

    fn conv2d_int8(
        &self,
        input: &[i8],
        in_shape: Shape,
        spec: &ConvSpec,
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<Shape, Error> {
        let c = out_channels_of(kernel)?;
        let (out_shape, taps, parts) = conv_parts(
            self,
            input.len(),
            in_shape,
            spec,
            kernel.weight.len(),
            c,
            output.len(),
        )?;
        let plane = out_shape.plane();
        let outputs = split_by(output, parts.iter().map(|p| p.channels.len() * plane));
        self.pool.install(|| {
            parts.into_par_iter().zip(outputs).try_for_each(|(p, out)| {
                let part = sub_kernel(kernel, p.channels, taps);
                int8::conv2d(
                    &input[p.input],
                    p.in_shape,
                    &p.spec,
                    &part,
                    zero_points,
                    out,
                )
                .map(|_| ())
            })
        })?;
        Ok(out_shape)
    }

    fn linear_int8(
        &self,
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<(), Error> {
        let (n, o) = (input.len(), output.len());
        if out_channels_of(kernel)? != o || kernel.weight.len() != n * o {
            return int8::linear(input, kernel, zero_points, output);
        }
        let parts = self.parts(1, o);
        let outputs = split_by(output, parts.iter().map(|&(_, a, b)| b - a));
        self.pool.install(|| {
            parts
                .into_par_iter()
                .zip(outputs)
                .try_for_each(|((_, a, b), out)| {
                    int8::linear(input, &sub_kernel(kernel, a..b, n), zero_points, out)
                })
        })
    }
}

/// The channel count of an int8 kernel, once its per-channel tensors agree.
fn out_channels_of(kernel: &QKernel<'_>) -> Result<usize, Error> {
    let c = kernel.bias.len();
    for (what, len) in [
        ("multiplier", kernel.multiplier.len()),
        ("shift", kernel.shift.len()),
    ] {
        if len != c {
            return Err(wrong(what, c, len));
        }
    }
    Ok(c)
}

/// Channels `channels` of an int8 kernel with `taps` weights per channel (the prepacked DSP
/// weights are for the Cortex-M kernel and are left out).
fn sub_kernel<'a>(
    kernel: &QKernel<'a>,
    channels: std::ops::Range<usize>,
    taps: usize,
) -> QKernel<'a> {
    QKernel {
        weight: &kernel.weight[channels.start * taps..channels.end * taps],
        bias: &kernel.bias[channels.clone()],
        multiplier: &kernel.multiplier[channels.clone()],
        shift: &kernel.shift[channels],
        packed: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_every_channel_once_and_never_cross_a_group() {
        let pool = Parallel::new(2).unwrap();
        for (groups, per_group) in [(1, 96), (2, 128), (2, 1), (1, 3), (4, 5)] {
            let parts = pool.parts(groups, per_group);
            let mut next = 0;
            for &(g, a, b) in &parts {
                assert_eq!(a, next, "{groups}x{per_group}: {parts:?}");
                assert!(a < b && a >= g * per_group && b <= (g + 1) * per_group);
                next = b;
            }
            assert_eq!(next, groups * per_group);
        }
    }
}
