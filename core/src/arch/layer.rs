//! One layer of a network descriptor, and how its output shape follows from its input.

use super::Shape;
use crate::error::ArchProblem;

/// Largest element count of any activation or weight tensor (2^28): keeps every byte count
/// within a 32-bit `usize` on microcontrollers.
pub const MAX_ELEMENTS: usize = 1 << 28;
/// Largest LRN window.
pub const MAX_LRN_SIZE: u32 = 15;

/// A convolution: `out_channels` square `kernel`s, applied with `stride` and zero `padding`
/// on every side, the channels split into `groups` (the paper's two-GPU towers are `groups: 2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConvSpec {
    /// Output channels.
    pub out_channels: u32,
    /// Kernel height and width.
    pub kernel: u32,
    /// Stride in both directions.
    pub stride: u32,
    /// Zero padding on each side.
    pub padding: u32,
    /// Channel groups; input channel group `g` feeds only output channel group `g`.
    pub groups: u32,
}

/// Which alpha the LRN formula uses: the models in the wild disagree, so a descriptor says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LrnConvention {
    /// The paper (§3.3) and TensorFlow: `k + alpha * sum`.
    Paper,
    /// Caffe, PyTorch, ONNX, cuda-convnet2: `k + (alpha / n) * sum`.
    AlphaOverN,
}

/// Local Response Normalization across channels:
/// `b[c] = a[c] / (k + alpha' * sum_{c' in [c - n/2, c + n/2]} a[c']^2) ^ beta`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LrnSpec {
    /// Window size `n` (odd).
    pub size: u32,
    /// `alpha`, as written in the model's source.
    pub alpha: f32,
    /// `beta`.
    pub beta: f32,
    /// `k`.
    pub k: f32,
    /// Whether `alpha` is divided by `n`.
    pub convention: LrnConvention,
}

impl LrnSpec {
    /// The multiplier of the sum of squares, `alpha` or `alpha / n`, rounded once to f32.
    pub fn alpha_effective(&self) -> f32 {
        match self.convention {
            LrnConvention::Paper => self.alpha,
            LrnConvention::AlphaOverN => self.alpha / self.size as f32,
        }
    }
}

/// Max pooling with a square `window` moved by `stride` (no padding, floor mode).
/// The paper's overlapping pooling is `window: 3, stride: 2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PoolSpec {
    /// Window height and width.
    pub window: u32,
    /// Stride in both directions.
    pub stride: u32,
}

/// Layers of the AlexNet family. Activations are laid out `[C, H, W]`, as in PyTorch.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Layer {
    /// 2-D convolution with bias.
    Conv(ConvSpec),
    /// `max(x, 0)`.
    Relu,
    /// Local Response Normalization.
    Lrn(LrnSpec),
    /// Max pooling.
    MaxPool(PoolSpec),
    /// PyTorch's `AdaptiveAvgPool2d` to `out_h x out_w` (torchvision's AlexNet has one).
    AdaptiveAvgPool {
        /// Output height.
        out_h: u32,
        /// Output width.
        out_w: u32,
    },
    /// `[C, H, W]` becomes `[C*H*W, 1, 1]`; no data moves.
    Flatten,
    /// Fully connected layer with bias; reads its input as a flat vector.
    Linear {
        /// Output features.
        out_features: u32,
    },
    /// Dropout with probability `p` during training; the identity at inference.
    Dropout {
        /// Drop probability.
        p: f32,
    },
    /// Softmax over the classes. Only as the last layer; [`crate::Model::forward`] returns
    /// the logits before it, and [`crate::postprocess::softmax`] applies it.
    Softmax,
}

/// A shape error before it knows its layer index.
pub type LayerResult<T> = Result<T, ArchProblem>;

/// Output side of a window of size `f` moved by `s` over `n + 2p`: floor((n + 2p - f) / s) + 1.
const fn window_out(n: usize, f: u32, s: u32, p: u32) -> LayerResult<usize> {
    let (f, s, p) = (f as usize, s as usize, p as usize);
    if f == 0 || s == 0 {
        return Err(ArchProblem::ZeroDimension);
    }
    let padded = n + 2 * p;
    if f > padded {
        return Err(ArchProblem::WindowLargerThanInput);
    }
    Ok((padded - f) / s + 1)
}

