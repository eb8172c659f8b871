//! The core's kernels on several threads (feature `parallel`): [`Parallel`] wraps any
//! [`Kernels`] and splits each convolution and fully connected layer by output channels,
//! every part computed by the wrapped kernel on its slice of the weights over a one-group
//! [`ConvGeometry`]. An output's arithmetic does not depend on the split, so the logits are
//! bit-identical to the single-threaded forward pass. The cheap layers (ReLU, LRN, pooling)
//! run on the calling thread.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use alexnet_core::RunOptions;
//! let file = alexnet_host::BlobFile::read("model.blob")?;
//! let model = file.model()?;
//! let threads = alexnet_host::parallel::Parallel::new(2)?;
//! let input = vec![0.0f32; model.input_len()];
//! // Unfused: whole layers are what threads split well (fused works too, in the smaller
//! // `arena_bytes()`, but its per-row calls gain little from threads).
//! let mut arena = vec![0u8; model.observed_arena_bytes()];
//! let mut logits = vec![0.0f32; model.classes()];
//! let options = RunOptions::new().kernels(&threads).unfused();
//! model.run(&input, &mut arena, &mut logits, options)?;
//! # Ok(()) }
//! ```

use alexnet_core::arch::{ConvSpec, LrnSpec, Shape};
use alexnet_core::geometry::{AdaptivePoolGeometry, ConvGeometry, PoolGeometry};
use alexnet_core::int8::{QKernel, ZeroPoints};
use alexnet_core::kernels::{native, KernelPath, Kernels, LrnTable};
use alexnet_core::Error;
use rayon::prelude::*;

/// A thread pool running kernels `K` split by output channels.
pub struct Parallel<K = &'static dyn Kernels> {
    pool: rayon::ThreadPool,
    threads: usize,
    inner: K,
}

impl Parallel {
    /// The [`native`] kernels on a pool of `threads` threads (0: one per core).
    pub fn new(threads: usize) -> anyhow::Result<Self> {
        Parallel::with_kernels(threads, native())
    }
}

impl<K: Kernels> Parallel<K> {
    /// `inner` on a pool of `threads` threads (0: one per core).
    pub fn with_kernels(threads: usize, inner: K) -> anyhow::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        let threads = pool.current_num_threads();
        Ok(Parallel {
            pool,
            threads,
            inner,
        })
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

    /// Cuts a checked convolution into parts by output channels.
    fn conv_parts(&self, g: &ConvGeometry) -> Result<Vec<ConvPart>, Error> {
        let in_shape = g.input();
        let cin_g = g.in_per_group().get();
        let group_len = cin_g * in_shape.plane();
        self.parts(g.groups().get(), g.out_per_group().get())
            .into_iter()
            .map(|(group, first, end)| {
                let spec = ConvSpec {
                    out_channels: (end - first) as u32,
                    groups: 1,
                    ..*g.spec()
                };
                Ok(ConvPart {
                    input: group * group_len..(group + 1) * group_len,
                    geometry: ConvGeometry::new(&spec, Shape::new(cin_g, in_shape.h, in_shape.w))?,
                    channels: first..end,
                })
            })
            .collect()
    }

    /// Runs `part(index, output slice)` for every part on the pool; the parts' paths agree
    /// (one kernel ran them all), so the first one's is the layer's.
    fn run_parts<T: Send>(
        &self,
        outputs: Vec<&mut [T]>,
        part: impl Fn(usize, &mut [T]) -> Result<KernelPath, Error> + Sync,
    ) -> Result<KernelPath, Error> {
        let paths: Vec<KernelPath> = self.pool.install(|| {
            outputs
                .into_par_iter()
                .enumerate()
                .map(|(i, out)| part(i, out))
                .collect::<Result<_, Error>>()
        })?;
        Ok(paths.first().copied().unwrap_or(KernelPath::Reference))
    }
}

/// What one convolution part sees: its group's input, a one-group geometry for its channels.
struct ConvPart {
    input: std::ops::Range<usize>,
    geometry: ConvGeometry,
    channels: std::ops::Range<usize>,
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

impl<K: Kernels> Kernels for Parallel<K> {
    fn name(&self) -> &'static str {
        "parallel"
    }

