//! Network descriptors as `const` data, and everything that follows from them at compile time.
//!
//! ```
//! use alexnet_core::builtin::PAPER;
//! // Firmware can size its activation arena statically:
//! static mut ARENA: [u8; PAPER.arena_bytes_f32()] = [0; PAPER.arena_bytes_f32()];
//! assert_eq!(PAPER.param_count(), 60_965_224);
//! ```

pub mod builtin;
mod layer;
mod shape;

pub use layer::{
    ConvSpec, Layer, LayerResult, LrnConvention, LrnSpec, PoolSpec, MAX_ELEMENTS, MAX_LRN_SIZE,
};
pub use shape::Shape;

use crate::error::{ArchError, ArchProblem};
use crate::int8::packed::padded_input_fits;

/// Most layers a descriptor may have (blobs are parsed into a fixed-size table).
pub const MAX_LAYERS: usize = 32;
/// Alignment the forward pass gives its arena views; arena sizes include this much slack
/// (minus one byte) so that any `[u8]` buffer works, aligned or not.
pub const ARENA_ALIGN: usize = 64;

/// A network: its input shape and its layers, in order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arch<'a> {
    /// Name, e.g. `paper`.
    pub name: &'a str,
    /// Input shape `[C, H, W]`.
    pub input: Shape,
    /// The layers.
    pub layers: &'a [Layer],
}

/// Everything the forward pass needs to know in advance, computed by one walk of the layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Plan {
    /// Shape of the last layer's output (the logits).
    pub output: Shape,
    /// Weights and biases.
    pub params: usize,
    /// Multiply-accumulates per image.
    pub macs: u64,
    /// Elements of activation arena the forward pass needs, with each conv -> ReLU/LRN ->
    /// max pool chain fused (the convolution's output held a few rows at a time).
    pub arena_elems: usize,
    /// Elements of activation arena a forward pass that shows every layer's whole output
    /// (`Model::run` unfused or observed) needs: two whole activations at a time.
    pub observed_arena_elems: usize,
    /// Largest single activation, in elements.
    pub largest_activation: usize,
}

/// Where the current activation lives while the forward pass walks the layers.
///
/// The arena holds at most two activations: one at its low end and one at its high end. An
/// out-of-place layer reads one end and writes the other, so it needs `in + out` elements; an
/// in-place layer needs only its input. The first layer reads the caller's input directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The caller's input buffer.
    Input,
    /// `arena[..len]`.
    Low,
    /// `arena[arena.len() - len..]`.
    High,
}

impl Side {
    /// Where an out-of-place layer reading from `self` writes.
    pub const fn opposite(self) -> Side {
        match self {
            Side::Input | Side::High => Side::Low,
            Side::Low => Side::High,
        }
    }
}

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// A convolution whose output only feeds row-local in-place layers (ReLU, LRN, dropout) and
/// then a max pool: the forward pass computes it a few rows at a time ([`Self::rows_per_call`])
/// into a ring of `window` rows and pools each output row as soon as its rows are there,
/// never holding the convolution's output whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FusedChain {
    /// Index of the convolution.
    pub start: usize,
    /// Index of the max pool.
    pub end: usize,
    /// The convolution's input.
    pub input: Shape,
    /// The convolution's output (never materialized whole).
    pub conv: Shape,
    /// The pool's output.
    pub output: Shape,
    /// The convolution.
    pub spec: ConvSpec,
    /// The pool.
    pub pool: PoolSpec,
}

impl FusedChain {
    /// Convolution rows computed per kernel call, at most: the rows each pooled row adds to
    /// the ring (the pool's stride, at most its window). One call per pooled row keeps the
    /// kernels' per-call costs (patches, tiles, the in-place layers' set-up) off every
    /// single row. One row per call where a one-row band fits the Cortex-M int8 kernel's
    /// padded copy ([`padded_input_fits`]) and the larger band would not: that kernel's path
    /// without the copy costs more than the calls save (the paper net's conv1 and conv2).
    pub const fn rows_per_call(&self) -> usize {
        let (stride, window) = (self.pool.stride as usize, self.pool.window as usize);
        let rows = if stride < window { stride } else { window };
        if rows <= 1 {
            return 1;
        }
        let band_spec = ConvSpec {
            padding: 0,
            ..self.spec
        };
        if padded_input_fits(&band_spec, self.band_for(1))
            && !padded_input_fits(&band_spec, self.band_for(rows))
        {
            1
        } else {
            rows
        }
    }

    /// Input rows of [`Self::rows_per_call`] convolution rows, zero-padded left and right:
    /// `[C_in, (rows - 1) * stride + k, W + 2p]`.
    pub const fn band(&self) -> Shape {
        self.band_for(self.rows_per_call())
    }

