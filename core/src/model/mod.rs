//! A parsed model and its forward pass.
//!
//! ```
//! # fn run(blob: &[u8], image: &[f32]) -> Result<usize, alexnet_core::Error> {
//! use alexnet_core::Model;
//! let model = Model::parse(blob)?;                   // validates everything, once
//! let mut arena = [0u8; alexnet_core::builtin::MICRO.arena_bytes_f32()];
//! let mut logits = [0.0f32; 10];
//! model.forward(image, &mut arena, &mut logits)?;
//! let mut best = [0usize; 1];
//! alexnet_core::postprocess::top_k(&logits, &mut best);
//! # Ok(best[0]) }
//! ```

mod blob;
pub mod format;
mod labels;
mod options;
mod preprocess;
mod quant;

pub use labels::Labels;
pub use options::{Element, Observer, RunOptions};
pub use preprocess::{ChannelOrder, Mean, Preprocess};
pub use quant::{QLayer, QParams, Quantization};

use crate::arch::{Arch, ConvSpec, Layer, Plan, Shape, Side, ARENA_ALIGN, MAX_LAYERS};
use crate::error::ArchError;
use crate::error::{Error, Precision, TensorRole};
use crate::geometry::{expect_len, AdaptivePoolGeometry, ConvGeometry, PoolGeometry};
use crate::int8::{self, ZeroPoints};
use crate::kernels::LrnTable;
use options::Schedule;

/// The weight and bias of a convolution or linear layer, borrowed from the blob.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params<'a> {
    /// Weights, PyTorch layout.
    pub weight: &'a [f32],
    /// Biases.
    pub bias: &'a [f32],
}

/// A validated model: architecture, weights, preprocessing and labels, all borrowed from the
/// blob. Creating one checks everything; using one cannot fail on the model's account.
#[derive(Clone, Debug)]
pub struct Model<'a> {
    name: &'a str,
    input: Shape,
    layers: [Layer; MAX_LAYERS],
    layer_count: usize,
    params: [Option<Params<'a>>; MAX_LAYERS],
    precision: Precision,
    quant: Quantization<'a>,
    plan: Plan,
    preprocess: Preprocess<'a>,
    labels: Option<Labels<'a>>,
}

impl<'a> Model<'a> {
    /// Parses and validates a blob (see `docs/model-format.md`). The blob must start at a
    /// 4-byte-aligned address; [`include_model!`](crate::include_model) and the host loader
    /// guarantee that.
    pub fn parse(blob: &'a [u8]) -> Result<Self, Error> {
        blob::parse(blob)
    }

    fn empty(name: &'a str, input: Shape) -> Self {
        Model {
            name,
            input,
            layers: [Layer::Relu; MAX_LAYERS],
            layer_count: 0,
            params: [None; MAX_LAYERS],
            precision: Precision::F32,
            quant: Quantization::EMPTY,
            plan: Plan {
                output: input,
                params: 0,
                macs: 0,
                arena_elems: 0,
                observed_arena_elems: 0,
                largest_activation: 0,
            },
            preprocess: Preprocess {
                resize: 0,
                channel_order: ChannelOrder::Gray,
                pixel_scale: 1.0,
                mean: Mean::None,
                std: None,
            },
            labels: None,
        }
    }

    /// The layers.
    pub fn layers(&self) -> &[Layer] {
        self.layers.get(..self.layer_count).unwrap_or(&[])
    }

