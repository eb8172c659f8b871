//! Post-training int8 quantization (`docs/int8-spec.md`): calibrate the f32 model, derive
//! every scale, zero point, multiplier and LRN table, and measure what was lost.

pub mod calibrate;
pub mod compare;
pub mod params;
pub mod report;

pub use calibrate::{calibrate, Calibration, Method};
pub use compare::{Comparison, LayerError, Logits};
pub use report::{evaluate, LayerReport, Report};

use crate::spec::{ModelSpec, QKernelSpec, QLayerSpec, QuantSpec};
use alexnet_core::model::QParams;
use alexnet_core::{Layer, Model, Precision};
use anyhow::{bail, ensure, Context, Result};

/// What the quantizer had to clamp, per layer, for the report.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Adjustments {
    /// Biases clamped to the accumulator bound.
    pub clamped_biases: usize,
    /// Output channels whose multiplier vanished (every output is the zero point).
    pub vanishing_channels: usize,
}

/// The int8 model for `f32`, with activation ranges from `cal` chosen by `method`, except
/// the logits' range, which is the calibration's min/max: a clipped logit ties with every
/// other class at the largest code, and a percentile clips exactly the confident answers
/// (the 99.99th percentile of 1000 logits per image is below the top one on about one
/// image in ten).
///
/// The weights are read from the f32 `model` where it lies (a mapped blob), not copied.
pub fn quantize(
    f32: &Model<'_>,
    cal: &Calibration,
    method: Method,
) -> Result<(ModelSpec, Vec<Adjustments>)> {
    quantize_with_logits(f32, cal, method, Method::MinMax)
}

/// [`quantize`] with the logits' range chosen by `logits` (the last convolution or linear
/// layer's output) and every other by `method`.
pub fn quantize_with_logits(
    f32: &Model<'_>,
    cal: &Calibration,
    method: Method,
    logits: Method,
) -> Result<(ModelSpec, Vec<Adjustments>)> {
    ensure!(
        f32.precision() == Precision::F32,
        "the model is already int8"
    );
    let arch = f32.arch();
    check_finite(f32)?;
    let (lo, hi) = cal.input.range(method);
    let input = params::activation_params(lo, hi);
    let mut prev = input;
    let last = arch.layers.iter().rposition(Layer::has_params);
    let mut layers = Vec::with_capacity(arch.layers.len());
    let mut adjustments = Vec::with_capacity(arch.layers.len());
    for step in arch.walk() {
        let step = step.map_err(|e| anyhow::anyhow!("{}", alexnet_core::Error::Arch(e)))?;
        let i = step.index;
        let name = arch
            .param_layer_name(i)
            .map_or_else(|| format!("layer {i}"), |n| n.to_string());
        let mut adj = Adjustments::default();
        let range_of = |j: usize| {
            let method = if Some(i) == last { logits } else { method };
            cal.layers[j].range(method)
        };
        let (output, kernel, lrn) = match step.layer {
            Layer::Conv(_) | Layer::Linear { .. } => {
                // A following ReLU is fused: this layer gets the ReLU's output range.
                let j = if matches!(arch.layers.get(i + 1), Some(Layer::Relu)) {
                    i + 1
                } else {
                    i
                };
                let (lo, hi) = range_of(j);
                let out = params::activation_params(lo, hi);
                let p = f32
                    .params(i)
                    .with_context(|| format!("{name} has no weights"))?;
                let oc = step.layer.bias_len();
                let (weight, w_scales) = params::quantize_weights(p.weight, oc);
                let taps = p.weight.len() / oc;
                let limit = params::bias_limit(taps);
                let mut bias = Vec::with_capacity(oc);
                let mut multiplier = Vec::with_capacity(oc);
                let mut shift = Vec::with_capacity(oc);
                for (c, (&b, &sw)) in p.bias.iter().zip(&w_scales).enumerate() {
                    let s_acc = prev.scale as f64 * sw as f64;
                    let q = (b as f64 / s_acc).round();
                    if q.abs() > limit as f64 {
                        adj.clamped_biases += 1;
                    }
                    bias.push(q.clamp(-(limit as f64), limit as f64) as i32);
                    let m = s_acc / out.scale as f64;
                    let (mq, r) = params::multiplier_and_shift(m).with_context(|| {
                        format!("{name} channel {c}: requantization multiplier {m:e} overflows (output scale {} too small)", out.scale)
                    })?;
                    if mq == 0 {
                        adj.vanishing_channels += 1;
                    }
                    multiplier.push(mq);
                    shift.push(r);
                }
                (
                    out,
                    Some(QKernelSpec {
                        weight,
                        bias,
                        multiplier,
                        shift,
                    }),
                    None,
                )
            }
            Layer::Lrn(spec) => {
                let (lo, hi) = range_of(i);
                let out = params::activation_params(lo, hi);
                let table = params::lrn_table(&spec, prev, out)
                    .with_context(|| format!("layer {i} (lrn)"))?;
                (out, None, Some(table))
            }
            _ => (prev, None, None),
        };
        layers.push(QLayerSpec {
            output,
            kernel,
            lrn,
        });
        adjustments.push(adj);
        prev = output;
    }
    let mut spec = ModelSpec::without_f32_params(f32);
    spec.quant = Some(QuantSpec {
        input,
        layers,
        packed_dsp: false,
    });
    Ok((spec, adjustments))
}