    /// The band of `rows` convolution rows.
    pub const fn band_for(&self, rows: usize) -> Shape {
        let p = self.spec.padding as usize;
        let rows = if rows == 0 { 1 } else { rows };
        Shape::new(
            self.input.c,
            (rows - 1) * self.spec.stride as usize + self.spec.kernel as usize,
            self.input.w + 2 * p,
        )
    }

    /// The ring of convolution rows a pooled row reads: `[C, window, W_conv]`.
    pub const fn ring(&self) -> Shape {
        Shape::new(self.conv.c, self.pool.window as usize, self.conv.w)
    }

    /// Elements of scratch the chain needs beside its input and output: the band, the ring,
    /// the rows of one call and one pooled row.
    pub const fn scratch(&self) -> usize {
        self.band().len()
            + self.ring().len()
            + self.conv.c * self.rows_per_call() * self.conv.w
            + self.output.c * self.output.w
    }
}

/// The fused chain starting at layer `i` (whose input has `shape`), if there is one.
pub const fn fused_chain(layers: &[Layer], i: usize, shape: Shape) -> Option<FusedChain> {
    if i >= layers.len() {
        return None;
    }
    let spec = match layers[i] {
        Layer::Conv(spec) => spec,
        _ => return None,
    };
    let mut j = i + 1;
    while j < layers.len()
        && matches!(
            layers[j],
            Layer::Relu | Layer::Lrn(_) | Layer::Dropout { .. }
        )
    {
        j += 1;
    }
    if j >= layers.len() {
        return None;
    }
    let pool = match layers[j] {
        Layer::MaxPool(pool) => pool,
        _ => return None,
    };
    let conv = match Layer::Conv(spec).output_shape(shape) {
        Ok(s) => s,
        Err(_) => return None,
    };
    let output = match Layer::MaxPool(pool).output_shape(conv) {
        Ok(s) => s,
        Err(_) => return None,
    };
    if pool.window == 0 || pool.stride == 0 {
        return None;
    }
    Some(FusedChain {
        start: i,
        end: j,
        input: shape,
        conv,
        output,
        spec,
        pool,
    })
}

impl<'a> Arch<'a> {
    /// Validates the descriptor and computes its [`Plan`].
    pub const fn plan(&self) -> Result<Plan, ArchError> {
        let n = self.layers.len();
        if n == 0 {
            return Err(ArchError {
                layer: 0,
                problem: ArchProblem::NoLayers,
            });
        }
        if n > MAX_LAYERS {
            return Err(ArchError {
                layer: MAX_LAYERS,
                problem: ArchProblem::TooManyLayers,
            });
        }
        let mut shape = self.input;
        if let Err(problem) = shape.checked_len() {
            return Err(ArchError { layer: 0, problem });
        }
        let mut side = Side::Input;
        let mut plan = Plan {
            output: shape,
            params: 0,
            macs: 0,
            arena_elems: 0,
            observed_arena_elems: 0,
            largest_activation: shape.len(),
        };
        // The fused plan, walked alongside: where its activation lives, and the index up to
        // which a fused chain has already been counted.
        let mut fused_side = Side::Input;
        let mut fused_until = 0;
        let mut i = 0;
        while i < n {
            let layer = &self.layers[i];
            let out = match layer.output_shape(shape) {
                Ok(s) => s,
                Err(problem) => return Err(ArchError { layer: i, problem }),
            };
            if matches!(layer, Layer::Softmax) && i + 1 != n {
                return Err(ArchError {
                    layer: i,
                    problem: ArchProblem::SoftmaxNotLast,
                });
            }
            let weights = match layer.weight_len(shape) {
                Ok(w) => w,
                Err(problem) => return Err(ArchError { layer: i, problem }),
            };
            plan.params += weights + layer.bias_len();
            plan.macs += layer.macs(shape, out);
            let need = if layer.in_place() {
                // A leading in-place layer first copies the input into the arena.
                side = match side {
                    Side::Input => Side::Low,
                    s => s,
                };
                shape.len()
            } else {
                let reads_arena = !matches!(side, Side::Input);
                side = side.opposite();
                if reads_arena {
                    shape.len() + out.len()
                } else {
                    out.len()
                }
            };
            plan.observed_arena_elems = max(plan.observed_arena_elems, need);
            if i >= fused_until {
                let fused_need = match fused_chain(self.layers, i, shape) {
                    Some(chain) => {
                        fused_until = chain.end + 1;
                        let reads_arena = !matches!(fused_side, Side::Input);
                        fused_side = fused_side.opposite();
                        let input = if reads_arena { shape.len() } else { 0 };
                        input + chain.output.len() + chain.scratch()
                    }
                    None => {
                        fused_until = i + 1;
                        if layer.in_place() {
                            fused_side = match fused_side {
                                Side::Input => Side::Low,
                                s => s,
                            };
                            shape.len()
                        } else {
                            let reads_arena = !matches!(fused_side, Side::Input);
                            fused_side = fused_side.opposite();
                            if reads_arena {
                                shape.len() + out.len()
                            } else {
                                out.len()
                            }
                        }
                    }
                };
                plan.arena_elems = max(plan.arena_elems, fused_need);
            }
            plan.largest_activation = max(plan.largest_activation, out.len());
            shape = out;
            i += 1;
        }
        plan.output = shape;
        Ok(plan)
    }

