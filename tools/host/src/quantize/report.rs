//! What quantization cost: per-layer SQNR of the int8 path against f32, and top-1 agreement.

use super::Adjustments;
use crate::spec::ModelSpec;
use alexnet_core::RunOptions;
use alexnet_core::{Layer, Model};
use anyhow::Result;

/// One row of the report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerReport {
    /// Layer index.
    pub index: usize,
    /// `conv2`, `fc6`, `lrn`, `maxpool`...
    pub name: String,
    /// Weight range (convolution and linear layers).
    pub weight_range: Option<(f32, f32)>,
    /// Output range represented by the int8 codes: `(-128 - zp) * scale ..= (127 - zp) * scale`.
    pub activation_range: (f32, f32),
    /// Output scale.
    pub scale: f32,
    /// Output zero point.
    pub zero_point: i32,
    /// Signal-to-quantization-noise ratio of the dequantized int8 output against the f32
    /// output, in dB, over the evaluation inputs (after the fused ReLU for conv/linear).
    pub sqnr_db: f64,
    /// Biases clamped, vanishing multipliers.
    pub adjustments: Adjustments,
}

/// The whole report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// Architecture name.
    pub arch: String,
    /// Calibration method, e.g. `MinMax` or `Percentile(99.99)`.
    pub method: String,
    /// Calibration samples.
    pub calibration_samples: usize,
    /// Evaluation samples.
    pub evaluation_samples: usize,
    /// Input scale and zero point.
    pub input_scale: f32,
    /// Input zero point.
    pub input_zero_point: i32,
    /// Rows for layers that compute (conv, LRN, pooling, linear).
    pub layers: Vec<LayerReport>,
    /// Fraction of evaluation inputs whose int8 top-1 class equals the f32 one.
    pub top1_agreement: f64,
}

/// Which f32 activation int8 layer `i`'s output corresponds to: a convolution or linear
/// layer followed by ReLU outputs the ReLU's result (the ReLU is fused into its clamp).
pub fn reference_index(layers: &[Layer], i: usize) -> usize {
    let fused = matches!(layers.get(i), Some(Layer::Conv(_) | Layer::Linear { .. }))
        && matches!(layers.get(i + 1), Some(Layer::Relu));
    if fused {
        i + 1
    } else {
        i
    }
}

/// Whether a layer computes a new tensor (the rows worth reporting).
pub fn computes(layer: &Layer) -> bool {
    matches!(
        layer,
        Layer::Conv(_)
            | Layer::Linear { .. }
            | Layer::Lrn(_)
            | Layer::MaxPool(_)
            | Layer::AdaptiveAvgPool { .. }
    )
}