    /// The architecture descriptor carried by the blob.
    pub fn arch(&self) -> Arch<'_> {
        Arch {
            name: self.name,
            input: self.input,
            layers: self.layers(),
        }
    }

    /// Shapes, parameter count, MACs and arena size.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Bytes of arena the model's forward pass needs ([`Model::forward`] for f32 models,
    /// [`Model::forward_int8`] for int8 ones, [`Model::run`] fused), including alignment
    /// slack.
    pub fn arena_bytes(&self) -> usize {
        self.arena_bytes_for(self.plan.arena_elems)
    }

    /// Bytes of arena [`Model::run`] needs unfused or observed ([`RunOptions::unfused`],
    /// [`RunOptions::observe`]): every layer's output is held whole, the convolutions of
    /// fused chains too.
    pub fn observed_arena_bytes(&self) -> usize {
        self.arena_bytes_for(self.plan.observed_arena_elems)
    }

    fn arena_bytes_for(&self, elems: usize) -> usize {
        match self.precision {
            Precision::F32 => elems * 4 + (ARENA_ALIGN - 1),
            Precision::Int8 => elems + (ARENA_ALIGN - 1),
        }
    }

    /// f32 or int8.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The int8 parameters (meaningful for int8 models only).
    pub fn quantization(&self) -> &Quantization<'a> {
        &self.quant
    }

    /// Input elements (`C * H * W`).
    pub fn input_len(&self) -> usize {
        self.input.len()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.plan.output.len()
    }

    /// The weights of layer `i`, if it has any.
    pub fn params(&self, i: usize) -> Option<Params<'a>> {
        self.params.get(i).copied().flatten()
    }

    /// How images become input.
    pub fn preprocess(&self) -> &Preprocess<'a> {
        &self.preprocess
    }

    /// Class labels, if the blob has them.
    pub fn labels(&self) -> Option<&Labels<'a>> {
        self.labels.as_ref()
    }

    /// Runs the network on `input` (`[C, H, W]`, preprocessed), writing the logits (the
    /// values before any softmax). `arena` needs [`Model::arena_bytes`] bytes, any alignment.
    /// Each conv -> ReLU/LRN -> max pool chain runs fused, a few rows at a time, on the
    /// [`crate::kernels::native`] kernels (given [`Model::observed_arena_bytes`], every layer
    /// whole where those kernels are faster so, as [`Model::run`] says). The firmware's
    /// one-liner; [`Model::run`] takes options.
    pub fn forward(
        &self,
        input: &[f32],
        arena: &mut [u8],
        logits: &mut [f32],
    ) -> Result<(), Error> {
        self.run(input, arena, logits, RunOptions::new())
    }

    /// Runs an int8 model on quantized input codes (see [`Model::quantize_input`]), writing
    /// the int8 logits. Integer arithmetic only (`docs/int8-spec.md`). `arena` needs
    /// [`Model::arena_bytes`] bytes; fused chains as in [`Model::forward`].
    pub fn forward_int8(
        &self,
        input: &[i8],
        arena: &mut [u8],
        logits: &mut [i8],
    ) -> Result<(), Error> {
        self.run(input, arena, logits, RunOptions::new())
    }

    /// Runs the network, f32 (`T = f32`) or int8 (`T = i8`), as `options` say: which
    /// [`Kernels`](crate::kernels::Kernels), fused or unfused, and an observer that sees every layer's output. Every
    /// choice gives the same logits, bit for bit. `arena` needs [`Model::arena_bytes`]
    /// bytes fused, [`Model::observed_arena_bytes`] unfused or observed. Given the latter, a
    /// fused pass runs every layer whole where the kernels are faster so
    /// ([`Kernels::prefers_whole_layers`](crate::kernels::Kernels::prefers_whole_layers):
    /// the AVX-512 ones).
    ///
    /// ```
    /// # fn run(model: &alexnet_core::Model, x: &[f32], arena: &mut [u8]) -> Result<(), alexnet_core::Error> {
    /// use alexnet_core::{kernels::Reference, RunOptions};
    /// let mut logits = [0.0f32; 10];
    /// let mut seen = 0;
    /// let mut observe = |_layer: usize, _shape: alexnet_core::Shape, _out: &[f32]| seen += 1;
    /// let options = RunOptions::new().kernels(&Reference).observe(&mut observe);
    /// model.run(x, arena, &mut logits, options)?;
    /// # Ok(()) }
    /// ```
    pub fn run<T: Element>(
        &self,
        input: &[T],
        arena: &mut [u8],
        logits: &mut [T],
        options: RunOptions<'_, T>,
    ) -> Result<(), Error> {
        T::run(self, input, arena, logits, options)
    }

    pub(crate) fn run_f32(
        &self,
        input: &[f32],
        arena: &mut [u8],
        logits: &mut [f32],
        options: RunOptions<'_, f32>,
    ) -> Result<(), Error> {
        let (kernels, schedule) = options.into_parts();
        let schedule = self.schedule_for(kernels, schedule, arena.len());
        let (arena, too_small) = self.prepare::<f32>(
            Precision::F32,
            input.len(),
            logits.len(),
            arena,
            schedule.is_fused(),
        )?;
        self.walk(
            input,
            arena,
            logits,
            too_small,
            schedule,
            |_| 0.0,
            |i, layer, shape, buffers| {
                let params = || {
                    self.params(i).ok_or(Error::MissingTensor {
                        layer: i,
                        role: TensorRole::Weight,
                    })
                };
                match (buffers, layer) {
                    (Buffers::InPlace(buf), Layer::Relu) => {
                        kernels.relu(buf);
                    }
                    (Buffers::InPlace(buf), Layer::Lrn(spec)) => {
                        kernels.lrn(buf, shape, spec).map_err(at_layer(i))?;
                    }
                    (Buffers::Apart(src, dst), Layer::Conv(spec)) => {
                        let p = params()?;
                        let g = ConvGeometry::new(spec, shape).map_err(at_layer(i))?;
                        kernels.conv2d(&g, src, p.weight, p.bias, dst)?;
                    }
                    (Buffers::Apart(src, dst), Layer::Linear { .. }) => {
                        let p = params()?;
                        kernels.linear(src, p.weight, p.bias, dst)?;
                    }
                    (Buffers::Apart(src, dst), Layer::MaxPool(spec)) => {
                        let g = PoolGeometry::new(spec, shape).map_err(at_layer(i))?;
                        kernels.max_pool(&g, src, dst)?;
                    }
                    (Buffers::Apart(src, dst), Layer::AdaptiveAvgPool { out_h, out_w }) => {
                        let g = AdaptivePoolGeometry::new(shape, *out_h, *out_w)
                            .map_err(at_layer(i))?;
                        kernels.adaptive_avg_pool(&g, src, dst)?;
                    }
                    _ => {} // Dropout, Flatten, Softmax: nothing to compute at inference.
                }
                Ok(())
            },
        )
    }

    /// A fused pass runs every layer whole instead where the kernels run whole layers faster
    /// ([`Kernels::prefers_whole_layers`](crate::kernels::Kernels::prefers_whole_layers))
    /// and the arena has room for them ([`Model::observed_arena_bytes`]): the same bits.
    fn schedule_for<'o, T>(
        &self,
        kernels: &dyn crate::kernels::Kernels,
        schedule: Schedule<'o, T>,
        arena: usize,
    ) -> Schedule<'o, T> {
        let whole = kernels.prefers_whole_layers() && arena >= self.observed_arena_bytes();
        if schedule.is_fused() && whole {
            Schedule::Whole
        } else {
            schedule
        }
    }

    /// Checks a forward call's precision and buffer lengths; returns the aligned arena and
    /// the error to give if it proves too small.
    fn prepare<'b, T: bytemuck::Pod>(
        &self,
        precision: Precision,
        input_len: usize,
        logits_len: usize,
        arena: &'b mut [u8],
        fused: bool,
    ) -> Result<(&'b mut [T], Error), Error> {
        if self.precision != precision {
            return Err(Error::WrongPrecision {
                model: self.precision,
                called: precision,
            });
        }
        expect_len("input", self.input.len(), input_len)?;
        expect_len("logits", self.classes(), logits_len)?;
        let elems = if fused {
            self.plan.arena_elems
        } else {
            self.plan.observed_arena_elems
        };
        let needed = self.arena_bytes_for(elems);
        let too_small = Error::BufferTooSmall {
            what: "arena",
            needed,
            found: arena.len(),
        };
        Ok((aligned_arena::<T>(arena, elems, needed)?, too_small))
    }

    /// Walks the layers over the two-ended arena (see [`Side`]): each layer gets its input
    /// in place, or its input and a separate output, then `observe` sees the result, and the
    /// last activation is copied to `logits`. Fused, the chains run row by row
    /// ([`run_chain`]); `pad(i)` is the padding value of layer `i`'s input. Shared by the
    /// f32 and int8 paths.
    #[allow(clippy::too_many_arguments)]
    fn walk<T: Copy>(
        &self,
        input: &[T],
        arena: &mut [T],
        logits: &mut [T],
        too_small: Error,
        mut schedule: Schedule<'_, T>,
        pad: impl Fn(usize) -> T,
        mut compute: impl FnMut(usize, &Layer, Shape, Buffers<'_, T>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut side = Side::Input;
        let mut shape = self.input;
        let layer_list = self.layers();
        let mut i = 0;
        while let Some(layer) = layer_list.get(i) {
            let chain = if schedule.is_fused() {
                crate::arch::fused_chain(layer_list, i, shape)
            } else {
                None
            };
            if let Some(chain) = chain {
                let (src, scratch, dst) =
                    split3(arena, input, side, shape.len(), chain.output.len()).ok_or(too_small)?;
                run_chain(
                    &chain,
                    layer_list,
                    src,
                    scratch,
                    dst,
                    pad(i),
                    too_small,
                    &mut compute,
                )?;
                side = side.opposite();
                shape = chain.output;
                i = chain.end + 1;
                continue;
            }
            let out_shape = layer
                .output_shape(shape)
                .map_err(|problem| ArchError { layer: i, problem })?;
            if layer.in_place() {
                if side == Side::Input {
                    arena
                        .get_mut(..input.len())
                        .ok_or(too_small)?
                        .copy_from_slice(input);
                    side = Side::Low;
                }
                let buf = region_mut(arena, side, shape.len()).ok_or(too_small)?;
                compute(i, layer, shape, Buffers::InPlace(buf))?;
            } else {
                let (src, dst) =
                    split(arena, input, side, shape.len(), out_shape.len()).ok_or(too_small)?;
                compute(i, layer, shape, Buffers::Apart(src, dst))?;
                side = side.opposite();
            }
            if let Schedule::Observed(observe) = &mut schedule {
                observe(
                    i,
                    out_shape,
                    region_mut(arena, side, out_shape.len()).ok_or(too_small)?,
                );
            }
            shape = out_shape;
            i += 1;
        }
        let out = region_mut(arena, side, shape.len()).ok_or(too_small)?;
        // `prepare` checked this; checking it here too keeps the copy free of a panic path.
        expect_len("logits", out.len(), logits.len())?;
        logits.copy_from_slice(out);
        Ok(())
    }
}

