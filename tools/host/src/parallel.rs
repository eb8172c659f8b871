//! The core's kernels on several threads (feature `parallel`): [`Parallel`] wraps any
//! [`Kernels`] and splits each convolution by output rows and each fully connected layer by
//! output channels. A convolution part is the wrapped kernel run on a band of the input (the
//! rows its output rows read, the padding written out as the fused chains do) with padding
//! 0, so every thread builds only its own pixels' patches; a convolution with fewer than
//! 8 output rows per thread is split by output channels instead, over one-group
//! [`ConvGeometry`]s. An output's arithmetic does not depend on the split, so the logits are
//! bit-identical to the single-threaded forward pass. The cheap layers are split too: ReLU
//! by chunks, max pooling by channels, LRN by channels (each part on a copy of its channels
//! and the neighbours its windows read); ReLU and LRN only from a million values (below,
//! handing them out costs more than it saves).
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use alexnet_core::RunOptions;
//! let file = alexnet_host::BlobFile::read("model.blob")?;
//! let model = file.model()?;
//! let threads = alexnet_host::parallel::Parallel::new(2)?;
//! let input = vec![0.0f32; model.input_len()];
//! // Unfused: whole layers are what threads split well (fused works too, in the smaller
//! // `arena_bytes()`, but its calls of a row or two gain little from threads).
//! let mut arena = vec![0u8; model.observed_arena_bytes()];
//! let mut logits = vec![0.0f32; model.classes()];
//! let options = RunOptions::new().kernels(&threads).unfused();
//! model.run(&input, &mut arena, &mut logits, options)?;
//! # Ok(()) }
//! ```

use alexnet_core::arch::{ConvSpec, LrnSpec, PoolSpec, Shape};
use alexnet_core::geometry::{AdaptivePoolGeometry, ConvGeometry, PoolGeometry};
use alexnet_core::int8::{QKernel, ZeroPoints};
use alexnet_core::kernels::{native, KernelPath, Kernels, LrnTable};
use alexnet_core::Error;
use rayon::prelude::*;