/// NaN or infinite weights are refused, naming the tensor.
pub fn check_finite(model: &Model<'_>) -> Result<()> {
    let arch = model.arch();
    for i in 0..arch.layers.len() {
        let Some(p) = model.params(i) else { continue };
        let name = arch
            .param_layer_name(i)
            .map_or_else(|| format!("layer {i}"), |n| n.to_string());
        for (role, values) in [("weight", p.weight), ("bias", p.bias)] {
            let bad = values.iter().filter(|v| !v.is_finite()).count();
            if bad > 0 {
                bail!("{name}.{role} holds {bad} NaN or infinite values: refusing to quantize");
            }
        }
    }
    Ok(())
}

/// Input scale and zero point of a quantized spec.
pub fn input_params(spec: &ModelSpec) -> Option<QParams> {
    spec.quant.as_ref().map(|q| q.input)
}

/// Small quantized models for the tests of this crate.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::BlobFile;
    use rand::{Rng, SeedableRng};

    /// A micro net and its int8 quantization.
    pub(crate) struct QuantizedMicro {
        pub f32_spec: ModelSpec,
        pub f32_blob: BlobFile,
        pub int8_blob: BlobFile,
        /// The calibration inputs.
        pub inputs: Vec<Vec<f32>>,
    }

    /// A micro net (paper init, `seed`) quantized with min/max ranges from 8 random inputs
    /// in the range of preprocessed Fashion-MNIST pixels.
    pub(crate) fn quantized_micro(seed: u64) -> QuantizedMicro {
        let arch = &alexnet_core::builtin::MICRO;
        let f32_spec = crate::init::paper_init(arch, seed).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let inputs: Vec<Vec<f32>> = (0..8)
            .map(|_| {
                (0..arch.input.len())
                    .map(|_| rng.random_range(-0.8f32..2.0))
                    .collect()
            })
            .collect();
        let f32_blob = BlobFile::from_bytes(&f32_spec.to_blob().unwrap(), "f32.blob");
        let f32_model = f32_blob.model().unwrap();
        let cal = calibrate(&f32_model, &inputs, |_| {}).unwrap();
        let (int8_spec, _) = quantize(&f32_model, &cal, Method::MinMax).unwrap();
        let int8_blob = BlobFile::from_bytes(&int8_spec.to_blob().unwrap(), "int8.blob");
        QuantizedMicro {
            f32_spec,
            f32_blob,
            int8_blob,
            inputs,
        }
    }
}
