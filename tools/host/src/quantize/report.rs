//! What quantization cost, as the quantizer reports it: per-layer ranges, scales and SQNR of
//! the int8 path against f32 ([`super::compare`]), and top-1 agreement.

use super::compare::Comparison;
use super::Adjustments;
use alexnet_core::Model;
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
    /// Fraction of evaluation inputs whose f32 top-1 class is in the int8 top 5.
    pub top5_agreement: f64,
    /// Fraction of evaluation inputs whose top int8 logit is clipped at 127 (beyond the range,
    /// or tied there with another class).
    pub top_logit_saturated: f64,
}

/// Runs both models over `inputs` (a [`Comparison`]) and builds the report.
pub fn evaluate(
    f32_model: &Model<'_>,
    int8_model: &Model<'_>,
    adjustments: &[Adjustments],
    method: &str,
    calibration_samples: usize,
    inputs: &[Vec<f32>],
) -> Result<Report> {
    let mut comparison = Comparison::new(f32_model, int8_model)?;
    for input in inputs {
        comparison.add(input)?;
    }
    let q = int8_model.quantization();
    let rows = comparison
        .layers()
        .iter()
        .map(|e| {
            let i = e.index;
            let p = q.layers[i].output;
            let weight_range = f32_model.params(i).map(|p| {
                p.weight
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &w| {
                        (a.min(w), b.max(w))
                    })
            });
            LayerReport {
                index: i,
                name: e.name.clone(),
                weight_range,
                activation_range: (
                    (-128 - p.zero_point) as f32 * p.scale,
                    (127 - p.zero_point) as f32 * p.scale,
                ),
                scale: p.scale,
                zero_point: p.zero_point,
                sqnr_db: e.sqnr_db(),
                adjustments: adjustments.get(i).cloned().unwrap_or_default(),
            }
        })
        .collect();
    Ok(Report {
        arch: f32_model.arch().name.to_string(),
        method: method.to_string(),
        calibration_samples,
        evaluation_samples: comparison.samples(),
        input_scale: q.input.scale,
        input_zero_point: q.input.zero_point,
        layers: rows,
        top1_agreement: comparison.top1_agreement(),
        top5_agreement: comparison.top5_agreement(),
        top_logit_saturated: comparison.saturated_top(),
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
            "top-1 agreement int8 vs f32: {:.1}% of {} samples (f32's top-1 in int8's top-5: \
             {:.1}%); top logit clipped at 127 on {:.1}%",
            self.top1_agreement * 100.0,
            self.evaluation_samples,
            self.top5_agreement * 100.0,
            self.top_logit_saturated * 100.0
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantize::test_support::quantized_micro;

    #[test]
    fn rows_are_the_comparisons_with_the_quantizers_figures() {
        let m = quantized_micro(4);
        let (f32_spec, inputs) = (&m.f32_spec, &m.inputs);
        let (f32_model, int8_model) = (m.f32_blob.model().unwrap(), m.int8_blob.model().unwrap());
        let report = evaluate(&f32_model, &int8_model, &[], "MinMax", 8, inputs).unwrap();
        let mut c = Comparison::new(&f32_model, &int8_model).unwrap();
        for input in inputs {
            c.add(input).unwrap();
        }
        assert_eq!(report.layers.len(), c.layers().len());
        for (r, e) in report.layers.iter().zip(c.layers()) {
            assert_eq!(
                (r.index, &r.name, r.sqnr_db),
                (e.index, &e.name, e.sqnr_db())
            );
            assert_eq!(r.scale, e.scale);
            let (lo, hi) = r.activation_range;
            assert!(lo <= 0.0 && hi > 0.0, "{}: [{lo}, {hi}]", r.name);
            assert_eq!(r.weight_range.is_some(), f32_spec.params[r.index].is_some());
        }
        assert_eq!(report.top1_agreement, c.top1_agreement());
        assert_eq!(report.top5_agreement, c.top5_agreement());
        assert_eq!(report.top_logit_saturated, c.saturated_top());
        assert!(report.top5_agreement >= report.top1_agreement);
        assert_eq!(report.evaluation_samples, inputs.len());
        let table = report.to_table();
        assert!(table.contains("conv1+relu") && table.contains("top-1 agreement"));
    }
}