    /// Whether the descriptor is valid.
    pub const fn is_valid(&self) -> bool {
        self.plan().is_ok()
    }

    /// Bytes of activation arena the f32 forward pass needs (0 for an invalid descriptor),
    /// including slack for aligning an arbitrary `[u8]` buffer.
    pub const fn arena_bytes_f32(&self) -> usize {
        match self.plan() {
            Ok(p) => p.arena_elems * 4 + (ARENA_ALIGN - 1),
            Err(_) => 0,
        }
    }

    /// Bytes of activation arena the int8 forward pass needs (0 for an invalid descriptor),
    /// including slack for aligning an arbitrary `[u8]` buffer.
    pub const fn arena_bytes_int8(&self) -> usize {
        match self.plan() {
            Ok(p) => p.arena_elems + (ARENA_ALIGN - 1),
            Err(_) => 0,
        }
    }

    /// Bytes of arena `Model::run` needs unfused or observed, f32 (every layer's output whole).
    pub const fn observed_arena_bytes_f32(&self) -> usize {
        match self.plan() {
            Ok(p) => p.observed_arena_elems * 4 + (ARENA_ALIGN - 1),
            Err(_) => 0,
        }
    }

    /// Bytes of arena `Model::run` needs unfused or observed, int8 (every layer's output whole).
    pub const fn observed_arena_bytes_int8(&self) -> usize {
        match self.plan() {
            Ok(p) => p.observed_arena_elems + (ARENA_ALIGN - 1),
            Err(_) => 0,
        }
    }

    /// Weights and biases (0 for an invalid descriptor).
    pub const fn param_count(&self) -> usize {
        match self.plan() {
            Ok(p) => p.params,
            Err(_) => 0,
        }
    }

    /// Multiply-accumulates per image (0 for an invalid descriptor).
    pub const fn macs(&self) -> u64 {
        match self.plan() {
            Ok(p) => p.macs,
            Err(_) => 0,
        }
    }

    /// Number of classes: the length of the output (0 for an invalid descriptor).
    pub const fn classes(&self) -> usize {
        match self.plan() {
            Ok(p) => p.output.len(),
            Err(_) => 0,
        }
    }

    /// Input elements.
    pub const fn input_len(&self) -> usize {
        self.input.len()
    }

    /// Walks the layers with their input and output shapes; stops at the first invalid layer.
    pub fn walk(&self) -> Walk<'a> {
        Walk {
            layers: self.layers,
            index: 0,
            shape: self.input,
        }
    }

    /// Conventional parameter-tensor name of a layer: `conv2`, `fc6`... Convolutions are
    /// numbered from 1 in order; linear layers continue the count, as in the paper.
    pub fn param_layer_name(&self, layer: usize) -> Option<ParamName> {
        let target = self.layers.get(layer)?;
        if !target.has_params() {
            return None;
        }
        let mut convs = 0u32;
        let mut params = 0u32;
        for l in self.layers.iter().take(layer + 1) {
            if l.has_params() {
                params += 1;
            }
            if matches!(l, Layer::Conv(_)) {
                convs += 1;
            }
        }
        Some(match target {
            Layer::Conv(_) => ParamName {
                prefix: "conv",
                number: convs,
            },
            _ => ParamName {
                prefix: "fc",
                number: params,
            },
        })
    }
}

/// A layer's conventional name, `conv3` or `fc7`, formatted without allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamName {
    /// `conv` or `fc`.
    pub prefix: &'static str,
    /// 1-based number.
    pub number: u32,
}

impl core::fmt::Display for ParamName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}{}", self.prefix, self.number)
    }
}

/// One step of [`Arch::walk`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// Layer index.
    pub index: usize,
    /// The layer.
    pub layer: Layer,
    /// Its input shape.
    pub input: Shape,
    /// Its output shape.
    pub output: Shape,
}

/// Iterator over the layers with their shapes.
#[derive(Clone, Debug)]
pub struct Walk<'a> {
    layers: &'a [Layer],
    index: usize,
    shape: Shape,
}

impl Iterator for Walk<'_> {
    type Item = Result<Step, ArchError>;

    fn next(&mut self) -> Option<Self::Item> {
        let layer = *self.layers.get(self.index)?;
        let index = self.index;
        match layer.output_shape(self.shape) {
            Ok(output) => {
                let step = Step {
                    index,
                    layer,
                    input: self.shape,
                    output,
                };
                self.shape = output;
                self.index += 1;
                Some(Ok(step))
            }
            Err(problem) => {
                self.index = self.layers.len();
                Some(Err(ArchError {
                    layer: index,
                    problem,
                }))
            }
        }
    }
}