/// Checks a count against [`MAX_ELEMENTS`].
const fn bounded(n: usize) -> LayerResult<usize> {
    if n == 0 {
        Err(ArchProblem::ZeroDimension)
    } else if n > MAX_ELEMENTS {
        Err(ArchProblem::TooLarge)
    } else {
        Ok(n)
    }
}

/// `a * b`, refused when it would pass [`MAX_ELEMENTS`].
const fn mul(a: usize, b: usize) -> LayerResult<usize> {
    match a.checked_mul(b) {
        Some(n) => bounded(n),
        None => Err(ArchProblem::TooLarge),
    }
}

impl Layer {
    /// The output shape for `input`, or why this layer cannot take it.
    pub const fn output_shape(&self, input: Shape) -> LayerResult<Shape> {
        if let Err(e) = input.checked_len() {
            return Err(e);
        }
        match *self {
            Layer::Conv(c) => {
                if c.out_channels == 0 || c.groups == 0 || c.kernel == 0 || c.stride == 0 {
                    return Err(ArchProblem::ZeroDimension);
                }
                if c.padding >= c.kernel {
                    return Err(ArchProblem::PaddingNotSmallerThanKernel);
                }
                let g = c.groups as usize;
                if !input.c.is_multiple_of(g) || !(c.out_channels as usize).is_multiple_of(g) {
                    return Err(ArchProblem::GroupsDoNotDivideChannels);
                }
                let h = match window_out(input.h, c.kernel, c.stride, c.padding) {
                    Ok(h) => h,
                    Err(e) => return Err(e),
                };
                let w = match window_out(input.w, c.kernel, c.stride, c.padding) {
                    Ok(w) => w,
                    Err(e) => return Err(e),
                };
                let out = Shape::new(c.out_channels as usize, h, w);
                // The weight tensor must be addressable too.
                match self.weight_len(input) {
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
                match out.checked_len() {
                    Ok(_) => Ok(out),
                    Err(e) => Err(e),
                }
            }
            Layer::Relu | Layer::Softmax => Ok(input),
            Layer::Dropout { p } => {
                if probability(p) {
                    Ok(input)
                } else {
                    Err(ArchProblem::BadConstant)
                }
            }
            Layer::Lrn(l) => {
                if l.size == 0 || l.size % 2 == 0 || l.size > MAX_LRN_SIZE {
                    return Err(ArchProblem::BadLrnSize);
                }
                let ok = finite_non_negative(l.alpha)
                    && finite_non_negative(l.beta)
                    && finite_positive(l.k);
                if ok {
                    Ok(input)
                } else {
                    Err(ArchProblem::BadConstant)
                }
            }
            Layer::MaxPool(p) => {
                let h = match window_out(input.h, p.window, p.stride, 0) {
                    Ok(h) => h,
                    Err(e) => return Err(e),
                };
                let w = match window_out(input.w, p.window, p.stride, 0) {
                    Ok(w) => w,
                    Err(e) => return Err(e),
                };
                Ok(Shape::new(input.c, h, w))
            }
            Layer::AdaptiveAvgPool { out_h, out_w } => {
                if out_h == 0 || out_w == 0 {
                    return Err(ArchProblem::ZeroDimension);
                }
                if out_h as usize > input.h || out_w as usize > input.w {
                    return Err(ArchProblem::AdaptivePoolUpsamples);
                }
                Ok(Shape::new(input.c, out_h as usize, out_w as usize))
            }
            Layer::Flatten => Ok(Shape::new(input.c * input.h * input.w, 1, 1)),
            Layer::Linear { out_features } => {
                match self.weight_len(input) {
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
                match bounded(out_features as usize) {
                    Ok(n) => Ok(Shape::new(n, 1, 1)),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Elements of the weight tensor (0 for layers without parameters).
    pub const fn weight_len(&self, input: Shape) -> LayerResult<usize> {
        match *self {
            Layer::Conv(c) => {
                if c.groups == 0 {
                    return Err(ArchProblem::ZeroDimension);
                }
                let per_out = match mul(input.c / c.groups as usize, (c.kernel * c.kernel) as usize)
                {
                    Ok(n) => n,
                    Err(e) => return Err(e),
                };
                mul(c.out_channels as usize, per_out)
            }
            Layer::Linear { out_features } => mul(out_features as usize, input.len()),
            _ => Ok(0),
        }
    }

    /// The weight tensor's dims as stored (`[out, in/groups, k, k]` or `[out, in]`).
    pub const fn weight_dims(&self, input: Shape) -> [u32; 4] {
        match *self {
            Layer::Conv(c) => {
                let g = if c.groups == 0 { 1 } else { c.groups };
                [c.out_channels, input.c as u32 / g, c.kernel, c.kernel]
            }
            Layer::Linear { out_features } => [out_features, input.len() as u32, 0, 0],
            _ => [0; 4],
        }
    }

    /// Elements of the bias tensor (0 for layers without parameters).
    pub const fn bias_len(&self) -> usize {
        match *self {
            Layer::Conv(c) => c.out_channels as usize,
            Layer::Linear { out_features } => out_features as usize,
            _ => 0,
        }
    }

    /// Whether the layer has a weight and a bias tensor.
    pub const fn has_params(&self) -> bool {
        matches!(self, Layer::Conv(_) | Layer::Linear { .. })
    }

    /// Multiply-accumulates per image (convolutions and linear layers only, as usually counted).
    pub const fn macs(&self, input: Shape, output: Shape) -> u64 {
        match *self {
            Layer::Conv(c) => {
                let g = if c.groups == 0 { 1 } else { c.groups as u64 };
                output.len() as u64 * (input.c as u64 / g) * (c.kernel as u64 * c.kernel as u64)
            }
            Layer::Linear { out_features } => out_features as u64 * input.len() as u64,
            _ => 0,
        }
    }

    /// Whether the layer rewrites its input buffer instead of writing a new one.
    pub const fn in_place(&self) -> bool {
        matches!(
            self,
            Layer::Relu | Layer::Lrn(_) | Layer::Dropout { .. } | Layer::Flatten | Layer::Softmax
        )
    }

    /// A short lowercase name for tables and errors.
    pub const fn kind_name(&self) -> &'static str {
        match self {
            Layer::Conv(_) => "conv",
            Layer::Relu => "relu",
            Layer::Lrn(_) => "lrn",
            Layer::MaxPool(_) => "maxpool",
            Layer::AdaptiveAvgPool { .. } => "avgpool",
            Layer::Flatten => "flatten",
            Layer::Linear { .. } => "linear",
            Layer::Dropout { .. } => "dropout",
            Layer::Softmax => "softmax",
        }
    }
}

/// `x.is_finite() && x >= 0.0`, read from the bits: validating a descriptor (which every
/// forward pass does) then needs no floating point, so the integer path runs on cores
/// without an FPU with no soft-float call.
const fn finite_non_negative(x: f32) -> bool {
    let b = x.to_bits();
    b == 0x8000_0000 || b < 0x7f80_0000
}

/// `x.is_finite() && x > 0.0`, read from the bits (see [`finite_non_negative`]).
const fn finite_positive(x: f32) -> bool {
    let b = x.to_bits();
    b != 0 && b < 0x7f80_0000
}

/// `p >= 0.0 && p < 1.0`, read from the bits (see [`finite_non_negative`]).
const fn probability(p: f32) -> bool {
    let b = p.to_bits();
    b == 0x8000_0000 || b < 0x3f80_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bit tests say what the float comparisons say, for every kind of value.
    #[test]
    fn checks_by_bits_equal_the_float_comparisons() {
        let specials = [
            0.0f32,
            -0.0,
            1.0,
            -1.0,
            0.999_999_94,
            1e-45,
            -1e-45,
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
        ];
        let sweep = (0..=u32::MAX).step_by(65_537).map(f32::from_bits);
        for x in specials.into_iter().chain(sweep) {
            assert_eq!(finite_non_negative(x), x.is_finite() && x >= 0.0, "{x:e}");
            assert_eq!(finite_positive(x), x.is_finite() && x > 0.0, "{x:e}");
            assert_eq!(probability(x), (0.0..1.0).contains(&x), "{x:e}");
        }
    }
}