/// Runs a fused chain ([`crate::arch::FusedChain`]): for each pooled row, the convolution
/// rows its window needs that the ring lacks are computed, up to
/// [`rows_per_call`](crate::arch::FusedChain::rows_per_call) at a time (their input rows
/// copied into a band with the padding made explicit, so the layer's own kernel runs with
/// padding 0 and computes the same sums), passed through the chain's in-place layers, and
/// appended to the ring; the pool then reads the ring. Every value is computed by the same
/// kernel, in the same order, as without fusion.
#[allow(clippy::too_many_arguments)]
fn run_chain<T: Copy>(
    chain: &crate::arch::FusedChain,
    layer_list: &[Layer],
    src: &[T],
    scratch: &mut [T],
    dst: &mut [T],
    pad: T,
    too_small: Error,
    compute: &mut impl FnMut(usize, &Layer, Shape, Buffers<'_, T>) -> Result<(), Error>,
) -> Result<(), Error> {
    let (band_max, ring_shape) = (chain.band(), chain.ring());
    let per_call = chain.rows_per_call();
    let (c, conv_w) = (chain.conv.c, chain.conv.w.max(1));
    let (out_h, out_w) = (chain.output.h, chain.output.w.max(1));
    let (band, rest) = scratch
        .split_at_mut_checked(band_max.len())
        .ok_or(too_small)?;
    let (ring, rest) = rest
        .split_at_mut_checked(ring_shape.len())
        .ok_or(too_small)?;
    let (rows_out, rest) = rest
        .split_at_mut_checked(c * per_call * conv_w)
        .ok_or(too_small)?;
    let pooled = rest.get_mut(..c * out_w).ok_or(too_small)?;
    let band_layer = Layer::Conv(ConvSpec {
        padding: 0,
        ..chain.spec
    });
    let (stride, padding) = (chain.spec.stride as usize, chain.spec.padding as usize);
    let (in_h, in_w) = (chain.input.h, chain.input.w.max(1));
    let band_w = band_max.w.max(1);
    let window = (chain.pool.window as usize).max(1);
    let pool_stride = chain.pool.stride as usize;
    let in_plane = (in_h * in_w).max(1);
    // The ring holds convolution rows `first..first + filled`, in order, per channel.
    let (mut first, mut filled) = (0usize, 0usize);
    for py in 0..out_h {
        let want = py * pool_stride;
        let drop = want.saturating_sub(first);
        if drop >= filled {
            filled = 0;
        } else {
            let (shift, keep) = (drop * conv_w, (filled - drop) * conv_w);
            for plane in ring.chunks_exact_mut((window * conv_w).max(1)) {
                // The rows move towards the start (one `memmove`; the check is its bounds).
                if shift
                    .checked_add(keep)
                    .is_some_and(|end| end <= plane.len())
                {
                    plane.copy_within(shift..shift + keep, 0);
                }
            }
            filled -= drop;
        }
        first = want;
        while filled < window {
            let r = first + filled;
            let rows = (window - filled).min(per_call);
            let band_shape = chain.band_for(rows);
            let band = band.get_mut(..band_shape.len()).ok_or(too_small)?;
            let band_h = band_shape.h.max(1);
            // The band: input rows r * stride - padding .. + its height, padding explicit.
            for (ic_k, band_row) in band.chunks_exact_mut(band_w).enumerate() {
                let (ic, ky) = (ic_k / band_h, ic_k % band_h);
                let iy = (r * stride + ky).wrapping_sub(padding);
                let source = src
                    .chunks_exact(in_plane)
                    .nth(ic)
                    .and_then(|plane| plane.chunks_exact(in_w).nth(iy))
                    .filter(|_| iy < in_h);
                match source {
                    Some(line) => {
                        let (left, rest) = band_row.split_at_mut(padding.min(band_row.len()));
                        left.fill(pad);
                        let (middle, right) = rest.split_at_mut(in_w.min(rest.len()));
                        middle.iter_mut().zip(line).for_each(|(m, &v)| *m = v);
                        right.fill(pad);
                    }
                    None => band_row.fill(pad),
                }
            }
            let rows_shape = Shape::new(c, rows, conv_w);
            let computed = rows_out.get_mut(..rows_shape.len()).ok_or(too_small)?;
            compute(
                chain.start,
                &band_layer,
                band_shape,
                Buffers::Apart(band, computed),
            )?;
            for l in chain.start + 1..chain.end {
                if let Some(layer) = layer_list.get(l) {
                    compute(l, layer, rows_shape, Buffers::InPlace(computed))?;
                }
            }
            for (plane, lines) in ring
                .chunks_exact_mut((window * conv_w).max(1))
                .zip(computed.chunks_exact((rows * conv_w).max(1)))
            {
                if let Some(slot) = plane.get_mut(filled * conv_w..(filled + rows) * conv_w) {
                    slot.iter_mut().zip(lines).for_each(|(d, &v)| *d = v);
                }
            }
            filled += rows;
        }
        let pool_layer = layer_list.get(chain.end).ok_or(too_small)?;
        compute(
            chain.end,
            pool_layer,
            ring_shape,
            Buffers::Apart(ring, pooled),
        )?;
        for (plane, line) in dst
            .chunks_exact_mut((out_h * out_w).max(1))
            .zip(pooled.chunks_exact(out_w))
        {
            if let Some(slot) = plane.get_mut(py * out_w..(py + 1) * out_w) {
                slot.iter_mut().zip(line).for_each(|(d, &v)| *d = v);
            }
        }
    }
    Ok(())
}

/// Names the layer of a kernel's geometry error (the kernel cannot know its index).
fn at_layer(layer: usize) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Geometry(problem) => Error::Arch(ArchError { layer, problem }),
        other => other,
    }
}