/// Runs both models over `inputs` and builds the report.
pub fn evaluate(
    f32_spec: &ModelSpec,
    f32_model: &Model<'_>,
    int8_model: &Model<'_>,
    adjustments: &[Adjustments],
    method: &str,
    calibration_samples: usize,
    inputs: &[Vec<f32>],
) -> Result<Report> {
    let layers = f32_model.layers();
    let n = layers.len();
    let reference: Vec<usize> = (0..n).map(|i| reference_index(layers, i)).collect();
    let q = int8_model.quantization();
    let mut signal = vec![0.0f64; n];
    let mut noise = vec![0.0f64; n];
    let mut agree = 0usize;
    let mut arena32 = vec![0u8; f32_model.observed_arena_bytes()];
    let mut arena8 = vec![0u8; int8_model.observed_arena_bytes()];
    let classes = f32_model.classes();
    let (mut l32, mut l8) = (vec![0.0f32; classes], vec![0i8; classes]);
    let mut codes = vec![0i8; f32_model.input_len()];
    for input in inputs {
        let mut acts32: Vec<Vec<f32>> = vec![Vec::new(); n];
        f32_model
            .run(
                input,
                &mut arena32,
                &mut l32,
                RunOptions::new().observe(&mut |i, _, a| acts32[i] = a.to_vec()),
            )
            .map_err(anyhow::Error::msg)?;
        int8_model
            .quantize_input(input, &mut codes)
            .map_err(anyhow::Error::msg)?;
        int8_model
            .run(
                &codes,
                &mut arena8,
                &mut l8,
                RunOptions::new().observe(&mut |i, _, a| {
                    let p = q.layers[i].output;
                    for (&c, &r) in a.iter().zip(&acts32[reference[i]]) {
                        let deq = (c as i32 - p.zero_point) as f64 * p.scale as f64;
                        signal[i] += (r as f64).powi(2);
                        noise[i] += (r as f64 - deq).powi(2);
                    }
                }),
            )
            .map_err(anyhow::Error::msg)?;
        let mut b32 = [0usize];
        let mut b8 = [0usize];
        alexnet_core::postprocess::top_k(&l32, &mut b32);
        let l8f: Vec<f32> = l8.iter().map(|&c| c as f32).collect();
        alexnet_core::postprocess::top_k(&l8f, &mut b8);
        agree += usize::from(b32 == b8);
    }
    let arch = f32_spec.arch();
    let mut rows = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        if !computes(layer) {
            continue;
        }
        let p = q.layers[i].output;
        let weight_range = f32_spec.params[i].as_ref().map(|p| {
            p.weight
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &w| {
                    (a.min(w), b.max(w))
                })
        });
        let name = arch
            .param_layer_name(i)
            .map_or_else(|| layer.kind_name().to_string(), |n| n.to_string());
        rows.push(LayerReport {
            index: i,
            name: if reference[i] != i {
                format!("{name}+relu")
            } else {
                name
            },
            weight_range,
            activation_range: (
                (-128 - p.zero_point) as f32 * p.scale,
                (127 - p.zero_point) as f32 * p.scale,
            ),
            scale: p.scale,
            zero_point: p.zero_point,
            sqnr_db: 10.0 * (signal[i] / noise[i].max(f64::MIN_POSITIVE)).log10(),
            adjustments: adjustments.get(i).cloned().unwrap_or_default(),
        });
    }
    Ok(Report {
        arch: arch.name.to_string(),
        method: method.to_string(),
        calibration_samples,
        evaluation_samples: inputs.len(),
        input_scale: q.input.scale,
        input_zero_point: q.input.zero_point,
        layers: rows,
        top1_agreement: agree as f64 / inputs.len().max(1) as f64,
    })
}

impl Report {
    /// The report as an aligned text table.
    pub fn to_table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} int8, {} calibration on {} samples; input scale {:.6} zero point {}",
            self.arch,
            self.method,
            self.calibration_samples,
            self.input_scale,
            self.input_zero_point
        );
        let _ = writeln!(
            s,
            "{:>3}  {:<12} {:>21}  {:>23}  {:>10} {:>5} {:>9}",
            "#", "layer", "weights", "activations", "scale", "zp", "SQNR dB"
        );
        for r in &self.layers {
            let w = r
                .weight_range
                .map_or(String::new(), |(a, b)| format!("[{a:.4}, {b:.4}]"));
            let (lo, hi) = r.activation_range;
            let mut line = format!(
                "{:>3}  {:<12} {:>21}  {:>23}  {:>10.6} {:>5} {:>9.2}",
                r.index,
                r.name,
                w,
                format!("[{lo:.4}, {hi:.4}]"),
                r.scale,
                r.zero_point,
                r.sqnr_db
            );
            if r.adjustments.clamped_biases > 0 {
                let _ = write!(line, "  ({} biases clamped)", r.adjustments.clamped_biases);
            }
            if r.adjustments.vanishing_channels > 0 {
                let _ = write!(
                    line,
                    "  ({} channels vanish)",
                    r.adjustments.vanishing_channels
                );
            }
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(
            s,
            "top-1 agreement int8 vs f32: {:.1}% of {} samples",
            self.top1_agreement * 100.0,
            self.evaluation_samples
        );
        s
    }
}