/// A thread pool running kernels `K` on parts of each layer (output rows or channels,
/// outputs, chunks: see the module's documentation).
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
    /// channels: one part per thread (each part of a convolution builds every patch, so
    /// more parts cost more), never crossing a group.
    fn parts(&self, groups: usize, per_group: usize) -> Vec<(usize, usize, usize)> {
        let per_group_parts = self
            .threads
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

    /// Output-row ranges for a split by rows, one per thread with at least
    /// [`MIN_ROWS_PER_THREAD`] rows each (fewer parts than threads on many cores), or `None`
    /// when not even two such parts fit.
    fn row_parts(&self, g: &ConvGeometry) -> Option<Vec<std::ops::Range<usize>>> {
        let out_h = g.output().h;
        let parts = self.threads.min(out_h / MIN_ROWS_PER_THREAD);
        (parts >= 2).then(|| {
            (0..parts)
                .map(|i| i * out_h / parts..(i + 1) * out_h / parts)
                .collect()
        })
    }

    /// A checked convolution split by output rows: each part copies the input rows its
    /// output rows read into a band (`pad` in the padding, top, bottom and sides), runs
    /// `conv(band geometry, band, band output)` with padding 0 (the same sums: padding is
    /// materialized in the contract), and the parts' rows are copied into `output`.
    fn conv_by_rows<T: Copy + Send + Sync>(
        &self,
        g: &ConvGeometry,
        input: &[T],
        pad: T,
        output: &mut [T],
        rows: &[std::ops::Range<usize>],
        conv: impl Fn(&ConvGeometry, &[T], &mut [T]) -> Result<KernelPath, Error> + Sync,
    ) -> Result<KernelPath, Error> {
        let spec = ConvSpec {
            padding: 0,
            ..*g.spec()
        };
        let (in_shape, out_shape) = (g.input(), g.output());
        let (k, s, p) = (g.spec().kernel as usize, g.stride().get(), g.padding());
        let band_w = in_shape.w + 2 * p;
        let results: Vec<(Vec<T>, KernelPath)> = self.pool.install(|| {
            rows.par_iter()
                .map(|r| {
                    let band_h = (r.len() - 1) * s + k;
                    let mut band = vec![pad; in_shape.c * band_h * band_w];
                    for (i, band_row) in band.chunks_exact_mut(band_w).enumerate() {
                        let (c, y) = (i / band_h, i % band_h);
                        let iy = (r.start * s + y).wrapping_sub(p);
                        if iy < in_shape.h {
                            let from = (c * in_shape.h + iy) * in_shape.w;
                            band_row[p..p + in_shape.w]
                                .copy_from_slice(&input[from..from + in_shape.w]);
                        }
                    }
                    let band_g = ConvGeometry::new(&spec, Shape::new(in_shape.c, band_h, band_w))?;
                    let mut out = vec![pad; band_g.output().len()];
                    let path = conv(&band_g, &band, &mut out)?;
                    Ok((out, path))
                })
                .collect::<Result<_, Error>>()
        })?;
        let (plane, w) = (out_shape.plane(), out_shape.w);
        for (r, (out, _)) in rows.iter().zip(&results) {
            for (c, part) in out.chunks_exact(r.len() * w).enumerate() {
                let at = c * plane + r.start * w;
                output[at..at + part.len()].copy_from_slice(part);
            }
        }
        Ok(results.first().map_or(KernelPath::Reference, |r| r.1))
    }

    /// Channel ranges, one per thread, or `None` for fewer than two channels per thread
    /// (or a single thread): the layer then runs whole.
    fn channel_ranges(&self, channels: usize) -> Option<Vec<std::ops::Range<usize>>> {
        let parts = self.threads.min(channels / 2);
        (parts >= 2).then(|| {
            (0..parts)
                .map(|i| i * channels / parts..(i + 1) * channels / parts)
                .collect()
        })
    }

    /// An elementwise in-place layer on one chunk per thread; on this thread alone below
    /// [`MIN_ELEMENTWISE_SPLIT`] values.
    fn each_chunk<T: Send>(
        &self,
        values: &mut [T],
        layer: impl Fn(&mut [T]) -> KernelPath + Sync,
    ) -> KernelPath {
        if values.len() < MIN_ELEMENTWISE_SPLIT {
            return layer(values);
        }
        let chunk = values.len().div_ceil(self.threads.max(1)).max(1);
        let paths: Vec<KernelPath> = self
            .pool
            .install(|| values.par_chunks_mut(chunk).map(&layer).collect());
        paths.first().copied().unwrap_or_else(|| layer(values))
    }

    /// A max pool split by channels: each part pools its planes with a geometry of its own
    /// channel count (the planes are independent).
    fn pool_by_channels<T: Send + Sync>(
        &self,
        g: &PoolGeometry,
        input: &[T],
        output: &mut [T],
        pool: impl Fn(&PoolGeometry, &[T], &mut [T]) -> Result<KernelPath, Error> + Sync,
    ) -> Result<KernelPath, Error> {
        g.check(input.len(), output.len())?;
        let (in_shape, out_shape) = (g.input(), g.output());
        let Some(ranges) = self.channel_ranges(in_shape.c) else {
            return pool(g, input, output);
        };
        let spec = PoolSpec {
            window: g.window().get() as u32,
            stride: g.stride().get() as u32,
        };
        let outputs = split_by(output, ranges.iter().map(|r| r.len() * out_shape.plane()));
        self.run_parts(outputs, |i, out| {
            let r = ranges[i].clone();
            let part = PoolGeometry::new(&spec, Shape::new(r.len(), in_shape.h, in_shape.w))?;
            let plane = in_shape.plane();
            pool(&part, &input[r.start * plane..r.end * plane], out)
        })
    }

    /// An LRN split by channels: each part normalizes a copy of its channels and the
    /// `size / 2` on either side that their windows read (the copy's edge channels get
    /// clipped windows, and are not kept), then its channels are written back. Every kept
    /// output sees the window, in the order, of the whole layer.
    fn lrn_by_channels<T: Copy + Send + Sync>(
        &self,
        values: &mut [T],
        shape: Shape,
        spec: &LrnSpec,
        lrn: impl Fn(&mut [T], Shape) -> Result<KernelPath, Error> + Sync,
    ) -> Result<KernelPath, Error> {
        let Some(ranges) = self
            .channel_ranges(shape.c)
            .filter(|_| values.len() == shape.len() && values.len() >= MIN_ELEMENTWISE_SPLIT)
        else {
            return lrn(values, shape); // it names any problem
        };
        let (half, plane) = (spec.size as usize / 2, shape.plane());
        let source = &*values;
        // Each part: its channels' range, its first channel's offset in its copy, the copy.
        let parts: Vec<(std::ops::Range<usize>, usize, Vec<T>, KernelPath)> =
            self.pool.install(|| {
                ranges
                    .par_iter()
                    .map(|r| {
                        let (lo, hi) = (r.start.saturating_sub(half), (r.end + half).min(shape.c));
                        let mut part = source[lo * plane..hi * plane].to_vec();
                        let path = lrn(&mut part, Shape::new(hi - lo, shape.h, shape.w))?;
                        Ok((r.clone(), r.start - lo, part, path))
                    })
                    .collect::<Result<_, Error>>()
            })?;
        for (r, skip, part, _) in &parts {
            let kept = &part[skip * plane..(skip + r.len()) * plane];
            values[r.start * plane..r.end * plane].copy_from_slice(kept);
        }
        Ok(parts.first().map_or(KernelPath::Reference, |p| p.3))
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

/// Values below which an elementwise layer (ReLU) or an LRN runs on the calling thread:
/// handing halves to the pool's threads costs more than it saves. The paper net's largest
/// ReLU, 290,400 f32 after conv1, takes 0.05 ms on x86-64 with AVX2, 0.10 ms split on two
/// threads; its LRN layers 0.55 and 0.28 ms (f32) or 0.48 and 0.30 ms (int8) whole, 0.59
/// and 0.52 ms (f32) split, each part on a copy of its channels and their neighbours
/// (measured by `benches/roofline.rs`).
const MIN_ELEMENTWISE_SPLIT: usize = 1 << 20;

/// Output rows per thread below which a convolution is split by output channels: the paper
/// net's 13 x 13 convolutions (conv3 to conv5) gained 1.2-1.4x on two threads split by rows
/// (their patches are cheap to build, their weights are what each thread would stream
/// whole) and 1.3-1.7x split by channels, one part per thread; conv1 and conv2 (55 and 27
/// rows) 1.7-2.0x by rows.
const MIN_ROWS_PER_THREAD: usize = 8;

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

    /// Whole layers: a fused chain's calls of a row or two leave threads little to split.
    fn prefers_whole_layers(&self) -> bool {
        true
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
        if let Some(rows) = self.row_parts(g) {
            return self.conv_by_rows(g, input, 0.0, output, &rows, |band_g, band, out| {
                self.inner.conv2d(band_g, band, weight, bias, out)
            });
        }
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
        self.each_chunk(values, |chunk| self.inner.relu(chunk))
    }

    fn lrn(&self, values: &mut [f32], shape: Shape, spec: &LrnSpec) -> Result<KernelPath, Error> {
        self.lrn_by_channels(values, shape, spec, |part, part_shape| {
            self.inner.lrn(part, part_shape, spec)
        })
    }

    fn max_pool(
        &self,
        g: &PoolGeometry,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<KernelPath, Error> {
        self.pool_by_channels(g, input, output, |pg, i, o| self.inner.max_pool(pg, i, o))
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
        if let Some(rows) = self.row_parts(g) {
            // The padding is the input zero point (code - zero point = 0), as in the
            // definition; a zero point outside the codes (no blob has one) splits by channels.
            if let Ok(pad) = i8::try_from(zero_points.input) {
                return self.conv_by_rows(g, input, pad, output, &rows, |band_g, band, out| {
                    self.inner
                        .conv2d_int8(band_g, band, kernel, zero_points, out)
                });
            }
        }
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
        self.each_chunk(values, |chunk| self.inner.relu_int8(chunk, zero_point))
    }

    fn lrn_int8(
        &self,
        values: &mut [i8],
        shape: Shape,
        spec: &LrnSpec,
        table: LrnTable<'_>,
        zero_points: ZeroPoints,
    ) -> Result<KernelPath, Error> {
        self.lrn_by_channels(values, shape, spec, |part, part_shape| {
            self.inner
                .lrn_int8(part, part_shape, spec, table, zero_points)
        })
    }

    fn max_pool_int8(
        &self,
        g: &PoolGeometry,
        input: &[i8],
        output: &mut [i8],
    ) -> Result<KernelPath, Error> {
        self.pool_by_channels(g, input, output, |pg, i, o| {
            self.inner.max_pool_int8(pg, i, o)
        })
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
/// weights are laid out for whole layers, so parts go without them; a split by rows keeps
/// the whole kernel, prepacked weights included).
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

    /// ReLU below the split size on this thread, above it in chunks: the definitions' values
    /// either way (the kernel suite's cases are all below it).
    #[test]
    fn relu_split_or_not_gives_the_definitions_values() {
        use alexnet_core::kernels::reference;
        // The native kernels (on x86-64 their own ReLUs) against the definitions.
        let pool = Parallel::new(3).unwrap();
        for len in [5, MIN_ELEMENTWISE_SPLIT - 1, MIN_ELEMENTWISE_SPLIT + 7] {
            let values: Vec<f32> = (0..len)
                .map(|i| match i % 7 {
                    0 => -0.0,
                    1 => f32::NAN,
                    _ => ((i * 7919) % 255) as f32 - 127.5,
                })
                .collect();
            let (mut one, mut split) = (values.clone(), values.clone());
            reference::f32::relu_in_place(&mut one);
            pool.relu(&mut split);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one), bits(&split), "{len} values");
            let codes: Vec<i8> = (0..len).map(|i| ((i * 7919) % 256) as u8 as i8).collect();
            let (mut one, mut split) = (codes.clone(), codes);
            reference::int8::relu_in_place(&mut one, -3);
            pool.relu_int8(&mut split, -3);
            assert_eq!(one, split, "{len} codes");
        }
    }

    /// LRN below the split size on this thread, above it by channels (each part on a copy
    /// with its neighbours): the definitions' values either way, f32 and int8.
    #[test]
    fn lrn_split_or_not_gives_the_definitions_values() {
        use alexnet_core::arch::LrnConvention;
        use alexnet_core::int8::{lrn_max_sum, lrn_table_len};
        use alexnet_core::kernels::Reference;
        // The native kernels (on x86-64 the AVX2 or AVX-512 integer LRN) against the
        // definitions.
        let pool = Parallel::new(3).unwrap();
        let spec = LrnSpec {
            size: 5,
            alpha: 1e-4,
            beta: 0.75,
            k: 2.0,
            convention: LrnConvention::Paper,
        };
        let table: Vec<i32> = (0..lrn_table_len(lrn_max_sum(5)))
            .map(|i| 1_500_000_000 - 2_000_000 * i as i32)
            .collect();
        let zero_points = ZeroPoints {
            input: -128,
            output: -5,
        };
        // 7 x 12 x 12 stays whole; 19 x 236 x 236 (1.06 million) is split.
        for shape in [Shape::new(7, 12, 12), Shape::new(19, 236, 236)] {
            assert_eq!(
                shape.len() >= MIN_ELEMENTWISE_SPLIT,
                shape.c == 19,
                "{shape:?}"
            );
            let values: Vec<f32> = (0..shape.len())
                .map(|i| ((i * 7919) % 255) as f32 / 16.0 - 8.0)
                .collect();
            let (mut one, mut split) = (values.clone(), values);
            Reference.lrn(&mut one, shape, &spec).unwrap();
            pool.lrn(&mut split, shape, &spec).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one), bits(&split), "{shape:?}");
            let codes: Vec<i8> = (0..shape.len())
                .map(|i| ((i * 7919) % 256) as u8 as i8)
                .collect();
            let (mut one, mut split) = (codes.clone(), codes);
            let lrn_table = LrnTable::new(&table, 31);
            Reference
                .lrn_int8(&mut one, shape, &spec, lrn_table, zero_points)
                .unwrap();
            pool.lrn_int8(&mut split, shape, &spec, lrn_table, zero_points)
                .unwrap();
            assert_eq!(one, split, "{shape:?}");
        }
    }

    /// Convolutions with padding, strides and groups, split by rows on three threads: the
    /// bits (f32) and codes (int8) of one unsplit call.
    #[test]
    fn a_split_by_rows_gives_the_results_of_one_call() {
        use alexnet_core::kernels::Reference;
        let pool = Parallel::with_kernels(3, Reference).unwrap();
        let value = |i: usize| ((i * 7919 + 13) % 255) as i32 - 127;
        for (cin, h, w, k, s, p, groups, cout) in [
            (3, 50, 41, 5, 2, 2, 1, 4),
            (4, 48, 30, 3, 1, 1, 2, 6),
            (2, 107, 99, 11, 4, 0, 1, 3),
        ] {
            let spec = ConvSpec {
                out_channels: cout,
                kernel: k,
                stride: s,
                padding: p,
                groups,
            };
            let g = ConvGeometry::new(&spec, Shape::new(cin, h, w)).unwrap();
            let rows = pool.row_parts(&g).expect("split by rows");
            assert_eq!(rows.len(), 3);
            let taps = g.taps().get();
            let input: Vec<f32> = (0..cin * h * w).map(|i| value(i) as f32 / 7.0).collect();
            let weight: Vec<f32> = (0..cout as usize * taps)
                .map(|i| value(i + 5) as f32 / 100.0)
                .collect();
            let bias: Vec<f32> = (0..cout as usize).map(|i| i as f32 - 1.5).collect();
            let (mut one, mut split) = (vec![0.0; g.output().len()], vec![1.0; g.output().len()]);
            Reference
                .conv2d(&g, &input, &weight, &bias, &mut one)
                .unwrap();
            pool.conv2d(&g, &input, &weight, &bias, &mut split).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one), bits(&split));

            let codes: Vec<i8> = (0..cin * h * w).map(|i| value(i) as i8).collect();
            let qweight: Vec<i8> = (0..cout as usize * taps)
                .map(|i| value(i + 3) as i8)
                .collect();
            let qbias: Vec<i32> = (0..cout as i32).map(|i| 100 * i - 150).collect();
            let multiplier = vec![1_500_000_000; cout as usize];
            let shift = vec![12; cout as usize];
            let kernel = QKernel {
                weight: &qweight,
                bias: &qbias,
                multiplier: &multiplier,
                shift: &shift,
                packed: None,
            };
            let zps = ZeroPoints {
                input: -3,
                output: 5,
            };
            let (mut one, mut split) = (vec![0i8; g.output().len()], vec![1i8; g.output().len()]);
            Reference
                .conv2d_int8(&g, &codes, &kernel, zps, &mut one)
                .unwrap();
            pool.conv2d_int8(&g, &codes, &kernel, zps, &mut split)
                .unwrap();
            assert_eq!(one, split);
            assert!(one.iter().any(|&c| c != one[0]), "a degenerate case");
        }
    }
}