    fn conv2d(
        &self,
        g: &ConvGeometry,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        g.check_f32(input, weight, bias, output)?;
        let parts = self.conv_parts(g)?;
        let (taps, plane) = (g.taps().get(), g.out_plane().get());
        let outputs = split_by(output, parts.iter().map(|p| p.channels.len() * plane));
        self.run_parts(outputs, |i, out| {
            let p = &parts[i];
            let o = p.channels.clone();
            self.inner.conv2d(
                &p.geometry,
                &input[p.input.clone()],
                &weight[o.start * taps..o.end * taps],
                &bias[o],
                out,
            )
        })
    }

    fn linear(
        &self,
        input: &[f32],
        weight: &[f32],
        bias: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        let (n, o) = (input.len(), output.len());
        if bias.len() != o || weight.len() != n * o {
            return self.inner.linear(input, weight, bias, output); // it names the problem
        }
        let parts = self.parts(1, o);
        let outputs = split_by(output, parts.iter().map(|&(_, a, b)| b - a));
        self.run_parts(outputs, |i, out| {
            let (_, a, b) = parts[i];
            self.inner
                .linear(input, &weight[a * n..b * n], &bias[a..b], out)
        })
    }

    fn relu(&self, values: &mut [f32]) -> KernelPath {
        self.inner.relu(values)
    }

    fn lrn(&self, values: &mut [f32], shape: Shape, spec: &LrnSpec) -> Result<KernelPath, Error> {
        self.inner.lrn(values, shape, spec)
    }

    fn max_pool(
        &self,
        g: &PoolGeometry,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        self.inner.max_pool(g, input, output)
    }

    fn adaptive_avg_pool(
        &self,
        g: &AdaptivePoolGeometry,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        self.inner.adaptive_avg_pool(g, input, output)
    }

    fn conv2d_int8(
        &self,
        g: &ConvGeometry,
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        g.check_int8(input, kernel, output)?;
        let parts = self.conv_parts(g)?;
        let (taps, plane) = (g.taps().get(), g.out_plane().get());
        let outputs = split_by(output, parts.iter().map(|p| p.channels.len() * plane));
        self.run_parts(outputs, |i, out| {
            let p = &parts[i];
            let part = sub_kernel(kernel, p.channels.clone(), taps);
            self.inner.conv2d_int8(
                &p.geometry,
                &input[p.input.clone()],
                &part,
                zero_points,
                out,
            )
        })
    }

    fn linear_int8(
        &self,
        input: &[i8],
        kernel: &QKernel<'_>,
        zero_points: ZeroPoints,
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        let (n, o) = (input.len(), output.len());
        let per_channel = [
            kernel.bias.len(),
            kernel.multiplier.len(),
            kernel.shift.len(),
        ];
        if per_channel.iter().any(|&c| c != o) || kernel.weight.len() != n * o {
            return self.inner.linear_int8(input, kernel, zero_points, output);
        }
        let parts = self.parts(1, o);
        let outputs = split_by(output, parts.iter().map(|&(_, a, b)| b - a));
        self.run_parts(outputs, |i, out| {
            let (_, a, b) = parts[i];
            self.inner
                .linear_int8(input, &sub_kernel(kernel, a..b, n), zero_points, out)
        })
    }

    fn relu_int8(&self, values: &mut [i8], zero_point: i32) -> KernelPath {
        self.inner.relu_int8(values, zero_point)
    }

    fn lrn_int8(
        &self,
        values: &mut [i8],
        shape: Shape,
        spec: &LrnSpec,
        table: LrnTable<'_>,
        zero_points: ZeroPoints,
    ) -> Result<KernelPath, Error> {
        self.inner.lrn_int8(values, shape, spec, table, zero_points)
    }

    fn max_pool_int8(
        &self,
        g: &PoolGeometry,
        input: &[i8],
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        self.inner.max_pool_int8(g, input, output)
    }

    fn adaptive_avg_pool_int8(
        &self,
        g: &AdaptivePoolGeometry,
        input: &[i8],
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        self.inner.adaptive_avg_pool_int8(g, input, output)
    }
}

/// Channels `channels` of an int8 kernel with `taps` weights per channel (the prepacked DSP
/// weights are laid out for whole layers, so parts go without them).
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