/// The source activation, the free middle of the arena (the fused chain's scratch) and the
/// destination at the opposite end.
fn split3<'b, T>(
    arena: &'b mut [T],
    input: &'b [T],
    side: Side,
    in_len: usize,
    out_len: usize,
) -> Option<(&'b [T], &'b mut [T], &'b mut [T])> {
    let total = arena.len();
    match side {
        Side::Input => {
            let (dst, scratch) = arena.split_at_mut_checked(out_len)?;
            Some((input, scratch, dst))
        }
        Side::Low => {
            let (low, dst) = arena.split_at_mut_checked(total.checked_sub(out_len)?)?;
            let (src, scratch) = low.split_at_mut_checked(in_len)?;
            Some((src, scratch, dst))
        }
        Side::High => {
            let (low, src) = arena.split_at_mut_checked(total.checked_sub(in_len)?)?;
            let (dst, scratch) = low.split_at_mut_checked(out_len)?;
            Some((src, scratch, dst))
        }
    }
}

impl<'a> Model<'a> {
    pub(crate) fn run_int8(
        &self,
        input: &[i8],
        arena: &mut [u8],
        logits: &mut [i8],
        options: RunOptions<'_, i8>,
    ) -> Result<(), Error> {
        let (kernels, schedule) = options.into_parts();
        let schedule = self.schedule_for(kernels, schedule, arena.len());
        let (arena, too_small) = self.prepare::<i8>(
            Precision::Int8,
            input.len(),
            logits.len(),
            arena,
            schedule.is_fused(),
        )?;
        let quant = &self.quant;
        // Layer `i` reads codes of the zero point layer `i - 1` wrote (the input's for 0).
        let zp_in = |i: usize| match i.checked_sub(1) {
            Some(prev) => quant
                .layers
                .get(prev)
                .map_or(quant.input.zero_point, |q| q.output.zero_point),
            None => quant.input.zero_point,
        };
        self.walk(
            input,
            arena,
            logits,
            too_small,
            schedule,
            |i| int8::requant::saturate(zp_in(i) as i64),
            |i, layer, shape, buffers| {
                let q = quant
                    .layers
                    .get(i)
                    .copied()
                    .unwrap_or(Quantization::EMPTY.layers[0]);
                let zero_points = ZeroPoints {
                    input: zp_in(i),
                    output: q.output.zero_point,
                };
                let kernel = || {
                    q.kernel.ok_or(Error::MissingTensor {
                        layer: i,
                        role: TensorRole::Weight,
                    })
                };
                match (buffers, layer) {
                    (Buffers::InPlace(buf), Layer::Relu) => {
                        kernels.relu_int8(buf, q.output.zero_point);
                    }
                    (Buffers::InPlace(buf), Layer::Lrn(spec)) => {
                        let table = LrnTable {
                            table: q.lrn_table,
                            shift: q.lrn_shift,
                            steps_fit: Some(q.lrn_steps_fit),
                        };
                        kernels
                            .lrn_int8(buf, shape, spec, table, zero_points)
                            .map_err(at_layer(i))?;
                    }
                    (Buffers::Apart(src, dst), Layer::Conv(spec)) => {
                        let g = ConvGeometry::new(spec, shape).map_err(at_layer(i))?;
                        kernels.conv2d_int8(&g, src, &kernel()?, zero_points, dst)?;
                    }
                    (Buffers::Apart(src, dst), Layer::Linear { .. }) => {
                        kernels.linear_int8(src, &kernel()?, zero_points, dst)?;
                    }
                    (Buffers::Apart(src, dst), Layer::MaxPool(spec)) => {
                        let g = PoolGeometry::new(spec, shape).map_err(at_layer(i))?;
                        kernels.max_pool_int8(&g, src, dst)?;
                    }
                    (Buffers::Apart(src, dst), Layer::AdaptiveAvgPool { out_h, out_w }) => {
                        let g = AdaptivePoolGeometry::new(shape, *out_h, *out_w)
                            .map_err(at_layer(i))?;
                        kernels.adaptive_avg_pool_int8(&g, src, dst)?;
                    }
                    _ => {} // Dropout, Flatten, Softmax: nothing to compute at inference.
                }
                Ok(())
            },
        )
    }

