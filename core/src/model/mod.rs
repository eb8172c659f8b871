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
//! alexnet_core::layers::top_k(&logits, &mut best);
//! # Ok(best[0]) }
//! ```

mod blob;
pub mod format;
mod kernels;
mod labels;
mod preprocess;
mod quant;

pub use kernels::{Kernels, Serial};
pub use labels::Labels;
pub use preprocess::{ChannelOrder, Mean, Preprocess};
pub use quant::{QLayer, QParams, Quantization};

use crate::arch::{Arch, Layer, Plan, Shape, Side, ARENA_ALIGN, MAX_LAYERS};
use crate::error::{Error, Precision, TensorRole};
use crate::int8::{self, ZeroPoints};
use crate::layers;

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
    /// [`Model::forward_int8`] for int8 ones), including alignment slack.
    pub fn arena_bytes(&self) -> usize {
        match self.precision {
            Precision::F32 => self.plan.arena_elems * 4 + (ARENA_ALIGN - 1),
            Precision::Int8 => self.plan.arena_elems + (ARENA_ALIGN - 1),
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
    pub fn forward(
        &self,
        input: &[f32],
        arena: &mut [u8],
        logits: &mut [f32],
    ) -> Result<(), Error> {
        self.forward_observed(input, arena, logits, |_, _, _| {})
    }

    /// [`Model::forward`], calling `observe(layer, shape, activation)` after every layer; the
    /// debugging and comparison tools use it to see inside the network.
    pub fn forward_observed<F>(
        &self,
        input: &[f32],
        arena: &mut [u8],
        logits: &mut [f32],
        observe: F,
    ) -> Result<(), Error>
    where
        F: FnMut(usize, Shape, &[f32]),
    {
        self.forward_with(&Serial, input, arena, logits, observe)
    }

    /// [`Model::forward_observed`] with other [`Kernels`] (e.g. the host's multi-threaded
    /// ones); the same logits, bit for bit.
    pub fn forward_with<K, F>(
        &self,
        kernels: &K,
        input: &[f32],
        arena: &mut [u8],
        logits: &mut [f32],
        mut observe: F,
    ) -> Result<(), Error>
    where
        K: Kernels + ?Sized,
        F: FnMut(usize, Shape, &[f32]),
    {
        let (arena, too_small) =
            self.prepare::<f32>(Precision::F32, input.len(), logits.len(), arena)?;
        self.walk(
            input,
            arena,
            logits,
            too_small,
            &mut observe,
            |i, layer, shape, buffers| {
                match (buffers, layer) {
                    (Buffers::InPlace(buf), Layer::Relu) => layers::relu_in_place(buf),
                    (Buffers::InPlace(buf), Layer::Lrn(spec)) => {
                        layers::lrn_in_place(buf, shape, spec)?
                    }
                    (Buffers::Apart(src, dst), Layer::Conv(spec)) => {
                        let p = self.params(i).ok_or(Error::MissingTensor {
                            layer: i,
                            role: TensorRole::Weight,
                        })?;
                        kernels.conv2d(src, shape, spec, p.weight, p.bias, dst)?;
                    }
                    (Buffers::Apart(src, dst), Layer::Linear { .. }) => {
                        let p = self.params(i).ok_or(Error::MissingTensor {
                            layer: i,
                            role: TensorRole::Weight,
                        })?;
                        kernels.linear(src, p.weight, p.bias, dst)?;
                    }
                    (Buffers::Apart(src, dst), Layer::MaxPool(spec)) => {
                        layers::max_pool(src, shape, spec, dst)?;
                    }
                    (Buffers::Apart(src, dst), Layer::AdaptiveAvgPool { out_h, out_w }) => {
                        layers::adaptive_avg_pool(src, shape, *out_h, *out_w, dst)?;
                    }
                    _ => {} // Dropout, Flatten, Softmax: nothing to compute at inference.
                }
                Ok(())
            },
        )
    }

    /// Checks a forward call's precision and buffer lengths; returns the aligned arena and
    /// the error to give if it proves too small.
    fn prepare<'b, T: bytemuck::Pod>(
        &self,
        precision: Precision,
        input_len: usize,
        logits_len: usize,
        arena: &'b mut [u8],
    ) -> Result<(&'b mut [T], Error), Error> {
        if self.precision != precision {
            return Err(Error::WrongPrecision {
                model: self.precision,
                called: precision,
            });
        }
        layers::expect_len("input", self.input.len(), input_len)?;
        layers::expect_len("logits", self.classes(), logits_len)?;
        let needed = self.arena_bytes();
        let too_small = Error::BufferTooSmall {
            what: "arena",
            needed,
            found: arena.len(),
        };
        Ok((
            aligned_arena::<T>(arena, self.plan.arena_elems, needed)?,
            too_small,
        ))
    }

    /// Walks the layers over the two-ended arena (see [`Side`]): each layer gets its input
    /// in place, or its input and a separate output, then `observe` sees the result, and the
    /// last activation is copied to `logits`. Shared by the f32 and int8 paths.
    fn walk<T: Copy>(
        &self,
        input: &[T],
        arena: &mut [T],
        logits: &mut [T],
        too_small: Error,
        observe: &mut impl FnMut(usize, Shape, &[T]),
        mut compute: impl FnMut(usize, &Layer, Shape, Buffers<'_, T>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut side = Side::Input;
        let mut shape = self.input;
        for (i, layer) in self.layers().iter().enumerate() {
            let out_shape = layers::output_shape(layer, shape)?;
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
            observe(
                i,
                out_shape,
                region_mut(arena, side, out_shape.len()).ok_or(too_small)?,
            );
            shape = out_shape;
        }
        let out = region_mut(arena, side, shape.len()).ok_or(too_small)?;
        // `prepare` checked this; checking it here too keeps the copy free of a panic path.
        layers::expect_len("logits", out.len(), logits.len())?;
        logits.copy_from_slice(out);
        Ok(())
    }
}

impl<'a> Model<'a> {
    /// Runs an int8 model on quantized input codes (see [`Model::quantize_input`]), writing
    /// the int8 logits. Integer arithmetic only (`docs/int8-spec.md`).
    pub fn forward_int8(
        &self,
        input: &[i8],
        arena: &mut [u8],
        logits: &mut [i8],
    ) -> Result<(), Error> {
        self.forward_int8_observed(input, arena, logits, |_, _, _| {})
    }

    /// [`Model::forward_int8`], calling `observe(layer, shape, codes)` after every layer.
    pub fn forward_int8_observed<F>(
        &self,
        input: &[i8],
        arena: &mut [u8],
        logits: &mut [i8],
        observe: F,
    ) -> Result<(), Error>
    where
        F: FnMut(usize, Shape, &[i8]),
    {
        self.forward_int8_with(&Serial, input, arena, logits, observe)
    }

    /// [`Model::forward_int8_observed`] with other [`Kernels`]; the same logits, bit for bit.
    pub fn forward_int8_with<K, F>(
        &self,
        kernels: &K,
        input: &[i8],
        arena: &mut [u8],
        logits: &mut [i8],
        mut observe: F,
    ) -> Result<(), Error>
    where
        K: Kernels + ?Sized,
        F: FnMut(usize, Shape, &[i8]),
    {
        let (arena, too_small) =
            self.prepare::<i8>(Precision::Int8, input.len(), logits.len(), arena)?;
        let quant = &self.quant;
        let mut zp_in = quant.input.zero_point;
        self.walk(
            input,
            arena,
            logits,
            too_small,
            &mut observe,
            |i, layer, shape, buffers| {
                let q = quant
                    .layers
                    .get(i)
                    .copied()
                    .unwrap_or(Quantization::EMPTY.layers[0]);
                let zero_points = ZeroPoints {
                    input: zp_in,
                    output: q.output.zero_point,
                };
                zp_in = q.output.zero_point;
                let kernel = || {
                    q.kernel.ok_or(Error::MissingTensor {
                        layer: i,
                        role: TensorRole::Weight,
                    })
                };
                match (buffers, layer) {
                    (Buffers::InPlace(buf), Layer::Relu) => {
                        int8::relu_in_place(buf, q.output.zero_point)
                    }
                    (Buffers::InPlace(buf), Layer::Lrn(spec)) => {
                        int8::lrn_in_place(buf, shape, spec, q.lrn_table, q.lrn_shift, zero_points)?
                    }
                    (Buffers::Apart(src, dst), Layer::Conv(spec)) => {
                        kernels.conv2d_int8(src, shape, spec, &kernel()?, zero_points, dst)?;
                    }
                    (Buffers::Apart(src, dst), Layer::Linear { .. }) => {
                        kernels.linear_int8(src, &kernel()?, zero_points, dst)?;
                    }
                    (Buffers::Apart(src, dst), Layer::MaxPool(spec)) => {
                        int8::max_pool(src, shape, spec, dst)?;
                    }
                    (Buffers::Apart(src, dst), Layer::AdaptiveAvgPool { out_h, out_w }) => {
                        int8::adaptive_avg_pool(src, shape, *out_h, *out_w, dst)?;
                    }
                    _ => {}
                }
                Ok(())
            },
        )
    }

    /// Quantizes a preprocessed f32 input with the model's input scale and zero point:
    /// `clamp(roundf(x / scale) + zp)`. Floating point, outside the integer path.
    pub fn quantize_input(&self, input: &[f32], codes: &mut [i8]) -> Result<(), Error> {
        layers::expect_len("input", self.input.len(), input.len())?;
        layers::expect_len("codes", self.input.len(), codes.len())?;
        let QParams { scale, zero_point } = self.quant.input;
        for (q, &x) in codes.iter_mut().zip(input) {
            // Saturating: +-Inf (and huge values) become i64's ends, which must not wrap
            // around when the zero point is added.
            let code = (libm::roundf(x / scale) as i64).saturating_add(zero_point as i64);
            *q = int8::requant::saturate(code);
        }
        Ok(())
    }

    /// Real values of int8 logits, `(q - zp) * scale`, for softmax.
    pub fn dequantize_logits(&self, codes: &[i8], logits: &mut [f32]) -> Result<(), Error> {
        layers::expect_len("logits", codes.len(), logits.len())?;
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
