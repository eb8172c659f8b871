//! Reading and validating the int8 quantization parameters (QUNT section and int8 tensors):
//! everything `docs/int8-spec.md` requires, checked once so the kernels cannot overflow.

use super::format;
use super::labels::read_u32;
use super::Model;
use crate::arch::{Layer, LrnSpec, Step, MAX_LAYERS};
use crate::error::{Error, Precision};
use crate::int8::{accumulator_fits, lrn_max_sum, lrn_table_len, QKernel};

/// Scale and zero point of one activation tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QParams {
    /// `real = (q - zero_point) * scale`; informational for the integer path (it dequantizes
    /// logits and feeds the comparison tools).
    pub scale: f32,
    /// Zero point in [-128, 127].
    pub zero_point: i32,
}

/// A layer's int8 data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QLayer<'a> {
    /// Output activation parameters.
    pub output: QParams,
    /// Weights and requantization of a convolution or linear layer.
    pub kernel: Option<QKernel<'a>>,
    /// LRN table (empty for other layers).
    pub lrn_table: &'a [i32],
    /// LRN table shift `Q`.
    pub lrn_shift: u32,
    /// Whether the LRN table's neighbouring entries are less than 2^30 apart
    /// ([`crate::int8::lrn_steps_fit`], checked once when the blob is parsed).
    pub lrn_steps_fit: bool,
}

/// All int8 parameters of a model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantization<'a> {
    /// Input activation parameters.
    pub input: QParams,
    /// Per layer.
    pub layers: [QLayer<'a>; MAX_LAYERS],
}

impl Quantization<'_> {
    pub(crate) const EMPTY: Quantization<'static> = Quantization {
        input: QParams {
            scale: 1.0,
            zero_point: 0,
        },
        layers: [QLayer {
            output: QParams {
                scale: 1.0,
                zero_point: 0,
            },
            kernel: None,
            lrn_table: &[],
            lrn_shift: 0,
            lrn_steps_fit: true,
        }; MAX_LAYERS],
    };
}

fn qparams(scale_bits: u32, zp_word: u32, layer: usize) -> Result<QParams, Error> {
    let scale = f32::from_bits(scale_bits);
    if !(scale.is_finite() && scale > 0.0) {
        return Err(Error::BadQuantization {
            layer,
            what: "scale must be finite and > 0",
        });
    }
    let zero_point = zp_word as i32;
    if !(-128..=127).contains(&zero_point) {
        return Err(Error::BadQuantization {
            layer,
            what: "zero point outside [-128, 127]",
        });
    }
    Ok(QParams { scale, zero_point })
}

/// Reads the QUNT section; the model becomes an int8 model.
pub(crate) fn read_quant(section: &[u8], model: &mut Model<'_>) -> Result<(), Error> {
    let w = |i: usize| read_u32(section, 4 * i, "QUNT section");
    let count = w(2)? as usize;
    let layers = model.layers().len();
    if count != layers || w(3)? != 0 {
        return Err(Error::BadField {
            field: "QUNT layer count",
            found: count as u32,
        });
    }
    if section.len() != format::QUNT_HEADER_BYTES + count * format::QUNT_RECORD_BYTES {
        return Err(Error::BadField {
            field: "QUNT section length",
            found: section.len() as u32,
        });
    }
    let mut quant = Quantization::EMPTY;
    quant.input = qparams(w(0)?, w(1)?, usize::MAX)?;
    let mut previous = quant.input;
    for i in 0..count {
        let base = (format::QUNT_HEADER_BYTES + i * format::QUNT_RECORD_BYTES) / 4;
        let output = qparams(w(base)?, w(base + 1)?, i)?;
        let aux = w(base + 2)?;
        if w(base + 3)? != 0 {
            return Err(Error::BadField {
                field: "QUNT reserved word",
                found: w(base + 3)?,
            });
        }
        let layer = model.layers().get(i).copied().unwrap_or(Layer::Relu);
        // Layers that only move or select codes keep their input's scale and zero point.
        let keeps_params = matches!(
            layer,
            Layer::Relu
                | Layer::Dropout { .. }
                | Layer::Flatten
                | Layer::Softmax
                | Layer::MaxPool(_)
                | Layer::AdaptiveAvgPool { .. }
        );
        let same = output.scale.to_bits() == previous.scale.to_bits()
            && output.zero_point == previous.zero_point;
        if keeps_params && !same {
            return Err(Error::BadQuantization {
                layer: i,
                what: "this layer must keep its input's scale and zero point",
            });
        }
        match layer {
            Layer::Lrn(_) if aux > 62 => {
                return Err(Error::BadQuantization {
                    layer: i,
                    what: "LRN table shift above 62",
                })
            }
            Layer::Lrn(_) => {}
            _ if aux != 0 => {
                return Err(Error::BadField {
                    field: "QUNT aux word",
                    found: aux,
                })
            }
            _ => {}
        }
        if let Some(q) = quant.layers.get_mut(i) {
            q.output = output;
            q.lrn_shift = aux;
        }
        previous = output;
    }
    model.quant = quant;
    model.precision = Precision::Int8;
    Ok(())
}

/// The contract's limits on a quantized convolution or linear layer.
pub(crate) fn check_kernel(layer: usize, step: &Step, kernel: &QKernel<'_>) -> Result<(), Error> {
    let bad = |what| Err(Error::BadQuantization { layer, what });
    if kernel.weight.contains(&i8::MIN) {
        return bad("weight code -128 (weights are symmetric, in [-127, 127])");
    }
    if kernel.shift.iter().any(|&r| !(1..=62).contains(&r)) {
        return bad("requantization shift outside [1, 62]");
    }
    if kernel.multiplier.iter().any(|&m| m < 0) {
        return bad("negative requantization multiplier");
    }
    let taps = step.layer.weight_len(step.input).unwrap_or(0) / step.layer.bias_len().max(1);
    let max_bias = kernel
        .bias
        .iter()
        .map(|&b| (b as i64).abs())
        .max()
        .unwrap_or(0);
    if !accumulator_fits(taps, max_bias) {
        return bad("bias too large: the i32 accumulator could overflow");
    }
    Ok(())
}

/// An LRN table must cover every sum and hold non-negative factors.
pub(crate) fn check_lrn_table(layer: usize, spec: &LrnSpec, table: &[i32]) -> Result<(), Error> {
    if table.len() != lrn_table_len(lrn_max_sum(spec.size)) {
        return Err(Error::BadQuantization {
            layer,
            what: "LRN table length",
        });
    }
    if table.iter().any(|&g| g < 0) {
        return Err(Error::BadQuantization {
            layer,
            what: "negative LRN table entry",
        });
    }
    Ok(())
}