    /// Quantizes a preprocessed f32 input with the model's input scale and zero point:
    /// `clamp(roundf(x / scale) + zp)`. Floating point, outside the integer path.
    pub fn quantize_input(&self, input: &[f32], codes: &mut [i8]) -> Result<(), Error> {
        expect_len("input", self.input.len(), input.len())?;
        expect_len("codes", self.input.len(), codes.len())?;
        let QParams { scale, zero_point } = self.quant.input;
        for (q, &x) in codes.iter_mut().zip(input) {
            // Saturating: +-Inf (and huge values) become i64's ends, which must not wrap
            // around when the zero point is added.
            let code = round_to_integer(x / scale).saturating_add(zero_point as i64);
            *q = int8::requant::saturate(code);
        }
        Ok(())
    }

    /// Real values of int8 logits, `(q - zp) * scale`, for softmax.
    pub fn dequantize_logits(&self, codes: &[i8], logits: &mut [f32]) -> Result<(), Error> {
        expect_len("logits", codes.len(), logits.len())?;
        let last = self.layers().len().saturating_sub(1);
        let out = self
            .quant
            .layers
            .get(last)
            .map_or(self.quant.input, |q| q.output);
        for (x, &q) in logits.iter_mut().zip(codes) {
            *x = (q as i32 - out.zero_point) as f32 * out.scale;
        }
        Ok(())
    }
}

/// `roundf(y) as i64` (nearest, halves away from zero; NaN to 0, infinities and huge values
/// saturated) without the call: below 2^23 in magnitude, the truncation and the exact
/// fraction `y - trunc(y)` decide; at or above, `y` is an integer already. A few
/// instructions per value where `roundf` took a call (a tenth of an int8 pass's time went to
/// quantizing the input).
#[inline]
fn round_to_integer(y: f32) -> i64 {
    if y.abs() < 8_388_608.0 {
        let t = y as i32;
        let fraction = y - t as f32;
        t as i64 + i64::from(fraction >= 0.5) - i64::from(fraction <= -0.5)
    } else {
        y as i64
    }
}

/// What a layer works on: its activation in place, or its input and a separate output.
enum Buffers<'b, T> {
    InPlace(&'b mut [T]),
    Apart(&'b [T], &'b mut [T]),
}

/// The part of `arena` aligned to [`ARENA_ALIGN`], as `elems` values of `T`.
fn aligned_arena<T: bytemuck::Pod>(
    arena: &mut [u8],
    elems: usize,
    needed: usize,
) -> Result<&mut [T], Error> {
    let found = arena.len();
    let skip = arena.as_ptr().align_offset(ARENA_ALIGN);
    let bytes = skip
        .checked_add(elems.saturating_mul(core::mem::size_of::<T>()))
        .and_then(|end| arena.get_mut(skip..end))
        .ok_or(Error::BufferTooSmall {
            what: "arena",
            needed,
            found,
        })?;
    bytemuck::try_cast_slice_mut(bytes).map_err(|_| Error::Misaligned {
        what: "arena",
        offset: skip,
        align: ARENA_ALIGN,
    })
}

/// The activation of length `len` at `side` of the arena.
fn region_mut<T>(arena: &mut [T], side: Side, len: usize) -> Option<&mut [T]> {
    match side {
        Side::Input | Side::Low => arena.get_mut(..len),
        Side::High => {
            let start = arena.len().checked_sub(len)?;
            arena.get_mut(start..)
        }
    }
}

/// The source activation (length `in_len`, at `side`) and the destination (length
/// `out_len`, at the opposite side) of an out-of-place layer.
fn split<'b, T>(
    arena: &'b mut [T],
    input: &'b [T],
    side: Side,
    in_len: usize,
    out_len: usize,
) -> Option<(&'b [T], &'b mut [T])> {
    let total = arena.len();
    match side {
        Side::Input => Some((input, arena.get_mut(..out_len)?)),
        Side::Low => {
            let (low, high) = arena.split_at_mut_checked(total.checked_sub(out_len)?)?;
            Some((low.get(..in_len)?, high))
        }
        Side::High => {
            let (low, high) = arena.split_at_mut_checked(total.checked_sub(in_len)?)?;
            Some((high, low.get_mut(..out_len)?))
        }
    }
}

/// Aligns its content to 64 bytes, so that `include_bytes!` data can be parsed in place.
#[repr(C, align(64))]
pub struct Aligned<B: ?Sized>(pub B);

/// Includes a model blob in the binary (flash, on a microcontroller), aligned for zero-copy
/// parsing: `let model = Model::parse(include_model!("micro.blob"))?;`
#[macro_export]
macro_rules! include_model {
    ($path:expr) => {{
        static ALIGNED: &$crate::Aligned<[u8]> = &$crate::Aligned(*include_bytes!($path));
        &ALIGNED.0
    }};
}

#[cfg(test)]
mod tests {
    use super::round_to_integer;

    #[test]
    fn rounding_to_an_integer_is_roundf_then_a_saturating_cast() {
        let specials = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -2.5,
            0.499_999_97,
            -0.499_999_97,
            8_388_607.5,
            -8_388_607.5,
            8_388_608.0,
            -8_388_609.0,
            1e10,
            -3e38,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
            1e-45,
        ];
        let quarters = (-40_000..40_000).map(|i| i as f32 * 0.25);
        // Bit patterns spread over every exponent, sign and NaN payload.
        let patterns = (0..400_000u32).map(|i| f32::from_bits(i.wrapping_mul(2_654_435_761)));
        for y in specials.into_iter().chain(quarters).chain(patterns) {
            assert_eq!(round_to_integer(y), libm::roundf(y) as i64, "{y:e}");
        }
    }
}
